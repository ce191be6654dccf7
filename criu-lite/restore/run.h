/* Shared by the three parts of restore: restore-images.c (load, validate,
 * plan), restore-child.c (what each process runs in cr's code before the
 * transplant) and restore.c (the restorer). */
#ifndef CR_RESTORE_INTERNAL_H
#define CR_RESTORE_INTERNAL_H

#include <stdbool.h>

#include "inventory.pb-c.h"
#include "os/pidsel.h"
#include "state/task.h"


struct restore_images {
	InventoryEntry *inv;
	PstreeEntry **pstree;
	size_t n_pstree;
};

struct restore_run {
	struct restore_ctx ctx;
	struct proc_vma_list cr_layout;  /* the restorer's mappings, inherited by every process it creates */
	struct restore_images im;
	enum pid_backend backend;
	pid_t restorer_pgid;
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

/* Reads and checks every image, builds ctx.tasks (parents first) and the
 * plan of reserved fds and shared descriptions.  Touches no process. */
int restore_load(struct restore_run *run, cr_error_t *err);
void restore_unload(struct restore_run *run);

/* Chooses each process's trampoline address before the tree is created,
 * free in the layout the processes inherit (cr_layout) and in the dumped
 * one, so that they need not read their own maps. */
int restore_plan_trampolines(struct restore_ctx *ctx, const struct proc_vma_list *cr_layout, cr_error_t *err);

/* The body of every restored process before the transplant: forks its
 * children (so the tree and its pids are right), sets up what the kernel
 * keeps outside memory, reports to the restorer and waits. */
__attribute__((noreturn)) void restore_child_main(struct restore_run *run, struct restore_task *t, bool is_root);

/* The pid set to ask for: pids[] outermost first, from level_base. */
static inline size_t task_levels(const struct restore_task *t)
{
	return t->pstree->n_ns_pid - t->level_base;
}

#endif
