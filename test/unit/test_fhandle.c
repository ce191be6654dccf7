/* Tests for the file handles of inotify and fanotify fdinfo lines
 * (fd/fhandle.c): parsing, malformed handles, the device encoding, and a
 * handle of a real file found again by its path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fd/fhandle.h"

static void test_parse(void **state)
{
	struct fhandle_info h = { 0 };

	(void)state;
	assert_int_equal(fhandle_parse(" fhandle-bytes:8 fhandle-type:1 f_handle:f68ca700284d91cf", &h), 0);
	assert_int_equal(h.handle_bytes, 8);
	assert_int_equal(h.handle_type, 1);
	assert_int_equal(h.handle[0], 0xf6);
	assert_int_equal(h.handle[7], 0xcf);
}

static void test_parse_refuses_malformed(void **state)
{
	struct fhandle_info h = { 0 };
	char big[512];

	(void)state;
	assert_int_equal(fhandle_parse("", &h), -1);                                          /* none */
	assert_int_equal(fhandle_parse(" fhandle-bytes:0 fhandle-type:1 f_handle:", &h), -1); /* empty */
	assert_int_equal(fhandle_parse(" fhandle-bytes:8 fhandle-type:1 f_handle:f68c", &h), -1); /* short */
	assert_int_equal(fhandle_parse(" fhandle-bytes:2 fhandle-type:1 f_handle:zz00", &h), -1); /* not hex */
	snprintf(big, sizeof(big), " fhandle-bytes:%x fhandle-type:1 f_handle:00", FHANDLE_MAX_BYTES + 1);
	assert_int_equal(fhandle_parse(big, &h), -1);                                         /* too long */
}

static void test_sdev(void **state)
{
	(void)state;
	/* The kernel's new_encode_dev-like "sdev": major << 20 | minor. */
	assert_true(fhandle_sdev(0xfe00000) == makedev(254, 0));
	assert_true(fhandle_sdev((8u << 20) | 17) == makedev(8, 17));
}

/* A file's own handle (name_to_handle_at) leads back to its path, and no
 * longer once the file is deleted. */
static void test_path_of_a_file(void **state)
{
	char dir[] = "/tmp/cr-fhandle.XXXXXX", path[64], buf[sizeof(struct file_handle) + FHANDLE_MAX_BYTES];
	struct file_handle *fh = (struct file_handle *)buf;
	struct fhandle_info h = { 0 };
	struct stat st;
	char *found;
	int mnt, fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0 && fstat(fd, &st) == 0);
	fh->handle_bytes = FHANDLE_MAX_BYTES;
	if (name_to_handle_at(AT_FDCWD, path, fh, &mnt, 0) < 0) {
		unlink(path), rmdir(dir), close(fd);
		skip();   /* a file system without handles */
	}
	h.dev = st.st_dev;
	h.ino = st.st_ino;
	h.handle_bytes = fh->handle_bytes;
	h.handle_type = fh->handle_type;
	memcpy(h.handle, fh->f_handle, fh->handle_bytes);
	found = fhandle_path(&h);
	if (found == NULL && geteuid() != 0) {   /* open_by_handle_at needs CAP_DAC_READ_SEARCH */
		unlink(path), rmdir(dir), close(fd);
		skip();
	}
	assert_non_null(found);
	assert_string_equal(found, path);
	free(found);
	unlink(path);
	assert_null(fhandle_path(&h));
	close(fd);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_refuses_malformed),
		cmocka_unit_test(test_sdev),
		cmocka_unit_test(test_path_of_a_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
