/* Image files: one file per kind of record in the dump directory.
 *
 * Layout of every image file (all integers little-endian):
 *
 *   header   magic "CRIM" (u32 0x4d495243), version (u16), kind (u16),
 *            flags (u32: CR_IMG_ENCRYPTED or zero), the dump's id
 *            (16 bytes, see dumpid.h)                              28 bytes
 *   body     message images: a sequence of [u32 length][protobuf bytes]
 *            page images:    a sequence of page chunks (see pages.h)
 *   trailer  magic "CREN" (u32 0x4e455243), checksum of header+body
 *            (u64, XXH3 over 1 MiB blocks: hash.h), body length (u64)
 *                                                                  20 bytes
 *
 * Files are created 0600 with O_EXCL; the trailer makes truncation and any
 * flipped byte detectable, the dump id a file of another dump, and every
 * error names the file.
 *
 * An encrypted image (crypt.h) stores the same bytes: the header in the
 * clear, body and trailer sealed in records after it.  Every offset below
 * is one of the plain image; the image files of a process holding an image
 * key (img_crypt_use) are written and read encrypted. */
#ifndef CR_IMAGE_H
#define CR_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "img/kinds.h"
#include "os/error.h"

/* The version of the image format, in every file's header and in the
 * inventory: bumped with every change to a schema in proto/ or to this
 * layout.  An image of another version is refused, naming the file. */
#define CR_FORMAT_VERSION 15

#define CR_IMG_MAGIC         0x4d495243u
#define CR_IMG_TRAILER_MAGIC 0x4e455243u
#define CR_IMG_HEADER_SIZE   28
#define CR_IMG_FLAGS_OFFSET  8
#define CR_IMG_ID_OFFSET     12
#define CR_IMG_TRAILER_SIZE  20
#define CR_IMG_TRAILER_HASH  4       /* offsets in the trailer */
#define CR_IMG_TRAILER_BODY_LEN 12
#define CR_IMG_MAX_MSG       (64u << 20) /* a larger frame is damage, not data */

struct cr_img;

/* --- writing ---------------------------------------------------------------
 * create: O_CREAT|O_EXCL|O_WRONLY, mode 0600 (or the file allocated ahead
 * for that name, named by a link that never replaces anything either:
 * prealloc.h), writes the header (with the id bound to dirfd, or zeros
 * when none is).
 * Writes are buffered; finish writes the trailer and closes.
 * abort closes and unlinks the file. Both free img. */
int cr_img_create(int dirfd, const char *name, uint32_t kind, struct cr_img **out, cr_error_t *err);
int cr_img_write_msg(struct cr_img *img, const ProtobufCMessage *msg, cr_error_t *err);
int cr_img_write_raw(struct cr_img *img, const void *buf, size_t len, cr_error_t *err);
int cr_img_finish(struct cr_img *img, cr_error_t *err);
void cr_img_abort(struct cr_img *img);

/* Makes every image written in dirfd so far durable (one syncfs for the
 * whole set, then the directory itself): far cheaper than an fsync per
 * file when a tree has hundreds of images. */
int cr_img_sync_dir(int dirfd, cr_error_t *err);

/* --- checking --------------------------------------------------------------
 * Reads the whole file in a streaming pass (bounded memory) and checks magic,
 * version, kind, dump id (when dirfd has one bound: open checks it too),
 * trailer, body length and checksum. For message images it also
 * checks that the frames tile the body exactly. Never modifies the file. */
int cr_img_verify(int dirfd, const char *name, uint32_t kind, cr_error_t *err);

/* --- reading ---------------------------------------------------------------
 * open: checks header and trailer (and, for message images, the checksum of the
 * whole file, which it reads into memory); page images are read streaming.
 * read_msg: returns 1 and *out (free with protobuf_c_message_free_unpacked)
 * when a message was read, 0 at the end of the body, -1 on error.
 * read_raw: exactly len bytes of body, or an error if the body ends first.
 * raw_offset: the file offset of the next body byte to be read. */
int cr_img_open(int dirfd, const char *name, uint32_t kind, struct cr_img **out, cr_error_t *err);
int cr_img_read_msg(struct cr_img *img, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **out, cr_error_t *err);
/* The same, the message allocated by alloc (NULL: malloc). */
int cr_img_read_msg_with(struct cr_img *img, const ProtobufCMessageDescriptor *desc, ProtobufCAllocator *alloc,
			 ProtobufCMessage **out, cr_error_t *err);
int cr_img_read_raw(struct cr_img *img, void *buf, size_t len, cr_error_t *err);
uint64_t cr_img_raw_offset(const struct cr_img *img);
/* Page images: after the whole body was read, compares the checksum of what
 * was read with the trailer's (message images were checked when opened),
 * unless the caller said with hash_checked that cr_img_verify passed already. */
int cr_img_check_hash(struct cr_img *img, cr_error_t *err);
void cr_img_hash_checked(struct cr_img *img);
/* Like read_raw, but on an async page image the bytes arrive later, read
 * by the sink's thread: buf is filled once cr_img_wait has seen a mark
 * taken after this call. */
int cr_img_read_later(struct cr_img *img, void *buf, size_t len, cr_error_t *err);

/* --- work on other cores ----------------------------------------------------
 * async: from now on a writer's writes (a reader's reads ahead and the
 * checksum of what it read) run on a thread of its own.  The memory of every write_raw
 * source (read_raw destination) of more than SINK_COPY_MAX bytes must then
 * stay unchanged until cr_img_wait has seen a mark taken after that call,
 * or cr_img_settle returned.  A write or read that fails on the thread
 * fails the next wait (and a later write_raw or finish). */
void cr_img_async(struct cr_img *img);
uint64_t cr_img_mark(const struct cr_img *img);
int cr_img_wait(struct cr_img *img, uint64_t mark, cr_error_t *err);
void cr_img_settle(struct cr_img *img);
int cr_img_body_left(const struct cr_img *img, uint64_t *left);
const char *cr_img_name(const struct cr_img *img);
void cr_img_close(struct cr_img *img);

static inline void cr_img_closep(struct cr_img **img)
{
	cr_img_close(*img);
}
/* Closes the image when the variable goes out of scope. */
#define cleanup_img_close __attribute__((cleanup(cr_img_closep)))

/* Convenience: open a message image and read exactly one message. */
int cr_img_read_one(int dirfd, const char *name, uint32_t kind, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **out, cr_error_t *err);

#endif
