/* cr show [-D] DIR [--json]: decodes every image of a dump, read-only.
 *
 * Every *.img file of the directory is decoded through the image API (which
 * checks its header, trailer, checksum and framing); message images are
 * decoded completely, page images are walked chunk by chunk.  A file that
 * cannot be decoded, one the inventory needs but that is missing, and sizes
 * that do not add up are reported by name on stderr, and make the exit
 * status 1; everything that could be decoded is still shown. */
#include "cmd/commands.h"
#include "img/dir.h"
#include "img/dumpid.h"
#include "img/image.h"
#include "img/crypt.h"
#include "img/round.h"
#include "img/sign.h"
#include "cmd/json.h"
#include "img/pages.h"
#include "cmd/show.h"
#include "os/util.h"
#include "os/xalloc.h"

#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pstree.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

static const char show_usage[] =
	"usage: cr show [-D] DIR [--json] [--verify KEYFILE.pub] [--decrypt KEYFILE]\n"
	"\n"
	"Prints what the dump in DIR holds: the inventory, the process tree with\n"
	"pids at every namespace level, threads, memory mappings, page counts,\n"
	"file descriptors, timers and pending signals, and whether the dump is\n"
	"signed or encrypted.  Never changes the images.  Without --decrypt, an\n"
	"encrypted dump shows only that it is encrypted and with which key (id),\n"
	"and whether it is signed.\n"
	"\n"
	"  -D, --images-dir DIR  the dump to show\n"
	"      --json            decode every image completely, as one JSON object\n"
	"      --verify KEYFILE  check the dump's signature with this public key\n"
	"                        and every image against its signed hash, and\n"
	"                        so each pre-copy round before it (the first\n"
	"                        that fails is named)\n"
	"      --decrypt KEYFILE decrypt the images with this image key\n"
	"  -h, --help            this text\n"
	"\n"
	"Exit status: 0 when every image decoded, 1 when an image is damaged or\n"
	"missing (each named on stderr) or does not decrypt with the key given,\n"
	"2 for a usage error.  An encrypted dump shown without its key: 0.\n";

/* --- problems ------------------------------------------------------------- */

static void add_error(struct show_dump *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_error(struct show_dump *d, const char *fmt, ...)
{
	va_list ap;

	d->errors = xreallocarray(d->errors, d->n_errors + 1, sizeof(*d->errors));
	va_start(ap, fmt);
	d->errors[d->n_errors++] = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Records err as the image's error (and the dump's); releases err. */
static void image_failed(struct show_dump *d, struct show_image *im, cr_error_t *err)
{
	const char *msg = *err != NULL && (*err)->msg != NULL ? (*err)->msg : "unreadable";

	/* Errors of the image API start with the file's name already. */
	if (strncmp(msg, im->name, strlen(im->name)) == 0)
		im->error = xstrdup(msg);
	else
		im->error = xasprintf("%s: %s", im->name, msg);
	add_error(d, "%s", im->error);
	cr_error_release(err);
}

/* --- finding the image files ------------------------------------------------- */

static size_t type_index(const struct img_kind *t)
{
	return (size_t)(t - img_kinds);
}

/* Shared images first, then each process's in pid order. */
static int image_cmp(const void *a, const void *b)
{
	const struct show_image *x = a, *y = b;

	if (img_per_task(x->type) != img_per_task(y->type))
		return img_per_task(x->type) ? 1 : -1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return type_index(x->type) < type_index(y->type) ? -1 : type_index(x->type) > type_index(y->type);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void push_name(char ***v, size_t *n, const char *name)
{
	*v = xreallocarray(*v, *n + 1, sizeof(**v));
	(*v)[(*n)++] = xstrdup(name);
}

static void add_image(struct show_dump *d, const char *name, const struct img_kind *t, pid_t pid)
{
	struct show_image *im;

	d->images = xreallocarray(d->images, d->n_images + 1, sizeof(*d->images));
	im = &d->images[d->n_images++];
	memset(im, 0, sizeof(*im));
	im->name = xstrdup(name);
	im->type = t;
	im->pid = pid;
}

static int list_images(struct show_dump *d, int dirfd, cr_error_t *err)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	cleanup_closedir DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dir == NULL) {
		if (fd >= 0)
			close(fd);
		return cr_error(err, errno, "read directory %s", d->dir);
	}
	while ((errno = 0, de = readdir(dir)) != NULL) {
		const struct img_kind *t;
		size_t len = strlen(de->d_name);
		pid_t pid;

		if (len < 5 || strcmp(de->d_name + len - 4, ".img") != 0)
			continue;
		t = img_kind_of_name(de->d_name, &pid);
		if (t == NULL)
			push_name(&d->unknown, &d->n_unknown, de->d_name);
		else
			add_image(d, de->d_name, t, pid);
	}
	if (errno != 0)
		return cr_error(err, errno, "read directory %s", d->dir);
	if (d->n_images > 1)   /* qsort must not be given NULL, even for nothing */
		qsort(d->images, d->n_images, sizeof(*d->images), image_cmp);
	if (d->n_unknown > 1)
		qsort(d->unknown, d->n_unknown, sizeof(*d->unknown), str_cmp);
	return 0;
}

/* --- decoding ---------------------------------------------------------------- */

static void push_msg(struct show_image *im, ProtobufCMessage *m)
{
	im->msgs = xreallocarray(im->msgs, im->n_msgs + 1, sizeof(*im->msgs));
	im->msgs[im->n_msgs++] = m;
}

static int load_messages(int dirfd, struct show_image *im, cr_error_t *err)
{
	cleanup_img_close struct cr_img *img = NULL;
	ProtobufCMessage *m;
	int r;

	if (cr_img_open(dirfd, im->name, im->type->kind, &img, err) < 0)
		return -1;
	while ((r = cr_img_read_msg(img, im->type->desc, &m, err)) == 1)
		push_msg(im, m);
	if (r < 0)
		return -1;
	if ((im->type->shape & IMG_ONE) && im->n_msgs != 1)
		return cr_error(err, 0, "%s: holds %zu %s messages, a %s image holds exactly one", im->name,
				im->n_msgs, im->type->desc->name, im->type->file);
	return 0;
}

static void push_chunk(struct show_pages *p, const struct show_chunk *c)
{
	p->chunks = xreallocarray(p->chunks, p->n_chunks + 1, sizeof(*p->chunks));
	p->chunks[p->n_chunks++] = *c;
	p->raw_bytes += c->raw_len;
	p->stored_bytes += c->stored_len;
	p->n_zlib += c->zlib;
}

/* Reads one chunk header and skips its data. */
static int next_chunk(struct cr_img *img, const char *name, unsigned char *skip, struct show_pages *p,
		      cr_error_t *err)
{
	unsigned char buf[CR_CHUNK_HDR_SIZE];
	struct show_chunk c = { .offset = cr_img_raw_offset(img) };
	struct cr_chunk_hdr h;
	uint64_t left = 0;
	char why[160];

	cr_img_body_left(img, &left);
	if (left < CR_CHUNK_HDR_SIZE)
		return cr_error(err, 0, "%s: chunk at offset %" PRIu64 ": truncated header (%" PRIu64
				" of %u bytes)", name, c.offset, left, CR_CHUNK_HDR_SIZE);
	if (cr_img_read_raw(img, buf, sizeof(buf), err) < 0)
		return -1;
	cr_chunk_hdr_decode(buf, &h);
	if (cr_chunk_hdr_bad(&h, left - CR_CHUNK_HDR_SIZE, why, sizeof(why)))
		return cr_error(err, 0, "%s: chunk at offset %" PRIu64 ": %s", name, c.offset, why);
	c.raw_len = h.raw_len;
	c.stored_len = h.stored_len;
	c.zlib = h.flags & CR_CHUNK_ZLIB;
	if (cr_img_read_raw(img, skip, c.stored_len, err) < 0)
		return -1;
	push_chunk(p, &c);
	return 0;
}

static int load_pages(int dirfd, struct show_image *im, cr_error_t *err)
{
	cleanup_img_close struct cr_img *img = NULL;
	cleanup_free unsigned char *skip = NULL;
	uint64_t left = 0;

	/* Opening a page image checks only its ends; verify checks the checksum. */
	if (cr_img_verify(dirfd, im->name, im->type->kind, err) < 0 ||
	    cr_img_open(dirfd, im->name, im->type->kind, &img, err) < 0)
		return -1;
	skip = xmalloc(CR_PAGES_CHUNK);
	while (cr_img_body_left(img, &left) == 0 && left > 0)
		if (next_chunk(img, im->name, skip, &im->pages, err) < 0)
			return -1;
	return 0;
}

static void load_image(struct show_dump *d, int dirfd, struct show_image *im)
{
	cr_error_t err = NULL;
	int r = im->type->desc != NULL ? load_messages(dirfd, im, &err) : load_pages(dirfd, im, &err);

	if (r < 0)
		image_failed(d, im, &err);
	else
		im->loaded = true;
}

/* --- lookups ------------------------------------------------------------------- */

static const struct show_image *find_any(const struct show_dump *d, uint32_t kind, pid_t pid)
{
	for (size_t i = 0; i < d->n_images; i++)
		if (d->images[i].type->kind == kind && d->images[i].pid == pid)
			return &d->images[i];
	return NULL;
}

const struct show_image *show_find(const struct show_dump *d, uint32_t kind, pid_t pid)
{
	const struct show_image *im = find_any(d, kind, pid);

	return im != NULL && im->loaded ? im : NULL;
}

const ProtobufCMessage *show_find_one(const struct show_dump *d, uint32_t kind, pid_t pid)
{
	const struct show_image *im = show_find(d, kind, pid);

	return im != NULL && im->n_msgs == 1 ? im->msgs[0] : NULL;
}

/* --- what must be there and add up --------------------------------------------- */

static void expect_image(struct show_dump *d, uint32_t kind, pid_t pid, const char *why)
{
	char name[IMG_NAME_MAX];

	if (find_any(d, kind, pid) == NULL)
		add_error(d, "%s: missing (%s)", img_name(name, kind, pid), why);
}

static void check_complete(struct show_dump *d)
{
	const InventoryEntry *inv = (const InventoryEntry *)show_find_one(d, CR_IMG_INVENTORY, 0);
	char name[IMG_NAME_MAX], why[64];
	bool pre;

	if (find_any(d, CR_IMG_INVENTORY, 0) == NULL) {
		add_error(d, "%s: missing: %s holds no complete dump", img_name(name, CR_IMG_INVENTORY, 0), d->dir);
		return;
	}
	if (inv == NULL)
		return;
	pre = inv->has_pre_dump && inv->pre_dump;
	for (size_t k = 0; k < img_n_kinds && !pre; k++)
		if (!img_per_task(&img_kinds[k]))
			expect_image(d, img_kinds[k].kind, 0, "every dump has one");
	for (size_t i = 0; i < inv->n_task_pids; i++) {
		pid_t pid = (pid_t)inv->task_pids[i];

		snprintf(why, sizeof(why), "the inventory lists pid %u", inv->task_pids[i]);
		for (size_t k = 0; k < img_n_kinds; k++)
			if (img_per_task(&img_kinds[k]) && (!pre || img_kinds[k].kind == CR_IMG_PAGEMAP ||
							    img_kinds[k].kind == CR_IMG_PAGES))
				expect_image(d, img_kinds[k].kind, pid, why);
	}
}

void show_count_pages(const struct show_dump *d, pid_t pid, struct show_page_counts *c)
{
	const struct show_image *pm = show_find(d, CR_IMG_PAGEMAP, pid);
	const MmEntry *mm = (const MmEntry *)show_find_one(d, CR_IMG_MM, pid);
	size_t v = 0;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; pm != NULL && i < pm->n_msgs; i++) {
		const PagemapEntry *p = (const PagemapEntry *)pm->msgs[i];

		c->runs++;
		if (p->has_in_parent && p->in_parent) {
			c->parents += p->nr_pages;
			continue;
		}
		if (p->has_in_prev && p->in_prev) {
			c->prev += p->nr_pages;
			continue;
		}
		while (mm != NULL && v < mm->n_vmas && mm->vmas[v]->end <= p->vaddr)
			v++;
		if (mm != NULL && v < mm->n_vmas && mm->vmas[v]->has_cow && mm->vmas[v]->cow)
			c->early += p->nr_pages;
		else
			c->late += p->nr_pages;
	}
}

/* The pages a pagemap lists in each page data file against what it holds. */
static void check_page_file(struct show_dump *d, const struct show_image *pm, uint32_t kind, uint64_t pages)
{
	const struct show_image *pg = show_find(d, kind, pm->pid);

	if (pg != NULL && pages * PAGE_SIZE_CR != pg->pages.raw_bytes)
		add_error(d, "%s: holds %" PRIu64 " bytes of page data, but %s lists %" PRIu64 " pages (%" PRIu64
			  " bytes) for it", pg->name, pg->pages.raw_bytes, pm->name, pages, pages * PAGE_SIZE_CR);
}

static void check_page_sizes(struct show_dump *d, const struct show_image *pm)
{
	struct show_page_counts c;

	show_count_pages(d, pm->pid, &c);
	check_page_file(d, pm, CR_IMG_PAGES, c.late);
	check_page_file(d, pm, CR_IMG_EARLY_PAGES, c.early);
}

static void check_sizes(struct show_dump *d)
{
	for (size_t i = 0; i < d->n_images; i++)
		if (d->images[i].loaded && d->images[i].type->kind == CR_IMG_PAGEMAP)
			check_page_sizes(d, &d->images[i]);
}

/* --- whose dump, and signed by whom ------------------------------------------------ */

/* The inventory first: every other image must carry its dump id. */
static void load_inventory(struct show_dump *d, int dirfd)
{
	struct show_image *im = (struct show_image *)find_any(d, CR_IMG_INVENTORY, 0);
	const InventoryEntry *inv;
	struct cr_dump_id id;
	cr_error_t err = NULL;

	if (im == NULL)
		return;
	load_image(d, dirfd, im);
	inv = (const InventoryEntry *)show_find_one(d, CR_IMG_INVENTORY, 0);
	if (inv == NULL)
		return;
	if (cr_dump_id_from(inv->has_dump_id ? inv->dump_id.data : NULL, inv->dump_id.len, &id, im->name, &err) < 0 ||
	    img_dir_bind_id(dirfd, &id, &err) < 0) {
		add_error(d, "%s", err->msg);
		cr_error_release(&err);
	}
}

struct digest_walk {
	struct show_dump *d;
	int dirfd;
	const InventoryEntry *inv;
	size_t hint;
};

static int check_digest(void *arg, const struct img_kind *k, const char *name)
{
	struct digest_walk *w = arg;
	cr_error_t err = NULL;

	(void)k;
	/* A file the dump must have and has not is named as missing
	 * (check_complete); a pre-dump round has page data only. */
	if (faccessat(w->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return 0;
	if (img_digest_check(w->dirfd, name, w->inv, &w->hint, &err) < 0) {
		add_error(w->d, "--verify: %s", err->msg);
		cr_error_release(&err);
		w->d->verified = false;
	}
	return 0;   /* every image is reported */
}

/* --verify: the signature, then every image against its hash. */
static void verify_signed(struct show_dump *d, int dirfd)
{
	const InventoryEntry *inv = (const InventoryEntry *)show_find_one(d, CR_IMG_INVENTORY, 0);
	struct digest_walk w = { d, dirfd, inv, 0 };
	struct cr_public_key key;
	cr_error_t err = NULL;

	if (cr_key_load_public(d->verify_key, &key, &err) == 0 && img_sign_check(dirfd, d->dir, &key, &err) < 0)
		cr_error_wrap(&err, "%s", d->verify_key);
	if (err != NULL) {
		add_error(d, "--verify: %s", err->msg);
		cr_error_release(&err);
		return;
	}
	if (inv == NULL)
		return;
	d->verified = true;
	img_each_file(inv->task_pids, inv->n_task_pids, check_digest, &w);
	/* The rounds it takes pages from, as cr restore --verify checks them. */
	if (img_chain_verify(dirfd, d->dir, inv, &key, &err) < 0) {
		add_error(d, "--verify: %s", err->msg);
		cr_error_release(&err);
		d->verified = false;
	}
}

static void check_signature(struct show_dump *d, int dirfd)
{
	struct cr_public_key signer;
	cr_error_t err = NULL;
	int r = img_signer(dirfd, &signer, &err);

	d->sign = r == 0 ? SHOW_UNSIGNED : r > 0 ? SHOW_SIGNED : SHOW_SIGNATURE_DAMAGED;
	if (r > 0)
		cr_key_fingerprint(&signer, d->signer);
	if (r < 0) {
		add_error(d, "%s", err->msg);
		cr_error_release(&err);
	}
	if (d->verify_key != NULL)
		verify_signed(d, dirfd);
}

/* Whether the dump is encrypted, and with --decrypt the key to read it:
 * without the key, no image is decoded (each says why). */
static int use_image_key(struct show_dump *d, int dirfd, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	cr_error_t probe_err = NULL;

	d->encrypted = img_crypt_probe(dirfd, img_name(name, CR_IMG_INVENTORY, 0), d->key_id, &probe_err) == 1;
	cr_error_release(&probe_err);   /* a missing or damaged inventory is named when it is read */
	if (d->decrypt_key != NULL)
		return img_crypt_use_file(d->decrypt_key, err) < 0 ? cr_error_wrap(err, "--decrypt") : 0;
	d->locked = d->encrypted;
	for (size_t i = 0; d->locked && i < d->n_images; i++)
		d->images[i].error = xstrdup("encrypted: give --decrypt KEYFILE to decode it");
	return 0;
}

static int load_dump(struct show_dump *d, cr_error_t *err)
{
	cleanup_close int dirfd = img_dir_open(d->dir, false, err);

	if (dirfd < 0)
		return -1;
	if (cr_sodium_ready(err) < 0 || list_images(d, dirfd, err) < 0 || use_image_key(d, dirfd, err) < 0)
		return -1;
	if (d->locked) {
		check_signature(d, dirfd);
		return 0;
	}
	load_inventory(d, dirfd);
	for (size_t i = 0; i < d->n_images; i++)
		if (!d->images[i].loaded && d->images[i].error == NULL)
			load_image(d, dirfd, &d->images[i]);
	check_complete(d);
	check_sizes(d);
	check_signature(d, dirfd);
	img_dir_unbind_id(dirfd);
	img_crypt_use(NULL);
	return 0;
}

static void free_dump(struct show_dump *d)
{
	for (size_t i = 0; i < d->n_images; i++) {
		struct show_image *im = &d->images[i];

		for (size_t k = 0; k < im->n_msgs; k++)
			protobuf_c_message_free_unpacked(im->msgs[k], NULL);
		free(im->msgs);
		free(im->pages.chunks);
		free(im->error);
		free(im->name);
	}
	for (size_t i = 0; i < d->n_unknown; i++)
		free(d->unknown[i]);
	for (size_t i = 0; i < d->n_errors; i++)
		free(d->errors[i]);
	free(d->images);
	free(d->unknown);
	free(d->errors);
}

/* --- JSON ------------------------------------------------------------------------ */

static void json_pages(struct json_writer *w, const struct show_pages *p)
{
	json_key(w, "summary");
	json_object_begin(w);
	json_kv_uint(w, "chunks", p->n_chunks);
	json_kv_uint(w, "compressed_chunks", p->n_zlib);
	json_kv_uint(w, "raw_bytes", p->raw_bytes);
	json_kv_uint(w, "stored_bytes", p->stored_bytes);
	json_kv_uint(w, "pages", p->raw_bytes / PAGE_SIZE_CR);
	json_object_end(w);
	json_key(w, "chunks");
	json_array_begin(w);
	for (size_t i = 0; i < p->n_chunks; i++) {
		json_object_begin(w);
		json_kv_uint(w, "offset", p->chunks[i].offset);
		json_kv_uint(w, "raw_bytes", p->chunks[i].raw_len);
		json_kv_uint(w, "stored_bytes", p->chunks[i].stored_len);
		json_kv_bool(w, "compressed", p->chunks[i].zlib);
		json_object_end(w);
	}
	json_array_end(w);
}

static void json_image(struct json_writer *w, const struct show_image *im)
{
	json_key(w, im->name);
	json_object_begin(w);
	json_kv_string(w, "kind", cr_img_kind_name(im->type->kind));
	if (img_per_task(im->type))
		json_kv_uint(w, "pid", (uint64_t)im->pid);
	if (!im->loaded) {
		json_kv_string(w, "error", im->error);
	} else if (im->type->desc == NULL) {
		json_pages(w, &im->pages);
	} else {
		json_kv_string(w, "message", im->type->desc->name);
		json_key(w, "entries");
		json_array_begin(w);
		for (size_t i = 0; i < im->n_msgs; i++)
			json_message(w, im->msgs[i]);
		json_array_end(w);
	}
	json_object_end(w);
}

static void json_strings(struct json_writer *w, const char *key, char *const *v, size_t n)
{
	json_key(w, key);
	json_array_begin(w);
	for (size_t i = 0; i < n; i++)
		json_string(w, v[i]);
	json_array_end(w);
}

static int print_json(const struct show_dump *d, cr_error_t *err)
{
	struct json_writer w;

	json_init(&w, stdout, true);
	json_object_begin(&w);
	json_kv_string(&w, "dir", d->dir);
	json_kv_bool(&w, "signed", d->sign == SHOW_SIGNED);
	if (d->sign == SHOW_SIGNED)
		json_kv_string(&w, "signer", d->signer);
	if (d->verify_key != NULL)
		json_kv_bool(&w, "verified", d->verified);
	json_kv_bool(&w, "encrypted", d->encrypted);
	if (d->encrypted) {
		json_kv_string(&w, "key_id", d->key_id);
		json_kv_bool(&w, "decrypted", !d->locked);
	}
	json_key(&w, "images");
	json_object_begin(&w);
	for (size_t i = 0; i < d->n_images; i++)
		json_image(&w, &d->images[i]);
	json_object_end(&w);
	json_strings(&w, "unknown_files", d->unknown, d->n_unknown);
	json_strings(&w, "errors", d->errors, d->n_errors);
	json_object_end(&w);
	return json_finish(&w, err);
}

/* --- the command ------------------------------------------------------------------- */

struct show_args {
	const char *dir;
	const char *verify_key;
	const char *decrypt_key;
	bool json;
};

enum { OPT_JSON = 256, OPT_VERIFY, OPT_DECRYPT };

static int parse_show_args(int argc, char **argv, struct show_args *a)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verify", required_argument, NULL, OPT_VERIFY },
		{ "decrypt", required_argument, NULL, OPT_DECRYPT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': a->dir = optarg; break;
		case OPT_JSON: a->json = true; break;
		case OPT_VERIFY: a->verify_key = optarg; break;
		case OPT_DECRYPT: a->decrypt_key = optarg; break;
		case 'h': fputs(show_usage, stdout); return 0;
		default: fputs("run 'cr show --help' for usage\n", stderr); return 2;
		}
	}
	for (; optind < argc; optind++) {
		if (a->dir != NULL) {
			fprintf(stderr, "cr: show: unexpected argument '%s'\nrun 'cr show --help' for usage\n",
				argv[optind]);
			return 2;
		}
		a->dir = argv[optind];
	}
	if (a->dir == NULL) {
		fputs("cr: show needs an image directory\nrun 'cr show --help' for usage\n", stderr);
		return 2;
	}
	return -1;
}

static void report_errors(const struct show_dump *d)
{
	for (size_t i = 0; i < d->n_errors; i++)
		fprintf(stderr, "cr: show: %s\n", d->errors[i]);
	for (size_t i = 0; i < d->n_unknown; i++)
		fprintf(stderr, "cr: show: warning: %s is no image kind this cr knows; not decoded\n",
			d->unknown[i]);
}

int cmd_show(int argc, char **argv)
{
	struct show_args args = { 0 };
	struct show_dump d = { 0 };
	cr_error_t err = NULL;
	int status = parse_show_args(argc, argv, &args);

	if (status >= 0)
		return status;
	d.dir = args.dir;
	d.verify_key = args.verify_key;
	d.decrypt_key = args.decrypt_key;
	if (load_dump(&d, &err) < 0) {
		fprintf(stderr, "cr: show: %s\n", err->msg);
		cr_error_release(&err);
		free_dump(&d);
		return 1;
	}
	if (args.json && print_json(&d, &err) < 0) {
		fprintf(stderr, "cr: show: %s\n", err->msg);
		cr_error_release(&err);
		status = 1;
	}
	if (!args.json)
		show_summary(stdout, &d);
	fflush(stdout);
	report_errors(&d);
	if (d.n_errors > 0)
		status = 1;
	free_dump(&d);
	return status > 0 ? status : 0;
}
