/* Creating the tree: the restorer forks the root (or, with --new-pidns,
 * the init of a fresh pid namespace); every process, still running cr's
 * code, forks its own children with their pids at every level, so that
 * parentage is right, then sets itself up (each kind's setup), tells the
 * restorer it is ready and waits to be seized.  Zombies are made by
 * children that exit with their dumped status. */
#include "restore/run.h"
#include "restore/split.h"
#include "os/log.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/ctty.h"
#include "state/sessions.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define READY_TIMEOUT_MS 60000

/* ------------------------------------------------- in each new process */

/* In the root before anything else: only the sync fd, the caller's
 * terminal and the image directory stay, moved to their reserved slots;
 * every process of the tree inherits that clean table.  Each goes through
 * a copy above the slots first, so that no move lands on one still to be
 * made. */
static int keep_reserved_fds(const struct restore_ctx *ctx, int sync_fd, cr_error_t *err)
{
	static const char *const what[] = { "the sync fd", "the terminal fd", "the image directory fd" };
	int base = ctx->reserved_base;
	int from[3] = { sync_fd, -1, ctx->dirfd };
	int slot[3] = { RESERVED_SYNC, RESERVED_TTY, RESERVED_DIR };

	for (int i = 0; i < 3 && from[1] < 0; i++)
		if (isatty(i))
			from[1] = i;
	for (int i = 0; i < 3; i++)
		if (from[i] >= 0 && (from[i] = fcntl(from[i], F_DUPFD_CLOEXEC, base + RESERVED_MAPS)) < 0)
			return cr_error(err, errno, "keep %s", what[i]);
	for (int i = 0; i < 3; i++)
		if (from[i] >= 0 && dup3(from[i], base + slot[i], O_CLOEXEC) < 0)
			return cr_error(err, errno, "keep %s", what[i]);
	if (syscall(SYS_close_range, 0, base - 1, 0) < 0 ||
	    syscall(SYS_close_range, base + RESERVED_EXE, ~0U, 0) < 0)
		return cr_error(err, errno, "close cr's fds");
	return 0;
}

static __attribute__((noreturn)) void child_main(struct restore_run *run, struct restore_task *t, bool is_root);

static __attribute__((noreturn)) void zombie_main(const struct restore_task *t)
{
	int status = (int)t->pstree->exit_status;
	cr_error_t err = NULL;
	sigset_t set;

	if (session_setup(t, &err) < 0)
		cr_error_release(&err);
	session_join_group_early(t);
	if (t->pstree->comm != NULL)
		prctl(PR_SET_NAME, t->pstree->comm, 0, 0, 0);
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
	return c->zombie ? 2 : (task_is_ns_init(c) ? 0 : 1);
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

static void split_child(struct restore_run *run, struct restore_task *c)
{
	child_main(run, c, false);
}

static int fork_children(struct restore_run *run, struct restore_task *t, bool old_session, pid_t *local,
			 cr_error_t *err)
{
	bool split = !old_session && split_fork_wanted(run, t);
	pid_t helper = -1;

	if (split && split_fork_start(run, t, split_child, run->ctx.reserved_base + RESERVED_SYNC, &helper, err) < 0)
		return -1;
	for (size_t i = 0; i < t->n_children; i++) {
		struct restore_task *c = t->children[i];
		uint64_t flags = c->pstree->pidns != t->pstree->pidns_for_children ? CLONE_NEWPID : 0;
		int exit_signal = c->zombie ? SIGCHLD : (int)c->core->exit_signal;
		pid_t pid;

		if (in_old_session(t, c) != old_session)
			continue;
		if (split && split_fork_helper_takes(t, i)) {
			local[i] = (pid_t)c->pstree->ns_pid[0];
			continue;
		}
		pid = pidsel_fork(run->backend, c->pstree->ns_pid + c->level_base, task_levels(c), flags,
				  exit_signal, err);
		if (pid < 0)
			return cr_error_wrap(err, "create child %d", c->pid);
		if (pid == 0) {
			if (c->zombie)
				zombie_main(c);
			child_main(run, c, false);
		}
		local[i] = pid;
	}
	return split ? split_fork_finish(helper, err) : 0;
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

static int child_body(struct restore_run *run, struct restore_task *t, bool is_root, cr_error_t *err)
{
	uint64_t all = ~0ULL;
	cleanup_free pid_t *local = NULL;

	/* A leaf (most processes) touches no heap page here: every page a
	 * fresh child writes first costs a copy. */
	if (t->n_children > 0)
		local = xcalloc(t->n_children, sizeof(pid_t));
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8) < 0)
		return cr_error(err, errno, "block signals");
	/* Until the restorer seizes it (and PTRACE_O_EXITKILL takes over), a
	 * killed restorer or parent takes this process along. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return cr_error(err, errno, "set the parent-death signal");
	if (is_root && keep_reserved_fds(&run->ctx, run->sync_child_fd, err) < 0)
		return -1;
	if (t->pstree->pidns_for_children != t->pstree->pidns && unshare(CLONE_NEWPID) < 0)
		return cr_error(err, errno, "unshare the pid namespace for children");
	sort_children(t);
	if (state_before_fork(&run->ctx, t, err) < 0 || fork_children(run, t, true, local, err) < 0 ||
	    session_setup(t, err) < 0 || ctty_take(&run->ctx, t, err) < 0 ||
	    fork_children(run, t, false, local, err) < 0 ||
	    settle_zombies(t, local, err) < 0)
		return -1;
	return state_setup(&run->ctx, t, err);
}

static __attribute__((noreturn)) void child_main(struct restore_run *run, struct restore_task *t, bool is_root)
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

/* ------------------------------------------------------ in the restorer */

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
		/* It stops while the others are made: its transplant does
		 * not wait for that stop.  The second transplanter seizes
		 * its own (second.c). */
		if (t->transplanter != 0)
			continue;
		if (ptrace_seize_interrupt(t->host_pid, CR_PTRACE_OPTIONS_RESTORE, err) < 0)
			return -1;
		t->seized = true;
	}
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
		child_main(run, t, true);
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
 * and a root that was not its namespace's init, a helper init of the fresh
 * namespace.  A root that was the init of a namespace other than the
 * restorer's heads a new one: with --new-pidns it is pid 1 there only,
 * without, it also keeps its dumped pid here (tree.c allows that one level
 * below the restorer's namespace). */
static pid_t fork_top(struct restore_run *run, bool *helper, cr_error_t *err)
{
	struct restore_task *t = &run->ctx.tasks[0];
	static const uint32_t init_pid = 1;
	bool new_pidns = run->ctx.opts->new_pidns;
	uint64_t flags = task_is_ns_init(t) && (new_pidns || t->pstree->n_ns_pid > 1) ? CLONE_NEWPID : 0;

	*helper = new_pidns && !task_is_ns_init(t);
	if (*helper)
		return pidsel_fork(run->backend, &init_pid, 1, CLONE_NEWPID, SIGCHLD, err);
	return pidsel_fork(run->backend, t->pstree->ns_pid + t->level_base, task_levels(t), flags,
			   (int)t->core->exit_signal, err);
}

int create_tree(struct restore_run *run, pid_t *root, cr_error_t *err)
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
		child_main(run, t, true);
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
