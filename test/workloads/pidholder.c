/*
 * pidholder PID
 *
 * Test helper (not a workload): makes a child with exactly pid PID (clone3
 * with set_tid, in the caller's pid namespace) that does nothing until it is
 * killed, prints its pid and exits 0 (the child stays, orphaned). Exits 1 with
 * a message when the pid cannot be had. Unlike writing ns_last_pid, it does
 * not move the kernel's pid cursor, so other forks on the host do not land
 * on nearby pids.
 */
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct clone_args args;
	pid_t want, got;

	if (argc != 2 || (want = (pid_t)atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: %s PID\n", argv[0]);
		return 2;
	}
	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&want;
	args.set_tid_size = 1;
	fflush(NULL);
	got = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (got < 0) {
		fprintf(stderr, "pidholder: clone3 with pid %d: %s\n", (int)want, strerror(errno));
		return 1;
	}
	if (got == 0) {
		close_range(0, ~0u, 0);
		prctl(PR_SET_NAME, "pidholder", 0, 0, 0);
		for (;;)
			pause();
	}
	printf("%d\n", (int)got);
	return 0;
}
