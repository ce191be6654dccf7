/* NUMA memory policies: a thread's own (set_mempolicy; `numactl
 * --interleave=all`, `--membind`, `--localalloc`) and a mapping's
 * (mbind).  cr does not restore them: a restored process would allocate
 * by the default policy, silently.  Refused at dump, naming the policy.
 *
 * Asked by injection (get_mempolicy, a read): each thread its own policy,
 * with every kind's calls for that thread, and the main thread the policy
 * of each mapping at its start (MPOL_F_ADDR: the mapping's, or its shared
 * memory object's; default where it has none).  /proc/PID/numa_maps says
 * the same but walks every page of every mapping to count them: 10 ms for
 * 1 GiB, in the frozen window.  A kernel without NUMA answers ENOSYS: no
 * policies. */
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <linux/mempolicy.h>
#include <stdio.h>
#include <sys/syscall.h>

/* One int per mapping (the mode get_mempolicy writes), from
 * SCRATCH_MEMPOLICY_VMAS up to the batch calls; more mappings than that
 * are asked in further rounds. */
#define VMA_SLOTS ((SCRATCH_PROG - SCRATCH_MEMPOLICY_VMAS) / sizeof(int32_t))

/* "interleave=static", for the refusal (mode: what get_mempolicy wrote). */
static const char *mode_name(int32_t mode, char *buf, size_t size)
{
	static const char *const names[] = { "default", "preferred", "bind", "interleave", "local",
					     "preferred-many", "weighted-interleave" };
	int32_t base = mode & ~(int32_t)MPOL_MODE_FLAGS;

	snprintf(buf, size, "%s%s%s%s", base >= 0 && (size_t)base < ARRAY_SIZE(names) ? names[base] : "mode ?",
		 (mode & MPOL_F_STATIC_NODES) ? "=static" : "", (mode & MPOL_F_RELATIVE_NODES) ? "=relative" : "",
		 (mode & MPOL_F_NUMA_BALANCING) ? "=balancing" : "");
	return buf;
}

static void ask_task_policy(const struct dump_task *t, struct inject_batch *b)
{
	inject_batch_try(b, "read the NUMA memory policy", SYS_get_mempolicy, t->scratch + SCRATCH_MEMPOLICY, 0, 0, 0,
			 0, 0);
}

/* The thread's answer to ask_task_policy (ret: the call's). */
static int check_task_policy(const struct dump_task *t, pid_t tid, int64_t ret, cr_error_t *err)
{
	int32_t mode = MPOL_DEFAULT;
	char name[48];

	if (ret == -ENOSYS)
		return 0;   /* no NUMA in this kernel */
	if (ret < 0)
		return cr_error(err, (int)-ret, "pid %d thread %d: get_mempolicy", t->pid, tid);
	if (remote_read(t->pid, t->scratch + SCRATCH_MEMPOLICY, &mode, sizeof(mode), err) < 0)
		return -1;
	if (mode != MPOL_DEFAULT)
		return cr_error(err, 0, "pid %d thread %d: a NUMA memory policy (%s, set_mempolicy): unsupported "
				"(cr does not restore set_mempolicy or mbind)", t->pid, tid,
				mode_name(mode, name, sizeof(name)));
	return 0;
}

/* The mappings [from, from + VMA_SLOTS) of the process, one slot each
 * (the vsyscall page is none). */
static size_t ask_vmas(const struct dump_task *t, struct inject_batch *b, size_t from)
{
	size_t i;

	for (i = from; i < t->vmas.n && i - from < VMA_SLOTS; i++) {
		const struct proc_vma *v = &t->vmas.v[i];

		if (v->special != VMA_SPECIAL_VSYSCALL)
			inject_batch_try(b, "read a mapping's NUMA memory policy", SYS_get_mempolicy,
					 t->scratch + SCRATCH_MEMPOLICY_VMAS + (i - from) * sizeof(int32_t), 0, 0,
					 v->start, MPOL_F_ADDR, 0);
	}
	return i;
}

/* The answers to ask_vmas(from), its calls at first in b. */
static int check_vmas(const struct dump_task *t, size_t from, size_t to, const struct inject_batch *b, size_t first,
		      cr_error_t *err)
{
	int32_t modes[VMA_SLOTS];
	char name[48];

	if (remote_read(t->pid, t->scratch + SCRATCH_MEMPOLICY_VMAS, modes, (to - from) * sizeof(int32_t), err) < 0)
		return -1;
	for (size_t i = from, call = first; i < to; i++) {
		const struct proc_vma *v = &t->vmas.v[i];
		int64_t ret;

		if (v->special == VMA_SPECIAL_VSYSCALL)
			continue;
		ret = inject_batch_ret(b, call++);
		if (ret == -ENOSYS)
			return 0;   /* no NUMA (the first round already said so) */
		if (ret < 0)
			return cr_error(err, (int)-ret, "pid %d: get_mempolicy of the mapping at 0x%llx", t->pid,
					(unsigned long long)v->start);
		if (modes[i - from] != MPOL_DEFAULT)
			return cr_error(err, 0, "pid %d: a NUMA memory policy (%s, mbind) of the mapping "
					"0x%llx-0x%llx: unsupported (cr does not restore set_mempolicy or mbind)", t->pid,
					mode_name(modes[i - from], name, sizeof(name)), (unsigned long long)v->start,
					(unsigned long long)v->end);
	}
	return 0;
}

static void mempolicy_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	ask_task_policy(t, &t->asked);
	ask_vmas(t, &t->asked, 0);
}

/* The main thread's policy, then the mappings': those that did not fit
 * the first round in rounds of their own. */
static int mempolicy_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	size_t from = 0, to = t->vmas.n < VMA_SLOTS ? t->vmas.n : VMA_SLOTS;
	int64_t ret = inject_batch_ret(&t->asked, first);

	(void)ctx;
	if (check_task_policy(t, t->pid, ret, err) < 0)
		return -1;
	if (ret == -ENOSYS)
		return 0;   /* no NUMA */
	if (check_vmas(t, from, to, &t->asked, first + 1, err) < 0)
		return -1;
	for (from = to; from < t->vmas.n; from = to) {
		to = ask_vmas(t, &t->batch, from);
		if (dump_batch_run(t, t->inj, err) < 0)
			return cr_error_wrap(err, "pid %d", t->pid);
		if (check_vmas(t, from, to, &t->batch, 0, err) < 0)
			return -1;
	}
	return 0;
}

static void mempolicy_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				 struct inject_batch *b)
{
	(void)ctx;
	(void)th;
	ask_task_policy(t, b);
}

static int mempolicy_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				     const struct inject_batch *b, size_t first, cr_error_t *err)
{
	(void)ctx;
	return check_task_policy(t, th->tid, inject_batch_ret(b, first), err);
}

const struct state_kind state_mempolicy = {
	.name = "NUMA memory policies",
	.ask = mempolicy_ask,
	.answered = mempolicy_answered,
	.ask_thread = mempolicy_ask_thread,
	.answered_thread = mempolicy_answered_thread,
};
