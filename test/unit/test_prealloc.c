/* A page image allocated ahead of its writer (img/prealloc.c): on tmpfs
 * the file is allocated without a name, named only when the image of that
 * name takes it (never over an existing file), finished as a valid image
 * with nothing allocated past its end; a file nobody took leaves nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "img/image.h"
#include "img/pages.h"
#include "img/prealloc.h"
#include "os/util.h"

#define SHM_TEMPLATE "/dev/shm/cr-unit-XXXXXX"

struct shm_dir {
	char dir[sizeof(SHM_TEMPLATE)];
	int dirfd;
};

static int shm_setup(void **state)
{
	struct shm_dir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	memcpy(d->dir, SHM_TEMPLATE, sizeof(SHM_TEMPLATE));
	if (mkdtemp(d->dir) == NULL || (d->dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static size_t entries(int dirfd)
{
	DIR *dir = fdopendir(dup(dirfd));
	struct dirent *de;
	size_t n = 0;

	if (dir != NULL)
		rewinddir(dir);   /* the duplicate shares its offset */
	while (dir != NULL && (de = readdir(dir)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	if (dir != NULL)
		closedir(dir);
	return n;
}

static int shm_teardown(void **state)
{
	struct shm_dir *d = *state;
	DIR *dir = fdopendir(dup(d->dirfd));
	struct dirent *de;

	img_prealloc_stop();
	if (dir != NULL)
		rewinddir(dir);
	while (dir != NULL && (de = readdir(dir)) != NULL)
		unlinkat(d->dirfd, de->d_name, 0);
	if (dir != NULL)
		closedir(dir);
	close(d->dirfd);
	rmdir(d->dir);
	free(d);
	return 0;
}

static void settle(void)
{
	struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };

	nanosleep(&ts, NULL);   /* the thread allocates some */
}

/* Taken by the page image of its name, which finishes valid, 0600, with
 * no block allocated beyond its end. */
static void test_taken_and_trimmed(void **state)
{
	struct shm_dir *d = *state;
	struct cr_pages_writer *w = NULL;
	cr_error_t err = NULL;
	char *page = calloc(1, 1 << 20);
	struct stat st;

	assert_non_null(page);
	img_prealloc_start(d->dirfd, "pages-7.img", 64ull << 20);
	settle();
	assert_int_equal(entries(d->dirfd), 0);   /* no name yet */
	assert_ok(cr_pages_writer_open(d->dirfd, "pages-7.img", false, &w, &err), &err);
	memset(page, 0x5a, 1 << 20);
	assert_ok(cr_pages_write(w, page, 1 << 20, &err), &err);
	assert_ok(cr_pages_writer_finish(w, &err), &err);
	assert_ok(cr_img_verify(d->dirfd, "pages-7.img", CR_IMG_PAGES, &err), &err);
	assert_int_equal(fstatat(d->dirfd, "pages-7.img", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_true((uint64_t)st.st_blocks * 512 <= ((uint64_t)st.st_size + 4095) / 4096 * 4096);
	free(page);
}

/* Another name does not take it, and stopping leaves nothing behind. */
static void test_untaken_leaves_nothing(void **state)
{
	struct shm_dir *d = *state;
	cr_error_t err = NULL;
	uint64_t allocated = 0;
	int fd;

	img_prealloc_start(d->dirfd, "pages-7.img", 64ull << 20);
	settle();
	assert_ok(img_prealloc_take(d->dirfd, "pages-8.img", &fd, &allocated, &err), &err);
	assert_int_equal(fd, -1);
	img_prealloc_stop();
	assert_int_equal(entries(d->dirfd), 0);
}

/* A file already under the name is never replaced. */
static void test_existing_name_refused(void **state)
{
	struct shm_dir *d = *state;
	cr_error_t err = NULL;
	uint64_t allocated = 0;
	struct stat st;
	int fd = openat(d->dirfd, "pages-7.img", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	close(fd);
	img_prealloc_start(d->dirfd, "pages-7.img", 64ull << 20);
	assert_int_equal(img_prealloc_take(d->dirfd, "pages-7.img", &fd, &allocated, &err), -1);
	assert_err_has(&err, "pages-7.img", "never replaces");
	assert_int_equal(fstatat(d->dirfd, "pages-7.img", &st, 0), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(st.st_mode & 07777, 0644);
}

/* Small, or not on tmpfs: nothing is started. */
static void test_not_started(void **state)
{
	struct shm_dir *d = *state;
	char dir[] = "/tmp/cr-unit-XXXXXX";
	cr_error_t err = NULL;
	uint64_t allocated = 0;
	int fd, tmpfd;

	img_prealloc_start(d->dirfd, "pages-7.img", IMG_PREALLOC_MIN - 4096);
	assert_ok(img_prealloc_take(d->dirfd, "pages-7.img", &fd, &allocated, &err), &err);
	assert_int_equal(fd, -1);
	assert_non_null(mkdtemp(dir));
	tmpfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(tmpfd >= 0);
	img_prealloc_start(tmpfd, "pages-7.img", 64ull << 20);
	assert_ok(img_prealloc_take(tmpfd, "pages-7.img", &fd, &allocated, &err), &err);
	assert_int_equal(fd, -1);
	close(tmpfd);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_taken_and_trimmed, shm_setup, shm_teardown),
		cmocka_unit_test_setup_teardown(test_untaken_leaves_nothing, shm_setup, shm_teardown),
		cmocka_unit_test_setup_teardown(test_existing_name_refused, shm_setup, shm_teardown),
		cmocka_unit_test_setup_teardown(test_not_started, shm_setup, shm_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
