#ifndef CR_DUMP_H
#define CR_DUMP_H

#include "os/error.h"
#include "state/task.h"

/* Checkpoints the process pid into opts->dir. On failure the process is
 * left running as it was and no partial images remain. */
int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err);
/* A pre-copy round (dump/predump.c): the pages of the tree of pid into
 * opts->dir while it runs on, write tracking armed for the next round. */
int cr_pre_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err);

#endif
