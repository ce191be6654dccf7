/* For the kinds that recreate a kernel object per process (the fd table,
 * fs state, signal handlers): two processes of the tree that share one
 * (clone with CLONE_FILES, CLONE_FS, CLONE_SIGHAND but not CLONE_THREAD)
 * would come back each with its own copy, so such a tree is refused. */
#ifndef CR_SHARING_H
#define CR_SHARING_H

#include "os/error.h"
#include "state/task.h"

/* Refuses, naming both processes and what (e.g. "fd table"), when two
 * live processes of the tree share the object of kcmp type. */
int sharing_refuse(const struct dump_ctx *ctx, int type, const char *what, cr_error_t *err);

#endif
