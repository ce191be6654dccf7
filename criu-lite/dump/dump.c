/* cr dump: freeze the tree, collect every kind of state, write the images,
 * then kill the tree or let it run on.  A dump that fails at any step
 * removes what it wrote and lets every task go as it was. */
#include "dump/dump.h"
#include "dump/guard.h"
#include "dump/steps.h"
#include "img/dir.h"
#include "os/supervise.h"
#include "os/log.h"
#include "state/state.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static int check_root(pid_t pid, cr_error_t *err)
{
	if (kill(pid, 0) < 0)
		return cr_error(err, errno, "no process with pid %d", pid);
	if (pid == getpid())
		return cr_error(err, 0, "cr cannot dump itself (pid %d)", pid);
	return 0;
}

static void free_ctx(struct dump_ctx *ctx)
{
	state_release_dump(ctx);
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];

		proc_status_free(&t->status);
		proc_vma_list_free(&t->vmas);
		for (size_t j = 0; j < t->n_threads; j++)
			proc_status_free(&t->threads[j].status);
		free(t->threads);
		inject_batch_free(&t->batch);
		inject_batch_free(&t->asked);
	}
	free(ctx->tasks);
	arena_free(&ctx->arena);
	guard_close(ctx);
	close_image_dir(ctx);
}

/* The images are complete: the tree goes on (--leave-running) or dies. */
static void finish(struct dump_ctx *ctx)
{
	cr_interrupt_armed = 0;   /* the dump is complete: finish it */
	if (ctx->opts->leave_running) {
		release_tree(ctx);
	} else {
		guard_note_complete(ctx);
		ctx->killed = true;
		kill_tree(ctx);
	}
}

/* The steps that can fail, each named in its error. */
static int dump_tree(struct dump_ctx *ctx, pid_t pid, cr_error_t *err)
{
	if (freeze_tree(ctx, pid, err) < 0)
		return cr_error_wrap(err, "freeze the tree");
	pr_debug("%zu processes frozen", ctx->n_tasks);
	if (collect_tree(ctx, err) < 0)
		return cr_error_wrap(err, "collect");
	pr_debug("state collected");
	if (write_images(ctx, err) < 0)
		return cr_error_wrap(err, "write the images");
	pr_debug("images written");
	return 0;
}

int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err)
{
	struct dump_ctx ctx = { .opts = opts, .dirfd = -1, .guard = { .dirfd = -1, .pipe_wr = -1 } };
	int ret = -1;

	if (check_root(pid, err) < 0 || open_image_dir(&ctx, err) < 0 || guard_open(&ctx, err) < 0)
		goto out;
	pr_debug("dump of pid %d starts", pid);
	img_dir_journal_begin();
	if (dump_tree(&ctx, pid, err) < 0) {
		img_dir_journal_undo();   /* the files this dump created, and no other */
		release_tree(&ctx);
		goto out;
	}
	img_dir_journal_end();
	finish(&ctx);
	pr_info("dumped %zu processes of the tree of pid %d into %s", ctx.n_tasks, pid, opts->dir);
	ret = 0;
out:
	free_ctx(&ctx);
	if (ret < 0 && kill(pid, 0) == 0)
		cr_error_wrap(err, "dump of pid %d failed (the process is left running)", pid);
	else if (ret < 0)
		cr_error_wrap(err, "dump of pid %d failed", pid);
	return ret;
}
