/* libFuzzer target: arbitrary bytes as an image file (see fuzz_image.h).
 *
 *   make fuzz [FUZZ_SECONDS=60]     builds it with clang and runs it
 *
 * The input is written to a file in a private temporary directory (the
 * image API reads files by name) and given to every reader: once as it is,
 * and once with its trailer replaced by one that matches (magic,
 * checksum, body length), so that mutations get past the checksum and reach
 * the frame, message and chunk decoders.  The messages decoded with each
 * descriptor are also put together as the images of one process and shown
 * with cr show's readable summary, so that it meets hostile values too.  Besides
 * memory errors and undefined behaviour (ASan, UBSan), the target checks
 * that the readers agree: what cr_img_verify accepts cr_img_open accepts,
 * and the pages reader hands out the same pages whether asked for one page
 * at a time or for all at once. */
#include "fuzz_image.h"

#include "img/image.h"
#include "img/bytes.h"
#include "img/hash.h"
#include "cmd/json.h"
#include "img/pages.h"
#include "cmd/show.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INPUT_NAME  "input.img"
#define PAGE        4096u
#define PAGE_BUDGET (4u << 20)   /* page data read per input, at most */
#define KEEP_MAX    4096         /* messages kept per descriptor for the summary */

/* Every image kind of the table (img/kinds.h), in its order. */
#define N_KINDS img_n_kinds
#define kinds img_kinds

/* The frames of the input decoded as one kind of message. */
struct decoded {
	ProtobufCMessage **msgs;
	size_t n;
	bool complete;         /* every frame decoded */
};

static char dir_path[64];
static int dirfd_ = -1;
static FILE *devnull;
static unsigned char *page_buf;

static void remove_dir(void)
{
	if (dirfd_ >= 0)
		unlinkat(dirfd_, INPUT_NAME, 0);
	rmdir(dir_path);
}

static void setup_once(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	if (dirfd_ >= 0)
		return;
	snprintf(dir_path, sizeof(dir_path), "%s/cr-fuzz-XXXXXX", base);
	if (mkdtemp(dir_path) == NULL)
		abort();
	dirfd_ = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	devnull = fopen("/dev/null", "w");
	page_buf = malloc(PAGE_BUDGET);
	if (dirfd_ < 0 || devnull == NULL || page_buf == NULL)
		abort();
	atexit(remove_dir);
}

static void write_input(const uint8_t *data, size_t size)
{
	int fd = openat(dirfd_, INPUT_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		abort();
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);

		if (n <= 0)
			abort();
		done += (size_t)n;
	}
	close(fd);
}

static bool ok(int ret, cr_error_t *err)
{
	/* A refusal must say which file it is about. */
	if (ret < 0 && (*err == NULL || (*err)->msg == NULL || strstr((*err)->msg, INPUT_NAME) == NULL)) {
		fprintf(stderr, "error without the file's name: %s\n", *err && (*err)->msg ? (*err)->msg : "(none)");
		abort();
	}
	cr_error_release(err);
	return ret >= 0;
}

static void keep(struct decoded *dec, ProtobufCMessage *m)
{
	if (dec->n == KEEP_MAX) {
		protobuf_c_message_free_unpacked(m, NULL);
		return;
	}
	if (dec->msgs == NULL)
		dec->msgs = malloc(KEEP_MAX * sizeof(*dec->msgs));
	if (dec->msgs == NULL)
		abort();
	dec->msgs[dec->n++] = m;
}

/* Decodes every frame as desc, encoding each as JSON, into dec. */
static void read_messages(uint32_t kind, const ProtobufCMessageDescriptor *desc, struct cr_fuzz_result *res,
			  struct decoded *dec)
{
	struct cr_img *img = NULL;
	ProtobufCMessage *m;
	cr_error_t err = NULL;
	struct json_writer w;
	int r;

	if (!ok(cr_img_open(dirfd_, INPUT_NAME, kind, &img, &err), &err))
		return;
	json_init(&w, devnull, true);
	while ((r = cr_img_read_msg(img, desc, &m, &err)) == 1) {
		json_message(&w, m);
		keep(dec, m);
		res->messages++;
	}
	cr_img_close(img);
	dec->complete = ok(r, &err);
}

/* The decodings that went to the end, as the images of process 1. */
static void summarize(const struct decoded *dec)
{
	struct show_image images[CR_IMG_N];
	struct show_dump d = { .dir = dir_path, .images = images };

	for (size_t j = 0; j < N_KINDS; j++) {
		if (kinds[j].desc == NULL || !dec[j].complete)
			continue;
		images[d.n_images++] = (struct show_image){ .name = INPUT_NAME, .type = &kinds[j],
							   .pid = img_per_task(&kinds[j]) ? 1 : 0, .loaded = true,
							   .msgs = dec[j].msgs, .n_msgs = dec[j].n };
	}
	show_summary(devnull, &d);
}

static void free_decoded(struct decoded *dec)
{
	for (size_t i = 0; i < dec->n; i++)
		protobuf_c_message_free_unpacked(dec->msgs[i], NULL);
	free(dec->msgs);
}

static void check_messages(uint32_t k, struct cr_fuzz_result *res)
{
	struct decoded dec[CR_IMG_N] = { { 0 } };
	bool verified = res->verified & (1u << kinds[k].kind), opened = res->opened & (1u << kinds[k].kind);

	if (verified != opened) {
		fprintf(stderr, "%s image: verify %s it, open %s it\n", cr_img_kind_name(kinds[k].kind),
			verified ? "accepts" : "refuses", opened ? "accepts" : "refuses");
		abort();
	}
	if (!opened)
		return;
	/* The same frames as every kind of message, its own first. */
	read_messages(kinds[k].kind, kinds[k].desc, res, &dec[k]);
	if (dec[k].complete)
		res->read_to_end |= 1u << kinds[k].kind;
	for (size_t j = 0; j < N_KINDS; j++)
		if (j != k && kinds[j].desc != NULL)
			read_messages(kinds[k].kind, kinds[j].desc, res, &dec[j]);
	summarize(dec);
	for (size_t j = 0; j < N_KINDS; j++)
		free_decoded(&dec[j]);
}

/* Pages one at a time until the data ends or the budget is spent. */
static uint64_t pages_one_by_one(uint32_t kind)
{
	struct cr_pages_reader *r = NULL;
	cr_error_t err = NULL;
	uint64_t got = 0;

	if (!ok(cr_pages_reader_open_as(dirfd_, INPUT_NAME, kind, &r, &err), &err))
		return 0;
	while (got + PAGE <= PAGE_BUDGET && ok(cr_pages_read(r, page_buf, PAGE, &err), &err))
		got += PAGE;
	cr_pages_reader_close(r);
	return got;
}

/* The same pages in one read must come out the same; then is that all? */
static void pages_at_once(uint32_t kind, uint64_t len, struct cr_fuzz_result *res)
{
	struct cr_pages_reader *r = NULL;
	cr_error_t err = NULL;

	if (!ok(cr_pages_reader_open_as(dirfd_, INPUT_NAME, kind, &r, &err), &err))
		abort();   /* it opened a moment ago */
	if (len > 0 && !ok(cr_pages_read(r, page_buf, len, &err), &err)) {
		fprintf(stderr, "%llu bytes of pages read page by page, but not at once\n", (unsigned long long)len);
		abort();
	}
	res->pages_complete = ok(cr_pages_reader_check_end(r, &err), &err);
	cr_pages_reader_close(r);
}

/* Every kind of page data (pages, shmem-pages) has the same chunks. */
static void check_pages(struct cr_fuzz_result *res)
{
	for (size_t k = 0; k < N_KINDS; k++) {
		uint32_t kind = kinds[k].kind;
		bool verified = res->verified & (1u << kind), opened = res->opened & (1u << kind);

		if (!(kinds[k].shape & IMG_PAGES))
			continue;
		if (verified && !opened) {
			fprintf(stderr, "%s image: verify accepts it, open refuses it\n", cr_img_kind_name(kind));
			abort();
		}
		if (!opened)
			continue;
		res->page_bytes = pages_one_by_one(kind);
		if (res->page_bytes < PAGE_BUDGET)
			pages_at_once(kind, res->page_bytes, res);
	}
}

void cr_fuzz_image(const uint8_t *data, size_t size, struct cr_fuzz_result *res)
{
	struct cr_fuzz_result local;

	setup_once();
	if (res == NULL)
		res = &local;
	memset(res, 0, sizeof(*res));
	write_input(data, size);
	for (size_t k = 0; k < N_KINDS; k++) {
		struct cr_img *img = NULL;
		cr_error_t err = NULL;

		if (ok(cr_img_verify(dirfd_, INPUT_NAME, kinds[k].kind, &err), &err))
			res->verified |= 1u << kinds[k].kind;
		if (ok(cr_img_open(dirfd_, INPUT_NAME, kinds[k].kind, &img, &err), &err))
			res->opened |= 1u << kinds[k].kind;
		cr_img_close(img);
	}
	for (size_t k = 0; k < N_KINDS; k++)
		if (kinds[k].desc != NULL)
			check_messages(k, res);
	check_pages(res);
}

/* data with a trailer that matches the rest of it. */
static void fuzz_repaired(const uint8_t *data, size_t size)
{
	size_t body = size - CR_IMG_TRAILER_SIZE;
	unsigned char *copy = malloc(size);
	uint64_t body_len = body - CR_IMG_HEADER_SIZE;

	if (copy == NULL)
		abort();
	memcpy(copy, data, body);
	put_le32(copy + body, CR_IMG_TRAILER_MAGIC);
	put_le64(copy + body + CR_IMG_TRAILER_HASH, img_hash_buf(copy, body));
	put_le64(copy + body + CR_IMG_TRAILER_BODY_LEN, body_len);
	cr_fuzz_image(copy, size, NULL);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cr_fuzz_image(data, size, NULL);
	if (size >= CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE)
		fuzz_repaired(data, size);
	return 0;
}
