/* Timers: interval timers (setitimer). */
#ifndef CR_TIMERS_H
#define CR_TIMERS_H

#include "error.h"
#include "task.h"

/* Dump, with an active injector and t->scratch. */
int timers_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Restore, by injection: each armed timer gets its remaining time. */
int timers_restore_injected(struct restore_task *t, cr_error_t *err);

#endif
