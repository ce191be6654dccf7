/* cr dump: freeze the tree, collect every kind of state, write the images,
 * then kill the tree or let it run on.  A dump that fails at any step
 * removes what it wrote and lets every task go as it was. */
#include "dump/dump.h"
#include "dump/guard.h"
#include "dump/keeper.h"
#include "dump/steps.h"
#include "fd/fdshare.h"
#include "fd/unix_diag.h"
#include "img/dir.h"
#include "img/prealloc.h"
#include "img/xfer.h"
#include "net/netns.h"
#include "os/proc.h"
#include "os/supervise.h"
#include "os/log.h"
#include "os/util.h"
#include "state/landlock.h"
#include "state/locks.h"
#include "state/pagedata.h"
#include "state/state.h"
#include "state/track.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int dump_check_root(pid_t pid, cr_error_t *err)
{
	if (kill(pid, 0) < 0)
		return cr_error(err, errno, "no process with pid %d", pid);
	if (pid == getpid())
		return cr_error(err, 0, "cr cannot dump itself (pid %d)", pid);
	return 0;
}

void dump_free_ctx(struct dump_ctx *ctx)
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
		free(t->tracked);
		free(t->dirty);
	}
	free(ctx->tasks);
	arena_free(&ctx->arena);
	guard_close(ctx);
	close_image_dir(ctx);
}

/* The images are complete: the tree goes on (--leave-running) or dies.
 * *frozen_ns: from the first interrupt until every process runs again or
 * has been sent its SIGKILL (its reaping is not the tree's frozen time). */
static void finish(struct dump_ctx *ctx, uint64_t *frozen_ns)
{
	cr_interrupt_armed = 0;   /* the dump is complete: finish it */
	if (ctx->opts->leave_running) {
		release_tree(ctx);
		*frozen_ns = dump_frozen_ns(ctx);
	} else {
		guard_note_complete(ctx);
		ctx->killed = true;
		kill_tree(ctx, frozen_ns);
	}
}

/* --page-server: the finished image directory goes to the server while the
 * tree is still held (a transfer that fails leaves it running). */
int dump_send_images(struct dump_ctx *ctx, int sock, cr_error_t *err)
{
	struct timespec t0, t1;
	uint64_t bytes;
	double secs;

	if (sock < 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (xfer_send_dir(sock, ctx->dirfd, &bytes, err) < 0)
		return cr_error_wrap(err, "send the images to the page server at %s port %d", ctx->opts->ps_address,
				     ctx->opts->ps_port);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(timespec_ns(&t1) - timespec_ns(&t0)) / 1e9;
	pr_info("sent %llu bytes of images to the page server in %.3f s (%.0f MiB/s)", (unsigned long long)bytes,
		secs, secs > 0 ? (double)bytes / 1048576.0 / secs : 0.0);
	return 0;
}

/* --page-server: the tree is gone from here, so the server may let its
 * images be restored (cr page-server --wait-commit).  The dump is done
 * whatever becomes of this word: a server that misses it keeps the
 * images and says so. */
static void commit_images(const struct dump_ctx *ctx, int sock)
{
	cr_error_t err = NULL;

	if (sock < 0 || ctx->opts->leave_running)
		return;
	if (xfer_send_commit(sock, &err) < 0) {
		pr_warn("the page server did not get word that the tree is gone: %s", err->msg);
		cr_error_release(&err);
	}
}

/* The steps that can fail, each named in its error. */
static int dump_tree(struct dump_ctx *ctx, pid_t pid, cr_error_t *err)
{
	if (freeze_tree(ctx, pid, err) < 0)
		return cr_error_wrap(err, "freeze the tree");
	pr_debug("%zu processes frozen", ctx->n_tasks);
	/* What takes long and needs only the frozen tree, by threads of its
	 * own while the collection goes on. */
	fdshare_prefetch(ctx);
	locks_prefetch();
	if (!proc_shares_ns(pid, "net"))
		netns_sysctls_prefetch(pid);
	if (collect_tree(ctx, err) < 0)
		return cr_error_wrap(err, "collect");
	pr_debug("state collected");
	if (write_images(ctx, err) < 0)
		return cr_error_wrap(err, "write the images");
	pr_debug("images written");
	return 0;
}

/* A dump's root's page image, allocated on the other core while the tree
 * is seized and collected (img/prealloc.h); not compressed (the size is
 * unknown), nor the last round of pre-copy (only the pages written since
 * the round before are copied). */
static void prealloc_pages(struct dump_ctx *ctx, pid_t pid)
{
	char name[IMG_NAME_MAX];

	if (!ctx->opts->pre_dump && !ctx->opts->compress && ctx->opts->prev_dir == NULL)
		img_prealloc_start(ctx->dirfd, img_name(name, CR_IMG_PAGES, pid), dump_resident_bytes(pid, true));
}

int dump_prepare(struct dump_ctx *ctx, pid_t pid, int *sock, struct tracker *tr, cr_error_t *err)
{
	if (dump_check_root(pid, err) < 0)
		return -1;
	if (!ctx->opts->pre_dump)
		landlock_probe_ahead(pid);   /* a fork and exec of cr: not in the frozen window */
	if (open_image_dir(ctx, err) < 0)
		return -1;
	prealloc_pages(ctx, pid);
	/* The server must be there before anything is frozen. */
	if (ctx->opts->page_server && (*sock = xfer_connect(ctx->opts->ps_address, ctx->opts->ps_port, err)) < 0)
		return -1;
	return guard_open(ctx, err) < 0 || dump_track_begin(ctx, pid, tr, err) < 0 ? -1 : 0;
}

/* --leave-running in the middle of pre-copy rounds: the tracking goes
 * back to a keeper, still for the round it came from (this dump's scans
 * did not protect the pages again), so the next round can use it. */
static void keep_tracking(struct dump_ctx *ctx, pid_t pid, struct tracker *tr)
{
	cr_error_t err = NULL;
	pid_t keeper;

	if (!ctx->opts->leave_running || !tr->kept)
		return;
	fdshare_prefetch_wait();   /* no thread of cr's runs at the keeper's fork */
	if (keeper_start(tr, pid, ctx->tasks[0].stat.start_time, &tr->prev_id, &keeper, &err) < 0) {
		pr_warn("the write tracking of the pre-copy rounds ends: %s", err->msg);
		cr_error_release(&err);
	}
}

/* The sock_diag socket of the root's network namespace is made now (the
 * lookups of the frozen window use it); an error is the window's to say. */
static void unix_diag_connect_ahead(pid_t pid)
{
	cr_error_t ignored = NULL;

	if (unix_diag_add_ns(pid, &ignored) < 0)
		cr_error_release(&ignored);
}

int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err)
{
	struct dump_ctx ctx = { .opts = opts, .dirfd = -1, .guard = { .dirfd = -1, .pipe_wr = -1 } };
	struct tracker tr = { 0 };
	cleanup_close int sock = -1;
	uint64_t frozen_ns;
	int ret = -1, nice_before = INT_MIN;

	locks_warm_up();   /* first: its first read waits the longest */
	if (dump_prepare(&ctx, pid, &sock, &tr, err) < 0 ||
	    /* What does not depend on the tree is not read (or allocated)
	     * while it is frozen. */
	    (!proc_shares_ns(pid, "net") && netns_prefetch_defaults(err) < 0)) {
		img_prealloc_stop();
		goto out;
	}
	pagedata_bufs_prepare(&ctx);
	unix_diag_connect_ahead(pid);
	pr_debug("dump of pid %d starts", pid);
	/* A migration's final round (--page-server): every ms cr waits for a
	 * CPU while the tree is frozen is frozen time. */
	if (opts->page_server)
		nice_before = cr_priority_raise();
	img_dir_journal_begin();
	if (dump_tree(&ctx, pid, err) < 0 || dump_send_images(&ctx, sock, err) < 0) {
		img_prealloc_stop();
		img_dir_journal_undo();   /* the files this dump created, and no other */
		release_tree(&ctx);
		goto out;
	}
	img_prealloc_stop();   /* a root without pages (a zombie) */
	img_dir_journal_end();
	finish(&ctx, &frozen_ns);
	commit_images(&ctx, sock);
	cr_priority_restore(nice_before);
	nice_before = INT_MIN;
	keep_tracking(&ctx, pid, &tr);
	pr_info("dumped %zu processes of the tree of pid %d into %s; frozen %.1f ms, from the first interrupt to the %s",
		ctx.n_tasks, pid, opts->dir, (double)frozen_ns / 1e6, opts->leave_running ? "release" : "kill");
	ret = 0;
out:
	cr_priority_restore(nice_before);
	track_free(&tr);   /* the tracking ends with the dump */
	dump_free_ctx(&ctx);
	if (ret < 0 && kill(pid, 0) == 0)
		cr_error_wrap(err, "dump of pid %d failed (the process is left running)", pid);
	else if (ret < 0)
		cr_error_wrap(err, "dump of pid %d failed", pid);
	return ret;
}
