/* Image files: framing, checksums and buffered I/O (layout in image.h).
 *
 * Writers buffer small writes and send large ones straight to the file; the
 * checksum (hash.h) runs over everything that reaches the file before the
 * trailer, computed by the writer as it hands bytes over.
 * Message images are small: a reader takes the whole file into memory,
 * checks it completely and then decodes frames from memory.  Page images are
 * read streaming, so opening one checks only the header and the trailer,
 * and the checksum is either checked in a separate bounded-memory pass
 * (cr_img_verify, on two cores for a large page image, block by block) or
 * computed over what is read and compared at the end (cr_img_check_hash).
 *
 * Bytes go through the image's sink: a writer's sink checksums and writes
 * them, a reader's checksums them (and reads ahead what cr_img_read_later
 * asked for).
 * cr_img_async moves the sink to a thread of its own (see sink.h for what
 * that asks of the caller). */
#include "img/image.h"
#include "img/bytes.h"
#include "img/crypt.h"
#include "img/dir.h"
#include "img/dumpid.h"
#include "img/hash.h"
#include "img/prealloc.h"
#include "img/sink.h"
#include "os/job.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define IMG_WRITE_BUF  (256u << 10)
#define IMG_READ_BUF   (256u << 10)
#define IMG_VERIFY_BUF (1u << 20)
#define IMG_ASYNC_WINDOW 4096u
#define IMG_FRAME_HDR  4u
/* A message image is read whole; anything this large is not one. */
#define IMG_MAX_MSG_FILE (1ull << 30)

enum img_mode {
	IMG_WRITING,
	IMG_READING_MEM,    /* message images: the whole file is in buf */
	IMG_READING_STREAM, /* page images: buf is a read-ahead window */
};

struct cr_img {
	enum img_mode mode;
	int fd;             /* writing */
	struct img_sealer *seal;  /* writing an encrypted image */
	struct img_view in;       /* reading: the file as its plain image */
	int dirfd;          /* writing: where name lives, so abort can unlink */
	char *name;
	uint32_t kind;
	unsigned char *buf; /* write buffer, read-ahead window or whole file */
	size_t buf_cap;
	size_t buf_len;
	size_t buf_pos;     /* streaming: next unread byte in buf */
	uint64_t pos;       /* writing: bytes accepted; reading: next body byte */
	uint64_t body_end;  /* reading: file offset just past the body */
	struct sink *sink;       /* writing: the bytes flushed; streaming: header and body read */
	struct img_hash *hash;   /* of those bytes, kept by the sink's consumer */
	uint64_t stored_hash;    /* streaming: the trailer's */
	bool hash_checked;       /* streaming: verified already, not computed again */
	uint64_t mark_base;      /* pieces the sink before this one took (marks go on across cr_img_async) */
	bool broken;        /* writing: an earlier write failed */
	uint64_t prealloc;  /* writing: bytes of the file allocated ahead (prealloc.h) */
	bool want_id;       /* reading: the directory has a dump id bound, */
	struct cr_dump_id want;  /* this one, which the header must carry */
};

struct img_ends {
	uint64_t size;      /* of the file */
	uint64_t body_len;
	uint64_t hash;      /* as stored in the trailer */
};

/* Walks the frames of a message body, possibly fed in pieces. */
struct frame_walk {
	const char *name;
	uint64_t body_end;
	uint64_t next;      /* file offset of the next frame's length */
	unsigned char len_bytes[IMG_FRAME_HDR];
	unsigned int have;  /* bytes of that length seen so far */
	cr_error_t err;     /* the first bad frame, if any */
};

static bool kind_is_known(uint32_t kind)
{
	return img_kind(kind) != NULL;
}

static bool kind_has_messages(uint32_t kind)
{
	return !(img_kind(kind)->shape & IMG_PAGES);
}

static int check_kind_arg(const char *name, uint32_t kind, cr_error_t *err)
{
	if (!kind_is_known(kind))
		return cr_error(err, EINVAL, "%s: unknown image kind %" PRIu32, name, kind);
	return 0;
}

/* A reader's piece with this bit is still to be read, from the file offset
 * in the bits below. */
#define TAG_READ (1ull << 63)

static int read_consume(void *arg, const void *p, size_t len, uint64_t tag)
{
	struct cr_img *img = arg;
	uint64_t off = tag & ~TAG_READ;
	int status = 0;

	if (tag & TAG_READ)
		status = img_view_pread(&img->in, (void *)p, len, &off);
	if (status == 0 && !img->hash_checked)
		img_hash_update(img->hash, p, len);
	return status;
}

static int send_consume(void *arg, const void *p, size_t len, uint64_t tag)
{
	struct cr_img *img = arg;
	cr_error_t err = NULL;
	int status;

	(void)tag;   /* hashed by img_send */
	if (img->seal != NULL)
		return img_sealer_write(img->seal, p, len);
	if (write_all(img->fd, p, len, &err) == 0)
		return 0;
	status = err->status != 0 ? err->status : EIO;
	cr_error_release(&err);
	return status;
}

/* Waits until every piece added to the sink was consumed. */
static void img_settle(struct cr_img *img)
{
	if (img->sink != NULL)
		sink_settle(img->sink);
}

static void img_free(struct cr_img *img)
{
	sink_close(img->sink);
	img_sealer_free(img->seal);
	img_view_close(&img->in);
	img_hash_free(img->hash);
	if (img->fd >= 0)
		close(img->fd);
	if (img->dirfd >= 0)
		close(img->dirfd);
	free(img->buf);
	free(img->name);
	free(img);
}

static void img_freep(struct cr_img **img)
{
	if (*img != NULL)
		img_free(*img);
}

#define cleanup_img __attribute__((cleanup(img_freep)))

static struct cr_img *img_new(const char *name, uint32_t kind, enum img_mode mode, size_t buf_cap)
{
	struct cr_img *img = xcalloc(1, sizeof(*img));

	img->fd = -1;
	img->in.fd = -1;
	img->dirfd = -1;
	img->mode = mode;
	img->kind = kind;
	img->name = xstrdup(name);
	img->buf_cap = buf_cap;
	img->buf = buf_cap > 0 ? xmalloc(buf_cap) : NULL;
	return img;
}

const char *cr_img_name(const struct cr_img *img)
{
	return img->name;
}

/* --- writing ------------------------------------------------------------- */

/* Keeps a handle on the directory for abort; AT_FDCWD stays as it is. */
static int img_keep_dirfd(struct cr_img *img, int dirfd, cr_error_t *err)
{
	if (dirfd < 0) {
		img->dirfd = -1;
		return dirfd == AT_FDCWD ? 0 : cr_error(err, EBADF, "%s: directory", img->name);
	}
	img->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (img->dirfd < 0)
		return cr_error(err, errno, "%s: duplicate directory fd", img->name);
	return 0;
}

static int img_dirfd(const struct cr_img *img)
{
	return img->dirfd >= 0 ? img->dirfd : AT_FDCWD;
}

/* The header, written in the clear (with an encrypted image's clear part,
 * after which the image's sealer takes the rest). */
static int write_header(struct cr_img *img, cr_error_t *err)
{
	unsigned char h[CR_IMG_HEADER_SIZE];
	bool encrypt = img_crypt_active();
	struct cr_dump_id id;

	put_le32(h, CR_IMG_MAGIC);
	put_le16(h + 4, CR_FORMAT_VERSION);
	put_le16(h + 6, (uint16_t)img->kind);
	put_le32(h + CR_IMG_FLAGS_OFFSET, encrypt ? CR_IMG_ENCRYPTED : 0);
	if (!img_dir_bound_id(img_dirfd(img), &id))
		memset(&id, 0, sizeof(id));
	memcpy(h + CR_IMG_ID_OFFSET, id.b, CR_DUMP_ID_SIZE);
	img->hash = img_hash_new();
	img_hash_update(img->hash, h, sizeof(h));
	if (encrypt)
		return img_sealer_open(img->fd, img->name, h, &img->seal, err);
	if (write_all(img->fd, h, sizeof(h), err) < 0)
		return cr_error_wrap(err, "%s: header", img->name);
	return 0;
}

int cr_img_create(int dirfd, const char *name, uint32_t kind, struct cr_img **out, cr_error_t *err)
{
	cleanup_img struct cr_img *img = NULL;

	*out = NULL;
	if (check_kind_arg(name, kind, err) < 0)
		return -1;
	img = img_new(name, kind, IMG_WRITING, IMG_WRITE_BUF);
	if (img_keep_dirfd(img, dirfd, err) < 0)
		return -1;
	if (img_prealloc_take(img_dirfd(img), name, &img->fd, &img->prealloc, err) < 0)
		return -1;
	if (img->fd >= 0)
		pr_debug("%s: %llu MiB allocated ahead", name, (unsigned long long)(img->prealloc >> 20));
	else
		img->fd = img_dir_create(img_dirfd(img), name, err);
	if (img->fd < 0)
		return -1;
	if (write_header(img, err) < 0)
		return -1;
	img->pos = CR_IMG_HEADER_SIZE;
	img->sink = sink_open(send_consume, img, false);
	*out = steal_pointer(&img);
	return 0;
}

/* The checksum is taken here, on the caller's thread: a page image's
 * writer thread has the file's side of the copy (the kernel's page
 * allocation and copy into the page cache), the larger half, and the
 * caller's side (process_vm_readv) is shorter by about the hash. */
static int img_send(struct cr_img *img, const void *data, size_t len, cr_error_t *err)
{
	int failure;

	img_hash_update(img->hash, data, len);
	sink_add(img->sink, data, len, 0);
	failure = sink_failure(img->sink);
	if (failure != 0)
		return cr_error(err, failure, "%s: write", img->name);
	return 0;
}

static int img_flush(struct cr_img *img, cr_error_t *err)
{
	size_t len = img->buf_len;

	img->buf_len = 0;
	if (len == 0 || img_send(img, img->buf, len, err) < 0)
		return len == 0 ? 0 : -1;
	if (len > SINK_COPY_MAX)
		img_settle(img);   /* buf is filled again next */
	return 0;
}

/* Buffers data, or sends it straight to the file when it would not fit. */
static int img_write(struct cr_img *img, const void *data, size_t len, cr_error_t *err)
{
	if (len == 0)
		return 0;
	if (len > img->buf_cap - img->buf_len && img_flush(img, err) < 0)
		return -1;
	img->pos += len;
	if (len >= img->buf_cap)
		return img_send(img, data, len, err);
	memcpy(img->buf + img->buf_len, data, len);
	img->buf_len += len;
	return 0;
}

static int check_writable(const struct cr_img *img, cr_error_t *err)
{
	if (img->mode != IMG_WRITING)
		return cr_error(err, EBADF, "%s: image is open for reading", img->name);
	if (img->broken)
		return cr_error(err, EIO, "%s: an earlier write to this image failed", img->name);
	return 0;
}

/* Packs msg into the buffer, or into a temporary when it is too big. */
static int img_write_packed(struct cr_img *img, const ProtobufCMessage *msg, size_t len,
			    cr_error_t *err)
{
	cleanup_free unsigned char *tmp = NULL;
	unsigned char *dst;

	if (len > img->buf_cap - img->buf_len && img_flush(img, err) < 0)
		return -1;
	dst = img->buf + img->buf_len;
	if (len > img->buf_cap - img->buf_len)
		dst = tmp = xmalloc(len);
	if (protobuf_c_message_pack(msg, dst) != len)
		return cr_error(err, 0, "%s: %s message packed to an unexpected size", img->name,
				msg->descriptor->name);
	if (tmp != NULL) {
		int ret = img_write(img, tmp, len, err);

		img_settle(img);   /* tmp is freed on return */
		return ret;
	}
	img->buf_len += len;
	img->pos += len;
	return 0;
}

static int img_write_frame(struct cr_img *img, const ProtobufCMessage *msg, cr_error_t *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	unsigned char frame[IMG_FRAME_HDR];

	if (len > CR_IMG_MAX_MSG)
		return cr_error(err, EFBIG, "%s: %s message of %zu bytes exceeds the frame limit of %u",
				img->name, msg->descriptor->name, len, CR_IMG_MAX_MSG);
	put_le32(frame, (uint32_t)len);
	if (img_write(img, frame, sizeof(frame), err) < 0)
		return -1;
	return img_write_packed(img, msg, len, err);
}

int cr_img_write_msg(struct cr_img *img, const ProtobufCMessage *msg, cr_error_t *err)
{
	if (check_writable(img, err) < 0)
		return -1;
	if (!kind_has_messages(img->kind))
		return cr_error(err, EINVAL, "%s: a %s image holds no messages", img->name,
				cr_img_kind_name(img->kind));
	if (img_write_frame(img, msg, err) < 0) {
		img->broken = true;
		return -1;
	}
	return 0;
}

int cr_img_write_raw(struct cr_img *img, const void *buf, size_t len, cr_error_t *err)
{
	if (check_writable(img, err) < 0)
		return -1;
	if (img_write(img, buf, len, err) < 0) {
		img->broken = true;
		return -1;
	}
	return 0;
}

static int write_trailer(struct cr_img *img, const unsigned char trailer[CR_IMG_TRAILER_SIZE], cr_error_t *err)
{
	int status;

	if (img->seal == NULL) {
		if (write_all(img->fd, trailer, CR_IMG_TRAILER_SIZE, err) < 0)
			return cr_error_wrap(err, "%s: trailer", img->name);
		return 0;
	}
	status = img_sealer_write(img->seal, trailer, CR_IMG_TRAILER_SIZE);
	if (status == 0)
		status = img_sealer_finish(img->seal);
	if (status != 0)
		return cr_error(err, status, "%s: write the last encrypted record", img->name);
	return 0;
}

/* Flushes, appends the trailer and closes (durability comes from
 * cr_img_sync_dir, once for a whole set of images). */
static int img_commit(struct cr_img *img, cr_error_t *err)
{
	unsigned char trailer[CR_IMG_TRAILER_SIZE];
	int fd;

	int failure;

	if (img_flush(img, err) < 0)
		return -1;
	img_settle(img);
	failure = sink_failure(img->sink);
	if (failure != 0)
		return cr_error(err, failure, "%s: write", img->name);
	put_le32(trailer, CR_IMG_TRAILER_MAGIC);
	put_le64(trailer + CR_IMG_TRAILER_HASH, img_hash_digest(img->hash));
	put_le64(trailer + CR_IMG_TRAILER_BODY_LEN, img->pos - CR_IMG_HEADER_SIZE);
	if (write_trailer(img, trailer, err) < 0)
		return -1;
	if (img->prealloc > 0)
		img_prealloc_trim(img->fd, img->prealloc);
	fd = steal_fd(&img->fd);
	if (close(fd) < 0)
		return cr_error(err, errno, "%s: close", img->name);
	return 0;
}

int cr_img_finish(struct cr_img *img, cr_error_t *err)
{
	if (img->mode != IMG_WRITING) {
		cr_error(err, EBADF, "%s: finish: image is open for reading", img->name);
		cr_img_close(img);
		return -1;
	}
	if (check_writable(img, err) < 0 || img_commit(img, err) < 0) {
		cr_img_abort(img);
		return -1;
	}
	img_free(img);
	return 0;
}

void cr_img_abort(struct cr_img *img)
{
	if (img == NULL)
		return;
	if (img->mode == IMG_WRITING) {
		sink_close(steal_pointer(&img->sink));   /* no write may follow the close */
		if (img->fd >= 0)
			close(steal_fd(&img->fd));
		unlinkat(img_dirfd(img), img->name, 0);
		img_dir_forget(img_dirfd(img), img->name);
	}
	img_free(img);
}

/* --- checking the ends of a file ----------------------------------------- */

/* A read of the plain image at offset at failed with status. */
static int read_failed(const char *name, int status, uint64_t at, cr_error_t *err)
{
	if (status == EBADMSG)
		return cr_error(err, 0, "%s: does not decrypt (near offset %" PRIu64 "): the image was changed, "
				"truncated, renamed or taken from another dump, or the key is not its own", name, at);
	return cr_error(err, status, "%s: read at offset %" PRIu64, name, at);
}

static int pread_exact(const struct img_view *v, void *buf, size_t len, uint64_t off, const char *name,
		       cr_error_t *err)
{
	uint64_t at = off;
	int status = img_view_pread(v, buf, len, &at);

	if (status == ENODATA)
		return cr_error(err, 0, "%s: truncated: file ends at offset %" PRIu64
				" (%" PRIu64 " more bytes expected)", name, at, len - (at - off));
	if (status != 0)
		return read_failed(name, status, at, err);
	return 0;
}

static int check_dump_id(const unsigned char *h, const char *name, const struct cr_dump_id *want,
			 cr_error_t *err)
{
	struct cr_dump_id got;
	char got_hex[CR_DUMP_ID_HEX], want_hex[CR_DUMP_ID_HEX];

	memcpy(got.b, h + CR_IMG_ID_OFFSET, CR_DUMP_ID_SIZE);
	if (want == NULL || cr_dump_id_equal(&got, want))
		return 0;
	return cr_error(err, 0, "%s: belongs to another dump (dump id %s, the inventory's is %s): "
			"images of two dumps cannot be mixed", name, cr_dump_id_hex(&got, got_hex),
			cr_dump_id_hex(want, want_hex));
}

/* want: the dump id the header must carry, or NULL for any. */
static int check_header(const unsigned char *h, const char *name, uint32_t kind,
			const struct cr_dump_id *want, cr_error_t *err)
{
	uint32_t magic = get_le32(h), reserved = get_le32(h + CR_IMG_FLAGS_OFFSET) & ~CR_IMG_ENCRYPTED;
	uint16_t version = get_le16(h + 4), got_kind = get_le16(h + 6);

	if (magic != CR_IMG_MAGIC)
		return cr_error(err, 0, "%s: bad magic 0x%08" PRIx32 " (not a cr image)", name, magic);
	if (version != CR_FORMAT_VERSION)
		return cr_error(err, 0, "%s: unsupported image version %u (this cr reads version %u)",
				name, version, CR_FORMAT_VERSION);
	if (got_kind != kind)
		return cr_error(err, 0, "%s: wrong image kind %u (%s), expected %" PRIu32 " (%s)", name,
				got_kind, cr_img_kind_name(got_kind), kind, cr_img_kind_name(kind));
	if (reserved != 0)
		return cr_error(err, 0, "%s: unknown header flags 0x%08" PRIx32, name, reserved);
	return check_dump_id(h, name, want, err);
}

/* Fills ends->body_len and ends->hash from the trailer t of a file of ends->size bytes. */
static int check_trailer(const unsigned char *t, const char *name, struct img_ends *ends,
			 cr_error_t *err)
{
	uint64_t held = ends->size - CR_IMG_HEADER_SIZE - CR_IMG_TRAILER_SIZE;

	if (get_le32(t) != CR_IMG_TRAILER_MAGIC)
		return cr_error(err, 0, "%s: trailer missing: the file is truncated or was never "
				"finished (%" PRIu64 " bytes)", name, ends->size);
	ends->hash = get_le64(t + CR_IMG_TRAILER_HASH);
	ends->body_len = get_le64(t + CR_IMG_TRAILER_BODY_LEN);
	if (ends->body_len > held)
		return cr_error(err, 0, "%s: truncated: trailer records a body of %" PRIu64
				" bytes, the file holds %" PRIu64, name, ends->body_len, held);
	if (ends->body_len < held)
		return cr_error(err, 0, "%s: trailer records a body of %" PRIu64 " bytes, the file "
				"holds %" PRIu64, name, ends->body_len, held);
	return 0;
}

static int check_hash(uint64_t stored, uint64_t computed, const char *name, cr_error_t *err)
{
	if (stored != computed)
		return cr_error(err, 0, "%s: checksum mismatch (stored 0x%016" PRIx64 ", computed 0x%016"
				PRIx64 ")", name, stored, computed);
	return 0;
}

/* Opens name read-only and learns its size; refuses what cannot be an image. */
static int open_image_file(int dirfd, const char *name, struct img_view *v, cr_error_t *err)
{
	if (img_view_open(dirfd, name, v, err) < 0)
		return -1;
	if (v->size < CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE) {
		img_view_close(v);
		return cr_error(err, 0, "%s: truncated: %" PRIu64 " bytes, less than an empty image "
				"(%d bytes)", name, v->size, CR_IMG_HEADER_SIZE + CR_IMG_TRAILER_SIZE);
	}
	return 0;
}

static void img_view_closep(struct img_view *v)
{
	img_view_close(v);
}

/* Checks the header and the trailer of an open file by reading just those. */
static int check_ends_at(const struct img_view *fd, const char *name, uint32_t kind, const struct cr_dump_id *want,
			 struct img_ends *ends, cr_error_t *err)
{
	unsigned char header[CR_IMG_HEADER_SIZE], trailer[CR_IMG_TRAILER_SIZE];

	if (pread_exact(fd, header, sizeof(header), 0, name, err) < 0)
		return -1;
	if (check_header(header, name, kind, want, err) < 0)
		return -1;
	if (pread_exact(fd, trailer, sizeof(trailer), ends->size - CR_IMG_TRAILER_SIZE, name, err) < 0)
		return -1;
	return check_trailer(trailer, name, ends, err);
}

/* --- frames ---------------------------------------------------------------- */

static void frame_walk_init(struct frame_walk *fw, const char *name, uint64_t body_end)
{
	memset(fw, 0, sizeof(*fw));
	fw->name = name;
	fw->body_end = body_end;
	fw->next = CR_IMG_HEADER_SIZE;
}

static int frame_check_len(const char *name, uint64_t at, uint32_t len, uint64_t body_end,
			   cr_error_t *err)
{
	uint64_t left = body_end - at - IMG_FRAME_HDR;

	if (len > CR_IMG_MAX_MSG)
		return cr_error(err, 0, "%s: frame at offset %" PRIu64 ": length %" PRIu32
				" exceeds the limit of %u bytes", name, at, len, CR_IMG_MAX_MSG);
	if (len > left)
		return cr_error(err, 0, "%s: frame at offset %" PRIu64 ": length %" PRIu32
				" runs past the end of the body (%" PRIu64 " bytes left)",
				name, at, len, left);
	return 0;
}

/* Feeds body bytes p[0..n) found at file offset off, in order. */
static void frame_walk_feed(struct frame_walk *fw, const unsigned char *p, uint64_t off, size_t n)
{
	uint64_t end = off + n;

	while (fw->err == NULL && fw->next + fw->have < end) {
		size_t i = (size_t)(fw->next + fw->have - off);
		uint32_t len;

		fw->len_bytes[fw->have++] = p[i];
		if (fw->have < IMG_FRAME_HDR)
			continue;
		len = get_le32(fw->len_bytes);
		if (frame_check_len(fw->name, fw->next, len, fw->body_end, &fw->err) < 0)
			return;
		fw->next += IMG_FRAME_HDR + (uint64_t)len;
		fw->have = 0;
	}
}

/* After the whole body was fed: 0 when the frames tile it exactly. */
static int frame_walk_end(struct frame_walk *fw, cr_error_t *err)
{
	if (fw->err == NULL && fw->have > 0)
		cr_error(&fw->err, 0, "%s: frame at offset %" PRIu64 ": truncated length (%u of %u "
			 "bytes)", fw->name, fw->next, fw->have, IMG_FRAME_HDR);
	if (fw->err == NULL)
		return 0;
	cr_error_release(err);
	*err = steal_pointer(&fw->err);
	return -1;
}

/* --- verifying --------------------------------------------------------------- */

/* A page image at least this large is checked on two cores, half each. */
#define VERIFY_SPLIT_MIN (8u << 20)

/* Blocks [first, first + n) of a file (hash.h), their digests. */
struct hash_range {
	const struct img_view *fd;
	uint64_t first, n;
	uint64_t end;        /* the offset where the hashed bytes end */
	uint64_t *digests;   /* n of them */
	uint64_t failed_at;
	int status;          /* errno of a failed read, else 0 */
};

static void *hash_range_main(void *arg)
{
	struct hash_range *r = arg;
	unsigned char *buf = xalloc_populated(CR_HASH_BLOCK);

	r->status = 0;
	for (uint64_t i = 0; r->status == 0 && i < r->n; i++) {
		uint64_t at = (r->first + i) * CR_HASH_BLOCK;
		size_t n = (size_t)(r->end - at < CR_HASH_BLOCK ? r->end - at : CR_HASH_BLOCK);

		r->failed_at = at;
		r->status = img_view_pread(r->fd, buf, n, &at);
		if (r->status == 0)
			r->digests[i] = img_hash_block(buf, n);
	}
	xfree_populated(buf, CR_HASH_BLOCK);
	return NULL;
}

/* The checksum of a page image's header and body, the second half of its
 * blocks on a thread of its own (or after the first, if none can be
 * started). */
static int verify_split(const struct img_view *fd, const char *name, const struct img_ends *ends, cr_error_t *err)
{
	uint64_t body_end = CR_IMG_HEADER_SIZE + ends->body_len;
	uint64_t blocks = (body_end + CR_HASH_BLOCK - 1) / CR_HASH_BLOCK;
	cleanup_free uint64_t *digests = xcalloc((size_t)blocks, sizeof(*digests));
	struct hash_range a = { .fd = fd, .n = blocks / 2, .end = body_end, .digests = digests };
	struct hash_range b = { .fd = fd, .first = a.n, .n = blocks - a.n, .end = body_end, .digests = digests + a.n };
	pthread_t th;
	bool threaded = cr_thread_create(&th, hash_range_main, &b) == 0;

	hash_range_main(&a);
	if (threaded)
		pthread_join(th, NULL);
	else
		hash_range_main(&b);
	if (a.status != 0)
		return read_failed(name, a.status, a.failed_at, err);
	if (b.status != 0)
		return read_failed(name, b.status, b.failed_at, err);
	return check_hash(ends->hash, img_hash_blocks(digests, (size_t)blocks), name, err);
}

/* verify_body's buffer: a large one all in place at once (xalloc_populated),
 * a small one from malloc (most images are a few KiB). */
#define VERIFY_POPULATED_MIN (128u << 10)

struct verify_buf {
	unsigned char *p;
	size_t size;
};

static struct verify_buf verify_buf_get(size_t size)
{
	return (struct verify_buf){ size >= VERIFY_POPULATED_MIN ? xalloc_populated(size) : xmalloc(size), size };
}

static void verify_buf_free(struct verify_buf *b)
{
	if (b->size >= VERIFY_POPULATED_MIN)
		xfree_populated(b->p, b->size);
	else
		free(b->p);
}

static void img_hash_freep(struct img_hash **h)
{
	img_hash_free(*h);
}

/* Streams header and body through the checksum (and the frame walk for
 * messages). */
static int verify_body(const struct img_view *fd, const char *name, uint32_t kind, const struct img_ends *ends,
		       cr_error_t *err)
{
	uint64_t body_end = CR_IMG_HEADER_SIZE + ends->body_len, off = 0;
	size_t cap = min_size(IMG_VERIFY_BUF, body_end);
	struct verify_buf buf __attribute__((cleanup(verify_buf_free))) = verify_buf_get(cap);
	__attribute__((cleanup(img_hash_freep))) struct img_hash *hash = img_hash_new();
	struct frame_walk fw;

	frame_walk_init(&fw, name, body_end);
	while (off < body_end) {
		size_t n = min_size(cap, body_end - off);
		size_t skip = off < CR_IMG_HEADER_SIZE ? CR_IMG_HEADER_SIZE - (size_t)off : 0;

		if (pread_exact(fd, buf.p, n, off, name, err) < 0) {
			cr_error_release(&fw.err);
			return -1;
		}
		img_hash_update(hash, buf.p, n);
		if (kind_has_messages(kind) && n > skip)
			frame_walk_feed(&fw, buf.p + skip, off + skip, n - skip);
		off += n;
	}
	if (check_hash(ends->hash, img_hash_digest(hash), name, err) < 0) {
		cr_error_release(&fw.err);
		return -1;
	}
	return kind_has_messages(kind) ? frame_walk_end(&fw, err) : 0;
}

int cr_img_verify(int dirfd, const char *name, uint32_t kind, cr_error_t *err)
{
	__attribute__((cleanup(img_view_closep))) struct img_view fd = { .fd = -1 };
	struct img_ends ends = { 0 };
	struct cr_dump_id want;
	bool want_id = img_dir_bound_id(dirfd, &want);

	if (check_kind_arg(name, kind, err) < 0)
		return -1;
	if (open_image_file(dirfd, name, &fd, err) < 0)
		return -1;
	ends.size = fd.size;
	if (check_ends_at(&fd, name, kind, want_id ? &want : NULL, &ends, err) < 0)
		return -1;
	if (!kind_has_messages(kind) && ends.size >= VERIFY_SPLIT_MIN)
		return verify_split(&fd, name, &ends, err);
	return verify_body(&fd, name, kind, &ends, err);
}

/* --- reading ----------------------------------------------------------------- */

/* Message images: the whole file in memory, checked completely. */
static int open_in_memory(struct cr_img *img, uint64_t size, cr_error_t *err)
{
	struct img_ends ends = { .size = size };
	uint64_t body_end;
	struct frame_walk fw;

	if (size > IMG_MAX_MSG_FILE)
		return cr_error(err, EFBIG, "%s: %" PRIu64 " bytes is too large for a %s image",
				img->name, size, cr_img_kind_name(img->kind));
	img->buf = xmalloc((size_t)size);
	img->buf_cap = img->buf_len = (size_t)size;
	if (pread_exact(&img->in, img->buf, img->buf_len, 0, img->name, err) < 0)
		return -1;
	if (check_header(img->buf, img->name, img->kind, img->want_id ? &img->want : NULL, err) < 0)
		return -1;
	if (check_trailer(img->buf + size - CR_IMG_TRAILER_SIZE, img->name, &ends, err) < 0)
		return -1;
	body_end = CR_IMG_HEADER_SIZE + ends.body_len;
	if (check_hash(ends.hash, img_hash_buf(img->buf, (size_t)body_end), img->name, err) < 0)
		return -1;
	frame_walk_init(&fw, img->name, body_end);
	frame_walk_feed(&fw, img->buf + CR_IMG_HEADER_SIZE, CR_IMG_HEADER_SIZE, (size_t)ends.body_len);
	if (frame_walk_end(&fw, err) < 0)
		return -1;
	img->pos = CR_IMG_HEADER_SIZE;
	img->body_end = body_end;
	return 0;
}

/* Page images: header and trailer now, the body as it is read. */
static int open_streaming(struct cr_img *img, uint64_t size, cr_error_t *err)
{
	struct img_ends ends = { .size = size };
	unsigned char header[CR_IMG_HEADER_SIZE];

	if (check_ends_at(&img->in, img->name, img->kind, img->want_id ? &img->want : NULL, &ends, err) < 0 ||
	    pread_exact(&img->in, header, sizeof(header), 0, img->name, err) < 0)
		return -1;
	img->hash = img_hash_new();
	img->sink = sink_open(read_consume, img, false);
	sink_add(img->sink, header, sizeof(header), 0);
	img->stored_hash = ends.hash;
	img->buf = xmalloc(IMG_READ_BUF);
	img->buf_cap = IMG_READ_BUF;
	img->pos = CR_IMG_HEADER_SIZE;
	img->body_end = CR_IMG_HEADER_SIZE + ends.body_len;
	return 0;
}

int cr_img_open(int dirfd, const char *name, uint32_t kind, struct cr_img **out, cr_error_t *err)
{
	bool messages = kind_has_messages(kind);
	cleanup_img struct cr_img *img = NULL;
	int ret;

	*out = NULL;
	if (check_kind_arg(name, kind, err) < 0)
		return -1;
	img = img_new(name, kind, messages ? IMG_READING_MEM : IMG_READING_STREAM, 0);
	img->want_id = img_dir_bound_id(dirfd, &img->want);
	if (open_image_file(dirfd, name, &img->in, err) < 0)
		return -1;
	ret = messages ? open_in_memory(img, img->in.size, err) : open_streaming(img, img->in.size, err);
	if (ret < 0)
		return -1;
	if (messages)
		img_view_close(&img->in);
	*out = steal_pointer(&img);
	return 0;
}

static int check_readable(const struct cr_img *img, cr_error_t *err)
{
	if (img->mode == IMG_WRITING)
		return cr_error(err, EBADF, "%s: image is open for writing", img->name);
	return 0;
}

int cr_img_read_msg(struct cr_img *img, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **out, cr_error_t *err)
{
	return cr_img_read_msg_with(img, desc, NULL, out, err);
}

int cr_img_read_msg_with(struct cr_img *img, const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
			 ProtobufCMessage **out, cr_error_t *err)
{
	uint64_t at = img->pos;
	ProtobufCMessage *msg;
	uint32_t len;

	*out = NULL;
	if (check_readable(img, err) < 0)
		return -1;
	if (img->mode != IMG_READING_MEM)
		return cr_error(err, EINVAL, "%s: a %s image holds no messages", img->name,
				cr_img_kind_name(img->kind));
	if (at == img->body_end)
		return 0;
	if (img->body_end - at < IMG_FRAME_HDR)
		return cr_error(err, 0, "%s: frame at offset %" PRIu64 ": truncated length",
				img->name, at);
	len = get_le32(img->buf + at);
	if (frame_check_len(img->name, at, len, img->body_end, err) < 0)
		return -1;
	msg = protobuf_c_message_unpack(desc, alloc, len, img->buf + at + IMG_FRAME_HDR);
	if (msg == NULL)
		return cr_error(err, 0, "%s: frame at offset %" PRIu64 ": cannot decode %" PRIu32
				" bytes as %s", img->name, at, len, desc->name);
	img->pos = at + IMG_FRAME_HDR + len;
	*out = msg;
	return 1;
}

/* Serves len bytes from the read-ahead window, refilling it from the file;
 * reads at least a window's worth go straight into dst. */
static int stream_read(struct cr_img *img, unsigned char *dst, size_t len, cr_error_t *err)
{
	while (len > 0) {
		size_t n = img->buf_len - img->buf_pos;

		if (n == 0 && len >= img->buf_cap) {
			if (pread_exact(&img->in, dst, len, img->pos, img->name, err) < 0)
				return -1;
			sink_add(img->sink, dst, len, 0);
			img->pos += len;
			return 0;
		}
		if (n == 0) {
			/* Once the bulk is read ahead by the sink, the window only
			 * serves chunk headers: fill it with what they need. */
			n = sink_threaded(img->sink) ? IMG_ASYNC_WINDOW : img->buf_cap;
			n = min_size(n, img->body_end - img->pos);
			if (pread_exact(&img->in, img->buf, n, img->pos, img->name, err) < 0)
				return -1;
			img->buf_len = n;
			img->buf_pos = 0;
		}
		n = n < len ? n : len;
		memcpy(dst, img->buf + img->buf_pos, n);
		sink_add(img->sink, dst, n, 0);
		img->buf_pos += n;
		img->pos += n;
		dst += n;
		len -= n;
	}
	return 0;
}

int cr_img_read_raw(struct cr_img *img, void *buf, size_t len, cr_error_t *err)
{
	uint64_t left;

	if (check_readable(img, err) < 0)
		return -1;
	left = img->body_end - img->pos;
	if (len > left)
		return cr_error(err, 0, "%s: truncated: wanted %zu bytes at offset %" PRIu64
				", the body has %" PRIu64 " left", img->name, len, img->pos, left);
	if (len == 0)
		return 0;
	if (img->mode == IMG_READING_STREAM)
		return stream_read(img, buf, len, err);
	memcpy(buf, img->buf + img->pos, len);
	img->pos += len;
	return 0;
}

int cr_img_read_later(struct cr_img *img, void *buf, size_t len, cr_error_t *err)
{
	unsigned char *dst = buf;
	size_t n;

	if (img->mode != IMG_READING_STREAM || !sink_threaded(img->sink))
		return cr_img_read_raw(img, buf, len, err);
	if (len > img->body_end - img->pos)
		return cr_img_read_raw(img, buf, len, err);   /* says what is missing */
	n = min_size(img->buf_len - img->buf_pos, len);
	if (len - n <= SINK_COPY_MAX)   /* the sink would read into its copy */
		n = len;
	if (n > 0 && stream_read(img, dst, n, err) < 0)
		return -1;
	if (len > n)
		sink_add(img->sink, dst + n, len - n, TAG_READ | img->pos);
	img->pos += len - n;
	return 0;
}

int cr_img_check_hash(struct cr_img *img, cr_error_t *err)
{
	if (img->mode != IMG_READING_STREAM)
		return 0;   /* checked whole when opened */
	if (img->pos != img->body_end)
		return cr_error(err, 0, "%s: checksum: %" PRIu64 " body bytes were not read", img->name,
				img->body_end - img->pos);
	img_settle(img);
	if (img->hash_checked)
		return 0;
	return check_hash(img->stored_hash, img_hash_digest(img->hash), img->name, err);
}

void cr_img_hash_checked(struct cr_img *img)
{
	if (img->mode == IMG_READING_STREAM)
		img->hash_checked = true;
}

void cr_img_async(struct cr_img *img)
{
	sink_fn fn = img->mode == IMG_WRITING ? send_consume : read_consume;

	if (img->sink == NULL || sink_threaded(img->sink))
		return;
	img->mark_base += sink_mark(img->sink);
	sink_close(steal_pointer(&img->sink));
	img->sink = sink_open(fn, img, true);
}

uint64_t cr_img_mark(const struct cr_img *img)
{
	return img->mark_base + (img->sink != NULL ? sink_mark(img->sink) : 0);
}

int cr_img_wait(struct cr_img *img, uint64_t mark, cr_error_t *err)
{
	int failure;

	if (img->sink == NULL)
		return 0;
	if (mark > img->mark_base)
		sink_wait(img->sink, mark - img->mark_base);
	failure = sink_failure(img->sink);
	if (failure != 0)
		return cr_error(err, failure, "%s: %s", img->name, img->mode == IMG_WRITING ? "write" : "read");
	return 0;
}

void cr_img_settle(struct cr_img *img)
{
	img_settle(img);
}

uint64_t cr_img_raw_offset(const struct cr_img *img)
{
	return img->pos;
}

int cr_img_body_left(const struct cr_img *img, uint64_t *left)
{
	if (img->mode == IMG_WRITING) {
		errno = EBADF;
		return -1;
	}
	*left = img->body_end - img->pos;
	return 0;
}

/* Closing a writer that was never finished leaves no half image behind. */
void cr_img_close(struct cr_img *img)
{
	if (img == NULL)
		return;
	if (img->mode == IMG_WRITING) {
		cr_img_abort(img);
		return;
	}
	img_free(img);
}

int cr_img_read_one(int dirfd, const char *name, uint32_t kind, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **out, cr_error_t *err)
{
	cleanup_img_close struct cr_img *img = NULL;
	int ret;

	*out = NULL;
	if (cr_img_open(dirfd, name, kind, &img, err) < 0)
		return -1;
	ret = cr_img_read_msg(img, desc, out, err);
	if (ret < 0)
		return -1;
	if (ret == 0)
		return cr_error(err, 0, "%s: no %s message in the image", name, desc->name);
	if (img->pos != img->body_end) {
		protobuf_c_message_free_unpacked(*out, NULL);
		*out = NULL;
		return cr_error(err, 0, "%s: more than one %s message in the image", name, desc->name);
	}
	return 0;
}

int cr_img_sync_dir(int dirfd, cr_error_t *err)
{
	if (syncfs(dirfd) < 0)
		return cr_error(err, errno, "sync the image directory's filesystem");
	if (fsync(dirfd) < 0)
		return cr_error(err, errno, "fsync the image directory");
	return 0;
}
