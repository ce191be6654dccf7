/* Signal-driven I/O (a kind of state, state_fown): the fd table records
 * each description's SIGIO owner and signal through fown_dump. */
#ifndef CR_FOWN_H
#define CR_FOWN_H

#include "fd/fdkind.h"

/* Dump: records fe's owner and signal, read through a duplicate of the fd. */
int fown_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe, cr_error_t *err);

#endif
