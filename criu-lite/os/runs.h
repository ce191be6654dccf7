/* A growable list of [start, end) address runs, in the order added, and
 * merged where one starts at the end of the one before. */
#ifndef CR_RUNS_H
#define CR_RUNS_H

#include <stddef.h>
#include <stdint.h>

struct runs {
	uint64_t (*v)[2];              /* malloc'd */
	size_t n, cap;
};

void runs_add(struct runs *r, uint64_t start, uint64_t end);

#endif
