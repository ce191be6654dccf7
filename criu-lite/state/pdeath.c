/* The parent-death signal (PR_SET_PDEATHSIG).  Read by injection; put back
 * by injection after the credentials, because a change of credentials
 * clears it (restored processes run with SIGKILL until then, so that a
 * killed restorer takes them along). */
#include "os/log.h"
#include "os/util.h"
#include "state/state.h"

#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void pdeath_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_add(&t->asked, "read the parent-death signal", SYS_prctl, PR_GET_PDEATHSIG,
			 t->scratch + SCRATCH_PDEATHSIG, 0, 0, 0, 0);
}

static int pdeath_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	int32_t sig = 0;

	(void)first;
	if (remote_read(t->pid, t->scratch + SCRATCH_PDEATHSIG, &sig, sizeof(sig), err) < 0)
		return cr_error_wrap(err, "read the parent-death signal");
	t->core->has_pdeath_signal = true;
	t->core->pdeath_signal = (uint32_t)sig;
	if (sig != 0 && t == &ctx->tasks[0])
		pr_warn("pid %d has a parent-death signal (SIG%s): restore it without --detach, which would send it",
			t->pid, sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	return 0;
}

/* The root's parent is cr restore, whose exit with --detach would send
 * the root its parent-death signal at once: refused before anything is
 * made (cr restore without --detach stays its parent while it runs). */
static int pdeath_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	if (t->core->pdeath_signal > 64)
		return cr_error(err, 0, "core-%d.img: parent-death signal %u out of range", t->pid,
				t->core->pdeath_signal);
	if (t == &ctx->tasks[0] && ctx->opts->detach && t->core->pdeath_signal != 0)
		return cr_error(err, 0, "pid %d has a parent-death signal (SIG%s), which cr restore --detach would send "
				"it as it exits: restore it without --detach (cr restore then stays its parent)", t->pid,
				sigabbrev_np((int)t->core->pdeath_signal) ? sigabbrev_np((int)t->core->pdeath_signal) : "?");
	return 0;
}

static int pdeath_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx, (void)err;
	inject_batch_add(&t->batch, "set the parent-death signal", SYS_prctl, PR_SET_PDEATHSIG,
			 t->core->pdeath_signal, 0, 0, 0, 0);
	return 0;
}

const struct state_kind state_pdeath = {
	.name = "parent-death signal",
	.ask = pdeath_ask,
	.answered = pdeath_answered,
	.validate = pdeath_validate,
	.apply = pdeath_apply,
};
