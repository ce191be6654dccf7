/* Loading a dump: under --verify the signature over the inventory first;
 * the inventory (it says which processes have images, and the dump's id,
 * which every other image's header must carry), then every image is
 * verified (checksum, framing, dump id, and under --verify its signed
 * hash) before any is decoded, then every message image is loaded, by the
 * table of image kinds.  The values inside are the kinds' to check
 * (state_validate).  Nothing here touches a process. */
#include "restore/chain.h"
#include "restore/run.h"
#include "img/crypt.h"
#include "img/image.h"
#include "img/sign.h"
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
	if (inv->has_pre_dump && inv->pre_dump)
		return cr_error(err, 0, "inventory.img: a pre-dump round (cr pre-dump), page data only: restore the "
				"dump made after it (cr dump --prev-images-dir)");
	if (strcmp(inv->kernel_release, u.release) != 0)
		pr_warn("dumped on kernel %s, restoring on %s", inv->kernel_release, u.release);
	return 0;
}

struct verifying {
	const struct restore_ctx *ctx;
	size_t hint;              /* --verify: where the next hash is listed */
	cr_error_t *err;
};

/* A message image is read whole and verified completely as it is loaded
 * (cr_img_open): only page images are verified here, unless --verify
 * checks every file's signed hash. */
static int verify(void *arg, const struct img_kind *k, const char *name)
{
	struct verifying *v = arg;
	const struct restore_ctx *ctx = v->ctx;

	if (ctx->opts->verify_key != NULL &&
	    img_digest_check(ctx->dirfd, name, ctx->inv, &v->hint, v->err) < 0)
		return -1;
	if (k->desc != NULL)
		return 0;
	return cr_img_verify(ctx->dirfd, name, k->kind, v->err);
}

/* Every image but the inventory (read already): the whole dump's, then
 * each process's. */
static int verify_all(const struct restore_ctx *ctx, cr_error_t *err)
{
	struct verifying v = { ctx, 0, err };

	return img_each_file(ctx->inv->task_pids, ctx->inv->n_task_pids, verify, &v);
}

/* From here on every image opened must carry the inventory's dump id;
 * the inventory's own header too. */
static int bind_dump_id(const struct restore_ctx *ctx, cr_error_t *err)
{
	struct cr_dump_id id;
	char name[IMG_NAME_MAX];

	img_name(name, CR_IMG_INVENTORY, 0);
	if (cr_dump_id_from(ctx->inv->has_dump_id ? ctx->inv->dump_id.data : NULL, ctx->inv->dump_id.len, &id,
			    name, err) < 0 ||
	    img_dir_bind_id(ctx->dirfd, &id, err) < 0)
		return -1;
	return cr_img_verify(ctx->dirfd, name, CR_IMG_INVENTORY, err);
}

/* --verify: the inventory is signed with the key given, as it is now. */
static int check_signature(const struct restore_ctx *ctx, cr_error_t *err)
{
	struct cr_public_key key;

	if (ctx->opts->verify_key == NULL)
		return 0;
	if (cr_key_load_public(ctx->opts->verify_key, &key, err) < 0)
		return cr_error_wrap(err, "--verify");
	if (img_sign_check(ctx->dirfd, ctx->opts->dir, &key, err) < 0)
		return cr_error_wrap(err, "--verify %s", ctx->opts->verify_key);
	return 0;
}

/* --decrypt: the images are read with the key, and must all be encrypted
 * with it; without it an encrypted dump is refused here, by name. */
static int use_image_key(const struct restore_ctx *ctx, cr_error_t *err)
{
	const char *path = ctx->opts->decrypt_key;
	char name[IMG_NAME_MAX], key_id[CR_CRYPT_KEY_ID_HEX];

	if (path == NULL) {
		if (img_crypt_probe(ctx->dirfd, img_name(name, CR_IMG_INVENTORY, 0), key_id, err) == 1)
			return cr_error(err, 0, "%s is encrypted (key id %s): restore it with --decrypt KEYFILE",
					ctx->opts->dir, key_id);
		cr_error_release(err);   /* a missing or damaged inventory is named when it is read */
		return 0;
	}
	if (img_crypt_use_file(path, err) < 0)
		return cr_error_wrap(err, "--decrypt");
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

	img_dir_unbind_id(ctx->dirfd);   /* the inventory's id is bound once it is read */
	if (check_signature(ctx, err) < 0 || use_image_key(ctx, err) < 0)
		return -1;
	if (img_load(ctx->dirfd, CR_IMG_INVENTORY, 0, &ctx->images, &ctx->img[CR_IMG_INVENTORY], err) < 0)
		return cr_error_wrap(err, "%s holds no complete dump", ctx->opts->dir);
	ctx->inv = (const InventoryEntry *)ctx->img[CR_IMG_INVENTORY].v[0];
	if (check_inventory(ctx->inv, err) < 0 || bind_dump_id(ctx, err) < 0 || same_boot(ctx, err) < 0 ||
	    verify_all(ctx, err) < 0 ||
	    load_kinds(ctx, false, 0, ctx->img, err) < 0 || bind_files(ctx, err) < 0 ||
	    tree_build(run, err) < 0)
		return -1;
	if (load_tasks(ctx, err) < 0)
		return -1;
	return ctx->opts->lock_only ? 0 : chain_load(ctx, err);
}

/* The images go to memory shared with every process the restore forks
 * and sealed read-only once loaded: a fork copies none of it. */
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
	chain_free(ctx);
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
	if (ctx->dirfd >= 0)
		img_dir_unbind_id(ctx->dirfd);
	img_crypt_use(NULL);
	arena_free(&ctx->images);
	proc_vma_list_free(&ctx->cr_layout);
}
