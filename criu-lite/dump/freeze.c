/* Freezing the tree and letting it go: every thread of every process is
 * seized with ptrace (PTRACE_SEIZE + PTRACE_INTERRUPT) until a pass over
 * the tree finds no new child or thread, then each process is held in a
 * group stop (dump/guard.h); at the end every task is released as it was
 * and continued, or the tree is killed and its pids waited for. */
#include "dump/guard.h"
#include "dump/steps.h"
#include "fd/tcp_stream.h"
#include "os/supervise.h"
#include "os/log.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/ctty.h"
#include "state/pagedata.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define REAP_WAIT_MS 10000

/* ---------------------------------------------------------- the freeze */

struct dump_task *dump_find_task(struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

static void add_task(struct dump_ctx *ctx, pid_t pid, pid_t ppid)
{
	ctx->tasks = xreallocarray(ctx->tasks, ctx->n_tasks + 1, sizeof(*ctx->tasks));
	memset(&ctx->tasks[ctx->n_tasks], 0, sizeof(ctx->tasks[0]));
	ctx->tasks[ctx->n_tasks].pid = pid;
	ctx->tasks[ctx->n_tasks].ppid = ppid;
	ctx->n_tasks++;
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
	int stop_sig;

	*seized = false;
	t->threads = xreallocarray(t->threads, t->n_threads + 1, sizeof(*t->threads));
	if (ptrace_seize_stop(tid, CR_PTRACE_OPTIONS_DUMP, &stop_sig, err) < 0) {
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
	/* Any thread tells: a group stop is the whole process's. */
	if (stop_sig != 0) {
		t->was_stopped = true;
		t->stop_sig = stop_sig;
	}
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

			if (child <= 0 || dump_find_task(ctx, child) != NULL)
				continue;
			add_task(ctx, child, pid);
			*changed = true;
		}
	}
	return 0;
}

/* A child that exited between being listed and being seized: its parent
 * is frozen by then, so nothing replaces it.  It is a zombie now, dumped
 * as one, or was reaped already (its parent ignores SIGCHLD) and is left
 * out, as if the freeze had come a moment later. */
static int child_went_away(struct dump_task *t, cr_error_t *err)
{
	cr_error_t why = NULL;
	char state;

	if (task_state(t->pid, &state, &why) < 0) {
		cr_error_release(&why);
		if (kill(t->pid, 0) == 0 || errno != ESRCH)
			return -1;
		cr_error_release(err);
		t->vanished = true;
		pr_debug("pid %d exited and was reaped during the freeze: left out", t->pid);
		return 0;
	}
	if (state != 'Z')
		return -1;
	cr_error_release(err);
	t->zombie = true;
	pr_debug("pid %d exited during the freeze: dumped as a zombie", t->pid);
	return 0;
}

static int freeze_one(struct dump_ctx *ctx, size_t idx, bool *changed, cr_error_t *err)
{
	struct dump_task *t = &ctx->tasks[idx];
	char state;

	if (t->zombie || t->vanished)
		return 0;
	if (cr_should_stop())
		return cr_error(err, EINTR, "interrupted");
	if (t->n_threads == 0) {
		if (task_state(t->pid, &state, err) < 0)
			return idx > 0 ? child_went_away(t, err) : -1;
		if (state == 'Z') {
			if (idx == 0)
				return cr_error(err, 0, "pid %d is a zombie: there is nothing to dump", t->pid);
			t->zombie = true;
			return 0;
		}
	}
	if (freeze_threads(t, changed, err) < 0)
		return idx > 0 && t->n_threads == 0 ? child_went_away(t, err) : -1;
	return add_children(ctx, idx, changed, err);
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

static void drop_vanished(struct dump_ctx *ctx)
{
	size_t kept = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (ctx->tasks[i].vanished) {
			free(ctx->tasks[i].threads);
			continue;
		}
		ctx->tasks[kept++] = ctx->tasks[i];
	}
	ctx->n_tasks = kept;
}

#define SIGSTOP_BIT (UINT64_C(1) << (SIGSTOP - 1))

int dump_sigstop_pending(const struct dump_task *t, size_t i, bool *pending, cr_error_t *err)
{
	struct proc_status st;

	if (proc_read_status(t->pid, t->threads[i].tid, &st, err) < 0)
		return -1;
	*pending = (st.sig_pnd & SIGSTOP_BIT) || (i == 0 && (st.shd_pnd & SIGSTOP_BIT));
	proc_status_free(&st);
	return 0;
}

/* A SIGSTOP on its way (sent just before the freeze, not taken yet): the
 * process is stopped, by its sender, not by cr. */
static int stop_in_flight(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		bool pending;

		if (dump_sigstop_pending(t, i, &pending, err) < 0)
			return -1;
		if (pending) {
			t->was_stopped = true;
			t->stop_sig = SIGSTOP;
			pr_debug("pid %d: a SIGSTOP is pending: dumped as stopped", t->pid);
			return 0;
		}
	}
	return 0;
}

static int join_group_stop(struct dump_task *t, cr_error_t *err)
{
	if (kill(t->pid, SIGSTOP) < 0)
		return cr_error(err, errno, "stop pid %d", t->pid);
	for (size_t i = 0; i < t->n_threads; i++)
		if (ptrace_join_group_stop(t->threads[i].tid, err) < 0)
			return -1;
	return 0;
}

/* A process cr is about to change is held in a group stop first (a dead
 * tracer leaves it stopped, not running cr's code), recorded so that a
 * guardian continues it if the dump dies (dump/guard.h).  One that was
 * stopped already stays in its own stop. */
static int hold_task(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	bool stopping;

	if (t->zombie)
		return 0;
	if (proc_read_stat(t->pid, &t->stat, err) < 0)
		return -1;
	/* Before cr's stop: its shell takes the terminal back (and sets its
	 * own termios) when it sees it. */
	if (ctty_before_hold(ctx, t, err) < 0)
		return -1;
	stopping = !t->was_stopped;
	if (stopping && stop_in_flight(t, err) < 0)
		return -1;
	t->held = !t->was_stopped;
	if (guard_note_held(ctx, t, err) < 0)
		return -1;
	if (stopping && join_group_stop(t, err) < 0)
		return -1;
	return 0;
}

static int hold_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (hold_task(ctx, &ctx->tasks[i], err) < 0)
			return cr_error_wrap(err, "hold pid %d in a group stop", ctx->tasks[i].pid);
	return 0;
}

int freeze_tree(struct dump_ctx *ctx, pid_t root, cr_error_t *err)
{
	bool changed = true;

	clock_gettime(CLOCK_MONOTONIC, &ctx->frozen_at);
	add_task(ctx, root, 0);
	while (changed) {
		changed = false;
		for (size_t i = 0; i < ctx->n_tasks; i++)
			if (freeze_one(ctx, i, &changed, err) < 0)
				return cr_error_wrap(err, "freeze pid %d", ctx->tasks[i].pid);
	}
	drop_vanished(ctx);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		order_threads(&ctx->tasks[i]);
	return hold_tree(ctx, err);
}

/* ------------------------------------------------------- letting it go */

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
		/* A process in a group stop (its own, or cr's) enters it
		 * again when detached, as it was: no new stop, no new report
		 * to its parent, the same stop signal. */
		if (ptrace_release(th->tid, 0, &err) < 0) {
			pr_warn("%s", err->msg);
			cr_error_release(&err);
		}
		th->seized = false;
	}
}

/* Every task is detached, still in its group stop: each that cr stopped
 * is let go, its record saying first that only this is left to do. */
static void continue_task(struct dump_ctx *ctx, struct dump_task *t)
{
	cr_error_t err = NULL;

	if (t->held) {
		if (guard_note_released(ctx, t, &err) < 0) {
			pr_warn("%s", err->msg);
			cr_error_release(&err);
		}
		kill(t->pid, SIGCONT);
		t->held = false;
	}
	guard_forget(ctx, t);
}

/* Pages of a process worth freeing from cr's side too (8 MiB). */
#define MRELEASE_MIN_PAGES 2048u

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

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (at most REAP_WAIT_MS) until every traced thread of the tree is
 * reaped.  A process's pidfd turns readable only once all its threads are
 * gone, and cr, their tracer, must reap the others first: so each turn
 * reaps what died, then sleeps until a death (a pidfd) or for a
 * millisecond (a thread's death, which no pidfd tells).  A tree that takes
 * the whole wait is a bug of cr's (a thread it never reaps): it is said,
 * and the tests fail on it (lib.sh, cr_run). */
static void wait_exited(struct dump_ctx *ctx, const int *pidfd)
{
	struct pollfd *p = xcalloc(ctx->n_tasks, sizeof(*p));
	int64_t start = now_ms();
	size_t n = 0, left;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (pidfd[i] >= 0)
			p[n++] = (struct pollfd){ .fd = pidfd[i], .events = POLLIN };
	while ((left = reap_traced(ctx)) > 0) {
		if (now_ms() - start >= REAP_WAIT_MS) {
			pr_warn("the killed tree still has %zu threads to reap after %d ms: gave up waiting", left,
				REAP_WAIT_MS);
			break;
		}
		if (poll(p, n, 1) <= 0)
			continue;
		for (size_t i = 0; i < n;) {   /* the exited leave the set */
			if (p[i].revents != 0)
				p[i] = p[--n];
			else
				i++;
		}
	}
	free(p);
}

/* Kills the tree and collects every tracee's death.  Deaths come in an
 * order the kernel decides (a group leader after its threads, a namespace's
 * init after everything in it), so take whichever is ready.  A death is
 * reported once the task has exited and its memory is freed; its pid is
 * then held until its parent reaps it, which cr does not wait for: a slow
 * PID 1 can take seconds over an orphan, and cr restore waits for such a
 * zombie itself (pidsel_wait_free). */
void kill_tree(struct dump_ctx *ctx, uint64_t *frozen_ns)
{
	int *pidfd = xcalloc(ctx->n_tasks, sizeof(*pidfd));

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct dump_task *t = &ctx->tasks[i];

		/* Opened before the kill: the pid is still this tracee's. */
		pidfd[i] = !t->zombie ? (int)syscall(SYS_pidfd_open, t->pid, 0) : -1;
		if (!t->zombie)
			kill(t->pid, SIGKILL);
	}
	if (frozen_ns != NULL)
		*frozen_ns = dump_frozen_ns(ctx);
	/* While the kernel frees the dying: the batch buffers cr no longer needs. */
	pagedata_bufs_free(steal_pointer(&ctx->page_bufs));
	/* A large address space takes the dying process a while to free (its
	 * death is reported after): cr frees it too, on its own core, the
	 * kernel sharing the work out (process_mrelease; a failure only
	 * leaves it all to the process). */
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (pidfd[i] >= 0 && ctx->tasks[i].pages_copied >= MRELEASE_MIN_PAGES)
			(void)syscall(SYS_process_mrelease, pidfd[i], 0);
	wait_exited(ctx, pidfd);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (pidfd[i] >= 0)
			close(pidfd[i]);
	free(pidfd);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		guard_forget(ctx, &ctx->tasks[i]);
}

uint64_t dump_frozen_ns(const struct dump_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - ctx->frozen_at.tv_sec) * 1000000000u + (uint64_t)now.tv_nsec -
	       (uint64_t)ctx->frozen_at.tv_nsec;
}

void release_tree(struct dump_ctx *ctx)
{
	cr_interrupt_armed = 0;   /* releasing must finish, signal or not */
	tcp_stream_release(ctx);   /* no process may run with its socket in repair mode (recv fails EPERM) */
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		collect_drop_hold_sigchld(ctx, &ctx->tasks[i]);
		release_task(&ctx->tasks[i]);
	}
	/* Children before their parents (which come first in the list): a
	 * parent that waits with WUNTRACED finds no child in cr's stop. */
	for (size_t i = ctx->n_tasks; i-- > 0;)
		continue_task(ctx, &ctx->tasks[i]);
}
