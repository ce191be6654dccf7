/* The nice of a process's autogroup (/proc/PID/autogroup, with
 * kernel.sched_autogroup_enabled): the CPU share of its whole session
 * against other sessions.  setsid makes a new autogroup, nice 0, and every
 * process forked after it shares it.
 *
 * Dump: read from /proc.  A session leader's is set again after the
 * restore's setsid; the processes of its session are forked after that
 * setsid and share it.  A process whose session is led outside the tree
 * is restored in cr restore's session and autogroup: refused when its
 * nice differs from cr's (setting it would change cr's caller's session).
 *
 * The root autogroup (a process whose session never called setsid since
 * boot, as a runner started by init may be; its file is empty) has no
 * nice of its own: it counts as nice 0, the nice a new session's
 * autogroup starts with, and no process can be moved back into it.
 *
 * Restore: the leader writes it itself, before the credentials are dropped
 * (lowering it needs CAP_SYS_NICE). */
#include "state/autogroup.h"
#include "dump/steps.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "state/sched.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#define AUTOGROUP_NICE_MIN (-20)
#define AUTOGROUP_NICE_MAX 19

int autogroup_parse(const char *text, int32_t *nice)
{
	unsigned long id;

	*nice = 0;
	if (text[0] == '\0')   /* the root autogroup */
		return 0;
	if (sscanf(text, "/autogroup-%lu nice %d", &id, nice) != 2 || *nice < AUTOGROUP_NICE_MIN ||
	    *nice > AUTOGROUP_NICE_MAX)
		return -1;
	return 0;
}

/* The nice of pid's autogroup (0: cr's own); *has false when the kernel has
 * no autogroups (no file). */
static int read_nice(pid_t pid, bool *has, int32_t *nice, cr_error_t *err)
{
	cleanup_free char *text = NULL;
	int r = proc_read_file(pid, "autogroup", &text, err);

	*has = r == 0;
	*nice = 0;
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (autogroup_parse(text, nice) < 0)
		return cr_error(err, 0, "pid %d: autogroup: unexpected '%.40s'", (int)pid, text);
	return 0;
}

static bool leads_session(const struct proc_status *st)
{
	return st->n_levels > 0 && st->ns_sid[0] == st->ns_pid[0];
}

/* A process whose session's leader is not in the dump lands in cr's
 * autogroup. */
static int check_outside_led(struct dump_ctx *ctx, struct dump_task *t, int32_t nice, cr_error_t *err)
{
	int32_t own = 0;
	bool has;

	if (leads_session(&t->status) || dump_find_task(ctx, t->status.ns_sid[0]) != NULL)
		return 0;
	if (read_nice(0, &has, &own, err) < 0)
		return cr_error_wrap(err, "cr's own autogroup");
	if (nice != own)
		return cr_error(err, 0, "pid %d: its autogroup has nice %d, and its session's leader (%d) is outside "
				"the dump: unsupported (it would be restored in cr's session and autogroup, nice %d)",
				t->pid, nice, t->status.ns_sid[0], own);
	return 0;
}

static int autogroup_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	SchedProcessEntry *p = sched_process(ctx, t);
	int32_t nice = 0;
	bool has;

	if (read_nice(t->pid, &has, &nice, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	if (!has)
		return 0;
	p->has_autogroup_nice = true;
	p->autogroup_nice = nice;
	return check_outside_led(ctx, t, nice, err);
}

static bool leader_restored(const struct restore_ctx *ctx, const struct restore_task *t)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pstree->ns_pid[0] == t->pstree->ns_sid[0])
			return true;
	return false;
}

static int autogroup_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;
	int32_t own = 0;
	bool has;

	if (p == NULL || !p->has_autogroup_nice)
		return 0;
	if (p->autogroup_nice < AUTOGROUP_NICE_MIN || p->autogroup_nice > AUTOGROUP_NICE_MAX)
		return cr_error(err, 0, "core-%d.img: autogroup nice %d out of range", t->pid, p->autogroup_nice);
	if (read_nice(0, &has, &own, err) < 0)
		return -1;
	if (!has && p->autogroup_nice != 0)
		return cr_error(err, 0, "pid %d had its autogroup at nice %d; this kernel has no autogroups", t->pid,
				p->autogroup_nice);
	/* Its session's leader is not restored: it lands in cr restore's
	 * session and autogroup, whose nice may not be the dumping cr's. */
	if (has && !leader_restored(ctx, t) && !ctx->opts->shell_job && own != p->autogroup_nice)
		return cr_error(err, 0, "pid %d had its autogroup at nice %d, and its session's leader is not in the "
				"images: it would land in cr restore's autogroup, at nice %d", t->pid, p->autogroup_nice,
				own);
	return 0;
}

/* Only a leader that made its session again (with --shell-job the root
 * joins cr's) sets its autogroup's nice. */
static int autogroup_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const SchedProcessEntry *p = t->core->sched;
	int32_t now = 0;
	char text[16];
	bool has;

	(void)ctx;
	if (p == NULL || !p->has_autogroup_nice || t->pstree->ns_sid[0] != t->pstree->ns_pid[0])
		return 0;
	if (read_nice(0, &has, &now, err) < 0)
		return -1;
	if (!has || now == p->autogroup_nice)
		return 0;   /* none here: validate allowed it only at nice 0 */
	if (t->tty_session) {
		pr_warn("pid %d: its autogroup had nice %d; it joins cr's session, whose autogroup has %d", t->pid,
			p->autogroup_nice, now);
		return 0;
	}
	snprintf(text, sizeof(text), "%d", p->autogroup_nice);
	if (write_proc_text("/proc/self/autogroup", text, err) < 0)
		return cr_error_wrap(err, "set the autogroup's nice (from %d)", now);
	return 0;
}

const struct state_kind state_autogroup = {
	.name = "autogroup nice",
	.collect = autogroup_collect,
	.validate = autogroup_validate,
	.setup = autogroup_setup,
};
