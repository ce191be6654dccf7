/* Stopped processes: a process in a group stop (SIGSTOP, SIGTSTP, SIGTTIN,
 * SIGTTOU) is stopped again after restore, by the same signal, and its
 * parent sees the stop as it did: reported once (waitpid(WUNTRACED) and a
 * SIGCHLD) if it had not taken the report yet, not at all if it had.
 *
 * Dump: the freeze tells which processes are stopped and by which signal
 * (dump/freeze.c).  Whether the parent took the report only the parent
 * can tell: an injected waitid(WSTOPPED | WNOHANG | WNOWAIT) in it, which
 * leaves the report where it is.  A root's parent is outside the tree:
 * its report goes to whoever restores it.
 *
 * Restore, once every process is transplanted and before any is let go:
 * each stopped one is sent its signal and every thread of it joins the
 * group stop while the restorer still traces it (detached, it stays in
 * that stop: dump/freeze.c and the kernel's ptrace unlink); the stop
 * reports to the parent as any stop does.  Then in each parent whose child
 * had reported already, an injected waitid takes the report, and the
 * SIGCHLD the stop queued is taken back (rt_sigtimedwait, its arguments on
 * a page mapped for the call) unless the parent's image had one pending. */
#include "state/state.h"
#include "state/stop.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/ptrace.h"
#include "os/util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------------ dump */

/* c's pid as its parent t sees it (t's own namespace level). */
static int pid_seen_by(const struct dump_task *t, const struct dump_task *c, pid_t *out, cr_error_t *err)
{
	struct proc_status st;
	int level = t->status.n_levels - 1;

	if (proc_read_status(c->pid, 0, &st, err) < 0)
		return -1;
	*out = level >= 0 && level < st.n_levels ? st.ns_tgid[level] : 0;
	proc_status_free(&st);
	if (*out <= 0)
		return cr_error(err, 0, "pid %d has no pid in the namespace of its parent %d", c->pid, t->pid);
	return 0;
}

static int ask_parent(struct dump_task *t, struct dump_task *c, cr_error_t *err)
{
	siginfo_t si;
	pid_t pid;

	if (pid_seen_by(t, c, &pid, err) < 0 ||
	    inject_call(t->inj, "waitid(WNOWAIT) for a stopped child", SYS_waitid, P_PID, (uint64_t)pid,
			t->scratch + SCRATCH_STOP_REPORT, WSTOPPED | WNOHANG | WNOWAIT, 0, 0, NULL, err) < 0 ||
	    remote_read(t->pid, t->scratch + SCRATCH_STOP_REPORT, &si, sizeof(si), err) < 0)
		return cr_error_wrap(err, "whether pid %d saw the stop of its child %d", t->pid, c->pid);
	c->stop_asked = true;
	c->stop_reported = !(si.si_signo == SIGCHLD && si.si_code == CLD_STOPPED);
	pr_debug("pid %d: the stop of child %d (signal %d) %s", t->pid, c->pid, c->stop_sig,
		 c->stop_reported ? "was reported" : "is not reported yet");
	return 0;
}

static int stop_collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *c = &ctx->tasks[i];

		if (c->ppid == t->pid && c->was_stopped && !c->zombie && ask_parent(t, c, err) < 0)
			return -1;
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

static bool is_stop_signal(uint32_t sig)
{
	return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static int stop_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *c = t->core;

	(void)ctx;
	if (c->has_stop_signo && (!c->stopped || !is_stop_signal(c->stop_signo)))
		return cr_error(err, 0, "core-%d.img: stopped by signal %u", t->pid, c->stop_signo);
	if (c->has_stop_reported && !c->stopped)
		return cr_error(err, 0, "core-%d.img: a stop report of a process that is not stopped", t->pid);
	return 0;
}

/* Whether a member of process group pgrp has its parent in another group
 * of the same session: if none has, the group is orphaned. */
static bool pgrp_orphaned(pid_t pgrp, pid_t sid)
{
	cleanup_closedir DIR *d = opendir("/proc");
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
		struct proc_stat st, parent;
		cr_error_t err = NULL;

		if (pid <= 0 || proc_read_stat(pid, &st, &err) < 0 || st.pgrp != pgrp ||
		    proc_read_stat(st.ppid, &parent, &err) < 0) {
			cr_error_release(&err);
			continue;
		}
		if (parent.pgrp != pgrp && parent.session == sid)
			return false;
	}
	return true;
}

/* The signal that had stopped it.  The kernel drops SIGTSTP, SIGTTIN and
 * SIGTTOU (they do not stop) in an orphaned process group: there it is
 * SIGSTOP, and cr says so. */
static int stop_signal(const struct restore_task *t)
{
	struct proc_stat st;
	cr_error_t err = NULL;
	int sig = t->core->has_stop_signo ? (int)t->core->stop_signo : SIGSTOP;

	if (sig == SIGSTOP)
		return sig;
	if (proc_read_stat(t->host_pid, &st, &err) < 0) {
		cr_error_release(&err);
		return SIGSTOP;
	}
	if (pgrp_orphaned(st.pgrp, st.session)) {
		pr_warn("pid %d: stopped by SIGSTOP, not by signal %d as it was: its process group is orphaned "
			"here, where the kernel drops signal %d", t->pid, sig, sig);
		return SIGSTOP;
	}
	return sig;
}

/* Every thread into the group stop, with the restorer still tracing. */
static int stop_again(struct restore_task *t, cr_error_t *err)
{
	int sig = stop_signal(t);

	if (kill(t->host_pid, sig) < 0)
		return cr_error(err, errno, "send signal %d", sig);
	for (size_t i = 0; i < t->n_threads; i++)
		if (ptrace_join_group_stop(t->threads[i].tid, err) < 0)
			return -1;
	return 0;
}

static bool pending_in(SiginfoEntry *const *q, size_t n, int sig)
{
	for (size_t i = 0; i < n; i++) {
		siginfo_t si;

		memcpy(&si, q[i]->siginfo.data, sizeof(si));
		if (si.si_signo == sig)
			return true;
	}
	return false;
}

/* The parent's image had a SIGCHLD pending: the stop's joins it. */
static bool had_sigchld(const struct restore_task *p)
{
	const CoreEntry *c = p->core;

	if (pending_in(c->shared_pending, c->n_shared_pending, SIGCHLD))
		return true;
	for (size_t i = 0; i < c->n_threads; i++)
		if (pending_in(c->threads[i]->pending, c->threads[i]->n_pending, SIGCHLD))
			return true;
	return false;
}

static int find_syscall(pid_t pid, uint64_t *ip, cr_error_t *err)
{
	struct proc_vma_list vmas = { 0 };
	int ret;

	if (proc_read_maps(pid, &vmas, err) < 0)
		return -1;
	ret = inject_find_syscall(pid, &vmas, ip, err);
	proc_vma_list_free(&vmas);
	return ret;
}

/* rt_sigtimedwait's signal set and zero timeout, on a page mapped for
 * them and unmapped again (the process's own memory may be anything: a
 * read-only stack is the dump's to keep). */
struct sigwait_args {
	uint64_t set;
	struct timespec timeout;
};

#define ARGS_PAGE 4096

static int sigtimedwait_on(struct injector *ij, pid_t pid, uint64_t at, cr_error_t *err)
{
	struct sigwait_args args = { .set = UINT64_C(1) << (SIGCHLD - 1) };
	long r;

	if (remote_write(pid, at, &args, sizeof(args), err) < 0 ||
	    inject_syscall(ij, SYS_rt_sigtimedwait, at, 0, at + offsetof(struct sigwait_args, timeout), 8, 0, 0, &r,
			   err) < 0)
		return -1;
	if (r < 0 && r != -EAGAIN)
		return cr_error(err, (int)-r, "take back the SIGCHLD of a child's stop");
	return 0;
}

static int take_sigchld(struct injector *ij, pid_t pid, cr_error_t *err)
{
	cr_error_t second = NULL;
	long at;
	int ret;

	if (inject_call(ij, "map a page for rt_sigtimedwait", SYS_mmap, 0, ARGS_PAGE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &at, err) < 0)
		return -1;
	ret = sigtimedwait_on(ij, pid, (uint64_t)at, err);
	if (inject_call(ij, "unmap it", SYS_munmap, (uint64_t)at, ARGS_PAGE, 0, 0, 0, 0, NULL,
			ret == 0 ? err : &second) < 0)
		ret = -1;
	cr_error_release(&second);
	return ret;
}

/* In the parent p: the reports of the children that p had seen stop are
 * taken, and the SIGCHLD their stops queued. */
static int parent_forgets(struct restore_ctx *ctx, struct restore_task *p, cr_error_t *err)
{
	cr_error_t second = NULL;
	struct injector ij;
	uint64_t ip;
	int ret = 0;

	if (find_syscall(p->host_pid, &ip, err) < 0 || inject_begin(&ij, p->threads[0].tid, ip, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks && ret == 0; i++) {
		const struct restore_task *c = &ctx->tasks[i];
		pid_t pid;

		if (c->parent != p || c->zombie || !c->core->stopped || !c->core->stop_reported)
			continue;
		if (c->pstree->n_ns_pid < p->pstree->n_ns_pid) {
			ret = cr_error(err, 0, "pid %d has fewer pid levels than its parent", c->pid);
			break;
		}
		pid = (pid_t)c->pstree->ns_pid[p->pstree->n_ns_pid - 1];   /* as p sees it */
		ret = inject_call(&ij, "waitid(WSTOPPED) for a stopped child", SYS_waitid, P_PID, (uint64_t)pid, 0,
				  WSTOPPED | WNOHANG, 0, 0, NULL, err);
	}
	if (ret == 0 && !had_sigchld(p))
		ret = take_sigchld(&ij, p->host_pid, err);
	if (inject_end(&ij, ret == 0 ? err : &second) < 0)
		ret = -1;
	cr_error_release(&second);
	return ret;
}

static bool has_stopped_child(const struct restore_ctx *ctx, const struct restore_task *p)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].parent == p && !ctx->tasks[i].zombie && ctx->tasks[i].core->stopped)
			return true;
	return false;
}

int stop_restored_tree(struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (!t->zombie && t->core->stopped && stop_again(t, err) < 0)
			return cr_error_wrap(err, "pid %d: stop it again", t->pid);
	}
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *p = &ctx->tasks[i];

		if (!p->zombie && has_stopped_child(ctx, p) && parent_forgets(ctx, p, err) < 0)
			return cr_error_wrap(err, "pid %d: the stops of its children", p->pid);
	}
	return 0;
}

const struct state_kind state_stop = {
	.name = "stopped processes",
	.collect_injected = stop_collect_injected,
	.validate = stop_validate,
};
