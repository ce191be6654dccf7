/* A Landlock domain (landlock_restrict_self): the sandbox a thread put
 * itself in.  No call reads a domain's rules back, and no /proc file shows
 * that a thread has one, so a restored thread, made by cr, would run
 * unconfined.  Refused at dump, naming the thread.
 *
 * Found through Landlock's ptrace rule: a thread in a domain may not even
 * read-access (PTRACE_MODE_READ) a process outside it.  cr forks a probe
 * with the thread's real uid and gid, no capability and dumpable, so that
 * without other security modules nothing but a domain can deny the thread
 * that access, and injects kcmp(probe, probe, KCMP_VM) into every thread:
 * EPERM means a domain, or a rule of another module (AppArmor, SELinux,
 * Yama) that the refusal names too.  The probe holds none of cr's fds, and
 * none of its memory: it is cr executed again (its keys must not go to a
 * dumpable process of another uid).  One probe per uid, gid and pid
 * namespace, for the whole dump; the root's is made before the freeze (a
 * fork of cr, with its buffers, took 10 ms of a migration's frozen
 * window), and checked to be alive after it.  A process in
 * another pid namespace than cr's could not see a probe of cr's: a helper
 * of cr's enters its namespace and forks the probe there, and the thread
 * is given the probe's pid in that namespace. */
#include "os/caps.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/landlock.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct probe {
	uint32_t uid, gid;
	uint64_t pidns;
	pid_t seen;     /* its pid in its namespace: what the thread asks kcmp about */
	pid_t pid;      /* its pid in cr's */
	pid_t helper;   /* its parent when it lives in another namespace, else 0 */
};

static struct probe *probes;
static size_t n_probes;

/* In a forked probe or helper: only fds 0-2 and keep (moved to 3) stay
 * open, so that none of cr's (the guardian's pipe, the images, sockets)
 * is held past the dump by a process cr forked; 3, or -1. */
static int keep_only(int keep)
{
	if ((keep == 3 ? fcntl(3, F_SETFD, 0) : dup2(keep, 3)) < 0 || syscall(SYS_close_range, 4, ~0U, 0) < 0)
		return -1;   /* fd 3 without close-on-exec either way */
	return 3;
}

/* In the forked probe: cr itself again, as landlock_probe_main, with the
 * ready pipe as fd 3.  The exec leaves nothing of cr's memory (its signing
 * and image keys, copies of them on its threads' stacks) to a process that
 * takes another uid and becomes dumpable.  ids: the uid and gid, as text
 * made before the fork (cr has threads: raw calls only here). */
static _Noreturn void probe_run(const char ids[2][16], int ready)
{
	if (keep_only(ready) < 0)
		_exit(1);
	execl("/proc/self/exe", "cr", LANDLOCK_PROBE_ARG, ids[0], ids[1], (char *)NULL);
	_exit(1);
}

int landlock_probe_main(int argc, char **argv)
{
	unsigned long uid, gid;
	char *end1, *end2;
	pid_t me;

	if (argc != 4)
		return 1;
	uid = strtoul(argv[2], &end1, 10);
	gid = strtoul(argv[3], &end2, 10);
	if (*end1 != '\0' || *end2 != '\0' || syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, gid, gid, gid) < 0 || syscall(SYS_setresuid, uid, uid, uid) < 0 ||
	    caps_drop_all() < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return 1;
	me = getpid();
	if (write(3, &me, sizeof(me)) != (ssize_t)sizeof(me))
		return 1;
	for (;;)
		pause();
}

/* In the forked helper: enters the pid namespace of nsfd, forks the probe
 * there, and tells out the probe's pid there and in cr's namespace; then
 * waits for the probe's death, so that no process of that namespace reaps
 * it. */
static _Noreturn void helper_run(const char ids[2][16], int nsfd, int out)
{
	pid_t pids[2];
	int p[2];

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || setns(nsfd, CLONE_NEWPID) < 0 ||
	    (out = keep_only(out)) < 0 || pipe2(p, O_CLOEXEC) < 0)
		_exit(1);
	pids[1] = fork();
	if (pids[1] == 0) {
		close(p[0]);
		probe_run(ids, p[1]);
	}
	close(p[1]);
	if (pids[1] < 0 || read(p[0], &pids[0], sizeof(pids[0])) != (ssize_t)sizeof(pids[0]) ||
	    write(out, pids, sizeof(pids)) != (ssize_t)sizeof(pids))
		_exit(1);
	while (waitpid(pids[1], NULL, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* A probe in another namespace is its helper's child, and the helper
 * exits once it has reaped it: its pid is signalled only while the
 * helper still waits for it (never a pid that may be another's now). */
static void probe_reap(const struct probe *pr)
{
	if (pr->helper == 0) {
		kill(pr->pid, SIGKILL);
		reap(pr->pid);
		return;
	}
	if (waitpid(pr->helper, NULL, WNOHANG) == 0) {
		kill(pr->pid, SIGKILL);
		reap(pr->helper);
	}
}

/* Whether the probe still runs.  One made before the freeze may have been
 * killed since; its pid, once free in the tree's namespace, could be taken
 * by a process of the tree, which kcmp would then compare the threads
 * with.  A dead probe is reaped here (or was by its helper, which exits
 * once it has). */
static bool probe_alive(const struct probe *pr)
{
	return waitpid(pr->helper ? pr->helper : pr->pid, NULL, WNOHANG) == 0;
}

/* Forks the probe (through a helper when nsfd is a pid namespace to enter,
 * else -1) and reads what it tells. */
static int probe_start(struct probe *pr, int nsfd, cr_error_t *err)
{
	pid_t pids[2] = { 0, 0 }, child;
	char ids[2][16];
	ssize_t n;
	int p[2];

	snprintf(ids[0], sizeof(ids[0]), "%u", pr->uid);
	snprintf(ids[1], sizeof(ids[1]), "%u", pr->gid);
	if (pipe2(p, O_CLOEXEC) < 0)
		return cr_error(err, errno, "a pipe for a Landlock probe");
	child = fork();
	if (child == 0) {
		close(p[0]);
		if (nsfd >= 0)
			helper_run(ids, nsfd, p[1]);
		probe_run(ids, p[1]);
	}
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return cr_error(err, errno, "fork a Landlock probe");
	}
	while ((n = read(p[0], pids, nsfd >= 0 ? sizeof(pids) : sizeof(pids[0]))) < 0 && errno == EINTR)
		;
	close(p[0]);
	pr->seen = pids[0];
	pr->pid = nsfd >= 0 ? pids[1] : child;
	pr->helper = nsfd >= 0 ? child : 0;
	if (n != (nsfd >= 0 ? (ssize_t)sizeof(pids) : (ssize_t)sizeof(pids[0]))) {
		if (pr->pid > 0 && nsfd >= 0)
			kill(pr->pid, SIGKILL);
		kill(child, SIGKILL);
		reap(child);
		return cr_error(err, 0, "a Landlock probe could not take uid %u and gid %u%s", pr->uid, pr->gid,
				nsfd >= 0 ? " in the pid namespace of the process" : "");
	}
	return 0;
}

/* The probe for uid and gid in pid namespace pidns, or NULL when none is
 * started yet. */
static const struct probe *probe_find(uint64_t pidns, uint32_t uid, uint32_t gid)
{
	for (size_t i = 0; i < n_probes; i++)
		if (probes[i].uid == uid && probes[i].gid == gid && probes[i].pidns == pidns)
			return &probes[i];
	return NULL;
}

static const struct probe *probe_started(const struct dump_task *t, uint32_t uid, uint32_t gid)
{
	return probe_find(t->pidns, uid, gid);
}

/* The probe for uid and gid in the pid namespace pidns of process pid,
 * started on first use. */
static int probe_for(pid_t pid, uint64_t pidns, uint32_t uid, uint32_t gid, cr_error_t *err)
{
	struct probe pr = { .uid = uid, .gid = gid, .pidns = pidns };
	cleanup_close int nsfd = -1;
	char path[64];

	struct probe *found = (struct probe *)probe_find(pidns, uid, gid);

	if (found != NULL && probe_alive(found))
		return 0;
	if (found != NULL)
		pr_debug("the Landlock probe %d (uid %u gid %u) is gone: another one is made", found->pid, uid, gid);
	if (!proc_shares_ns(pid, "pid")) {
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return cr_error(err, errno, "open %s", path);
	}
	if (probe_start(&pr, nsfd, err) < 0)
		return -1;
	if (found != NULL) {
		*found = pr;   /* the dead one was reaped by probe_alive */
		return 0;
	}
	probes = xreallocarray(probes, n_probes + 1, sizeof(*probes));
	probes[n_probes++] = pr;
	return 0;
}

void landlock_probe_ahead(pid_t pid)
{
	struct proc_status st = { 0 };
	cr_error_t err = NULL;
	uint64_t pidns;

	if (proc_read_ns(pid, "pid", &pidns, &err) < 0 || proc_read_status(pid, 0, &st, &err) < 0 ||
	    probe_for(pid, pidns, st.uid[0], st.gid[0], &err) < 0) {
		pr_debug("no Landlock probe made before the freeze: %s", err->msg);
		cr_error_release(&err);
	}
	proc_status_free(&st);
}

static void ask_kcmp(struct inject_batch *b, pid_t probe)
{
	inject_batch_try(b, "kcmp with cr's Landlock probe", SYS_kcmp, (uint64_t)probe, (uint64_t)probe, KCMP_VM, 0,
			 0, 0);
}

static int check_answer(const struct dump_task *t, pid_t tid, int64_t ret, cr_error_t *err)
{
	if (ret == -EPERM)
		return cr_error(err, 0, "pid %d thread %d: in a Landlock domain (landlock_restrict_self), or confined "
				"by another security module's ptrace rule: unsupported (it may not read-access a probe "
				"of its own uid; no call reads a domain back, and the restored thread would run "
				"unconfined)", t->pid, tid);
	if (ret < 0)
		return cr_error(err, (int)-ret, "pid %d thread %d: kcmp with cr's Landlock probe", t->pid, tid);
	return 0;
}

/* The pid the thread th of t asks kcmp about (its probe's, started by
 * landlock_collect). */
static pid_t probe_seen(const struct dump_task *t, const struct dump_thread *th)
{
	const struct probe *pr = probe_started(t, th->status.uid[0], th->status.gid[0]);

	return pr ? pr->seen : 0;
}

/* Every thread's probe is started here, where a failure can be told; the
 * main thread's kcmp goes with every kind's calls. */
static int landlock_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->n_threads; i++)
		if (probe_for(t->pid, t->pidns, t->threads[i].status.uid[0], t->threads[i].status.gid[0], err) < 0)
			return cr_error_wrap(err, "pid %d thread %d", t->pid, t->threads[i].tid);
	return 0;
}

static void landlock_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	ask_kcmp(&t->asked, probe_seen(t, &t->threads[0]));
}

static int landlock_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	(void)ctx;
	return check_answer(t, t->pid, inject_batch_ret(&t->asked, first), err);
}

static void landlock_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				struct inject_batch *b)
{
	(void)ctx;
	ask_kcmp(b, probe_seen(t, th));
}

static int landlock_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				    const struct inject_batch *b, size_t first, cr_error_t *err)
{
	(void)ctx;
	return check_answer(t, th->tid, inject_batch_ret(b, first), err);
}

static void landlock_release_dump(struct dump_ctx *ctx)
{
	(void)ctx;
	for (size_t i = 0; i < n_probes; i++)
		probe_reap(&probes[i]);
	free(probes);
	probes = NULL;
	n_probes = 0;
}

const struct state_kind state_landlock = {
	.name = "Landlock domains",
	.collect = landlock_collect,
	.ask = landlock_ask,
	.answered = landlock_answered,
	.ask_thread = landlock_ask_thread,
	.answered_thread = landlock_answered_thread,
	.release_dump = landlock_release_dump,
};
