/*
 * wl_timer — what the timer workloads (w_timerfd, w_posix_timers,
 * w_thread_timers) share: time conversions, the wait for the trigger that
 * measures how long the process did not run, and POSIX timers that
 * remember how they were armed.
 */
#ifndef WL_TIMER_H
#define WL_TIMER_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define WL_MS INT64_C(1000000)
#define WL_SEC INT64_C(1000000000)

struct timespec wl_ns_ts(int64_t ns);
int64_t wl_ts_ns(struct timespec ts);

/* Waits for the trigger (SIGUSR2), looking at CLOCK_MONOTONIC every
 * millisecond; returns the time the process did not run: the sum of the
 * gaps between two looks longer than gap_ns (a dump and restore). */
int64_t wl_wait_trigger_frozen(int64_t gap_ns);

/* A POSIX timer (timer_create) and how it was last armed. */
struct wl_ptimer {
	const char *name;
	int id;
	int clock;
	int signo;
	uint64_t sigval;
	int64_t value, interval, armed_at;
};

/* timer_create on clock; tid is the thread of SIGEV_THREAD_ID (else 0).
 * A failure is fatal. */
void wl_ptimer_create(struct wl_ptimer *t, const char *name, int clock, int notify, pid_t tid, int signo,
		      uint64_t sigval);
/* timer_settime, relative; records when. A failure is fatal. */
void wl_ptimer_set(struct wl_ptimer *t, int64_t value, int64_t interval);
/* The time left is what was set less the time the process ran since
 * (within slack_ns below, 10 ms above), the interval as set: records a
 * failure naming the timer otherwise. */
void wl_ptimer_check_left(const struct wl_ptimer *t, int64_t frozen, int64_t slack_ns);

#endif
