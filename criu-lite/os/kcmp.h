/* Kernel objects shared between processes (kcmp(2)): an fd table, fs
 * state, signal handlers, an address space.  cr recreates such objects
 * per process, so a kind of state refuses a tree in which two processes
 * share one. */
#ifndef CR_KCMP_H
#define CR_KCMP_H

#include <stddef.h>
#include <sys/types.h>

#include "os/error.h"

/* Sorts pids by the object of kcmp type (KCMP_FILES, KCMP_FS, ...) they
 * hold and finds two that hold the same one: returns 1 with *a and *b set,
 * 0 if every process holds its own, -1 with err set if kcmp fails. */
int kcmp_find_shared(pid_t *pids, size_t n, int type, pid_t *a, pid_t *b, cr_error_t *err);

#endif
