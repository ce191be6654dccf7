#ifndef CR_DUMP_H
#define CR_DUMP_H

#include "os/error.h"
#include "state/task.h"

/* Checkpoints the process pid into opts->dir. On failure the process is
 * left running as it was and no partial images remain. */
int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err);

#endif
