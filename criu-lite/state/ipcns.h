/* What an ipc namespace holds, for state/ns.c: read at dump from inside
 * the namespace by helpers (os/nsenter.h), recreated at restore in a new
 * one. */
#ifndef CR_IPCNS_H
#define CR_IPCNS_H

#include <sys/types.h>

#include "os/arena.h"
#include "os/error.h"
#include "ns.pb-c.h"

/* Dump: the limits, segments, queues and semaphore sets of pid's ipc
 * namespace; refuses, naming it, what cannot come back (a POSIX message
 * queue someone is notified by, attached or locked segments, ...). */
int ipcns_dump(struct arena *a, pid_t pid, IpcNs **out, cr_error_t *err);

/* Dump: the number of SysV semaphore sets in cr's own ipc namespace, or
 * -1 with err set. */
int ipcns_own_sem_sets(cr_error_t *err);

/* Dump: refuses thread tid of pid if it has a SysV semaphore undo list,
 * for a process whose ipc namespace holds semaphore sets: the adjustments
 * it may hold (SEM_UNDO) are shown by no kernel interface, and would be
 * lost.  The kernel gives a process a list when it uses SEM_UNDO, and
 * also when it makes a thread (CLONE_SYSVSEM), so a process with threads
 * is refused too. */
int ipcns_check_undo(pid_t pid, pid_t tid, cr_error_t *err);

/* Restore: every value makes sense. */
int ipcns_validate(const IpcNs *ipc, cr_error_t *err);

/* Restore, in a process that has just unshared a new ipc namespace: its
 * limits, segments with their contents and queues with their messages,
 * each with its key, id, mode and owner. */
int ipcns_restore(const IpcNs *ipc, cr_error_t *err);

#endif
