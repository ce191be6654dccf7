/* Timers: interval timers (setitimer). */
#ifndef CR_TIMERS_H
#define CR_TIMERS_H

#include "os/error.h"
#include "state/task.h"

/* Dump, with an active injector and t->scratch. */
int timers_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Restore: queues into t->batch giving each armed timer its remaining
 * time (the values wait in the trampoline). */
int timers_queue(struct restore_task *t, cr_error_t *err);

/* POSIX timers (timer_create), in posix_timers.c.  Dump runs with an
 * active injector and t->scratch; restore runs in the child, after the
 * signal dispositions are in place and with every signal blocked. Weak:
 * called only when linked in. */
int posix_timers_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err) __attribute__((weak));
int posix_timers_restore_child(const struct restore_task *t, cr_error_t *err) __attribute__((weak));

#endif
