/* Signal dispositions, the blocked mask and pending signals. */
#ifndef CR_SIGNALS_H
#define CR_SIGNALS_H

#include "os/error.h"
#include "state/task.h"

/* Dump: sigactions (by injected rt_sigaction into the scratch page) and the
 * shared pending queue (PTRACE_PEEKSIGINFO).  Needs an active injector and
 * t->scratch. */
int signals_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Dump: a thread's private pending queue. */
int signals_dump_private(struct dump_ctx *ctx, pid_t tid, SiginfoEntry ***out, size_t *n, cr_error_t *err);

/* Restore, in the child: blocks everything, installs the dumped
 * dispositions and queues the pending signals to itself.  The dumped mask
 * is set by the restorer at the very end. */
int signals_restore_child(const struct restore_task *t, cr_error_t *err);

/* Restore, in the child, once its other threads exist: their private
 * pending signals. */
int signals_queue_thread_pending(const struct restore_task *t, cr_error_t *err);

#endif
