#include "restore/restore.h"
#include "restore/run.h"
#include "state/attrs.h"
#include "os/log.h"
#include "state/mem.h"
#include "state/mmlayout.h"
#include "os/progress.h"
#include "os/ptrace.h"
#include "state/thread.h"
#include "state/timers.h"
#include "os/util.h"

#include <errno.h>
#include <linux/sched.h>
#include <stdio.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define READY_TIMEOUT_MS 60000

/* --------------------------------------------------------- preparation */

static int check_pids_free(const struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const PstreeEntry *p = ctx->tasks[i].pstree;

		if (pidsel_check_free((pid_t)p->ns_pid[0], err) < 0)
			return -1;
		for (size_t j = 1; j < p->n_threads; j++)
			if (pidsel_check_free((pid_t)p->threads[j]->ns_tid[0], err) < 0)
				return cr_error_wrap(err, "thread of pid %u", p->ns_pid[0]);
	}
	return 0;
}

/* ns_last_pid sets one level in the caller's namespace: refuse a tree that
 * needs more before anything is forked. */
static int check_backend(const struct restore_run *run, cr_error_t *err)
{
	if (run->backend != PID_BACKEND_NS_LAST_PID)
		return 0;
	if (run->ctx.opts->new_pidns)
		return cr_error(err, 0, "--pid-backend=ns_last_pid cannot create a pid namespace's init; use clone3");
	for (size_t i = 0; i < run->ctx.n_tasks; i++) {
		const struct restore_task *t = &run->ctx.tasks[i];

		if (task_levels(t) != 1 || t->pstree->n_threads > 1)
			return cr_error(err, 0, "pid %d %s; --pid-backend=ns_last_pid sets only one pid level of a "
					"process (use clone3)", t->pid, task_levels(t) != 1 ?
					"lives in a nested pid namespace" : "has threads");
	}
	return 0;
}

/* The stash and reserved fds sit above every dumped fd. */
static void raise_nofile(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* A seqpacket socket: each child's message arrives whole, and SO_PASSCRED
 * tells the sender's pid as this namespace sees it. */
static int open_sync(int fds[2], cr_error_t *err)
{
	int one = 1;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return cr_error(err, errno, "socketpair");
	if (setsockopt(fds[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return cr_error(err, errno, "SO_PASSCRED");
	return 0;
}

/* ----------------------------------------------------- waiting for ready */

static int recv_msg(int fd, struct child_msg *msg, pid_t *sender, cr_error_t *err)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { .iov_base = msg, .iov_len = sizeof(*msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, READY_TIMEOUT_MS) <= 0)
		return cr_error(err, ETIMEDOUT, "a restored process did not report back");
	n = recvmsg(fd, &mh, 0);
	if (n != (ssize_t)sizeof(*msg))
		return cr_error(err, n < 0 ? errno : 0, "a restored process died while setting itself up");
	*sender = 0;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			*sender = ((struct ucred *)CMSG_DATA(c))->pid;
	return 0;
}

static int wait_all_ready(struct restore_run *run, int fd, cr_error_t *err)
{
	static struct child_msg msg;

	for (size_t got = 0; got < run->n_live; got++) {
		struct restore_task *t;
		pid_t sender = 0;

		if (recv_msg(fd, &msg, &sender, err) < 0)
			return -1;
		msg.warnings[sizeof(msg.warnings) - 1] = '\0';
		for (char *line = strtok(msg.warnings, "\n"); line != NULL; line = strtok(NULL, "\n"))
			pr_warn("%s", line);
		if (!msg.ok) {
			msg.error[sizeof(msg.error) - 1] = '\0';
			return cr_error(err, 0, "%s", msg.error);
		}
		if (msg.index >= run->ctx.n_tasks || run->ctx.tasks[msg.index].zombie)
			return cr_error(err, 0, "a restored process reported a bad index %u", msg.index);
		t = &run->ctx.tasks[msg.index];
		t->host_pid = sender ? sender : t->pid;
		t->tramp = msg.tramp;
	}
	return 0;
}

/* --------------------------------------------------------- transplant */

/* A thread's tid as the restorer sees it, found by its innermost tid
 * (with --new-pidns only the inner levels were chosen). */
static int host_tid(const struct restore_task *t, size_t i, pid_t *out, cr_error_t *err)
{
	const ThreadIds *ids = t->pstree->threads[i];
	cleanup_free pid_t *tids = NULL;
	size_t n = 0;

	if (i == 0 || t->level_base == 0) {
		*out = i == 0 ? t->host_pid : (pid_t)ids->ns_tid[0];
		return 0;
	}
	if (proc_list_tasks(t->host_pid, &tids, &n, err) < 0)
		return -1;
	for (size_t k = 0; k < n; k++) {
		struct proc_status st;
		bool match;

		if (proc_read_status(t->host_pid, tids[k], &st, err) < 0)
			return -1;
		match = st.n_levels > 0 && (uint32_t)st.ns_pid[st.n_levels - 1] == ids->ns_tid[ids->n_ns_tid - 1];
		proc_status_free(&st);
		if (match) {
			*out = tids[k];
			return 0;
		}
	}
	return cr_error(err, 0, "pid %d: thread %u was not created", t->pid, ids->ns_tid[ids->n_ns_tid - 1]);
}

static int seize_threads(struct restore_task *t, cr_error_t *err)
{
	t->threads = calloc(t->core->n_threads, sizeof(*t->threads));
	if (t->threads == NULL)
		return cr_error(err, ENOMEM, "thread table");
	t->n_threads = t->core->n_threads;
	t->inj = &t->threads[0].inj;
	for (size_t i = 0; i < t->n_threads; i++) {
		struct restore_thread *th = &t->threads[i];
		bool stopped;

		th->core = t->core->threads[i];
		if (host_tid(t, i, &th->tid, err) < 0 || ptrace_seize_stop(th->tid, CR_PTRACE_OPTIONS_RESTORE, &stopped, err) < 0 ||
		    inject_begin(&th->inj, th->tid, t->tramp + TRAMP_CODE, err) < 0)
			return -1;
	}
	return 0;
}

/* The group a process that is not its group's leader joins, as the
 * process itself names it (0: none); *outside says it is the
 * restorer's group rather than one led inside the tree. */
static uint32_t group_to_join(const struct restore_run *run, const struct restore_task *t, bool *outside)
{
	const PstreeEntry *p = t->pstree;
	bool inside = false;

	*outside = false;
	if (p->ns_pgid[0] == p->ns_pid[0] || p->ns_sid[0] == p->ns_pid[0])
		return 0;
	for (size_t i = 0; i < run->ctx.n_tasks && !inside; i++)
		inside = run->ctx.tasks[i].pstree->ns_pid[0] == p->ns_pgid[0];
	if (inside)
		return p->ns_pgid[p->n_ns_pgid - 1];   /* 0: the leader is outside its namespace, inherited */
	if (p->n_ns_pid != 1 || run->ctx.opts->new_pidns)
		return 0;
	*outside = true;
	return (uint32_t)run->restorer_pgid;
}

/* The same group as the restorer sees it, or 0 where pid namespaces hide
 * it (in a fresh namespace the dump's outer levels are not the
 * restorer's). */
static pid_t group_seen_here(const struct restore_run *run, const struct restore_task *t, bool outside)
{
	if (outside)
		return run->restorer_pgid;
	if (run->ctx.opts->new_pidns || t->level_base != 0)
		return 0;
	return (pid_t)t->pstree->ns_pgid[0];
}

/* A process that is not its group's leader joins the group now that every
 * process exists; a group outside the tree is the restorer's.  One that
 * is in it already (inherited from its parent) is left alone: setpgid
 * would change nothing. */
static void queue_join_group(struct restore_run *run, struct restore_task *t)
{
	bool outside;
	uint32_t want = group_to_join(run, t, &outside);
	pid_t here;

	if (want == 0)
		return;
	here = group_seen_here(run, t, outside);
	if (here > 0 && getpgid(t->host_pid) == here)
		return;
	inject_batch_add(&t->batch, "join process group", SYS_setpgid, 0, want, 0, 0, 0, 0);
}

/* Everything of the process's own state that the main thread can set in
 * one batch once its memory is in place: queued now, it runs with the
 * protections mem_restore_pages sets.  Credentials come last but for the
 * parent-death signal, which a change of credentials clears. */
static int queue_process_state(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (mmlayout_queue(ctx, t, err) < 0)
		return -1;
	inject_batch_add(&t->batch, "close cr's fds", SYS_close_range, (uint64_t)t->reserved_base, ~0U, 0, 0, 0, 0);
	if (timers_queue(t, err) < 0 || thread_queue_state(t, &t->threads[0], err) < 0 ||
	    attrs_queue_creds(t, err) < 0)
		return -1;
	attrs_queue_pdeath(t);
	return 0;
}

/* The other threads' own state, each in a batch run by the thread itself. */
static int restore_other_threads(struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 1; i < t->n_threads; i++)
		if (thread_queue_state(t, &t->threads[i], err) < 0 || attrs_queue_creds(t, err) < 0 ||
		    restore_batch_run(t, &t->threads[i].inj, err) < 0)
			return cr_error_wrap(err, "thread %d", t->threads[i].tid);
	return 0;
}

/* Four round trips for a single-threaded process: the seize, the layout,
 * the state (after the pages are written), and the trampoline's unmap. */
static int transplant(struct restore_run *run, struct restore_task *t, cr_error_t *err)
{
	struct restore_ctx *ctx = &run->ctx;

	if (seize_threads(t, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	queue_join_group(run, t);
	if (thread_queue_forget_cr_rseq(t, err) < 0 || mem_restore_layout(ctx, t, &run->cr_layout, err) < 0 ||
	    queue_process_state(ctx, t, err) < 0 || mem_restore_pages(ctx, t, err) < 0 ||
	    restore_batch_run(t, t->inj, err) < 0 || restore_other_threads(t, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	return thread_restore_final(t, err);
}

static int release_all(struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; j < t->n_threads; j++) {
			int sig = (j == 0 && t->core->stopped) ? SIGSTOP : 0;

			if (ptrace_release(t->threads[j].tid, sig, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ failure */

/* Kills every process this restore created and reaps them (cr is their
 * subreaper meanwhile). */
static void kill_created(struct restore_run *run, pid_t root)
{
	int status;

	for (size_t i = 0; i < run->ctx.n_tasks; i++) {
		pid_t pid = run->ctx.tasks[i].host_pid ? run->ctx.tasks[i].host_pid : run->ctx.tasks[i].pid;

		if (pid > 0 && pid != root)
			kill(pid, SIGKILL);
	}
	if (root > 0)
		kill(root, SIGKILL);
	while (waitpid(-1, &status, __WALL) > 0 || errno == EINTR)
		;
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

/* pid 1 of a fresh namespace whose root was not its init: forks the root
 * with its pid there, then reaps like an init and leaves with the root's
 * exit status. */
static __attribute__((noreturn)) void helper_init_main(struct restore_run *run)
{
	struct restore_task *t = &run->ctx.tasks[0];
	cr_error_t err = NULL;
	pid_t root, r;
	int st;

	root = pidsel_fork(run->backend, t->pstree->ns_pid + t->level_base, task_levels(t), 0,
			   (int)t->core->exit_signal, &err);
	if (root == 0)
		restore_child_main(run, t, true);
	if (root < 0) {
		static struct child_msg msg;

		snprintf(msg.error, sizeof(msg.error), "%s", err->msg);
		if (write(run->sync_child_fd, &msg, sizeof(msg)) < 0)
			_exit(126);
		_exit(127);
	}
	syscall(SYS_close_range, 0, ~0U, 0);
	while ((r = wait(&st)) != root || !(WIFEXITED(st) || WIFSIGNALED(st)))
		if (r < 0 && errno == ECHILD)
			_exit(127);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* The process the restorer forks: the root itself, or with --new-pidns
 * the init of the fresh namespace (the root, if it was pid 1 there). */
static pid_t fork_top(struct restore_run *run, bool *helper, cr_error_t *err)
{
	struct restore_task *t = &run->ctx.tasks[0];
	static const uint32_t init_pid = 1;

	*helper = false;
	if (!run->ctx.opts->new_pidns)
		return pidsel_fork(run->backend, t->pstree->ns_pid, task_levels(t), 0, (int)t->core->exit_signal,
				   err);
	if (t->pstree->ns_pid[t->level_base] == 1)
		return pidsel_fork(run->backend, &init_pid, 1, CLONE_NEWPID, (int)t->core->exit_signal, err);
	*helper = true;
	return pidsel_fork(run->backend, &init_pid, 1, CLONE_NEWPID, SIGCHLD, err);
}

static int create_tree(struct restore_run *run, pid_t *root, cr_error_t *err)
{
	struct restore_task *t = &run->ctx.tasks[0];
	bool helper;
	int sync[2];

	if (open_sync(sync, err) < 0)
		return -1;
	fflush(NULL);
	*root = fork_top(run, &helper, err);
	if (*root == 0) {
		close(sync[0]);
		run->sync_child_fd = sync[1];
		if (helper)
			helper_init_main(run);
		restore_child_main(run, t, true);
	}
	close(sync[1]);
	if (*root < 0) {
		close(sync[0]);
		return -1;
	}
	if (wait_all_ready(run, sync[0], err) < 0) {
		close(sync[0]);
		return -1;
	}
	close(sync[0]);
	return 0;
}

static uint64_t page_bytes(const struct restore_ctx *ctx)
{
	uint64_t total = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		total += mem_page_bytes(&ctx->tasks[i]);
	return total;
}

static int transplant_all(struct restore_run *run, cr_error_t *err)
{
	int ret = 0;

	progress_start("restore", page_bytes(&run->ctx), 0);
	for (size_t i = 0; i < run->ctx.n_tasks && ret == 0; i++)
		if (!run->ctx.tasks[i].zombie)
			ret = transplant(run, &run->ctx.tasks[i], err);
	progress_done();
	return ret;
}

static int restore_tree(struct restore_run *run, pid_t *root, cr_error_t *err)
{
	/* /proc/self is the restorer's own, whatever pid namespace it is in. */
	if (proc_read_maps(0, &run->cr_layout, err) < 0 ||
	    restore_plan_trampolines(&run->ctx, &run->cr_layout, err) < 0 || create_tree(run, root, err) < 0)
		return -1;
	pr_debug("all %zu processes are ready for the transplant", run->n_live);
	if (transplant_all(run, err) < 0)
		return -1;
	return release_all(&run->ctx, err);
}

int cr_restore(const struct restore_opts *opts, enum pid_backend backend, int *status, cr_error_t *err)
{
	struct restore_run run = { .ctx = { .opts = opts }, .backend = backend };
	pid_t root = 0;
	int ret = -1;

	*status = 0;
	run.restorer_pgid = getpgrp();
	run.ctx.dirfd = open(opts->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (run.ctx.dirfd < 0) {
		cr_error(err, errno, "open image directory %s", opts->dir);
		goto out;
	}
	pr_debug("restore of %s starts", opts->dir);
	if (restore_load(&run, err) < 0 || check_backend(&run, err) < 0 ||
	    (!opts->new_pidns && check_pids_free(&run.ctx, err) < 0))
		goto out;
	pr_debug("images loaded and checked");
	raise_nofile();
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (restore_tree(&run, &root, err) < 0) {
		kill_created(&run, root);
		prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
		cr_error_wrap(err, "restore failed; nothing is left running");
		goto out;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
	pr_info("restored %zu processes, root pid %d", run.ctx.n_tasks, root);
	ret = opts->detach ? 0 : wait_exit(root, status, err);
out:
	proc_vma_list_free(&run.cr_layout);
	restore_unload(&run);
	if (run.ctx.dirfd >= 0)
		close(run.ctx.dirfd);
	return ret;
}
