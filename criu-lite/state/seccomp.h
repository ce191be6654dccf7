/* Seccomp (state/seccomp.c): what the trampoline must hold for it. */
#ifndef CR_SECCOMP_H
#define CR_SECCOMP_H

#include <stdint.h>

#include "state/task.h"

/* Bytes of the trampoline's filter area for t (validated): the filters
 * every thread shares and the most any one thread adds, each with its
 * struct sock_fprog.  0 without filters. */
uint64_t seccomp_tramp_bytes(const struct restore_task *t);

#endif
