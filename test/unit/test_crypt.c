/* Encrypted images: records that open only as sealed, and whole images
 * (messages and page data) that round-trip under a key and are refused,
 * naming the file, when changed, cut, renamed, keyless or wrongly keyed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"
#include "tmpdir.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "img/crypt.h"
#include "img/image.h"
#include "img/pages.h"
#include "os/util.h"
#include "inventory.pb-c.h"

#define PG  4096u
#define MIB (1u << 20)

static struct cr_image_key key_a, key_b;

static int keys_setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_keygen(key_a.k);
	crypto_aead_xchacha20poly1305_ietf_keygen(key_b.k);
	return 0;
}

static int crypt_teardown(void **state)
{
	img_crypt_use(NULL);
	return tmpdir_teardown(state);
}

/* --- records ----------------------------------------------------------------- */

static void test_record_opens_only_as_sealed(void **state)
{
	unsigned char header[CR_CRYPT_HEADER] = "CRIM-some-header-bytes-here";
	unsigned char clear[CR_CRYPT_CLEAR], rec[CR_CRYPT_TAG + 100], copy[sizeof(rec)];
	const char *msg = "page data that must not be readable";

	(void)state;
	img_crypt_clear_new(clear, header, &key_a);
	assert_memory_equal(clear, header, CR_CRYPT_HEADER);
	memcpy(rec + CR_CRYPT_TAG, msg, strlen(msg));
	img_crypt_seal(rec, strlen(msg), 7, false, clear, "pages-1.img", &key_a);
	assert_null(memmem(rec, sizeof(rec), "readable", 8));
	memcpy(copy, rec, sizeof(rec));
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 7, false, clear, "pages-1.img", &key_a), 0);
	assert_memory_equal(copy + CR_CRYPT_TAG, msg, strlen(msg));

	memcpy(copy, rec, sizeof(rec));   /* another index, the last flag, name, key */
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 8, false, clear, "pages-1.img", &key_a), -1);
	memcpy(copy, rec, sizeof(rec));
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 7, true, clear, "pages-1.img", &key_a), -1);
	memcpy(copy, rec, sizeof(rec));
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 7, false, clear, "pages-2.img", &key_a), -1);
	memcpy(copy, rec, sizeof(rec));
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 7, false, clear, "pages-1.img", &key_b), -1);
	memcpy(copy, rec, sizeof(rec));   /* a changed clear byte (the dump id) */
	clear[20] ^= 1;
	assert_int_equal(img_crypt_open_record(copy, strlen(msg), 7, false, clear, "pages-1.img", &key_a), -1);
}

static void test_plain_size_layouts(void **state)
{
	const uint64_t rec = CR_CRYPT_RECORD + CR_CRYPT_TAG;

	(void)state;
	assert_int_equal(img_crypt_plain_size(0), -1);
	assert_int_equal(img_crypt_plain_size(CR_CRYPT_TAG - 1), -1);
	assert_int_equal(img_crypt_plain_size(CR_CRYPT_TAG), 0);
	assert_int_equal(img_crypt_plain_size(CR_CRYPT_TAG + 5), 5);
	assert_int_equal(img_crypt_plain_size(rec), CR_CRYPT_RECORD);
	assert_int_equal(img_crypt_plain_size(rec + CR_CRYPT_TAG - 1), -1);
	assert_int_equal(img_crypt_plain_size(2 * rec + CR_CRYPT_TAG + 1), 2 * CR_CRYPT_RECORD + 1);
}

/* --- whole images ---------------------------------------------------------------- */

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i / PG) * 7 + seed + (i % 13 == 0 ? i : 0));
	for (size_t i = 0; i + 16 < len; i += 100 * PG + 123)
		memcpy(p + i, "SECRET-MARKER-42", 16);
}

static void write_pages(int dirfd, const char *name, const unsigned char *data, size_t len, bool compress,
			bool async)
{
	struct cr_pages_writer *w = NULL;
	cr_error_t err = NULL;

	assert_ok(cr_pages_writer_open(dirfd, name, compress, &w, &err), &err);
	if (async)
		cr_img_async(cr_pages_writer_img(w));
	for (size_t off = 0; off < len; off += 37 * PG) {
		size_t n = len - off < 37 * PG ? len - off : 37 * PG;

		assert_ok(cr_pages_write(w, data + off, n, &err), &err);
	}
	assert_ok(cr_pages_writer_finish(w, &err), &err);
}

static void read_pages(int dirfd, const char *name, const unsigned char *data, size_t len, bool async)
{
	struct cr_pages_reader *r = NULL;
	unsigned char *back = malloc(len);
	cr_error_t err = NULL;
	uint64_t raw = 0;

	assert_non_null(back);
	assert_ok(cr_img_verify(dirfd, name, CR_IMG_PAGES, &err), &err);
	assert_ok(cr_pages_scan(dirfd, name, &raw, &err), &err);
	assert_int_equal(raw, len);
	assert_ok(cr_pages_reader_open(dirfd, name, &r, &err), &err);
	if (async)
		cr_img_async(cr_pages_reader_img(r));
	for (size_t off = 0; off < len; off += 51 * PG) {
		size_t n = len - off < 51 * PG ? len - off : 51 * PG;

		assert_ok((async ? cr_pages_read_later : cr_pages_read)(r, back + off, n, &err), &err);
	}
	assert_ok(cr_img_wait(cr_pages_reader_img(r), cr_img_mark(cr_pages_reader_img(r)), &err), &err);
	assert_memory_equal(data, back, len);
	assert_ok(cr_pages_reader_check_end(r, &err), &err);
	cr_pages_reader_close(r);
	free(back);
}

static bool file_has(int dirfd, const char *name, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	cr_error_t err = NULL;
	bool has;

	assert_ok(read_whole_file_at(dirfd, name, &buf, &len, &err), &err);
	has = memmem(buf, len, what, strlen(what)) != NULL;
	free(buf);
	return has;
}

static void page_round_trip(int dirfd, bool compress, bool async)
{
	const size_t len = 9 * MIB + 5 * PG;   /* large enough to verify in halves */
	unsigned char *data = malloc(len);

	assert_non_null(data);
	fill(data, len, 3);
	img_crypt_use(&key_a);
	write_pages(dirfd, "pages-1.img", data, len, compress, async);
	assert_false(file_has(dirfd, "pages-1.img", "SECRET-MARKER-42"));
	read_pages(dirfd, "pages-1.img", data, len, async);
	read_pages(dirfd, "pages-1.img", data, len, !async);
	unlinkat(dirfd, "pages-1.img", 0);
	free(data);
}

static void test_pages_round_trip(void **state)
{
	struct tmpdir_fixture *f = *state;

	page_round_trip(f->dirfd, false, false);
	page_round_trip(f->dirfd, true, false);
	page_round_trip(f->dirfd, false, true);
	page_round_trip(f->dirfd, true, true);
}

static void write_inventory(int dirfd, const char *name, const char *release)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;
	InventoryEntry e;

	inventory_entry__init(&e);
	e.kernel_release = (char *)release;
	e.arch = (char *)"x86_64";
	assert_ok(cr_img_create(dirfd, name, CR_IMG_INVENTORY, &img, &err), &err);
	for (int i = 0; i < 3000; i++)   /* several records */
		assert_ok(cr_img_write_msg(img, &e.base, &err), &err);
	assert_ok(cr_img_finish(img, &err), &err);
}

static void expect_refused(int dirfd, const char *name, const char *what)
{
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	assert_int_equal(cr_img_verify(dirfd, name, CR_IMG_INVENTORY, &err), -1);
	assert_err_has(&err, name, what);
	assert_int_equal(cr_img_open(dirfd, name, CR_IMG_INVENTORY, &img, &err), -1);
	assert_null(img);
	assert_err_has(&err, name, what);
}

static void copy_patched(int dirfd, const char *from, const char *to, off_t at, off_t cut)
{
	char *buf = NULL;
	size_t len = 0;
	cr_error_t err = NULL;
	int fd;

	assert_ok(read_whole_file_at(dirfd, from, &buf, &len, &err), &err);
	if (at >= 0)
		buf[at] ^= 0x20;
	if (cut > 0)
		len -= (size_t)cut;
	unlinkat(dirfd, to, 0);
	fd = openat(dirfd, to, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_ok(write_all(fd, buf, len, &err), &err);
	close(fd);
	free(buf);
}

static void test_messages_refused_when_damaged(void **state)
{
	struct tmpdir_fixture *f = *state;
	const off_t rec = CR_CRYPT_RECORD + CR_CRYPT_TAG;
	InventoryEntry *e = NULL;
	struct cr_img *img = NULL;
	cr_error_t err = NULL;

	img_crypt_use(&key_a);
	write_inventory(f->dirfd, "inventory.img", "SECRET-RELEASE-STRING");
	assert_false(file_has(f->dirfd, "inventory.img", "SECRET-RELEASE"));
	assert_ok(cr_img_open(f->dirfd, "inventory.img", CR_IMG_INVENTORY, &img, &err), &err);
	assert_int_equal(cr_img_read_msg(img, &inventory_entry__descriptor, (ProtobufCMessage **)&e, &err), 1);
	assert_string_equal(e->kernel_release, "SECRET-RELEASE-STRING");
	protobuf_c_message_free_unpacked(&e->base, NULL);
	cr_img_close(img);

	copy_patched(f->dirfd, "inventory.img", "a.img", CR_CRYPT_CLEAR + rec + 40, 0);   /* a record's byte */
	expect_refused(f->dirfd, "a.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "b.img", 20, 0);   /* the dump id, in the clear */
	expect_refused(f->dirfd, "b.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "c.img", 30, 0);   /* the salt */
	expect_refused(f->dirfd, "c.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "d.img", -1, rec);   /* cut at a record's end */
	expect_refused(f->dirfd, "d.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "e.img", -1, 7);   /* cut inside one */
	expect_refused(f->dirfd, "e.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "f.img", -1, 0);   /* only renamed */
	expect_refused(f->dirfd, "f.img", "does not decrypt");
	copy_patched(f->dirfd, "inventory.img", "g.img", 50, 0);   /* the key id */
	expect_refused(f->dirfd, "g.img", "encrypted with another key");

	img_crypt_use(&key_b);
	expect_refused(f->dirfd, "inventory.img", "encrypted with another key");
	img_crypt_use(NULL);
	expect_refused(f->dirfd, "inventory.img", "encrypted: give its key with --decrypt");
	write_inventory(f->dirfd, "plain.img", "x");
	img_crypt_use(&key_a);
	expect_refused(f->dirfd, "plain.img", "not encrypted, but a key was given");
}

static void test_probe(void **state)
{
	struct tmpdir_fixture *f = *state;
	char id[CR_CRYPT_KEY_ID_HEX], want[CR_CRYPT_KEY_ID_HEX];
	cr_error_t err = NULL;

	write_inventory(f->dirfd, "plain.img", "x");
	img_crypt_use(&key_b);
	write_inventory(f->dirfd, "inventory.img", "x");
	img_crypt_use(NULL);
	assert_int_equal(img_crypt_probe(f->dirfd, "plain.img", id, &err), 0);
	assert_int_equal(img_crypt_probe(f->dirfd, "inventory.img", id, &err), 1);
	assert_string_equal(id, cr_image_key_id_hex(&key_b, want));
	assert_int_equal(img_crypt_probe(f->dirfd, "none.img", id, &err), -1);
	assert_err_has(&err, "none.img", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_opens_only_as_sealed),
		cmocka_unit_test(test_plain_size_layouts),
		cmocka_unit_test_setup_teardown(test_pages_round_trip, tmpdir_setup, crypt_teardown),
		cmocka_unit_test_setup_teardown(test_messages_refused_when_damaged, tmpdir_setup, crypt_teardown),
		cmocka_unit_test_setup_teardown(test_probe, tmpdir_setup, crypt_teardown),
	};

	return cmocka_run_group_tests(tests, keys_setup, NULL);
}
