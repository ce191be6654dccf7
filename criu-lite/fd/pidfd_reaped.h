/* A pidfd of a process that exited and was reaped (fdinfo "Pid: -1"):
 * what it can still tell is that the process ended, and how (the wait
 * status, PIDFD_GET_INFO with PIDFD_INFO_EXIT, Linux 6.15).
 *
 * Dump: the wait status, when the kernel keeps it; one with a core dump is
 * refused (cr would not make a core dump again).
 * Restore: the opening process makes a child (with no exit signal, so that
 * nothing is left pending in it), opens a pidfd of it, lets it end the
 * same way (an exit code, or a signal without a core dump) and reaps it;
 * the wait status the new pidfd gives is checked. */
#ifndef CR_FD_PIDFD_REAPED_H
#define CR_FD_PIDFD_REAPED_H

#include "fd-kinds.pb-c.h"
#include "os/error.h"

/* dup: cr's copy of the pidfd. */
int pidfd_reaped_dump(int dup, PidfdEntry *e, cr_error_t *err);
int pidfd_reaped_validate(const PidfdEntry *e, cr_error_t *err);
/* The new pidfd, opened with flags (PIDFD_NONBLOCK, PIDFD_THREAD). */
int pidfd_reaped_open(const PidfdEntry *e, unsigned flags, cr_error_t *err);

#endif
