/* File locks (state/locks.c): what the trampoline must hold for them. */
#ifndef CR_LOCKS_H
#define CR_LOCKS_H

#include <stdint.h>

#include "state/task.h"

/* Bytes of the trampoline's lock area for t: a struct flock per POSIX
 * lock, which the process takes again once cr's fds are closed. */
uint64_t locks_tramp_bytes(const struct restore_task *t);

#endif
