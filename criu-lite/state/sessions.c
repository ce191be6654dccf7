/* Sessions and process groups, at every pid-namespace level (pstree.img).
 *
 * setsid and setpgid can rebuild only sessions led from inside the tree or
 * inherited from the restorer (a shell job's).  A process that led its
 * session or group leads it again (session_setup, as it is forked); the
 * others join their group once every process exists, by injection; a
 * group led outside the tree is the restorer's.  With --shell-job, a root
 * that led its terminal's session joins the restorer's instead, the
 * terminal's (t->tty_session, state/ctty.c). */
#include "state/sessions.h"
#include "state/state.h"

#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* The group's leader may be made by another branch of the tree at this
 * very moment; live processes never wait for zombies, so it appears soon. */
#define JOIN_TRIES 2000
#define JOIN_PAUSE_NS 1000000

static int sessions_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const PstreeEntry *p = t->pstree;
	const PstreeEntry *pp = t->parent ? t->parent->pstree : NULL;

	(void)ctx;
	if (pp == NULL || p->ns_sid[0] == p->ns_pid[0] || p->ns_sid[0] == pp->ns_sid[0])
		return 0;
	/* Forked before its parent's setsid: still in the session the parent
	 * had, its grandparent's (or the restorer's, below the root). */
	if (pp->ns_sid[0] == pp->ns_pid[0] &&
	    (t->parent->parent == NULL || p->ns_sid[0] == t->parent->parent->pstree->ns_sid[0]))
		return 0;
	return cr_error(err, 0, "pid %d is in session %u, which neither it nor its parent leads: unsupported "
			"(the session's leader is outside the tree)", t->pid, p->ns_sid[0]);
}

int session_setup(const struct restore_task *t, cr_error_t *err)
{
	uint32_t pid = t->pstree->ns_pid[0];

	if (t->pstree->ns_sid[0] == pid && !t->tty_session) {
		if (setsid() < 0)
			return cr_error(err, errno, "setsid");
	} else if (t->pstree->ns_pgid[0] == pid) {
		if (setpgid(0, 0) < 0)
			return cr_error(err, errno, "setpgid");
	}
	return 0;
}

void session_join_group_early(const struct restore_task *t)
{
	const PstreeEntry *p = t->pstree;
	uint32_t pgid = p->ns_pgid[p->n_ns_pgid - 1];
	struct timespec pause = { .tv_nsec = JOIN_PAUSE_NS };

	if (p->ns_pgid[0] == p->ns_pid[0] || p->ns_sid[0] == p->ns_pid[0] || pgid == 0 ||
	    (t->parent != NULL && p->ns_pgid[0] == t->parent->pstree->ns_pgid[0]))
		return;
	for (int i = 0; i < JOIN_TRIES && setpgid(0, (pid_t)pgid) < 0; i++)
		nanosleep(&pause, NULL);
}

/* The group a process that is not its group's leader joins, as the
 * process itself names it (0: none); *outside says it is the
 * restorer's group rather than one led inside the tree. */
static uint32_t group_to_join(const struct restore_ctx *ctx, const struct restore_task *t, bool *outside)
{
	const PstreeEntry *p = t->pstree;
	bool inside = false;

	*outside = false;
	if (p->ns_pgid[0] == p->ns_pid[0] || p->ns_sid[0] == p->ns_pid[0])
		return 0;
	for (size_t i = 0; i < ctx->n_tasks && !inside; i++)
		inside = ctx->tasks[i].pstree->ns_pid[0] == p->ns_pgid[0];
	if (inside)
		return p->ns_pgid[p->n_ns_pgid - 1];   /* 0: the leader is outside its namespace, inherited */
	if (p->n_ns_pid != 1 || ctx->opts->new_pidns)
		return 0;
	*outside = true;
	return (uint32_t)ctx->restorer_pgid;
}

/* The same group as the restorer sees it, or 0 where pid namespaces hide
 * it (in a fresh namespace the dump's outer levels are not the
 * restorer's). */
static pid_t group_seen_here(const struct restore_ctx *ctx, const struct restore_task *t, bool outside)
{
	if (outside)
		return ctx->restorer_pgid;
	if (ctx->opts->new_pidns || t->level_base != 0)
		return 0;
	return (pid_t)t->pstree->ns_pgid[0];
}

/* A process that is not its group's leader joins the group now that every
 * process exists.  One that is in it already (inherited from its parent)
 * is left alone: setpgid would change nothing. */
static int sessions_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	bool outside;
	uint32_t want = group_to_join(ctx, t, &outside);
	pid_t here;

	(void)err;
	if (want == 0)
		return 0;
	here = group_seen_here(ctx, t, outside);
	if (here > 0 && getpgid(t->host_pid) == here)
		return 0;
	inject_batch_add(&t->batch, "join process group", SYS_setpgid, 0, want, 0, 0, 0, 0);
	return 0;
}

const struct state_kind state_sessions = {
	.name = "session and process group",
	.zombies = true,
	.validate = sessions_validate,
	.apply = sessions_apply,
};
