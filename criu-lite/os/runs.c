/* See runs.h. */
#include "os/runs.h"
#include "os/xalloc.h"

void runs_add(struct runs *r, uint64_t start, uint64_t end)
{
	if (r->n > 0 && r->v[r->n - 1][1] == start) {
		r->v[r->n - 1][1] = end;
		return;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 16;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	r->v[r->n][0] = start;
	r->v[r->n++][1] = end;
}
