/* Page data: chunked round trips, compression, and malformed chunks refused. */
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
#include <zlib.h>

#include "img/image.h"
#include "img/pages.h"
#include "os/util.h"

#define PG    4096u
#define MIB   (1u << 20)
#define CHDR  16u
#define EMPTY_IMG (CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE)
/* The file offset of the first body byte, as errors print it. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define BODY_AT STR(CR_IMG_HEADER_SIZE)

static off_t file_size(int dirfd, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(dirfd, name, &st, 0), 0);
	return st.st_size;
}

/* Compressible: mostly a slowly changing byte, with the page number on top. */
static void fill_compressible(unsigned char *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i / 512 + seed) % 7);
	for (size_t pg = 0; pg < len / PG; pg++)
		memcpy(p + pg * PG, &pg, sizeof(pg));
}

static void fill_random(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

static void write_pieces(struct cr_pages_writer *w, const unsigned char *data, size_t total,
			 const size_t *pages, size_t npieces)
{
	cr_error_t err = NULL;

	for (size_t off = 0, i = 0; off < total; i = (i + 1) % npieces) {
		size_t n = pages[i] * PG < total - off ? pages[i] * PG : total - off;

		assert_ok(cr_pages_write(w, data + off, n, &err), &err);
		off += n;
		assert_true(cr_pages_written(w) == off);
	}
}

/* Writers and readers hand their I/O to a thread (data stays put meanwhile),
 * and readers ask for page data with cr_pages_read_later. */
static bool async_io;

static void write_image(int dirfd, const char *name, bool compress, const unsigned char *data,
			size_t total, const size_t *pages, size_t npieces)
{
	struct cr_pages_writer *w = NULL;
	cr_error_t err = NULL;

	assert_ok(cr_pages_writer_open(dirfd, name, compress, &w, &err), &err);
	if (async_io)
		cr_img_async(cr_pages_writer_img(w));
	write_pieces(w, data, total, pages, npieces);
	assert_ok(cr_pages_writer_finish(w, &err), &err);
}

/* Reads total bytes in pieces of the given page counts and compares. */
static void read_back(int dirfd, const char *name, const unsigned char *data, size_t total,
		      const size_t *pages, size_t npieces)
{
	struct cr_pages_reader *r = NULL;
	unsigned char *back = malloc(total + PG);
	cr_error_t err = NULL;

	assert_non_null(back);
	assert_ok(cr_pages_reader_open(dirfd, name, &r, &err), &err);
	if (async_io)
		cr_img_async(cr_pages_reader_img(r));
	for (size_t off = 0, i = 0; off < total; i = (i + 1) % npieces) {
		size_t n = pages[i] * PG < total - off ? pages[i] * PG : total - off;

		assert_ok((async_io ? cr_pages_read_later : cr_pages_read)(r, back + off, n, &err), &err);
		off += n;
	}
	assert_ok(cr_img_wait(cr_pages_reader_img(r), cr_img_mark(cr_pages_reader_img(r)), &err), &err);
	assert_memory_equal(data, back, total);
	assert_ok(cr_pages_reader_check_end(r, &err), &err);
	assert_int_equal(cr_pages_read(r, back, PG, &err), -1);
	assert_err_has(&err, name, "ends");
	cr_pages_reader_close(r);
	free(back);
}

static void round_trip(int dirfd, bool compress)
{
	static const size_t wpages[] = { 1, 3, 300, 63, 64, 65, 17, 700, 2 };
	static const size_t rpages[] = { 7, 257, 1, 129, 600, 3, 64 };
	const size_t total = 5 * MIB + 3 * PG;
	unsigned char *data = malloc(total);
	cr_error_t err = NULL;

	assert_non_null(data);
	fill_compressible(data, total, 3);
	fill_random(data + MIB, MIB, 42); /* one chunk that will not shrink */
	write_image(dirfd, "pages-1.img", compress, data, total, wpages, ARRAY_SIZE(wpages));
	assert_ok(cr_img_verify(dirfd, "pages-1.img", CR_IMG_PAGES, &err), &err);
	read_back(dirfd, "pages-1.img", data, total, rpages, ARRAY_SIZE(rpages));
	/* the same data read in one go, and page by page */
	read_back(dirfd, "pages-1.img", data, total, (size_t[]){ total / PG }, 1);
	read_back(dirfd, "pages-1.img", data, total, (size_t[]){ 1 }, 1);
	free(data);
}

static void test_round_trip_uncompressed(void **state)
{
	struct tmpdir_fixture *f = *state;

	round_trip(f->dirfd, false);
	assert_true(file_size(f->dirfd, "pages-1.img") > 5 * MIB + 3 * PG);
}

static void test_round_trip_compressed(void **state)
{
	struct tmpdir_fixture *f = *state;

	round_trip(f->dirfd, true);
	assert_true(file_size(f->dirfd, "pages-1.img") < 2 * MIB);
}

static void test_round_trip_async_io(void **state)
{
	struct tmpdir_fixture *f = *state;

	async_io = true;
	round_trip(f->dirfd, false);
	assert_int_equal(unlinkat(f->dirfd, "pages-1.img", 0), 0);
	round_trip(f->dirfd, true);
	async_io = false;
}

/* A flipped byte of page data is found by the checksum once the body was read,
 * whether it ran inline or on a thread (reading ahead), and not when
 * the caller said the image was verified already. */
static void test_damaged_data_fails_check_end(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 3 * MIB;
	unsigned char *data = malloc(total), *back = malloc(total);
	cr_error_t err = NULL;
	int fd;

	assert_non_null(data);
	assert_non_null(back);
	fill_random(data, total, 77);
	write_image(f->dirfd, "pages-9.img", false, data, total, (size_t[]){ 256 }, 1);
	fd = openat(f->dirfd, "pages-9.img", O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, (unsigned char[]){ (unsigned char)~data[MIB + 5] }, 1,
				CR_IMG_HEADER_SIZE + 2 * CHDR + MIB + 5), 1);
	close(fd);
	for (int threaded = 0; threaded < 2; threaded++) {
		struct cr_pages_reader *r = NULL;

		assert_ok(cr_pages_reader_open(f->dirfd, "pages-9.img", &r, &err), &err);
		if (threaded)
			cr_img_async(cr_pages_reader_img(r));
		assert_ok((threaded ? cr_pages_read_later : cr_pages_read)(r, back, total, &err), &err);
		assert_int_equal(cr_pages_reader_check_end(r, &err), -1);
		assert_err_has(&err, "pages-9.img", "checksum mismatch");
		cr_pages_reader_close(r);
	}
	assert_int_equal(cr_img_verify(f->dirfd, "pages-9.img", CR_IMG_PAGES, &err), -1);
	assert_err_has(&err, "pages-9.img", "checksum mismatch");
	{
		struct cr_pages_reader *r = NULL;

		assert_ok(cr_pages_reader_open(f->dirfd, "pages-9.img", &r, &err), &err);
		cr_img_hash_checked(cr_pages_reader_img(r));
		assert_ok(cr_pages_read(r, back, total, &err), &err);
		assert_ok(cr_pages_reader_check_end(r, &err), &err);
		cr_pages_reader_close(r);
	}
	free(back);
	free(data);
}

/* A page image of 8 MiB or more is verified in two halves on two threads:
 * a byte flipped in either half is found, and an intact image passes. */
static void test_verify_large_image_in_halves(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 10 * MIB;
	const off_t at[] = { CR_IMG_HEADER_SIZE + CHDR + 100, (off_t)(total - 100) };
	unsigned char *data = malloc(total);
	cr_error_t err = NULL;

	assert_non_null(data);
	fill_random(data, total, 5);
	write_image(f->dirfd, "pages-8.img", false, data, total, (size_t[]){ 256 }, 1);
	assert_ok(cr_img_verify(f->dirfd, "pages-8.img", CR_IMG_PAGES, &err), &err);
	for (size_t i = 0; i < ARRAY_SIZE(at); i++) {
		int fd = openat(f->dirfd, "pages-8.img", O_RDWR);
		unsigned char b;

		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, at[i]), 1);
		b = (unsigned char)~b;
		assert_int_equal(pwrite(fd, &b, 1, at[i]), 1);
		assert_int_equal(cr_img_verify(f->dirfd, "pages-8.img", CR_IMG_PAGES, &err), -1);
		assert_err_has(&err, "pages-8.img", "checksum mismatch");
		b = (unsigned char)~b;
		assert_int_equal(pwrite(fd, &b, 1, at[i]), 1);
		close(fd);
		assert_ok(cr_img_verify(f->dirfd, "pages-8.img", CR_IMG_PAGES, &err), &err);
	}
	free(data);
}

/* Write sizes straddle the chunk size, in both modes. */
static void test_round_trip_chunk_edges(void **state)
{
	static const size_t wpages[] = { 255, 1, 256, 257, 512, 1 };
	static const size_t rpages[] = { 256, 255, 2, 511 };
	struct tmpdir_fixture *f = *state;
	const size_t total = 4 * MIB;
	unsigned char *data = malloc(total);

	assert_non_null(data);
	fill_random(data, total, 7);
	fill_compressible(data + MIB, 2 * MIB, 9);
	write_image(f->dirfd, "raw.img", false, data, total, wpages, ARRAY_SIZE(wpages));
	read_back(f->dirfd, "raw.img", data, total, rpages, ARRAY_SIZE(rpages));
	write_image(f->dirfd, "z.img", true, data, total, wpages, ARRAY_SIZE(wpages));
	read_back(f->dirfd, "z.img", data, total, rpages, ARRAY_SIZE(rpages));
	assert_true(file_size(f->dirfd, "z.img") < file_size(f->dirfd, "raw.img") - (off_t)MIB);
	free(data);
}

static void test_compressible_shrinks(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 4 * MIB;
	unsigned char *data = malloc(total);

	assert_non_null(data);
	fill_compressible(data, total, 1);
	write_image(f->dirfd, "z.img", true, data, total, (size_t[]){ 100 }, 1);
	write_image(f->dirfd, "raw.img", false, data, total, (size_t[]){ 100 }, 1);
	assert_true(file_size(f->dirfd, "z.img") < (off_t)(total / 20));
	/* 100-page writes are large enough to go out as chunks of their own */
	assert_int_equal(file_size(f->dirfd, "raw.img"), total + (total / (100 * PG) + 1) * CHDR + EMPTY_IMG);
	read_back(f->dirfd, "z.img", data, total, (size_t[]){ 33 }, 1);
	free(data);
}

static void test_incompressible_stored_raw(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 4 * MIB;
	unsigned char *data = malloc(total);

	assert_non_null(data);
	fill_random(data, total, 1234);
	write_image(f->dirfd, "z.img", true, data, total, (size_t[]){ total / PG }, 1);
	/* four raw chunks: exactly the data plus chunk headers */
	assert_int_equal(file_size(f->dirfd, "z.img"), total + 4 * CHDR + EMPTY_IMG);
	read_back(f->dirfd, "z.img", data, total, (size_t[]){ 5 }, 1);
	free(data);
}

/* Page-sized writes are gathered into full chunks. */
static void test_small_writes_batched(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 4 * MIB;
	unsigned char *data = malloc(total);

	assert_non_null(data);
	fill_random(data, total, 99);
	write_image(f->dirfd, "raw.img", false, data, total, (size_t[]){ 1 }, 1);
	assert_int_equal(file_size(f->dirfd, "raw.img"), total + 4 * CHDR + EMPTY_IMG);
	read_back(f->dirfd, "raw.img", data, total, (size_t[]){ 1000 }, 1);
	free(data);
}

static void test_empty(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_pages_writer *w = NULL;
	struct cr_pages_reader *r = NULL;
	cr_error_t err = NULL;
	unsigned char page[PG];

	assert_ok(cr_pages_writer_open(f->dirfd, "pages-0.img", true, &w, &err), &err);
	assert_ok(cr_pages_write(w, page, 0, &err), &err);
	assert_true(cr_pages_written(w) == 0);
	assert_ok(cr_pages_writer_finish(w, &err), &err);
	assert_int_equal(file_size(f->dirfd, "pages-0.img"), EMPTY_IMG);
	assert_ok(cr_pages_reader_open(f->dirfd, "pages-0.img", &r, &err), &err);
	assert_ok(cr_pages_reader_check_end(r, &err), &err);
	assert_ok(cr_pages_read(r, page, 0, &err), &err);
	assert_int_equal(cr_pages_read(r, page, PG, &err), -1);
	assert_err_has(&err, "pages-0.img", "page data ends at offset " BODY_AT);
	cr_pages_reader_close(r);
}

static void test_write_whole_pages_only(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_pages_writer *w = NULL;
	cr_error_t err = NULL;
	static unsigned char buf[2 * PG];

	assert_ok(cr_pages_writer_open(f->dirfd, "pages-2.img", false, &w, &err), &err);
	assert_int_equal(cr_pages_write(w, buf, 100, &err), -1);
	assert_err_has(&err, "pages-2.img", "whole number of pages");
	assert_int_equal(cr_pages_write(w, buf, PG + 1, &err), -1);
	assert_err_has(&err, "pages-2.img", NULL);
	assert_true(cr_pages_written(w) == 0);
	cr_pages_writer_abort(w);
}

static void test_abort_removes_file(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_pages_writer *w = NULL;
	cr_error_t err = NULL;
	unsigned char *data = calloc(1, 3 * MIB);

	assert_non_null(data);
	assert_ok(cr_pages_writer_open(f->dirfd, "pages-3.img", true, &w, &err), &err);
	assert_ok(cr_pages_write(w, data, 3 * MIB, &err), &err);
	assert_int_equal(faccessat(f->dirfd, "pages-3.img", F_OK, 0), 0);
	cr_pages_writer_abort(w);
	assert_int_equal(faccessat(f->dirfd, "pages-3.img", F_OK, 0), -1);
	assert_int_equal(errno, ENOENT);
	cr_pages_writer_abort(NULL);

	/* an existing image is refused and left in place */
	write_image(f->dirfd, "pages-3.img", false, data, 2 * PG, (size_t[]){ 2 }, 1);
	assert_int_equal(cr_pages_writer_open(f->dirfd, "pages-3.img", false, &w, &err), -1);
	assert_null(w);
	assert_err_has(&err, "pages-3.img", "exists");
	read_back(f->dirfd, "pages-3.img", data, 2 * PG, (size_t[]){ 1 }, 1);
	free(data);
}

static void test_read_past_end(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_pages_reader *r = NULL;
	cr_error_t err = NULL;
	unsigned char data[9 * PG], back[9 * PG];

	for (int compress = 0; compress < 2; compress++) {
		fill_compressible(data, sizeof(data), 5);
		unlinkat(f->dirfd, "pages-4.img", 0);
		write_image(f->dirfd, "pages-4.img", compress, data, 8 * PG, (size_t[]){ 8 }, 1);
		assert_ok(cr_pages_reader_open(f->dirfd, "pages-4.img", &r, &err), &err);
		assert_int_equal(cr_pages_read(r, back, 9 * PG, &err), -1);
		assert_err_has(&err, "pages-4.img", "4096 more bytes wanted");
		cr_pages_reader_close(r);

		assert_ok(cr_pages_reader_open(f->dirfd, "pages-4.img", &r, &err), &err);
		assert_ok(cr_pages_read(r, back, 8 * PG, &err), &err);
		assert_memory_equal(data, back, 8 * PG);
		assert_int_equal(cr_pages_read(r, back, PG, &err), -1);
		assert_err_has(&err, "pages-4.img", "page data ends");
		cr_pages_reader_close(r);
	}
}

static void test_check_end_detects_leftovers(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct cr_pages_reader *r = NULL;
	cr_error_t err = NULL;
	size_t total = MIB + PG;
	unsigned char *data = malloc(total), *back = malloc(total);

	assert_true(data && back);
	fill_compressible(data, total, 2);
	for (int compress = 0; compress < 2; compress++) {
		unlinkat(f->dirfd, "pages-5.img", 0);
		write_image(f->dirfd, "pages-5.img", compress, data, total, (size_t[]){ 1 }, 1);
		/* part of a chunk left */
		assert_ok(cr_pages_reader_open(f->dirfd, "pages-5.img", &r, &err), &err);
		assert_ok(cr_pages_read(r, back, 5 * PG, &err), &err);
		assert_int_equal(cr_pages_reader_check_end(r, &err), -1);
		assert_err_has(&err, "pages-5.img", "left unread");
		cr_pages_reader_close(r);
		/* a whole chunk left */
		assert_ok(cr_pages_reader_open(f->dirfd, "pages-5.img", &r, &err), &err);
		assert_ok(cr_pages_read(r, back, MIB, &err), &err);
		assert_int_equal(cr_pages_reader_check_end(r, &err), -1);
		assert_err_has(&err, "pages-5.img", "left unread");
		assert_ok(cr_pages_read(r, back + MIB, PG, &err), &err);
		assert_memory_equal(data, back, total);
		assert_ok(cr_pages_reader_check_end(r, &err), &err);
		cr_pages_reader_close(r);
	}
	/* one compressed chunk: what is left is only in the inflated buffer */
	unlinkat(f->dirfd, "pages-5.img", 0);
	write_image(f->dirfd, "pages-5.img", true, data, 10 * PG, (size_t[]){ 10 }, 1);
	assert_ok(cr_pages_reader_open(f->dirfd, "pages-5.img", &r, &err), &err);
	assert_ok(cr_pages_read(r, back, 5 * PG, &err), &err);
	assert_int_equal(cr_pages_reader_check_end(r, &err), -1);
	assert_err_has(&err, "pages-5.img", "chunk at offset " BODY_AT ": 20480 bytes of page data left unread");
	assert_ok(cr_pages_read(r, back + 5 * PG, 5 * PG, &err), &err);
	assert_ok(cr_pages_reader_check_end(r, &err), &err);
	assert_memory_equal(data, back, 10 * PG);
	cr_pages_reader_close(r);
	free(data);
	free(back);
}

/* --- hand-made chunks ------------------------------------------------------ */

struct body {
	unsigned char *p;
	size_t len;
};

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void add(struct body *b, const void *data, size_t len)
{
	b->p = realloc(b->p, b->len + len);
	assert_non_null(b->p);
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void add_hdr(struct body *b, uint32_t raw, uint32_t stored, uint32_t flags, uint32_t reserved)
{
	unsigned char h[CHDR];

	put32(h, raw);
	put32(h + 4, stored);
	put32(h + 8, flags);
	put32(h + 12, reserved);
	add(b, h, sizeof(h));
}

static void add_raw_chunk(struct body *b, uint32_t pages)
{
	unsigned char *data = calloc(pages, PG);

	assert_non_null(data);
	add_hdr(b, pages * PG, pages * PG, 0, 0);
	add(b, data, pages * PG);
	free(data);
}

/* A zlib chunk of raw_len whose compressed stream expands to plain_len bytes,
 * with extra bytes of junk after the stream. */
static void add_zlib_chunk(struct body *b, uint32_t raw_len, size_t plain_len, size_t junk)
{
	unsigned char *plain = calloc(1, plain_len), z[8192] = { 0 };
	uLongf zlen = sizeof(z) - junk;

	assert_non_null(plain);
	assert_int_equal(compress2(z, &zlen, plain, plain_len, 1), Z_OK);
	add_hdr(b, raw_len, (uint32_t)(zlen + junk), CR_CHUNK_ZLIB, 0);
	add(b, z, zlen + junk);
	free(plain);
}

/* Writes body as the page image name (a valid image around it). */
static void craft(int dirfd, const char *name, struct body *b)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	unlinkat(dirfd, name, 0);
	assert_ok(cr_img_create(dirfd, name, CR_IMG_PAGES, &img, &err), &err);
	assert_ok(cr_img_write_raw(img, b->p, b->len, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
	free(b->p);
	b->p = NULL;
	b->len = 0;
}

static void expect_read_refused(int dirfd, const char *name, size_t len, const char *what)
{
	struct cr_pages_reader *r = NULL;
	unsigned char *buf = malloc(len);
	cr_error_t err = NULL;

	assert_non_null(buf);
	assert_ok(cr_pages_reader_open(dirfd, name, &r, &err), &err);
	assert_int_equal(cr_pages_read(r, buf, len, &err), -1);
	assert_err_has(&err, name, what);
	cr_pages_reader_close(r);
	free(buf);
}

static void test_bad_chunk_headers(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct body b = { 0 };
	const int d = f->dirfd;
	char want[80];

	add_hdr(&b, 5000, 5000, 0, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "chunk at offset " BODY_AT ": raw length 5000 is not a positive multiple");

	add_hdr(&b, 0, 0, 0, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "raw length 0 is not");

	add_hdr(&b, 2 * MIB, 0, CR_CHUNK_ZLIB, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "exceeds the chunk limit");

	add_hdr(&b, PG, PG - 1, 0, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "uncompressed chunk stores 4095 bytes");

	add_hdr(&b, PG, PG + 1, CR_CHUNK_ZLIB, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "compressed length 4097 exceeds raw length 4096");

	add_hdr(&b, PG, 10, CR_CHUNK_ZLIB, 1);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "reserved field");

	add_hdr(&b, PG, PG, 2, 0);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "unknown flags 0x2");

	add_hdr(&b, PG, PG, 0, 0);
	add(&b, "0123456789", 10);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "truncated: 4096 bytes stored, 10 left");

	add(&b, "01234567", 8);
	craft(d, "pages-7.img", &b);
	expect_read_refused(d, "pages-7.img", PG, "truncated header (8 of 16 bytes)");

	/* the second chunk is the bad one: its offset is named */
	add_raw_chunk(&b, 1);
	add_hdr(&b, PG, PG, 0, 7);
	craft(d, "pages-7.img", &b);
	snprintf(want, sizeof(want), "chunk at offset %u: reserved field is 0x7", CR_IMG_HEADER_SIZE + CHDR + PG);
	expect_read_refused(d, "pages-7.img", 2 * PG, want);
}

static void test_bad_compressed_chunks(void **state)
{
	struct tmpdir_fixture *f = *state;
	struct body b = { 0 };
	const int d = f->dirfd;
	unsigned char junk[64];

	add_zlib_chunk(&b, 2 * PG, PG, 0);
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", 2 * PG, "expands to 4096 bytes, expected 8192");

	add_zlib_chunk(&b, PG, 2 * PG, 0);
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", PG, "expands past raw length 4096");

	add_zlib_chunk(&b, PG, PG, 3);
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", PG, "3 bytes follow the compressed stream");

	fill_random(junk, sizeof(junk), 5);
	add_hdr(&b, PG, sizeof(junk), CR_CHUNK_ZLIB, 0);
	add(&b, junk, sizeof(junk));
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", PG, "chunk at offset " BODY_AT ": corrupt compressed data");

	/* a stream cut short */
	add_zlib_chunk(&b, PG, PG, 0);
	put32(b.p + 4, (uint32_t)(b.len - CHDR - 5));
	b.len -= 5;
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", PG, "corrupt compressed data");

	add_hdr(&b, PG, 0, CR_CHUNK_ZLIB, 0);
	craft(d, "pages-8.img", &b);
	expect_read_refused(d, "pages-8.img", PG, "corrupt compressed data");
}

/* Damage inside real compressed chunks: the reader refuses, and so does
 * cr_img_verify (which the reader leaves to its caller).  The data has no
 * period, so a damaged distance code cannot copy identical bytes by luck. */
static void test_corrupt_compressed_data(void **state)
{
	struct tmpdir_fixture *f = *state;
	const size_t total = 2 * MIB;
	unsigned char *data = malloc(total), *file;
	cr_error_t err = NULL;
	uint32_t stored;
	size_t len;

	assert_non_null(data);
	fill_random(data, total, 77);
	for (size_t i = 0; i < total; i++)
		data[i] &= 3;
	write_image(f->dirfd, "pages-9.img", true, data, total, (size_t[]){ 512 }, 1);
	assert_ok(read_whole_file_at(f->dirfd, "pages-9.img", (char **)&file, &len, &err), &err);
	assert_int_equal(file[CR_IMG_HEADER_SIZE + 8], CR_CHUNK_ZLIB);
	stored = (uint32_t)file[CR_IMG_HEADER_SIZE + 4] | (uint32_t)file[CR_IMG_HEADER_SIZE + 5] << 8 |
		 (uint32_t)file[CR_IMG_HEADER_SIZE + 6] << 16;
	assert_true(stored > 1000 && stored < MIB / 2);
	/* zlib header, the middle, and the adler32 check at the end */
	const size_t spots[] = { 0, 1, stored / 4, stored / 2, stored * 3 / 4, stored - 4, stored - 1 };
	for (size_t k = 0; k < ARRAY_SIZE(spots); k++) {
		size_t at = CR_IMG_HEADER_SIZE + CHDR + spots[k];
		int fd;

		file[at] ^= 0x10;
		fd = openat(f->dirfd, "bad.img", O_CREAT | O_TRUNC | O_WRONLY, 0600);
		assert_true(fd >= 0);
		assert_ok(write_all(fd, file, len, &err), &err);
		close(fd);
		file[at] ^= 0x10;
		expect_read_refused(f->dirfd, "bad.img", total, "chunk at offset " BODY_AT ": corrupt compressed data");
		assert_int_equal(cr_img_verify(f->dirfd, "bad.img", CR_IMG_PAGES, &err), -1);
		assert_err_has(&err, "bad.img", "checksum mismatch");
	}
	free(file);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_uncompressed, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_compressed, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_async_io, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_data_fails_check_end, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_verify_large_image_in_halves, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_round_trip_chunk_edges, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_compressible_shrinks, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_incompressible_stored_raw, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_small_writes_batched, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_empty, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_write_whole_pages_only, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_abort_removes_file, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_read_past_end, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_check_end_detects_leftovers, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunk_headers, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_bad_compressed_chunks, tmpdir_setup, tmpdir_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_compressed_data, tmpdir_setup, tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
