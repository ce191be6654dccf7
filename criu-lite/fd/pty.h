/* Pseudo-terminal pairs (fd/pty.c): what the terminal kind asks. */
#ifndef CR_PTY_H
#define CR_PTY_H

#include <stddef.h>
#include <sys/types.h>

#include "state/task.h"

/* When slave is a pts whose master a process of the dump holds: "pid P fd
 * F, ..." in buf, returned; else NULL. */
const char *pty_master_holder(const struct dump_ctx *ctx, dev_t slave, char *buf, size_t len);

#endif
