/* The plan, made before any process exists.
 *
 * One fd layout for every process of the tree (fdroom.h):
 *   the dumped fds, at their numbers
 *   reserved_base + RESERVED_SYNC       the socket to the restorer
 *   reserved_base + RESERVED_TTY        the restoring terminal
 *   reserved_base + RESERVED_EXE ...    slots kinds reserve in their plan
 *                                       (the exe, mapped files): n_reserved
 *   stash_base ...                      what a process opens or creates for
 *                                       its descendants to inherit (shared
 *                                       descriptions, shared memory): slots
 *                                       reserved in the kinds' plans, n_stash,
 *                                       up to reserved_end
 *   stash_top and above                 fds kinds keep aside while they open
 *                                       (at most n_aside), above every dumped fd
 * reserved_base..reserved_end is one range no dumped fd of the tree uses:
 * above them all when the hard RLIMIT_NOFILE leaves room, else in a gap
 * between them.  The restorer closes cr's fds before the process runs and
 * sets its RLIMIT_NOFILE after that.  First each kind of state plans what
 * it needs, then the block is placed. */
#include "restore/run.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/fdroom.h"
#include "state/state.h"

#include <errno.h>

/* Every dumped fd number of the tree, sorted, each once. */
static uint32_t *dumped_fds(const struct restore_ctx *ctx, size_t *n)
{
	size_t total = 0;
	uint32_t *v;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		total += ctx->tasks[i].n_fds;
	v = xcalloc(total + 1, sizeof(*v));
	total = 0;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		for (size_t j = 0; j < ctx->tasks[i].n_fds; j++)
			v[total++] = ctx->tasks[i].fds[j]->fd;
	*n = fd_room_sort_unique(v, total);
	return v;
}

static int place_block(struct restore_ctx *ctx, int top, cr_error_t *err)
{
	size_t n;
	cleanup_free uint32_t *used = dumped_fds(ctx, &n);
	struct fd_room room;

	if (fd_room_find(used, n, top + ctx->n_stash, ctx->n_aside, fd_room_limit(), &room) < 0)
		return cr_error(err, EMFILE, "no room for cr's own %d fds in one range and %d more above the highest "
				"dumped fd (%u) below the hard RLIMIT_NOFILE of %llu", top + ctx->n_stash, ctx->n_aside,
				n ? used[n - 1] : 0, (unsigned long long)fd_room_limit());
	ctx->reserved_base = room.base;
	ctx->stash_base = room.base + top;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		ctx->tasks[i].reserved_base = room.base;
		ctx->tasks[i].reserved_end = room.end;
		ctx->tasks[i].stash_top = room.aside;
	}
	return 0;
}

int restore_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	int top = RESERVED_MAPS;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].n_reserved = RESERVED_MAPS;
	ctx->n_stash = ctx->n_aside = 0;
	if (proc_read_maps(0, &ctx->cr_layout, err) < 0 || state_plan(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].n_reserved > top)
			top = ctx->tasks[i].n_reserved;
	return place_block(ctx, top, err);
}
