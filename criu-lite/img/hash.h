/* The checksum of an image file (image.h): XXH3-64 over blocks.
 *
 * The plain image's bytes before the trailer (header and body) are cut into
 * blocks of CR_HASH_BLOCK bytes from offset 0 (the last one shorter); each
 * block's XXH3-64 digest is taken, and the checksum is the XXH3-64 of those
 * digests, each as 8 little-endian bytes, in order.  A file is thus
 * hashed as a stream (img_hash_*) or block by block on several cores, the
 * digests put together at the end (img_hash_blocks). */
#ifndef CR_IMG_HASH_H
#define CR_IMG_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CR_HASH_BLOCK (1u << 20)

struct img_hash;

struct img_hash *img_hash_new(void);
void img_hash_update(struct img_hash *h, const void *p, size_t len);
/* The checksum of everything fed so far (h can be fed on). */
uint64_t img_hash_digest(const struct img_hash *h);
void img_hash_free(struct img_hash *h);

/* One block's digest (len <= CR_HASH_BLOCK). */
uint64_t img_hash_block(const void *p, size_t len);
/* The checksum of n blocks with these digests. */
uint64_t img_hash_blocks(const uint64_t *digests, size_t n);
/* The checksum of len bytes in memory. */
uint64_t img_hash_buf(const void *p, size_t len);

#endif
