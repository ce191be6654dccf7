/* The image directory (img/dir.c): nothing followed through a link, only
 * regular files read (a FIFO refused at once, never waited on), nothing of
 * the user's replaced, and a failed dump's journal removing exactly the
 * files it created. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/dir.h"
#include "img/image.h"
#include "os/util.h"

static void put(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	cr_error_t err = NULL;

	assert_true(fd >= 0);
	assert_ok(write_all(fd, text, strlen(text), &err), &err);
	close(fd);
}

/* name holds exactly text. */
static void assert_holds(int dirfd, const char *name, const char *text)
{
	char *buf = NULL;
	size_t len = 0;
	cr_error_t err = NULL;

	assert_ok(read_whole_file_at(dirfd, name, &buf, &len, &err), &err);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(buf, text, len);
	free(buf);
}

static bool exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_read_regular_blocking(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	struct stat st;
	int fd;

	put(f->dirfd, "core-1.img", "data");
	fd = img_dir_open_read(f->dirfd, "core-1.img", &st, &err);
	assert_ok(fd, &err);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	close(fd);
	assert_int_equal(img_dir_open_read(f->dirfd, "missing.img", NULL, &err), -1);
	assert_err_has(&err, "missing.img", "No such file");
}

/* Would block forever in open(2) without O_NONBLOCK, or in read(2). */
static void test_read_refuses_fifo(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;

	assert_int_equal(mkfifoat(f->dirfd, "inventory.img", 0600), 0);
	assert_int_equal(img_dir_open_read(f->dirfd, "inventory.img", NULL, &err), -1);
	assert_err_has(&err, "inventory.img", "a FIFO, not a regular file");
	assert_int_equal(cr_img_verify(f->dirfd, "inventory.img", CR_IMG_INVENTORY, &err), -1);
	assert_err_has(&err, "inventory.img", "a FIFO");
}

static void test_read_refuses_link_and_dir(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;

	put(f->dirfd, "real", "data");
	assert_int_equal(symlinkat("real", f->dirfd, "core-2.img"), 0);
	assert_int_equal(img_dir_open_read(f->dirfd, "core-2.img", NULL, &err), -1);
	assert_err_has(&err, "core-2.img", "a symbolic link");
	assert_int_equal(mkdirat(f->dirfd, "mm-2.img", 0700), 0);
	assert_int_equal(img_dir_open_read(f->dirfd, "mm-2.img", NULL, &err), -1);
	assert_err_has(&err, "mm-2.img", "a directory");
	unlinkat(f->dirfd, "mm-2.img", AT_REMOVEDIR);
}

static void test_create_takes_nothing(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	struct stat st;
	int fd;

	put(f->dirfd, "pages-1.img", "the user's");
	assert_int_equal(img_dir_create(f->dirfd, "pages-1.img", &err), -1);
	assert_err_has(&err, "pages-1.img", "File exists");
	assert_holds(f->dirfd, "pages-1.img", "the user's");
	/* A dangling link: O_CREAT would create its target. */
	assert_int_equal(symlinkat("target", f->dirfd, "core-1.img"), 0);
	assert_int_equal(img_dir_create(f->dirfd, "core-1.img", &err), -1);
	assert_err_has(&err, "core-1.img", "File exists");
	assert_false(exists(f->dirfd, "target"));
	fd = img_dir_create(f->dirfd, "mm-1.img", &err);
	assert_ok(fd, &err);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	close(fd);
}

static void test_replace_log_link(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	int fd;

	put(f->dirfd, "canary", "canary");
	assert_int_equal(symlinkat("canary", f->dirfd, "dump.log"), 0);
	assert_int_equal(symlinkat("nowhere", f->dirfd, "restore.log"), 0);
	fd = img_dir_replace(f->dirfd, "dump.log", &err);
	assert_ok(fd, &err);
	assert_int_equal(write(fd, "log\n", 4), 4);
	close(fd);
	fd = img_dir_replace(f->dirfd, "restore.log", &err);
	assert_ok(fd, &err);
	close(fd);
	assert_holds(f->dirfd, "canary", "canary");
	assert_holds(f->dirfd, "dump.log", "log\n");
	assert_false(exists(f->dirfd, "nowhere"));
	fd = img_dir_replace(f->dirfd, "dump.log", &err);   /* an old log: made afresh */
	assert_ok(fd, &err);
	close(fd);
	assert_holds(f->dirfd, "dump.log", "");
}

static void test_journal_undo_removes_only_created(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	int fd;

	put(f->dirfd, "keep.img", "keep");
	put(f->dirfd, "pages-1.img", "pages");
	img_dir_journal_begin();
	close(img_dir_create(f->dirfd, "core-5.img", &err));
	close(img_dir_create(f->dirfd, "mm-5.img", &err));
	assert_int_equal(img_dir_create(f->dirfd, "pages-1.img", &err), -1);   /* the user's */
	cr_error_release(&err);
	/* A created file someone replaced: the new one is not the dump's (its
	 * fd held open, so that tmpfs cannot give the new file its inode). */
	fd = img_dir_create(f->dirfd, "fds-5.img", &err);
	assert_ok(fd, &err);
	assert_int_equal(unlinkat(f->dirfd, "fds-5.img", 0), 0);
	put(f->dirfd, "fds-5.img", "someone else's");
	img_dir_journal_undo();
	close(fd);
	assert_false(exists(f->dirfd, "core-5.img"));
	assert_false(exists(f->dirfd, "mm-5.img"));
	assert_holds(f->dirfd, "keep.img", "keep");
	assert_holds(f->dirfd, "pages-1.img", "pages");
	assert_holds(f->dirfd, "fds-5.img", "someone else's");
}

static void test_journal_end_and_abort(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	img_dir_journal_begin();
	close(img_dir_create(f->dirfd, "core-6.img", &err));
	assert_ok(cr_img_create(f->dirfd, "mm-6.img", CR_IMG_MM, &img, &err), &err);
	cr_img_abort(img);   /* removed and forgotten */
	put(f->dirfd, "mm-6.img", "the user's, made after the abort");
	img_dir_journal_end();
	img_dir_journal_undo();   /* no journal open: nothing to undo */
	assert_true(exists(f->dirfd, "core-6.img"));
	img_dir_journal_begin();
	img_dir_journal_undo();
	assert_true(exists(f->dirfd, "core-6.img"));
	assert_holds(f->dirfd, "mm-6.img", "the user's, made after the abort");
}

static void test_dir_open(void **state)
{
	struct tmpdir_fixture *f = *state;
	char real[PATH_MAX], link[PATH_MAX], slash[PATH_MAX + 1], file[PATH_MAX];
	cr_error_t err = NULL;
	struct stat st;
	int fd;

	snprintf(real, sizeof(real), "%s/img", f->dir);
	snprintf(link, sizeof(link), "%s/link", f->dir);
	snprintf(slash, sizeof(slash), "%s/", link);
	snprintf(file, sizeof(file), "%s/file", f->dir);
	fd = img_dir_open(real, true, &err);
	assert_ok(fd, &err);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	close(fd);
	assert_int_equal(symlink(real, link), 0);
	assert_int_equal(img_dir_open(link, false, &err), -1);
	assert_err_has(&err, link, "is a symbolic link");
	assert_int_equal(img_dir_open(slash, true, &err), -1);
	assert_err_has(&err, link, "is a symbolic link");
	put(f->dirfd, "file", "x");
	assert_int_equal(img_dir_open(file, true, &err), -1);
	assert_err_has(&err, file, "not a directory");
	assert_int_equal(img_dir_open("", false, &err), -1);
	cr_error_release(&err);
	unlinkat(f->dirfd, "img", AT_REMOVEDIR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_read_regular_blocking, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_read_refuses_fifo, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_read_refuses_link_and_dir, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_create_takes_nothing, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_replace_log_link, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_journal_undo_removes_only_created, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_journal_end_and_abort, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_dir_open, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
