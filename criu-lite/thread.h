/* Per-thread state: registers, rseq, robust futex list, clear_child_tid,
 * the alternate signal stack and the thread name. */
#ifndef CR_THREAD_H
#define CR_THREAD_H

#include "error.h"
#include "task.h"

/* Dump, with an active injector and t->scratch: fills t->core->threads[0]
 * (apart from the signal fields). */
int thread_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);

/* Restore validation: register and xstate sizes this CPU can honour. */
int thread_validate(const struct restore_task *t, uint32_t xstate_size, uint64_t xfeatures, cr_error_t *err);

/* Restore, in the child. */
int thread_restore_child(const struct restore_task *t, cr_error_t *err);
/* Restore, by injection: drops the child's own rseq registration (glibc
 * made one for cr) so the dumped one can come back later. */
int thread_forget_cr_rseq(struct restore_task *t, cr_error_t *err);
/* Restore, by injection: rseq, robust list, clear_child_tid, altstack. */
int thread_restore_injected(struct restore_task *t, cr_error_t *err);
/* Restore: the last injected syscall unmaps the trampoline; at its exit
 * stop the dumped registers and xstate go in. */
int thread_restore_final(struct restore_task *t, cr_error_t *err);

#endif
