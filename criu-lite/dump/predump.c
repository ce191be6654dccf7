/* cr pre-dump: a pre-copy round.  The tree is frozen only to read its
 * layout and arm write tracking (state/track.h); its pages are copied
 * while it runs on, into an image directory holding page data only.  The
 * next round (another pre-dump, or the final cr dump --prev-images-dir)
 * copies only the pages written since, and marks the others in_prev.
 * The userfaultfds wait for it in a keeper (dump/keeper.h). */
#include "dump/dump.h"
#include "dump/guard.h"
#include "dump/keeper.h"
#include "dump/steps.h"
#include "img/dir.h"
#include "img/image.h"
#include "img/msgs.h"
#include "os/log.h"
#include "os/supervise.h"
#include "os/util.h"
#include "state/state.h"
#include "state/track.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* When the round before is in a directory here too, it must be the round
 * the tracking comes from (else its pages are not the ones unchanged). */
static int check_prev_dir(struct dump_ctx *ctx, const struct tracker *tr, cr_error_t *err)
{
	struct img_msgs m = { 0 };
	const InventoryEntry *inv;
	struct cr_dump_id id;
	cr_error_t ignored = NULL;
	int fd = openat(ctx->dirfd, ctx->opts->prev_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return 0;   /* on the page server's side only */
	if (img_load(fd, CR_IMG_INVENTORY, 0, NULL, &m, &ignored) < 0) {
		cr_error_release(&ignored);
		close(fd);
		img_msgs_free(&m);
		return cr_error(err, 0, "--prev-images-dir %s: holds no complete round", ctx->opts->prev_dir);
	}
	inv = (const InventoryEntry *)m.v[0];
	if (cr_dump_id_from(inv->dump_id.data, inv->dump_id.len, &id, "inventory", &ignored) < 0 ||
	    !cr_dump_id_equal(&id, &tr->prev_id))
		ret = cr_error(err, 0, "--prev-images-dir %s: not the round whose write tracking this tree carries "
			       "(another dump id)", ctx->opts->prev_dir);
	cr_error_release(&ignored);
	img_msgs_free(&m);
	close(fd);
	return ret;
}

int dump_track_begin(struct dump_ctx *ctx, pid_t root, struct tracker *tr, cr_error_t *err)
{
	struct proc_stat st;

	if (proc_read_stat(root, &st, err) < 0 || keeper_fetch(tr, root, st.start_time, err) < 0)
		return -1;
	ctx->track = tr;
	if (ctx->opts->prev_dir == NULL) {
		tr->have_prev = false;   /* a whole copy: tracking from an earlier round only cleared */
		return 0;
	}
	if (!tr->have_prev) {
		pr_warn("--prev-images-dir %s: the tree of pid %d carries no write tracking of a round before "
			"(no keeper): every page is copied", ctx->opts->prev_dir, root);
		return 0;
	}
	return check_prev_dir(ctx, tr, err);
}

static int pre_dump_tree(struct dump_ctx *ctx, pid_t pid, int sock, uint64_t *frozen_ns, cr_error_t *err)
{
	if (freeze_tree(ctx, pid, err) < 0 || collect_tree_layout(ctx, err) < 0) {
		release_tree(ctx);
		return cr_error_wrap(err, "freeze the tree and arm write tracking");
	}
	release_tree(ctx);
	*frozen_ns = ctx->frozen_ns = dump_frozen_ns(ctx);
	if (write_predump_images(ctx, err) < 0)
		return cr_error_wrap(err, "write the images");
	return dump_send_images(ctx, sock, err);
}

static void report(const struct dump_ctx *ctx, uint64_t frozen_ns, const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("pre-dump: %llu pages copied (%llu bytes), %llu unchanged, frozen %.1f ms, total %.1f ms\n",
	       (unsigned long long)ctx->pages_copied, (unsigned long long)(ctx->pages_copied * PAGE_SIZE_CR),
	       (unsigned long long)ctx->pages_in_prev, (double)frozen_ns / 1e6,
	       (double)(timespec_ns(&t1) - timespec_ns(t0)) / 1e6);
	fflush(stdout);
}

int cr_pre_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err)
{
	struct dump_ctx ctx = { .opts = opts, .dirfd = -1, .guard = { .dirfd = -1, .pipe_wr = -1 } };
	struct tracker tr = { 0 };
	cleanup_close int sock = -1;
	struct timespec t0;
	uint64_t frozen_ns = 0;
	pid_t keeper = 0;
	int ret = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (dump_prepare(&ctx, pid, &sock, &tr, err) < 0)
		goto out;
	img_dir_journal_begin();
	if (pre_dump_tree(&ctx, pid, sock, &frozen_ns, err) < 0) {
		img_dir_journal_undo();
		goto out;
	}
	img_dir_journal_end();
	if (keeper_start(&tr, pid, ctx.tasks[0].stat.start_time, &ctx.id, &keeper, err) < 0)
		goto out;
	pr_info("pre-dump of the tree of pid %d into %s: write tracking kept by pid %d", pid, opts->dir, keeper);
	report(&ctx, frozen_ns, &t0);
	ret = 0;
out:
	track_free(&tr);
	dump_free_ctx(&ctx);
	if (ret < 0)
		cr_error_wrap(err, "pre-dump of pid %d failed (the process runs on)", pid);
	return ret;
}
