#include "dump/dump.h"
#include "state/attrs.h"
#include "state/files.h"
#include "img/image.h"
#include "img/kinds.h"
#include "inventory.pb-c.h"
#include "os/log.h"
#include "state/mem.h"
#include "state/mmlayout.h"
#include "os/progress.h"
#include "os/ptrace.h"
#include "pstree.pb-c.h"
#include "os/regs.h"
#include "state/signals.h"
#include "state/thread.h"
#include "state/timers.h"
#include "dump/supervise.h"
#include "os/util.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#define REAP_WAIT_MS 10000

static int open_image_dir(const char *dir, cr_error_t *err)
{
	char inventory[IMG_NAME_MAX];
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return cr_error(err, errno, "create image directory %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open image directory %s", dir);
	if (faccessat(fd, img_name(inventory, CR_IMG_INVENTORY, 0), F_OK, 0) == 0) {
		close(fd);
		return cr_error(err, EEXIST, "%s already holds a dump (%s); use an empty directory", dir,
				inventory);
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

static int read_ns_id(pid_t pid, const char *name, uint64_t *id, cr_error_t *err)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink %s", path);
	link[n] = '\0';
	if (sscanf(link, "pid:[%" SCNu64 "]", id) != 1)
		return cr_error(err, 0, "%s: unexpected '%s'", path, link);
	return 0;
}

static void init_task_protos(struct dump_ctx *ctx, struct dump_task *t)
{
	t->core = arena_new(&ctx->arena, CoreEntry);
	core_entry__init(t->core);
	t->core->pid = (uint32_t)t->pid;
	t->core->threads = arena_array(&ctx->arena, ThreadCore *, t->n_threads);
	t->core->n_threads = t->n_threads;
	for (size_t i = 0; i < t->n_threads; i++) {
		ThreadCore *tc = arena_new(&ctx->arena, ThreadCore);

		thread_core__init(tc);
		t->threads[i].core = tc;
		t->core->threads[i] = tc;
	}
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

static int begin_injection(struct dump_task *t, uint64_t ip, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct dump_thread *th = &t->threads[i];

		if (inject_begin(&th->inj, th->tid, ip, err) < 0)
			return -1;
		th->inj.orig = th->regs;   /* resume with the restart fixup applied */
	}
	return 0;
}

static int end_injection(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (inject_end(&t->threads[i].inj, err) < 0)
			return -1;
	return 0;
}

static int write_batch_code(struct dump_task *t, cr_error_t *err)
{
	if (remote_write(t->pid, t->scratch + SCRATCH_BATCH, inject_batch_code, INJECT_BATCH_CODE_SIZE, err) < 0)
		return cr_error_wrap(err, "write the batch loop");
	return 0;
}

/* What only the process itself can tell: read by injected syscalls. */
static int collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	uint64_t ip;
	long addr;

	if (find_vdso_syscall(t, &ip, err) < 0 || begin_injection(t, ip, err) < 0)
		return -1;
	if (inject_call(t->inj, "map scratch pages", SYS_mmap, 0, SCRATCH_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr, err) < 0)
		return -1;
	t->scratch = (uint64_t)addr;
	if (write_batch_code(t, err) < 0)
		return -1;
	if (signals_dump(ctx, t, err) < 0 || timers_dump(ctx, t, err) < 0 || mmlayout_dump(ctx, t, err) < 0)
		return -1;
	if (posix_timers_dump && posix_timers_dump(ctx, t, err) < 0)
		return -1;
	if (attrs_dump_injected(t, err) < 0)
		return -1;
	for (size_t i = 0; i < t->n_threads; i++)
		if (thread_dump(ctx, t, &t->threads[i], err) < 0)
			return cr_error_wrap(err, "thread %d", t->threads[i].tid);
	if (inject_call(t->inj, "unmap scratch page", SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0, 0, 0, NULL,
			err) < 0)
		return -1;
	t->scratch = 0;
	return end_injection(t, err);
}

static int collect_threads(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct dump_thread *th = &t->threads[i];

		if (proc_read_status(t->pid, th->tid, &th->status, err) < 0 ||
		    ptrace_get_regs(th->tid, &th->regs, err) < 0)
			return -1;
		regs_fixup_restart(&th->regs);
	}
	return 0;
}

static struct dump_task *find_task(struct dump_ctx *ctx, pid_t pid);

/* A zombie has no namespaces left to show: it lived in its parent's
 * namespace for children, unless it was that namespace's init. */
static void zombie_pidns(struct dump_ctx *ctx, struct dump_task *t)
{
	const struct dump_task *parent = find_task(ctx, t->ppid);

	t->pidns = parent ? parent->pidns_for_children : 0;
	if (t->status.n_levels > 0 && t->status.ns_pid[t->status.n_levels - 1] == 1)
		t->pidns ^= (uint64_t)t->pid << 32;   /* an init of its own, dead namespace */
	t->pidns_for_children = t->pidns;
}

static int collect_task(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	if (proc_read_status(t->pid, 0, &t->status, err) < 0 || proc_read_stat(t->pid, &t->stat, err) < 0)
		return -1;
	if (t->zombie) {
		zombie_pidns(ctx, t);
		return 0;
	}
	if (read_ns_id(t->pid, "pid", &t->pidns, err) < 0 ||
	    read_ns_id(t->pid, "pid_for_children", &t->pidns_for_children, err) < 0)
		return -1;
	if (proc_read_maps(t->pid, &t->vmas, err) < 0)
		return -1;
	init_task_protos(ctx, t);
	t->core->exit_signal = t->stat.exit_signal;
	t->core->has_stopped = true;
	t->core->stopped = t->was_stopped;
	if (mem_dump_vmas(ctx, t, err) < 0 || files_dump_fds(ctx, t, err) < 0 || attrs_dump(ctx, t, err) < 0 ||
	    collect_threads(t, err) < 0)
		return -1;
	return collect_injected(ctx, t, err);
}

static int write_msgs(int dirfd, uint32_t kind, pid_t pid, ProtobufCMessage **msgs, size_t n, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	struct cr_img *img;

	if (cr_img_create(dirfd, img_name(name, kind, pid), kind, &img, err) < 0)
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
	ProtobufCMessage *core = &t->core->base, *mm = &t->mm->base;

	if (write_msgs(ctx->dirfd, CR_IMG_CORE, t->pid, &core, 1, err) < 0 ||
	    write_msgs(ctx->dirfd, CR_IMG_MM, t->pid, &mm, 1, err) < 0 ||
	    write_msgs(ctx->dirfd, CR_IMG_FDINFO, t->pid, (ProtobufCMessage **)t->fds, t->n_fds, err) < 0)
		return -1;
	return mem_dump_pages(ctx, t, err);
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

static int write_inventory(struct dump_ctx *ctx, cr_error_t *err)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	ProtobufCMessage *msg = &inv.base;
	struct utsname u;
	struct timespec now;
	uint32_t *pids = arena_array(&ctx->arena, uint32_t, ctx->n_tasks);

	uname(&u);
	clock_gettime(CLOCK_REALTIME, &now);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			pids[inv.n_task_pids++] = (uint32_t)ctx->tasks[i].pid;
	inv.format_version = CR_FORMAT_VERSION;
	inv.kernel_release = u.release;
	inv.arch = u.machine;
	inv.root_pid = (uint32_t)ctx->tasks[0].pid;
	inv.page_size = (uint32_t)PAGE_SIZE_CR;
	inv.dump_time_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	inv.compress = ctx->opts->compress;
	inv.shell_job = ctx->opts->shell_job;
	inv.leave_running = ctx->opts->leave_running;
	inv.xfeatures = regs_host_xfeatures();
	inv.xstate_size = (uint32_t)ctx->tasks[0].core->threads[0]->xstate.len;
	inv.task_pids = pids;
	inv.cr_version = "0.1";
	/* Every other image is durable before the inventory vouches for it. */
	if (cr_img_sync_dir(ctx->dirfd, err) < 0 ||
	    write_msgs(ctx->dirfd, CR_IMG_INVENTORY, 0, &msg, 1, err) < 0)
		return -1;
	return cr_img_sync_dir(ctx->dirfd, err);
}

/* Resident memory of the tree: what the page data will roughly come to. */
static uint64_t resident_bytes(const struct dump_ctx *ctx)
{
	uint64_t total = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		char path[64];
		unsigned long size, resident;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/statm", ctx->tasks[i].pid);
		f = fopen(path, "re");
		if (f != NULL && fscanf(f, "%lu %lu", &size, &resident) == 2)
			total += (uint64_t)resident * PAGE_SIZE_CR;
		if (f != NULL)
			fclose(f);
	}
	return total;
}

static int write_all_images(struct dump_ctx *ctx, ProtobufCMessage **pst, cr_error_t *err);

static int write_images(struct dump_ctx *ctx, cr_error_t *err)
{
	ProtobufCMessage **pst = arena_array(&ctx->arena, ProtobufCMessage *, ctx->n_tasks);
	int ret;

	progress_start("dump", resident_bytes(ctx), 1);
	ret = write_all_images(ctx, pst, err);
	progress_done();
	return ret;
}

static int write_all_images(struct dump_ctx *ctx, ProtobufCMessage **pst, cr_error_t *err)
{

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (!ctx->tasks[i].zombie && write_task_images(ctx, &ctx->tasks[i], err) < 0)
			return -1;
		pst[i] = &pstree_of(ctx, &ctx->tasks[i])->base;
	}
	if (write_msgs(ctx->dirfd, CR_IMG_PSTREE, 0, pst, ctx->n_tasks, err) < 0 ||
	    write_msgs(ctx->dirfd, CR_IMG_FILES, 0, (ProtobufCMessage **)ctx->files.v, ctx->files.n,
		       err) < 0)
		return -1;
	return write_inventory(ctx, err);
}

/* Puts a process back as it was: registers, signal mask, running (or
 * stopped, if it was). */
static void release_task(struct dump_task *t)
{
	cr_error_t err = NULL;

	if (t->scratch && t->inj && t->inj->active)
		inject_syscall(t->inj, SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0, 0, 0, &(long){ 0 }, &err);
	cr_error_release(&err);
	for (size_t i = 0; i < t->n_threads; i++) {
		struct dump_thread *th = &t->threads[i];

		if (!th->seized)
			continue;
		if (th->inj.active && inject_end(&th->inj, &err) < 0) {
			pr_warn("task %d: %s", th->tid, err->msg);
			cr_error_release(&err);
		}
		/* Detaching from an injection stop resumes the task: a process
		 * that was stopped gets its SIGSTOP back. */
		if (ptrace_release(th->tid, (i == 0 && t->was_stopped) ? SIGSTOP : 0, &err) < 0) {
			pr_warn("%s", err->msg);
			cr_error_release(&err);
		}
		th->seized = false;
	}
}

/* One deadline for the whole tree: killed orphans are reaped by whoever
 * adopts them, which on some hosts (a slow PID 1) takes seconds. */
static void wait_until_reaped(const struct dump_ctx *ctx)
{
	struct timespec pause = { .tv_nsec = 1000000 };
	size_t i = 0;

	for (int ms = 0; i < ctx->n_tasks && ms < REAP_WAIT_MS;) {
		if (kill(ctx->tasks[i].pid, 0) < 0 && errno == ESRCH) {
			i++;
			continue;
		}
		nanosleep(&pause, NULL);
		ms++;
	}
	for (; i < ctx->n_tasks; i++)
		if (kill(ctx->tasks[i].pid, 0) == 0)
			pr_warn("pid %d is dead but has not been reaped yet; a restore will fail until it is",
				ctx->tasks[i].pid);
}

static size_t reap_traced(struct dump_ctx *ctx)
{
	size_t left = 0;
	int status;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];

		for (size_t j = 0; j < t->n_threads; j++) {
			pid_t r;

			if (!t->threads[j].seized)
				continue;
			r = waitpid(t->threads[j].tid, &status, __WALL | WNOHANG);
			if (r == t->threads[j].tid || (r < 0 && errno == ECHILD))
				t->threads[j].seized = false;
			else
				left++;
		}
	}
	return left;
}

/* Kills the tree and collects every tracee's death.  Deaths come in an
 * order the kernel decides (a group leader after its threads, a namespace's
 * init after everything in it), so take whichever is ready. */
static void kill_tree(struct dump_ctx *ctx)
{
	struct timespec pause = { .tv_nsec = 1000000 };

	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			kill(ctx->tasks[i].pid, SIGKILL);
	for (int ms = 0; reap_traced(ctx) > 0 && ms < REAP_WAIT_MS; ms++)
		nanosleep(&pause, NULL);
	wait_until_reaped(ctx);
}

/* ---------------------------------------------------------- the freeze */

static struct dump_task *find_task(struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

static int add_task(struct dump_ctx *ctx, pid_t pid, pid_t ppid, cr_error_t *err)
{
	struct dump_task *bigger = realloc(ctx->tasks, (ctx->n_tasks + 1) * sizeof(*bigger));

	if (bigger == NULL)
		return cr_error(err, ENOMEM, "process table");
	ctx->tasks = bigger;
	memset(&ctx->tasks[ctx->n_tasks], 0, sizeof(ctx->tasks[0]));
	ctx->tasks[ctx->n_tasks].pid = pid;
	ctx->tasks[ctx->n_tasks].ppid = ppid;
	ctx->n_tasks++;
	return 0;
}

static bool has_thread(const struct dump_task *t, pid_t tid)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (t->threads[i].tid == tid)
			return true;
	return false;
}

static int seize_thread(struct dump_task *t, pid_t tid, bool *seized, cr_error_t *err)
{
	struct dump_thread *bigger = realloc(t->threads, (t->n_threads + 1) * sizeof(*bigger));
	bool stopped;

	*seized = false;
	if (bigger == NULL)
		return cr_error(err, ENOMEM, "thread table");
	t->threads = bigger;
	if (ptrace_seize_stop(tid, CR_PTRACE_OPTIONS_DUMP, &stopped, err) < 0) {
		if (kill(tid, 0) < 0 && errno == ESRCH && tid != t->pid) {
			cr_error_release(err);   /* the thread exited meanwhile */
			return 0;
		}
		return -1;
	}
	memset(&t->threads[t->n_threads], 0, sizeof(t->threads[0]));
	t->threads[t->n_threads].tid = tid;
	t->threads[t->n_threads].seized = true;
	t->n_threads++;
	if (tid == t->pid)
		t->was_stopped = stopped;
	*seized = true;
	return 0;
}

static int task_state(pid_t pid, char *state, cr_error_t *err)
{
	struct proc_status st;

	if (proc_read_status(pid, 0, &st, err) < 0)
		return -1;
	*state = st.state;
	proc_status_free(&st);
	return 0;
}

/* Seizes every thread of t not seized yet; *changed if there was one. */
static int freeze_threads(struct dump_task *t, bool *changed, cr_error_t *err)
{
	cleanup_free pid_t *tids = NULL;
	size_t n = 0;

	if (proc_list_tasks(t->pid, &tids, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		bool seized;

		if (has_thread(t, tids[i]))
			continue;
		if (seize_thread(t, tids[i], &seized, err) < 0)
			return -1;
		*changed |= seized;
	}
	return 0;
}

static int add_children(struct dump_ctx *ctx, size_t idx, bool *changed, cr_error_t *err)
{
	for (size_t j = 0; j < ctx->tasks[idx].n_threads; j++) {
		pid_t pid = ctx->tasks[idx].pid;
		char path[96];
		cleanup_free char *text = NULL;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, ctx->tasks[idx].threads[j].tid);
		if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
			return -1;
		for (char *tok = strtok(text, " \n"); tok != NULL; tok = strtok(NULL, " \n")) {
			pid_t child = (pid_t)strtol(tok, NULL, 10);

			if (child <= 0 || find_task(ctx, child) != NULL)
				continue;
			if (add_task(ctx, child, pid, err) < 0)
				return -1;
			*changed = true;
		}
	}
	return 0;
}

static int freeze_one(struct dump_ctx *ctx, size_t idx, bool *changed, cr_error_t *err)
{
	struct dump_task *t = &ctx->tasks[idx];
	char state;

	if (t->zombie)
		return 0;
	if (cr_should_stop())
		return cr_error(err, EINTR, "interrupted");
	if (t->n_threads == 0) {
		if (task_state(t->pid, &state, err) < 0)
			return -1;
		if (state == 'Z') {
			if (idx == 0)
				return cr_error(err, 0, "pid %d is a zombie: there is nothing to dump", t->pid);
			t->zombie = true;
			return 0;
		}
	}
	if (freeze_threads(t, changed, err) < 0)
		return -1;
	return add_children(ctx, idx, changed, err);
}

/* Seizes every thread of every process of the tree, again and again until
 * a whole pass finds nothing new: a frozen task cannot fork any more. */
static int freeze_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	bool changed = true;

	while (changed) {
		changed = false;
		for (size_t i = 0; i < ctx->n_tasks; i++)
			if (freeze_one(ctx, i, &changed, err) < 0)
				return cr_error_wrap(err, "freeze pid %d", ctx->tasks[i].pid);
	}
	return 0;
}

/* The main thread first, so threads[0] and t->inj are the process's. */
static void order_threads(struct dump_task *t)
{
	for (size_t i = 1; i < t->n_threads; i++) {
		if (t->threads[i].tid == t->pid) {
			struct dump_thread tmp = t->threads[0];

			t->threads[0] = t->threads[i];
			t->threads[i] = tmp;
		}
	}
	t->inj = t->n_threads ? &t->threads[0].inj : NULL;
}

static int check_root(pid_t pid, cr_error_t *err)
{
	if (kill(pid, 0) < 0)
		return cr_error(err, errno, "no process with pid %d", pid);
	if (pid == getpid())
		return cr_error(err, 0, "cr cannot dump itself (pid %d)", pid);
	return 0;
}

static int collect_all(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (cr_should_stop())
			return cr_error(err, EINTR, "interrupted");
		order_threads(&ctx->tasks[i]);
		if (collect_task(ctx, &ctx->tasks[i], err) < 0)
			return -1;
	}
	return files_check_sharing(ctx, err);
}

static void free_ctx(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];

		proc_status_free(&t->status);
		proc_vma_list_free(&t->vmas);
		for (size_t j = 0; j < t->n_threads; j++)
			proc_status_free(&t->threads[j].status);
		free(t->threads);
		inject_batch_free(&t->batch);
	}
	free(ctx->tasks);
	free(ctx->seen);
	mem_page_bufs_free(ctx->page_bufs);
	arena_free(&ctx->arena);
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
}

static void release_all(struct dump_ctx *ctx)
{
	cr_interrupt_armed = 0;   /* releasing must finish, signal or not */
	for (size_t i = 0; i < ctx->n_tasks; i++)
		release_task(&ctx->tasks[i]);
}

int cr_dump(pid_t pid, const struct dump_opts *opts, cr_error_t *err)
{
	struct dump_ctx ctx = { .opts = opts, .dirfd = -1 };
	int ret = -1;

	if (check_root(pid, err) < 0)
		goto out;
	ctx.dirfd = open_image_dir(opts->dir, err);
	if (ctx.dirfd < 0 || add_task(&ctx, pid, 0, err) < 0)
		goto out;
	pr_debug("dump of pid %d starts", pid);
	if (freeze_tree(&ctx, err) < 0 || (pr_debug("%zu processes frozen", ctx.n_tasks), 0) ||
	    collect_all(&ctx, err) < 0 || (pr_debug("state collected"), 0) || write_images(&ctx, err) < 0) {
		remove_partial_images(ctx.dirfd);
		release_all(&ctx);
		goto out;
	}
	pr_debug("images written");
	cr_interrupt_armed = 0;   /* the dump is complete: finish it */
	if (opts->leave_running)
		release_all(&ctx);
	else
		kill_tree(&ctx);
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
