#include "os/pidsel.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <time.h>

#define MAX_LEVELS 32

const char *pidsel_format(char *buf, size_t size, const uint32_t *pids, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++) {
		int len = snprintf(buf + used, size - used, "%s%u", i ? "/" : "", pids[i]);

		if (len < 0)
			break;
		used += (size_t)len;
	}
	if (n == 0)
		snprintf(buf, size, "?");
	return buf;
}

const char *pidsel_backend_name(enum pid_backend b)
{
	switch (b) {
	case PID_BACKEND_CLONE3: return "clone3";
	case PID_BACKEND_NS_LAST_PID: return "ns_last_pid";
	case PID_BACKEND_CLONE2: return "clone2";
	default: return "auto";
	}
}

int pidsel_backend_parse(const char *name, enum pid_backend *out, cr_error_t *err)
{
	if (strcmp(name, "clone3") == 0)
		*out = PID_BACKEND_CLONE3;
	else if (strcmp(name, "ns_last_pid") == 0)
		*out = PID_BACKEND_NS_LAST_PID;
	else if (strcmp(name, "clone2") == 0)
		*out = PID_BACKEND_CLONE2;
	else if (strcmp(name, "auto") == 0)
		*out = PID_BACKEND_AUTO;
	else
		return cr_error(err, 0, "unknown pid backend '%s' (clone3, clone2, ns_last_pid)", name);
	return 0;
}

static pid_t fork_clone3(const uint32_t *pids, size_t n, uint64_t flags, int exit_signal, cr_error_t *err)
{
	pid_t set_tid[MAX_LEVELS];
	struct clone_args args;
	long r;

	/* clone3 wants the innermost level first. */
	for (size_t i = 0; i < n; i++)
		set_tid[i] = (pid_t)pids[n - 1 - i];
	memset(&args, 0, sizeof(args));
	args.flags = flags;
	args.exit_signal = (uint64_t)exit_signal;
	args.set_tid = (uint64_t)(uintptr_t)set_tid;
	args.set_tid_size = n;
	r = syscall(SYS_clone3, &args, sizeof(args));
	if (r < 0) {
		if (errno == EEXIST)
			return cr_error(err, EEXIST, "create pid %u: it is taken", pids[n - 1]);
		return cr_error(err, errno, "clone3 with pid %u", pids[n - 1]);
	}
	return (pid_t)r;
}

static pid_t fork_ns_last_pid(const uint32_t *pids, size_t n, uint64_t flags, int exit_signal, cr_error_t *err)
{
	cleanup_close int fd = -1;
	char buf[32];
	int len;
	pid_t child;

	if (n != 1 || flags)
		return cr_error(err, 0, "ns_last_pid can set only one pid level in the caller's namespace; "
				"pid %u needs %zu (use clone3 or clone2)", pids[n - 1], n);
	fd = open("/proc/sys/kernel/ns_last_pid", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open /proc/sys/kernel/ns_last_pid");
	/* Serialises cr processes; other forks on the host can still race. */
	if (flock(fd, LOCK_EX) < 0)
		return cr_error(err, errno, "lock ns_last_pid");
	len = snprintf(buf, sizeof(buf), "%u", pids[0] - 1);
	if (write(fd, buf, (size_t)len) != len)
		return cr_error(err, errno, "write ns_last_pid");
	child = (pid_t)syscall(SYS_clone, (unsigned long)exit_signal, 0, 0, 0, 0);
	if (child < 0)
		return cr_error(err, errno, "fork for pid %u", pids[0]);
	if (child > 0 && (uint32_t)child != pids[0]) {
		kill(child, SIGKILL);
		return cr_error(err, EEXIST, "ns_last_pid gave pid %d instead of %u (another process forked "
				"meanwhile)", child, pids[0]);
	}
	return child;
}

pid_t pidsel_fork(enum pid_backend b, const uint32_t *pids, size_t n, uint64_t flags, int exit_signal,
		  cr_error_t *err)
{
	if (n == 0 || n > MAX_LEVELS)
		return cr_error(err, 0, "a pid set of %zu levels is not possible", n);
	if (b == PID_BACKEND_NS_LAST_PID)
		return fork_ns_last_pid(pids, n, flags, exit_signal, err);
	if (b == PID_BACKEND_CLONE2) {
		if (!clone2_available())
			return cr_error(err, ENOSYS, "this kernel has no clone2 syscall (see kernel-patches/)");
		return clone2_fork(pids, n, flags, exit_signal, err);
	}
	return fork_clone3(pids, n, flags, exit_signal, err);
}

/* ZOMBIE_TELL_NS into a wait for a zombie the wait is told about. */
#define ZOMBIE_TELL_NS 200000000ull

uint64_t pidsel_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Whether pid is held by a zombie; *ppid and name (64 bytes) say whose. */
static bool held_by_zombie(pid_t pid, pid_t *ppid, char name[64])
{
	struct proc_status st;
	cr_error_t ignored = NULL;
	bool zombie;

	if (proc_read_status(pid, 0, &st, &ignored) < 0) {
		cr_error_release(&ignored);
		return false;
	}
	zombie = st.state == 'Z';
	*ppid = st.ppid;
	snprintf(name, 64, "%s", st.name);
	proc_status_free(&st);
	return zombie;
}

int pidsel_wait_free(pid_t pid, uint64_t deadline_ns, cr_error_t *err)
{
	struct timespec pause = { .tv_nsec = 1000000 };
	uint64_t start = pidsel_now_ns(), now = start;
	bool told = false;
	char name[64];
	pid_t ppid;

	while ((kill(pid, 0) == 0 || errno != ESRCH) && held_by_zombie(pid, &ppid, name)) {
		if (now >= deadline_ns)
			return cr_error(err, EEXIST, "pid %d is taken by a zombie (%s) that its parent %d has not "
					"reaped in %.1f s", pid, name, ppid, (double)(now - start) / 1e9);
		if (!told && now - start >= ZOMBIE_TELL_NS) {
			pr_warn("pid %d is taken by a zombie (%s) that its parent %d has not reaped yet: waiting "
				"up to %.0f s", pid, name, ppid, (double)(deadline_ns - start) / 1e9);
			told = true;
		}
		nanosleep(&pause, NULL);
		now = pidsel_now_ns();
	}
	if (told)
		pr_info("pid %d is free after %.2f s", pid, (double)(pidsel_now_ns() - start) / 1e9);
	return pidsel_check_free(pid, err);
}

int pidsel_check_free(pid_t pid, cr_error_t *err)
{
	struct proc_status st;
	cr_error_t ignored = NULL;
	int ret;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	if (proc_read_status(pid, 0, &st, &ignored) < 0) {
		cr_error_release(&ignored);
		return cr_error(err, EEXIST, "pid %d is taken by another process", pid);
	}
	if (st.state == 'Z')
		ret = cr_error(err, EEXIST, "pid %d is taken by a zombie (%s) that its parent %d has not reaped yet",
			       pid, st.name, st.ppid);
	else
		ret = cr_error(err, EEXIST, "pid %d is taken by a running process: %s (parent %d)", pid,
			       st.name, st.ppid);
	proc_status_free(&st);
	return ret;
}
