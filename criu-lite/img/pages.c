/* Page data: chunked, optionally zlib-compressed (layout in pages.h).
 *
 * The writer gathers small writes into one chunk; large uncompressed writes
 * go to the image straight from the caller's memory, and whole chunks are
 * compressed straight from it.  The reader hands out raw chunks straight from
 * the image into the caller's buffer and inflates compressed ones into a
 * chunk-sized buffer. */
#define ZLIB_CONST
#include "img/pages.h"
#include "img/crypt.h"
#include "img/bytes.h"
#include "img/dir.h"
#include "img/image.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define CHUNK_PAGE     4096u
#define SAMPLE_PAGE        4096u
#define SAMPLE_PAGES       8u
#define SAMPLE_MAX_PERCENT 95u   /* a sample that keeps more is not worth it */

/* An uncompressed write this large skips the chunk buffer; it matches the
 * image write buffer, above which the image sends data straight to the file. */
#define DIRECT_MIN     (256u << 10)

struct cr_pages_writer {
	struct cr_img *img;
	bool compress;
	bool deflate_ready;
	z_stream zs;
	unsigned char *chunk;  /* pending page data, up to CR_PAGES_CHUNK */
	size_t chunk_len;
	unsigned char *zbuf;   /* compressed chunk */
	size_t zbuf_cap;
	unsigned char *sample; /* pages picked across a chunk, to test it */
	uint64_t written;
};

struct cr_pages_reader {
	struct cr_img *img;
	bool inflate_ready;
	z_stream zs;
	unsigned char *raw;    /* inflated chunk, and a byte to spare */
	unsigned char *zbuf;   /* compressed chunk as stored */
	size_t raw_len;
	size_t raw_pos;
	uint64_t direct_left;  /* bytes of an uncompressed chunk still in the image */
	uint64_t chunk_off;    /* file offset of the current chunk's header */
};

/* --- writing --------------------------------------------------------------- */

static void writer_free(struct cr_pages_writer *w)
{
	if (w->deflate_ready)
		deflateEnd(&w->zs);
	free(w->chunk);
	free(w->zbuf);
	free(w->sample);
	free(w);
}

static void writer_abortp(struct cr_pages_writer **w)
{
	if (*w != NULL)
		cr_pages_writer_abort(*w);
}

#define cleanup_writer __attribute__((cleanup(writer_abortp)))

/* zlib allocates for itself: its failure to start is an error, not ours to
 * abort on, and out of memory only when zlib says so. */
static int zlib_init_error(cr_error_t *err, int zret, const char *name, const char *call)
{
	if (zret == Z_MEM_ERROR)
		return cr_error(err, ENOMEM, "%s: %s", name, call);
	return cr_error(err, 0, "%s: %s: %s", name, call, zError(zret));
}

static int writer_init_deflate(struct cr_pages_writer *w, cr_error_t *err)
{
	int zret = deflateInit(&w->zs, Z_BEST_SPEED);

	if (zret != Z_OK)
		return zlib_init_error(err, zret, cr_img_name(w->img), "deflateInit");
	w->deflate_ready = true;
	w->zbuf_cap = deflateBound(&w->zs, CR_PAGES_CHUNK);
	w->sample = xmalloc(SAMPLE_PAGES * SAMPLE_PAGE);
	w->zbuf = xmalloc(w->zbuf_cap);
	return 0;
}

int cr_pages_writer_open(int dirfd, const char *name, bool compress, struct cr_pages_writer **out,
			 cr_error_t *err)
{
	return cr_pages_writer_open_as(dirfd, name, CR_IMG_PAGES, compress, out, err);
}

int cr_pages_writer_open_as(int dirfd, const char *name, uint32_t kind, bool compress,
			    struct cr_pages_writer **out, cr_error_t *err)
{
	cleanup_writer struct cr_pages_writer *w = xcalloc(1, sizeof(*w));

	*out = NULL;
	if (cr_img_create(dirfd, name, kind, &w->img, err) < 0)
		return -1;
	w->compress = compress;
	w->chunk = xmalloc(CR_PAGES_CHUNK);
	if (compress && writer_init_deflate(w, err) < 0)
		return -1;
	*out = steal_pointer(&w);
	return 0;
}

static int write_chunk(struct cr_pages_writer *w, const struct cr_chunk_hdr *h, const void *data,
		       cr_error_t *err)
{
	unsigned char hdr[CR_CHUNK_HDR_SIZE];

	put_le32(hdr, h->raw_len);
	put_le32(hdr + 4, h->stored_len);
	put_le32(hdr + 8, h->flags);
	put_le32(hdr + 12, h->reserved);
	if (cr_img_write_raw(w->img, hdr, sizeof(hdr), err) < 0)
		return -1;
	return cr_img_write_raw(w->img, data, h->stored_len, err);
}

/* Compresses src into zbuf; *zlen is the compressed size. */
static int deflate_chunk(struct cr_pages_writer *w, const unsigned char *src, size_t len,
			 size_t *zlen, cr_error_t *err)
{
	int ret;

	cr_img_settle(w->img);   /* zbuf may still be read */
	if (deflateReset(&w->zs) != Z_OK)
		return cr_error(err, 0, "%s: deflateReset failed", cr_img_name(w->img));
	w->zs.next_in = src;
	w->zs.avail_in = (uInt)len;
	w->zs.next_out = w->zbuf;
	w->zs.avail_out = (uInt)w->zbuf_cap;
	ret = deflate(&w->zs, Z_FINISH);
	if (ret != Z_STREAM_END)
		return cr_error(err, 0, "%s: deflate failed (%d)", cr_img_name(w->img), ret);
	*zlen = w->zbuf_cap - w->zs.avail_out;
	return 0;
}

/* Deflating memory that does not compress (encrypted, already compressed,
 * random) costs far more than storing it.  A few pages spread across a
 * chunk are compressed first; if they barely shrink, the chunk is stored
 * as it is. */
static int worth_compressing(struct cr_pages_writer *w, const unsigned char *src, size_t len, bool *worth,
			     cr_error_t *err)
{
	size_t pages = len / SAMPLE_PAGE, zlen;

	*worth = true;
	if (pages < SAMPLE_PAGES * 4)
		return 0;   /* small chunk: just try it */
	for (size_t i = 0; i < SAMPLE_PAGES; i++)
		memcpy(w->sample + i * SAMPLE_PAGE, src + (i * pages / SAMPLE_PAGES) * SAMPLE_PAGE, SAMPLE_PAGE);
	if (deflate_chunk(w, w->sample, SAMPLE_PAGES * SAMPLE_PAGE, &zlen, err) < 0)
		return -1;
	*worth = zlen * 100 < (size_t)SAMPLE_PAGES * SAMPLE_PAGE * SAMPLE_MAX_PERCENT;
	return 0;
}

/* Writes one chunk of len (<= CR_PAGES_CHUNK) bytes of page data from src,
 * compressed when that makes it smaller. */
static int emit_chunk(struct cr_pages_writer *w, const unsigned char *src, size_t len,
		      cr_error_t *err)
{
	struct cr_chunk_hdr h = { .raw_len = (uint32_t)len, .stored_len = (uint32_t)len };
	size_t zlen = 0;

	bool worth = false;

	if (w->compress && worth_compressing(w, src, len, &worth, err) < 0)
		return -1;
	if (worth) {
		if (deflate_chunk(w, src, len, &zlen, err) < 0)
			return -1;
		if (zlen < len) {
			h.stored_len = (uint32_t)zlen;
			h.flags = CR_CHUNK_ZLIB;
			return write_chunk(w, &h, w->zbuf, err);
		}
	}
	return write_chunk(w, &h, src, err);
}

static int flush_pending(struct cr_pages_writer *w, cr_error_t *err)
{
	size_t len = w->chunk_len;

	w->chunk_len = 0;
	return len > 0 ? emit_chunk(w, w->chunk, len, err) : 0;
}

/* Whether the next len bytes go out as a chunk straight from the caller. */
static bool write_direct(const struct cr_pages_writer *w, size_t len)
{
	if (w->compress)
		return w->chunk_len == 0 && len >= CR_PAGES_CHUNK;
	return len >= DIRECT_MIN;
}

/* Consumes up to len bytes from src; returns how many in *used. */
static int write_some(struct cr_pages_writer *w, const unsigned char *src, size_t len, size_t *used,
		      cr_error_t *err)
{
	size_t n;

	if (write_direct(w, len)) {
		*used = n = min_size(CR_PAGES_CHUNK, len);
		if (flush_pending(w, err) < 0)
			return -1;
		return emit_chunk(w, src, n, err);
	}
	*used = n = min_size(CR_PAGES_CHUNK - w->chunk_len, len);
	if (w->chunk_len == 0)
		cr_img_settle(w->img);   /* the last chunk may still be read */
	memcpy(w->chunk + w->chunk_len, src, n);
	w->chunk_len += n;
	return w->chunk_len == CR_PAGES_CHUNK ? flush_pending(w, err) : 0;
}

int cr_pages_write(struct cr_pages_writer *w, const void *buf, size_t len, cr_error_t *err)
{
	const unsigned char *src = buf;

	if (len % CHUNK_PAGE != 0)
		return cr_error(err, EINVAL, "%s: %zu bytes of page data is not a whole number of pages",
				cr_img_name(w->img), len);
	while (len > 0) {
		size_t used;

		if (write_some(w, src, len, &used, err) < 0)
			return -1;
		src += used;
		len -= used;
		w->written += used;
	}
	return 0;
}

int cr_pages_writer_finish(struct cr_pages_writer *w, cr_error_t *err)
{
	struct cr_img *img = w->img;

	if (flush_pending(w, err) < 0) {
		cr_pages_writer_abort(w);
		return -1;
	}
	cr_img_settle(img);   /* the chunk buffers may still be read */
	w->img = NULL;
	writer_free(w);
	return cr_img_finish(img, err);
}

void cr_pages_writer_abort(struct cr_pages_writer *w)
{
	if (w == NULL)
		return;
	cr_img_abort(w->img);
	writer_free(w);
}

uint64_t cr_pages_written(const struct cr_pages_writer *w)
{
	return w->written;
}

struct cr_img *cr_pages_writer_img(struct cr_pages_writer *w)
{
	return w->img;
}

/* --- reading --------------------------------------------------------------- */

static void reader_closep(struct cr_pages_reader **r)
{
	cr_pages_reader_close(*r);
}

#define cleanup_reader __attribute__((cleanup(reader_closep)))

int cr_pages_reader_open(int dirfd, const char *name, struct cr_pages_reader **out, cr_error_t *err)
{
	return cr_pages_reader_open_as(dirfd, name, CR_IMG_PAGES, out, err);
}

int cr_pages_reader_open_as(int dirfd, const char *name, uint32_t kind, struct cr_pages_reader **out,
			    cr_error_t *err)
{
	cleanup_reader struct cr_pages_reader *r = xcalloc(1, sizeof(*r));

	*out = NULL;
	if (cr_img_open(dirfd, name, kind, &r->img, err) < 0)
		return -1;
	*out = steal_pointer(&r);
	return 0;
}

static const char *reader_name(const struct cr_pages_reader *r)
{
	return cr_img_name(r->img);
}

static uint64_t body_left(const struct cr_pages_reader *r)
{
	uint64_t left = 0;

	cr_img_body_left(r->img, &left);
	return left;
}

/* "pages-7.img: chunk at offset 1234: <what>" */
static int chunk_error(const struct cr_pages_reader *r, cr_error_t *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int chunk_error(const struct cr_pages_reader *r, cr_error_t *err, const char *fmt, ...)
{
	cleanup_free char *what = NULL;
	va_list ap;

	va_start(ap, fmt);
	what = xvasprintf(fmt, ap);
	va_end(ap);
	return cr_error(err, 0, "%s: chunk at offset %" PRIu64 ": %s", reader_name(r), r->chunk_off, what);
}

bool cr_chunk_hdr_bad(const struct cr_chunk_hdr *h, uint64_t left, char *why, size_t size)
{
	bool zlib = h->flags & CR_CHUNK_ZLIB;

	if (h->flags & ~CR_CHUNK_ZLIB)
		snprintf(why, size, "unknown flags 0x%" PRIx32, h->flags);
	else if (h->reserved != 0)
		snprintf(why, size, "reserved field is 0x%" PRIx32 ", expected zero", h->reserved);
	else if (h->raw_len == 0 || h->raw_len % CHUNK_PAGE != 0)
		snprintf(why, size, "raw length %" PRIu32 " is not a positive multiple of %u", h->raw_len,
			 CHUNK_PAGE);
	else if (h->raw_len > CR_PAGES_CHUNK)
		snprintf(why, size, "raw length %" PRIu32 " exceeds the chunk limit of %u", h->raw_len,
			 CR_PAGES_CHUNK);
	else if (zlib && h->stored_len > h->raw_len)
		snprintf(why, size, "compressed length %" PRIu32 " exceeds raw length %" PRIu32, h->stored_len,
			 h->raw_len);
	else if (!zlib && h->stored_len != h->raw_len)
		snprintf(why, size, "uncompressed chunk stores %" PRIu32 " bytes for raw length %" PRIu32,
			 h->stored_len, h->raw_len);
	else if (h->stored_len > left)
		snprintf(why, size, "truncated: %" PRIu32 " bytes stored, %" PRIu64 " left in the body",
			 h->stored_len, left);
	else
		return false;
	return true;
}

static int check_chunk_hdr(const struct cr_pages_reader *r, const struct cr_chunk_hdr *h, cr_error_t *err)
{
	char why[160];

	if (cr_chunk_hdr_bad(h, body_left(r), why, sizeof(why)))
		return chunk_error(r, err, "%s", why);
	return 0;
}

void cr_chunk_hdr_decode(const unsigned char buf[CR_CHUNK_HDR_SIZE], struct cr_chunk_hdr *h)
{
	h->raw_len = get_le32(buf);
	h->stored_len = get_le32(buf + 4);
	h->flags = get_le32(buf + 8);
	h->reserved = get_le32(buf + 12);
}

static int read_chunk_hdr(struct cr_pages_reader *r, struct cr_chunk_hdr *h, cr_error_t *err)
{
	unsigned char buf[CR_CHUNK_HDR_SIZE];
	uint64_t left = body_left(r);

	r->chunk_off = cr_img_raw_offset(r->img);
	if (left < CR_CHUNK_HDR_SIZE)
		return chunk_error(r, err, "truncated header (%" PRIu64 " of %u bytes)", left,
				   CR_CHUNK_HDR_SIZE);
	if (cr_img_read_raw(r->img, buf, sizeof(buf), err) < 0)
		return -1;
	cr_chunk_hdr_decode(buf, h);
	return check_chunk_hdr(r, h, err);
}

static int reader_init_inflate(struct cr_pages_reader *r, cr_error_t *err)
{
	int zret;

	if (r->inflate_ready)
		return 0;
	zret = inflateInit(&r->zs);
	if (zret != Z_OK)
		return zlib_init_error(err, zret, reader_name(r), "inflateInit");
	r->inflate_ready = true;
	r->raw = xmalloc(CR_PAGES_CHUNK + 1);
	r->zbuf = xmalloc(CR_PAGES_CHUNK);
	return 0;
}

/* Inflates stored_len bytes in zbuf into exactly raw_len bytes in raw.  The
 * output room has one byte to spare, so a stream that expands too far shows. */
static int inflate_chunk(struct cr_pages_reader *r, const struct cr_chunk_hdr *h, cr_error_t *err)
{
	size_t produced;
	int ret;

	if (inflateReset(&r->zs) != Z_OK)
		return cr_error(err, 0, "%s: inflateReset failed", reader_name(r));
	r->zs.next_in = r->zbuf;
	r->zs.avail_in = h->stored_len;
	r->zs.next_out = r->raw;
	r->zs.avail_out = h->raw_len + 1;
	ret = inflate(&r->zs, Z_FINISH);
	produced = h->raw_len + 1 - r->zs.avail_out;
	if (produced > h->raw_len)
		return chunk_error(r, err, "compressed data expands past raw length %" PRIu32,
				   h->raw_len);
	if (ret == Z_STREAM_END && produced != h->raw_len)
		return chunk_error(r, err, "compressed data expands to %zu bytes, expected %" PRIu32,
				   produced, h->raw_len);
	if (ret == Z_STREAM_END && r->zs.avail_in != 0)
		return chunk_error(r, err, "%u bytes follow the compressed stream", r->zs.avail_in);
	if (ret == Z_STREAM_END)
		return 0;
	if (r->zs.msg != NULL)
		return chunk_error(r, err, "corrupt compressed data: %s", r->zs.msg);
	if (r->zs.avail_in == 0)
		return chunk_error(r, err, "corrupt compressed data: the stream ends early");
	return chunk_error(r, err, "corrupt compressed data: inflate returned %d", ret);
}

static int load_zlib_chunk(struct cr_pages_reader *r, const struct cr_chunk_hdr *h, cr_error_t *err)
{
	if (reader_init_inflate(r, err) < 0)
		return -1;
	cr_img_settle(r->img);   /* zbuf may still be read */
	if (cr_img_read_raw(r->img, r->zbuf, h->stored_len, err) < 0)
		return -1;
	if (inflate_chunk(r, h, err) < 0)
		return -1;
	r->raw_len = h->raw_len;
	r->raw_pos = 0;
	return 0;
}

static int next_chunk(struct cr_pages_reader *r, size_t wanted, cr_error_t *err)
{
	struct cr_chunk_hdr h = { 0 };

	if (body_left(r) == 0)
		return cr_error(err, 0, "%s: page data ends at offset %" PRIu64 ", %zu more bytes "
				"wanted", reader_name(r), cr_img_raw_offset(r->img), wanted);
	if (read_chunk_hdr(r, &h, err) < 0)
		return -1;
	if (h.flags & CR_CHUNK_ZLIB)
		return load_zlib_chunk(r, &h, err);
	r->direct_left = h.raw_len;
	return 0;
}

/* Fills buf; with later, raw chunk data is left to the image's sink. */
static int pages_read(struct cr_pages_reader *r, void *buf, size_t len, bool later, cr_error_t *err)
{
	unsigned char *dst = buf;

	while (len > 0) {
		size_t n;

		if (r->raw_pos < r->raw_len) {
			n = min_size(len, r->raw_len - r->raw_pos);
			memcpy(dst, r->raw + r->raw_pos, n);
			r->raw_pos += n;
		} else if (r->direct_left > 0) {
			n = min_size(len, r->direct_left);
			if ((later ? cr_img_read_later : cr_img_read_raw)(r->img, dst, n, err) < 0)
				return -1;
			r->direct_left -= n;
		} else if (next_chunk(r, len, err) < 0) {
			return -1;
		} else {
			continue;
		}
		dst += n;
		len -= n;
	}
	return 0;
}

int cr_pages_read(struct cr_pages_reader *r, void *buf, size_t len, cr_error_t *err)
{
	return pages_read(r, buf, len, false, err);
}

int cr_pages_read_later(struct cr_pages_reader *r, void *buf, size_t len, cr_error_t *err)
{
	return pages_read(r, buf, len, true, err);
}

int cr_pages_reader_check_end(struct cr_pages_reader *r, cr_error_t *err)
{
	uint64_t unread = (r->raw_len - r->raw_pos) + r->direct_left;
	uint64_t left;

	if (unread > 0)
		return chunk_error(r, err, "%" PRIu64 " bytes of page data left unread", unread);
	left = body_left(r);
	if (left > 0)
		return cr_error(err, 0, "%s: %" PRIu64 " bytes of page data left unread at offset %"
				PRIu64, reader_name(r), left, cr_img_raw_offset(r->img));
	return cr_img_check_hash(r->img, err);
}

struct cr_img *cr_pages_reader_img(struct cr_pages_reader *r)
{
	return r->img;
}

void cr_pages_reader_close(struct cr_pages_reader *r)
{
	if (r == NULL)
		return;
	if (r->inflate_ready)
		inflateEnd(&r->zs);
	cr_img_close(r->img);
	free(r->raw);
	free(r->zbuf);
	free(r);
}

/* Walks the chunk headers alone (reading the plain image at their
 * offsets, skipping the data): the sizes must tile the body and add up to
 * what the pagemap promises. */
int cr_pages_scan(int dirfd, const char *name, uint64_t *raw_total, cr_error_t *err)
{
	struct img_view v;
	unsigned char buf[CR_CHUNK_HDR_SIZE];
	uint64_t off = CR_IMG_HEADER_SIZE, end;
	char why[160];
	int ret = 0;

	*raw_total = 0;
	if (img_view_open(dirfd, name, &v, err) < 0)
		return -1;
	if (v.size < CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE)
		ret = cr_error(err, 0, "%s: truncated", name);
	end = v.size - CR_IMG_TRAILER_SIZE;
	while (ret == 0 && off < end) {
		struct cr_chunk_hdr h;
		uint64_t at = off;

		if (end - off < CR_CHUNK_HDR_SIZE || img_view_pread(&v, buf, sizeof(buf), &at) != 0) {
			ret = cr_error(err, 0, "%s: chunk at offset %" PRIu64 ": truncated header, or it does not "
				       "decrypt", name, off);
			break;
		}
		cr_chunk_hdr_decode(buf, &h);
		if (cr_chunk_hdr_bad(&h, end - off - CR_CHUNK_HDR_SIZE, why, sizeof(why)))
			ret = cr_error(err, 0, "%s: chunk at offset %" PRIu64 ": %s", name, off, why);
		*raw_total += h.raw_len;
		off += CR_CHUNK_HDR_SIZE + h.stored_len;
	}
	img_view_close(&v);
	return ret;
}
