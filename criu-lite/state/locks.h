/* File locks (state/locks.c): /proc/locks read ahead, and what the
 * trampoline must hold for them. */
#ifndef CR_LOCKS_H
#define CR_LOCKS_H

#include <stdint.h>

#include "state/task.h"

/* Bytes of the trampoline's lock area for t: a struct flock per POSIX
 * lock, which the process takes again once cr's fds are closed. */
uint64_t locks_tramp_bytes(const struct restore_task *t);

/* Reading /proc/locks makes the kernel wait for an RCU grace period (some
 * 10 to 20 ms here) before it takes the lock that the read needs, unless
 * another read took it less than a grace period ago.  Dump, before the
 * freeze: a thread of cr's reads /proc/locks every 2 ms (locks_warm_up),
 * so that the read that counts, started once the tree is frozen
 * (locks_prefetch: its locks cannot change any more), does not wait; the
 * check that follows the collection takes its result.  Each read walks
 * every lock of the host while the kernel's lock is held: a read that
 * takes over 0.5 ms stops the warming. */
void locks_warm_up(void);
void locks_prefetch(void);

#endif
