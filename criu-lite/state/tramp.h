/* The trampoline: the page through which the restorer runs syscalls in a
 * restored process (its layout is in task.h, TRAMP_*).  It must be free
 * both in cr's layout, which every restored process inherits, and in the
 * dumped one, so that it survives the transplant until its last call
 * unmaps it. */
#ifndef CR_TRAMP_H
#define CR_TRAMP_H

#include "os/error.h"
#include "state/task.h"

/* Restore, before the tree is created: t->tramp_size and t->tramp, free
 * in ctx->cr_layout and in t's dumped layout. */
int tramp_plan(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
/* In the child: maps the trampoline (where planned, or elsewhere if the
 * child has put something there) with its code. */
int tramp_map(struct restore_task *t, cr_error_t *err);

#endif
