#include "dump.h"
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
#include "regs.h"
#include "signals.h"
#include "thread.h"
#include "timers.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#define CR_FORMAT_VERSION 1
#define REAP_WAIT_MS 10000

static int open_image_dir(const char *dir, cr_error_t *err)
{
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return cr_error(err, errno, "create image directory %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open image directory %s", dir);
	if (faccessat(fd, IMG_INVENTORY, F_OK, 0) == 0) {
		close(fd);
		return cr_error(err, EEXIST, "%s already holds a dump (%s); use an empty directory", dir,
				IMG_INVENTORY);
	}
	return fd;
}

/* Removes the image files a failed dump created (never the log). */
static void remove_partial_images(int dirfd)
{
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len > 4 && strcmp(de->d_name + len - 4, ".img") == 0)
			unlinkat(dirfd, de->d_name, 0);
	}
	closedir(d);
}

static int check_single_thread(pid_t pid, cr_error_t *err)
{
	cleanup_free pid_t *tids = NULL;
	size_t n = 0;

	if (proc_list_tasks(pid, &tids, &n, err) < 0)
		return -1;
	if (n != 1)
		return cr_error(err, 0, "pid %d has %zu threads: unsupported kind (multi-threaded processes are "
				"not supported yet)", pid, n);
	return 0;
}

static void init_task_protos(struct dump_ctx *ctx, struct dump_task *t)
{
	ThreadCore *th = arena_new(&ctx->arena, ThreadCore);

	thread_core__init(th);
	t->core = arena_new(&ctx->arena, CoreEntry);
	core_entry__init(t->core);
	t->core->pid = (uint32_t)t->pid;
	t->core->threads = arena_array(&ctx->arena, ThreadCore *, 1);
	t->core->threads[0] = th;
	t->core->n_threads = 1;
	t->mm = arena_new(&ctx->arena, MmEntry);
	mm_entry__init(t->mm);
}

static int find_vdso_syscall(struct dump_task *t, uint64_t *ip, cr_error_t *err)
{
	for (size_t i = 0; i < t->vmas.n; i++)
		if (t->vmas.v[i].special == VMA_SPECIAL_VDSO)
			return inject_find_syscall(t->pid, t->vmas.v[i].start, t->vmas.v[i].end, ip, err);
	return cr_error(err, 0, "pid %d has no vdso; cr needs it to run syscalls in the process", t->pid);
}

/* What only the process itself can tell: read by injected syscalls. */
static int collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	uint64_t ip;
	long addr;

	if (find_vdso_syscall(t, &ip, err) < 0 || inject_begin(&t->inj, t->pid, ip, err) < 0)
		return -1;
	t->inj.orig = t->regs;   /* resume with the restart fixup applied */
	if (inject_call(&t->inj, "map scratch page", SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr, err) < 0)
		return -1;
	t->scratch = (uint64_t)addr;
	if (signals_dump(ctx, t, err) < 0 || thread_dump(ctx, t, err) < 0 || timers_dump(ctx, t, err) < 0 ||
	    mmlayout_dump(ctx, t, err) < 0)
		return -1;
	if (posix_timers_dump && posix_timers_dump(ctx, t, err) < 0)
		return -1;
	if (inject_call(&t->inj, "unmap scratch page", SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0, 0, 0, NULL,
			err) < 0)
		return -1;
	t->scratch = 0;
	return inject_end(&t->inj, err);
}

static int collect_task(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct user_regs_struct raw;

	if (proc_read_status(t->pid, 0, &t->status, err) < 0 || proc_read_stat(t->pid, &t->stat, err) < 0 ||
	    proc_read_maps(t->pid, &t->vmas, err) < 0)
		return -1;
	init_task_protos(ctx, t);
	t->core->exit_signal = t->stat.exit_signal;
	t->core->has_stopped = true;
	t->core->stopped = t->was_stopped;
	if (mem_dump_vmas(ctx, t, err) < 0 || files_dump_fds(ctx, t, err) < 0 || attrs_dump(ctx, t, err) < 0)
		return -1;
	if (ptrace_get_regs(t->pid, &raw, err) < 0)
		return -1;
	t->regs = raw;
	regs_fixup_restart(&t->regs);
	return collect_injected(ctx, t, err);
}

static int write_msgs(int dirfd, const char *name, uint32_t kind, ProtobufCMessage **msgs, size_t n,
		      cr_error_t *err)
{
	struct cr_img *img;

	if (cr_img_create(dirfd, name, kind, &img, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (cr_img_write_msg(img, msgs[i], err) < 0) {
			cr_img_abort(img);
			return -1;
		}
	}
	return cr_img_finish(img, err);
}

static int write_task_images(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	ProtobufCMessage *core = &t->core->base, *mm = &t->mm->base;

	if (write_msgs(ctx->dirfd, img_task_name(name, "core", t->pid), CR_IMG_CORE, &core, 1, err) < 0 ||
	    write_msgs(ctx->dirfd, img_task_name(name, "mm", t->pid), CR_IMG_MM, &mm, 1, err) < 0 ||
	    write_msgs(ctx->dirfd, img_task_name(name, "fdinfo", t->pid), CR_IMG_FDINFO,
		       (ProtobufCMessage **)t->fds, t->n_fds, err) < 0)
		return -1;
	return mem_dump_pages(ctx, t, err);
}

static PstreeEntry *pstree_of(struct dump_ctx *ctx, const struct dump_task *t)
{
	PstreeEntry *p = arena_new(&ctx->arena, PstreeEntry);
	ThreadIds *th = arena_new(&ctx->arena, ThreadIds);
	size_t n = (size_t)t->status.n_levels;

	pstree_entry__init(p);
	thread_ids__init(th);
	p->n_ns_pid = p->n_ns_pgid = p->n_ns_sid = th->n_ns_tid = n;
	p->ns_pid = arena_memdup(&ctx->arena, t->status.ns_pid, n * sizeof(uint32_t));
	p->ns_pgid = arena_memdup(&ctx->arena, t->status.ns_pgid, n * sizeof(uint32_t));
	p->ns_sid = arena_memdup(&ctx->arena, t->status.ns_sid, n * sizeof(uint32_t));
	th->ns_tid = arena_memdup(&ctx->arena, t->status.ns_pid, n * sizeof(uint32_t));
	p->threads = arena_array(&ctx->arena, ThreadIds *, 1);
	p->threads[0] = th;
	p->n_threads = 1;
	return p;
}

static int write_inventory(struct dump_ctx *ctx, const ThreadCore *th, cr_error_t *err)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	ProtobufCMessage *msg = &inv.base;
	struct utsname u;
	struct timespec now;
	uint32_t pid = (uint32_t)ctx->tasks[0].pid;

	uname(&u);
	clock_gettime(CLOCK_REALTIME, &now);
	inv.format_version = CR_FORMAT_VERSION;
	inv.kernel_release = u.release;
	inv.arch = u.machine;
	inv.root_pid = pid;
	inv.page_size = (uint32_t)PAGE_SIZE_CR;
	inv.dump_time_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	inv.compress = ctx->opts->compress;
	inv.shell_job = ctx->opts->shell_job;
	inv.leave_running = ctx->opts->leave_running;
	inv.xfeatures = regs_host_xfeatures();
	inv.xstate_size = (uint32_t)th->xstate.len;
	inv.task_pids = &pid;
	inv.n_task_pids = 1;
	inv.cr_version = "0.1";
	/* Every other image is durable before the inventory vouches for it. */
	if (fsync(ctx->dirfd) < 0)
		return cr_error(err, errno, "fsync image directory");
	if (write_msgs(ctx->dirfd, IMG_INVENTORY, CR_IMG_INVENTORY, &msg, 1, err) < 0)
		return -1;
	if (fsync(ctx->dirfd) < 0)
		return cr_error(err, errno, "fsync image directory");
	return 0;
}

static int write_images(struct dump_ctx *ctx, cr_error_t *err)
{
	struct dump_task *t = &ctx->tasks[0];
	ProtobufCMessage *pst = &pstree_of(ctx, t)->base;

	if (write_task_images(ctx, t, err) < 0 ||
	    write_msgs(ctx->dirfd, IMG_PSTREE, CR_IMG_PSTREE, &pst, 1, err) < 0 ||
	    write_msgs(ctx->dirfd, IMG_FILES, CR_IMG_FILES, (ProtobufCMessage **)ctx->files.v, ctx->files.n,
		       err) < 0)
		return -1;
	return write_inventory(ctx, t->core->threads[0], err);
}

/* Puts a task back as it was: registers, signal mask, running. */
static void release_task(struct dump_task *t)
{
	cr_error_t err = NULL;

	if (!t->seized)
		return;
	if (t->scratch && t->inj.active)
		inject_syscall(&t->inj, SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0, 0, 0, &(long){ 0 }, &err);
	cr_error_release(&err);
	if (t->inj.active && inject_end(&t->inj, &err) < 0) {
		pr_warn("pid %d: %s", t->pid, err->msg);
		cr_error_release(&err);
	}
	/* Detaching from an injection stop resumes the task: a task that was
	 * stopped gets its SIGSTOP back. */
	if (ptrace_release(t->pid, t->was_stopped ? SIGSTOP : 0, &err) < 0) {
		pr_warn("%s", err->msg);
		cr_error_release(&err);
	}
	t->seized = false;
}

static void wait_until_reaped(pid_t pid)
{
	struct timespec pause = { .tv_nsec = 1000000 };

	for (int ms = 0; ms < REAP_WAIT_MS; ms++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return;
		nanosleep(&pause, NULL);
	}
	pr_warn("pid %d is dead but its parent has not reaped it yet; a restore will fail until it does", pid);
}

static void kill_task(struct dump_task *t)
{
	int status;

	kill(t->pid, SIGKILL);
	while (waitpid(t->pid, &status, __WALL) < 0 && errno == EINTR)
		;
	t->seized = false;
	wait_until_reaped(t->pid);
}

static int seize(struct dump_task *t, cr_error_t *err)
{
	if (kill(t->pid, 0) < 0)
		return cr_error(err, errno, "no process with pid %d", t->pid);
	if (t->pid == getpid())
		return cr_error(err, 0, "cr cannot dump itself (pid %d)", t->pid);
	if (check_single_thread(t->pid, err) < 0)
		return -1;
	if (ptrace_seize_stop(t->pid, CR_PTRACE_OPTIONS_DUMP, &t->was_stopped, err) < 0)
		return -1;
	t->seized = true;
	return check_single_thread(t->pid, err);
}

static void free_ctx(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		proc_status_free(&ctx->tasks[i].status);
		proc_vma_list_free(&ctx->tasks[i].vmas);
	}
	free(ctx->tasks);
	arena_free(&ctx->arena);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
}

int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err)
{
	struct dump_ctx ctx = { .opts = opts, .dirfd = -1 };
	struct dump_task *t;
	int ret = -1;

	ctx.tasks = calloc(1, sizeof(*ctx.tasks));
	if (ctx.tasks == NULL)
		return cr_error(err, ENOMEM, "dump");
	ctx.n_tasks = 1;
	t = &ctx.tasks[0];
	t->pid = pid;
	ctx.dirfd = open_image_dir(opts->dir, err);
	if (ctx.dirfd < 0)
		goto out;
	if (seize(t, err) < 0 || collect_task(&ctx, t, err) < 0 || write_images(&ctx, err) < 0) {
		remove_partial_images(ctx.dirfd);
		release_task(t);
		goto out;
	}
	if (opts->leave_running)
		release_task(t);
	else
		kill_task(t);
	pr_info("dumped pid %d into %s", pid, opts->dir);
	ret = 0;
out:
	free_ctx(&ctx);
	if (ret < 0 && kill(pid, 0) == 0)
		cr_error_wrap(err, "dump of pid %d failed (the process is left running)", pid);
	else if (ret < 0)
		cr_error_wrap(err, "dump of pid %d failed", pid);
	return ret;
}
