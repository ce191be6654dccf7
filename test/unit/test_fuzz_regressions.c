/* The fuzz target's entry point, outside libFuzzer: every input kept in
 * test/fuzz/crashers/ must now pass without a sanitizer report, and the
 * target itself must see what a correct reader sees (valid images accepted
 * as their kind and decoded to the end, damaged ones refused), or a fuzz
 * run would prove nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_image.h"
#include "img/image.h"
#include "img/pages.h"
#include "os/util.h"
#include "core.pb-c.h"
#include "mm.pb-c.h"

#ifndef CR_CRASHERS_DIR
#error "CR_CRASHERS_DIR names test/fuzz/crashers (set by mk/fuzz.mk)"
#endif

static unsigned char *slurp(int dirfd, const char *name, size_t *len)
{
	char *buf = NULL;
	cr_error_t err = NULL;

	if (read_whole_file_at(dirfd, name, &buf, len, &err) < 0)
		fail_msg("read %s: %s", name, err->msg);
	return (unsigned char *)buf;
}

/* --- the kept inputs ------------------------------------------------------ */

static void test_replay_crashers(void **state)
{
	DIR *d = opendir(CR_CRASHERS_DIR);
	int dfd = d != NULL ? dirfd(d) : -1;
	struct dirent *de;
	size_t replayed = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		unsigned char *data;
		size_t len;

		/* README.md says what the directory is for; the rest are inputs. */
		if (de->d_name[0] == '.' || strcmp(de->d_name, "README.md") == 0)
			continue;
		if (fstatat(dfd, de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		data = slurp(dfd, de->d_name, &len);
		LLVMFuzzerTestOneInput(data, len);
		free(data);
		replayed++;
	}
	closedir(d);
	print_message("replayed %zu kept input(s) from %s\n", replayed, CR_CRASHERS_DIR);
}

/* --- the target sees what a reader sees ------------------------------------ */

static void write_core(int dirfd, const char *name)
{
	static uint8_t xstate[64];
	GpRegs regs;
	ThreadCore th, *threads[] = { &th };
	ThreadSeccompEntry seccomp;
	CredsEntry creds;
	CoreEntry core;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	gp_regs__init(&regs);
	thread_seccomp_entry__init(&seccomp);
	thread_core__init(&th);
	th.tid = 77;
	th.regs = &regs;
	th.xstate.data = xstate;
	th.xstate.len = sizeof(xstate);
	th.comm = "fuzzed";
	th.creds = &creds;
	th.seccomp = &seccomp;
	creds_entry__init(&creds);
	core_entry__init(&core);
	core.pid = 77;
	core.n_threads = 1;
	core.threads = threads;
	core.cwd = "/";
	core.root = "/";

	assert_int_equal(cr_img_create(dirfd, name, CR_IMG_CORE, &img, &err), 0);
	assert_int_equal(cr_img_write_msg(img, &core.base, &err), 0);
	assert_int_equal(cr_img_finish(img, &err), 0);
}

static void test_valid_message_image(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_fuzz_result res;
	unsigned char *data;
	size_t len;

	write_core(f->dirfd, "core-77.img");
	data = slurp(f->dirfd, "core-77.img", &len);
	cr_fuzz_image(data, len, &res);
	assert_int_equal(res.verified, 1u << CR_IMG_CORE);
	assert_int_equal(res.opened, 1u << CR_IMG_CORE);
	assert_int_equal(res.read_to_end, 1u << CR_IMG_CORE);
	assert_true(res.messages >= 1);
	assert_true(res.page_bytes == 0);
	free(data);
}

static void test_damaged_message_image(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_fuzz_result res;
	unsigned char *data;
	size_t len;

	write_core(f->dirfd, "core-77.img");
	data = slurp(f->dirfd, "core-77.img", &len);
	for (size_t i = 0; i < len; i++) {
		data[i] ^= 0x20;
		cr_fuzz_image(data, len, &res);
		if (res.verified != 0 || res.opened != 0)
			fail_msg("byte %zu flipped: verified 0x%x opened 0x%x", i, res.verified, res.opened);
		data[i] ^= 0x20;
	}
	cr_fuzz_image(data, len - 1, &res);
	assert_int_equal(res.verified | res.opened, 0);
	free(data);
}

static void write_pages(int dirfd, const char *name, size_t n_pages, bool compress)
{
	struct cr_pages_writer *w = NULL;
	unsigned char *buf = calloc(n_pages, PAGE_SIZE_CR);
	cr_error_t err = NULL;

	assert_non_null(buf);
	for (size_t i = 0; i < n_pages * PAGE_SIZE_CR; i += 64)
		buf[i] = (unsigned char)(i / 64);
	assert_int_equal(cr_pages_writer_open(dirfd, name, compress, &w, &err), 0);
	assert_int_equal(cr_pages_write(w, buf, n_pages * PAGE_SIZE_CR, &err), 0);
	assert_int_equal(cr_pages_writer_finish(w, &err), 0);
	free(buf);
}

static void test_valid_pages_image(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_fuzz_result res;
	unsigned char *data;
	size_t len;

	write_pages(f->dirfd, "pages-77.img", 300, true);
	data = slurp(f->dirfd, "pages-77.img", &len);
	cr_fuzz_image(data, len, &res);
	assert_int_equal(res.verified, 1u << CR_IMG_PAGES);
	assert_int_equal(res.opened, 1u << CR_IMG_PAGES);
	assert_true(res.page_bytes == 300 * PAGE_SIZE_CR);
	assert_true(res.pages_complete);
	/* A chunk header claiming more than the body holds. */
	data[CR_IMG_HEADER_SIZE + 4] ^= 0x40;
	LLVMFuzzerTestOneInput(data, len);
	cr_fuzz_image(data, len, &res);
	assert_int_equal(res.verified, 0);
	assert_false(res.pages_complete);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_crashers),
		cmocka_unit_test_setup_teardown(test_valid_message_image, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_message_image, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_valid_pages_image, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
