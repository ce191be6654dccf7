/* Page data: the body of a pages-PID.img image is a sequence of chunks,
 *
 *   u32 raw_len      bytes of page data this chunk expands to (a multiple of
 *                    the page size, at most CR_PAGES_CHUNK)
 *   u32 stored_len   bytes that follow
 *   u32 flags        CR_CHUNK_ZLIB when the data is zlib-compressed
 *   u32 reserved     zero
 *   data             stored_len bytes
 *
 * Pages are consumed in the order the pagemap image lists them.  With
 * compression on, a chunk that does not shrink is stored raw, so
 * incompressible memory costs little.  Neither side ever holds more than a
 * couple of chunks in memory. */
#ifndef CR_PAGES_H
#define CR_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/error.h"
#include "img/image.h"

#define CR_PAGES_CHUNK (1u << 20)
#define CR_CHUNK_ZLIB  1u
#define CR_CHUNK_HDR_SIZE 16u
/* A page image with at least this much page data is worth reading ahead
 * on a second core while its pages are copied. */
#define CR_PAGES_ASYNC_MIN (8u << 20)

struct cr_pages_writer;
struct cr_pages_reader;

/* A chunk header, as stored above. */
struct cr_chunk_hdr {
	uint32_t raw_len;
	uint32_t stored_len;
	uint32_t flags;
	uint32_t reserved;
};

void cr_chunk_hdr_decode(const unsigned char buf[CR_CHUNK_HDR_SIZE], struct cr_chunk_hdr *h);
/* Whether h breaks the rules above with left body bytes after it; why
 * (of size bytes) says which rule and with what values. */
bool cr_chunk_hdr_bad(const struct cr_chunk_hdr *h, uint64_t left, char *why, size_t size);

/* Creates the image named name in dirfd: a pages-PID.img, or (_as) one of
 * another kind of page data (shmem-pages.img). */
int cr_pages_writer_open(int dirfd, const char *name, bool compress, struct cr_pages_writer **out,
			 cr_error_t *err);
int cr_pages_writer_open_as(int dirfd, const char *name, uint32_t kind, bool compress,
			    struct cr_pages_writer **out, cr_error_t *err);
/* Appends len bytes (a multiple of the page size) of page data. */
int cr_pages_write(struct cr_pages_writer *w, const void *buf, size_t len, cr_error_t *err);
/* Flushes the last chunk, writes the trailer, fsyncs; frees w. */
int cr_pages_writer_finish(struct cr_pages_writer *w, cr_error_t *err);
/* Removes the partial file; frees w. */
void cr_pages_writer_abort(struct cr_pages_writer *w);
/* Bytes of page data written so far (before compression). */
uint64_t cr_pages_written(const struct cr_pages_writer *w);
/* The image under the writer (reader), for cr_img_async and its marks:
 * once async, a buffer passed to cr_pages_write (filled by cr_pages_read)
 * must stay unchanged until a mark taken after the call was waited for. */
struct cr_img *cr_pages_writer_img(struct cr_pages_writer *w);
struct cr_img *cr_pages_reader_img(struct cr_pages_reader *r);

int cr_pages_reader_open(int dirfd, const char *name, struct cr_pages_reader **out, cr_error_t *err);
int cr_pages_reader_open_as(int dirfd, const char *name, uint32_t kind, struct cr_pages_reader **out,
			    cr_error_t *err);
/* Fills exactly len bytes of page data; an error if the data ends first or a
 * chunk is malformed (names the file and the chunk's offset). */
int cr_pages_read(struct cr_pages_reader *r, void *buf, size_t len, cr_error_t *err);
/* The same, but once the reader's image is async (cr_img_async) raw chunk
 * data arrives later: buf is complete when a mark taken after the call was
 * waited for (cr_img_wait). */
int cr_pages_read_later(struct cr_pages_reader *r, void *buf, size_t len, cr_error_t *err);
/* After all pages are read: 0 if the body is fully consumed and its checksum
 * matches the trailer's, else an error. */
int cr_pages_reader_check_end(struct cr_pages_reader *r, cr_error_t *err);
void cr_pages_reader_close(struct cr_pages_reader *r);

/* Restore validation, before any process exists: walks the chunk headers
 * without reading the data; *raw_total is the page data they hold. */
int cr_pages_scan(int dirfd, const char *name, uint64_t *raw_total, cr_error_t *err);

#endif
