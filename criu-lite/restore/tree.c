/* The tree of processes pstree.img describes: every process with its pid
 * at every level, its parent (which comes before it), its threads, and
 * whether it is a zombie; and what the host must allow for it. */
#include "restore/run.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NS_LEVELS 32
#define PID_LIMIT (1u << 22)   /* PID_MAX_LIMIT on 64-bit */

/* The tasks sorted by pid, for finding a parent by its pid without a scan
 * of the whole tree for every process. */
struct pid_index {
	struct restore_task **v;
	size_t n;
};

static int cmp_task_pid(const void *pa, const void *pb)
{
	const struct restore_task *a = *(struct restore_task *const *)pa, *b = *(struct restore_task *const *)pb;

	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static struct restore_task *task_by_pid(const struct pid_index *ix, uint32_t pid)
{
	struct restore_task key = { .pid = (pid_t)pid }, *k = &key, **found;

	found = bsearch(&k, ix->v, ix->n, sizeof(*ix->v), cmp_task_pid);
	return found ? *found : NULL;
}

/* Sorts the tasks by pid; a pid that appears twice is refused. */
static int index_pids(struct restore_ctx *ctx, struct pid_index *ix, cr_error_t *err)
{
	ix->v = xcalloc(ctx->n_tasks, sizeof(*ix->v));
	ix->n = ctx->n_tasks;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ix->v[i] = &ctx->tasks[i];
	qsort(ix->v, ix->n, sizeof(*ix->v), cmp_task_pid);
	for (size_t i = 1; i < ix->n; i++)
		if (ix->v[i]->pid == ix->v[i - 1]->pid)
			return cr_error(err, 0, "pstree.img: pid %d appears twice", ix->v[i]->pid);
	return 0;
}

static int check_pid_sets(const PstreeEntry *p, size_t i, cr_error_t *err)
{
	if (p->n_ns_pid == 0 || p->n_ns_pid > MAX_NS_LEVELS || p->n_ns_pgid != p->n_ns_pid ||
	    p->n_ns_sid != p->n_ns_pid)
		return cr_error(err, 0, "pstree.img: entry %zu has malformed pid sets", i);
	for (size_t l = 0; l < p->n_ns_pid; l++)
		if (p->ns_pid[l] == 0 || p->ns_pid[l] > PID_LIMIT || p->ns_pgid[l] > PID_LIMIT || p->ns_sid[l] > PID_LIMIT)
			return cr_error(err, 0, "pstree.img: entry %zu has a pid, group or session out of range", i);
	for (size_t k = 0; k < p->n_threads; k++) {
		if (p->threads[k]->n_ns_tid != p->n_ns_pid)
			return cr_error(err, 0, "pstree.img: entry %zu thread %zu has %zu tid levels, not %zu", i, k,
					p->threads[k]->n_ns_tid, p->n_ns_pid);
		for (size_t l = 0; l < p->threads[k]->n_ns_tid; l++)
			if (p->threads[k]->ns_tid[l] == 0 || p->threads[k]->ns_tid[l] > PID_LIMIT)
				return cr_error(err, 0, "pstree.img: entry %zu has thread id %u out of range", i,
						p->threads[k]->ns_tid[l]);
	}
	if (p->comm != NULL && strlen(p->comm) >= 16)
		return cr_error(err, 0, "pstree.img: entry %zu has a name of %zu bytes", i, strlen(p->comm));
	if (!p->zombie && (p->n_threads == 0 || p->n_threads > 4096))
		return cr_error(err, 0, "pstree.img: pid %u has %zu threads", p->ns_pid[0], p->n_threads);
	return 0;
}

/* The levels of pid a child of p has: those of the namespace p's children
 * are born in (p's own, or one below after unshare(CLONE_NEWPID)), and one
 * more if the child heads a namespace of its own (clone CLONE_NEWPID). */
static size_t child_levels(const PstreeEntry *p, const PstreeEntry *c)
{
	return p->n_ns_pid + (p->pidns_for_children != p->pidns) + (c->pidns != p->pidns_for_children);
}

static int link_parent(struct restore_ctx *ctx, const struct pid_index *ix, size_t i, cr_error_t *err)
{
	struct restore_task *t = &ctx->tasks[i], *p;
	struct restore_task **kids;

	if (i == 0) {
		if (t->pstree->ppid != 0)
			return cr_error(err, 0, "pstree.img: the first entry is not the root");
		return 0;
	}
	p = task_by_pid(ix, t->pstree->ppid);
	if (p == NULL || p >= t)
		return cr_error(err, 0, "pstree.img: pid %d names parent %u, which comes later or not at all",
				t->pid, t->pstree->ppid);
	if (p->zombie)
		return cr_error(err, 0, "pstree.img: pid %d has a zombie parent %d", t->pid, p->pid);
	if (t->pstree->n_ns_pid != child_levels(p->pstree, t->pstree))
		return cr_error(err, 0, "pstree.img: pid %d has %zu pid levels, which its pid namespace and its "
				"parent's do not give", t->pid, t->pstree->n_ns_pid);
	kids = xreallocarray(p->children, p->n_children + 1, sizeof(*kids));
	p->children = kids;
	p->children[p->n_children++] = t;
	t->parent = p;
	return 0;
}

/* Without --new-pidns every level from the restorer's namespace down is
 * restored, so the root must live in the restorer's namespace or be the
 * init of one right below it (create.c makes that namespace with it).
 * Deeper, a namespace between the restorer's and the root's had an init
 * that is not in the dump, and without it that namespace cannot be made. */
static int check_root_levels(const struct restore_task *root, cr_error_t *err)
{
	size_t n = root->pstree->n_ns_pid;

	if (n == 1 || (n == 2 && task_is_ns_init(root)))
		return 0;
	if (!task_is_ns_init(root))
		return cr_error(err, 0, "the dumped root %d is pid %u of a nested pid namespace whose init (its pid "
				"1) was not dumped; restore it with --new-pidns", root->pid,
				root->pstree->ns_pid[n - 1]);
	return cr_error(err, 0, "the dumped root %d is the init of a pid namespace nested %zu levels deep, "
			"and the init of the namespace above it (where the root is pid %u) was not dumped; "
			"restore it with --new-pidns", root->pid, n - 1, root->pstree->ns_pid[n - 2]);
}

/* With --new-pidns only the levels from the root's own namespace down are
 * restored. */
static int set_level_base(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;
	size_t base = ctx->opts->new_pidns ? ctx->tasks[0].pstree->n_ns_pid - 1 : 0;

	if (!ctx->opts->new_pidns && check_root_levels(&ctx->tasks[0], err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].level_base = base;
	return 0;
}

/* setpgid joins only an existing group of the caller's own session: every
 * process of a group in the tree must be in one session, and a process
 * below the root that does not lead its group shares it with another of
 * the tree (the root's group may be the restorer's). */
static int check_groups(const struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const PstreeEntry *a = ctx->tasks[i].pstree;
		bool shared = i == 0 || a->ns_pgid[0] == a->ns_pid[0];

		for (size_t j = 0; j < ctx->n_tasks; j++) {
			const PstreeEntry *b = ctx->tasks[j].pstree;

			if (j == i || a->ns_pgid[0] != b->ns_pgid[0])
				continue;
			shared = true;
			if (a->ns_sid[0] != b->ns_sid[0])
				return cr_error(err, 0, "pstree.img: pids %u and %u are in process group %u but in "
						"sessions %u and %u", b->ns_pid[0], a->ns_pid[0], a->ns_pgid[0],
						b->ns_sid[0], a->ns_sid[0]);
		}
		if (!shared)
			return cr_error(err, 0, "pstree.img: pid %u is in process group %u of session %u, which no "
					"other process of the tree is in: unsupported (the group's leader is outside "
					"the tree)", a->ns_pid[0], a->ns_pgid[0], a->ns_sid[0]);
	}
	return 0;
}

static int link_all(struct restore_ctx *ctx, cr_error_t *err)
{
	struct pid_index ix = { 0 };
	int ret = index_pids(ctx, &ix, err);

	for (size_t i = 0; i < ctx->n_tasks && ret == 0; i++)
		ret = link_parent(ctx, &ix, i, err);
	free(ix.v);
	return ret;
}

int tree_build(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;

	const struct img_msgs *pstree = &ctx->img[CR_IMG_PSTREE];

	if (pstree->n == 0)
		return cr_error(err, 0, "pstree.img holds no process");
	ctx->tasks = xcalloc(pstree->n, sizeof(*ctx->tasks));
	ctx->n_tasks = pstree->n;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		t->pstree = (const PstreeEntry *)pstree->v[i];
		if (check_pid_sets(t->pstree, i, err) < 0)
			return -1;
		t->pid = (pid_t)t->pstree->ns_pid[0];
		t->zombie = t->pstree->zombie;
		run->n_live += !t->zombie;
	}
	if (link_all(ctx, err) < 0)
		return -1;
	if (run->n_live != ctx->inv->n_task_pids || (uint32_t)ctx->tasks[0].pid != ctx->inv->root_pid)
		return cr_error(err, 0, "inventory.img and pstree.img disagree about the processes");
	if (check_groups(ctx, err) < 0)
		return -1;
	return set_level_base(run, err);
}

/* One deadline for the whole tree, for the zombies of a dump made just
 * before (see pidsel_wait_free). */
#define ZOMBIE_WAIT_NS (10 * 1000000000ull)

static int check_pids_free(const struct restore_ctx *ctx, cr_error_t *err)
{
	uint64_t deadline = pidsel_now_ns() + ZOMBIE_WAIT_NS;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const PstreeEntry *p = ctx->tasks[i].pstree;

		if (pidsel_wait_free((pid_t)p->ns_pid[0], deadline, err) < 0)
			return -1;
		for (size_t j = 1; j < p->n_threads; j++)
			if (pidsel_wait_free((pid_t)p->threads[j]->ns_tid[0], deadline, err) < 0)
				return cr_error_wrap(err, "thread of pid %u", p->ns_pid[0]);
	}
	return 0;
}

/* ns_last_pid sets one level in the caller's namespace: refuse a tree that
 * needs more before anything is forked. */
static int check_backend(const struct restore_run *run, cr_error_t *err)
{
	if (run->backend != PID_BACKEND_NS_LAST_PID)
		return 0;
	if (run->ctx.opts->new_pidns)
		return cr_error(err, 0, "--pid-backend=ns_last_pid cannot create a pid namespace's init; use clone3");
	for (size_t i = 0; i < run->ctx.n_tasks; i++) {
		const struct restore_task *t = &run->ctx.tasks[i];

		if (task_levels(t) != 1 || t->pstree->n_threads > 1)
			return cr_error(err, 0, "pid %d %s; --pid-backend=ns_last_pid sets only one pid level of a "
					"process (use clone3)", t->pid, task_levels(t) != 1 ?
					"lives in a nested pid namespace" : "has threads");
	}
	return 0;
}

int tree_check_host(const struct restore_run *run, cr_error_t *err)
{
	if (check_backend(run, err) < 0)
		return -1;
	return run->ctx.opts->new_pidns ? 0 : check_pids_free(&run->ctx, err);
}
