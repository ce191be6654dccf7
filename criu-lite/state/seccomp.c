/* Seccomp: every thread's mode and, in filter mode, its stack of filters.
 *
 * The kernel keeps a process's filters as a tree: a new filter points at
 * the one below it, and threads share the filters they inherited from the
 * thread that created them or that SECCOMP_FILTER_FLAG_TSYNC gave them
 * (which matters later: a TSYNC succeeds only if every other thread's
 * filter is one of the caller's).  No interface tells a filter's identity
 * (kcmp has no seccomp type), so filters are told apart by content, as
 * CRIU does: threads whose stacks hold the same programs with the same
 * flags from the bottom up share those filters.  The image holds the tree
 * once per process (core_entry.seccomp) and each thread's mode and newest
 * filter (thread_core.seccomp).
 *
 * Dump, from outside (every thread is in a ptrace stop): the mode from
 * /proc/PID/task/TID/status, each filter with PTRACE_SECCOMP_GET_FILTER
 * and its flags with PTRACE_SECCOMP_GET_METADATA.  Index 0 is the OLDEST
 * filter (get_nth_filter in kernel/seccomp.c counts from the bottom of the
 * stack, and CRIU reads it so), whatever man 2 ptrace says.
 * cr's injected calls are never filtered: it traces with
 * PTRACE_O_SUSPEND_SECCOMP (os/ptrace.h).
 *
 * Restore, by injection, right before the credentials (state.c says why):
 * the filters every thread shares are installed once, oldest first, by
 * the main thread with SECCOMP_FILTER_FLAG_TSYNC, which gives each of them
 * to every thread; then each thread installs its own filters above them,
 * each with its flags, or enters strict mode.  The programs are written
 * into the trampoline, in an area tramp_plan sizes with
 * seccomp_tramp_bytes.  The calls cr injects afterwards (credentials, the
 * parent-death signal, closing cr's fds, unmapping the trampoline) are not
 * filtered either: the restorer traces with PTRACE_O_SUSPEND_SECCOMP.
 *
 * Strict mode comes back too: the process enters it by an injected
 * seccomp(SECCOMP_SET_MODE_STRICT), and cr's calls after it run with its
 * seccomp suspended.
 *
 * Refused at dump, by name, leaving the process running:
 * - a filter the kernel does not give back (PTRACE_SECCOMP_GET_FILTER
 *   fails: EMEDIUMTYPE for a program that is not classic BPF, EACCES,
 *   EINVAL);
 * - a filter that may return SECCOMP_RET_USER_NOTIF (or returns an action
 *   computed at run time): the listener that answers it is a file held by
 *   some supervisor, which cannot come back with the filter;
 * - a filter shared by some threads but not all: once the threads exist,
 *   TSYNC reaches every thread, and only a thread created after a filter
 *   shares it with its creator.  Copies would behave the same for every
 *   syscall, but a later TSYNC in the process would fail where it
 *   succeeded before;
 * - any seccomp at all when cr may not suspend it (no CAP_SYS_ADMIN). */
#include "state/seccomp.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#define INSN_SIZE         sizeof(struct sock_filter)
/* The kernel's limit on a stack: every filter's length, plus 4 for each
 * filter below the newest (kernel/seccomp.c, MAX_INSNS_PER_PATH). */
#define MAX_INSNS_PER_PATH ((1 << 18) / INSN_SIZE)
#define FILTER_FLAGS_KNOWN SECCOMP_FILTER_FLAG_LOG   /* what the dump can learn */

/* struct sock_fprog as the x86_64 kernel reads it. */
struct kfprog {
	uint16_t len;
	uint16_t pad[3];
	uint64_t filter;
};

static const char *mode_name(uint32_t mode)
{
	switch (mode) {
	case SECCOMP_MODE_DISABLED: return "disabled";
	case SECCOMP_MODE_STRICT: return "strict";
	case SECCOMP_MODE_FILTER: return "filter";
	default: return "unknown";
	}
}

/* Whether the program can make the kernel ask a listener
 * (SECCOMP_RET_USER_NOTIF): a return of that constant, or of the
 * accumulator, whose value only the run knows. */
static bool may_notify(const struct sock_filter *prog, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (prog[i].code == (BPF_RET | BPF_A))
			return true;
		if (prog[i].code == (BPF_RET | BPF_K) &&
		    (prog[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------------ dump */

/* The filters of one process so far, every filter after the one below it
 * (their messages are in the arena). */
struct filter_table {
	SeccompFilterEntry **v;
	size_t n, cap;
};

/* 1 + the index of the filter with this program and flags above prev
 * (1 + index, 0 for none), added if there is none yet. */
static uint32_t find_or_add(struct dump_ctx *ctx, struct filter_table *tab, uint32_t prev, uint32_t flags,
			    const struct sock_filter *prog, size_t n)
{
	SeccompFilterEntry *f;

	for (size_t i = 0; i < tab->n; i++) {
		f = tab->v[i];
		if (f->prev == prev && f->flags == flags && f->prog.len == n * INSN_SIZE &&
		    memcmp(f->prog.data, prog, n * INSN_SIZE) == 0)
			return (uint32_t)i + 1;
	}
	if (tab->n == tab->cap) {
		tab->cap = tab->cap ? tab->cap * 2 : 8;
		tab->v = xreallocarray(tab->v, tab->cap, sizeof(*tab->v));
	}
	f = arena_new(&ctx->arena, SeccompFilterEntry);
	seccomp_filter_entry__init(f);
	f->prog.data = arena_memdup(&ctx->arena, prog, n * INSN_SIZE);
	f->prog.len = n * INSN_SIZE;
	f->flags = flags;
	f->prev = prev;
	tab->v[tab->n++] = f;
	return (uint32_t)tab->n;
}

static const char *get_filter_hint(int e)
{
	switch (e) {
	case EMEDIUMTYPE: return " (it is not a classic BPF program)";
	case EACCES: return " (cr needs CAP_SYS_ADMIN and no seccomp of its own)";
	case EINVAL: case EIO: return " (this kernel does not give filters back: CONFIG_CHECKPOINT_RESTORE)";
	default: return "";
	}
}

/* Reads the thread's filters, oldest first, into the table; *top is its
 * newest (1 + index). */
static int dump_stack(struct dump_ctx *ctx, struct filter_table *tab, pid_t tid, uint32_t *top, cr_error_t *err)
{
	cleanup_free struct sock_filter *buf = xmalloc(BPF_MAXINSNS * INSN_SIZE);

	*top = 0;
	for (unsigned long i = 0;; i++) {
		struct __ptrace_seccomp_metadata md = { .filter_off = i };
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)i, buf);

		if (len < 0 && errno == ENOENT && i > 0)
			return 0;   /* past the newest */
		if (len < 0)
			return cr_error(err, errno, "seccomp filter %lu cannot be read back%s, so cr cannot restore "
					"it; PTRACE_SECCOMP_GET_FILTER", i, get_filter_hint(errno));
		if (len == 0 || len > BPF_MAXINSNS)
			return cr_error(err, 0, "seccomp filter %lu has %ld instructions", i, len);
		if (may_notify(buf, (size_t)len))
			return cr_error(err, 0, "seccomp filter %lu may return SECCOMP_RET_USER_NOTIF: the listener "
					"that answers it cannot be restored with it", i);
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) < 0)
			return cr_error(err, errno, "seccomp filter %lu: read its flags (PTRACE_SECCOMP_GET_METADATA)",
					i);
		if (md.flags & ~(uint64_t)FILTER_FLAGS_KNOWN)
			return cr_error(err, 0, "seccomp filter %lu has flags 0x%llx that cr does not know", i,
					(unsigned long long)md.flags);
		*top = find_or_add(ctx, tab, *top, (uint32_t)md.flags, buf, (size_t)len);
	}
}

/* Every filter must be shared by one thread or by all (see the top). */
static int check_sharing(const struct dump_task *t, const struct filter_table *tab, cr_error_t *err)
{
	for (size_t f = 1; f <= tab->n; f++) {
		pid_t with[2] = { 0, 0 }, without = 0;
		size_t users = 0;

		for (size_t i = 0; i < t->n_threads; i++) {
			bool has = false;

			for (uint32_t g = t->threads[i].core->seccomp->filter; g != 0 && !has; g = tab->v[g - 1]->prev)
				has = g == f;
			if (has && users++ < 2)
				with[users - 1] = t->threads[i].tid;
			else if (!has && without == 0)
				without = t->threads[i].tid;
		}
		if (users > 1 && users < t->n_threads)
			return cr_error(err, 0, "threads %d and %d share a seccomp filter that thread %d does not "
					"have; cr restores a filter shared by every thread (TSYNC) or one thread's own, "
					"not one shared by some", with[0], with[1], without);
	}
	return 0;
}

static int seccomp_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct filter_table tab = { 0 };
	int ret = 0;

	for (size_t i = 0; i < t->n_threads && ret == 0; i++) {
		struct dump_thread *th = &t->threads[i];
		ThreadSeccompEntry *ts = arena_new(&ctx->arena, ThreadSeccompEntry);
		int mode = th->status.seccomp;

		thread_seccomp_entry__init(ts);
		th->core->seccomp = ts;
		if (mode < SECCOMP_MODE_DISABLED || mode > SECCOMP_MODE_FILTER)
			ret = cr_error(err, 0, "thread %d is in seccomp mode %d, which cr does not know", th->tid, mode);
		else if (mode != SECCOMP_MODE_DISABLED && ptrace_suspend_seccomp() == 0)
			ret = cr_error(err, 0, "thread %d is in seccomp %s mode: cr needs CAP_SYS_ADMIN (in the "
				       "initial user namespace) to suspend and read it", th->tid, mode_name((uint32_t)mode));
		else if (mode == SECCOMP_MODE_FILTER && dump_stack(ctx, &tab, th->tid, &ts->filter, err) < 0)
			ret = cr_error_wrap(err, "thread %d", th->tid);
		ts->mode = (uint32_t)mode;
	}
	if (ret == 0 && tab.n > 0)
		ret = check_sharing(t, &tab, err);
	if (ret < 0)
		ret = cr_error_wrap(err, "pid %d", t->pid);
	if (ret == 0 && tab.n > 0) {
		t->core->seccomp = arena_new(&ctx->arena, SeccompEntry);
		seccomp_entry__init(t->core->seccomp);
		t->core->seccomp->filters = arena_memdup(&ctx->arena, tab.v, tab.n * sizeof(*tab.v));
		t->core->seccomp->n_filters = tab.n;
	}
	free(tab.v);
	return ret;
}

/* --------------------------------------------------------------- restore */

static size_t n_filters(const CoreEntry *core)
{
	return core->seccomp != NULL ? core->seccomp->n_filters : 0;
}

static const SeccompFilterEntry *filter_at(const CoreEntry *core, uint32_t f)
{
	return core->seccomp->filters[f - 1];
}

/* Every filter of the table, and every thread's mode and stack, make
 * sense (the stacks are finite: a filter's prev is below it). */
static int check_table(const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	for (size_t i = 0; i < n_filters(core); i++) {
		const SeccompFilterEntry *f = core->seccomp->filters[i];
		size_t n = f->prog.len / INSN_SIZE;

		if (f->prog.len % INSN_SIZE != 0 || n == 0 || n > BPF_MAXINSNS)
			return cr_error(err, 0, "seccomp filter %zu is %zu bytes, not 1 to %d instructions", i,
					f->prog.len, BPF_MAXINSNS);
		if (f->flags & ~(uint32_t)FILTER_FLAGS_KNOWN)
			return cr_error(err, 0, "seccomp filter %zu has unknown flags 0x%x", i, f->flags);
		if (f->prev > i)
			return cr_error(err, 0, "seccomp filter %zu sits on filter %u, which is not below it", i,
					f->prev - 1);
		if (may_notify((const struct sock_filter *)f->prog.data, n))
			return cr_error(err, 0, "seccomp filter %zu may return SECCOMP_RET_USER_NOTIF", i);
	}
	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadSeccompEntry *ts = core->threads[i]->seccomp;

		if (ts == NULL || ts->mode > SECCOMP_MODE_FILTER)
			return cr_error(err, 0, "thread %zu: no seccomp mode, or an unknown one", i);
		if (ts->mode == SECCOMP_MODE_FILTER ? ts->filter == 0 || ts->filter > n_filters(core) : ts->filter != 0)
			return cr_error(err, 0, "thread %zu: seccomp mode %s with filter %u of %zu", i,
					mode_name(ts->mode), ts->filter, n_filters(core));
	}
	return 0;
}

/* users[f]: how many threads have filter f (an index) in their stack.
 * Every filter has one user, or every thread of several uses it; no
 * stack is longer than the kernel allows. */
static int count_users(const struct restore_task *t, uint32_t *users, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	memset(users, 0, n_filters(core) * sizeof(*users));
	for (size_t i = 0; i < core->n_threads; i++) {
		size_t insns = 0;

		for (uint32_t f = core->threads[i]->seccomp->filter; f != 0; f = filter_at(core, f)->prev) {
			insns += filter_at(core, f)->prog.len / INSN_SIZE + (insns ? 4 : 0);
			users[f - 1]++;
		}
		if (insns > MAX_INSNS_PER_PATH)
			return cr_error(err, 0, "thread %zu: its seccomp filters hold %zu instructions, more than the "
					"kernel's %zu", i, insns, (size_t)MAX_INSNS_PER_PATH);
	}
	for (size_t f = 0; f < n_filters(core); f++) {
		if (users[f] == 0)
			return cr_error(err, 0, "seccomp filter %zu belongs to no thread", f);
		if (users[f] > 1 && users[f] < core->n_threads)
			return cr_error(err, 0, "seccomp filter %zu is shared by %u threads of %zu", f, users[f],
					core->n_threads);
	}
	return 0;
}

static bool any_seccomp(const CoreEntry *core)
{
	for (size_t i = 0; i < core->n_threads; i++)
		if (core->threads[i]->seccomp->mode != SECCOMP_MODE_DISABLED)
			return true;
	return false;
}

static int seccomp_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	cleanup_free uint32_t *users = xcalloc(n_filters(t->core) + 1, sizeof(*users));

	(void)ctx;
	if (check_table(t, err) < 0 || count_users(t, users, err) < 0)
		return cr_error_wrap(err, "core-%d.img", t->pid);
	if (any_seccomp(t->core) && ptrace_suspend_seccomp() == 0)
		return cr_error(err, 0, "pid %d runs under seccomp: restoring it needs CAP_SYS_ADMIN (in the initial "
				"user namespace), to suspend it while cr works in the process", t->pid);
	return 0;
}

/* Installed by the main thread with TSYNC: a filter every thread has. */
static bool is_common(const CoreEntry *core, uint32_t users)
{
	return core->n_threads > 1 && users == core->n_threads;
}

static uint64_t filter_bytes(const SeccompFilterEntry *f)
{
	return sizeof(struct kfprog) + f->prog.len;
}

/* The trampoline area holds the common filters, then one thread's own. */
static uint64_t common_bytes(const CoreEntry *core, const uint32_t *users)
{
	uint64_t n = 0;

	for (size_t f = 0; f < n_filters(core); f++)
		if (is_common(core, users[f]))
			n += filter_bytes(core->seccomp->filters[f]);
	return n;
}

uint64_t seccomp_tramp_bytes(const struct restore_task *t)
{
	const CoreEntry *core = t->core;
	cleanup_free uint32_t *users = xcalloc(n_filters(core) + 1, sizeof(*users));
	cr_error_t err = NULL;
	uint64_t own_max = 0;

	if (n_filters(core) == 0)
		return 0;
	if (count_users(t, users, &err) < 0) {   /* validated: cannot happen */
		cr_error_release(&err);
		return 0;
	}
	for (size_t i = 0; i < core->n_threads; i++) {
		uint64_t own = 0;

		for (uint32_t f = core->threads[i]->seccomp->filter; f != 0; f = filter_at(core, f)->prev)
			if (!is_common(core, users[f - 1]))
				own += filter_bytes(filter_at(core, f));
		if (own > own_max)
			own_max = own;
	}
	return common_bytes(core, users) + own_max;
}

/* Writes the filters (indexes + 1, oldest first) at offset `at` of the
 * trampoline's filter area, each after its struct sock_fprog, and queues
 * their installation with the extra flags. */
static int queue_filters(struct restore_task *t, const uint32_t *stack, size_t n, uint64_t at, uint32_t flags,
			 const char *what, cr_error_t *err)
{
	const CoreEntry *core = t->core;
	uint64_t base = t->tramp + t->tramp_filters + at, len = 0;
	cleanup_free uint8_t *buf = NULL;

	for (size_t i = 0; i < n; i++)
		len += filter_bytes(filter_at(core, stack[i]));
	buf = xmalloc(len + 1);
	len = 0;
	for (size_t i = 0; i < n; i++) {
		const SeccompFilterEntry *f = filter_at(core, stack[i]);
		struct kfprog fprog = { .len = (uint16_t)(f->prog.len / INSN_SIZE),
					.filter = base + len + sizeof(fprog) };

		memcpy(buf + len, &fprog, sizeof(fprog));
		memcpy(buf + len + sizeof(fprog), f->prog.data, f->prog.len);
		inject_batch_add(&t->batch, what, SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->flags | flags, base + len, 0,
				 0, 0);
		len += filter_bytes(f);
	}
	return n > 0 ? remote_write(t->host_pid, base, buf, len, err) : 0;
}

/* The thread's filters that are common (is_common) or its own, oldest first. */
static size_t stack_part(const CoreEntry *core, const ThreadSeccompEntry *ts, const uint32_t *users, bool common,
			 uint32_t *out)
{
	size_t n = 0;

	for (uint32_t f = ts->filter; f != 0; f = filter_at(core, f)->prev)
		if (is_common(core, users[f - 1]) == common)
			out[n++] = f;
	for (size_t i = 0; i < n / 2; i++) {
		uint32_t tmp = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = tmp;
	}
	return n;
}

/* The filters every thread shares, by the main thread for all: TSYNC
 * (with TSYNC_ESRCH, so that a thread it cannot reach is an error, not a
 * tid that looks like success).  No thread has a filter yet, so every
 * thread can take them. */
static int seccomp_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;
	cleanup_free uint32_t *users = xcalloc(n_filters(core) + 1, sizeof(*users));
	cleanup_free uint32_t *stack = xcalloc(n_filters(core) + 1, sizeof(*stack));
	size_t n;

	(void)ctx;
	if (n_filters(core) == 0)
		return 0;
	if (count_users(t, users, err) < 0)
		return -1;
	n = stack_part(core, core->threads[0]->seccomp, users, true, stack);
	return queue_filters(t, stack, n, 0, SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
			     "install a seccomp filter on every thread (TSYNC)", err);
}

/* The thread's own filters, above the common ones; or strict mode. */
static int seccomp_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
				cr_error_t *err)
{
	const CoreEntry *core = t->core;
	const ThreadSeccompEntry *ts = th->core->seccomp;
	cleanup_free uint32_t *users = NULL, *stack = NULL;
	size_t n;

	(void)ctx;
	if (ts->mode == SECCOMP_MODE_STRICT) {
		inject_batch_add(&t->batch, "enter seccomp strict mode", SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0,
				 0, 0, 0);
		return 0;
	}
	if (ts->mode != SECCOMP_MODE_FILTER)
		return 0;
	users = xcalloc(n_filters(core) + 1, sizeof(*users));
	stack = xcalloc(n_filters(core) + 1, sizeof(*stack));
	if (count_users(t, users, err) < 0)
		return -1;
	n = stack_part(core, ts, users, false, stack);
	return queue_filters(t, stack, n, common_bytes(core, users), 0, "install a seccomp filter", err);
}

const struct state_kind state_seccomp = {
	.name = "seccomp",
	.collect = seccomp_collect,
	.validate = seccomp_validate,
	.apply = seccomp_apply,
	.apply_thread = seccomp_apply_thread,
};
