/* A pidfd of a process that exited and was reaped (see pidfd_reaped.h). */
#include "fd/pidfd_reaped.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Linux 6.13 (PIDFD_GET_INFO), 6.15 (PIDFD_INFO_EXIT); Debian 12's headers
 * have neither.  The first 64 bytes of the structure (its version 0). */
struct cr_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
};
#define CR_PIDFD_GET_INFO _IOWR(0xFF, 11, struct cr_pidfd_info)
#define CR_PIDFD_INFO_EXIT (1ULL << 3)

/* The wait status the kernel kept for the process of pidfd fd: 1 with
 * *status, 0 when it keeps none or cannot tell (a kernel before 6.15). */
static int exit_status_of(int fd, int32_t *status)
{
	struct cr_pidfd_info info;

	memset(&info, 0, sizeof(info));
	info.mask = CR_PIDFD_INFO_EXIT;
	if (ioctl(fd, CR_PIDFD_GET_INFO, &info) < 0 || !(info.mask & CR_PIDFD_INFO_EXIT))
		return 0;
	*status = info.exit_code;
	return 1;
}

/* A wait status an end gives: an exit code, or a signal without a core. */
static bool status_ok(int32_t s)
{
	if ((s & 0x7f) == 0)
		return (s & ~0xff00) == 0;
	return (s & ~0x7f) == 0 && (s & 0x7f) < NSIG && (s & 0x7f) != SIGSTOP;
}

int pidfd_reaped_dump(int dup, PidfdEntry *e, cr_error_t *err)
{
	int32_t status;

	e->pid = 0;
	e->has_reaped = e->reaped = true;
	if (exit_status_of(dup, &status) == 0)
		return 0;
	if (!status_ok(status))
		return cr_error(err, 0, "the process it refers to was reaped with wait status 0x%x (a core dump, "
				"which cr would not make again): unsupported", (unsigned)status);
	e->has_exit_status = true;
	e->exit_status = status;
	return 0;
}

int pidfd_reaped_validate(const PidfdEntry *e, cr_error_t *err)
{
	if (e->pid != 0 || e->in_dump || e->has_start_time)
		return cr_error(err, 0, "pidfd of a reaped process with a pid or a start time");
	if (e->has_exit_status && !status_ok(e->exit_status))
		return cr_error(err, 0, "pidfd of a reaped process with wait status 0x%x, which no end gives",
				(unsigned)e->exit_status);
	return 0;
}

/* The child: waits for its parent's word, then ends as the dumped process
 * did, without a core dump. */
static __attribute__((noreturn)) void end_as(const int go[2], int32_t status)
{
	char c;
	sigset_t all;

	close(go[1]);
	while (read(go[0], &c, 1) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(status)) {
		prctl(PR_SET_DUMPABLE, 0);
		signal(WTERMSIG(status), SIG_DFL);
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		syscall(SYS_kill, syscall(SYS_getpid), WTERMSIG(status));
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
}

int pidfd_reaped_open(const PidfdEntry *e, unsigned flags, cr_error_t *err)
{
	int32_t status = e->has_exit_status ? e->exit_status : 0, got;
	int go[2], fd = -1, w;
	pid_t child;

	if (pipe2(go, O_CLOEXEC) < 0)
		return cr_error(err, errno, "pipe");
	/* No signal at its end (exit signal 0): nothing pending is left in
	 * this process for the program to find. */
	child = (pid_t)syscall(SYS_clone, 0UL, 0UL, 0UL, 0UL, 0UL);
	if (child == 0)
		end_as(go, status);
	close(go[0]);
	if (child > 0)
		fd = (int)syscall(SYS_pidfd_open, child, flags);
	w = errno;
	close(go[1]);   /* the child goes on and ends */
	if (child < 0)
		return cr_error(err, w, "make a process to end");
	while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
		;
	if (fd < 0)
		return cr_error(err, w, "pidfd_open of the process made to end");
	if (e->has_exit_status && (exit_status_of(fd, &got) == 0 || got != status)) {
		close(fd);
		return cr_error(err, 0, "the process made to end as the dumped one did (wait status 0x%x) ended otherwise",
				(unsigned)status);
	}
	return fd;
}
