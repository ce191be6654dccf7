/* Byte-level helpers of the image format (image.h, pages.h): its
 * little-endian fields, and sizes bounded by what is left of a file. */
#ifndef CR_IMG_BYTES_H
#define CR_IMG_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void put_le32(unsigned char *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)get_le16(p) | ((uint32_t)get_le16(p + 2) << 16);
}

static inline uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | ((uint64_t)get_le32(p + 4) << 32);
}

/* The smaller of a buffer's size and a count of bytes left. */
static inline size_t min_size(size_t a, uint64_t b)
{
	return b < a ? (size_t)b : a;
}

#endif
