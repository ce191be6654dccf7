/* timerfd: its clock, settime flags, time left, interval and the
 * expirations not yet read.
 *
 * Dump reads the timer through a duplicate of the fd (pidfd_getfd).
 * fdinfo alone is not enough: for a periodic timer that expired many times
 * it shows `ticks: 1` and no time left until someone asks the timer.
 * timerfd_gettime on the duplicate folds the missed periods into the ticks
 * (without consuming them) and moves the timer to its next expiry; the
 * duplicate's fdinfo then shows the true count.
 *
 * Restore: timerfd_create, timerfd_settime, then TFD_IOC_SET_TICKS for the
 * expirations not yet read (settime clears them, so ticks go last).
 *
 * Time semantics:
 *   - a relative timer keeps the time it had left: its clock stands still
 *     from the dump to the restore, as the process's does;
 *   - an absolute CLOCK_REALTIME(_ALARM) timer keeps its expiry: wall time
 *     is one clock everywhere; an expiry that passed meanwhile fires at
 *     once, and a periodic timer counts the periods it missed;
 *   - an absolute CLOCK_MONOTONIC / CLOCK_BOOTTIME(_ALARM) timer keeps its
 *     expiry when restored on the boot it was dumped on (same
 *     /proc/sys/kernel/random/boot_id): the clock is the same clock, so
 *     the program's deadline keeps its meaning, like a wall-clock one.  On
 *     another boot or machine those clocks count from another origin and
 *     the dumped value means nothing there, so the timer keeps the time it
 *     had left instead, like a relative one.  The expiry is kept on cr's
 *     clock; a process in a time namespace reads that clock moved by the
 *     namespace's offset, and is armed accordingly (ns_clock_offset). */
#include "fd/fdkind.h"
#include "os/log.h"
#include "os/util.h"
#include "state/ns.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

#define MAX_TIME_NS  (INT64_MAX / 2)
#define SETTLE_TRIES 5

static bool known_clock(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_MONOTONIC || clockid == CLOCK_BOOTTIME ||
	       clockid == CLOCK_REALTIME_ALARM || clockid == CLOCK_BOOTTIME_ALARM;
}

/* Wall-clock timers name the same instant on any boot. */
static bool wall_clock(uint32_t clockid)
{
	return clockid == CLOCK_REALTIME || clockid == CLOCK_REALTIME_ALARM;
}

/* Alarm clocks read as the clock they are built on (without an RTC,
 * clock_gettime refuses them). */
static clockid_t base_clock(uint32_t clockid)
{
	if (clockid == CLOCK_REALTIME_ALARM)
		return CLOCK_REALTIME;
	if (clockid == CLOCK_BOOTTIME_ALARM)
		return CLOCK_BOOTTIME;
	return (clockid_t)clockid;
}

static int clock_now_ns(uint32_t clockid, int64_t *now, cr_error_t *err)
{
	struct timespec ts;

	if (clock_gettime(base_clock(clockid), &ts) < 0)
		return cr_error(err, errno, "clock_gettime(%u)", clockid);
	*now = (int64_t)timespec_ns(&ts);
	return 0;
}

/* ------------------------------------------------------------------ dump */

static bool timerfd_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[timerfd]") == 0;
}

/* clockid and settime flags, which only timerfd_settime changes. */
static int parse_setup(const struct fd_probe *p, TimerfdEntry *e, cr_error_t *err)
{
	uint64_t clk, v;

	if (proc_fdinfo_u64(p->fdinfo, "clockid", 10, &clk) < 0 ||
	    proc_fdinfo_u64(p->fdinfo, "settime flags", 8, &v) < 0)
		return cr_error(err, 0, "fdinfo lacks clockid or settime flags");
	e->clockid = (uint32_t)clk;
	if (clk > UINT32_MAX || !known_clock(e->clockid) || (v & ~(uint64_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)))
		return cr_error(err, 0, "clock %" PRIu64 " with settime flags 0%" PRIo64, clk, v);
	e->settime_flags = (uint32_t)v;
	return 0;
}

/* The ticks of the duplicate, after timerfd_gettime folded the overruns. */
static int read_ticks(int fd, uint64_t *ticks, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_whole_file_at(AT_FDCWD, path, &text, &len, err) < 0)
		return -1;
	if (proc_fdinfo_u64(text, "ticks", 10, ticks) < 0)
		return cr_error(err, 0, "%s lacks ticks", path);
	return 0;
}

/* timerfd_gettime, asked again while it says "no time left": an expiry
 * that has passed but whose timer interrupt has not run yet reads as a
 * disarmed timer without its expiration.  The interrupt comes within
 * microseconds; a timer still at zero after SETTLE_TRIES ms is disarmed. */
static int gettime_settled(int fd, struct itimerspec *cur, cr_error_t *err)
{
	for (int i = 0;; i++) {
		if (timerfd_gettime(fd, cur) < 0)
			return cr_error(err, errno, "timerfd_gettime");
		if (cur->it_value.tv_sec != 0 || cur->it_value.tv_nsec != 0 || i == SETTLE_TRIES)
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	}
}

/* Asks the timer through a duplicate: time left, interval, ticks, and for
 * absolute timers the expiry on their clock. */
static int read_timer(pid_t pid, int fd, TimerfdEntry *e, struct arena *a, cr_error_t *err)
{
	cleanup_close int dup = fdkind_steal_fd(pid, fd, err);
	struct itimerspec cur;
	int64_t now = 0;
	char boot_id[PROC_BOOT_ID_LEN + 1];

	if (dup < 0)
		return -1;
	if (gettime_settled(dup, &cur, err) < 0)
		return -1;
	if ((e->settime_flags & TFD_TIMER_ABSTIME) && clock_now_ns(e->clockid, &now, err) < 0)
		return -1;
	e->value_ns = timespec_ns(&cur.it_value);
	e->interval_ns = timespec_ns(&cur.it_interval);
	if (read_ticks(dup, &e->ticks, err) < 0)
		return -1;
	if (!(e->settime_flags & TFD_TIMER_ABSTIME) || e->value_ns == 0)
		return 0;
	if (proc_read_boot_id(boot_id, err) < 0)
		return -1;
	e->has_expiry_ns = true;
	e->expiry_ns = now + (int64_t)e->value_ns;
	e->boot_id = arena_strdup(a, boot_id);
	return 0;
}

static int timerfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	TimerfdEntry *e = arena_new(&ctx->arena, TimerfdEntry);

	timerfd_entry__init(e);
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "timerfd with flags 0%o: unsupported kind (only O_NONBLOCK is kept)",
				fe->flags);
	if (parse_setup(p, e, err) < 0 || read_timer(t->pid, p->fd, e, &ctx->arena, err) < 0)
		return -1;
	fe->timerfd = e;
	pr_debug("pid %d fd %d: timerfd clock %u flags %u left %" PRIu64 " ns every %" PRIu64 " ns, %" PRIu64
		 " ticks", t->pid, p->fd, e->clockid, e->settime_flags, e->value_ns, e->interval_ns, e->ticks);
	return 0;
}

/* --------------------------------------------------------------- restore */

static int timerfd_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const TimerfdEntry *e = fe->timerfd;
	(void)ctx;

	if (e == NULL)
		return cr_error(err, 0, "timerfd without its timer state");
	if (!known_clock(e->clockid) || (e->settime_flags & ~(uint32_t)(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)))
		return cr_error(err, 0, "timerfd with clock %u and settime flags %u", e->clockid, e->settime_flags);
	if (e->value_ns > MAX_TIME_NS || e->interval_ns > MAX_TIME_NS ||
	    (e->has_expiry_ns && (e->expiry_ns <= 0 || e->expiry_ns > (int64_t)MAX_TIME_NS)))
		return cr_error(err, 0, "timerfd with a time out of range");
	if ((e->settime_flags & TFD_TIMER_ABSTIME) && e->value_ns != 0 && (!e->has_expiry_ns || e->boot_id == NULL))
		return cr_error(err, 0, "absolute timerfd without its expiry");
	return 0;
}

/* Where timerfd_settime must point it_value (see the time semantics above),
 * for a timer armed by t. */
static int restore_point(const struct restore_ctx *ctx, const struct restore_task *t, const TimerfdEntry *e,
			 uint64_t *value, cr_error_t *err)
{
	int64_t at;
	char boot_id[PROC_BOOT_ID_LEN + 1];
	int64_t now;

	if (!(e->settime_flags & TFD_TIMER_ABSTIME) || e->value_ns == 0) {
		*value = e->value_ns;
		return 0;
	}
	if (wall_clock(e->clockid)) {
		*value = (uint64_t)e->expiry_ns;
		return 0;
	}
	if (proc_read_boot_id(boot_id, err) < 0)
		return -1;
	if (strcmp(boot_id, e->boot_id) == 0) {
		/* The expiry is on cr's clock; t reads its own, in its time
		 * namespace.  One that comes to 0 or less has passed. */
		at = e->expiry_ns + ns_clock_offset(ctx, t, (clockid_t)e->clockid);
		*value = at > 0 ? (uint64_t)at : 1;
		return 0;
	}
	if (clock_now_ns(e->clockid, &now, err) < 0)
		return -1;
	*value = (uint64_t)now + e->value_ns;
	return 0;
}

static int arm(const struct restore_ctx *ctx, const struct restore_task *t, int fd, const TimerfdEntry *e,
	       cr_error_t *err)
{
	struct itimerspec its = { .it_interval = ns_timespec(e->interval_ns) };
	uint64_t value;

	if (restore_point(ctx, t, e, &value, err) < 0)
		return -1;
	its.it_value = ns_timespec(value);
	if (timerfd_settime(fd, (int)e->settime_flags, &its, NULL) < 0)
		return cr_error(err, errno, "timerfd_settime(flags %u, %" PRIu64 " ns, every %" PRIu64 " ns)",
				e->settime_flags, value, e->interval_ns);
	return 0;
}

/* Puts back the expirations not yet read.  The timer may already have
 * expired again since it was armed (an absolute expiry that passed while
 * the process was away): those count too. */
static int set_ticks(int fd, uint64_t dumped, cr_error_t *err)
{
	struct itimerspec cur;
	uint64_t now_ticks;

	if (dumped == 0)
		return 0;
	if (timerfd_gettime(fd, &cur) < 0)
		return cr_error(err, errno, "timerfd_gettime");
	if (read_ticks(fd, &now_ticks, err) < 0)
		return -1;
	if (ioctl(fd, TFD_IOC_SET_TICKS, &(uint64_t){ dumped + now_ticks }) < 0)
		return cr_error(err, errno, "set %" PRIu64 " unread expirations (TFD_IOC_SET_TICKS needs "
				"CONFIG_CHECKPOINT_RESTORE)", dumped + now_ticks);
	return 0;
}

static int timerfd_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const TimerfdEntry *e = fe->timerfd;
	int flags = TFD_CLOEXEC | ((fe->flags & O_NONBLOCK) ? TFD_NONBLOCK : 0);
	cleanup_close int fd = timerfd_create((clockid_t)e->clockid, flags);

	if (fd < 0)
		return cr_error(err, errno, "timerfd_create(clock %u)", e->clockid);
	if (arm(ctx, t, fd, e, err) < 0 || set_ticks(fd, e->ticks, err) < 0)
		return -1;
	return steal_fd(&fd);
}

const struct fd_kind fdkind_timerfd = {
	.kind = FILE_KIND__FILE_TIMERFD,
	.shareable = true,
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.validate = timerfd_validate,
	.open = timerfd_open,
};
