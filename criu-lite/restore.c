#include "restore.h"
#include "attrs.h"
#include "files.h"
#include "image.h"
#include "imgnames.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "mem.h"
#include "mmlayout.h"
#include "ptrace.h"
#include "pstree.pb-c.h"
#include "signals.h"
#include "thread.h"
#include "timers.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define CR_FORMAT_VERSION 1
#define RESERVED_MIN_BASE 100
#define MAX_NS_LEVELS 32

struct restore_images {
	InventoryEntry *inv;
	PstreeEntry *pstree;
	struct cr_img *files_img;
};

/* What the child tells the restorer before it waits to be seized. */
struct child_msg {
	int ok;
	uint64_t tramp;
	char error[1024];
	char warnings[2048];   /* what the child logged, line by line */
};

const FileEntry *restore_file(const struct restore_ctx *ctx, uint32_t id)
{
	if (id == 0 || id > ctx->n_files)
		return NULL;
	return ctx->files[id - 1];
}

/* ------------------------------------------------------------- loading */

static const char *task_prefixes[] = { "core", "mm", "pagemap", "pages", "fdinfo" };
static const uint32_t task_kinds[] = { CR_IMG_CORE, CR_IMG_MM, CR_IMG_PAGEMAP, CR_IMG_PAGES, CR_IMG_FDINFO };

static int verify_all(int dirfd, const InventoryEntry *inv, cr_error_t *err)
{
	char name[IMG_NAME_MAX];

	if (cr_img_verify(dirfd, IMG_PSTREE, CR_IMG_PSTREE, err) < 0 ||
	    cr_img_verify(dirfd, IMG_FILES, CR_IMG_FILES, err) < 0)
		return -1;
	for (size_t i = 0; i < inv->n_task_pids; i++)
		for (size_t k = 0; k < ARRAY_SIZE(task_prefixes); k++)
			if (cr_img_verify(dirfd, img_task_name(name, task_prefixes[k], (pid_t)inv->task_pids[i]),
					  task_kinds[k], err) < 0)
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
	if (inv->n_task_pids != 1 || inv->root_pid != inv->task_pids[0] || inv->root_pid == 0)
		return cr_error(err, 0, "inventory.img: the dump holds %zu processes; this version restores one",
				inv->n_task_pids);
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

	if (cr_img_read_one(ctx->dirfd, img_task_name(name, "core", t->pid), CR_IMG_CORE, &core_entry__descriptor,
			    &m, err) < 0)
		return -1;
	t->core = (CoreEntry *)m;
	if (cr_img_read_one(ctx->dirfd, img_task_name(name, "mm", t->pid), CR_IMG_MM, &mm_entry__descriptor, &m,
			    err) < 0)
		return -1;
	t->mm = (MmEntry *)m;
	if (read_all_msgs(ctx->dirfd, img_task_name(name, "pagemap", t->pid), CR_IMG_PAGEMAP,
			  &pagemap_entry__descriptor, (ProtobufCMessage ***)&t->pagemap, &t->n_pagemap, err) < 0)
		return -1;
	return read_all_msgs(ctx->dirfd, img_task_name(name, "fdinfo", t->pid), CR_IMG_FDINFO,
			     &fd_entry__descriptor, (ProtobufCMessage ***)&t->fds, &t->n_fds, err);
}

static int load_files(struct restore_ctx *ctx, cr_error_t *err)
{
	if (read_all_msgs(ctx->dirfd, IMG_FILES, CR_IMG_FILES, &file_entry__descriptor,
			  (ProtobufCMessage ***)&ctx->files, &ctx->n_files, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_files; i++)
		if (ctx->files[i]->id != i + 1)
			return cr_error(err, 0, "files.img: entry %zu has id %u", i, ctx->files[i]->id);
	return 0;
}

static int validate_task(const struct restore_ctx *ctx, const struct restore_task *t, const InventoryEntry *inv,
			 const PstreeEntry *ps, cr_error_t *err)
{
	if (t->core->pid != (uint32_t)t->pid)
		return cr_error(err, 0, "core-%d.img: describes pid %u", t->pid, t->core->pid);
	if (ps->n_ns_pid == 0 || ps->n_ns_pid > MAX_NS_LEVELS || ps->ns_pid[0] != (uint32_t)t->pid ||
	    ps->n_ns_sid != ps->n_ns_pid || ps->n_ns_pgid != ps->n_ns_pid)
		return cr_error(err, 0, "pstree.img: pid set does not match pid %d", t->pid);
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
	if (t->core->creds == NULL || t->core->n_sigactions > 64)
		return cr_error(err, 0, "core-%d.img: incomplete process state", t->pid);
	return 0;
}

static int load_images(struct restore_ctx *ctx, struct restore_images *im, cr_error_t *err)
{
	ProtobufCMessage *m;
	struct restore_task *t;

	if (cr_img_read_one(ctx->dirfd, IMG_INVENTORY, CR_IMG_INVENTORY, &inventory_entry__descriptor, &m,
			    err) < 0)
		return cr_error_wrap(err, "%s holds no complete dump", ctx->opts->dir);
	im->inv = (InventoryEntry *)m;
	if (check_inventory(im->inv, err) < 0 || verify_all(ctx->dirfd, im->inv, err) < 0)
		return -1;
	if (cr_img_read_one(ctx->dirfd, IMG_PSTREE, CR_IMG_PSTREE, &pstree_entry__descriptor, &m, err) < 0)
		return -1;
	im->pstree = (PstreeEntry *)m;
	if (load_files(ctx, err) < 0)
		return -1;
	ctx->tasks = calloc(1, sizeof(*ctx->tasks));
	if (ctx->tasks == NULL)
		return cr_error(err, ENOMEM, "restore");
	ctx->n_tasks = 1;
	t = &ctx->tasks[0];
	t->pid = (pid_t)im->inv->root_pid;
	t->pstree = im->pstree;
	if (load_task(ctx, t, err) < 0)
		return -1;
	return validate_task(ctx, t, im->inv, im->pstree, err);
}

/* ------------------------------------------------- the child's own setup */

/* Reserved fds sit above every dumped fd; one per file that VMAs map. */
static int plan_reserved_fds(struct restore_task *t, cr_error_t *err)
{
	int base = RESERVED_MIN_BASE, slot = RESERVED_MAPS;

	for (size_t i = 0; i < t->n_fds; i++)
		if ((int)t->fds[i]->fd >= base)
			base = (int)t->fds[i]->fd + 1;
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
	t->tramp_size = (TRAMP_GROUPS + t->core->creds->n_groups * sizeof(uint32_t) + PAGE_SIZE_CR - 1) &
			~(PAGE_SIZE_CR - 1);
	return 0;
}

/* Maps the trampoline at an address free in both cr's layout and the dumped
 * one, with a `syscall` for the restorer to run. */
static int map_trampoline(struct restore_task *t, cr_error_t *err)
{
	struct proc_vma_list mine = { 0 };
	uint64_t (*busy)[2];
	size_t n = 0;
	void *p;

	if (proc_read_maps((pid_t)syscall(SYS_getpid), &mine, err) < 0)
		return -1;
	busy = calloc(mine.n + t->mm->n_vmas + 1, sizeof(*busy));
	if (busy == NULL) {
		proc_vma_list_free(&mine);
		return cr_error(err, ENOMEM, "trampoline");
	}
	for (size_t i = 0; i < mine.n; i++, n++) {
		busy[n][0] = mine.v[i].start;
		busy[n][1] = mine.v[i].end;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++, n++) {
		busy[n][0] = t->mm->vmas[i]->start;
		busy[n][1] = t->mm->vmas[i]->end;
	}
	t->tramp = mem_find_free((const uint64_t (*)[2])busy, n, t->tramp_size);
	free(busy);
	proc_vma_list_free(&mine);
	if (t->tramp == 0)
		return cr_error(err, 0, "no free address for the trampoline");
	p = mmap((void *)(uintptr_t)t->tramp, t->tramp_size, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p != (void *)(uintptr_t)t->tramp)
		return cr_error(err, errno, "map trampoline at 0x%lx", (unsigned long)t->tramp);
	memcpy(p, "\x0f\x05\xcc", 3);   /* syscall; int3 */
	return 0;
}

static int child_setup(struct restore_ctx *ctx, struct restore_task *t, int sync_fd, cr_error_t *err)
{
	if (signals_restore_child(t, err) < 0)
		return -1;
	if (posix_timers_restore_child && posix_timers_restore_child(t, err) < 0)
		return -1;
	if (files_restore_child(ctx, t, sync_fd, err) < 0 ||
	    attrs_restore_child(t, err) < 0 || thread_restore_child(t, err) < 0 || map_trampoline(t, err) < 0)
		return -1;
	return attrs_restore_rlimits(t, err);
}

static __attribute__((noreturn)) void child_main(struct restore_ctx *ctx, struct restore_task *t, int sync_fd)
{
	static struct child_msg msg;
	cr_error_t err = NULL;
	int fd;

	cr_log_capture(msg.warnings, sizeof(msg.warnings));
	if (child_setup(ctx, t, sync_fd, &err) < 0) {
		snprintf(msg.error, sizeof(msg.error), "pid %d: %s", t->pid, err->msg);
		fd = fcntl(t->reserved_base + RESERVED_SYNC, F_GETFD) >= 0 ? t->reserved_base + RESERVED_SYNC
									    : sync_fd;
		if (write(fd, &msg, sizeof(msg)) < 0)
			_exit(126);
		_exit(127);
	}
	msg.ok = 1;
	msg.tramp = t->tramp;
	if (write(t->reserved_base + RESERVED_SYNC, &msg, sizeof(msg)) != sizeof(msg))
		_exit(125);
	for (;;)
		pause();   /* the restorer interrupts this and takes over */
}

/* ------------------------------------------------- the restorer's part */

static int wait_child_ready(struct restore_task *t, int sync_rd, cr_error_t *err)
{
	static struct child_msg msg;
	ssize_t n;

	do
		n = read(sync_rd, &msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n != sizeof(msg))
		return cr_error(err, n < 0 ? errno : 0, "pid %d died while setting itself up", t->pid);
	msg.warnings[sizeof(msg.warnings) - 1] = '\0';
	for (char *line = strtok(msg.warnings, "\n"); line != NULL; line = strtok(NULL, "\n"))
		pr_warn("%s", line);
	if (!msg.ok) {
		msg.error[sizeof(msg.error) - 1] = '\0';
		return cr_error(err, 0, "%s", msg.error);
	}
	t->tramp = msg.tramp;
	return 0;
}

static int close_reserved(struct restore_task *t, cr_error_t *err)
{
	return inject_call(&t->inj, "close cr's fds", SYS_close_range, (uint64_t)t->reserved_base, ~0U, 0, 0, 0, 0,
			   NULL, err);
}

static int transplant(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	bool stopped;

	if (ptrace_seize_stop(t->pid, CR_PTRACE_OPTIONS_RESTORE, &stopped, err) < 0 ||
	    inject_begin(&t->inj, t->pid, t->tramp + TRAMP_CODE, err) < 0)
		return -1;
	if (thread_forget_cr_rseq(t, err) < 0 || mem_restore_layout(ctx, t, err) < 0 ||
	    mem_restore_pages(ctx, t, err) < 0 || mmlayout_restore_injected(ctx, t, err) < 0 ||
	    close_reserved(t, err) < 0 || thread_restore_injected(t, err) < 0 ||
	    timers_restore_injected(t, err) < 0 || attrs_restore_creds(t, err) < 0)
		return -1;
	return thread_restore_final(t, err);
}

static void kill_child(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
		;
}

static int create_and_transplant(struct restore_ctx *ctx, enum pid_backend backend, const PstreeEntry *ps,
				 cr_error_t *err)
{
	struct restore_task *t = &ctx->tasks[0];
	int sync[2];
	pid_t child;

	if (plan_reserved_fds(t, err) < 0)
		return -1;
	if (pipe2(sync, O_CLOEXEC) < 0)
		return cr_error(err, errno, "pipe");
	fflush(NULL);
	child = pidsel_fork(backend, ps->ns_pid, ps->n_ns_pid, (int)t->core->exit_signal, err);
	if (child == 0) {
		close(sync[0]);
		child_main(ctx, t, sync[1]);
	}
	close(sync[1]);
	if (child < 0) {
		close(sync[0]);
		return -1;
	}
	if (wait_child_ready(t, sync[0], err) < 0 || transplant(ctx, t, err) < 0) {
		close(sync[0]);
		kill_child(t->pid);
		return cr_error_wrap(err, "restore of pid %d failed; nothing is left running", t->pid);
	}
	close(sync[0]);
	return 0;
}

static int wait_exit(pid_t pid, int *status, cr_error_t *err)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return cr_error(err, errno, "wait for pid %d", pid);
	}
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

static void free_ctx(struct restore_ctx *ctx, struct restore_images *im)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->core)
			protobuf_c_message_free_unpacked(&t->core->base, NULL);
		if (t->mm)
			protobuf_c_message_free_unpacked(&t->mm->base, NULL);
		for (size_t j = 0; j < t->n_pagemap; j++)
			protobuf_c_message_free_unpacked(&t->pagemap[j]->base, NULL);
		for (size_t j = 0; j < t->n_fds; j++)
			protobuf_c_message_free_unpacked(&t->fds[j]->base, NULL);
		free(t->pagemap);
		free(t->fds);
		free(t->vma_fd);
		free(t->vma_has_pages);
	}
	for (size_t i = 0; i < ctx->n_files; i++)
		protobuf_c_message_free_unpacked(&ctx->files[i]->base, NULL);
	free(ctx->files);
	free(ctx->tasks);
	if (im->inv)
		protobuf_c_message_free_unpacked(&im->inv->base, NULL);
	if (im->pstree)
		protobuf_c_message_free_unpacked(&im->pstree->base, NULL);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
}

int cr_restore(const struct restore_opts *opts, enum pid_backend backend, int *status, cr_error_t *err)
{
	struct restore_ctx ctx = { .opts = opts };
	struct restore_images im = { 0 };
	int ret = -1;

	*status = 0;
	ctx.dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx.dirfd < 0) {
		cr_error(err, errno, "open image directory %s", opts->dir);
		goto out;
	}
	if (load_images(&ctx, &im, err) < 0)
		goto out;
	if (!opts->shell_job && im.inv->shell_job)
		pr_warn("the dump was made with --shell-job; its terminal fds need --shell-job at restore");
	if (pidsel_check_free(ctx.tasks[0].pid, err) < 0)
		goto out;
	if (create_and_transplant(&ctx, backend, im.pstree, err) < 0)
		goto out;
	if (ptrace_release(ctx.tasks[0].pid, ctx.tasks[0].core->stopped ? SIGSTOP : 0, err) < 0) {
		kill_child(ctx.tasks[0].pid);
		goto out;
	}
	pr_info("restored pid %d", ctx.tasks[0].pid);
	ret = opts->detach ? 0 : wait_exit(ctx.tasks[0].pid, status, err);
out:
	free_ctx(&ctx, &im);
	return ret;
}
