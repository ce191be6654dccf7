/* What an ipc namespace holds, for state/ns.c: read at dump from inside
 * the namespace by helpers (os/nsenter.h), recreated at restore in a new
 * one. */
#ifndef CR_IPCNS_H
#define CR_IPCNS_H

#include <sys/types.h>

#include "os/arena.h"
#include "os/error.h"
#include "ns.pb-c.h"

/* Dump: the limits, segments and queues of pid's ipc namespace; refuses,
 * listing them, what cannot come back (semaphore sets, POSIX message
 * queues, attached or locked segments, ...). */
int ipcns_dump(struct arena *a, pid_t pid, IpcNs **out, cr_error_t *err);

/* Restore: every value makes sense. */
int ipcns_validate(const IpcNs *ipc, cr_error_t *err);

/* Restore, in a process that has just unshared a new ipc namespace: its
 * limits, segments with their contents and queues with their messages,
 * each with its key, id, mode and owner. */
int ipcns_restore(const IpcNs *ipc, cr_error_t *err);

#endif
