/* What a process sets on itself with prctl for the whole process: dumpable,
 * child subreaper, THP disable and memory-deny-write-execute.  Read by
 * injection (only the process itself is told), kept in sched.proto's
 * per-process message, and put back by injection after the credentials:
 * a change of credentials resets dumpable to fs.suid_dumpable.  None of
 * them needs a privilege.  MDWE goes last of everything cr does in the
 * process: once set, no mapping may become executable. */
#include "state/sched.h"
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif
#ifndef PR_MDWE_NO_INHERIT
#define PR_MDWE_NO_INHERIT (1UL << 1)
#endif
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1UL << 1)
#endif

/* Kernels before 6.3 have no MDWE: PR_GET_MDWE fails there, and no
 * process can have it. */
static bool kernel_has_mdwe(void)
{
	return prctl(PR_GET_MDWE, 0, 0, 0, 0) >= 0;
}

static int check_values(const SchedProcessEntry *p, cr_error_t *err)
{
	if (p->dumpable > 1)
		return cr_error(err, 0, "dumpable is %u (a set-uid program run with fs.suid_dumpable=%u): "
				"PR_SET_DUMPABLE can set only 0 or 1", p->dumpable, p->dumpable);
	if (p->thp_disable != 0 && (!(p->thp_disable & 1) || (p->thp_disable & ~(1 | PR_THP_DISABLE_EXCEPT_ADVISED))))
		return cr_error(err, 0, "THP disable 0x%x has flags cr does not know", p->thp_disable);
	if ((p->mdwe & ~(PR_MDWE_REFUSE_EXEC_GAIN | PR_MDWE_NO_INHERIT)) ||
	    (p->mdwe && !(p->mdwe & PR_MDWE_REFUSE_EXEC_GAIN)))
		return cr_error(err, 0, "memory-deny-write-execute 0x%x has flags cr does not know", p->mdwe);
	return 0;
}

static void prctl_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_add(&t->asked, "read dumpable", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	inject_batch_add(&t->asked, "read THP disable", SYS_prctl, PR_GET_THP_DISABLE, 0, 0, 0, 0, 0);
	inject_batch_add(&t->asked, "read child subreaper", SYS_prctl, PR_GET_CHILD_SUBREAPER,
			 t->scratch + SCRATCH_SUBREAPER, 0, 0, 0, 0);
	if (kernel_has_mdwe())
		inject_batch_add(&t->asked, "read memory-deny-write-execute", SYS_prctl, PR_GET_MDWE, 0, 0, 0, 0, 0);
}

static int prctl_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	SchedProcessEntry *p = sched_process(ctx, t);
	int32_t subreaper = 0;

	if (remote_read(t->pid, t->scratch + SCRATCH_SUBREAPER, &subreaper, sizeof(subreaper), err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	p->dumpable = (uint32_t)inject_batch_ret(&t->asked, first);
	p->thp_disable = (uint32_t)inject_batch_ret(&t->asked, first + 1);
	p->child_subreaper = subreaper != 0;
	p->mdwe = kernel_has_mdwe() ? (uint32_t)inject_batch_ret(&t->asked, first + 3) : 0;
	if (check_values(p, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	return 0;
}

static int prctl_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (t->core->sched == NULL)
		return cr_error(err, 0, "core-%d.img: no process attributes", t->pid);
	if (check_values(t->core->sched, err) < 0)
		return cr_error_wrap(err, "core-%d.img", t->pid);
	return 0;
}

static int prctl_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;

	(void)ctx, (void)err;
	inject_batch_add(&t->batch, "set dumpable", SYS_prctl, PR_SET_DUMPABLE, p->dumpable, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "set child subreaper", SYS_prctl, PR_SET_CHILD_SUBREAPER, p->child_subreaper, 0,
			 0, 0, 0);
	inject_batch_add(&t->batch, "set THP disable", SYS_prctl, PR_SET_THP_DISABLE, p->thp_disable & 1,
			 p->thp_disable & ~1U, 0, 0, 0);
	if (p->mdwe)
		inject_batch_add(&t->batch, "set memory-deny-write-execute", SYS_prctl, PR_SET_MDWE, p->mdwe, 0, 0,
				 0, 0);
	return 0;
}

const struct state_kind state_prctl = {
	.name = "prctl attributes",
	.ask = prctl_ask,
	.answered = prctl_answered,
	.validate = prctl_validate,
	.apply = prctl_apply,
};
