/* What a process asked of every mapping it makes from now on, which no
 * mapping it has shows: mlockall(MCL_FUTURE), with or without MCL_ONFAULT,
 * and KSM's merge-any (PR_SET_MEMORY_MERGE).
 *
 * Dump: the kernel shows the first nowhere but in the mappings made after
 * it, such as cr's own scratch area: madvise(MADV_COLD) refuses a locked
 * mapping (EINVAL) and only moves pages between lists on any other, and
 * in that case smaps tells whether the lock waits for each fault.  The
 * second is read with PR_GET_MEMORY_MERGE (a kernel without KSM has none).
 *
 * Restore: set again by injection once the memory is in place, before the
 * credentials (mlockall needs CAP_IPC_LOCK or a memlock limit, which the
 * process may have lowered since).  Merge-any also marks every mapping
 * there is; those that were not mergeable at dump (MADV_UNMERGEABLE since)
 * are made so again. */
#include "os/proc.h"
#include "os/util.h"
#include "state/sched.h"
#include "state/state.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

static bool kernel_has_merge_any(void)
{
	return prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) >= 0;
}

/* MCL_FUTURE [| MCL_ONFAULT] as the flags of the mapping at addr show it. */
static int lock_mode_of(pid_t pid, uint64_t addr, uint32_t *mode, cr_error_t *err)
{
	struct proc_vma_list l = { 0 };
	int ret = -1;

	if (proc_read_smaps(pid, &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		if (addr < l.v[i].start || addr >= l.v[i].end)
			continue;
		*mode = MCL_FUTURE | ((l.v[i].vmflags & PROC_VMF(LF)) ? MCL_ONFAULT : 0);
		ret = 0;
	}
	if (ret < 0)
		cr_error(err, 0, "cr's scratch area at 0x%llx is not in smaps", (unsigned long long)addr);
	proc_vma_list_free(&l);
	return ret;
}

static void mmdefaults_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_try(&t->asked, "madvise(MADV_COLD) on cr's scratch area", SYS_madvise, t->scratch, PAGE_SIZE_CR,
			 MADV_COLD, 0, 0, 0);
	if (kernel_has_merge_any())
		inject_batch_add(&t->asked, "read KSM merge-any", SYS_prctl, PR_GET_MEMORY_MERGE, 0, 0, 0, 0, 0);
}

static int read_lock_future(struct dump_task *t, long cold, uint32_t *mode, cr_error_t *err)
{
	*mode = 0;
	if (cold == 0)
		return 0;
	if (cold != -EINVAL)
		return cr_error(err, (int)-cold, "madvise(MADV_COLD) on cr's scratch area");
	return lock_mode_of(t->pid, t->scratch, mode, err);
}

static int mmdefaults_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	SchedProcessEntry *p = sched_process(ctx, t);

	if (read_lock_future(t, (long)inject_batch_ret(&t->asked, first), &p->mlock_future, err) < 0)
		return cr_error_wrap(err, "pid %d: mlockall(MCL_FUTURE)", t->pid);
	p->memory_merge = kernel_has_merge_any() && inject_batch_ret(&t->asked, first + 1) != 0;
	return 0;
}

static int mmdefaults_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;

	(void)ctx;
	if (p == NULL)
		return cr_error(err, 0, "core-%d.img: no process attributes", t->pid);
	if (p->mlock_future != 0 && p->mlock_future != MCL_FUTURE && p->mlock_future != (MCL_FUTURE | MCL_ONFAULT))
		return cr_error(err, 0, "core-%d.img: mlockall flags 0x%x", t->pid, p->mlock_future);
	if (p->memory_merge && !kernel_has_merge_any())
		return cr_error(err, 0, "pid %d merged all its memory with KSM (PR_SET_MEMORY_MERGE); this kernel "
				"has no KSM merge-any", t->pid);
	return 0;
}

static bool ksm_candidate(const VmaEntry *e)
{
	return e->kind != VMA_KIND__VMA_VDSO && e->kind != VMA_KIND__VMA_VVAR &&
	       !(e->flags & VMA_FLAG__VMA_FLAG_MERGEABLE);
}

static int mmdefaults_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;

	(void)ctx, (void)err;
	if (p->memory_merge) {
		inject_batch_add(&t->batch, "set KSM merge-any", SYS_prctl, PR_SET_MEMORY_MERGE, 1, 0, 0, 0, 0);
		for (size_t i = 0; i < t->mm->n_vmas; i++)
			if (ksm_candidate(t->mm->vmas[i]))
				inject_batch_add(&t->batch, "madvise MADV_UNMERGEABLE", SYS_madvise,
						 t->mm->vmas[i]->start, t->mm->vmas[i]->end - t->mm->vmas[i]->start,
						 MADV_UNMERGEABLE, 0, 0, 0);
	}
	if (p->mlock_future)
		inject_batch_add(&t->batch, "mlockall", SYS_mlockall, p->mlock_future, 0, 0, 0, 0, 0);
	return 0;
}

const struct state_kind state_mmdefaults = {
	.name = "defaults of new mappings",
	.ask = mmdefaults_ask,
	.answered = mmdefaults_answered,
	.validate = mmdefaults_validate,
	.apply = mmdefaults_apply,
};
