/* A process with many children forks them on two CPUs: it forks a helper
 * (a copy of itself, with a pid the tree does not use), which forks every
 * other child with CLONE_PARENT, so that each is still the process's own
 * child, made from the same memory, while the process forks the rest; the
 * helper then exits and the process reaps it.
 *
 * Only children that a plain fork makes: alive at dump, in the process's
 * own pid namespace and cr's (one pid level), exiting with SIGCHLD (a
 * CLONE_PARENT child takes the helper's exit signal), and only with the
 * clone3 backend (ns_last_pid forks one at a time under its lock). */
#include "restore/run.h"
#include "os/cpus.h"
#include "restore/split.h"
#include "os/pidsel.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SPLIT_FORK_MIN
#define SPLIT_FORK_MIN 32   /* below this, the helper's fork costs more than it saves */
#endif
#define HELPER_PID_TRIES 64

static bool plain_child(const struct restore_task *t, const struct restore_task *c)
{
	return !c->zombie && c->level_base == 0 && task_levels(c) == 1 &&
	       c->pstree->pidns == t->pstree->pidns_for_children && c->core->exit_signal == SIGCHLD;
}

bool split_fork_wanted(const struct restore_run *run, const struct restore_task *t)
{
	size_t n = 0;

	if (run->backend == PID_BACKEND_NS_LAST_PID || run->backend == PID_BACKEND_CLONE2 ||
	    t->pstree->pidns_for_children != t->pstree->pidns || task_levels(t) != 1)
		return false;
	for (size_t i = 0; i < t->n_children; i++)
		n += plain_child(t, t->children[i]);
	return n >= SPLIT_FORK_MIN && cpus_affinity_count() >= 2;
}

/* Every other plain child goes to the helper; the process keeps the rest. */
bool split_fork_helper_takes(const struct restore_task *t, size_t i)
{
	size_t k = 0;

	if (!plain_child(t, t->children[i]))
		return false;
	for (size_t j = 0; j < i; j++)
		k += plain_child(t, t->children[j]);
	return k % 2 == 1;
}

/* The highest pid or thread id of the tree, at cr's level. */
static uint32_t top_pid(const struct restore_run *run)
{
	uint32_t top = 0;

	for (size_t i = 0; i < run->ctx.n_tasks; i++) {
		const PstreeEntry *p = run->ctx.tasks[i].pstree;

		if (p->ns_pid[0] > top)
			top = p->ns_pid[0];
		for (size_t j = 0; j < p->n_threads; j++)
			if (p->threads[j]->n_ns_tid > 0 && p->threads[j]->ns_tid[0] > top)
				top = p->threads[j]->ns_tid[0];
	}
	return top;
}

/* In the helper: its children, then its exit (1 after a failure, said on
 * the sync socket as a child's would be). */
static __attribute__((noreturn)) void helper_main(struct restore_run *run, struct restore_task *t,
						  split_child_fn child, int sync)
{
	static struct child_msg msg;
	cr_error_t err = NULL;

	for (size_t i = 0; i < t->n_children; i++) {
		struct restore_task *c = t->children[i];
		pid_t pid;

		if (!split_fork_helper_takes(t, i))
			continue;
		pid = pidsel_fork(run->backend, c->pstree->ns_pid, 1, CLONE_PARENT, 0, &err);
		if (pid == 0)
			child(run, c);
		if (pid < 0) {
			memset(&msg, 0, sizeof(msg));
			msg.index = (uint32_t)(c - run->ctx.tasks);
			snprintf(msg.error, sizeof(msg.error), "pid %d: create child %d: %s", t->pid, c->pid,
				 err->msg);
			if (write(sync, &msg, sizeof(msg)) < 0)
				_exit(2);
			_exit(1);
		}
	}
	_exit(0);
}

int split_fork_start(struct restore_run *run, struct restore_task *t, split_child_fn child, int sync,
		     pid_t *helper, cr_error_t *err)
{
	uint32_t pid = top_pid(run);

	for (int i = 0; i < HELPER_PID_TRIES; i++) {
		cr_error_t busy = NULL;
		pid_t r;

		pid++;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		r = pidsel_fork(run->backend, &pid, 1, 0, SIGCHLD, &busy);
		if (r == 0)
			helper_main(run, t, child, sync);
		if (r > 0) {
			*helper = r;
			return 0;
		}
		cr_error_release(&busy);   /* taken meanwhile: the next one */
	}
	return cr_error(err, EAGAIN, "no free pid above %u for the helper that forks children", top_pid(run));
}

int split_fork_finish(pid_t helper, cr_error_t *err)
{
	int status;

	if (waitpid(helper, &status, 0) != helper)
		return cr_error(err, errno, "wait for the helper that forks children (pid %d)", helper);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cr_error(err, 0, "the helper that forks children (pid %d) failed (status 0x%x)", helper,
				status);
	return 0;
}
