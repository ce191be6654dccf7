/* Image framing: round trips, and every kind of damage refused by name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"
#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/bytes.h"
#include "img/hash.h"
#include "img/image.h"
#include "os/util.h"
#include "inventory.pb-c.h"

static unsigned char *slurp(int dirfd, const char *name, size_t *len)
{
	char *buf = NULL;
	cr_error_t err = NULL;

	assert_ok(read_whole_file_at(dirfd, name, &buf, len, &err), &err);
	return (unsigned char *)buf;
}

static void spew(int dirfd, const char *name, const void *buf, size_t len)
{
	int fd = openat(dirfd, name, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	cr_error_t err = NULL;

	assert_true(fd >= 0);
	assert_ok(write_all(fd, buf, len, &err), &err);
	close(fd);
}

static off_t file_size(int dirfd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, name, &st, 0), 0);
	return st.st_size;
}

static char *arch_x86 = "x86_64";

/* Message i has a release string of release_len bytes and i task pids. */
static void fill_inventory(InventoryEntry *e, uint32_t i, char *release, uint32_t *pids)
{
	inventory_entry__init(e);
	e->format_version = i;
	e->kernel_release = release;
	e->arch = arch_x86;
	e->root_pid = 1000 + i;
	e->page_size = 4096;
	e->dump_time_ns = 0x123456789abcull * (i + 1);
	e->compress = i & 1;
	e->xfeatures = 0xe7;
	e->xstate_size = 2696 + i;
	e->n_task_pids = i % 5;
	e->task_pids = pids;
}

static void make_release(char *buf, size_t len, uint32_t i)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = (char)('a' + (i + k) % 26);
	buf[len] = '\0';
}

static void write_msgs_to(struct cr_img *img, uint32_t n, size_t release_len)
{
	uint32_t pids[5] = { 1, 22, 333, 4444, 55555 };
	char *release = malloc(release_len + 300);
	cr_error_t err = NULL;

	assert_non_null(release);
	for (uint32_t i = 0; i < n; i++) {
		InventoryEntry e;

		make_release(release, release_len + i % 211, i);
		fill_inventory(&e, i, release, pids);
		assert_ok(cr_img_write_msg(img, &e.base, &err), &err);
	}
	free(release);
}

static void write_msgs(int dirfd, const char *name, uint32_t n, size_t release_len)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_ok(cr_img_create(dirfd, name, CR_IMG_INVENTORY, &img, &err), &err);
	write_msgs_to(img, n, release_len);
	assert_ok(cr_img_finish(img, &err), &err);
}

static void check_msg(const InventoryEntry *e, uint32_t i, size_t release_len)
{
	static const uint32_t pids[5] = { 1, 22, 333, 4444, 55555 };
	char *release = malloc(release_len + 300);

	assert_non_null(release);
	make_release(release, release_len + i % 211, i);
	assert_int_equal(e->format_version, i);
	assert_string_equal(e->kernel_release, release);
	assert_string_equal(e->arch, "x86_64");
	assert_int_equal(e->root_pid, 1000 + i);
	assert_true(e->dump_time_ns == 0x123456789abcull * (i + 1));
	assert_int_equal(e->compress, i & 1);
	assert_int_equal(e->xstate_size, 2696 + i);
	assert_int_equal(e->n_task_pids, i % 5);
	for (size_t k = 0; k < e->n_task_pids; k++)
		assert_int_equal(e->task_pids[k], pids[k]);
	free(release);
}

static void read_msgs(int dirfd, const char *name, uint32_t n, size_t release_len)
{
	struct cr_img *img = NULL;
	ProtobufCMessage *m = NULL;
	cr_error_t err = NULL;
	uint64_t left = 1;

	assert_ok(cr_img_open(dirfd, name, CR_IMG_INVENTORY, &img, &err), &err);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), 1);
		check_msg((InventoryEntry *)m, i, release_len);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), 0);
	assert_null(m);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), 0);
	assert_int_equal(cr_img_body_left(img, &left), 0);
	assert_true(left == 0);
	assert_string_equal(cr_img_name(img), name);
	cr_img_close(img);
}

/* 0 when name opens and every message in it decodes. */
static int open_and_read_all(int dirfd, const char *name, cr_error_t *err)
{
	struct cr_img *img = NULL;
	ProtobufCMessage *m = NULL;
	int ret;

	if (cr_img_open(dirfd, name, CR_IMG_INVENTORY, &img, err) < 0)
		return -1;
	while ((ret = cr_img_read_msg(img, &inventory_entry__descriptor, &m, err)) > 0)
		protobuf_c_message_free_unpacked(m, NULL);
	cr_img_close(img);
	return ret;
}

static void expect_refused(int dirfd, const char *name, uint32_t kind, const char *what)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_int_equal(cr_img_verify(dirfd, name, kind, &err), -1);
	assert_err_has(&err, name, what);
	assert_int_equal(cr_img_open(dirfd, name, kind, &img, &err), -1);
	assert_null(img);
	assert_err_has(&err, name, what);
}

static void test_round_trip_messages(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	unsigned char *before, *after;
	size_t len_before, len_after;
	struct stat st1, st2;

	write_msgs(f->dirfd, "inventory.img", 7, 10);
	assert_int_equal(fstatat(f->dirfd, "inventory.img", &st1, 0), 0);
	before = slurp(f->dirfd, "inventory.img", &len_before);
	assert_ok(cr_img_verify(f->dirfd, "inventory.img", CR_IMG_INVENTORY, &err), &err);
	read_msgs(f->dirfd, "inventory.img", 7, 10);
	/* reading never modifies the file */
	after = slurp(f->dirfd, "inventory.img", &len_after);
	assert_int_equal(fstatat(f->dirfd, "inventory.img", &st2, 0), 0);
	assert_int_equal(len_before, len_after);
	assert_memory_equal(before, after, len_before);
	assert_true(st1.st_mtim.tv_sec == st2.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st2.st_mtim.tv_nsec);
	free(before);
	free(after);
}

/* Frames straddle the 1 MiB verify window and the 256 KiB write buffer. */
static void test_round_trip_many_messages(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;

	write_msgs(f->dirfd, "mm-1.img", 3000, 900);
	assert_true(file_size(f->dirfd, "mm-1.img") > 2 * (1 << 20));
	assert_ok(cr_img_verify(f->dirfd, "mm-1.img", CR_IMG_INVENTORY, &err), &err);
	read_msgs(f->dirfd, "mm-1.img", 3000, 900);
}

/* A message larger than the write buffer goes out unbuffered. */
static void test_big_message(void **state)
{
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;

	write_msgs(f->dirfd, "big.img", 3, 300 << 10);
	assert_ok(cr_img_verify(f->dirfd, "big.img", CR_IMG_INVENTORY, &err), &err);
	read_msgs(f->dirfd, "big.img", 3, 300 << 10);
}

static void test_empty_image(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	ProtobufCMessage *m = NULL;
	cr_error_t err = NULL;
	uint64_t left = 1;

	assert_ok(cr_img_create(f->dirfd, "empty.img", CR_IMG_CORE, &img, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	assert_int_equal(file_size(f->dirfd, "empty.img"), CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE);
	assert_ok(cr_img_verify(f->dirfd, "empty.img", CR_IMG_CORE, &err), &err);
	assert_ok(cr_img_open(f->dirfd, "empty.img", CR_IMG_CORE, &img, &err), &err);
	assert_int_equal(cr_img_body_left(img, &left), 0);
	assert_true(left == 0);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), 0);
	assert_null(m);
	cr_img_close(img);
	assert_int_equal(cr_img_read_one(f->dirfd, "empty.img", CR_IMG_CORE, &inventory_entry__descriptor,
					 &m, &err), -1);
	assert_err_has(&err, "empty.img", "no ");
}

static void fill_pattern(unsigned char *p, size_t len)
{
	uint32_t x = 12345;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (unsigned char)(x >> 16);
	}
}

static void test_raw_writes(void **state)
{
	static const size_t wsizes[] = { 1, 4095, 300000, 5, (1 << 20) + 3, 262144, 262143, 17 };
	static const size_t rsizes[] = { 7, 262144, 100, 2 << 20, 1, 262145, 3 };
	struct tmpdir_fixture *f = *state;
	size_t total = 0, off = 0;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	unsigned char *data, *back;
	uint64_t left;

	for (size_t i = 0; i < ARRAY_SIZE(wsizes); i++)
		total += wsizes[i];
	data = malloc(total);
	back = malloc(total);
	assert_true(data && back);
	fill_pattern(data, total);
	assert_ok(cr_img_create(f->dirfd, "pages-1.img", CR_IMG_PAGES, &img, &err), &err);
	assert_int_equal(cr_img_raw_offset(img), CR_IMG_HEADER_SIZE);
	for (size_t i = 0; i < ARRAY_SIZE(wsizes); off += wsizes[i++])
		assert_ok(cr_img_write_raw(img, data + off, wsizes[i], &err), &err);
	assert_int_equal(cr_img_raw_offset(img), CR_IMG_HEADER_SIZE + total);
	assert_ok(cr_img_finish(img, &err), &err);
	assert_int_equal(file_size(f->dirfd, "pages-1.img"), CR_IMG_HEADER_SIZE + total + CR_IMG_TRAILER_SIZE);
	assert_ok(cr_img_verify(f->dirfd, "pages-1.img", CR_IMG_PAGES, &err), &err);

	assert_ok(cr_img_open(f->dirfd, "pages-1.img", CR_IMG_PAGES, &img, &err), &err);
	for (size_t i = 0, got = 0; got < total; i = (i + 1) % ARRAY_SIZE(rsizes)) {
		size_t n = rsizes[i] < total - got ? rsizes[i] : total - got;

		assert_int_equal(cr_img_raw_offset(img), CR_IMG_HEADER_SIZE + got);
		assert_ok(cr_img_read_raw(img, back + got, n, &err), &err);
		got += n;
		assert_int_equal(cr_img_body_left(img, &left), 0);
		assert_true(left == total - got);
	}
	assert_memory_equal(data, back, total);
	assert_int_equal(cr_img_read_raw(img, back, 1, &err), -1);
	assert_err_has(&err, "pages-1.img", "truncated");
	assert_ok(cr_img_read_raw(img, back, 0, &err), &err);
	cr_img_close(img);
	free(data);
	free(back);
}

/* Marks taken before cr_img_async still mean what they meant: later marks
 * are larger, and waiting for an early one returns (it would hang if the
 * threaded sink counted from zero again).  The image is the same as one
 * written without threads. */
static void test_async_marks_continue(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t piece = 300u << 10;
	unsigned char *data = malloc(4 * piece);
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	uint64_t before, after;

	assert_non_null(data);
	fill_pattern(data, 4 * piece);
	assert_ok(cr_img_create(f->dirfd, "pages-2.img", CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, data, piece, &err), &err);
	assert_ok(cr_img_write_raw(img, data + piece, piece, &err), &err);
	before = cr_img_mark(img);
	assert_true(before >= 2);
	cr_img_async(img);
	assert_int_equal(cr_img_mark(img), before);
	assert_ok(cr_img_wait(img, before, &err), &err);
	assert_ok(cr_img_write_raw(img, data + 2 * piece, piece, &err), &err);
	assert_ok(cr_img_write_raw(img, data + 3 * piece, piece, &err), &err);
	after = cr_img_mark(img);
	assert_true(after == before + 2);
	assert_ok(cr_img_wait(img, before, &err), &err);
	assert_ok(cr_img_wait(img, after, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	assert_ok(cr_img_verify(f->dirfd, "pages-2.img", CR_IMG_PAGES, &err), &err);
	assert_int_equal(file_size(f->dirfd, "pages-2.img"), CR_IMG_HEADER_SIZE + 4 * piece + CR_IMG_TRAILER_SIZE);
	free(data);
}

static void test_kinds_used_correctly(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	ProtobufCMessage *m = NULL;
	InventoryEntry e;
	cr_error_t err = NULL;
	char release[] = "r";

	assert_string_equal(cr_img_kind_name(CR_IMG_INVENTORY), "inventory");
	assert_string_equal(cr_img_kind_name(CR_IMG_CORE), "core");
	assert_string_equal(cr_img_kind_name(CR_IMG_PAGES), "pages");
	assert_string_equal(cr_img_kind_name(CR_IMG_FDINFO), "fdinfo");
	assert_string_equal(cr_img_kind_name(0), "unknown");
	assert_string_equal(cr_img_kind_name(99), "unknown");

	assert_int_equal(cr_img_create(f->dirfd, "odd.img", 99, &img, &err), -1);
	assert_err_has(&err, "odd.img", "kind");
	assert_int_equal(faccessat(f->dirfd, "odd.img", F_OK, 0), -1);

	fill_inventory(&e, 1, release, NULL);
	e.n_task_pids = 0;
	assert_ok(cr_img_create(f->dirfd, "pages-2.img", CR_IMG_PAGES, &img, &err), &err);
	assert_int_equal(cr_img_write_msg(img, &e.base, &err), -1);
	assert_err_has(&err, "pages-2.img", "no messages");
	assert_ok(cr_img_finish(img, &err), &err);
	assert_ok(cr_img_open(f->dirfd, "pages-2.img", CR_IMG_PAGES, &img, &err), &err);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), -1);
	assert_err_has(&err, "pages-2.img", "no messages");
	cr_img_close(img);

	assert_int_equal(cr_img_verify(f->dirfd, ".", CR_IMG_CORE, &err), -1);
	assert_err_has(&err, "not a regular file", NULL);
	assert_int_equal(cr_img_verify(f->dirfd, "missing.img", CR_IMG_CORE, &err), -1);
	assert_err_has(&err, "missing.img", "No such file");
}

/* Writes good with byte at replaced by value under name. */
static void spew_patched(int dirfd, const char *name, const unsigned char *good, size_t len, size_t at,
			 unsigned char value)
{
	unsigned char *copy = malloc(len);

	assert_non_null(copy);
	memcpy(copy, good, len);
	copy[at] = value;
	spew(dirfd, name, copy, len);
	free(copy);
}

static void test_header_mismatch(void **state)
{
	struct tmpdir_fixture *f = *state;
	unsigned char *good;
	char want[96];
	size_t len;

	write_msgs(f->dirfd, "inventory.img", 2, 5);
	good = slurp(f->dirfd, "inventory.img", &len);

	spew_patched(f->dirfd, "core-42.img", good, len, 0, 'X');
	expect_refused(f->dirfd, "core-42.img", CR_IMG_INVENTORY, "bad magic");
	spew_patched(f->dirfd, "core-43.img", good, len, 3, 'X');
	expect_refused(f->dirfd, "core-43.img", CR_IMG_INVENTORY, "bad magic");
	spew_patched(f->dirfd, "mm-42.img", good, len, 4, CR_FORMAT_VERSION + 1);
	snprintf(want, sizeof(want), "image version %d (this cr reads version %d)", CR_FORMAT_VERSION + 1,
		 CR_FORMAT_VERSION);
	expect_refused(f->dirfd, "mm-42.img", CR_IMG_INVENTORY, want);
	spew_patched(f->dirfd, "mm-43.img", good, len, 5, 1);
	expect_refused(f->dirfd, "mm-43.img", CR_IMG_INVENTORY, "version");
	spew_patched(f->dirfd, "files.img", good, len, 11, 0x80);
	expect_refused(f->dirfd, "files.img", CR_IMG_INVENTORY, "unknown header flags");
	spew_patched(f->dirfd, "ns.img", good, len, 8, 0x01);
	expect_refused(f->dirfd, "ns.img", CR_IMG_INVENTORY, "encrypted: give its key with --decrypt");

	expect_refused(f->dirfd, "inventory.img", CR_IMG_CORE, "wrong image kind 1 (inventory), expected 3 (core)");
	expect_refused(f->dirfd, "inventory.img", CR_IMG_PAGES, "expected 6 (pages)");
	spew_patched(f->dirfd, "pstree.img", good, len, 6, CR_IMG_PSTREE);
	expect_refused(f->dirfd, "pstree.img", CR_IMG_INVENTORY, "kind 2 (pstree)");
	free(good);
}

static void test_trailer_missing(void **state)
{
	struct tmpdir_fixture *f = *state;
	unsigned char *good;
	size_t len;

	write_msgs(f->dirfd, "inventory.img", 3, 5);
	good = slurp(f->dirfd, "inventory.img", &len);
	/* cut exactly at the end of the body: a writer that never finished */
	spew(f->dirfd, "unfinished.img", good, len - CR_IMG_TRAILER_SIZE);
	expect_refused(f->dirfd, "unfinished.img", CR_IMG_INVENTORY, "trailer missing");
	spew_patched(f->dirfd, "bad-trailer.img", good, len, len - CR_IMG_TRAILER_SIZE, 'x');
	expect_refused(f->dirfd, "bad-trailer.img", CR_IMG_INVENTORY, "trailer missing");
	/* trailing garbage after a good trailer */
	good = realloc(good, len + 1);
	assert_non_null(good);
	good[len] = 0;
	spew(f->dirfd, "long.img", good, len + 1);
	expect_refused(f->dirfd, "long.img", CR_IMG_INVENTORY, NULL);
	/* bytes slipped in between the body and the trailer: the checksum, which
	 * covers only the body the trailer records, still matches */
	{
		unsigned char *gap = malloc(len + 3);

		assert_non_null(gap);
		memcpy(gap, good, len - CR_IMG_TRAILER_SIZE);
		memset(gap + len - CR_IMG_TRAILER_SIZE, 0, 3);
		memcpy(gap + len - CR_IMG_TRAILER_SIZE + 3, good + len - CR_IMG_TRAILER_SIZE, CR_IMG_TRAILER_SIZE);
		spew(f->dirfd, "gap.img", gap, len + 3);
		expect_refused(f->dirfd, "gap.img", CR_IMG_INVENTORY, "the file holds");
		free(gap);
	}
	/* a body length that disagrees with the file */
	spew_patched(f->dirfd, "short.img", good, len, len - 8, good[len - 8] + 1);
	expect_refused(f->dirfd, "short.img", CR_IMG_INVENTORY, "truncated");
	free(good);
}

/* Every single damaged byte is caught, by verify and by open/read. */
static void flip_every_byte(int dirfd, const char *good_name, uint32_t kind, bool try_read)
{
	static const unsigned char flips[] = { 0x01, 0x80, 0xff };
	unsigned char *good;
	size_t len;
	cr_error_t err = NULL;

	good = slurp(dirfd, good_name, &len);
	for (size_t at = 0; at < len; at++) {
		bool in_body = at >= CR_IMG_HEADER_SIZE && at < len - CR_IMG_TRAILER_SIZE;
		const char *what = in_body ? "checksum mismatch" : NULL;

		for (size_t k = 0; k < ARRAY_SIZE(flips); k++) {
			spew_patched(dirfd, "flip.img", good, len, at, good[at] ^ flips[k]);
			if (cr_img_verify(dirfd, "flip.img", kind, &err) == 0)
				fail_msg("verify accepted byte %zu xor 0x%02x", at, flips[k]);
			assert_err_has(&err, "flip.img", what);
			if (!try_read)
				continue;
			if (open_and_read_all(dirfd, "flip.img", &err) == 0)
				fail_msg("open/read accepted byte %zu xor 0x%02x", at, flips[k]);
			assert_err_has(&err, "flip.img", what);
		}
	}
	unlinkat(dirfd, "flip.img", 0);
	free(good);
}

static void test_checksum_every_byte(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	unsigned char raw[100];

	write_msgs(f->dirfd, "core-42.img", 2, 3);
	assert_true(file_size(f->dirfd, "core-42.img") < 200);
	flip_every_byte(f->dirfd, "core-42.img", CR_IMG_INVENTORY, true);

	fill_pattern(raw, sizeof(raw));
	assert_ok(cr_img_create(f->dirfd, "pages-7.img", CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, raw, sizeof(raw), &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	flip_every_byte(f->dirfd, "pages-7.img", CR_IMG_PAGES, false);
}

static void test_checksum_mismatch_message(void **state)
{
	struct tmpdir_fixture *f = *state;
	unsigned char *good;
	size_t len;

	write_msgs(f->dirfd, "inventory.img", 2, 5);
	good = slurp(f->dirfd, "inventory.img", &len);
	spew_patched(f->dirfd, "core-42.img", good, len, CR_IMG_HEADER_SIZE + 6, good[CR_IMG_HEADER_SIZE + 6] ^ 4);
	expect_refused(f->dirfd, "core-42.img", CR_IMG_INVENTORY, "checksum mismatch (stored 0x");
	spew_patched(f->dirfd, "core-43.img", good, len, len - 12, good[len - 12] ^ 4);
	expect_refused(f->dirfd, "core-43.img", CR_IMG_INVENTORY, "checksum mismatch");
	free(good);
}

/* The three ways to compute the checksum agree (hash.h): a stream fed in
 * pieces that straddle the blocks, the blocks' digests put together, and
 * the buffer at once; and the trailer holds that of the file's bytes. */
static void test_hash_forms(void **state)
{
	static const size_t pieces[] = { 1, 4095, CR_HASH_BLOCK - 4096, CR_HASH_BLOCK, 7, 3 * CR_HASH_BLOCK };
	struct tmpdir_fixture *f = *state;
	size_t len = (3u * CR_HASH_BLOCK) + 12345, off = 0, file_len;
	unsigned char *data = malloc(len), *file;
	uint64_t digests[4];
	struct img_hash *h = img_hash_new();
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_non_null(data);
	fill_pattern(data, len);
	for (size_t i = 0; off < len; i = (i + 1) % ARRAY_SIZE(pieces)) {
		size_t n = pieces[i] < len - off ? pieces[i] : len - off;

		img_hash_update(h, data + off, n);
		off += n;
	}
	for (size_t b = 0; b < 4; b++)
		digests[b] = img_hash_block(data + b * CR_HASH_BLOCK, b < 3 ? CR_HASH_BLOCK : 12345);
	assert_true(img_hash_digest(h) == img_hash_buf(data, len));
	assert_true(img_hash_blocks(digests, 4) == img_hash_buf(data, len));
	assert_true(img_hash_buf(data, len) != img_hash_buf(data, len - 1));
	img_hash_free(h);

	assert_ok(cr_img_create(f->dirfd, "pages-3.img", CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, data, len, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	file = slurp(f->dirfd, "pages-3.img", &file_len);
	assert_int_equal(file_len, CR_IMG_HEADER_SIZE + len + CR_IMG_TRAILER_SIZE);
	assert_true(get_le64(file + file_len - CR_IMG_TRAILER_SIZE + CR_IMG_TRAILER_HASH) ==
		    img_hash_buf(file, file_len - CR_IMG_TRAILER_SIZE));
	assert_true(get_le64(file + file_len - CR_IMG_TRAILER_SIZE + CR_IMG_TRAILER_BODY_LEN) == len);
	free(file);
	free(data);
}

/* The checksum is XXH3's, as any other implementation computes it
 * (Python's xxhash gave these values), whichever vector unit cr uses. */
static void test_hash_known_values(void **state)
{
	size_t len = (3u * CR_HASH_BLOCK) + 12345;
	unsigned char *data = malloc(len);

	(void)state;
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 7 + 3);
	assert_true(img_hash_buf(data, len) == 0x2cd1d85dfa5d0031ull);
	assert_true(img_hash_buf("cr", 2) == 0x22d7ee6f35810df4ull);
	free(data);
}

/* A page image large enough to be verified on two threads (its blocks cut
 * in two halves): a flipped byte in either half, in the last, short block,
 * or in the stored checksum is caught, and a good one passes. */
static void test_verify_split(void **state)
{
	struct tmpdir_fixture *f = *state;
	size_t len = (9u << 20) + 4096 * 3, file_len;
	const size_t at[] = { CR_IMG_HEADER_SIZE + 10, 2u << 20, (6u << 20) + 77, (9u << 20) + 5000, 0 };
	unsigned char *data = malloc(len), *good;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_non_null(data);
	fill_pattern(data, len);
	assert_ok(cr_img_create(f->dirfd, "pages-4.img", CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, data, len, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	assert_ok(cr_img_verify(f->dirfd, "pages-4.img", CR_IMG_PAGES, &err), &err);
	good = slurp(f->dirfd, "pages-4.img", &file_len);
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		size_t where = at[i] != 0 ? at[i] : file_len - CR_IMG_TRAILER_SIZE + CR_IMG_TRAILER_HASH + 7;

		spew_patched(f->dirfd, "flip.img", good, file_len, where, good[where] ^ 0x10);
		assert_int_equal(cr_img_verify(f->dirfd, "flip.img", CR_IMG_PAGES, &err), -1);
		assert_err_has(&err, "flip.img", "checksum mismatch");
	}
	free(good);
	free(data);
}

static void truncate_every_length(int dirfd, const char *good_name, uint32_t kind)
{
	struct cr_img *img = NULL;
	unsigned char *good;
	cr_error_t err = NULL;
	size_t len;

	good = slurp(dirfd, good_name, &len);
	for (size_t cut = 0; cut < len; cut++) {
		spew(dirfd, "cut.img", good, cut);
		if (cr_img_verify(dirfd, "cut.img", kind, &err) == 0)
			fail_msg("verify accepted %s cut to %zu bytes", good_name, cut);
		assert_err_has(&err, "cut.img", NULL);
		if (cr_img_open(dirfd, "cut.img", kind, &img, &err) == 0)
			fail_msg("open accepted %s cut to %zu bytes", good_name, cut);
		assert_null(img);
		assert_err_has(&err, "cut.img", NULL);
	}
	unlinkat(dirfd, "cut.img", 0);
	free(good);
}

static void test_truncation_every_length(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	unsigned char raw[300];

	write_msgs(f->dirfd, "inventory.img", 3, 4);
	truncate_every_length(f->dirfd, "inventory.img", CR_IMG_INVENTORY);
	fill_pattern(raw, sizeof(raw));
	assert_ok(cr_img_create(f->dirfd, "pages-3.img", CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, raw, sizeof(raw), &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	truncate_every_length(f->dirfd, "pages-3.img", CR_IMG_PAGES);

	spew(f->dirfd, "tiny.img", raw, 5);
	expect_refused(f->dirfd, "tiny.img", CR_IMG_INVENTORY, "truncated");
}

/* An image whose body is exactly body[0..len), with a valid trailer. */
static void craft(int dirfd, const char *name, uint32_t kind, const void *body, size_t len)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_ok(cr_img_create(dirfd, name, kind, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, body, len, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
}

static void test_bad_frames(void **state)
{
	static const unsigned char past[] = { 100, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	static const unsigned char huge[] = { 0xff, 0xff, 0xff, 0xff, 1, 2 };
	static const unsigned char partial[] = { 0, 0, 0, 0, 2, 0 };
	struct tmpdir_fixture *f = *state;
	char want[64];

	craft(f->dirfd, "past.img", CR_IMG_INVENTORY, past, sizeof(past));
	snprintf(want, sizeof(want), "frame at offset %d: length 100 runs past", CR_IMG_HEADER_SIZE);
	expect_refused(f->dirfd, "past.img", CR_IMG_INVENTORY, want);
	craft(f->dirfd, "huge.img", CR_IMG_INVENTORY, huge, sizeof(huge));
	expect_refused(f->dirfd, "huge.img", CR_IMG_INVENTORY, "exceeds the limit");
	craft(f->dirfd, "partial.img", CR_IMG_INVENTORY, partial, sizeof(partial));
	snprintf(want, sizeof(want), "frame at offset %d: truncated length", CR_IMG_HEADER_SIZE + 4);
	expect_refused(f->dirfd, "partial.img", CR_IMG_INVENTORY, want);
}

/* Frame lengths that straddle the verify window are assembled correctly. */
static void test_frame_straddles_verify_window(void **state)
{
	const size_t window = 1 << 20, first = window - 2 - CR_IMG_HEADER_SIZE - 4;
	struct tmpdir_fixture *f = *state;
	cr_error_t err = NULL;
	size_t len = 4 + first + 4 + 10;
	unsigned char *body = calloc(1, len);

	assert_non_null(body);
	body[0] = (unsigned char)first;
	body[1] = (unsigned char)(first >> 8);
	body[2] = (unsigned char)(first >> 16);
	body[4 + first] = 10;
	craft(f->dirfd, "straddle.img", CR_IMG_CORE, body, len);
	assert_ok(cr_img_verify(f->dirfd, "straddle.img", CR_IMG_CORE, &err), &err);
	body[4 + first] = 11;
	craft(f->dirfd, "straddle-bad.img", CR_IMG_CORE, body, len);
	assert_int_equal(cr_img_verify(f->dirfd, "straddle-bad.img", CR_IMG_CORE, &err), -1);
	assert_err_has(&err, "straddle-bad.img", "frame at offset 1048574: length 11 runs past");
	free(body);
}

static void test_undecodable_frame(void **state)
{
	static const unsigned char junk[] = { 5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	ProtobufCMessage *m = NULL;
	cr_error_t err = NULL;
	char offset[64];
	off_t first;

	assert_ok(cr_img_create(f->dirfd, "core-9.img", CR_IMG_CORE, &img, &err), &err);
	write_msgs_to(img, 1, 8);
	assert_ok(cr_img_write_raw(img, junk, sizeof(junk), &err), &err);
	first = (off_t)cr_img_raw_offset(img) - (off_t)sizeof(junk);
	assert_ok(cr_img_finish(img, &err), &err);
	/* the framing is sound, so verify (which does not decode) accepts it */
	assert_ok(cr_img_verify(f->dirfd, "core-9.img", CR_IMG_CORE, &err), &err);
	assert_ok(cr_img_open(f->dirfd, "core-9.img", CR_IMG_CORE, &img, &err), &err);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), 1);
	protobuf_c_message_free_unpacked(m, NULL);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, &m, &err), -1);
	assert_null(m);
	snprintf(offset, sizeof(offset), "frame at offset %lld: cannot decode 5 bytes as inventory_entry",
		 (long long)first);
	assert_err_has(&err, "core-9.img", offset);
	cr_img_close(img);
}

static void test_mode_and_excl(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	mode_t old = umask(0);
	struct stat st;

	write_msgs(f->dirfd, "core-1.img", 1, 4);
	umask(old);
	assert_int_equal(fstatat(f->dirfd, "core-1.img", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(cr_img_create(f->dirfd, "core-1.img", CR_IMG_INVENTORY, &img, &err), -1);
	assert_null(img);
	assert_int_equal(err->status, EEXIST);
	assert_err_has(&err, "core-1.img", NULL);
	/* the refused create left the existing image alone */
	read_msgs(f->dirfd, "core-1.img", 1, 4);
}

static void test_abort_removes_file(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	static unsigned char big[300 << 10];

	assert_ok(cr_img_create(f->dirfd, "mm-5.img", CR_IMG_MM, &img, &err), &err);
	write_msgs_to(img, 3, 4);
	assert_ok(cr_img_write_raw(img, big, sizeof(big), &err), &err);
	assert_int_equal(faccessat(f->dirfd, "mm-5.img", F_OK, 0), 0);
	cr_img_abort(img);
	assert_int_equal(faccessat(f->dirfd, "mm-5.img", F_OK, 0), -1);
	assert_int_equal(errno, ENOENT);
	/* and the name is free again */
	write_msgs(f->dirfd, "mm-5.img", 1, 4);
	read_msgs(f->dirfd, "mm-5.img", 1, 4);
	cr_img_abort(NULL);
}

/* The directory fd may be closed before the image is aborted. */
static void test_abort_after_dirfd_closed(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	int dirfd = dup(f->dirfd);

	assert_true(dirfd >= 0);
	assert_ok(cr_img_create(dirfd, "core-6.img", CR_IMG_CORE, &img, &err), &err);
	close(dirfd);
	cr_img_abort(img);
	assert_int_equal(faccessat(f->dirfd, "core-6.img", F_OK, 0), -1);
}

static void test_read_one(void **state)
{
	struct tmpdir_fixture *f = *state;
	ProtobufCMessage *m = NULL;
	cr_error_t err = NULL;

	write_msgs(f->dirfd, "inventory.img", 1, 12);
	assert_ok(cr_img_read_one(f->dirfd, "inventory.img", CR_IMG_INVENTORY, &inventory_entry__descriptor,
				  &m, &err), &err);
	assert_non_null(m);
	check_msg((InventoryEntry *)m, 0, 12);
	protobuf_c_message_free_unpacked(m, NULL);

	write_msgs(f->dirfd, "two.img", 2, 12);
	assert_int_equal(cr_img_read_one(f->dirfd, "two.img", CR_IMG_INVENTORY, &inventory_entry__descriptor,
					 &m, &err), -1);
	assert_null(m);
	assert_err_has(&err, "two.img", "more than one");

	assert_int_equal(cr_img_read_one(f->dirfd, "inventory.img", CR_IMG_PSTREE, &inventory_entry__descriptor,
					 &m, &err), -1);
	assert_null(m);
	assert_err_has(&err, "inventory.img", "wrong image kind");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_messages, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_many_messages, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_big_message, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_async_marks_continue, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_empty_image, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_raw_writes, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_kinds_used_correctly, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_header_mismatch, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_trailer_missing, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_checksum_every_byte, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_checksum_mismatch_message, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_hash_forms, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test(test_hash_known_values),
		cmocka_unit_test_setup_teardown(test_verify_split, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_truncation_every_length, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_frames, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_frame_straddles_verify_window, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_undecodable_frame, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_mode_and_excl, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_file, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_abort_after_dirfd_closed, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_read_one, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
