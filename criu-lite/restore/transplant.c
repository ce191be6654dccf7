/* The transplant: the restorer seizes each process (which waits in cr's
 * code), and by injected syscalls through its trampoline makes it the
 * dumped process, kind by kind in table order: memory first (cr's
 * mappings go, the dumped ones come with their pages), credentials last.
 * A single-threaded process takes five ptrace stops: the seize, the
 * layout, the state, the trampoline's unmap and the release.  All
 * processes are released together, only once every one is ready. */
#include "restore/run.h"
#include "fd/fdkind.h"
#include "os/log.h"
#include "os/progress.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/pagedata.h"
#include "state/shmem.h"
#include "state/state.h"
#include "state/stop.h"
#include "state/threads.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>

/* A thread's tid as the restorer sees it, found by its innermost tid
 * when the restorer is not in the namespace of its outermost level (with
 * --new-pidns only the inner levels were chosen). */
static int host_tid(const struct restore_ctx *ctx, const struct restore_task *t, size_t i, pid_t *out,
		    cr_error_t *err)
{
	const ThreadIds *ids = t->pstree->threads[i];
	cleanup_free pid_t *tids = NULL;
	size_t n = 0;

	if (i == 0 || (t->level_base == 0 && !ctx->opts->new_pidns)) {
		*out = i == 0 ? t->host_pid : (pid_t)ids->ns_tid[0];
		return 0;
	}
	if (proc_list_tasks(t->host_pid, &tids, &n, err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		struct proc_status st;
		bool match;

		if (proc_read_status(t->host_pid, tids[k], &st, err) < 0)
			return -1;
		match = st.n_levels > 0 && (uint32_t)st.ns_pid[st.n_levels - 1] == ids->ns_tid[ids->n_ns_tid - 1];
		proc_status_free(&st);
		if (match) {
			*out = tids[k];
			return 0;
		}
	}
	return cr_error(err, 0, "pid %d: thread %u was not created", t->pid, ids->ns_tid[ids->n_ns_tid - 1]);
}

/* The main thread was seized when it reported ready (create.c). */
static int seize(const struct restore_task *t, size_t i, pid_t tid, int *stopped, cr_error_t *err)
{
	if (i == 0 && t->seized)
		return ptrace_wait_interrupted(tid, stopped, err);
	return ptrace_seize_stop(tid, CR_PTRACE_OPTIONS_RESTORE, stopped, err);
}

static int seize_threads(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	t->threads = xcalloc(t->core->n_threads, sizeof(*t->threads));
	t->n_threads = t->core->n_threads;
	t->inj = &t->threads[0].inj;
	for (size_t i = 0; i < t->n_threads; i++) {
		struct restore_thread *th = &t->threads[i];
		int stopped;

		th->core = t->core->threads[i];
		if (host_tid(ctx, t, i, &th->tid, err) < 0 || seize(t, i, th->tid, &stopped, err) < 0 ||
		    inject_begin(&th->inj, th->tid, t->tramp + TRAMP_CODE, err) < 0)
			return -1;
	}
	return 0;
}

int transplant_release(struct restore_ctx *ctx, int which, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->transplanter != which)
			continue;
		/* One that was stopped is in its stop again (stop.c): detached,
		 * it stays there. */
		for (size_t j = 0; j < t->n_threads; j++) {
			if (ptrace_release(t->threads[j].tid, 0, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* Everything of the process's own state in one batch run by its main
 * thread, with cr's fds closed last (but for what their close would undo:
 * state_after_close); then each other thread's in a batch
 * it runs itself; then the registers. */
static int transplant(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (seize_threads(ctx, t, err) < 0 || state_apply(ctx, t, err) < 0)
		return -1;
	inject_batch_add(&t->batch, "close cr's fds", SYS_close_range, (uint64_t)t->reserved_base,
			 (uint64_t)t->reserved_end - 1, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "close the fds cr kept aside", SYS_close_range, (uint64_t)t->stash_top, ~0U, 0, 0,
			 0, 0);
	if (state_after_close(ctx, t, err) < 0 || restore_batch_run(t, t->inj, err) < 0)
		return -1;
	for (size_t i = 1; i < t->n_threads; i++)
		if (state_apply_thread(ctx, t, &t->threads[i], err) < 0 ||
		    restore_batch_run(t, &t->threads[i].inj, err) < 0)
			return cr_error_wrap(err, "thread %d", t->threads[i].tid);
	return thread_restore_final(t, err);
}

/* The restorer's progress counts its own share. */
static uint64_t page_bytes(const struct restore_ctx *ctx)
{
	uint64_t total = shmem_bytes(ctx);

	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && ctx->tasks[i].transplanter == 0)
			total += pagedata_bytes(&ctx->tasks[i], false);
	return total;
}

int transplant_share(struct restore_ctx *ctx, int which, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (!t->zombie && t->transplanter == which && transplant(ctx, t, err) < 0)
			return cr_error_wrap(err, "pid %d", t->pid);
	}
	return 0;
}

/* Shared memory is filled once, before any transplant goes beyond memory
 * and before the second transplanter is forked. */
/* Once every process is transplanted (-v times the steps). */
static int release_all(struct restore_ctx *ctx, struct second *second, cr_error_t *err)
{
	pr_debug("the processes are transplanted");
	if (second_wait_ready(second, err) < 0 || stop_restored_tree(ctx, err) < 0 || fdkind_ready(ctx, err) < 0)
		return -1;
	pr_debug("every process and file is ready: released");
	return transplant_release(ctx, 0, err) < 0 || second_release(second, err) < 0 ? -1 : 0;
}

int transplant_tree(struct restore_ctx *ctx, cr_error_t *err)
{
	struct second second;
	int ret;

	progress_start("restore", page_bytes(ctx), 0);
	ret = shmem_fill(ctx, err);
	if (ret == 0)
		ret = second_start(ctx, &second, err);
	if (ret < 0) {
		progress_done();
		return -1;
	}
	ret = transplant_share(ctx, 0, err);
	progress_done();
	if (ret < 0 || release_all(ctx, &second, err) < 0) {
		second_kill(&second);
		return -1;
	}
	return 0;
}
