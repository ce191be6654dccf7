/* The mm's layout fields (code, data, brk, stack, args, env, auxv, exe),
 * restored in one PR_SET_MM_MAP, which needs no CAP_SYS_RESOURCE. */
#ifndef CR_MMLAYOUT_H
#define CR_MMLAYOUT_H

#include "os/error.h"
#include "state/task.h"

/* Dump, with an active injector (brk is read by an injected brk(0)). */
int mmlayout_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Restore: writes the layout into the trampoline and queues the
 * PR_SET_MM_MAP into t->batch, to run after cr's exe is unmapped. */
int mmlayout_queue(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);

#endif
