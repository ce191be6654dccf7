/* Seizing, stopping and releasing tasks, and their register sets. */
#ifndef CR_PTRACE_H
#define CR_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "os/error.h"

#include <sys/ptrace.h>

/* glibc names the rseq configuration with a leading __. */
#define ptrace_rseq_configuration __ptrace_rseq_configuration

/* Options every cr tracee gets: syscall stops are marked, and a tracee's
 * seccomp is suspended while cr traces it (ptrace_suspend_seccomp), so that
 * no syscall cr injects is ever filtered.  At restore a tracee also dies
 * with its tracer (so a killed restorer leaves nothing half-built). */
#define CR_PTRACE_OPTIONS_DUMP    (PTRACE_O_TRACESYSGOOD | ptrace_suspend_seccomp())
#define CR_PTRACE_OPTIONS_RESTORE (PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | ptrace_suspend_seccomp())

/* PTRACE_O_SUSPEND_SECCOMP when cr may use it, else 0.  A filter that
 * kills on mmap or rt_sigaction would kill a process being dumped at cr's
 * first injected call; a restored process gets its filters before its
 * credentials, and cr's calls after them must still run.  The kernel
 * allows the option (CONFIG_CHECKPOINT_RESTORE) to a tracer with
 * CAP_SYS_ADMIN in the initial user namespace and no seccomp of its own;
 * it ends with the trace.  Without it, a process with seccomp is refused
 * (state/seccomp.c). */
unsigned ptrace_suspend_seccomp(void);

/* Seizes a running task and waits until it is in a ptrace stop.  Signals
 * that arrive meanwhile are delivered (the process would have got them
 * anyway).  *stop_sig is the signal that stopped the task's process if it
 * was already in a group stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU), else 0. */
int ptrace_seize_stop(pid_t tid, unsigned options, int *stop_sig, cr_error_t *err);
/* The same in two halves: seize and interrupt without waiting, so that
 * the task stops while the caller does other work; then wait for the
 * stop. */
int ptrace_seize_interrupt(pid_t tid, unsigned options, cr_error_t *err);
int ptrace_wait_interrupted(pid_t tid, int *stop_sig, cr_error_t *err);

/* Runs a seized thread of a process that has been sent SIGSTOP until it
 * reports the group stop (passing on any other signal that comes first).
 * A group stop outlives its tracer: the kernel keeps a tracee whose
 * process is in one stopped when the tracer dies, where it would let a
 * tracee that is only in a ptrace stop run on. */
int ptrace_join_group_stop(pid_t tid, cr_error_t *err);

/* Waits for the next stop of a tracee; an exit is an error naming tid. */
int ptrace_wait_stop(pid_t tid, int *status, cr_error_t *err);

/* Detaches; sig is delivered on the way out (0 for none). */
int ptrace_release(pid_t tid, int sig, cr_error_t *err);

int ptrace_get_regs(pid_t tid, struct user_regs_struct *regs, cr_error_t *err);
int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs, cr_error_t *err);
/* NT_X86_XSTATE; *buf is malloc'd. */
int ptrace_get_xstate(pid_t tid, void **buf, size_t *len, cr_error_t *err);
int ptrace_set_xstate(pid_t tid, const void *buf, size_t len, cr_error_t *err);
int ptrace_get_sigmask(pid_t tid, uint64_t *mask, cr_error_t *err);
int ptrace_set_sigmask(pid_t tid, uint64_t mask, cr_error_t *err);
/* *has is false when the task has no rseq registered. */
int ptrace_get_rseq(pid_t tid, struct ptrace_rseq_configuration *conf, bool *has, cr_error_t *err);

#endif
