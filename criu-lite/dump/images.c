/* The image directory and what a dump writes into it: each process's
 * images (the message images the kinds filled in t->img, then each kind's
 * own, such as page data), the images of the whole dump (the kinds' own,
 * such as shared memory's pages, then ctx->img: pstree.img, files.img and
 * those the kinds fill in), and last the inventory, once everything else
 * is durable. */
#include "dump/steps.h"
#include "img/dir.h"
#include "img/crypt.h"
#include "img/image.h"
#include "img/sign.h"
#include "os/log.h"
#include "os/progress.h"
#include "os/regs.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"
#include "state/pagedata.h"
#include "state/track.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

static int load_sign_key(struct dump_ctx *ctx, cr_error_t *err)
{
	if (ctx->opts->sign_key == NULL)
		return 0;
	ctx->sign_key = xmalloc(sizeof(*ctx->sign_key));
	if (cr_key_load_secret(ctx->opts->sign_key, ctx->sign_key, err) < 0)
		return cr_error_wrap(err, "--sign");
	return 0;
}

/* --encrypt: every image this dump writes is encrypted with the key. */
static int use_image_key(const char *path, cr_error_t *err)
{
	if (path != NULL && img_crypt_use_file(path, err) < 0)
		return cr_error_wrap(err, "--encrypt");
	return 0;
}

int open_image_dir(struct dump_ctx *ctx, cr_error_t *err)
{
	const char *dir = ctx->opts->dir;
	char inventory[IMG_NAME_MAX];
	struct stat st;

	if (load_sign_key(ctx, err) < 0 || use_image_key(ctx->opts->encrypt_key, err) < 0)
		return -1;
	ctx->dirfd = img_dir_open(dir, true, err);
	if (ctx->dirfd < 0)
		return -1;
	if (fstatat(ctx->dirfd, img_name(inventory, CR_IMG_INVENTORY, 0), &st, AT_SYMLINK_NOFOLLOW) == 0)
		return cr_error(err, EEXIST, "%s already holds a dump (%s); use an empty directory", dir,
				inventory);
	if (cr_dump_id_new(&ctx->id, err) < 0)
		return -1;
	return img_dir_bind_id(ctx->dirfd, &ctx->id, err);
}

void close_image_dir(struct dump_ctx *ctx)
{
	if (ctx->sign_key != NULL)
		cr_key_wipe(ctx->sign_key);
	free(steal_pointer(&ctx->sign_key));
	img_crypt_use(NULL);
	if (ctx->dirfd < 0)
		return;
	img_dir_unbind_id(ctx->dirfd);
	close(steal_fd(&ctx->dirfd));
}

static uint32_t *copy_ids(struct dump_ctx *ctx, const pid_t *ids, size_t n)
{
	return arena_memdup(&ctx->arena, ids, n * sizeof(uint32_t));
}

static PstreeEntry *pstree_of(struct dump_ctx *ctx, const struct dump_task *t)
{
	PstreeEntry *p = arena_new(&ctx->arena, PstreeEntry);
	size_t n = (size_t)t->status.n_levels;

	pstree_entry__init(p);
	p->n_ns_pid = p->n_ns_pgid = p->n_ns_sid = n;
	p->ns_pid = copy_ids(ctx, t->status.ns_pid, n);
	p->ns_pgid = copy_ids(ctx, t->status.ns_pgid, n);
	p->ns_sid = copy_ids(ctx, t->status.ns_sid, n);
	p->ppid = (uint32_t)t->ppid;
	p->pidns = t->pidns;
	p->pidns_for_children = t->pidns_for_children;
	if (t->zombie) {
		p->has_zombie = p->has_exit_status = true;
		p->zombie = true;
		p->exit_status = (uint32_t)t->stat.exit_code;
		p->comm = arena_strdup(&ctx->arena, t->stat.comm);
		return p;
	}
	p->threads = arena_array(&ctx->arena, ThreadIds *, t->n_threads);
	p->n_threads = t->n_threads;
	for (size_t i = 0; i < t->n_threads; i++) {
		ThreadIds *th = arena_new(&ctx->arena, ThreadIds);
		const struct proc_status *st = &t->threads[i].status;

		thread_ids__init(th);
		th->n_ns_tid = (size_t)st->n_levels;
		th->ns_tid = copy_ids(ctx, st->ns_pid, th->n_ns_tid);
		p->threads[i] = th;
	}
	return p;
}

struct digests {
	struct dump_ctx *ctx;
	ImageDigest **v;
	size_t n;
	cr_error_t *err;
};

static int add_digest(void *arg, const struct img_kind *k, const char *name)
{
	struct digests *d = arg;
	ImageDigest *e = arena_new(&d->ctx->arena, ImageDigest);
	unsigned char *h = arena_array(&d->ctx->arena, unsigned char, CR_IMG_HASH_SIZE);

	(void)k;
	image_digest__init(e);
	/* A pre-dump round holds page data and the inventory only. */
	if (d->ctx->opts->pre_dump && faccessat(d->ctx->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return 0;
	if (img_hash_file(d->ctx->dirfd, name, h, d->err) < 0)
		return -1;
	e->name = arena_strdup(&d->ctx->arena, name);
	e->blake2b = (ProtobufCBinaryData){ CR_IMG_HASH_SIZE, h };
	d->v[d->n++] = e;
	return 0;
}

/* A signed dump's inventory lists every other image with its hash. */
static int add_digests(struct dump_ctx *ctx, InventoryEntry *inv, cr_error_t *err)
{
	size_t max = img_n_kinds * (inv->n_task_pids + 1);
	struct digests d = { ctx, arena_array(&ctx->arena, ImageDigest *, max), 0, err };

	if (ctx->sign_key == NULL)
		return 0;
	if (img_each_file(inv->task_pids, inv->n_task_pids, add_digest, &d) < 0)
		return cr_error_wrap(err, "hash the images to sign");
	inv->images = d.v;
	inv->n_images = d.n;
	return 0;
}

/* inventory.sig, when the dump is to be signed, and made durable. */
static int sign_inventory(struct dump_ctx *ctx, cr_error_t *err)
{
	if (ctx->sign_key == NULL)
		return 0;
	if (img_sign_write(ctx->dirfd, ctx->sign_key, err) < 0)
		return cr_error_wrap(err, "sign the dump");
	return cr_img_sync_dir(ctx->dirfd, err);
}

static int write_inventory(struct dump_ctx *ctx, cr_error_t *err)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	ProtobufCMessage *msg = &inv.base;
	struct utsname u;
	struct timespec now;
	uint32_t *pids = arena_array(&ctx->arena, uint32_t, ctx->n_tasks);
	char boot_id[PROC_BOOT_ID_LEN + 1];

	if (proc_read_boot_id(boot_id, err) < 0)
		return -1;
	uname(&u);
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && !ctx->tasks[i].gone)
			pids[inv.n_task_pids++] = (uint32_t)ctx->tasks[i].pid;
	inv.format_version = CR_FORMAT_VERSION;
	inv.kernel_release = u.release;
	inv.arch = u.machine;
	inv.root_pid = (uint32_t)ctx->tasks[0].pid;
	inv.page_size = (uint32_t)PAGE_SIZE_CR;
	inv.dump_time_ns = timespec_ns(&now);
	inv.compress = ctx->opts->compress;
	inv.shell_job = ctx->opts->shell_job;
	inv.leave_running = ctx->opts->leave_running;
	inv.xfeatures = regs_host_xfeatures();
	inv.xstate_size = ctx->opts->pre_dump ? 0 : (uint32_t)ctx->tasks[0].core->threads[0]->xstate.len;
	inv.task_pids = pids;
	inv.cr_version = "0.1";
	inv.boot_id = boot_id;
	inv.has_dump_id = true;
	inv.dump_id = (ProtobufCBinaryData){ sizeof(ctx->id.b), ctx->id.b };
	inv.has_frozen_ns = true;
	inv.frozen_ns = ctx->frozen_ns ? ctx->frozen_ns : dump_frozen_ns(ctx);
	inv.has_pre_dump = inv.pre_dump = ctx->opts->pre_dump;
	inv.has_pages_copied = inv.has_pages_in_prev = true;
	inv.pages_copied = ctx->pages_copied;
	inv.pages_in_prev = ctx->pages_in_prev;
	if (ctx->track != NULL && ctx->track->have_prev) {
		inv.prev_images_dir = (char *)ctx->opts->prev_dir;
		inv.has_prev_dump_id = true;
		inv.prev_dump_id = (ProtobufCBinaryData){ sizeof(ctx->track->prev_id.b), ctx->track->prev_id.b };
	}
	/* Every other image is durable before the inventory vouches for it. */
	if (cr_img_sync_dir(ctx->dirfd, err) < 0 || add_digests(ctx, &inv, err) < 0 ||
	    img_store(ctx->dirfd, CR_IMG_INVENTORY, 0, &msg, 1, err) < 0 || cr_img_sync_dir(ctx->dirfd, err) < 0)
		return -1;
	return sign_inventory(ctx, err);
}

uint64_t dump_resident_bytes(pid_t pid, bool anon_only)
{
	char path[64];
	unsigned long size, resident, shared;
	uint64_t bytes = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	f = fopen(path, "re");
	if (f != NULL && fscanf(f, "%lu %lu %lu", &size, &resident, &shared) == 3)
		bytes = (uint64_t)(anon_only ? resident - shared : resident) * PAGE_SIZE_CR;
	if (f != NULL)
		fclose(f);
	return bytes;
}

/* Resident memory of the tree: what the page data will roughly come to. */
static uint64_t resident_bytes(const struct dump_ctx *ctx)
{
	uint64_t total = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		total += dump_resident_bytes(ctx->tasks[i].pid, false);
	return total;
}

/* The message images of t (every per-process kind that is not written by
 * its own kind), then the kinds' own. */
static int write_task_images(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	for (size_t k = 0; k < img_n_kinds; k++) {
		const struct img_kind *kind = &img_kinds[k];

		if (!img_per_task(kind) || (kind->shape & IMG_STREAMED))
			continue;
		if (img_store(ctx->dirfd, kind->kind, t->pid, t->img[kind->kind].v, t->img[kind->kind].n, err) < 0)
			return -1;
	}
	return state_write(ctx, t, err);
}

/* Every message image of the whole dump but the inventory, which comes
 * last: each is written, empty or not, since restore needs them all. */
static int write_dump_images(struct dump_ctx *ctx, cr_error_t *err)
{
	ctx->img[CR_IMG_FILES] = (struct img_msgs){ .v = (ProtobufCMessage **)ctx->files.v, .n = ctx->files.n };
	for (size_t k = 0; k < img_n_kinds; k++) {
		const struct img_kind *kind = &img_kinds[k];

		/* Page data of the whole dump is its kind's, written in write_tree. */
		if (img_per_task(kind) || kind->kind == CR_IMG_INVENTORY || !kind->desc)
			continue;
		if (img_store(ctx->dirfd, kind->kind, 0, ctx->img[kind->kind].v, ctx->img[kind->kind].n, err) < 0)
			return -1;
	}
	return 0;
}

static int write_all_images(struct dump_ctx *ctx, cr_error_t *err)
{
	ProtobufCMessage **pst = arena_array(&ctx->arena, ProtobufCMessage *, ctx->n_tasks);

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (!ctx->tasks[i].zombie && write_task_images(ctx, &ctx->tasks[i], err) < 0)
			return -1;
		pst[i] = &pstree_of(ctx, &ctx->tasks[i])->base;
	}
	if (state_write_tree(ctx, err) < 0)
		return -1;
	ctx->img[CR_IMG_PSTREE] = (struct img_msgs){ .v = pst, .n = ctx->n_tasks };
	if (write_dump_images(ctx, err) < 0)
		return -1;
	return write_inventory(ctx, err);
}

int write_images(struct dump_ctx *ctx, cr_error_t *err)
{
	int ret;

	progress_start("dump", resident_bytes(ctx), 1);
	ret = write_all_images(ctx, err);
	progress_done();
	return ret;
}

/* Whether t, whose pages could not be read, is no longer the process (or
 * the address space) the round froze: it ran on, and may have exited or
 * exec'd since (the pagemap of an address space gone says ESRCH). */
static bool gone_since(const struct dump_task *t, const cr_error_t *err)
{
	struct proc_stat st;
	cr_error_t ignored = NULL;
	bool gone = proc_read_stat(t->pid, &st, &ignored) < 0 || st.start_time != t->stat.start_time ||
		    st.state == 'Z' || (*err != NULL && (*err)->status == ESRCH);

	cr_error_release(&ignored);
	return gone;
}

int write_predump_images(struct dump_ctx *ctx, cr_error_t *err)
{
	int ret = 0;

	progress_start("pre-dump", resident_bytes(ctx), 1);
	for (size_t i = 0; i < ctx->n_tasks && ret == 0; i++) {
		struct dump_task *t = &ctx->tasks[i];

		if (t->zombie || (ret = pagedata_dump(ctx, t, err)) == 0 || !gone_since(t, err))
			continue;
		/* The next round copies the process whole, if it is still there. */
		pr_warn("pid %d exited or exec'd while this round copied its pages: left out of it (%s)", t->pid,
			(*err)->msg);
		cr_error_release(err);
		t->gone = true;
		ret = 0;
	}
	if (ret == 0)
		ret = write_inventory(ctx, err);
	progress_done();
	return ret;
}
