/* Threads (a kind of state, state_threads): the restore's last step. */
#ifndef CR_THREADS_H
#define CR_THREADS_H

#include "os/error.h"
#include "state/task.h"

/* Restore: every other thread gets its mask, xstate and registers; then the
 * main thread's last injected syscall unmaps the trampoline, and at its
 * exit stop its own go in. */
int thread_restore_final(struct restore_task *t, cr_error_t *err);

#endif
