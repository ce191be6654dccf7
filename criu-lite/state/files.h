/* File descriptors and the file descriptions behind them. */
#ifndef CR_FILES_H
#define CR_FILES_H

#include "os/error.h"
#include "state/task.h"

/* Dump: records every fd of t, refusing kinds cr does not handle with an
 * error naming the pid, the fd and the kind. */
int files_dump_fds(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);

/* Dump, once every process is recorded: refuses descriptions that cannot be
 * shared between processes at restore. */
int files_check_sharing(const struct dump_ctx *ctx, cr_error_t *err);

/* Restore validation: fd numbers and file ids make sense. */
int files_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err);

/* Restore, in the root before anything else: keeps only the sync fd and
 * the caller's terminal (moved to their reserved slots); every process of
 * the tree inherits that clean table. */
int files_setup_root(const struct restore_ctx *ctx, int sync_fd, cr_error_t *err);
/* Restore, in each process before it forks its children: opens every
 * description this process is the lowest common ancestor of the holders
 * of, into the stash, where the holders inherit it. */
int files_open_shared(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
/* Restore, in the child after its children exist: installs every dumped fd
 * at its number (from the stash, or opened here), then opens the files its
 * VMAs map and its exe in the reserved slots. */
int files_restore_child(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);

/* Opens a regular file as recorded and checks it is the file that was
 * dumped (size, mtime) when strict; returns the fd. */
int files_open_reg(const FileEntry *fe, bool strict, cr_error_t *err);

/* Restore, in the child: moves fd (closing it) above every dumped and
 * reserved fd, where installing the dumped fds cannot overwrite it, and
 * returns its new number.  For kinds that create two descriptions at once
 * (a pipe's two ends) and keep one for a later fd.  The restorer closes
 * everything there before the process runs. */
int files_stash_fd(const struct restore_task *t, int fd, cr_error_t *err);

#endif
