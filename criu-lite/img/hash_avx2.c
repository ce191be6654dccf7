/* XXH3 built for AVX2, which hash.c uses when the CPU has it (the rest of
 * cr is built for the baseline x86-64): about three times the speed of
 * the SSE2 build on a page image's batches.  The digests are the same. */
#include "img/hash.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)
#else
#pragma GCC target("avx2")
#endif
#include <immintrin.h>
#define XXH_INLINE_ALL
#define XXH_VECTOR 2   /* XXH_AVX2 */
#include <xxhash.h>

uint64_t img_xxh3_avx2(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

void img_xxh3_update_avx2(void *state, const void *p, size_t len)
{
	XXH3_64bits_update(state, p, len);
}

#ifdef __clang__
#pragma clang attribute pop
#endif
#endif
