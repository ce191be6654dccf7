/* Loading a dump: the inventory first (it says which processes have
 * images), then every page image is verified (checksum, framing), then
 * every message image is loaded, by the table of image kinds: a message
 * image is read whole and verified completely before it is decoded
 * (cr_img_open), so it is read once, not verified first and read again.  The values inside are the kinds' to check (state_validate).
 * Nothing here touches a process. */
#include "restore/run.h"
#include "img/image.h"
#include "os/log.h"
#include "os/util.h"
#include "state/state.h"

#include <string.h>
#include <sys/utsname.h>

#define MAX_TASKS 65536

static int check_inventory(const InventoryEntry *inv, cr_error_t *err)
{
	struct utsname u;

	uname(&u);
	if (inv->format_version != CR_FORMAT_VERSION)
		return cr_error(err, 0, "inventory.img: format version %u, this cr reads %d", inv->format_version,
				CR_FORMAT_VERSION);
	if (strcmp(inv->arch, u.machine) != 0)
		return cr_error(err, 0, "inventory.img: dumped on %s, this machine is %s", inv->arch, u.machine);
	if (inv->page_size != PAGE_SIZE_CR)
		return cr_error(err, 0, "inventory.img: page size %u is not supported", inv->page_size);
	if (inv->n_task_pids == 0 || inv->n_task_pids > MAX_TASKS || inv->root_pid == 0)
		return cr_error(err, 0, "inventory.img: %zu processes, root %u: not a dump cr can restore",
				inv->n_task_pids, inv->root_pid);
	if (strcmp(inv->kernel_release, u.release) != 0)
		pr_warn("dumped on kernel %s, restoring on %s", inv->kernel_release, u.release);
	return 0;
}

static int verify(int dirfd, const struct img_kind *k, pid_t pid, cr_error_t *err)
{
	char name[IMG_NAME_MAX];

	return cr_img_verify(dirfd, img_name(name, k->kind, pid), k->kind, err);
}

/* Every page image (message images are verified as they are loaded):
 * the whole dump's, then each process's. */
static int verify_all(int dirfd, const InventoryEntry *inv, cr_error_t *err)
{
	for (size_t k = 0; k < img_n_kinds; k++)
		if (!img_per_task(&img_kinds[k]) && img_kinds[k].desc == NULL &&
		    verify(dirfd, &img_kinds[k], 0, err) < 0)
			return -1;
	for (size_t i = 0; i < inv->n_task_pids; i++)
		for (size_t k = 0; k < img_n_kinds; k++)
			if (img_per_task(&img_kinds[k]) && img_kinds[k].desc == NULL &&
			    verify(dirfd, &img_kinds[k], (pid_t)inv->task_pids[i], err) < 0)
				return -1;
	return 0;
}

/* Every message image of the whole dump but the inventory (read first), or
 * of one process (per_task). */
static int load_kinds(struct restore_ctx *ctx, bool per_task, pid_t pid, struct img_msgs *img, cr_error_t *err)
{
	for (size_t k = 0; k < img_n_kinds; k++) {
		const struct img_kind *kind = &img_kinds[k];

		if (img_per_task(kind) != per_task || kind->desc == NULL || kind->kind == CR_IMG_INVENTORY)
			continue;
		if (img_load(ctx->dirfd, kind->kind, pid, &ctx->images, &img[kind->kind], err) < 0)
			return -1;
	}
	return 0;
}

static int bind_files(struct restore_ctx *ctx, cr_error_t *err)
{
	ctx->files = (FileEntry **)ctx->img[CR_IMG_FILES].v;
	ctx->n_files = ctx->img[CR_IMG_FILES].n;
	for (size_t i = 0; i < ctx->n_files; i++)
		if (ctx->files[i]->id != i + 1)
			return cr_error(err, 0, "files.img: entry %zu has id %u", i, ctx->files[i]->id);
	return 0;
}

/* The typed views of a process's images, and what the images must agree
 * on with their names. */
static int bind_task(struct restore_task *t, cr_error_t *err)
{
	t->core = (CoreEntry *)t->img[CR_IMG_CORE].v[0];
	t->mm = (MmEntry *)t->img[CR_IMG_MM].v[0];
	t->pagemap = (PagemapEntry **)t->img[CR_IMG_PAGEMAP].v;
	t->n_pagemap = t->img[CR_IMG_PAGEMAP].n;
	t->fds = (FdEntry **)t->img[CR_IMG_FDINFO].v;
	t->n_fds = t->img[CR_IMG_FDINFO].n;
	if (t->core->pid != (uint32_t)t->pid)
		return cr_error(err, 0, "core-%d.img: describes pid %u", t->pid, t->core->pid);
	if (t->core->exit_signal > 64)
		return cr_error(err, 0, "core-%d.img: exit signal %u out of range", t->pid, t->core->exit_signal);
	return 0;
}

static int load_tasks(struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->zombie)
			continue;
		if (load_kinds(ctx, true, t->pid, t->img, err) < 0 || bind_task(t, err) < 0)
			return -1;
	}
	return 0;
}

/* Whether this is the boot the dump was made on: only then do a file's
 * device and inode numbers still name the same file. */
static int same_boot(struct restore_ctx *ctx, cr_error_t *err)
{
	char now[PROC_BOOT_ID_LEN + 1];

	if (proc_read_boot_id(now, err) < 0)
		return -1;
	ctx->same_boot = ctx->inv->boot_id != NULL && strcmp(ctx->inv->boot_id, now) == 0;
	return 0;
}

static int load_all(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;

	if (img_load(ctx->dirfd, CR_IMG_INVENTORY, 0, &ctx->images, &ctx->img[CR_IMG_INVENTORY], err) < 0)
		return cr_error_wrap(err, "%s holds no complete dump", ctx->opts->dir);
	ctx->inv = (const InventoryEntry *)ctx->img[CR_IMG_INVENTORY].v[0];
	if (check_inventory(ctx->inv, err) < 0 || same_boot(ctx, err) < 0 ||
	    verify_all(ctx->dirfd, ctx->inv, err) < 0 ||
	    load_kinds(ctx, false, 0, ctx->img, err) < 0 || bind_files(ctx, err) < 0 ||
	    tree_build(run, err) < 0)
		return -1;
	return load_tasks(ctx, err);
}

int restore_load(struct restore_run *run, cr_error_t *err)
{
	int ret;

	arena_share(&run->ctx.images);
	ret = load_all(run, err);
	arena_seal(&run->ctx.images);
	return ret;
}

void restore_unload(struct restore_run *run)
{
	struct restore_ctx *ctx = &run->ctx;

	state_release_restore(ctx);
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t k = 0; k < CR_IMG_N; k++)
			img_msgs_free(&t->img[k]);
		free(t->children);
		free(t->threads);
		inject_batch_free(&t->batch);
	}
	free(ctx->tasks);
	for (size_t k = 0; k < CR_IMG_N; k++)
		img_msgs_free(&ctx->img[k]);
	arena_free(&ctx->images);
	proc_vma_list_free(&ctx->cr_layout);
}
