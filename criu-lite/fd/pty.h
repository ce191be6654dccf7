/* Pseudo-terminal pairs (fd/pty.c): what the controlling terminal asks. */
#ifndef CR_PTY_H
#define CR_PTY_H

#include <stdbool.h>
#include <sys/types.h>

#include "state/task.h"

/* Dump: slave is the pts of a pty whose master a process of the dump holds. */
bool pty_pair_in_dump(const struct dump_ctx *ctx, dev_t slave);
/* Restore: slave is the pts of a pty pair the dump restores. */
bool pty_in_dump(const struct restore_ctx *ctx, dev_t slave);

#endif
