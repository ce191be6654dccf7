/* POSIX timers (timer_create): their ids, clocks, notification (signal,
 * value, SIGEV_SIGNAL / SIGEV_NONE / SIGEV_THREAD_ID) and time left.
 *
 * Dump: /proc/PID/timers lists each timer's id, signal and value,
 * notification and clock; the time left and the interval are read by an
 * injected timer_gettime into the scratch page, the overrun count by an
 * injected timer_getoverrun.
 *
 * Restore, in the child with every signal blocked: with
 * PR_TIMER_CREATE_RESTORE_IDS on, timer_create takes the id it is given, so
 * every timer gets its own id back; timer_settime gives it the time it had
 * left.  A timer keeps its remaining time whatever its clock: the kernel
 * does not tell whether a timer was set with TIMER_ABSTIME.
 *
 * A SIGEV_THREAD_ID timer may signal any thread of the process (glibc's
 * SIGEV_THREAD timers signal its helper thread): the image names the
 * thread by its tid in the dumper's namespace, and the restored timer
 * signals the restored thread of that tid.  Every thread exists by then
 * (threads.c parks them before this kind's setup).  A timer may have been
 * created by any thread: timers belong to the process.
 *
 * Not kept: the overrun count of the last delivered signal (recorded, but
 * no call sets it), the id the next new timer gets (it follows the highest
 * restored one).  Refused: a timer aimed at a thread that has exited, and
 * timers on the CPU clock of another process.
 *
 * CPU clocks: a timer on the process's own CPU clock is recorded on
 * "itself" (pid 0).  One on the CPU clock of one of its threads
 * (pthread_getcpuclockid: haproxy's watchdog arms one per thread) names
 * the thread in the clock id as the process saw it (its innermost tid);
 * the image names it by its tid in the dumper's namespace, as for
 * SIGEV_THREAD_ID, and the restored timer runs on the CPU clock of the
 * restored thread of that tid.  The clocks themselves start again near
 * zero (a restored thread has used no CPU time yet); the time a timer had
 * left is kept, as for every clock. */
#include "state/state.h"
#include "os/log.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS     77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON  1
#endif

/* timer_gettime's result, in the free part of the scratch page. */
#define SCRATCH_POSIX_TIMER (SCRATCH_TID_ADDRESS + 16)
_Static_assert(SCRATCH_POSIX_TIMER + sizeof(struct itimerspec) <= SCRATCH_SIZE, "fits the scratch page");

#define MAX_TIME_NS  (INT64_MAX / 2)

/* The kernel's encoding of CPU clocks (negative clock ids). */
#define CPUCLOCK_PID(clock)       ((pid_t)~((clock) >> 3))
#define CPUCLOCK_PERTHREAD_MASK   4
#define CPUCLOCK_SELF(clock)      (((clock) & 7) | (int32_t)(~0U << 3))
#define CPUCLOCK_OF(tid, clock)   ((int32_t)((~(uint32_t)(tid) << 3) | ((uint32_t)(clock) & 7)))
/* glibc's sigevent names the thread of SIGEV_THREAD_ID only in its union. */
#define sigev_tid _sigev_un._tid

/* A clock restore can make: the CPU clock of the process, of the thread
 * that asks, or of a thread named by its tid. */
static bool known_clock(int32_t clock)
{
	return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME ||
	       clock == CLOCK_REALTIME_ALARM || clock == CLOCK_BOOTTIME_ALARM || clock == CLOCK_TAI ||
	       (clock < 0 && (clock & 3) < 3 && (CPUCLOCK_PID(clock) == 0 || (clock & CPUCLOCK_PERTHREAD_MASK)));
}

/* ------------------------------------------------------------------ dump */

static int parse_notify(const char *val, PosixTimerEntry *e, cr_error_t *err)
{
	char how[16], whom[8];
	int id;

	if (sscanf(val, "%15[a-z]/%7[a-z].%d", how, whom, &id) != 3)
		return cr_error(err, 0, "bad notify line '%s'", val);
	if (strcmp(how, "signal") == 0 && strcmp(whom, "tid") == 0) {
		e->notify = SIGEV_THREAD_ID;
		e->has_notify_tid = true;
		e->notify_tid = (uint32_t)id;
	} else if (strcmp(how, "signal") == 0) {
		e->notify = SIGEV_SIGNAL;
	} else if (strcmp(how, "none") == 0) {
		e->notify = SIGEV_NONE;
	} else {
		return cr_error(err, 0, "timer %d notifies by '%s': unsupported kind", e->id, how);
	}
	return 0;
}

/* One "key: value" line of /proc/PID/timers into the current entry. */
static int parse_timer_line(const char *key, const char *val, PosixTimerEntry *e, cr_error_t *err)
{
	if (strcmp(key, "signal") == 0) {
		if (sscanf(val, "%u/%" SCNx64, &e->signo, &e->sigev_value) != 2)
			return cr_error(err, 0, "bad signal line '%s'", val);
		return 0;
	}
	if (strcmp(key, "notify") == 0)
		return parse_notify(val, e, err);
	if (strcmp(key, "ClockID") == 0) {
		e->clockid = (int32_t)strtol(val, NULL, 10);
		return 0;
	}
	return 0;   /* lines a later kernel may add */
}

static int parse_timers(struct dump_ctx *ctx, char *text, PosixTimerEntry ***out, size_t *n, cr_error_t *err)
{
	size_t cap = 1;
	PosixTimerEntry *cur = NULL;

	for (const char *p = text; (p = strstr(p, "ID:")) != NULL; p++)
		cap++;
	*out = arena_array(&ctx->arena, PosixTimerEntry *, cap);
	*n = 0;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':'), *val;

		if (colon == NULL)
			continue;
		*colon = '\0';
		val = colon + 1 + strspn(colon + 1, " ");
		if (strcmp(line, "ID") == 0) {
			cur = arena_new(&ctx->arena, PosixTimerEntry);
			posix_timer_entry__init(cur);
			cur->id = (int32_t)strtol(val, NULL, 10);
			(*out)[(*n)++] = cur;
		} else if (cur != NULL && parse_timer_line(line, val, cur, err) < 0) {
			return -1;
		}
	}
	return 0;
}

static bool is_thread_of(const struct dump_task *t, pid_t tid)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (t->threads[i].tid == tid)
			return true;
	return false;
}

/* A tid or pid as the process sees it (its innermost pid namespace). */
static pid_t inner_id(const struct proc_status *st, pid_t outer)
{
	return st->n_levels > 0 ? st->ns_pid[st->n_levels - 1] : outer;
}

/* The thread (its tid in cr's namespace) whose tid the process sees as
 * inner; 0 if none. */
static pid_t thread_seen_as(const struct dump_task *t, pid_t inner)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (inner_id(&t->threads[i].status, t->threads[i].tid) == inner)
			return t->threads[i].tid;
	return 0;
}

/* A CPU clock id as restore takes it: the process's own clock on pid 0,
 * a thread's on its tid in cr's namespace (the process named it by its
 * innermost one). */
static int check_cpu_clock(const struct dump_task *t, PosixTimerEntry *e, cr_error_t *err)
{
	pid_t owner = CPUCLOCK_PID(e->clockid), tid;

	/* The clock of "the thread that calls timer_create": which one that
	 * was, /proc/PID/timers does not say. */
	if (owner == 0 && (e->clockid & CPUCLOCK_PERTHREAD_MASK) && t->n_threads > 1)
		return cr_error(err, 0, "timer %d runs on the CPU clock of the thread that made it, which cr cannot tell "
				"among %zu threads: unsupported kind", e->id, t->n_threads);
	if (owner == 0)
		return 0;
	if (!(e->clockid & CPUCLOCK_PERTHREAD_MASK)) {
		if (owner != inner_id(&t->status, t->pid))
			return cr_error(err, 0, "timer %d runs on the CPU clock of pid %d: unsupported kind", e->id,
					owner);
		e->clockid = CPUCLOCK_SELF(e->clockid);
		return 0;
	}
	tid = thread_seen_as(t, owner);
	if (tid == 0)
		return cr_error(err, 0, "timer %d on the CPU clock of %d, no thread of the process: unsupported kind",
				e->id, owner);
	e->clockid = CPUCLOCK_OF(tid, e->clockid);
	return 0;
}

/* Only what restore can honour in this process. */
static int check_timer(const struct dump_task *t, PosixTimerEntry *e, cr_error_t *err)
{
	if (e->notify == SIGEV_THREAD_ID && !is_thread_of(t, (pid_t)e->notify_tid))
		return cr_error(err, 0, "timer %d signals thread %u, which is no thread of the process (it exited): "
				"unsupported kind", e->id, e->notify_tid);
	if (e->clockid < 0 && check_cpu_clock(t, e, err) < 0)
		return -1;
	if (!known_clock(e->clockid))
		return cr_error(err, 0, "timer %d on clock %d: unsupported kind", e->id, e->clockid);
	return 0;
}

/* Time left, interval and overrun, asked inside the process. */
static int read_timer(struct dump_task *t, PosixTimerEntry *e, cr_error_t *err)
{
	struct itimerspec its;
	long overrun;

	if (inject_call(t->inj, "timer_gettime", SYS_timer_gettime, (uint64_t)e->id, t->scratch + SCRATCH_POSIX_TIMER,
			0, 0, 0, 0, NULL, err) < 0 ||
	    inject_call(t->inj, "timer_getoverrun", SYS_timer_getoverrun, (uint64_t)e->id, 0, 0, 0, 0, 0, &overrun,
			err) < 0)
		return -1;
	if (remote_read(t->pid, t->scratch + SCRATCH_POSIX_TIMER, &its, sizeof(its), err) < 0)
		return cr_error_wrap(err, "read timer value");
	e->value_ns = timespec_ns(&its.it_value);
	e->interval_ns = timespec_ns(&its.it_interval);
	e->has_overrun = true;
	e->overrun = (uint32_t)overrun;
	return 0;
}

static int posix_timers_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	size_t len = 0;
	CoreEntry *core = t->core;

	snprintf(path, sizeof(path), "/proc/%d/timers", t->pid);
	if (read_whole_file_at(AT_FDCWD, path, &text, &len, err) < 0 ||
	    parse_timers(ctx, text, &core->posix_timers, &core->n_posix_timers, err) < 0)
		return cr_error_wrap(err, "pid %d: POSIX timers", t->pid);
	for (size_t i = 0; i < core->n_posix_timers; i++) {
		PosixTimerEntry *e = core->posix_timers[i];

		if (check_timer(t, e, err) < 0 || read_timer(t, e, err) < 0)
			return cr_error_wrap(err, "pid %d: POSIX timer %d", t->pid, e->id);
		pr_debug("pid %d: POSIX timer %d clock %d notify %u signal %u left %" PRIu64 " ns every %" PRIu64
			 " ns", t->pid, e->id, e->clockid, e->notify, e->signo, e->value_ns, e->interval_ns);
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

/* The thread of tid (in the dumper's namespace), as the restored process
 * sees it (its innermost tid); 0 if the dump names no thread of it. */
static pid_t restored_tid(const struct restore_task *t, uint32_t tid)
{
	for (size_t i = 0; i < t->pstree->n_threads; i++) {
		const ThreadIds *ids = t->pstree->threads[i];

		if (ids->n_ns_tid > 0 && ids->ns_tid[0] == tid)
			return (pid_t)ids->ns_tid[ids->n_ns_tid - 1];
	}
	return 0;
}

/* The thread a SIGEV_THREAD_ID timer signals. */
static pid_t target_tid(const struct restore_task *t, const PosixTimerEntry *e)
{
	return restored_tid(t, e->notify_tid);
}

/* The clock to create the timer on: a thread's CPU clock names the
 * restored thread; 0 (no CPU clock) if the dump names no thread of the
 * process. */
static int32_t restored_clock(const struct restore_task *t, const PosixTimerEntry *e)
{
	pid_t tid;

	if (e->clockid >= 0 || CPUCLOCK_PID(e->clockid) == 0)
		return e->clockid;
	tid = restored_tid(t, (uint32_t)CPUCLOCK_PID(e->clockid));
	return tid == 0 ? 0 : CPUCLOCK_OF(tid, e->clockid);
}

static int validate_timer(const struct restore_task *t, const PosixTimerEntry *e, cr_error_t *err)
{
	if (e->id < 0 || !known_clock(e->clockid) || e->value_ns > MAX_TIME_NS || e->interval_ns > MAX_TIME_NS)
		return cr_error(err, 0, "POSIX timer %d: bad id, clock %d or time", e->id, e->clockid);
	if (e->notify != SIGEV_SIGNAL && e->notify != SIGEV_NONE && e->notify != SIGEV_THREAD_ID)
		return cr_error(err, 0, "POSIX timer %d: notification %u", e->id, e->notify);
	if (e->notify != SIGEV_NONE && (e->signo == 0 || e->signo > 64))
		return cr_error(err, 0, "POSIX timer %d: signal %u", e->id, e->signo);
	if (e->notify == SIGEV_THREAD_ID && (!e->has_notify_tid || target_tid(t, e) == 0))
		return cr_error(err, 0, "POSIX timer %d: signals thread %u, which the process does not have", e->id,
				e->notify_tid);
	if (e->clockid < 0 && restored_clock(t, e) == 0)
		return cr_error(err, 0, "POSIX timer %d: runs on the CPU clock of thread %d, which the process does "
				"not have", e->id, CPUCLOCK_PID(e->clockid));
	return 0;
}

static int create_timer(const struct restore_task *t, const PosixTimerEntry *e, cr_error_t *err)
{
	struct sigevent sev;
	int32_t clock = restored_clock(t, e);
	int id = e->id;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = (int)e->notify;
	sev.sigev_signo = (int)e->signo;
	sev.sigev_value.sival_ptr = (void *)(uintptr_t)e->sigev_value;
	if (e->notify == SIGEV_THREAD_ID)
		sev.sigev_tid = target_tid(t, e);
	/* With PR_TIMER_CREATE_RESTORE_IDS on, the kernel reads the id to use
	 * from where it would write the new one. */
	if (syscall(SYS_timer_create, (clockid_t)clock, &sev, &id) < 0)
		return cr_error(err, errno, "timer_create(clock %d, id %d)", clock, e->id);
	if (id != e->id)
		return cr_error(err, 0, "timer_create gave id %d, not %d", id, e->id);
	return 0;
}

static int arm_timer(const PosixTimerEntry *e, cr_error_t *err)
{
	struct itimerspec its = { .it_interval = ns_timespec(e->interval_ns), .it_value = ns_timespec(e->value_ns) };

	if (syscall(SYS_timer_settime, e->id, 0, &its, NULL) < 0)
		return cr_error(err, errno, "timer_settime(%d, %" PRIu64 " ns, every %" PRIu64 " ns)", e->id,
				e->value_ns, e->interval_ns);
	return 0;
}

/* /proc/PID/timers lists the newest first: create them oldest first, so the
 * restored list reads the same. */
static int create_all(const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	for (size_t i = core->n_posix_timers; i-- > 0;) {
		const PosixTimerEntry *e = core->posix_timers[i];

		if (create_timer(t, e, err) < 0 || arm_timer(e, err) < 0)
			return cr_error_wrap(err, "POSIX timer %d", e->id);
	}
	return 0;
}

static int posix_timers_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->core->n_posix_timers; i++)
		if (validate_timer(t, t->core->posix_timers[i], err) < 0)
			return cr_error_wrap(err, "core-%d.img", t->pid);
	return 0;
}

/* In the child, once the signal dispositions are in place and with every
 * signal blocked. */
static int posix_timers_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;
	int ret;

	(void)ctx;
	if (core->n_posix_timers == 0)
		return 0;
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0)
		return cr_error(err, errno, "prctl(PR_TIMER_CREATE_RESTORE_IDS): this kernel cannot create POSIX "
				"timers with given ids; it lacks PR_TIMER_CREATE_RESTORE_IDS");
	ret = create_all(t, err);
	if (prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0) < 0 && ret == 0)
		return cr_error(err, errno, "prctl(PR_TIMER_CREATE_RESTORE_IDS, off)");
	return ret;
}

const struct state_kind state_posix_timers = {
	.name = "POSIX timers",
	.collect_injected = posix_timers_collect,
	.validate = posix_timers_validate,
	.setup = posix_timers_setup,
};
