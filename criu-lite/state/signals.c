/* Signal dispositions and pending signals (private and shared, with their
 * siginfo).  The blocked masks are per-thread state (thread.c). */
#include "state/sharing.h"
#include "state/state.h"

#include <linux/kcmp.h>
#include "os/util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#define NSIG_KERNEL 64
#define SIGINFO_SIZE 128
#define PEEK_BATCH 32

/* The kernel's struct sigaction on x86_64. */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* The dispositions, which only the process can tell. */
static void signals_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			inject_batch_add(&t->asked, "read a sigaction", SYS_rt_sigaction, (uint64_t)sig, 0,
					 t->scratch + (uint64_t)sig * sizeof(struct ksigaction), 8, 0, 0);
}

static int signals_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	struct ksigaction acts[NSIG_KERNEL + 1];
	CoreEntry *core = t->core;

	(void)first;
	if (remote_read(t->pid, t->scratch + SCRATCH_SIGACTIONS, acts, sizeof(acts), err) < 0)
		return cr_error_wrap(err, "read sigactions");
	core->sigactions = arena_array(&ctx->arena, SigactionEntry *, NSIG_KERNEL);
	for (int sig = 1; sig <= NSIG_KERNEL; sig++) {
		SigactionEntry *s;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		s = arena_new(&ctx->arena, SigactionEntry);
		sigaction_entry__init(s);
		s->sig = (uint32_t)sig;
		s->handler = acts[sig].handler;
		s->flags = acts[sig].flags;
		s->restorer = acts[sig].restorer;
		s->mask = acts[sig].mask;
		core->sigactions[core->n_sigactions++] = s;
	}
	return 0;
}

/* The SIGCHLD a child's stop sent its parent when the dump held the child
 * in a group stop (dump/guard.h): cr's, not the process's, so not dumped.
 * (A parent that blocks or handles SIGCHLD has one queued; a SIGCHLD
 * pending already keeps the first, which is the process's own.) */
static bool sent_by_hold(struct dump_ctx *ctx, const uint8_t *raw)
{
	siginfo_t si;

	memcpy(&si, raw, sizeof(si));
	if (si.si_signo != SIGCHLD || si.si_code != CLD_STOPPED)
		return false;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == si.si_pid)
			return ctx->tasks[i].held;
	return false;
}

/* What the queue of t keeps: not the SIGCHLD of cr's hold, and, in a
 * stopped process, not a SIGSTOP, which the SIGCONT that ends the stop
 * discards (cr drops it before injecting: dump/collect.c). */
static bool kept(struct dump_ctx *ctx, const struct dump_task *t, const uint8_t *raw)
{
	siginfo_t si;

	memcpy(&si, raw, sizeof(si));
	return !sent_by_hold(ctx, raw) && !(t->was_stopped && si.si_signo == SIGSTOP);
}

/* Calls fn with each siginfo (SIGINFO_SIZE bytes) queued for tid (its
 * process's queue, with shared), in order, until fn returns nonzero. */
static int each_queued(pid_t tid, bool shared, int (*fn)(const uint8_t *raw, void *arg), void *arg, cr_error_t *err)
{
	uint8_t buf[PEEK_BATCH * SIGINFO_SIZE];

	for (size_t off = 0;;) {
		struct __ptrace_peeksiginfo_args args = {
			.off = off, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = PEEK_BATCH,
		};
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf);

		if (got < 0)
			return cr_error(err, errno, "task %d: read pending signals", tid);
		if (got == 0)
			return 0;
		for (long i = 0; i < got; i++)
			if (fn(buf + i * SIGINFO_SIZE, arg) != 0)
				return 0;
		off += (size_t)got;
	}
}

struct kept_list {
	struct dump_ctx *ctx;
	const struct dump_task *t;
	bool shared;
	SiginfoEntry **v;
	size_t n, cap;
};

static int keep_one(const uint8_t *raw, void *arg)
{
	struct kept_list *k = arg;
	SiginfoEntry *s;

	if (!kept(k->ctx, k->t, raw))
		return 0;
	if (k->n == k->cap) {
		SiginfoEntry **bigger = arena_array(&k->ctx->arena, SiginfoEntry *, k->cap ? k->cap * 2 : PEEK_BATCH);

		if (k->n)
			memcpy(bigger, k->v, k->n * sizeof(*bigger));
		k->v = bigger;
		k->cap = k->cap ? k->cap * 2 : PEEK_BATCH;
	}
	s = arena_new(&k->ctx->arena, SiginfoEntry);
	siginfo_entry__init(s);
	s->shared = k->shared;
	s->siginfo.len = SIGINFO_SIZE;
	s->siginfo.data = arena_memdup(&k->ctx->arena, raw, SIGINFO_SIZE);
	k->v[k->n++] = s;
	return 0;
}

static int peek_queue(struct dump_ctx *ctx, const struct dump_task *t, pid_t tid, bool shared, SiginfoEntry ***out,
		      size_t *n, cr_error_t *err)
{
	struct kept_list k = { .ctx = ctx, .t = t, .shared = shared };

	if (each_queued(tid, shared, keep_one, &k, err) < 0)
		return -1;
	*out = k.v;
	*n = k.n;
	return 0;
}

struct first_sigchld {
	struct dump_ctx *ctx;
	int found;
};

static int is_sigchld(const uint8_t *raw, void *arg)
{
	struct first_sigchld *f = arg;
	siginfo_t si;

	memcpy(&si, raw, sizeof(si));
	if (si.si_signo != SIGCHLD)
		return 0;
	f->found = sent_by_hold(f->ctx, raw) ? 1 : -1;
	return 1;
}

/* Which SIGCHLD tid's queue (its process's, with shared) holds: none (0),
 * the one of cr's hold (1), another (-1).  A SIGCHLD is queued once at
 * most: the first stays, a second is dropped. */
int signals_hold_sigchld_queued(struct dump_ctx *ctx, pid_t tid, bool shared, int *found, cr_error_t *err)
{
	struct first_sigchld f = { .ctx = ctx };
	int r = each_queued(tid, shared, is_sigchld, &f, err);

	*found = f.found;
	return r;
}

/* The pending signals, shared and each thread's, read with ptrace. */
static int signals_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	if (peek_queue(ctx, t, t->pid, true, &t->core->shared_pending, &t->core->n_shared_pending, err) < 0)
		return -1;
	for (size_t i = 0; i < t->n_threads; i++) {
		ThreadCore *tc = t->threads[i].core;

		if (peek_queue(ctx, t, t->threads[i].tid, false, &tc->pending, &tc->n_pending, err) < 0)
			return -1;
	}
	return 0;
}

static int validate_queue(const struct restore_task *t, SiginfoEntry *const *q, size_t n, const char *whose,
			  cr_error_t *err)
{
	for (size_t i = 0; i < n; i++)
		if (q[i]->siginfo.len != SIGINFO_SIZE)
			return cr_error(err, 0, "core-%d.img: %s has a pending signal with a %zu-byte siginfo", t->pid,
					whose, q[i]->siginfo.len);
	return 0;
}

static int signals_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *c = t->core;

	(void)ctx;
	if (c->n_sigactions > NSIG_KERNEL)
		return cr_error(err, 0, "core-%d.img: %zu sigactions", t->pid, c->n_sigactions);
	for (size_t i = 0; i < c->n_sigactions; i++)
		if (c->sigactions[i]->sig == 0 || c->sigactions[i]->sig > NSIG_KERNEL ||
		    c->sigactions[i]->sig == SIGKILL || c->sigactions[i]->sig == SIGSTOP)
			return cr_error(err, 0, "core-%d.img: a sigaction for signal %u", t->pid, c->sigactions[i]->sig);
	if (validate_queue(t, c->shared_pending, c->n_shared_pending, "the process", err) < 0)
		return -1;
	for (size_t i = 0; i < c->n_threads; i++)
		if (validate_queue(t, c->threads[i]->pending, c->threads[i]->n_pending, "a thread", err) < 0)
			return -1;
	return 0;
}

static int queue_signal(pid_t pid, pid_t tid, const SiginfoEntry *s, cr_error_t *err)
{
	siginfo_t info;
	long r;

	memcpy(&info, s->siginfo.data, sizeof(info));
	if (s->shared)
		r = syscall(SYS_rt_sigqueueinfo, pid, info.si_signo, &info);
	else
		r = syscall(SYS_rt_tgsigqueueinfo, pid, tid, info.si_signo, &info);
	if (r < 0)
		return cr_error(err, errno, "queue pending signal %d", info.si_signo);
	return 0;
}

/* Each thread's private pending signals, its tid as this process sees it. */
static int queue_thread_pending(const struct restore_task *t, cr_error_t *err)
{
	pid_t self = (pid_t)syscall(SYS_getpid);

	for (size_t i = 1; i < t->core->n_threads; i++) {
		const ThreadIds *ids = t->pstree->threads[i];
		pid_t tid = (pid_t)ids->ns_tid[ids->n_ns_tid - 1];

		for (size_t j = 0; j < t->core->threads[i]->n_pending; j++)
			if (queue_signal(self, tid, t->core->threads[i]->pending[j], err) < 0)
				return cr_error_wrap(err, "thread %d", tid);
	}
	return 0;
}

/* The dispositions every process of the tree has when it sets up its
 * own: the root's, read before it forks (a parent sets its own only after
 * it forked its children, so each inherits these unchanged). */
static struct {
	bool known;
	struct ksigaction v[NSIG_KERNEL + 1];
} crs;

static int signals_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	(void)t;
	if (crs.known)
		return 0;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (sig != SIGKILL && sig != SIGSTOP && syscall(SYS_rt_sigaction, sig, NULL, &crs.v[sig], 8) < 0)
			return cr_error(err, errno, "read the action of signal %d", sig);
	crs.known = true;
	return 0;
}

/* In the child, with every signal blocked (the dumped mask is set by the
 * restorer at the very end), once its threads exist: the dispositions
 * (those it does not have already), then every pending signal, queued to
 * itself. */
static int signals_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;
	pid_t self = (pid_t)syscall(SYS_getpid);

	(void)ctx;
	for (size_t i = 0; i < core->n_sigactions; i++) {
		const SigactionEntry *s = core->sigactions[i];
		struct ksigaction ka = {
			.handler = s->handler, .flags = s->flags, .restorer = s->restorer, .mask = s->mask,
		};

		if (crs.known && memcmp(&ka, &crs.v[s->sig], sizeof(ka)) == 0)
			continue;
		if (syscall(SYS_rt_sigaction, s->sig, &ka, NULL, 8) < 0)
			return cr_error(err, errno, "set action of signal %u", s->sig);
	}
	for (size_t i = 0; i < core->n_shared_pending; i++)
		if (queue_signal(self, self, core->shared_pending[i], err) < 0)
			return -1;
	for (size_t i = 0; i < core->threads[0]->n_pending; i++)
		if (queue_signal(self, self, core->threads[0]->pending[i], err) < 0)
			return -1;
	return queue_thread_pending(t, err);
}

/* The dispositions live in the signal handler table, which CLONE_SIGHAND
 * shares. */
static int signals_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	return sharing_refuse(ctx, KCMP_SIGHAND, "signal handler table", err);
}

const struct state_kind state_signals = {
	.name = "signals",
	.collect = signals_collect,
	.ask = signals_ask,
	.answered = signals_answered,
	.check_tree = signals_check_tree,
	.validate = signals_validate,
	.before_fork = signals_before_fork,
	.setup = signals_setup,
};
