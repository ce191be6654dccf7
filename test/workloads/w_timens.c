/*
 * w_timens STATE_DIR [outsider]
 *
 * R unshares a time namespace for its children (unshare(CLONE_NEWTIME))
 * with CLOCK_MONOTONIC and CLOCK_BOOTTIME OFFSET_S seconds ahead of the
 * host's, and forks C, which lives in it; R itself stays in the host's.
 *
 * On the trigger:
 *   - R reads its clocks, asks C for C's (through the vdso and through
 *     the system call), reads its own again: C's must lie exactly
 *     OFFSET_S ahead of R's (within the time the question took), and not
 *     below what C read before the dump: the clocks go on;
 *   - /proc/self/timens_offsets of R (its namespace for children) still
 *     reads OFFSET_S for both clocks;
 *   - R forks a new child, which must be born in the namespace too (R's
 *     time namespace for children came back, not only C's namespace).
 *   - C's absolute CLOCK_MONOTONIC timerfd, armed TIMER_S ahead on C's
 *     clock, still has TIMER_S (less the time since) to go: its expiry is
 *     on the namespace's clock, not on the host's.
 * A restore that put C in the host's namespace, or lost the offsets, or
 * R's namespace for children, or armed the timer on the host's clock,
 * fails here.
 *
 * With "outsider" as second argument the namespace is made by a child
 * and entered by its sibling: the dump must refuse (see start_outsider).
 *
 * Sabotage "clock": C moves itself into R's time namespace, the host's,
 * before it answers.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define OFFSET_S   1000
#define NS         1000000000LL
#define SLACK_NS   2000000LL      /* scheduling between two readings */
#define TIMER_S    3600

struct answer {
	int64_t mono, boot;           /* through the vdso */
	int64_t mono_sys, boot_sys;   /* through the system call */
	int64_t timer_left;           /* of the absolute timerfd */
	int64_t mono_after;           /* CLOCK_MONOTONIC once the timer is read */
};

static int cmd[2], answer[2];
static struct answer c_setup;     /* what C read before the dump */
static int timer = -1;            /* C's */

static int64_t sys_clock(clockid_t clk)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, clk, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static void read_clocks(struct answer *c)
{
	struct itimerspec left = { 0 };

	c->mono = wl_now_ns(CLOCK_MONOTONIC);
	c->boot = wl_now_ns(CLOCK_BOOTTIME);
	c->mono_sys = sys_clock(CLOCK_MONOTONIC);
	c->boot_sys = sys_clock(CLOCK_BOOTTIME);
	c->timer_left = -1;
	if (timer >= 0 && timerfd_gettime(timer, &left) == 0)
		c->timer_left = (int64_t)left.it_value.tv_sec * NS + left.it_value.tv_nsec;
	c->mono_after = wl_now_ns(CLOCK_MONOTONIC);
}

/* An absolute timer TIMER_S ahead on C's clock. */
static void arm_timer(void)
{
	struct itimerspec at = { .it_value = { .tv_sec = (time_t)(wl_now_ns(CLOCK_MONOTONIC) / NS) + TIMER_S } };

	timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (timer < 0 || timerfd_settime(timer, TFD_TIMER_ABSTIME, &at, NULL) < 0)
		_exit(6);
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Answers each byte on cmd with its clocks; a byte 's' first moves it to
 * the host's time namespace (the sabotage). */
static __attribute__((noreturn)) void child_main(void)
{
	struct answer c;
	char b;

	arm_timer();
	read_clocks(&c);
	if (write(answer[1], &c, sizeof(c)) != sizeof(c))
		_exit(3);
	while (read_full(cmd[0], &b, 1) == 0) {
		if (b == 'q')
			_exit(0);
		if (b == 's') {   /* R lives in the host's time namespace */
			char path[64];
			int host;

			snprintf(path, sizeof(path), "/proc/%d/ns/time", (int)getppid());
			host = open(path, O_RDONLY | O_CLOEXEC);

			if (host < 0 || setns(host, CLONE_NEWTIME) < 0)
				_exit(4);
			close(host);
		}
		read_clocks(&c);
		if (write(answer[1], &c, sizeof(c)) != sizeof(c))
			_exit(3);
	}
	_exit(5);
}

static void make_namespace(void)
{
	char offsets[64];
	int fd, n;

	if (unshare(CLONE_NEWTIME) < 0)
		wl_fatal("unshare(CLONE_NEWTIME): %s", strerror(errno));
	n = snprintf(offsets, sizeof(offsets), "monotonic %d 0\nboottime %d 0\n", OFFSET_S, OFFSET_S);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, offsets, (size_t)n) != n)
		wl_fatal("write the offsets: %s", strerror(errno));
	close(fd);
}

/* clk of C (cval) must be OFFSET_S ahead of R's between before and after. */
static void check_ahead(const char *what, int64_t before, int64_t cval, int64_t after)
{
	int64_t lo = before + OFFSET_S * NS - SLACK_NS, hi = after + OFFSET_S * NS + SLACK_NS;

	wl_check(cval >= lo && cval <= hi,
		 "%s of the child is %.6f s ahead of the host's, want %d s (host %.6f..%.6f, child %.6f)", what,
		 (double)(cval - before) / NS, OFFSET_S, (double)before / NS, (double)after / NS, (double)cval / NS);
}

static void check_child(bool sabotage)
{
	struct answer before, c, after;

	read_clocks(&before);
	if (!wl_check(write(cmd[1], sabotage ? "s" : "c", 1) == 1, "write to the child") ||
	    !wl_check(read_full(answer[0], &c, sizeof(c)) == 0, "no answer from the child"))
		return;
	read_clocks(&after);
	check_ahead("CLOCK_MONOTONIC", before.mono, c.mono, after.mono);
	check_ahead("CLOCK_BOOTTIME", before.boot, c.boot, after.boot);
	check_ahead("CLOCK_MONOTONIC (syscall)", before.mono_sys, c.mono_sys, after.mono_sys);
	check_ahead("CLOCK_BOOTTIME (syscall)", before.boot_sys, c.boot_sys, after.boot_sys);
	wl_check(c.mono >= c_setup.mono && c.boot >= c_setup.boot,
		 "the child's clocks went back: monotonic %.6f s, was %.6f s", (double)c.mono / NS,
		 (double)c_setup.mono / NS);
	/* Its expiry stands on C's clock: what is left shrank by what passed,
	 * at most by the time from the setup's first reading to this one's
	 * last (each timer reading lies between its two clock readings, so a
	 * preemption between them widens the bound instead of failing it). */
	wl_check(c.timer_left > 0 && c.timer_left <= c_setup.timer_left &&
		 c.timer_left >= c_setup.timer_left - (c.mono_after - c_setup.mono) - SLACK_NS,
		 "the child's absolute timerfd has %.3f s left, had %.3f s with %.3f s passed since",
		 (double)c.timer_left / NS, (double)c_setup.timer_left / NS,
		 (double)(c.mono_after - c_setup.mono) / NS);
}

static void check_offsets(void)
{
	char text[256];
	long long mono = -1, boot = -1, mono_ns = -1, boot_ns = -1;

	if (!wl_check(wl_read_path("/proc/self/timens_offsets", text, sizeof(text)) > 0, "read timens_offsets"))
		return;
	wl_check(sscanf(text, "monotonic %lld %lld boottime %lld %lld", &mono, &mono_ns, &boot, &boot_ns) == 4 &&
		 mono == OFFSET_S && boot == OFFSET_S && mono_ns == 0 && boot_ns == 0,
		 "timens_offsets (R's namespace for children) reads '%s'", text);
}

/* A child forked now must be born in the namespace. */
static void check_new_child(void)
{
	int p[2], status;
	int64_t before, theirs = 0, after;
	pid_t pid;

	if (!wl_check(pipe(p) == 0, "pipe: %s", strerror(errno)))
		return;
	before = wl_now_ns(CLOCK_MONOTONIC);
	pid = fork();
	if (pid == 0) {
		int64_t now = wl_now_ns(CLOCK_MONOTONIC);

		_exit(write(p[1], &now, sizeof(now)) == sizeof(now) ? 0 : 1);
	}
	close(p[1]);
	if (!wl_check(pid > 0 && read_full(p[0], &theirs, sizeof(theirs)) == 0, "a new child did not answer"))
		return;
	after = wl_now_ns(CLOCK_MONOTONIC);
	close(p[0]);
	waitpid(pid, &status, 0);
	check_ahead("CLOCK_MONOTONIC of a child forked after the restore", before, theirs, after);
}

/* "outsider": P (a child of R) unshares the namespace for its own
 * children and Q, P's sibling, enters it with setns; R itself stays out.
 * Restore could not make that namespace (only P's unshare makes a
 * namespace for children apart from one's own, and Q needs it before P
 * can have forked anything): the dump must refuse, and the tree runs on. */
static pid_t start_outsider(pid_t *maker)
{
	int sync[2], hold[2];
	char path[64], ok;
	pid_t q;

	if (pipe(sync) < 0 || pipe(hold) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	*maker = fork();
	if (*maker == 0) {   /* P: waits until R closes hold */
		close(hold[1]);
		make_namespace();
		if (write(sync[1], "k", 1) != 1)
			_exit(3);
		_exit(read_full(hold[0], &ok, 1) < 0 ? 0 : 1);
	}
	close(hold[0]);
	if (*maker < 0 || read_full(sync[0], &ok, 1) < 0)
		wl_fatal("P did not make its namespace");
	snprintf(path, sizeof(path), "/proc/%d/ns/time_for_children", (int)*maker);
	q = fork();
	if (q == 0) {   /* Q: into P's namespace for children */
		int fd = open(path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWTIME) < 0)
			_exit(7);
		close(fd);
		close(hold[1]);
		child_main();
	}
	close(sync[0]);
	close(sync[1]);
	return q;   /* hold[1] stays open in R until it exits */
}

int main(int argc, char **argv)
{
	bool outsider = argc > 2 && strcmp(argv[2], "outsider") == 0;
	char what[32] = "";
	pid_t child, maker = 0;
	int status;

	wl_init(argc, argv);
	if (pipe(cmd) < 0 || pipe(answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	if (outsider) {
		child = start_outsider(&maker);
	} else {
		make_namespace();
		child = fork();
		if (child == 0)
			child_main();
	}
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (read_full(answer[0], &c_setup, sizeof(c_setup)) < 0)
		wl_fatal("the child did not start");
	if (outsider)
		wl_write_file("outsider", "%d %d\n", (int)maker, (int)child);
	wl_ready();
	wl_wait_trigger();

	wl_read_file("sabotage", what, sizeof(what));
	check_child(strncmp(what, "clock", 5) == 0);
	if (!outsider) {
		check_offsets();
		check_new_child();
	}
	wl_check(write(cmd[1], "q", 1) == 1, "write to the child");
	wl_check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "child did not exit cleanly (status 0x%x)", status);
	wl_finish();
}
