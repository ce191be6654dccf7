/* The shape of the pid namespaces (pstree.img records each process's
 * namespace and its namespace for children; restore/tree.c and create.c
 * rebuild them).  A restored process that unshared its pid namespace for
 * children unshares before it forks any: a child it made before (forked
 * into its own namespace, or cloned as the init of a new one) cannot come
 * back with its pids, and the dump refuses it while the tree still runs. */
#include "dump/steps.h"
#include "state/state.h"

/* The pid levels the restore gives a child t of p. */
static int levels_given(const struct dump_task *p, const struct dump_task *t)
{
	return p->status.n_levels + (p->pidns_for_children != p->pidns) + (t->pidns != p->pidns_for_children);
}

static int check_child(const struct dump_task *p, const struct dump_task *t, cr_error_t *err)
{
	if (t->status.n_levels == levels_given(p, t))
		return 0;
	/* A zombie's namespace is a guess (dump/collect.c): say only what is seen. */
	if (p->pidns_for_children != p->pidns && !t->zombie)
		return cr_error(err, 0, "pid %d was created by its parent %d before that unshared its pid namespace "
				"for children (unshare(CLONE_NEWPID)): a process with children from before and after "
				"its unshare is unsupported", t->pid, p->pid);
	return cr_error(err, 0, "%s %d has %d pid levels, which the pid namespaces of its parent %d do not give: "
			"unsupported", t->zombie ? "zombie" : "pid", t->pid, t->status.n_levels, p->pid);
}

static int pidns_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct dump_task *t = &ctx->tasks[i], *p;

		if (t->ppid == 0)
			continue;
		p = dump_find_task(ctx, t->ppid);
		if (p != NULL && check_child(p, t, err) < 0)
			return -1;
	}
	return 0;
}

const struct state_kind state_pidns = {
	.name = "pid namespaces",
	.check_tree = pidns_check_tree,
};
