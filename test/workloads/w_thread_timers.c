/*
 * w_thread_timers STATE_DIR [orphan]
 *
 * POSIX timers that signal threads other than the main one, and timers
 * created by other threads; checked after restore:
 *
 *   ids      /proc/self/timers lists the same timers as before: same ids,
 *            signals, values, clocks and notification, the thread ids of
 *            the SIGEV_THREAD_ID ones included.
 *   to_a     created by main, SIGEV_THREAD_ID to worker A, SIGRTMIN+1 every
 *            20 ms: its handler runs in A (and only in A), with SI_TIMER,
 *            the timer's id and value, before and after restore.
 *   to_b     created by main, SIGEV_THREAD_ID to worker B, SIGRTMIN+2
 *            (blocked everywhere), 40 s one-shot: it kept its time left;
 *            re-armed for 1 ms, its signal is pending on B, not on main
 *            (B takes it with sigtimedwait, main finds none pending).
 *   by_a     created by worker A, SIGEV_SIGNAL SIGRTMIN+3 (blocked), 30 s
 *            one-shot: kept its time left; a timer of the process.
 *   a_to_main created by worker A, SIGEV_THREAD_ID to the main thread,
 *            SIGRTMIN+4 (blocked), disarmed: stays disarmed; re-armed, its
 *            signal is pending on main.
 *   glibc    timer_create(SIGEV_THREAD) (glibc signals its helper thread),
 *            CLOCK_MONOTONIC every 20 ms: the callback keeps running.
 *
 * With "orphan", one more timer aims at a thread that has exited (a
 * worker made it, aimed at itself, and returned): cr must refuse that.
 *
 * Sabotage: retarget (to_a deleted and created again aimed at main, which
 * blocks its signal: A gets no more).
 */
#include "wl.h"
#include "wl_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MS WL_MS
#define SEC WL_SEC
#define FROZEN_SLACK (600 * MS)
#define FROZEN_GAP (5 * MS)

#define SIG_TO_A (SIGRTMIN + 1)
#define SIG_TO_B (SIGRTMIN + 2)
#define SIG_BY_A (SIGRTMIN + 3)
#define SIG_A_TO_MAIN (SIGRTMIN + 4)

static struct wl_ptimer to_a, to_b, by_a, a_to_main;
static timer_t glibc_timer;
static pid_t tid_main, tid_a, tid_b;
static atomic_int a_ticks, a_bad, glibc_ticks;
static char timers_before[4096];

static void on_to_a(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (gettid() != tid_a || si->si_code != SI_TIMER || si->si_timerid != to_a.id ||
	    (uint64_t)si->si_value.sival_ptr != to_a.sigval)
		atomic_store(&a_bad, 1);
	atomic_fetch_add(&a_ticks, 1);
}

static void on_glibc(union sigval v)
{
	if (v.sival_int == 0x61b)
		atomic_fetch_add(&glibc_ticks, 1);
}

static void block_timer_signals(bool also_to_a)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIG_TO_B);
	sigaddset(&s, SIG_BY_A);
	sigaddset(&s, SIG_A_TO_MAIN);
	if (also_to_a)
		sigaddset(&s, SIG_TO_A);
	pthread_sigmask(SIG_SETMASK, &s, NULL);
}

/* Worker A: creates two timers, then takes its signals until told to stop. */
static void *worker_a(void *arg)
{
	(void)arg;
	tid_a = gettid();
	block_timer_signals(false);
	wl_ptimer_create(&by_a, "by_a", CLOCK_MONOTONIC, SIGEV_SIGNAL, 0, SIG_BY_A, 0xb1a);
	wl_ptimer_create(&a_to_main, "a_to_main", CLOCK_MONOTONIC, SIGEV_THREAD_ID, tid_main, SIG_A_TO_MAIN, 0xa2a1);
	wl_ptimer_set(&by_a, 30 * SEC, 0);
	wl_set_stage(1);
	for (;;)
		pause();
	return NULL;
}

/* Worker B: waits for stage 3, then for its timer's signal. */
static void *worker_b(void *arg)
{
	sigset_t s;
	siginfo_t si;
	struct timespec wait = { 3, 0 };
	int got;

	(void)arg;
	tid_b = gettid();
	block_timer_signals(true);
	wl_set_stage(2);
	wl_wait_stage(3);
	sigemptyset(&s);
	sigaddset(&s, SIG_TO_B);
	got = sigtimedwait(&s, &si, &wait);
	wl_check(got == SIG_TO_B, "(to_b) worker B got no signal %d: %s", SIG_TO_B, strerror(errno));
	if (got == SIG_TO_B)
		wl_check(si.si_code == SI_TIMER && si.si_timerid == to_b.id &&
				 (uint64_t)si.si_value.sival_ptr == to_b.sigval,
			 "(to_b) signal came with code %d id %d value %#lx", si.si_code, si.si_timerid,
			 (unsigned long)si.si_value.sival_ptr);
	wl_set_stage(4);
	for (;;)
		pause();
	return NULL;
}

static void start_glibc_timer(void)
{
	struct sigevent sev;
	struct itimerspec its = { .it_value = wl_ns_ts(20 * MS), .it_interval = wl_ns_ts(20 * MS) };

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_glibc;
	sev.sigev_value.sival_int = 0x61b;
	if (timer_create(CLOCK_MONOTONIC, &sev, &glibc_timer) < 0 || timer_settime(glibc_timer, 0, &its, NULL) < 0)
		wl_fatal("timer_create(SIGEV_THREAD): %s", strerror(errno));
}

static void *orphan_worker(void *arg)
{
	struct wl_ptimer *t = arg;

	wl_ptimer_create(t, "orphan", CLOCK_MONOTONIC, SIGEV_THREAD_ID, gettid(), SIGRTMIN + 5, 0x0f);
	return NULL;
}

static void make_orphan_timer(void)
{
	static struct wl_ptimer orphan;
	pthread_t c;

	if (pthread_create(&c, NULL, orphan_worker, &orphan) != 0 || pthread_join(c, NULL) != 0)
		wl_fatal("the orphan timer's thread");
}

static void setup(bool orphan)
{
	struct sigaction sa = { .sa_sigaction = on_to_a, .sa_flags = SA_SIGINFO | SA_RESTART };
	pthread_t a, b;

	tid_main = gettid();
	sigemptyset(&sa.sa_mask);
	sigaction(SIG_TO_A, &sa, NULL);
	block_timer_signals(true);
	if (pthread_create(&a, NULL, worker_a, NULL) != 0)
		wl_fatal("pthread_create A");
	wl_wait_stage(1);
	if (pthread_create(&b, NULL, worker_b, NULL) != 0)
		wl_fatal("pthread_create B");
	wl_wait_stage(2);
	wl_ptimer_create(&to_a, "to_a", CLOCK_MONOTONIC, SIGEV_THREAD_ID, tid_a, SIG_TO_A, 0x7a7a);
	wl_ptimer_create(&to_b, "to_b", CLOCK_MONOTONIC, SIGEV_THREAD_ID, tid_b, SIG_TO_B, 0x7b7b);
	wl_ptimer_set(&to_a, 20 * MS, 20 * MS);
	wl_ptimer_set(&to_b, 40 * SEC, 0);
	start_glibc_timer();
	if (orphan)
		make_orphan_timer();
	while (atomic_load(&a_ticks) < 3 || atomic_load(&glibc_ticks) < 3)
		nanosleep(&(struct timespec){ 0, 10 * MS }, NULL);
	if (wl_read_path("/proc/self/timers", timers_before, sizeof(timers_before)) <= 0)
		wl_fatal("read /proc/self/timers");
}

static void check_list(void)
{
	char now[4096];
	char tid_line[64];

	wl_read_path("/proc/self/timers", now, sizeof(now));
	wl_check(strcmp(now, timers_before) == 0, "(ids) /proc/self/timers differs: was [%s] now [%s]",
		 timers_before, now);
	snprintf(tid_line, sizeof(tid_line), "notify: signal/tid.%d\n", (int)tid_a);
	wl_check(strstr(now, tid_line) != NULL, "(ids) no timer signals worker A (%d): [%s]", (int)tid_a, now);
	snprintf(tid_line, sizeof(tid_line), "notify: signal/tid.%d\n", (int)tid_b);
	wl_check(strstr(now, tid_line) != NULL, "(ids) no timer signals worker B (%d): [%s]", (int)tid_b, now);
}

static void check_ticks(const char *name, atomic_int *count)
{
	int before = atomic_load(count);

	for (int i = 0; i < 200 && atomic_load(count) < before + 5; i++)
		nanosleep(&(struct timespec){ 0, 5 * MS }, NULL);
	wl_check(atomic_load(count) >= before + 5, "(%s) %d expirations in 1 s, want 5 or more", name,
		 atomic_load(count) - before);
}

/* a_to_main re-armed for 1 ms: its signal is pending on the main thread. */
static void check_to_main(void)
{
	struct itimerspec cur, its = { .it_value = wl_ns_ts(MS) };
	struct timespec wait = { 2, 0 };
	sigset_t s;
	siginfo_t si;

	if (wl_check(syscall(SYS_timer_gettime, a_to_main.id, &cur) == 0, "(a_to_main) timer_gettime"))
		wl_check(wl_ts_ns(cur.it_value) == 0, "(a_to_main) is armed");
	syscall(SYS_timer_settime, a_to_main.id, 0, &its, NULL);
	sigemptyset(&s);
	sigaddset(&s, SIG_A_TO_MAIN);
	if (wl_check(sigtimedwait(&s, &si, &wait) == SIG_A_TO_MAIN, "(a_to_main) main got no signal: %s",
		     strerror(errno)))
		wl_check(si.si_code == SI_TIMER && si.si_timerid == a_to_main.id, "(a_to_main) code %d id %d",
			 si.si_code, si.si_timerid);
}

/* to_b re-armed for 1 ms: worker B takes the signal; main must not see it. */
static void check_to_b(void)
{
	struct itimerspec its = { .it_value = wl_ns_ts(MS) };
	sigset_t pend;

	syscall(SYS_timer_settime, to_b.id, 0, &its, NULL);
	wl_set_stage(3);
	wl_wait_stage(4);
	sigpending(&pend);
	wl_check(!sigismember(&pend, SIG_TO_B), "(to_b) its signal is pending on the main thread or the process");
}

static void sabotage(void)
{
	char what[32];
	struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIG_TO_A };

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "retarget") != 0) {
		wl_check(false, "unknown sabotage '%s'", what);
		return;
	}
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)to_a.sigval;
	sev._sigev_un._tid = tid_main;
	syscall(SYS_timer_delete, to_a.id);
	syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &to_a.id);
	syscall(SYS_timer_settime, to_a.id, 0, &(struct itimerspec){ .it_value = wl_ns_ts(20 * MS),
									.it_interval = wl_ns_ts(20 * MS) }, NULL);
}

int main(int argc, char **argv)
{
	int64_t frozen;

	wl_init(argc, argv);
	setup(argc > 2 && strcmp(argv[2], "orphan") == 0);
	wl_ready();
	frozen = wl_wait_trigger_frozen(FROZEN_GAP);
	sabotage();
	check_list();
	wl_ptimer_check_left(&to_b, frozen, FROZEN_SLACK);
	wl_ptimer_check_left(&by_a, frozen, FROZEN_SLACK);
	check_ticks("to_a", &a_ticks);
	wl_check(!atomic_load(&a_bad), "(to_a) a signal ran in thread other than A, or with a wrong code, id or value");
	check_ticks("glibc", &glibc_ticks);
	check_to_main();
	check_to_b();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
