#include "restore-internal.h"
#include "attrs.h"
#include "files.h"
#include "log.h"
#include "mem.h"
#include "signals.h"
#include "thread.h"
#include "timers.h"
#include "util.h"

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
	cleanup_free pid_t *local = calloc(t->n_children + 1, sizeof(pid_t));

	if (local == NULL)
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
