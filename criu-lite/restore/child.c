#include "restore/run.h"
#include "state/attrs.h"
#include "state/files.h"
#include "os/log.h"
#include "state/mem.h"
#include "state/signals.h"
#include "state/thread.h"
#include "state/timers.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PMD_SPAN (1ULL << 30)          /* what one page of page middle directory maps */
#define PUD_SPAN (1ULL << 39)          /* ... and one page of page upper directory */
#define PT_SPAN  (2ULL << 20)          /* ... and one page of page table */
#define USER_TOP 0x7ffffffff000ULL

static bool range_free(const uint64_t (*busy)[2], size_t n, uint64_t at, uint64_t len)
{
	for (size_t i = 0; i < n; i++)
		if (at < busy[i][1] + PAGE_SIZE_CR && busy[i][0] < at + len + PAGE_SIZE_CR)
			return false;
	return true;
}

/* How many levels of page tables above the last one cr's layout already
 * has for a mapping at addr: 2, 1 or 0 to allocate fewer in the child. */
static int tables_shared(const struct proc_vma_list *mine, uint64_t addr)
{
	int best = 0;

	for (size_t i = 0; i < mine->n && best < 2; i++) {
		const struct proc_vma *v = &mine->v[i];

		if (v->special == VMA_SPECIAL_VSYSCALL)
			continue;
		if (v->start / PMD_SPAN <= addr / PMD_SPAN && addr / PMD_SPAN <= (v->end - 1) / PMD_SPAN)
			best = 2;
		else if (v->start / PUD_SPAN <= addr / PUD_SPAN && addr / PUD_SPAN <= (v->end - 1) / PUD_SPAN)
			best = 1;
	}
	return best;
}

/* A place a page away from a dumped mapping, in the same 2 MiB: the page
 * tables the trampoline needs are then ones the dumped memory needs too,
 * and unmapping the trampoline at the end frees none.  Page tables come
 * and go at a high price on some hypervisors; of such places, the one
 * that shares the most of them with cr's own layout costs the child
 * least. */
static uint64_t beside_dumped(const uint64_t (*busy)[2], size_t n, const struct proc_vma_list *mine,
			      const struct restore_task *t)
{
	uint64_t len = t->tramp_size, best = 0;
	int best_shared = -1;

	for (size_t i = 0; i < t->mm->n_vmas && best_shared < 2; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		uint64_t at[2] = { e->end + PAGE_SIZE_CR, e->start - PAGE_SIZE_CR - len };
		bool ok[2];

		if (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR ||
		    e->kind == VMA_KIND__VMA_VVAR_VCLOCK)
			continue;
		ok[0] = at[0] + len <= USER_TOP && (at[0] + len - 1) / PT_SPAN == (e->end - 1) / PT_SPAN;
		/* Not in the gap below a stack, where it grows. */
		ok[1] = !e->growsdown && e->start >= PT_SPAN + PAGE_SIZE_CR + len && at[1] / PT_SPAN == e->start / PT_SPAN;
		for (int k = 0; k < 2; k++) {
			int shared;

			if (!ok[k] || !range_free(busy, n, at[k], len))
				continue;
			shared = tables_shared(mine, at[k]);
			if (shared > best_shared) {
				best = at[k];
				best_shared = shared;
			}
		}
	}
	return best;
}

/* An address for the trampoline, free in cr's layout (mine) and in the
 * dumped one. */
static int find_trampoline(const struct proc_vma_list *mine, const struct restore_task *t, uint64_t *out,
			   cr_error_t *err)
{
	cleanup_free uint64_t (*busy)[2] = calloc(mine->n + t->mm->n_vmas + 1, sizeof(*busy));
	size_t n = 0;

	if (busy == NULL)
		return cr_error(err, ENOMEM, "trampoline");
	for (size_t i = 0; i < mine->n; i++, n++) {
		busy[n][0] = mine->v[i].start;
		busy[n][1] = mine->v[i].end;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++, n++) {
		busy[n][0] = t->mm->vmas[i]->start;
		busy[n][1] = t->mm->vmas[i]->end;
	}
	*out = beside_dumped((const uint64_t (*)[2])busy, n, mine, t);
	if (*out == 0)
		*out = mem_find_free((const uint64_t (*)[2])busy, n, t->tramp_size);
	if (*out == 0)
		return cr_error(err, 0, "no free address for the trampoline");
	return 0;
}

int restore_plan_trampolines(struct restore_ctx *ctx, const struct proc_vma_list *cr_layout, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && find_trampoline(cr_layout, &ctx->tasks[i], &ctx->tasks[i].tramp, err) < 0)
			return cr_error_wrap(err, "pid %d", ctx->tasks[i].pid);
	return 0;
}

static void *map_rwx_at(uint64_t addr, uint64_t len)
{
	void *p = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != MAP_FAILED && p != (void *)(uintptr_t)addr) {   /* a kernel that took it as a hint */
		munmap(p, len);
		errno = EEXIST;
		return MAP_FAILED;
	}
	return p;
}

/* Maps the trampoline with a `syscall` for the restorer to run: where the
 * restorer planned it, or, if this process has put something there since
 * it inherited the restorer's layout, wherever its own layout and the
 * dumped one leave room. */
static int map_trampoline(struct restore_task *t, cr_error_t *err)
{
	void *p = t->tramp ? map_rwx_at(t->tramp, t->tramp_size) : MAP_FAILED;

	if (p == MAP_FAILED) {
		struct proc_vma_list mine = { 0 };
		int ret;

		if (proc_read_maps(0, &mine, err) < 0)
			return -1;
		ret = find_trampoline(&mine, t, &t->tramp, err);
		proc_vma_list_free(&mine);
		if (ret < 0)
			return -1;
		p = map_rwx_at(t->tramp, t->tramp_size);
		if (p == MAP_FAILED)
			return cr_error(err, errno, "map trampoline at 0x%lx", (unsigned long)t->tramp);
	}
	memcpy(p, "\x0f\x05\xcc", 3);   /* syscall; int3 */
	memcpy((char *)p + TRAMP_BATCH, inject_batch_code, INJECT_BATCH_CODE_SIZE);
	return 0;
}

static __attribute__((noreturn)) void zombie_main(const struct restore_task *t)
{
	int status = (int)t->pstree->exit_status;
	cr_error_t err = NULL;
	sigset_t set;

	if (attrs_restore_session(t, &err) < 0)
		cr_error_release(&err);
	attrs_join_group_early(t);
	if (WIFSIGNALED(status)) {
		signal(WTERMSIG(status), SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, WTERMSIG(status));
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill((pid_t)syscall(SYS_getpid), WTERMSIG(status));
	}
	_exit(WEXITSTATUS(status));
}

/* A namespace's init comes before the other children that live in that
 * namespace; zombies come last, once their siblings exist. */
static int child_rank(const struct restore_task *c)
{
	return c->zombie ? 2 : (c->pstree->ns_pid[c->pstree->n_ns_pid - 1] == 1 ? 0 : 1);
}

static void sort_children(struct restore_task *t)
{
	for (size_t i = 1; i < t->n_children; i++)
		for (size_t j = i; j > 0 && child_rank(t->children[j]) < child_rank(t->children[j - 1]); j--) {
			struct restore_task *tmp = t->children[j];

			t->children[j] = t->children[j - 1];
			t->children[j - 1] = tmp;
		}
}

/* A child still in the session its parent left (forked before the parent's
 * setsid) must be forked before the parent leads its own. */
static bool in_old_session(const struct restore_task *t, const struct restore_task *c)
{
	return t->pstree->ns_sid[0] == t->pstree->ns_pid[0] && c->pstree->ns_sid[0] != c->pstree->ns_pid[0] &&
	       c->pstree->ns_sid[0] != t->pstree->ns_sid[0];
}

static int fork_children(struct restore_run *run, struct restore_task *t, bool old_session, pid_t *local,
			 cr_error_t *err)
{
	for (size_t i = 0; i < t->n_children; i++) {
		struct restore_task *c = t->children[i];
		uint64_t flags = c->pstree->pidns != t->pstree->pidns_for_children ? CLONE_NEWPID : 0;
		int exit_signal = c->zombie ? SIGCHLD : (int)c->core->exit_signal;
		pid_t pid;

		if (in_old_session(t, c) != old_session)
			continue;
		pid = pidsel_fork(run->backend, c->pstree->ns_pid + c->level_base, task_levels(c), flags,
				  exit_signal, err);
		if (pid < 0)
			return cr_error_wrap(err, "create child %d", c->pid);
		if (pid == 0) {
			if (c->zombie)
				zombie_main(c);
			restore_child_main(run, c, false);
		}
		local[i] = pid;
	}
	return 0;
}

/* Zombie children must be dead before the pending signals are set; their
 * SIGCHLD was not pending in the dump unless the dump says so. */
static int settle_zombies(struct restore_task *t, const pid_t *local, cr_error_t *err)
{
	sigset_t chld;
	struct timespec zero = { 0 };

	if (t->n_children == 0)
		return 0;   /* nothing can have sent SIGCHLD: fork cleared the pending set */
	for (size_t i = 0; i < t->n_children; i++) {
		siginfo_t si;

		if (!t->children[i]->zombie)
			continue;
		if (waitid(P_PID, (id_t)local[i], &si, WEXITED | WNOWAIT) < 0)
			return cr_error(err, errno, "wait for zombie %d", t->children[i]->pid);
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	while (sigtimedwait(&chld, NULL, &zero) > 0)
		;
	return 0;
}

static int own_setup(struct restore_run *run, struct restore_task *t, cr_error_t *err)
{
	if (signals_restore_child(t, err) < 0)
		return -1;
	if (posix_timers_restore_child && posix_timers_restore_child(t, err) < 0)
		return -1;
	if (files_restore_child(&run->ctx, t, err) < 0 || attrs_restore_child(t, err) < 0 ||
	    thread_restore_child(t, err) < 0 || map_trampoline(t, err) < 0 || thread_create_others(t, err) < 0 ||
	    signals_queue_thread_pending(t, err) < 0)
		return -1;
	return attrs_restore_rlimits(t, err);
}

static int child_body(struct restore_run *run, struct restore_task *t, bool is_root, cr_error_t *err)
{
	uint64_t all = ~0ULL;
	cleanup_free pid_t *local = NULL;

	/* A leaf (most processes) touches no heap page here: every page a
	 * fresh child writes first costs a copy. */
	if (t->n_children > 0 && (local = calloc(t->n_children, sizeof(pid_t))) == NULL)
		return cr_error(err, ENOMEM, "child table");
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8) < 0)
		return cr_error(err, errno, "block signals");
	/* Until the restorer seizes it (and PTRACE_O_EXITKILL takes over), a
	 * killed restorer or parent takes this process along. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return cr_error(err, errno, "set the parent-death signal");
	if (is_root && files_setup_root(&run->ctx, run->sync_child_fd, err) < 0)
		return -1;
	if (t->pstree->pidns_for_children != t->pstree->pidns && unshare(CLONE_NEWPID) < 0)
		return cr_error(err, errno, "unshare the pid namespace for children");
	sort_children(t);
	if (files_open_shared(&run->ctx, t, err) < 0 || fork_children(run, t, true, local, err) < 0 ||
	    attrs_restore_session(t, err) < 0 || fork_children(run, t, false, local, err) < 0 ||
	    settle_zombies(t, local, err) < 0)
		return -1;
	return own_setup(run, t, err);
}

void restore_child_main(struct restore_run *run, struct restore_task *t, bool is_root)
{
	static struct child_msg msg;
	cr_error_t err = NULL;
	int sync = run->ctx.reserved_base + RESERVED_SYNC;

	memset(&msg, 0, sizeof(msg));
	cr_log_capture(msg.warnings, sizeof(msg.warnings));
	msg.index = (uint32_t)(t - run->ctx.tasks);
	if (child_body(run, t, is_root, &err) < 0) {
		snprintf(msg.error, sizeof(msg.error), "pid %d: %s", t->pid, err->msg);
		if (fcntl(sync, F_GETFD) < 0)
			sync = run->sync_child_fd;   /* failed before the fd moved */
		if (write(sync, &msg, sizeof(msg)) < 0)
			_exit(126);
		_exit(127);
	}
	msg.ok = 1;
	msg.tramp = t->tramp;
	if (write(sync, &msg, sizeof(msg)) != sizeof(msg))
		_exit(125);
	for (;;)
		pause();   /* the restorer interrupts this and takes over */
}
