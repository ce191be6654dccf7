/* Pid selection: creating a process with chosen pids, one per pid
 * namespace level, in the clone2 tradition (see DESIGN.md). */
#ifndef CR_PIDSEL_H
#define CR_PIDSEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "os/error.h"

enum pid_backend {
	PID_BACKEND_AUTO = 0,
	PID_BACKEND_CLONE3,      /* clone3() with set_tid (Linux 5.5+) */
	PID_BACKEND_NS_LAST_PID, /* /proc/sys/kernel/ns_last_pid + fork: one level, racy */
	PID_BACKEND_CLONE2,      /* clone2() from kernel-patches/ */
};

/* The clone2 backend, in clone2.c: whether this kernel has the syscall,
 * and a fork through it with pids[] outermost level first (the seed's
 * order). */
int clone2_available(void);
pid_t clone2_fork(const uint32_t *pids, size_t n, uint64_t flags, int exit_signal, cr_error_t *err);

/* A pid set as messages and cr show print it, outermost level first:
 * "4242" or "4242/17/1"; "?" for an empty set.  Cut short to fit size
 * (which must be at least 1); returns buf. */
const char *pidsel_format(char *buf, size_t size, const uint32_t *pids, size_t n);

const char *pidsel_backend_name(enum pid_backend b);
int pidsel_backend_parse(const char *name, enum pid_backend *out, cr_error_t *err);

/* Forks a child whose pid is pids[i] at each of the n innermost
 * pid-namespace levels of the child, pids[n-1] being the innermost (the
 * child's own namespace) and pids[0] the outermost one set.  flags may
 * hold CLONE_NEWPID (the child is init of a new namespace, pids[n-1] = 1).
 * Returns 0 in the child, the child's pid as the caller sees it, -1 on
 * error. */
pid_t pidsel_fork(enum pid_backend b, const uint32_t *pids, size_t n, uint64_t flags, int exit_signal,
		  cr_error_t *err);

/* Fails with a message naming the holder when pid is in use. */
int pidsel_check_free(pid_t pid, cr_error_t *err);
/* The same, but a zombie holding pid (a process of the dump just made,
 * dead, that its parent has not reaped yet: cr dump does not wait for
 * someone else's reaping) is waited for, saying so, until the
 * CLOCK_MONOTONIC time deadline_ns. */
int pidsel_wait_free(pid_t pid, uint64_t deadline_ns, cr_error_t *err);
uint64_t pidsel_now_ns(void);

#endif
