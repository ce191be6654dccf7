/* The clone2 pid backend: the clone2() syscall that kernel-patches/ adds
 * (x86_64 syscall 548), found at run time.
 *
 *     long clone2(struct clone_struct *cs, pid_t *pids);
 *
 * pids[] is ordered outermost pid namespace first, as in pidsel, so the
 * pid set goes to the kernel as it is.  The exit signal rides in the low
 * byte of the flags, as with clone().  See kernel-patches/README. */
#include "os/log.h"
#include "os/pidsel.h"

#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CLONE2_NR 548      /* kernel-patches/0003: free in 6.1, ENOSYS elsewhere */
#define CLONE2_MAX_PIDS 32 /* the kernel's MAX_PID_NS_LEVEL */

/* struct clone_struct from the patched include/uapi/linux/sched.h. */
struct clone2_args {
	uint64_t flags;       /* clone flags | exit signal (CSIGNAL) */
	uint64_t child_stack; /* 0: a copy of the caller's stack, as fork() */
	uint32_t nr_pids;
	uint32_t reserved1;   /* must be 0 */
	uint64_t parent_tid;  /* pointers, 64-bit unlike the 2009 layout */
	uint64_t child_tid;
	uint64_t reserved2;   /* must be 0 */
};

_Static_assert(sizeof(struct clone2_args) == 48, "struct clone_struct is 48 bytes");

static long sys_clone2(struct clone2_args *args, pid_t *pids)
{
#ifdef __x86_64__
	return syscall(CLONE2_NR, args, pids);
#else
	(void)args;
	(void)pids;
	errno = ENOSYS;
	return -1;
#endif
}

/* A kernel with clone2 refuses a set reserved field with EINVAL before it
 * looks at anything else; one without it says ENOSYS.  Anything else
 * means the number belongs to some other syscall there: not clone2. */
static int probe_clone2(void)
{
	struct clone2_args probe = { .reserved1 = 1 };
	int saved = errno, present;

	present = sys_clone2(&probe, NULL) < 0 && errno == EINVAL;
	errno = saved;
	return present;
}

int clone2_available(void)
{
	static int cached = -1;

	if (cached < 0)
		cached = probe_clone2();
	return cached;
}

static int clone2_failure(int status, const uint32_t *pids, size_t n, cr_error_t *err)
{
	char set[CLONE2_MAX_PIDS * 12];

	pidsel_format(set, sizeof(set), pids, n);
	switch (status) {
	case EEXIST:
		return cr_error(err, EEXIST, "create pid %u (pid set %s): a pid of the set is taken", pids[n - 1],
				set);
	case EPERM:
		return cr_error(err, EPERM, "create pid %u (pid set %s): choosing pids needs CAP_CHECKPOINT_RESTORE "
				"or CAP_SYS_ADMIN over every namespace level", pids[n - 1], set);
	case EINVAL:
		return cr_error(err, EINVAL, "create pid %u (pid set %s): clone2 refused the set (a pid out of "
				"range, more pids than namespace levels, or a level without its init)", pids[n - 1],
				set);
	case ENOSYS:
		return cr_error(err, ENOSYS, "this kernel has no clone2 syscall (see kernel-patches/)");
	default:
		return cr_error(err, status, "clone2 with pid set %s", set);
	}
}

pid_t clone2_fork(const uint32_t *pids, size_t n, uint64_t flags, int exit_signal, cr_error_t *err)
{
	struct clone2_args args = { 0 };
	pid_t set[CLONE2_MAX_PIDS];
	long child;

	if (n == 0 || n > CLONE2_MAX_PIDS)
		return cr_error(err, 0, "clone2 takes 1 to %d pids, not %zu", CLONE2_MAX_PIDS, n);
	if (exit_signal < 0 || exit_signal > CSIGNAL)
		return cr_error(err, 0, "exit signal %d does not fit clone2's flags", exit_signal);
	if (flags & CSIGNAL)
		return cr_error(err, 0, "clone flags %#llx overlap the exit signal byte",
				(unsigned long long)flags);
	for (size_t i = 0; i < n; i++)
		set[i] = (pid_t)pids[i];
	args.flags = flags | (uint64_t)exit_signal;
	args.nr_pids = (uint32_t)n;
	child = sys_clone2(&args, set);
	if (child < 0)
		return clone2_failure(errno, pids, n, err);
	if (child > 0)
		pr_info("clone2 created pid %ld (innermost pid %u, %zu levels)", child, pids[n - 1], n);
	return (pid_t)child;
}
