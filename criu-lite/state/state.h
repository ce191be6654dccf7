/* Kinds of process state: one ordered table, walked by both drivers.
 *
 * A kind (memory, the fd table, signals, credentials, ...) lives in a file
 * of its own in state/ and fills in the hooks it needs; state.c lists every
 * kind once, in the order below, and both drivers call each hook through
 * that list.  Adding a kind is one file and one line of the list.
 *
 * Dump, for each live process of the tree, while every task is stopped:
 *   collect           from outside: /proc, ptrace, pidfd_getfd
 *   ask               queues syscalls into t->asked: every kind's are run
 *                     in the main thread in one round trip (answers in
 *                     their return values, or in t->scratch at the kind's
 *                     own SCRATCH_ offsets)
 *   answered          reads them: call i of the kind is t->asked's
 *                     first + i; it may run round trips of its own
 *   ask_thread, answered_thread  the same for each other thread: every
 *                     kind's calls for it in one batch, run by that thread
 *   collect_injected  by syscalls run inside the process; the main thread
 *                     (t->inj) and every other thread are in injection, and
 *                     t->scratch is a scratch page for the answers
 *                     (every kind's answered in table order, after every
 *                     ask; then each other thread's round trip; then every
 *                     collect_injected in table order)
 * and once the whole tree is collected:
 *   check_tree        what only the whole tree shows (sharing between
 *                     processes): refuse it here, while the tree still runs
 *   write             images of the kind's own (page data); the message
 *                     images of t->img are written by the driver
 *   write_tree        images of the whole dump (shared memory's contents),
 *                     once every process's are written
 *   release_dump      frees what the kind kept (success or failure)
 *
 * Restore, before anything is created:
 *   validate          every value of the kind in the loaded images makes
 *                     sense: a damaged image is refused here, by name.
 *                     Zombies have only pstree.img: a kind sees them only
 *                     if it says zombies = true
 *   plan              decisions for the whole tree (who opens a shared
 *                     file, where the trampoline goes)
 * in each restored process, still running cr's code:
 *   before_fork       what its children must inherit (shared files)
 *   setup             once its children exist: what the kernel keeps
 *                     outside memory and the process can do itself
 * and by the restorer, by injection into the stopped process:
 *   apply             process-wide state, queued into t->batch (or run:
 *                     memory runs what was queued before it)
 *   apply_thread      per-thread state, queued into t->batch and run by
 *                     that thread; for the main thread this is called in
 *                     table order with apply, for the others afterwards
 *   release_restore   frees what plan and the other hooks kept
 *
 * The table's order is the order of every hook, and it carries the rules:
 * files before memory (a mapping's file is opened by path as the fd table
 * is, before the root directory changes); memory before everything applied
 * by injection (the calls need the dumped layout); scheduling and seccomp
 * filters just before the credentials, which may take away the
 * CAP_SYS_NICE the first needs and the CAP_SYS_ADMIN the second needs (a
 * task may install a filter only with CAP_SYS_ADMIN or no_new_privs, and
 * setting no_new_privs would give it to a process that did not have it;
 * cr's calls after the filters are not filtered: os/ptrace.h,
 * PTRACE_O_SUSPEND_SECCOMP); credentials last but what a change of
 * credentials resets (the parent-death signal, dumpable), no_new_privs
 * with them; memory-deny-write-execute last of all. */
#ifndef CR_STATE_H
#define CR_STATE_H

#include "os/error.h"
#include "state/task.h"

struct state_kind {
	const char *name;
	bool zombies;              /* validate sees zombies too */
	int (*collect)(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
	void (*ask)(struct dump_ctx *ctx, struct dump_task *t);
	int (*answered)(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err);
	/* The same for each thread after the main one: every kind's calls for
	 * a thread go in one batch (b), run once in that thread. */
	void (*ask_thread)(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th, struct inject_batch *b);
	int (*answered_thread)(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
			       const struct inject_batch *b, size_t first, cr_error_t *err);
	int (*collect_injected)(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
	int (*check_tree)(struct dump_ctx *ctx, cr_error_t *err);
	int (*write)(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
	int (*write_tree)(struct dump_ctx *ctx, cr_error_t *err);
	void (*release_dump)(struct dump_ctx *ctx);
	int (*validate)(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err);
	int (*plan)(struct restore_ctx *ctx, cr_error_t *err);
	int (*before_fork)(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
	int (*setup)(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
	int (*apply)(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
	int (*apply_thread)(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
			    cr_error_t *err);
	/* Calls added to the main thread's batch after cr's fds in the process
	 * are closed: what closing one of them would undo (a POSIX lock). */
	int (*after_close)(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
	void (*release_restore)(struct restore_ctx *ctx);
};

/* Each walks one hook over the table, stopping at the first error. */
int state_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
int state_collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
int state_check_tree(struct dump_ctx *ctx, cr_error_t *err);
int state_write(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
int state_write_tree(struct dump_ctx *ctx, cr_error_t *err);
void state_release_dump(struct dump_ctx *ctx);
/* Which SIGCHLD tid's queue (its process's, with shared) holds: none (0),
 * the one a child's stop sent when cr's hold stopped it (1), another (-1). */
int signals_hold_sigchld_queued(struct dump_ctx *ctx, pid_t tid, bool shared, int *found, cr_error_t *err);

int state_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err);
int state_plan(struct restore_ctx *ctx, cr_error_t *err);
int state_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
int state_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
/* apply and the main thread's apply_thread, interleaved in table order. */
int state_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
/* apply_thread for one of the other threads. */
int state_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
		       cr_error_t *err);
int state_after_close(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
void state_release_restore(struct restore_ctx *ctx);

#endif
