/* Scheduling: per thread (the kernel keeps all of it per thread) the
 * policy with its priority and flags, nice, CPU affinity, I/O priority and
 * timer slack; per process oom_score_adj.
 *
 * Dump: from outside (sched_getattr, getpriority, sched_getaffinity and
 * ioprio_get take a tid), but for the timer slack, which only the thread
 * itself can read (PR_GET_TIMERSLACK, injected).  What the restore could
 * not set is refused here, while the process runs: SCHED_DEADLINE and
 * policies cr does not know, utilization clamps, an oom_score_adj below
 * what a child of cr may set (lowering it needs CAP_SYS_RESOURCE, which
 * these hosts lack), and, when cr lacks CAP_SYS_NICE, what needs it.
 *
 * Restore: each thread sets its own by injection, before the credentials
 * are dropped (the table puts this kind before creds): a real-time policy
 * or I/O class and a nice below the restorer's need CAP_SYS_NICE, which
 * the restorer has and the restored process may not.  oom_score_adj is
 * written from outside, where the restorer's rights count. */
#include "state/sched.h"
#include "os/caps.h"
#include "os/cpus.h"
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/ioprio.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The kernel's struct sched_attr (glibc has no declaration). */
struct sched_attr_cr {
	uint32_t size;
	uint32_t policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;   /* SCHED_DEADLINE */
	uint32_t util_min, util_max;          /* utilization clamps */
};

#define SCHED_ATTR_SIZE_VER1 56
#define UCLAMP_MAX_VALUE     1024
#define RT_PRIO_MAX          99
#define OOM_ADJ_MIN          (-1000)
#define OOM_ADJ_MAX          1000
/* An affinity mask as sched_getaffinity gives it: larger than any
 * machine's, so that the kernel never refuses the size. */
#define AFFINITY_READ_BITS   8192

_Static_assert(sizeof(struct sched_attr_cr) == SCHED_ATTR_SIZE_VER1, "struct sched_attr, version 1");
_Static_assert(TRAMP_SCHED_ATTR + sizeof(struct sched_attr_cr) <= TRAMP_AFFINITY &&
		       TRAMP_AFFINITY + CR_CPUS_MAX / 8 <= TRAMP_ALTSTACK &&
		       TRAMP_AUXV + TRAMP_AUXV_MAX <= TRAMP_SCHED_ATTR,
	       "the scheduling attributes and the CPU mask fit their trampoline slots");

static const char *policy_name(uint32_t policy)
{
	switch (policy) {
	case SCHED_OTHER: return "SCHED_OTHER";
	case SCHED_BATCH: return "SCHED_BATCH";
	case SCHED_IDLE: return "SCHED_IDLE";
	case SCHED_FIFO: return "SCHED_FIFO";
	case SCHED_RR: return "SCHED_RR";
	}
	return NULL;
}

static bool rt_policy(uint32_t policy)
{
	return policy == SCHED_FIFO || policy == SCHED_RR;
}

static const char *const ioprio_classes[] = { "none", "realtime", "best-effort", "idle" };

/* A kernel without the block layer (CONFIG_BLOCK) has no I/O priorities:
 * ioprio_get is ENOSYS there, and every thread's is "none". */
static bool kernel_has_ioprio(void)
{
	return syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0) >= 0 || errno != ENOSYS;
}

/* ------------------------------------------------------------------ dump */

/* The minimum clamp the kernel gives a real-time thread that set none. */
static uint32_t rt_default_util_min(void)
{
	cleanup_free char *text = NULL;
	cr_error_t ignored = NULL;

	if (read_whole_file_at(AT_FDCWD, "/proc/sys/kernel/sched_util_clamp_min_rt_default", &text, NULL,
			       &ignored) < 0) {
		cr_error_release(&ignored);
		return UCLAMP_MAX_VALUE;
	}
	return (uint32_t)strtoul(text, NULL, 10);
}

/* Clamps a thread did not set: none at all (a kernel without them), or
 * the kernel's defaults for its class.  A thread's own clamps are not
 * restored (the kernel does not say whether it set them). */
static bool default_clamps(const struct sched_attr_cr *a)
{
	if (a->size < SCHED_ATTR_SIZE_VER1 || (a->util_min == 0 && a->util_max == 0))
		return true;
	if (a->util_max != UCLAMP_MAX_VALUE)
		return false;
	return a->util_min == 0 || (rt_policy(a->policy) && a->util_min == rt_default_util_min());
}

static int check_attr(const struct sched_attr_cr *a, cr_error_t *err)
{
	if (a->policy == SCHED_DEADLINE)
		return cr_error(err, 0, "SCHED_DEADLINE (runtime %llu ns, deadline %llu ns, period %llu ns) "
				"is not restored by cr", (unsigned long long)a->runtime,
				(unsigned long long)a->deadline, (unsigned long long)a->period);
	if (policy_name(a->policy) == NULL)
		return cr_error(err, 0, "scheduling policy %u is not known to cr", a->policy);
	if (a->flags & ~(uint64_t)SCHED_FLAG_RESET_ON_FORK)
		return cr_error(err, 0, "scheduling flags 0x%llx are not restored by cr",
				(unsigned long long)a->flags);
	if (!default_clamps(a))
		return cr_error(err, 0, "utilization clamps (min %u, max %u) are not restored by cr", a->util_min,
				a->util_max);
	return 0;
}

/* What restoring the thread needs CAP_SYS_NICE for, or NULL: a real-time
 * policy or I/O class, or a nice below the one a restored thread starts
 * with (cr's own). */
static const char *needs_cap_nice(const SchedThreadEntry *s, char *buf, size_t size)
{
	int own = getpriority(PRIO_PROCESS, 0);

	if (rt_policy(s->policy))
		snprintf(buf, size, "%s priority %u", policy_name(s->policy), s->priority);
	else if (IOPRIO_PRIO_CLASS(s->ioprio) == IOPRIO_CLASS_RT)
		snprintf(buf, size, "the realtime I/O class");
	else if (s->nice < own)
		snprintf(buf, size, "nice %d (below cr's own %d)", s->nice, own);
	else
		return NULL;
	return buf;
}

static int read_affinity(struct dump_ctx *ctx, pid_t tid, SchedThreadEntry *s, cr_error_t *err)
{
	uint64_t mask[AFFINITY_READ_BITS / 64] = { 0 };
	long n = syscall(SYS_sched_getaffinity, tid, sizeof(mask), mask);
	size_t count = 0;

	if (n < 0)
		return cr_error(err, errno, "sched_getaffinity");
	for (size_t i = 0; i < (size_t)n / 8; i++)
		count += (size_t)__builtin_popcountll(mask[i]);
	s->cpus = arena_array(&ctx->arena, uint32_t, count);
	for (unsigned cpu = 0; cpu < (unsigned)n * 8; cpu++) {
		if (!((mask[cpu / 64] >> (cpu % 64)) & 1))
			continue;
		if (cpu >= CR_CPUS_MAX)
			return cr_error(err, 0, "bound to CPU %u: cr handles CPUs below %u", cpu, CR_CPUS_MAX);
		s->cpus[s->n_cpus++] = cpu;
	}
	return 0;
}

static int collect_thread(struct dump_ctx *ctx, struct dump_thread *th, cr_error_t *err)
{
	SchedThreadEntry *s = arena_new(&ctx->arena, SchedThreadEntry);
	struct sched_attr_cr a = { 0 };
	char why[64];
	long ioprio;

	sched_thread_entry__init(s);
	if (syscall(SYS_sched_getattr, th->tid, &a, sizeof(a), 0) < 0)
		return cr_error(err, errno, "sched_getattr");
	if (check_attr(&a, err) < 0)
		return -1;
	s->policy = a.policy;
	s->flags = (uint32_t)a.flags;
	s->priority = a.priority;
	errno = 0;
	s->nice = getpriority(PRIO_PROCESS, (id_t)th->tid);
	if (s->nice == -1 && errno != 0)
		return cr_error(err, errno, "getpriority");
	ioprio = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, th->tid);
	if (ioprio < 0 && errno == ENOSYS)
		ioprio = 0;
	else if (ioprio < 0)
		return cr_error(err, errno, "ioprio_get");
	s->ioprio = (uint32_t)ioprio;
	if (read_affinity(ctx, th->tid, s, err) < 0)
		return -1;
	if (!caps_have(CAP_SYS_NICE) && needs_cap_nice(s, why, sizeof(why)))
		return cr_error(err, EPERM, "restoring %s needs CAP_SYS_NICE, which cr does not have", why);
	th->core->sched = s;
	return 0;
}

static int read_oom_score_adj(pid_t pid, int *out, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	char *end;
	long v;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/oom_score_adj");
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return -1;
	v = strtol(text, &end, 10);
	if (end == text || v < OOM_ADJ_MIN || v > OOM_ADJ_MAX)
		return cr_error(err, 0, "%s: unexpected '%.20s'", path, text);
	*out = (int)v;
	return 0;
}

/* Whether a child of cr may set its oom_score_adj to value, as a restored
 * process (a child of cr restore) will have to.  Below the floor it
 * inherited (oom_score_adj_min, which only CAP_SYS_RESOURCE moves down)
 * it may not, and the kernel shows the floor only by refusing: so a child
 * tries. */
static int oom_settable(int value, bool *ok, cr_error_t *err)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", value), status;
	pid_t pid = fork();

	if (pid < 0)
		return cr_error(err, errno, "fork to try oom_score_adj %d", value);
	if (pid == 0) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		_exit(fd >= 0 && write(fd, buf, (size_t)len) == len ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) != pid)
		if (errno != EINTR)
			return cr_error(err, errno, "wait for the oom_score_adj trial");
	*ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return 0;
}

/* cr's own oom_score_adj, read once: what every process it restores starts
 * with (inherited from cr, before any is applied). */
static int own_oom_score_adj(int *out, cr_error_t *err)
{
	static int own;
	static bool known;

	if (!known && read_oom_score_adj(0, &own, err) < 0)
		return -1;
	known = true;
	*out = own;
	return 0;
}

static int collect_oom(struct dump_task *t, SchedProcessEntry *p, cr_error_t *err)
{
	int value, own;
	bool ok = true;

	if (read_oom_score_adj(t->pid, &value, err) < 0 || own_oom_score_adj(&own, err) < 0)
		return -1;
	if (value < own && oom_settable(value, &ok, err) < 0)
		return -1;
	if (!ok)
		return cr_error(err, EPERM, "oom_score_adj %d cannot be restored: a process cr restores starts at "
				"cr's %d and may not go that low; that needs CAP_SYS_RESOURCE, which this host "
				"does not give", value, own);
	p->oom_score_adj = value;
	return 0;
}

SchedProcessEntry *sched_process(struct dump_ctx *ctx, struct dump_task *t)
{
	if (t->core->sched == NULL) {
		t->core->sched = arena_new(&ctx->arena, SchedProcessEntry);
		sched_process_entry__init(t->core->sched);
	}
	return t->core->sched;
}

static int sched_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (collect_thread(ctx, &t->threads[i], err) < 0)
			return cr_error_wrap(err, "pid %d thread %d: scheduling", t->pid, t->threads[i].tid);
	if (collect_oom(t, sched_process(ctx, t), err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	return 0;
}

/* The timer slack is told only to the thread itself: each thread's is
 * asked with every kind's calls for it. */
static void sched_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_add(&t->asked, "read the timer slack", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0);
}

static int sched_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	(void)ctx;
	(void)err;
	t->threads[0].core->sched->timer_slack_ns = (uint64_t)inject_batch_ret(&t->asked, first);
	return 0;
}

static void sched_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
			     struct inject_batch *b)
{
	(void)ctx;
	(void)t;
	(void)th;
	inject_batch_add(b, "read the timer slack", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0);
}

static int sched_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				 const struct inject_batch *b, size_t first, cr_error_t *err)
{
	(void)ctx;
	(void)t;
	(void)err;
	th->core->sched->timer_slack_ns = (uint64_t)inject_batch_ret(b, first);
	return 0;
}

/* --------------------------------------------------------------- restore */

static int validate_cpus(const SchedThreadEntry *s, const struct cpu_set_cr *usable, cr_error_t *err)
{
	if (s->n_cpus == 0)
		return cr_error(err, 0, "an empty CPU affinity");
	for (size_t i = 0; i < s->n_cpus; i++) {
		if (s->cpus[i] >= CR_CPUS_MAX || (i > 0 && s->cpus[i] <= s->cpus[i - 1]))
			return cr_error(err, 0, "a malformed CPU affinity");
		if (!cpus_has(usable, s->cpus[i]))
			return cr_error(err, 0, "bound to CPU %u, which this machine does not offer (not online, "
					"or outside cr's cpuset): restore it where that CPU exists", s->cpus[i]);
	}
	return 0;
}

static int validate_thread(const SchedThreadEntry *s, const struct cpu_set_cr *usable, cr_error_t *err)
{
	uint32_t class;

	if (s == NULL)
		return cr_error(err, 0, "no scheduling attributes");
	class = IOPRIO_PRIO_CLASS(s->ioprio);
	if (policy_name(s->policy) == NULL)
		return cr_error(err, 0, "unknown scheduling policy %u", s->policy);
	if (rt_policy(s->policy) ? s->priority < 1 || s->priority > RT_PRIO_MAX : s->priority != 0)
		return cr_error(err, 0, "priority %u is out of range for %s", s->priority, policy_name(s->policy));
	if (s->flags & ~(uint32_t)SCHED_FLAG_RESET_ON_FORK)
		return cr_error(err, 0, "unknown scheduling flags 0x%x", s->flags);
	if (s->nice < -20 || s->nice > 19)
		return cr_error(err, 0, "nice %d is out of range", s->nice);
	if (s->ioprio > 0xffff || class >= ARRAY_SIZE(ioprio_classes) ||
	    (class == IOPRIO_CLASS_NONE && s->ioprio != 0))
		return cr_error(err, 0, "unknown I/O priority 0x%x", s->ioprio);
	if (s->ioprio != 0 && !kernel_has_ioprio())
		return cr_error(err, 0, "I/O priority %s: this kernel has none (no CONFIG_BLOCK)", ioprio_classes[class]);
	if (s->timer_slack_ns == 0 && !rt_policy(s->policy))
		return cr_error(err, 0, "timer slack 0 for %s", policy_name(s->policy));
	return validate_cpus(s, usable, err);
}

/* This restorer may be lower in the floor than the dumper was: the same
 * trial as at dump, before any process exists. */
static int check_oom_here(const struct restore_task *t, int value, cr_error_t *err)
{
	int own;
	bool ok = true;

	if (own_oom_score_adj(&own, err) < 0 || (value < own && oom_settable(value, &ok, err) < 0))
		return -1;
	if (!ok)
		return cr_error(err, EPERM, "pid %d had oom_score_adj %d: a process this cr restores starts at its "
				"%d and may not go that low without CAP_SYS_RESOURCE", t->pid, value, own);
	return 0;
}

static int sched_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;
	static struct cpu_set_cr usable;   /* read once a run */
	static bool known;

	(void)ctx;
	if (p == NULL || p->oom_score_adj < OOM_ADJ_MIN || p->oom_score_adj > OOM_ADJ_MAX)
		return cr_error(err, 0, "core-%d.img: no oom_score_adj, or out of range", t->pid);
	if (check_oom_here(t, p->oom_score_adj, err) < 0)
		return -1;
	if (!known && cpus_usable(&usable, err) < 0)
		return cr_error_wrap(err, "the CPUs of this machine");
	known = true;
	for (size_t i = 0; i < t->core->n_threads; i++)
		if (validate_thread(t->core->threads[i]->sched, &usable, err) < 0)
			return cr_error_wrap(err, "core-%d.img: thread %u", t->pid, t->core->threads[i]->tid);
	return 0;
}

/* Raised or lowered from outside: the restorer may lower it as far as its
 * own floor, which the dump checked against cr's. */
static int sched_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	char path[64], buf[16];
	cleanup_close int fd = -1;
	int len, now;

	(void)ctx;
	if (own_oom_score_adj(&now, err) < 0)
		return -1;
	if (now == t->core->sched->oom_score_adj)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", t->host_pid);
	len = snprintf(buf, sizeof(buf), "%d", t->core->sched->oom_score_adj);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)len) != len)
		return cr_error(err, errno, "set oom_score_adj to %s (from %d)%s", buf, now,
				errno == EACCES ? ": lowering it needs CAP_SYS_RESOURCE" : "");
	return 0;
}

/* Nice first: for a real-time policy only setpriority sets it, and
 * sched_setattr keeps it.  The timer slack after the policy: the kernel
 * gives a thread leaving a real-time policy its default slack. */
static int sched_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
			      cr_error_t *err)
{
	const SchedThreadEntry *s = th->core->sched;
	struct sched_attr_cr a = { .size = sizeof(a), .policy = s->policy, .flags = s->flags,
				   .nice = s->nice, .priority = s->priority };
	struct cpu_set_cr mask = { { 0 } };

	(void)ctx;
	for (size_t i = 0; i < s->n_cpus; i++)
		cpus_add(&mask, s->cpus[i]);
	if (remote_write(t->host_pid, t->tramp + TRAMP_SCHED_ATTR, &a, sizeof(a), err) < 0 ||
	    remote_write(t->host_pid, t->tramp + TRAMP_AFFINITY, &mask, sizeof(mask), err) < 0)
		return -1;
	inject_batch_add(&t->batch, "set nice", SYS_setpriority, PRIO_PROCESS, 0, (uint64_t)(int64_t)s->nice, 0, 0,
			 0);
	inject_batch_add(&t->batch, "set the scheduling policy", SYS_sched_setattr, 0, t->tramp + TRAMP_SCHED_ATTR,
			 0, 0, 0, 0);
	if (s->timer_slack_ns != 0)
		inject_batch_add(&t->batch, "set the timer slack", SYS_prctl, PR_SET_TIMERSLACK, s->timer_slack_ns,
				 0, 0, 0, 0);
	inject_batch_add(&t->batch, "set the CPU affinity", SYS_sched_setaffinity, 0, sizeof(mask),
			 t->tramp + TRAMP_AFFINITY, 0, 0, 0);
	if (kernel_has_ioprio())
		inject_batch_add(&t->batch, "set the I/O priority", SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, s->ioprio,
				 0, 0, 0);
	return 0;
}

const struct state_kind state_sched = {
	.name = "scheduling",
	.collect = sched_collect,
	.ask = sched_ask,
	.answered = sched_answered,
	.ask_thread = sched_ask_thread,
	.answered_thread = sched_answered_thread,
	.validate = sched_validate,
	.apply = sched_apply,
	.apply_thread = sched_apply_thread,
};
