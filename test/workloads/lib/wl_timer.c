#include "wl.h"
#include "wl_timer.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct timespec wl_ns_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / WL_SEC, .tv_nsec = ns % WL_SEC };
}

int64_t wl_ts_ns(struct timespec ts)
{
	return ts.tv_sec * WL_SEC + ts.tv_nsec;
}

int64_t wl_wait_trigger_frozen(int64_t gap_ns)
{
	int64_t last = wl_now_ns(CLOCK_MONOTONIC), frozen = 0;

	while (!wl_triggered) {
		struct timespec ms = { 0, WL_MS };
		int64_t now;

		clock_nanosleep(CLOCK_MONOTONIC, 0, &ms, NULL);
		now = wl_now_ns(CLOCK_MONOTONIC);
		if (now - last > gap_ns)
			frozen += now - last;
		last = now;
	}
	return frozen;
}

void wl_ptimer_create(struct wl_ptimer *t, const char *name, int clock, int notify, pid_t tid, int signo,
		      uint64_t sigval)
{
	struct sigevent sev;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)sigval;
	sev._sigev_un._tid = tid;
	t->name = name;
	t->clock = clock;
	t->signo = signo;
	t->sigval = sigval;
	if (syscall(SYS_timer_create, clock, &sev, &t->id) < 0)
		wl_fatal("timer_create(%s): %s", name, strerror(errno));
}

void wl_ptimer_set(struct wl_ptimer *t, int64_t value, int64_t interval)
{
	struct itimerspec its = { .it_value = wl_ns_ts(value), .it_interval = wl_ns_ts(interval) };

	t->value = value;
	t->interval = interval;
	t->armed_at = wl_now_ns(CLOCK_MONOTONIC);
	if (syscall(SYS_timer_settime, t->id, 0, &its, NULL) < 0)
		wl_fatal("timer_settime(%s): %s", t->name, strerror(errno));
}

void wl_ptimer_check_left(const struct wl_ptimer *t, int64_t frozen, int64_t slack_ns)
{
	struct itimerspec cur;
	int64_t ran = wl_now_ns(CLOCK_MONOTONIC) - t->armed_at - frozen, left, want = t->value - ran;

	if (!wl_check(syscall(SYS_timer_gettime, t->id, &cur) == 0, "(%s) timer_gettime(%d): %s", t->name, t->id,
		      strerror(errno)))
		return;
	left = wl_ts_ns(cur.it_value);
	wl_check(left <= want + 10 * WL_MS && left >= want - slack_ns,
		 "(%s) %" PRId64 " ms left, want %" PRId64 " ms (frozen %" PRId64 " ms)", t->name, left / WL_MS,
		 want / WL_MS, frozen / WL_MS);
	wl_check(wl_ts_ns(cur.it_interval) == t->interval, "(%s) interval %" PRId64 " ns, want %" PRId64, t->name,
		 wl_ts_ns(cur.it_interval), t->interval);
}
