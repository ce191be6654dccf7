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
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a probe is made for: a thread's real ids, its pid namespace and
 * its process's root (the probe's own root, so that a process that reads
 * /proc/PROBE/root reaches nothing it could not before). */
struct probe_key {
	uint32_t uid, gid;
	uint64_t pidns;
	uint64_t root_dev, root_ino;
};

struct probe {
	struct probe_key key;
	pid_t seen;     /* its pid in its namespace: what the thread asks kcmp about */
	pid_t pid;      /* its pid in cr's */
	pid_t helper;   /* its parent when it lives in another namespace, else 0 */
};

#define PROBE_READY_MS 5000

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
 * ready pipe as fd 3, fds 0-2 on /dev/null and no environment.  The exec
 * leaves nothing of cr's memory (its signing and image keys, copies of
 * them on its threads' stacks) to a process that takes another uid and
 * becomes dumpable.  argv: made before the fork (cr has threads: raw
 * calls only here). */
static _Noreturn void probe_run(char *const argv[], int ready)
{
	static char *const no_env[] = { NULL };
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || keep_only(ready) < 0)
		_exit(1);
	execve("/proc/self/exe", argv, no_env);
	_exit(1);
}

/* A decimal id: digits only, below 2^32 - 1 (-1 means "unchanged" to
 * setresuid). */
static bool parse_id(const char *s, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *out < 0xffffffffUL;
}

/* argv: UID GID PID PARENT: PID's root (in cr's /proc) is the probe's
 * root; PARENT, its parent's pid (0 where it cannot see it: a helper's
 * child), which must still be there once the parent-death signal is set. */
int landlock_probe_main(int argc, char **argv)
{
	unsigned long uid, gid, root_pid, parent;
	char root[64];
	pid_t me;

	if (argc != 6 || !parse_id(argv[2], &uid) || !parse_id(argv[3], &gid) || !parse_id(argv[4], &root_pid) ||
	    !parse_id(argv[5], &parent))
		return 1;
	snprintf(root, sizeof(root), "/proc/%lu/root", root_pid);
	if (chdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0 || syscall(SYS_setgroups, 0, NULL) < 0 ||
	    syscall(SYS_setresgid, gid, gid, gid) < 0 || syscall(SYS_setresuid, uid, uid, uid) < 0 ||
	    caps_drop_all() < 0 || prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 ||
	    (parent != 0 && getppid() != (pid_t)parent))
		return 1;   /* cr died before the signal was set: no probe left behind */
	me = getpid();
	if (write(3, &me, sizeof(me)) != (ssize_t)sizeof(me))
		return 1;
	close(3);
	for (;;)
		pause();
}

/* In the forked helper: enters the pid namespace of nsfd, forks the probe
 * there, and tells out the probe's pid there and in cr's namespace; then
 * holds it until cr's SIGTERM: a probe that dies stays a zombie of the
 * helper, so that its pid is no other process's while the dump may ask
 * about it. */
static _Noreturn void helper_run(char *const argv[], pid_t cr, int nsfd, int out)
{
	sigset_t term;
	pid_t pids[2];
	int p[2], sig;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != cr || sigprocmask(SIG_BLOCK, &term, NULL) < 0 ||
	    setns(nsfd, CLONE_NEWPID) < 0 || (out = keep_only(out)) < 0 || pipe2(p, O_CLOEXEC) < 0)
		_exit(1);
	pids[1] = fork();
	if (pids[1] == 0) {
		close(p[0]);
		sigprocmask(SIG_UNBLOCK, &term, NULL);
		probe_run(argv, p[1]);
	}
	close(p[1]);
	if (pids[1] < 0 || read(p[0], &pids[0], sizeof(pids[0])) != (ssize_t)sizeof(pids[0]) ||
	    write(out, pids, sizeof(pids)) != (ssize_t)sizeof(pids)) {
		if (pids[1] > 0)
			kill(pids[1], SIGKILL);
		_exit(1);
	}
	while (sigwait(&term, &sig) != 0)
		;
	kill(pids[1], SIGKILL);
	while (waitpid(pids[1], NULL, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* A probe in another namespace is its helper's child: the helper, told
 * by SIGTERM, kills and reaps it (cr never signals that pid).  pid 0: a
 * probe found dead and reaped already. */
static void probe_reap(const struct probe *pr)
{
	if (pr->helper != 0) {
		kill(pr->helper, SIGTERM);
		reap(pr->helper);
	} else if (pr->pid > 0) {
		kill(pr->pid, SIGKILL);
		reap(pr->pid);
	}
}

/* Whether the probe still runs.  One made before the freeze may have been
 * killed since.  Its pid stays its own meanwhile (a zombie of cr's, or
 * of its helper's until cr says), so no process of the tree can have
 * taken it; a dead one is reaped here (pid 0 then) or by probe_reap. */
static bool probe_alive(struct probe *pr)
{
	struct proc_stat st;
	cr_error_t err = NULL;
	bool alive;

	if (pr->helper == 0) {
		alive = waitpid(pr->pid, NULL, WNOHANG) == 0;
		if (!alive)
			pr->pid = 0;
		return alive;
	}
	if (waitpid(pr->helper, NULL, WNOHANG) != 0) {
		pr->helper = pr->pid = 0;   /* gone with its probe */
		return false;
	}
	alive = proc_read_stat(pr->pid, &st, &err) == 0 && st.state != 'Z' && st.state != 'X';
	cr_error_release(&err);
	return alive;
}

/* Forks the probe (through a helper when nsfd is a pid namespace to enter,
 * else -1) and reads what it tells. */
static int probe_start(struct probe *pr, pid_t root_pid, int nsfd, cr_error_t *err)
{
	pid_t pids[2] = { 0, 0 }, child, me = getpid();
	char ids[4][16], arg0[] = "cr", arg1[] = LANDLOCK_PROBE_ARG;
	char *argv[] = { arg0, arg1, ids[0], ids[1], ids[2], ids[3], NULL };
	struct pollfd pfd = { .events = POLLIN };
	ssize_t n = -1;
	int p[2];

	snprintf(ids[0], sizeof(ids[0]), "%u", pr->key.uid);
	snprintf(ids[1], sizeof(ids[1]), "%u", pr->key.gid);
	snprintf(ids[2], sizeof(ids[2]), "%d", (int)root_pid);
	snprintf(ids[3], sizeof(ids[3]), "%d", nsfd >= 0 ? 0 : (int)me);   /* a helper's child sees no parent */
	if (pipe2(p, O_CLOEXEC) < 0)
		return cr_error(err, errno, "a pipe for a Landlock probe");
	child = fork();
	if (child == 0) {
		close(p[0]);
		if (nsfd >= 0)
			helper_run(argv, me, nsfd, p[1]);
		probe_run(argv, p[1]);
	}
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return cr_error(err, errno, "fork a Landlock probe");
	}
	pfd.fd = p[0];
	while (poll(&pfd, 1, PROBE_READY_MS) < 0 && errno == EINTR)
		;
	if (pfd.revents != 0)
		while ((n = read(p[0], pids, nsfd >= 0 ? sizeof(pids) : sizeof(pids[0]))) < 0 && errno == EINTR)
			;
	close(p[0]);
	pr->seen = pids[0];
	pr->pid = nsfd >= 0 ? pids[1] : child;
	pr->helper = nsfd >= 0 ? child : 0;
	if (n != (nsfd >= 0 ? (ssize_t)sizeof(pids) : (ssize_t)sizeof(pids[0]))) {
		kill(child, SIGKILL);   /* a helper: its probe goes by its parent-death signal */
		reap(child);
		return cr_error(err, 0, "a Landlock probe could not take uid %u and gid %u%s%s", pr->key.uid,
				pr->key.gid, nsfd >= 0 ? " in the pid namespace of the process" : "",
				pfd.revents == 0 ? " (no answer in 5 s)" : "");
	}
	return 0;
}

/* The root of the last process asked about (stat of /proc/PID/root): each
 * of its threads asks for its probe again.  Forgotten at each process's
 * collection (landlock_collect), so that one read before the freeze is
 * never used after it. */
static struct {
	pid_t pid;
	struct stat st;
} root_seen;

/* What a thread of process pid needs its probe for. */
static int key_of(pid_t pid, uint64_t pidns, uint32_t uid, uint32_t gid, struct probe_key *k, cr_error_t *err)
{
	char root[64];

	if (root_seen.pid != pid) {
		snprintf(root, sizeof(root), "/proc/%d/root", pid);
		if (stat(root, &root_seen.st) < 0) {
			root_seen.pid = 0;
			return cr_error(err, errno, "stat %s", root);
		}
		root_seen.pid = pid;
	}
	*k = (struct probe_key){ .uid = uid, .gid = gid, .pidns = pidns, .root_dev = root_seen.st.st_dev,
				 .root_ino = root_seen.st.st_ino };
	return 0;
}

/* The probe for k, or NULL when none is started yet. */
static struct probe *probe_find(const struct probe_key *k)
{
	for (size_t i = 0; i < n_probes; i++)
		if (memcmp(&probes[i].key, k, sizeof(*k)) == 0)
			return &probes[i];
	return NULL;
}

static const struct probe *probe_started(const struct dump_task *t, uint32_t uid, uint32_t gid)
{
	struct probe_key k;
	cr_error_t err = NULL;

	if (key_of(t->pid, t->pidns, uid, gid, &k, &err) < 0) {
		cr_error_release(&err);
		return NULL;   /* kcmp with pid 0 then fails: the thread's answer says so */
	}
	return probe_find(&k);
}

/* The probe for uid and gid in the pid namespace pidns of process pid,
 * under its root, started on first use (again if it died). */
static int probe_for(pid_t pid, uint64_t pidns, uint32_t uid, uint32_t gid, cr_error_t *err)
{
	struct probe pr = { 0 }, *found;
	cleanup_close int nsfd = -1;
	char path[64];

	if (key_of(pid, pidns, uid, gid, &pr.key, err) < 0)
		return -1;
	found = probe_find(&pr.key);
	if (found != NULL && probe_alive(found))
		return 0;
	if (found != NULL) {
		pr_debug("the Landlock probe for uid %u gid %u is gone: another one is made", uid, gid);
		probe_reap(found);
		*found = probes[--n_probes];
	}
	if (!proc_shares_ns(pid, "pid")) {
		snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
		nsfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return cr_error(err, errno, "open %s", path);
	}
	if (probe_start(&pr, pid, nsfd, err) < 0)
		return -1;
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
	root_seen.pid = 0;   /* read again, now that the process is frozen */
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

/* Every thread has answered: the probes go now, before the tree is
 * killed.  A probe inside a pid namespace of the tree dies with it, and
 * its zombie, which the helper holds, would keep the namespace's init
 * from being reaped until the dump ended (a pid namespace's init waits
 * for every task of it to be reaped). */
static int landlock_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	(void)err;
	landlock_release_dump(ctx);
	return 0;
}

const struct state_kind state_landlock = {
	.name = "Landlock domains",
	.collect = landlock_collect,
	.check_tree = landlock_check_tree,
	.ask = landlock_ask,
	.answered = landlock_answered,
	.ask_thread = landlock_ask_thread,
	.answered_thread = landlock_answered_thread,
	.release_dump = landlock_release_dump,
};
