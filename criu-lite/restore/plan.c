/* The plan, made before any process exists.
 *
 * One fd layout for every process of the tree:
 *   [0, reserved_base)                  the dumped fds
 *   reserved_base + RESERVED_SYNC       the socket to the restorer
 *   reserved_base + RESERVED_TTY        the restoring terminal
 *   reserved_base + RESERVED_EXE ...    slots kinds reserve in their plan
 *                                       (the exe, mapped files): n_reserved
 *   stash_base + id                     descriptions opened for inheritance
 *   stash_base + n_files + 1 ...        what other kinds create for their
 *                                       descendants (shared memory), slots
 *                                       reserved in their plan: n_stash
 *   stash_top and above                 fds kinds keep aside while they open
 * The restorer closes everything from reserved_base up before the process
 * runs.  Then each kind of state plans what it needs. */
#include "restore/run.h"
#include "state/state.h"

#define RESERVED_MIN_BASE 100

int restore_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	int base = RESERVED_MIN_BASE, top = RESERVED_MAPS;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		for (size_t j = 0; j < ctx->tasks[i].n_fds; j++)
			if ((int)ctx->tasks[i].fds[j]->fd >= base)
				base = (int)ctx->tasks[i].fds[j]->fd + 1;
	ctx->reserved_base = base;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		ctx->tasks[i].reserved_base = base;
		ctx->tasks[i].n_reserved = RESERVED_MAPS;
	}
	ctx->n_stash = (int)ctx->n_files + 1;   /* files.c: stash_base + file id */
	if (proc_read_maps(0, &ctx->cr_layout, err) < 0 || state_plan(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].n_reserved > top)
			top = ctx->tasks[i].n_reserved;
	ctx->stash_base = base + top;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].stash_top = ctx->stash_base + ctx->n_stash;
	return 0;
}
