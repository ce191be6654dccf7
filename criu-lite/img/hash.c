/* The image checksum (hash.h), on xxHash's XXH3 (header-only here, so
 * the static cr needs no library for it), its bulk work by the AVX2 build
 * (hash_avx2.c) where the CPU has AVX2. */
#include "img/hash.h"
#include "img/bytes.h"
#include "os/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#ifdef __x86_64__
uint64_t img_xxh3_avx2(const void *p, size_t len);
void img_xxh3_update_avx2(void *state, const void *p, size_t len);

static bool have_avx2(void)
{
	static int have = -1;

	if (have < 0)
		have = __builtin_cpu_supports("avx2") ? 1 : 0;
	return have;
}

static uint64_t xxh3(const void *p, size_t len)
{
	return have_avx2() ? img_xxh3_avx2(p, len) : XXH3_64bits(p, len);
}

static void xxh3_update(XXH3_state_t *s, const void *p, size_t len)
{
	if (have_avx2())
		img_xxh3_update_avx2(s, p, len);
	else
		XXH3_64bits_update(s, p, len);
}
#else
#define xxh3 XXH3_64bits
#define xxh3_update XXH3_64bits_update
#endif

struct img_hash {
	XXH3_state_t block;   /* the block being fed */
	XXH3_state_t top;     /* the digests of the blocks before it */
	size_t fill;          /* bytes of the block fed so far */
};

struct img_hash *img_hash_new(void)
{
	struct img_hash *h = aligned_alloc(64, sizeof(*h));

	if (h == NULL)
		xalloc_failed(sizeof(*h));
	XXH3_64bits_reset(&h->block);
	XXH3_64bits_reset(&h->top);
	h->fill = 0;
	return h;
}

void img_hash_free(struct img_hash *h)
{
	free(h);
}

static void feed_digest(XXH3_state_t *top, uint64_t d)
{
	unsigned char le[8];

	put_le64(le, d);
	XXH3_64bits_update(top, le, sizeof(le));
}

void img_hash_update(struct img_hash *h, const void *p, size_t len)
{
	const unsigned char *b = p;

	while (len > 0) {
		size_t n = CR_HASH_BLOCK - h->fill;

		if (n > len)
			n = len;
		if (h->fill == 0 && n == CR_HASH_BLOCK) {
			feed_digest(&h->top, xxh3(b, n));   /* a whole block at once */
		} else {
			xxh3_update(&h->block, b, n);
			h->fill += n;
			if (h->fill == CR_HASH_BLOCK) {
				feed_digest(&h->top, XXH3_64bits_digest(&h->block));
				XXH3_64bits_reset(&h->block);
				h->fill = 0;
			}
		}
		b += n;
		len -= n;
	}
}

uint64_t img_hash_digest(const struct img_hash *h)
{
	XXH3_state_t top;

	if (h->fill == 0)
		return XXH3_64bits_digest(&h->top);
	XXH3_copyState(&top, &h->top);
	feed_digest(&top, XXH3_64bits_digest(&h->block));
	return XXH3_64bits_digest(&top);
}

uint64_t img_hash_block(const void *p, size_t len)
{
	return xxh3(p, len);
}

uint64_t img_hash_blocks(const uint64_t *digests, size_t n)
{
	XXH3_state_t top;

	XXH3_64bits_reset(&top);
	for (size_t i = 0; i < n; i++)
		feed_digest(&top, digests[i]);
	return XXH3_64bits_digest(&top);
}

uint64_t img_hash_buf(const void *p, size_t len)
{
	struct img_hash *h = img_hash_new();
	uint64_t d;

	img_hash_update(h, p, len);
	d = img_hash_digest(h);
	img_hash_free(h);
	return d;
}
