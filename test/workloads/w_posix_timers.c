/*
 * w_posix_timers STATE_DIR
 *
 * Holds POSIX timers (timer_create) of every notification kind and checks
 * them after restore:
 *
 *   ids      /proc/self/timers lists the same timers as before: same ids
 *            (with a gap: a timer deleted before the dump), signals, values,
 *            notification (pid or tid) and clocks.
 *   mono     CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+1, one-shot 30 s: it
 *            kept the time it had left (the time the process did not run
 *            does not count; see w_timerfd for how that is measured).
 *   real     CLOCK_REALTIME, SIGEV_NONE, 20 s then every 7 s: same.
 *   thread   CLOCK_BOOTTIME, SIGEV_THREAD_ID to the process itself,
 *            SIGRTMIN+2, disarmed.
 *   tick     CLOCK_MONOTONIC every 20 ms, SIGEV_SIGNAL SIGRTMIN+3 to a
 *            handler: it keeps firing after restore, each signal with
 *            si_code SI_TIMER, its id and its value.
 *   cpu      CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 100 s of CPU time.
 *   tai      CLOCK_TAI, SIGEV_SIGNAL SIGRTMIN+4, 60 s: kept its time left.
 *            (Alarm clocks need an RTC for POSIX timers; these machines
 *            have none, so they are not exercised here.)
 *   default  timer_create without a sigevent (SIGALRM, value = id), disarmed.
 *   fire     after the checks, mono and thread are re-armed for 1 ms and
 *            their signals (blocked) are taken with sigtimedwait: the right
 *            signal, SI_TIMER, the timer's id and value.
 *
 * Sabotage: delete (deletes the real timer), rearm (mono back to 30 s).
 */
#include "wl.h"
#include "wl_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MS WL_MS
#define SEC WL_SEC
#define FROZEN_SLACK (600 * MS)   /* seize to read, set to release */
#define FROZEN_GAP (5 * MS)       /* a longer pause between two looks at the clock: not running */

static struct wl_ptimer mono, real, thread, tick, cpu, tai, dflt;
static volatile sig_atomic_t tick_count, tick_bad;
static char timers_before[4096];

static void on_tick(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_code != SI_TIMER || si->si_timerid != tick.id || (uint64_t)si->si_value.sival_ptr != tick.sigval)
		tick_bad = 1;
	tick_count++;
}

static void setup(void)
{
	struct sigaction sa = { .sa_sigaction = on_tick, .sa_flags = SA_SIGINFO | SA_RESTART };
	sigset_t blocked;
	struct wl_ptimer gone;
	struct sigevent none = { .sigev_notify = SIGEV_NONE };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGRTMIN + 3, &sa, NULL);
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGRTMIN + 1);
	sigaddset(&blocked, SIGRTMIN + 2);
	sigaddset(&blocked, SIGRTMIN + 4);
	sigprocmask(SIG_BLOCK, &blocked, NULL);

	wl_ptimer_create(&mono, "mono", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, SIGRTMIN + 1, 0xa11ce);
	wl_ptimer_create(&real, "real", CLOCK_REALTIME, SIGEV_NONE, 0, 0, 0xb0b);
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &none, &gone.id) < 0 ||
	    syscall(SYS_timer_delete, gone.id) < 0)
		wl_fatal("timer for the id gap: %s", strerror(errno));
	wl_ptimer_create(&thread, "thread", CLOCK_BOOTTIME, SIGEV_THREAD_ID, gettid(), SIGRTMIN + 2, 0xc0c0c0c0c0ULL);
	wl_ptimer_create(&tick, "tick", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, SIGRTMIN + 3, 0xe1e1);
	wl_ptimer_create(&cpu, "cpu", CLOCK_PROCESS_CPUTIME_ID, SIGEV_NONE, 0, 0, 0xc9);
	wl_ptimer_create(&tai, "tai", CLOCK_TAI, SIGEV_SIGNAL, 0, SIGRTMIN + 4, 0x9b);
	dflt.name = "default";
	if (syscall(SYS_timer_create, CLOCK_REALTIME, NULL, &dflt.id) < 0)
		wl_fatal("timer_create(default): %s", strerror(errno));

	wl_ptimer_set(&mono, 30 * SEC, 0);
	wl_ptimer_set(&real, 20 * SEC, 7 * SEC);
	wl_ptimer_set(&tick, 20 * MS, 20 * MS);
	wl_ptimer_set(&cpu, 100 * SEC, 0);
	wl_ptimer_set(&tai, 60 * SEC, 0);
	if (wl_read_path("/proc/self/timers", timers_before, sizeof(timers_before)) <= 0)
		wl_fatal("read /proc/self/timers");
}

static bool get(const struct wl_ptimer *t, struct itimerspec *cur)
{
	return wl_check(syscall(SYS_timer_gettime, t->id, cur) == 0, "(%s) timer_gettime(%d): %s", t->name, t->id,
			strerror(errno));
}

static void check_list(void)
{
	char now[4096];

	wl_read_path("/proc/self/timers", now, sizeof(now));
	wl_check(strcmp(now, timers_before) == 0, "(ids) /proc/self/timers differs: was [%s] now [%s]",
		 timers_before, now);
}

static void check_disarmed(const struct wl_ptimer *t)
{
	struct itimerspec cur;

	if (get(t, &cur))
		wl_check(wl_ts_ns(cur.it_value) == 0 && wl_ts_ns(cur.it_interval) == 0, "(%s) is armed", t->name);
}

static void check_cpu(void)
{
	struct itimerspec cur;

	if (get(&cpu, &cur))
		wl_check(wl_ts_ns(cur.it_value) > 90 * SEC && wl_ts_ns(cur.it_value) <= 100 * SEC,
			 "(cpu) %" PRId64 " ms of CPU time left, want about 100 s", wl_ts_ns(cur.it_value) / MS);
}

static void check_ticking(void)
{
	int before = tick_count;
	struct timespec ms = { 0, MS };

	for (int i = 0; i < 1000 && tick_count < before + 5; i++)
		nanosleep(&ms, NULL);
	wl_check(tick_count >= before + 5, "(tick) %d signals in 1 s, want 5 or more", tick_count - before);
	wl_check(!tick_bad, "(tick) a signal came with the wrong code, id or value");
}

/* Re-arms t for 1 ms and takes its (blocked) signal. */
static void check_fires(struct wl_ptimer *t)
{
	struct itimerspec its = { .it_value = wl_ns_ts(MS) };
	struct timespec wait = { 2, 0 };
	siginfo_t si;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, t->signo);
	if (!wl_check(syscall(SYS_timer_settime, t->id, 0, &its, NULL) == 0, "(%s) timer_settime: %s", t->name,
		      strerror(errno)))
		return;
	if (!wl_check(sigtimedwait(&set, &si, &wait) == t->signo, "(%s) no signal %d: %s", t->name, t->signo,
		      strerror(errno)))
		return;
	wl_check(si.si_code == SI_TIMER && si.si_timerid == t->id && (uint64_t)si.si_value.sival_ptr == t->sigval,
		 "(%s) signal came with code %d id %d value %#lx", t->name, si.si_code, si.si_timerid,
		 (unsigned long)si.si_value.sival_ptr);
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "delete") == 0)
		syscall(SYS_timer_delete, real.id);
	else if (strcmp(what, "rearm") == 0)
		syscall(SYS_timer_settime, mono.id, 0, &(struct itimerspec){ .it_value = wl_ns_ts(30 * SEC) }, NULL);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	struct timespec wait = { 0, 300 * MS };
	int64_t frozen;

	wl_init(argc, argv);
	setup();
	while (nanosleep(&wait, &wait) < 0 && errno == EINTR)
		;	/* the tick timer interrupts it */
	wl_ready();
	frozen = wl_wait_trigger_frozen(FROZEN_GAP);
	sabotage();

	check_list();
	wl_ptimer_check_left(&mono, frozen, FROZEN_SLACK);
	wl_ptimer_check_left(&real, frozen, FROZEN_SLACK);
	wl_ptimer_check_left(&tai, frozen, FROZEN_SLACK);
	check_disarmed(&thread);
	check_disarmed(&dflt);
	check_cpu();
	check_ticking();
	check_fires(&mono);
	check_fires(&thread);
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
