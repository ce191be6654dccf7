/*
 * w_timerfd STATE_DIR
 *
 * Holds timerfds in every state cr must carry over and checks each one
 * after restore:
 *
 *   rel-<clock>   a relative one-shot timer (30 s, interval 10 s) on each of
 *                 CLOCK_REALTIME, _MONOTONIC, _BOOTTIME, _REALTIME_ALARM,
 *                 _BOOTTIME_ALARM; flags alternate O_NONBLOCK / O_CLOEXEC.
 *                 Its clock (fdinfo clockid), interval, flags, no expiration,
 *                 and the time left: it must have kept the time it had left
 *                 at dump, i.e. the time the process did not run ("frozen",
 *                 measured below) must not have counted.
 *   abs-rt        CLOCK_REALTIME, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
 *                 40 s ahead: same expiry (to 50 ms) and settime flags.
 *   abs-rt-alarm  CLOCK_REALTIME_ALARM, absolute: same expiry.
 *   abs-mono      CLOCK_MONOTONIC, absolute: same expiry (same boot).
 *   abs-boot      CLOCK_BOOTTIME_ALARM, absolute: same expiry (same boot).
 *   abs-periodic  CLOCK_REALTIME, absolute, first expiry 400 ms after setup,
 *                 every 100 ms: a wall-clock timer runs on while the process
 *                 is away, so read() returns every period since the first
 *                 expiry (within 2).
 *   fast          CLOCK_MONOTONIC, every 1 ms from setup, never read: at
 *                 dump it has hundreds of expirations not read.  read() must
 *                 return at least the periods the process ran (setup to
 *                 verify minus frozen time), and at least 250.
 *   expired       CLOCK_BOOTTIME one-shot that expired before ready: read()
 *                 returns exactly 1, and the timer is disarmed.
 *   disarmed      CLOCK_REALTIME, interval 5 s but no value: disarmed,
 *                 interval kept, nothing to read.
 *
 * Frozen time: while it waits for the trigger the workload notes the
 * monotonic clock every millisecond; the gaps longer than 5 ms add up to the
 * time it did not run (each dump, downtime and restore).  The harness waits
 * a second between dump and restore, so a timer whose clock ran on (or was
 * reset) is seconds off.
 *
 * Sabotage (negative controls), from the file "sabotage": ticks (reads the
 * fast timer), abs (re-arms abs-rt relative), rel (re-arms rel-MONOTONIC
 * to its full time), clock (puts a CLOCK_MONOTONIC timer in place of
 * rel-REALTIME), nonblock (clears O_NONBLOCK of rel-REALTIME), oneshot
 * (reads the expired timer).
 */
#include "wl.h"
#include "wl_timer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define SEC INT64_C(1000000000)
#define REL_VALUE (30 * SEC)
#define REL_INTERVAL (10 * SEC)
#define FROZEN_SLACK (600 * MS)   /* seize to read, set to release */
#define FROZEN_GAP (5 * MS)       /* a longer pause between two looks at the clock: not running */
#define ABS_SLACK (50 * MS)

struct tfd {
	const char *name;
	int fd;
	int clock;
	int settime_flags;
	bool nonblock, cloexec;
	int64_t armed_at;	/* monotonic, when armed */
	int64_t value;		/* relative: what it was armed with */
	int64_t expiry;		/* absolute: on its clock */
	int64_t interval;
};

static const struct {
	const char *name;
	int clock;
} clocks[] = {
	{ "REALTIME", CLOCK_REALTIME },
	{ "MONOTONIC", CLOCK_MONOTONIC },
	{ "BOOTTIME", CLOCK_BOOTTIME },
	{ "REALTIME_ALARM", CLOCK_REALTIME_ALARM },
	{ "BOOTTIME_ALARM", CLOCK_BOOTTIME_ALARM },
};

#define N_REL (sizeof(clocks) / sizeof(clocks[0]))

static struct tfd rel[N_REL], abs_rt, abs_rt_alarm, abs_mono, abs_boot, abs_periodic, fast, expired, disarmed;

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / SEC, .tv_nsec = ns % SEC };
}

static int64_t ts_ns(struct timespec ts)
{
	return ts.tv_sec * SEC + ts.tv_nsec;
}

/* The clock an absolute timer's expiry is on (alarm clocks read as their base). */
static int base_clock(int clock)
{
	return clock == CLOCK_REALTIME_ALARM ? CLOCK_REALTIME : clock == CLOCK_BOOTTIME_ALARM ? CLOCK_BOOTTIME : clock;
}

static void arm(struct tfd *t, const char *name, int clock, int tfd_flags, int settime_flags, int64_t value,
		int64_t interval)
{
	struct itimerspec its = { .it_interval = ns_ts(interval) };

	t->name = name;
	t->clock = clock;
	t->settime_flags = settime_flags;
	t->nonblock = tfd_flags & TFD_NONBLOCK;
	t->cloexec = tfd_flags & TFD_CLOEXEC;
	t->interval = interval;
	t->fd = timerfd_create(clock, tfd_flags);
	if (t->fd < 0)
		wl_fatal("timerfd_create(%s): %s", name, strerror(errno));
	t->armed_at = wl_now_ns(CLOCK_MONOTONIC);
	if (settime_flags & TFD_TIMER_ABSTIME) {
		t->expiry = wl_now_ns(base_clock(clock)) + value;
		its.it_value = ns_ts(t->expiry);
	} else {
		t->value = value;
		its.it_value = ns_ts(value);
	}
	if (timerfd_settime(t->fd, settime_flags, &its, NULL) < 0)
		wl_fatal("timerfd_settime(%s): %s", name, strerror(errno));
}

/* A field of the fd's fdinfo, or -1. */
static long long fdinfo_field(int fd, const char *key, int base)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_path(path, buf, sizeof(buf)) < 0 || (p = strstr(buf, key)) == NULL)
		return -1;
	return strtoll(p + strlen(key), NULL, base);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Expirations, or -1 when there are none (without blocking). */
static int64_t take_ticks(const struct tfd *t)
{
	uint64_t n;

	if (!readable(t->fd))
		return -1;
	if (read(t->fd, &n, sizeof(n)) != sizeof(n))
		return -1;
	return (int64_t)n;
}

static void check_setup(const struct tfd *t)
{
	int fl = fcntl(t->fd, F_GETFL), fd_fl = fcntl(t->fd, F_GETFD);

	wl_check(fdinfo_field(t->fd, "\nclockid:", 10) == t->clock, "(%s) clockid %lld, want %d", t->name,
		 fdinfo_field(t->fd, "\nclockid:", 10), t->clock);
	wl_check(fdinfo_field(t->fd, "\nsettime flags:", 8) == t->settime_flags, "(%s) settime flags %llo, want %o",
		 t->name, fdinfo_field(t->fd, "\nsettime flags:", 8), t->settime_flags);
	wl_check(fl >= 0 && !!(fl & O_NONBLOCK) == t->nonblock, "(%s) O_NONBLOCK is %s", t->name,
		 fl >= 0 && (fl & O_NONBLOCK) ? "set" : "clear");
	wl_check(fd_fl >= 0 && !!(fd_fl & FD_CLOEXEC) == t->cloexec, "(%s) close-on-exec is %s", t->name,
		 fd_fl >= 0 && (fd_fl & FD_CLOEXEC) ? "set" : "clear");
}

static bool get(const struct tfd *t, struct itimerspec *cur)
{
	return wl_check(timerfd_gettime(t->fd, cur) == 0, "(%s) timerfd_gettime: %s", t->name, strerror(errno));
}

/* A relative timer: its time left counts only the time the process ran. */
static void check_relative(const struct tfd *t, int64_t frozen)
{
	struct itimerspec cur;
	int64_t ran, left, want;

	check_setup(t);
	ran = wl_now_ns(CLOCK_MONOTONIC) - t->armed_at - frozen;   /* before the timer is read */
	if (!get(t, &cur))
		return;
	left = ts_ns(cur.it_value);
	want = t->value - ran;
	wl_check(ts_ns(cur.it_interval) == t->interval, "(%s) interval %" PRId64 " ns, want %" PRId64, t->name,
		 ts_ns(cur.it_interval), t->interval);
	wl_check(left <= want + 10 * MS && left >= want - FROZEN_SLACK,
		 "(%s) %" PRId64 " ms left, want %" PRId64 " ms (frozen %" PRId64 " ms)", t->name, left / MS,
		 want / MS, frozen / MS);
	wl_check(take_ticks(t) < 0, "(%s) has expirations it should not have", t->name);
}

/* An absolute timer: the same expiry on its clock. */
static void check_absolute(const struct tfd *t)
{
	struct itimerspec cur;
	int64_t expiry;

	check_setup(t);
	if (!get(t, &cur))
		return;
	expiry = wl_now_ns(base_clock(t->clock)) + ts_ns(cur.it_value);
	wl_check(expiry - t->expiry < ABS_SLACK && t->expiry - expiry < ABS_SLACK,
		 "(%s) expires %+" PRId64 " ms off its absolute expiry", t->name, (expiry - t->expiry) / MS);
	wl_check(ts_ns(cur.it_interval) == t->interval, "(%s) interval changed", t->name);
}

static void check_abs_periodic(void)
{
	const struct tfd *t = &abs_periodic;
	int64_t now = wl_now_ns(CLOCK_REALTIME), got = take_ticks(t);
	int64_t want = (now - t->expiry) / t->interval + 1;

	check_setup(t);
	wl_check(got >= want - 2 && got <= want + 2, "(%s) read %" PRId64 " expirations, want %" PRId64 " (every "
		 "period since the first expiry)", t->name, got, want);
}

static void check_fast(int64_t frozen)
{
	const struct tfd *t = &fast;
	int64_t ran = wl_now_ns(CLOCK_MONOTONIC) - t->armed_at - frozen;
	int64_t got = take_ticks(t), want = ran / t->interval;

	check_setup(t);
	wl_check(got >= 250 && got >= want - 5, "(%s) read %" PRId64 " expirations, want at least %" PRId64
		 " (the process ran %" PRId64 " ms)", t->name, got, want - 5, ran / MS);
}

static void check_expired(void)
{
	struct itimerspec cur;
	int64_t got = take_ticks(&expired);

	check_setup(&expired);
	wl_check(got == 1, "(%s) read %" PRId64 " expirations, want exactly 1", expired.name, got);
	if (get(&expired, &cur))
		wl_check(ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 0, "(%s) is armed again", expired.name);
}

static void check_disarmed(void)
{
	struct itimerspec cur;

	check_setup(&disarmed);
	if (get(&disarmed, &cur))
		wl_check(ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 5 * SEC,
			 "(%s) value %" PRId64 " interval %" PRId64 ", want 0 and 5 s", disarmed.name,
			 ts_ns(cur.it_value), ts_ns(cur.it_interval));
	wl_check(take_ticks(&disarmed) < 0, "(%s) has expirations", disarmed.name);
}

static void setup(void)
{
	static char names[N_REL][32];

	for (size_t i = 0; i < N_REL; i++) {
		int flags = i % 2 ? TFD_NONBLOCK : TFD_CLOEXEC;

		snprintf(names[i], sizeof(names[i]), "rel-%s", clocks[i].name);
		if (i == 0)
			flags = TFD_NONBLOCK | TFD_CLOEXEC;
		arm(&rel[i], names[i], clocks[i].clock, flags, 0, REL_VALUE, REL_INTERVAL);
	}
	arm(&abs_rt, "abs-rt", CLOCK_REALTIME, 0, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, 40 * SEC, 0);
	arm(&abs_rt_alarm, "abs-rt-alarm", CLOCK_REALTIME_ALARM, TFD_CLOEXEC, TFD_TIMER_ABSTIME, 45 * SEC, 0);
	arm(&abs_mono, "abs-mono", CLOCK_MONOTONIC, TFD_NONBLOCK, TFD_TIMER_ABSTIME, 50 * SEC, 3 * SEC);
	arm(&abs_boot, "abs-boot", CLOCK_BOOTTIME_ALARM, 0, TFD_TIMER_ABSTIME, 55 * SEC, 0);
	arm(&abs_periodic, "abs-periodic", CLOCK_REALTIME, TFD_NONBLOCK, TFD_TIMER_ABSTIME, 400 * MS, 100 * MS);
	arm(&fast, "fast", CLOCK_MONOTONIC, TFD_NONBLOCK, 0, 1 * MS, 1 * MS);
	arm(&expired, "expired", CLOCK_BOOTTIME, 0, 0, 1 * MS, 0);
	arm(&disarmed, "disarmed", CLOCK_REALTIME, TFD_NONBLOCK, 0, 0, 5 * SEC);
}

static void sabotage(void)
{
	char what[32];
	struct itimerspec its = { 0 };
	uint64_t n;

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "ticks") == 0) {
		if (read(fast.fd, &n, sizeof(n)) < 0)
			wl_fatal("read: %s", strerror(errno));
	} else if (strcmp(what, "abs") == 0) {
		its.it_value = ns_ts(40 * SEC);
		timerfd_settime(abs_rt.fd, 0, &its, NULL);
	} else if (strcmp(what, "rel") == 0) {
		its.it_value = ns_ts(REL_VALUE);
		its.it_interval = ns_ts(REL_INTERVAL);
		timerfd_settime(rel[1].fd, 0, &its, NULL);
	} else if (strcmp(what, "clock") == 0) {
		int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);

		dup3(fd, rel[0].fd, O_CLOEXEC);
		close(fd);
	} else if (strcmp(what, "nonblock") == 0) {
		fcntl(rel[0].fd, F_SETFL, 0);
	} else if (strcmp(what, "oneshot") == 0) {
		if (read(expired.fd, &n, sizeof(n)) < 0)
			wl_fatal("read: %s", strerror(errno));
	} else {
		wl_check(false, "unknown sabotage '%s'", what);
	}
}

int main(int argc, char **argv)
{
	struct timespec wait = { 0, 300 * MS };
	int64_t frozen;

	wl_init(argc, argv);
	setup();
	/* Hundreds of expirations of the fast timer, and the one-shot expires. */
	nanosleep(&wait, NULL);
	wl_ready();
	frozen = wl_wait_trigger_frozen(FROZEN_GAP);
	wl_write_file("frozen_ms", "%" PRId64 "\n", frozen / MS);
	sabotage();

	for (size_t i = 0; i < N_REL; i++)
		check_relative(&rel[i], frozen);
	check_absolute(&abs_rt);
	check_absolute(&abs_rt_alarm);
	check_absolute(&abs_mono);
	check_absolute(&abs_boot);
	check_abs_periodic();
	check_fast(frozen);
	check_expired();
	check_disarmed();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
