/*
 * w_pidfd STATE_DIR HELPER_PID
 * w_pidfd STATE_DIR dead
 *
 * With HELPER_PID (a process outside the dump, which the harness runs):
 * holds a pidfd of itself and one of the helper (PIDFD_NONBLOCK) and checks
 * after restore:
 *
 *   self     fdinfo Pid is its own pid; a SIGUSR1 sent through the pidfd
 *            (blocked) is pending in this very process.
 *   helper   fdinfo Pid is the helper's; O_NONBLOCK kept; the helper is
 *            alive (the pidfd is not readable); SIGKILL sent through the
 *            pidfd ends the helper (the pidfd becomes readable).
 *   Both are close-on-exec, as every pidfd is.
 *
 * With "dead": holds pidfds of two children that ended and were reaped
 * (fdinfo Pid: -1): one opened (PIDFD_NONBLOCK) before the child exited
 * with code 7, one opened while the other child was a zombie, killed by
 * SIGTERM.  Writes the first's fd number to "dead_fd".  After restore each
 * still says Pid -1, is readable (the process ended), keeps its flags and
 * gives the wait status it gave before (PIDFD_GET_INFO with
 * PIDFD_INFO_EXIT, where the kernel has it: 7 << 8 and SIGTERM), and no
 * child is left to reap.
 *
 * Sabotage: self (puts a pidfd of the helper in place of the self one).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int self_fd, helper_fd;
static pid_t helper;

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void check_self(void)
{
	sigset_t pending;

	wl_check(wl_fdinfo_field(self_fd, "Pid") == getpid(), "(self) pidfd refers to pid %ld, not %d",
		 wl_fdinfo_field(self_fd, "Pid"), getpid());
	wl_check(fcntl(self_fd, F_GETFD) == FD_CLOEXEC, "(self) close-on-exec lost");
	wl_check(syscall(SYS_pidfd_send_signal, self_fd, SIGUSR1, NULL, 0) == 0, "(self) pidfd_send_signal: %s",
		 strerror(errno));
	sigpending(&pending);
	wl_check(sigismember(&pending, SIGUSR1), "(self) the signal sent through the pidfd is not pending here");
}

static void check_helper(void)
{
	int fl = fcntl(helper_fd, F_GETFL);

	if (!wl_check(wl_fdinfo_field(helper_fd, "Pid") == helper, "(helper) pidfd refers to pid %ld, not %d",
		      wl_fdinfo_field(helper_fd, "Pid"), helper))
		return;
	wl_check(fl >= 0 && (fl & O_NONBLOCK), "(helper) O_NONBLOCK lost");
	wl_check(!readable(helper_fd, 0), "(helper) pidfd says the helper exited");
	wl_check(syscall(SYS_pidfd_send_signal, helper_fd, SIGKILL, NULL, 0) == 0, "(helper) pidfd_send_signal: %s",
		 strerror(errno));
	wl_check(readable(helper_fd, 5000), "(helper) pidfd does not see the helper exit");
}

/* Linux 6.15: the wait status a pidfd of a reaped process keeps (the first
 * 64 bytes of struct pidfd_info; Debian 12's headers lack it). */
struct info64 {
	uint64_t mask, cgroupid;
	uint32_t ids[11];
	int32_t exit_code;
};

static long exit_info(int fd)
{
	struct info64 i = { .mask = 1u << 3 };   /* PIDFD_INFO_EXIT */

	if (ioctl(fd, _IOWR(0xFF, 11, struct info64), &i) < 0 || !(i.mask & (1u << 3)))
		return -1;
	return i.exit_code;
}

/* A pidfd of a child that ends (exit code 7, or SIGTERM) and is reaped;
 * opened before it ends, or while it is a zombie. */
static int reaped_pidfd(bool killed, bool before)
{
	pid_t child = fork();
	int fd = -1;

	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0) {
		if (killed)
			pause();
		_exit(7);
	}
	if (before)
		fd = pidfd_open(child, PIDFD_NONBLOCK);
	if (killed)
		kill(child, SIGTERM);
	if (!before) {
		siginfo_t si;

		waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT);
		fd = pidfd_open(child, 0);
	}
	if (fd < 0 || waitpid(child, NULL, 0) != child)
		wl_fatal("pidfd_open/waitpid: %s", strerror(errno));
	if (wl_fdinfo_field(fd, "Pid") != -1)
		wl_fatal("fdinfo of a reaped child's pidfd shows Pid %ld", wl_fdinfo_field(fd, "Pid"));
	return fd;
}

static void check_reaped(const char *what, int fd, long status, int flags)
{
	wl_check(wl_fdinfo_field(fd, "Pid") == -1, "(%s) pidfd now refers to pid %ld", what, wl_fdinfo_field(fd, "Pid"));
	wl_check(readable(fd, 0), "(%s) the pidfd does not say its process ended", what);
	wl_check((fcntl(fd, F_GETFL) & O_NONBLOCK) == flags, "(%s) flags 0%o", what, fcntl(fd, F_GETFL));
	wl_check(exit_info(fd) == status, "(%s) wait status %ld, it was %ld", what, exit_info(fd), status);
}

static int dead_main(void)
{
	int exited = reaped_pidfd(false, true), killed = reaped_pidfd(true, false);
	long exited_status = exit_info(exited), killed_status = exit_info(killed);

	wl_write_file("dead_fd", "%d\n", exited);
	wl_ready();
	wl_wait_trigger();
	check_reaped("exited", exited, exited_status, O_NONBLOCK);
	check_reaped("killed", killed, killed_status, 0);
	wl_check(exited_status == -1 || (exited_status == 7 << 8 && killed_status == SIGTERM),
		 "the kernel keeps wait statuses %ld and %ld, not exit 7 and SIGTERM", exited_status, killed_status);
	wl_check(waitpid(-1, NULL, WNOHANG | __WALL) < 0 && errno == ECHILD, "a child is left to reap");
	wl_finish();
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "self") == 0)
		dup3(pidfd_open(helper, 0), self_fd, O_CLOEXEC);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	sigset_t usr1;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_pidfd STATE_DIR HELPER_PID|dead");
	if (strcmp(argv[2], "dead") == 0)
		return dead_main();
	helper = (pid_t)atoi(argv[2]);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	self_fd = pidfd_open(getpid(), 0);
	helper_fd = pidfd_open(helper, PIDFD_NONBLOCK);
	if (self_fd < 0 || helper_fd < 0)
		wl_fatal("pidfd_open: %s", strerror(errno));
	wl_ready();
	wl_wait_trigger();
	sabotage();
	check_self();
	check_helper();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
