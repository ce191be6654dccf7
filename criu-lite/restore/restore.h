#ifndef CR_RESTORE_H
#define CR_RESTORE_H

#include "os/error.h"
#include "os/pidsel.h"
#include "state/task.h"

/* Restores the dump in opts->dir.  Without detach, waits for the restored
 * process and stores its exit status (128+signal if killed) in *status. */
int cr_restore(const struct restore_opts *opts, enum pid_backend backend, int *status, cr_error_t *err);
/* cr unlock: the network lock of the dump's connections (its nftables
 * tables) deleted, for a dump that will not be restored here: one moved
 * to another host, or given up. */
int cr_unlock(const struct restore_opts *opts, cr_error_t *err);

#endif
