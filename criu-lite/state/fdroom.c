#include "state/fdroom.h"

#include <stdbool.h>
#include <stdlib.h>

/* Above the dumped fds, cr's block starts at 100 at least, out of the way
 * of the numbers a program opens next. */
#define ROOM_MIN_BASE 100

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

size_t fd_room_sort_unique(uint32_t *v, size_t n)
{
	size_t out = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || v[out - 1] != v[i])
			v[out++] = v[i];
	return out;
}

rlim_t fd_room_limit(void)
{
	struct rlimit r;

	return getrlimit(RLIMIT_NOFILE, &r) == 0 ? r.rlim_max : 1024;
}

static bool fits(long long base, int block, int aside, rlim_t limit)
{
	return base + block + aside <= (long long)limit;
}

/* The lowest gap between dumped fds that holds the block. */
static int lowest_gap(const uint32_t *used, size_t n, int block)
{
	long long start = 0;

	for (size_t i = 0; i < n; start = (long long)used[i++] + 1)
		if ((long long)used[i] - start >= block)
			return (int)start;
	return -1;
}

int fd_room_find(const uint32_t *used, size_t n, int block, int aside, rlim_t limit, struct fd_room *out)
{
	long long above = n ? (long long)used[n - 1] + 1 : 0;
	long long base = above > ROOM_MIN_BASE ? above : ROOM_MIN_BASE;
	int gap;

	if (!fits(base, block, aside, limit))
		base = above;
	if (fits(base, block, aside, limit)) {
		*out = (struct fd_room){ .base = (int)base, .end = (int)base + block, .aside = (int)base + block };
		return 0;
	}
	gap = lowest_gap(used, n, block);
	if (gap < 0 || !fits(above, 0, aside, limit))
		return -1;
	*out = (struct fd_room){ .base = gap, .end = gap + block, .aside = (int)above };
	return 0;
}
