/* The per-process message of sched.proto, which sched.c and prctl.c both
 * fill in at dump. */
#ifndef CR_SCHED_H
#define CR_SCHED_H

#include "state/task.h"

/* t->core->sched, made on first use. */
SchedProcessEntry *sched_process(struct dump_ctx *ctx, struct dump_task *t);

#endif
