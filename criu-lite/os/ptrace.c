#include "os/ptrace.h"
#include "os/log.h"
#include "os/xalloc.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define XSTATE_MAX (64 * 1024)

static bool is_group_stop_sig(int sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static bool has_cap_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data) < 0)
		return false;
	return (data[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1;
}

unsigned ptrace_suspend_seccomp(void)
{
	static int option = -1;

	if (option < 0)
		option = has_cap_sys_admin() && prctl(PR_GET_SECCOMP) == 0 ? PTRACE_O_SUSPEND_SECCOMP : 0;
	return (unsigned)option;
}

int ptrace_wait_stop(pid_t tid, int *status, cr_error_t *err)
{
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return cr_error(err, errno, "wait for task %d", tid);
		if (WIFEXITED(*status))
			return cr_error(err, 0, "task %d exited with status %d", tid, WEXITSTATUS(*status));
		if (WIFSIGNALED(*status))
			return cr_error(err, 0, "task %d was killed by signal %d", tid, WTERMSIG(*status));
		return 0;
	}
}

/* The task's tracer (a debugger, strace), or 0. */
static pid_t tracer_of(pid_t tid, char *comm, size_t size)
{
	char path[64], line[128];
	pid_t tracer = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "TracerPid: %d", &tracer) == 1)
			break;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)tracer);
	comm[0] = '\0';
	if (tracer > 0 && (f = fopen(path, "re")) != NULL) {
		if (fgets(comm, (int)size, f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	return tracer;
}

int ptrace_seize_interrupt(pid_t tid, unsigned options, cr_error_t *err)
{
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(unsigned long)options) < 0) {
		int e = errno;
		char comm[32];
		pid_t tracer = e == EPERM ? tracer_of(tid, comm, sizeof(comm)) : 0;

		if (tracer > 0)
			return cr_error(err, e, "seize task %d: it is traced by pid %d (%s: a debugger, strace), and a "
					"task has one tracer at most", tid, tracer, comm);
		return cr_error(err, e, "seize task %d%s", tid,
				(options & PTRACE_O_SUSPEND_SECCOMP) && (e == EPERM || e == EINVAL)
					? " (suspending its seccomp needs CAP_SYS_ADMIN in the initial user "
					  "namespace and CONFIG_CHECKPOINT_RESTORE)"
					: "");
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return cr_error(err, errno, "interrupt task %d", tid);
	return 0;
}

int ptrace_wait_interrupted(pid_t tid, int *stop_sig, cr_error_t *err)
{
	int status;

	*stop_sig = 0;
	for (int tries = 0; tries < 64; tries++) {
		int sig;

		if (ptrace_wait_stop(tid, &status, err) < 0)
			return -1;
		sig = WSTOPSIG(status);
		if (status >> 16 == PTRACE_EVENT_STOP) {
			*stop_sig = is_group_stop_sig(sig) ? sig : 0;
			return 0;
		}
		/* A signal-delivery stop: let the signal through; the
		 * interrupt is still pending and stops the task after it. */
		pr_debug("task %d: passing signal %d on during seize", tid, sig);
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig) < 0)
			return cr_error(err, errno, "resume task %d with signal %d", tid, sig);
	}
	return cr_error(err, 0, "task %d: kept receiving signals, could not stop it", tid);
}

int ptrace_join_group_stop(pid_t tid, cr_error_t *err)
{
	int status, sig = 0;

	for (int tries = 0; tries < 64; tries++) {
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig) < 0)
			return cr_error(err, errno, "resume task %d into its group stop", tid);
		if (ptrace_wait_stop(tid, &status, err) < 0)
			return -1;
		sig = 0;
		if (status >> 16 == PTRACE_EVENT_STOP) {
			if (is_group_stop_sig(WSTOPSIG(status)))
				return 0;
			continue;   /* a trap of its own, not the stop yet */
		}
		if (status >> 16 == 0)
			sig = WSTOPSIG(status);   /* SIGSTOP starts the stop; others go through */
	}
	return cr_error(err, 0, "task %d kept receiving signals, never entered its group stop", tid);
}

int ptrace_seize_stop(pid_t tid, unsigned options, int *stop_sig, cr_error_t *err)
{
	*stop_sig = 0;
	if (ptrace_seize_interrupt(tid, options, err) < 0)
		return -1;
	return ptrace_wait_interrupted(tid, stop_sig, err);
}

int ptrace_release(pid_t tid, int sig, cr_error_t *err)
{
	if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) < 0)
		return cr_error(err, errno, "detach from task %d", tid);
	return 0;
}

int ptrace_get_regs(pid_t tid, struct user_regs_struct *regs, cr_error_t *err)
{
	if (ptrace(PTRACE_GETREGS, tid, NULL, regs) < 0)
		return cr_error(err, errno, "read registers of task %d", tid);
	return 0;
}

int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs, cr_error_t *err)
{
	if (ptrace(PTRACE_SETREGS, tid, NULL, regs) < 0)
		return cr_error(err, errno, "set registers of task %d", tid);
	return 0;
}

int ptrace_get_xstate(pid_t tid, void **buf, size_t *len, cr_error_t *err)
{
	void *tmp = xmalloc(XSTATE_MAX);
	struct iovec iov = { .iov_base = tmp, .iov_len = XSTATE_MAX };

	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0) {
		free(tmp);
		return cr_error(err, errno, "read xstate of task %d", tid);
	}
	*buf = tmp;
	*len = iov.iov_len;
	return 0;
}

int ptrace_set_xstate(pid_t tid, const void *buf, size_t len, cr_error_t *err)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return cr_error(err, errno, "set xstate (%zu bytes) of task %d", len, tid);
	return 0;
}

int ptrace_get_sigmask(pid_t tid, uint64_t *mask, cr_error_t *err)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(*mask), mask) < 0)
		return cr_error(err, errno, "read signal mask of task %d", tid);
	return 0;
}

int ptrace_set_sigmask(pid_t tid, uint64_t mask, cr_error_t *err)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
		return cr_error(err, errno, "set signal mask of task %d", tid);
	return 0;
}

int ptrace_get_rseq(pid_t tid, struct ptrace_rseq_configuration *conf, bool *has, cr_error_t *err)
{
	memset(conf, 0, sizeof(*conf));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(*conf), conf) < 0)
		return cr_error(err, errno, "read rseq configuration of task %d", tid);
	*has = conf->rseq_abi_pointer != 0;
	return 0;
}
