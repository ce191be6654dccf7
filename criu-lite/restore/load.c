#include "restore/run.h"
#include "fd/fdkind.h"
#include "state/files.h"
#include "img/image.h"
#include "img/kinds.h"
#include "os/log.h"
#include "state/mem.h"
#include "img/pages.h"
#include "state/thread.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/utsname.h>

#define RESERVED_MIN_BASE 100
#define MAX_NS_LEVELS 32
#define MAX_TASKS 65536
#define PID_LIMIT (1u << 22)   /* PID_MAX_LIMIT on 64-bit */

const FileEntry *restore_file(const struct restore_ctx *ctx, uint32_t id)
{
	if (id == 0 || id > ctx->n_files)
		return NULL;
	return ctx->files[id - 1];
}

static int verify_all(int dirfd, const InventoryEntry *inv, cr_error_t *err)
{
	char name[IMG_NAME_MAX];

	for (size_t k = 0; k < img_n_kinds; k++)
		if (!img_per_task(&img_kinds[k]) && img_kinds[k].kind != CR_IMG_INVENTORY &&
		    cr_img_verify(dirfd, img_name(name, img_kinds[k].kind, 0), img_kinds[k].kind, err) < 0)
			return -1;
	for (size_t i = 0; i < inv->n_task_pids; i++)
		for (size_t k = 0; k < img_n_kinds; k++)
			if (img_per_task(&img_kinds[k]) &&
			    cr_img_verify(dirfd, img_name(name, img_kinds[k].kind, (pid_t)inv->task_pids[i]),
					  img_kinds[k].kind, err) < 0)
				return -1;
	return 0;
}

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

static int read_all_msgs(int dirfd, const char *name, uint32_t kind, const ProtobufCMessageDescriptor *desc,
			 ProtobufCMessage ***out, size_t *n, cr_error_t *err)
{
	struct cr_img *img;
	ProtobufCMessage *m;
	size_t cap = 0;
	int r;

	*out = NULL;
	*n = 0;
	if (cr_img_open(dirfd, name, kind, &img, err) < 0)
		return -1;
	while ((r = cr_img_read_msg(img, desc, &m, err)) == 1) {
		if (*n == cap) {
			ProtobufCMessage **bigger = realloc(*out, (cap ? cap * 2 : 16) * sizeof(*bigger));

			if (bigger == NULL) {
				protobuf_c_message_free_unpacked(m, NULL);
				r = cr_error(err, ENOMEM, "%s", name);
				break;
			}
			*out = bigger;
			cap = cap ? cap * 2 : 16;
		}
		(*out)[(*n)++] = m;
	}
	cr_img_close(img);
	return r;
}

static int load_task(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	ProtobufCMessage *m;

	if (cr_img_read_one(ctx->dirfd, img_name(name, CR_IMG_CORE, t->pid), CR_IMG_CORE, &core_entry__descriptor,
			    &m, err) < 0)
		return -1;
	t->core = (CoreEntry *)m;
	if (cr_img_read_one(ctx->dirfd, img_name(name, CR_IMG_MM, t->pid), CR_IMG_MM, &mm_entry__descriptor, &m,
			    err) < 0)
		return -1;
	t->mm = (MmEntry *)m;
	if (read_all_msgs(ctx->dirfd, img_name(name, CR_IMG_PAGEMAP, t->pid), CR_IMG_PAGEMAP,
			  &pagemap_entry__descriptor, (ProtobufCMessage ***)&t->pagemap, &t->n_pagemap, err) < 0)
		return -1;
	return read_all_msgs(ctx->dirfd, img_name(name, CR_IMG_FDINFO, t->pid), CR_IMG_FDINFO,
			     &fd_entry__descriptor, (ProtobufCMessage ***)&t->fds, &t->n_fds, err);
}

static int load_files(struct restore_ctx *ctx, cr_error_t *err)
{
	char name[IMG_NAME_MAX];

	if (read_all_msgs(ctx->dirfd, img_name(name, CR_IMG_FILES, 0), CR_IMG_FILES, &file_entry__descriptor,
			  (ProtobufCMessage ***)&ctx->files, &ctx->n_files, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_files; i++)
		if (ctx->files[i]->id != i + 1)
			return cr_error(err, 0, "files.img: entry %zu has id %u", i, ctx->files[i]->id);
	return 0;
}

/* ------------------------------------------------------------ the tree */

static struct restore_task *task_by_pid(struct restore_ctx *ctx, uint32_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if ((uint32_t)ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

static int check_pid_sets(const PstreeEntry *p, size_t i, cr_error_t *err)
{
	if (p->n_ns_pid == 0 || p->n_ns_pid > MAX_NS_LEVELS || p->n_ns_pgid != p->n_ns_pid ||
	    p->n_ns_sid != p->n_ns_pid)
		return cr_error(err, 0, "pstree.img: entry %zu has malformed pid sets", i);
	for (size_t l = 0; l < p->n_ns_pid; l++)
		if (p->ns_pid[l] == 0 || p->ns_pid[l] > PID_LIMIT || p->ns_pgid[l] > PID_LIMIT || p->ns_sid[l] > PID_LIMIT)
			return cr_error(err, 0, "pstree.img: entry %zu has a pid, group or session out of range", i);
	for (size_t k = 0; k < p->n_threads; k++)
		for (size_t l = 0; l < p->threads[k]->n_ns_tid; l++)
			if (p->threads[k]->ns_tid[l] == 0 || p->threads[k]->ns_tid[l] > PID_LIMIT)
				return cr_error(err, 0, "pstree.img: entry %zu has thread id %u out of range", i,
						p->threads[k]->ns_tid[l]);
	if (!p->zombie && (p->n_threads == 0 || p->n_threads > 4096))
		return cr_error(err, 0, "pstree.img: pid %u has %zu threads", p->ns_pid[0], p->n_threads);
	return 0;
}

static int link_parent(struct restore_ctx *ctx, size_t i, cr_error_t *err)
{
	struct restore_task *t = &ctx->tasks[i], *p;
	struct restore_task **kids;

	if (i == 0) {
		if (t->pstree->ppid != 0)
			return cr_error(err, 0, "pstree.img: the first entry is not the root");
		return 0;
	}
	p = task_by_pid(ctx, t->pstree->ppid);
	if (p == NULL || p >= t)
		return cr_error(err, 0, "pstree.img: pid %d names parent %u, which comes later or not at all",
				t->pid, t->pstree->ppid);
	if (p->zombie)
		return cr_error(err, 0, "pstree.img: pid %d has a zombie parent %d", t->pid, p->pid);
	if (t->pstree->n_ns_pid < p->pstree->n_ns_pid)
		return cr_error(err, 0, "pstree.img: pid %d has fewer pid levels than its parent", t->pid);
	kids = realloc(p->children, (p->n_children + 1) * sizeof(*kids));
	if (kids == NULL)
		return cr_error(err, ENOMEM, "process tree");
	p->children = kids;
	p->children[p->n_children++] = t;
	t->parent = p;
	return 0;
}

/* setsid and setpgid can rebuild only sessions led from inside the tree or
 * inherited from the restorer. */
static int check_session(const struct restore_task *t, cr_error_t *err)
{
	const PstreeEntry *p = t->pstree;

	const PstreeEntry *pp = t->parent ? t->parent->pstree : NULL;

	if (pp == NULL || p->ns_sid[0] == p->ns_pid[0] || p->ns_sid[0] == pp->ns_sid[0])
		return 0;
	/* Forked before its parent's setsid: still in the session the parent
	 * had, its grandparent's (or the restorer's, below the root). */
	if (pp->ns_sid[0] == pp->ns_pid[0] &&
	    (t->parent->parent == NULL || p->ns_sid[0] == t->parent->parent->pstree->ns_sid[0]))
		return 0;
	return cr_error(err, 0, "pid %d is in session %u, which neither it nor its parent leads: unsupported "
			"(the session's leader is outside the tree)", t->pid, p->ns_sid[0]);
}

/* Without --new-pidns every level from the restorer's namespace down is
 * restored; with it, only the levels from the root's own namespace down. */
static int set_level_base(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;
	size_t base = ctx->opts->new_pidns ? ctx->tasks[0].pstree->n_ns_pid - 1 : 0;

	if (!ctx->opts->new_pidns && ctx->tasks[0].pstree->n_ns_pid != 1)
		return cr_error(err, 0, "the dumped root %d lives in a nested pid namespace whose init was not "
				"dumped; restore it with --new-pidns", ctx->tasks[0].pid);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].level_base = base;
	return 0;
}

static int build_tree(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;

	ctx->tasks = calloc(run->im.n_pstree, sizeof(*ctx->tasks));
	if (ctx->tasks == NULL)
		return cr_error(err, ENOMEM, "process tree");
	ctx->n_tasks = run->im.n_pstree;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (check_pid_sets(run->im.pstree[i], i, err) < 0)
			return -1;
		t->pstree = run->im.pstree[i];
		t->pid = (pid_t)t->pstree->ns_pid[0];
		t->zombie = t->pstree->zombie;
		run->n_live += !t->zombie;
		if (task_by_pid(ctx, (uint32_t)t->pid) != t)
			return cr_error(err, 0, "pstree.img: pid %d appears twice", t->pid);
		if (link_parent(ctx, i, err) < 0 || check_session(t, err) < 0)
			return -1;
	}
	if (run->n_live != run->im.inv->n_task_pids || (uint32_t)ctx->tasks[0].pid != run->im.inv->root_pid)
		return cr_error(err, 0, "inventory.img and pstree.img disagree about the processes");
	return set_level_base(run, err);
}

#define USER_ADDR_LIMIT 0x00fffffffffff000ULL
#define SIGINFO_SIZE 128
#define COMM_MAX 16

static int validate_mm_fields(const struct restore_task *t, cr_error_t *err)
{
	const MmEntry *mm = t->mm;
	const uint64_t pairs[][2] = {
		{ mm->start_code, mm->end_code }, { mm->start_data, mm->end_data }, { mm->start_brk, mm->brk },
		{ mm->arg_start, mm->arg_end }, { mm->env_start, mm->env_end }, { mm->start_stack, mm->start_stack },
	};

	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++)
		if (pairs[i][0] > pairs[i][1] || pairs[i][1] > USER_ADDR_LIMIT)
			return cr_error(err, 0, "mm-%d.img: layout field pair %zu (0x%llx, 0x%llx) is out of order or "
					"outside user space", t->pid, i, (unsigned long long)pairs[i][0],
					(unsigned long long)pairs[i][1]);
	if (mm->n_auxv % 2 || mm->n_auxv * sizeof(uint64_t) > TRAMP_AUXV_MAX)
		return cr_error(err, 0, "mm-%d.img: auxv of %zu words is malformed", t->pid, mm->n_auxv);
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];

		if (e->kind < VMA_KIND__VMA_ANON || e->kind > VMA_KIND__VMA_VVAR_VCLOCK ||
		    (e->kind != VMA_KIND__VMA_FILE && e->has_file_id))
			return cr_error(err, 0, "mm-%d.img: VMA %zu has kind %d%s", t->pid, i, e->kind,
					e->has_file_id ? " with a file" : "");
	}
	return 0;
}

static int validate_signals(const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *c = t->core;

	for (size_t i = 0; i < c->n_sigactions; i++)
		if (c->sigactions[i]->sig == 0 || c->sigactions[i]->sig > 64 || c->sigactions[i]->sig == 9 ||
		    c->sigactions[i]->sig == 19)
			return cr_error(err, 0, "core-%d.img: a sigaction for signal %u", t->pid, c->sigactions[i]->sig);
	for (size_t i = 0; i < c->n_shared_pending; i++)
		if (c->shared_pending[i]->siginfo.len != SIGINFO_SIZE)
			return cr_error(err, 0, "core-%d.img: a pending signal with a %zu-byte siginfo", t->pid,
					c->shared_pending[i]->siginfo.len);
	for (size_t i = 0; i < c->n_threads; i++)
		for (size_t j = 0; j < c->threads[i]->n_pending; j++)
			if (c->threads[i]->pending[j]->siginfo.len != SIGINFO_SIZE)
				return cr_error(err, 0, "core-%d.img: thread %zu has a pending signal with a "
						"%zu-byte siginfo", t->pid, i, c->threads[i]->pending[j]->siginfo.len);
	return 0;
}

static int validate_core_values(const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *c = t->core;

	if (c->creds == NULL || c->n_sigactions > 64 || c->creds->n_uid != 4 || c->creds->n_gid != 4 ||
	    c->creds->n_groups > 65536)
		return cr_error(err, 0, "core-%d.img: incomplete or malformed credentials", t->pid);
	if (c->umask > 0777 || c->exit_signal > 64)
		return cr_error(err, 0, "core-%d.img: umask %o or exit signal %u out of range", t->pid, c->umask,
				c->exit_signal);
	for (size_t i = 0; i < c->n_rlimits; i++)
		if (c->rlimits[i]->resource >= RLIM_NLIMITS || c->rlimits[i]->cur > c->rlimits[i]->max)
			return cr_error(err, 0, "core-%d.img: resource limit %u is malformed", t->pid,
					c->rlimits[i]->resource);
	for (size_t i = 0; i < c->n_itimers; i++)
		if (c->itimers[i]->which > 2)
			return cr_error(err, 0, "core-%d.img: unknown interval timer %u", t->pid, c->itimers[i]->which);
	for (size_t i = 0; i < c->n_threads; i++) {
		const ThreadCore *th = c->threads[i];

		if (th->tid != t->pstree->threads[i]->ns_tid[0] || strlen(th->comm) >= COMM_MAX)
			return cr_error(err, 0, "core-%d.img: thread %zu disagrees with pstree.img or has a bad name",
					t->pid, i);
	}
	return validate_signals(t, err);
}

/* The page data must hold exactly the pages the pagemap lists. */
static int validate_page_total(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	uint64_t want = 0, have;

	for (size_t i = 0; i < t->n_pagemap; i++)
		want += (uint64_t)t->pagemap[i]->nr_pages * PAGE_SIZE_CR;
	if (cr_pages_scan(ctx->dirfd, img_name(name, CR_IMG_PAGES, t->pid), &have, err) < 0)
		return -1;
	if (have != want)
		return cr_error(err, 0, "%s holds %llu bytes of pages, pagemap-%d.img lists %llu", name,
				(unsigned long long)have, t->pid, (unsigned long long)want);
	return 0;
}

static int validate_task(const struct restore_ctx *ctx, const struct restore_task *t, const InventoryEntry *inv,
			 cr_error_t *err)
{
	if (validate_mm_fields(t, err) < 0 || validate_core_values(t, err) < 0 || validate_page_total(ctx, t, err) < 0)
		return -1;
	if (t->core->pid != (uint32_t)t->pid)
		return cr_error(err, 0, "core-%d.img: describes pid %u", t->pid, t->core->pid);
	if (t->mm->exe_file_id && restore_file(ctx, t->mm->exe_file_id) == NULL)
		return cr_error(err, 0, "mm-%d.img: exe names file %u, which files.img lacks", t->pid,
				t->mm->exe_file_id);
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->has_file_id && restore_file(ctx, t->mm->vmas[i]->file_id) == NULL)
			return cr_error(err, 0, "mm-%d.img: VMA %zu names file %u, which files.img lacks", t->pid,
					i, t->mm->vmas[i]->file_id);
	if (mem_validate(t, err) < 0 || files_validate(ctx, t, err) < 0 ||
	    thread_validate(t, inv->xstate_size, inv->xfeatures, err) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------- the plan */

/* The lowest process that is an ancestor of (or is) both a and b. */
static struct restore_task *common_ancestor(struct restore_task *a, struct restore_task *b)
{
	for (struct restore_task *x = a; x != NULL; x = x->parent)
		for (struct restore_task *y = b; y != NULL; y = y->parent)
			if (x == y)
				return x;
	return NULL;
}

/* The id that stands for fe's kernel object: its first description. */
static uint32_t object_of(const struct restore_ctx *ctx, const FileEntry *fe)
{
	const struct fd_kind *kind = fdkind_for_entry(fe);

	return kind && kind->first ? kind->first(ctx, fe)->id : fe->id;
}

/* Each kernel object is opened once, with all its descriptions, by the
 * lowest common ancestor of the processes holding any of them, and
 * inherited by them. */
static int plan_sharing(struct restore_ctx *ctx, cr_error_t *err)
{
	ctx->file_lca = calloc(ctx->n_files + 1, sizeof(*ctx->file_lca));
	ctx->opened = malloc((ctx->n_files + 1) * sizeof(*ctx->opened));
	if (ctx->file_lca == NULL || ctx->opened == NULL)
		return cr_error(err, ENOMEM, "file plan");
	for (size_t id = 0; id <= ctx->n_files; id++)
		ctx->opened[id] = -1;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; j < t->n_fds; j++) {
			uint32_t id = object_of(ctx, restore_file(ctx, t->fds[j]->file_id));

			ctx->file_lca[id] = ctx->file_lca[id] ? common_ancestor(ctx->file_lca[id], t) : t;
		}
	}
	for (uint32_t id = 1; id <= ctx->n_files; id++)
		ctx->file_lca[id] = ctx->file_lca[object_of(ctx, restore_file(ctx, id))];
	return 0;
}

static int plan_vma_fds(struct restore_task *t, int base, cr_error_t *err)
{
	int slot = RESERVED_MAPS;

	t->reserved_base = base;
	t->vma_fd = malloc((t->mm->n_vmas + 1) * sizeof(int));
	if (t->vma_fd == NULL)
		return cr_error(err, ENOMEM, "fd plan");
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		t->vma_fd[i] = -1;
		if (e->kind != VMA_KIND__VMA_FILE)
			continue;
		for (size_t j = 0; j < i && t->vma_fd[i] < 0; j++)
			if (t->mm->vmas[j]->kind == VMA_KIND__VMA_FILE && t->mm->vmas[j]->file_id == e->file_id)
				t->vma_fd[i] = t->vma_fd[j];
		if (t->vma_fd[i] < 0)
			t->vma_fd[i] = base + slot++;
	}
	t->n_reserved = slot;
	t->tramp_size = ((TRAMP_GROUPS + t->core->creds->n_groups * sizeof(uint32_t) + PAGE_SIZE_CR - 1) &
			 ~(PAGE_SIZE_CR - 1)) + TRAMP_PROG_SIZE;
	return 0;
}

/* One fd layout for the whole tree: dumped fds below reserved_base, each
 * process's own reserved slots above, then the shared stash. */
static int plan_fds(struct restore_ctx *ctx, cr_error_t *err)
{
	int base = RESERVED_MIN_BASE, top = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		for (size_t j = 0; j < ctx->tasks[i].n_fds; j++)
			if ((int)ctx->tasks[i].fds[j]->fd >= base)
				base = (int)ctx->tasks[i].fds[j]->fd + 1;
	ctx->reserved_base = base;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		t->reserved_base = base;
		if (t->zombie)
			continue;
		if (plan_vma_fds(t, base, err) < 0)
			return -1;
		if (t->n_reserved > top)
			top = t->n_reserved;
	}
	ctx->stash_base = base + (top > RESERVED_MAPS ? top : RESERVED_MAPS);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].stash_top = ctx->stash_base + (int)ctx->n_files + 1;
	return plan_sharing(ctx, err);
}

static int load_tasks(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->zombie)
			continue;
		if (load_task(ctx, t, err) < 0 || validate_task(ctx, t, run->im.inv, err) < 0)
			return -1;
	}
	return 0;
}

int restore_load(struct restore_run *run, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;
	char name[IMG_NAME_MAX];
	ProtobufCMessage *m;

	if (cr_img_read_one(ctx->dirfd, img_name(name, CR_IMG_INVENTORY, 0), CR_IMG_INVENTORY, &inventory_entry__descriptor, &m,
			    err) < 0)
		return cr_error_wrap(err, "%s holds no complete dump", ctx->opts->dir);
	run->im.inv = (InventoryEntry *)m;
	if (check_inventory(run->im.inv, err) < 0 || verify_all(ctx->dirfd, run->im.inv, err) < 0)
		return -1;
	if (read_all_msgs(ctx->dirfd, img_name(name, CR_IMG_PSTREE, 0), CR_IMG_PSTREE, &pstree_entry__descriptor,
			  (ProtobufCMessage ***)&run->im.pstree, &run->im.n_pstree, err) < 0)
		return -1;
	if (run->im.n_pstree == 0)
		return cr_error(err, 0, "pstree.img holds no process");
	if (load_files(ctx, err) < 0 || build_tree(run, err) < 0 || load_tasks(run, err) < 0)
		return -1;
	return plan_fds(ctx, err);
}

static void free_msgs(ProtobufCMessage **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(v[i], NULL);
	free(v);
}

void restore_unload(struct restore_run *run)
{
	struct restore_ctx *ctx = &run->ctx;

	mem_page_bufs_free(steal_pointer(&ctx->page_bufs));
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->core)
			protobuf_c_message_free_unpacked(&t->core->base, NULL);
		if (t->mm)
			protobuf_c_message_free_unpacked(&t->mm->base, NULL);
		free_msgs((ProtobufCMessage **)t->pagemap, t->n_pagemap);
		free_msgs((ProtobufCMessage **)t->fds, t->n_fds);
		free(t->children);
		free(t->threads);
		free(t->vma_fd);
		free(t->vma_has_pages);
		inject_batch_free(&t->batch);
	}
	free_msgs((ProtobufCMessage **)ctx->files, ctx->n_files);
	free_msgs((ProtobufCMessage **)run->im.pstree, run->im.n_pstree);
	free(ctx->tasks);
	free(ctx->file_lca);
	free(ctx->opened);
	if (run->im.inv)
		protobuf_c_message_free_unpacked(&run->im.inv->base, NULL);
}
