/* Per-thread state: registers, signal mask and private pending signals,
 * rseq, robust futex list, clear_child_tid, the alternate signal stack and
 * the thread name. */
#ifndef CR_THREAD_H
#define CR_THREAD_H

#include "os/error.h"
#include "state/task.h"

/* Dump, with the thread's injector active and t->scratch mapped. */
int thread_dump(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th, cr_error_t *err);

/* Restore validation: register and xstate sizes this CPU can honour. */
int thread_validate(const struct restore_task *t, uint32_t xstate_size, uint64_t xfeatures, cr_error_t *err);

/* Restore, in the child (cr's code): the main thread's name, then the
 * other threads, each with its tids, parked in a pause() loop that touches
 * no memory until the restorer takes it over. */
int thread_restore_child(const struct restore_task *t, cr_error_t *err);
int thread_create_others(const struct restore_task *t, cr_error_t *err);
/* Restore: queues dropping the rseq registration glibc made for cr into
 * t->batch, to run before cr's memory goes. */
int thread_queue_forget_cr_rseq(struct restore_task *t, cr_error_t *err);
/* Restore: writes what the calls need into the trampoline and queues, into
 * t->batch, the thread's rseq, robust list, clear_child_tid, altstack and
 * name.  The batch must run in that very thread (th->inj), before another
 * thread's state is queued (they share the trampoline's slots). */
int thread_queue_state(struct restore_task *t, struct restore_thread *th, cr_error_t *err);
/* Restore: every other thread gets its mask, xstate and registers; then the
 * main thread's last injected syscall unmaps the trampoline, and at its
 * exit stop its own go in. */
int thread_restore_final(struct restore_task *t, cr_error_t *err);

#endif
