/*
 * w_syscall STATE_DIR WHICH [expect-restored|control]
 *
 * Blocks in one system call until the trigger and checks that the call came
 * back the way the kernel would have brought it back after a signal.
 *
 * When a ptrace stop interrupts a blocking call, the task stops with one of
 * the kernel's restart codes in %rax. Which one depends on the call (seen on
 * this kernel with ptrace, PTRACE_INTERRUPT and PTRACE_GETREGS):
 *
 *   restart class, -ERESTARTNOHAND (-514) or -ERESTARTSYS (-512):
 *     pause, rt_sigsuspend, ppoll (with or without timeout), futex wait
 *     without timeout; and poll without a timeout, whose -516 (below) cr
 *     turns into a new poll: the restart block holds nothing its registers
 *     do not (util-linux script quits on EINTR from poll). The restored
 *     task must re-enter the call and keep
 *     waiting: it may only return once the trigger's handler ran. ppoll
 *     writes the time left back to its timespec before it stops, so the
 *     restarted call waits only for what was left.
 *
 *   eintr class, -ERESTART_RESTARTBLOCK (-516):
 *     nanosleep, clock_nanosleep (relative), poll with a timeout (poll(2)
 *     always sets up a restart block, with or without one). The restart
 *     block lives in the kernel, so cr returns -1/EINTR from the call right
 *     after restore, before any trigger ("expect-restored"); nanosleep has
 *     written the time left to *rem by then.
 *
 * In "control" mode (no dump) every call must return -1/EINTR because of the
 * trigger. In "expect-restored" mode (the default) an eintr-class call that
 * was not interrupted before the trigger is a failure.
 *
 * rt_sigsuspend and ppoll run with a temporary signal mask; the kernel puts
 * the task's own mask back when they return (TIF_RESTORE_SIGMASK, visible to
 * a tracer through PTRACE_GETSIGMASK). The workload checks that mask after
 * the call.
 *
 * Files: syscall_nr holds the number of the blocking call (the harness dumps
 * only once the task sits in it); syscall_nr_restored the call the task must
 * be blocked in after a restore, before it is triggered.
 */
#include "wl.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum klass { RESTART, EINTR_EARLY };

enum extra { NONE, WITH_MASK, WITH_REM, WITH_TIMEOUT_LEFT };

struct variant {
	const char *name;
	long nr;
	enum klass klass;
	enum extra extra;
};

static const struct variant variants[] = {
	{ "pause", SYS_pause, RESTART, NONE },
	{ "sigsuspend", SYS_rt_sigsuspend, RESTART, WITH_MASK },
	{ "ppoll_inf", SYS_ppoll, RESTART, WITH_MASK },
	{ "ppoll_timeout", SYS_ppoll, RESTART, WITH_TIMEOUT_LEFT },
	{ "futex", SYS_futex, RESTART, NONE },
	{ "nanosleep", SYS_nanosleep, EINTR_EARLY, WITH_REM },
	{ "clock_nanosleep", SYS_clock_nanosleep, EINTR_EARLY, WITH_REM },
	{ "poll_inf", SYS_poll, RESTART, NONE },
	{ "poll_timeout", SYS_poll, EINTR_EARLY, NONE },
};

#define SLEEP_SEC 60
#define PPOLL_SEC 120

static int futex_word;
static struct timespec req = { SLEEP_SEC, 0 }, rem = { -1, -1 };
static struct timespec ppoll_ts = { PPOLL_SEC, 0 };

static long blocking_call(const struct variant *v, const sigset_t *wait_mask)
{
	const char *n = v->name;

	if (!strcmp(n, "pause"))
		return syscall(SYS_pause);
	if (!strcmp(n, "sigsuspend"))
		return syscall(SYS_rt_sigsuspend, wait_mask, _NSIG / 8);
	if (!strcmp(n, "ppoll_inf"))
		return syscall(SYS_ppoll, NULL, 0, NULL, wait_mask, _NSIG / 8);
	if (!strcmp(n, "ppoll_timeout"))
		return syscall(SYS_ppoll, NULL, 0, &ppoll_ts, wait_mask, _NSIG / 8);
	if (!strcmp(n, "futex"))
		return syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	if (!strcmp(n, "nanosleep"))
		return syscall(SYS_nanosleep, &req, &rem);
	if (!strcmp(n, "clock_nanosleep"))
		return syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &req, &rem);
	if (!strcmp(n, "poll_inf"))
		return syscall(SYS_poll, NULL, 0, -1);
	if (!strcmp(n, "poll_timeout"))
		return syscall(SYS_poll, NULL, 0, SLEEP_SEC * 1000);
	wl_fatal("no call for %s", n);
}

static bool mask_equal(const sigset_t *a, const sigset_t *b, int *first)
{
	for (int s = 1; s < NSIG; s++)
		if (sigismember(a, s) != sigismember(b, s)) {
			*first = s;
			return false;
		}
	return true;
}

static bool in_range(const struct timespec *ts, long max_sec)
{
	long long ns = ts->tv_sec * 1000000000LL + ts->tv_nsec;

	return ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L && ns > 0 && ns <= max_sec * 1000000000LL;
}

int main(int argc, char **argv)
{
	const struct variant *v = NULL;
	bool restored;
	sigset_t own_mask, wait_mask, now;
	long ret;
	int err, triggered, first = 0;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_syscall DIR WHICH [expect-restored|control]");
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
		if (!strcmp(argv[2], variants[i].name))
			v = &variants[i];
	if (!v)
		wl_fatal("unknown call '%s'", argv[2]);
	if (argc > 3 && strcmp(argv[3], "control") && strcmp(argv[3], "expect-restored"))
		wl_fatal("mode must be control or expect-restored, not '%s'", argv[3]);
	restored = !(argc > 3 && !strcmp(argv[3], "control"));

	/* A blocked bystander signal, and for calls that take a temporary mask,
	 * SIGUSR2 blocked outside the call (the race-free way to wait). */
	sigemptyset(&own_mask);
	sigaddset(&own_mask, SIGWINCH);
	wait_mask = own_mask;
	if (v->extra == WITH_MASK || v->extra == WITH_TIMEOUT_LEFT)
		sigaddset(&own_mask, SIGUSR2);
	sigprocmask(SIG_SETMASK, &own_mask, NULL);

	wl_write_file("syscall_nr", "%ld\n", v->nr);
	wl_write_file("syscall_nr_restored", "%ld\n",
		      restored && v->klass == EINTR_EARLY ? (long)SYS_rt_sigsuspend : v->nr);
	wl_ready();

	ret = blocking_call(v, &wait_mask);
	err = errno;
	triggered = wl_triggered;

	if (v->klass == EINTR_EARLY && restored) {
		wl_check(ret == -1 && err == EINTR && !triggered,
			 "%s was not interrupted before the trigger: ret %ld errno %d triggered %d",
			 v->name, ret, ret < 0 ? err : 0, triggered);
	} else {
		wl_check(ret == -1 && err == EINTR && triggered,
			 "%s returned spuriously: ret %ld errno %d triggered %d",
			 v->name, ret, ret < 0 ? err : 0, triggered);
	}

	sigprocmask(SIG_BLOCK, NULL, &now);
	if (!mask_equal(&now, &own_mask, &first))
		wl_check(false, "signal mask after %s differs at signal %d", v->name, first);
	if (v->extra == WITH_REM)
		wl_check(in_range(&rem, SLEEP_SEC), "%s: rem %lld.%09ld not in (0, %d s]", v->name,
			 (long long)rem.tv_sec, rem.tv_nsec, SLEEP_SEC);
	if (v->extra == WITH_TIMEOUT_LEFT)
		wl_check(in_range(&ppoll_ts, PPOLL_SEC) && ppoll_ts.tv_sec < PPOLL_SEC,
			 "%s: time left %lld.%09ld not in (0, %d s)", v->name,
			 (long long)ppoll_ts.tv_sec, ppoll_ts.tv_nsec, PPOLL_SEC);

	if (!triggered)
		wl_wait_trigger();
	wl_check(getpid() == wl_pid() && syscall(SYS_getpid) == wl_pid(), "pid changed");
	wl_finish();
}
