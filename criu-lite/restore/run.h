/* The steps of a restore, each in a file of its own:
 *   load.c        read and verify every image; touches no process
 *   tree.c        the tree of processes pstree.img describes, and what
 *                 the host must allow for it (free pids, the backend)
 *   plan.c        every process's fd layout, and each kind's plan
 *   create.c      the processes, forked with their pids by their parents,
 *                 each setting itself up in cr's code
 *   transplant.c  by injection, each process becomes the dumped one */
#ifndef CR_RESTORE_RUN_H
#define CR_RESTORE_RUN_H

#include <stdbool.h>

#include "os/pidsel.h"
#include "state/task.h"

struct restore_run {
	struct restore_ctx ctx;
	enum pid_backend backend;
	size_t n_live;                 /* processes that report ready */
	int sync_child_fd;             /* the children's end, before the root moves it */
};

/* What a child tells the restorer when it is ready (or failed). */
struct child_msg {
	int ok;
	uint32_t index;                /* into ctx.tasks */
	uint64_t tramp;
	char error[1024];
	char warnings[2048];
};

/* load.c: reads and verifies every image into ctx.img and each task's
 * img (and their typed views).  Builds on tree.c for the tasks. */
int restore_load(struct restore_run *run, cr_error_t *err);
void restore_unload(struct restore_run *run);

/* tree.c: ctx.tasks from pstree.img, parents before children, each linked
 * to its parent, with the pid levels to restore. */
int tree_build(struct restore_run *run, cr_error_t *err);
/* tree.c: the host can create the tree: its pids are free, the pid
 * backend can set them. */
int tree_check_host(const struct restore_run *run, cr_error_t *err);

/* plan.c: the fd layout of every process and each kind's plan. */
int restore_plan(struct restore_ctx *ctx, cr_error_t *err);

/* create.c: forks the tree (the root from here, every other process from
 * its parent) and waits until every live process reports ready; *root is
 * the process forked here, once forked. */
int create_tree(struct restore_run *run, pid_t *root, cr_error_t *err);

/* transplant.c: seizes each process and makes it the dumped one, then
 * lets them all run. */
int transplant_tree(struct restore_ctx *ctx, cr_error_t *err);
/* transplant.c: the same for the live processes of one transplanter
 * (restore_task.transplanter), and letting them go. */
int transplant_share(struct restore_ctx *ctx, int which, cr_error_t *err);
int transplant_release(struct restore_ctx *ctx, int which, cr_error_t *err);

/* second.c: a second transplanter, for large trees on several CPUs. */
struct second {
	pid_t pid;                     /* 0 when there is none */
	int fd;                        /* the restorer's end of their socket */
};
/* Before the tree is created: which processes each transplanter takes
 * (the restorer seizes only its own as they report ready). */
void second_assign(struct restore_ctx *ctx);
/* Once every process exists: forks the second transplanter, which
 * transplants its share, says so, and lets go of it when told. */
int second_start(struct restore_ctx *ctx, struct second *s, cr_error_t *err);
int second_wait_ready(struct second *s, cr_error_t *err);
int second_release(struct second *s, cr_error_t *err);
/* Kills it (its processes die with it) and reaps it. */
void second_kill(struct second *s);

/* The pid set to ask for: pids[] outermost first, from level_base. */
static inline size_t task_levels(const struct restore_task *t)
{
	return t->pstree->n_ns_pid - t->level_base;
}

/* The process is pid 1 of its own (innermost) pid namespace. */
static inline bool task_is_ns_init(const struct restore_task *t)
{
	return t->pstree->ns_pid[t->pstree->n_ns_pid - 1] == 1;
}

#endif
