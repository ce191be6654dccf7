/*
 * w_pidns STATE_DIR
 *
 * Nested pid namespaces, three deep below the root's, with processes at
 * every level, and a process that unshared a pid namespace for its children.
 * By index (parent; pid in its own namespace):
 *
 *   0  R    the root, in the harness's namespace
 *   1  N1   R's child made with clone(CLONE_NEWPID): init of ns1 (pid 1)
 *   2  P1   N1's child (fork): pid 2 in ns1, leads its own process group
 *   3  N2   N1's child with CLONE_NEWPID: init of ns2 (pid 3 in ns1)
 *   4  P2   N2's child: pid 2 in ns2, with a second thread
 *   5  N3   N2's child with CLONE_NEWPID: init of ns3
 *   6  P3   N3's child: pid 2 in ns3 (four pids: host, ns1, ns2, ns3), with
 *           a second thread; leads its own session (setsid), so its NSsid
 *           and NSpgid are non-zero at every level
 *   7  Z3   N3's child that exited with status 3: a zombie in ns3, never reaped
 *   8  U    R's child; calls unshare(CLONE_NEWPID), then forks ...
 *   9  U1   ... pid 1 of the new namespace (its init) and ...
 *  10  U2   ... pid 2 of it (its parent U is outside: getppid() is 0)
 *
 * Every process (and thread) records, from inside, its pid, parent pid, its
 * pid as /proc sees it (readlink /proc/self: the harness's namespace) and
 * the NSpid/NStgid/NSpgid/NSsid lines of /proc/self/status (for a thread:
 * its NSpid line of /proc/thread-self/status). /proc is the harness's mount,
 * so /proc/<pid> means a pid of the harness's namespace; only /proc/self and
 * /proc/thread-self are used inside.
 *
 * ready.<i> lines (pids as the harness sees them):
 *   "<i> <N|Z> <pid> <ppid> <tid,...|-> <role>"
 *
 * On SIGUSR2 each process forwards the trigger to its live children and
 * checks that all it recorded is unchanged; threads check theirs and are
 * joined (timed); N3 checks its zombie's status; the root aggregates
 * res.<i> (see wl_tree.h).
 */
#include "wl.h"
#include "wl_tree.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#define N_PROCS 11
#define IDX_Z3 7

struct spec {
	int parent;
	bool newpid;            /* created with clone(CLONE_NEWPID) */
	bool unshare_children;  /* unshare(CLONE_NEWPID) before forking */
	bool thread;            /* has a second thread */
	int zombie_exit;
	pid_t want_pid;         /* getpid() inside, 0: any */
	const char *role;
	char group;             /* 'g': setpgid(0, 0), 's': setsid() */
};

static const struct spec specs[N_PROCS] = {
	[0] = { -1, false, false, false, 0, 0, "root" },
	[1] = { 0, true, false, false, 0, 1, "init-ns1" },
	[2] = { 1, false, false, false, 0, 2, "ns1-child", 'g' },
	[3] = { 1, true, false, false, 0, 1, "init-ns2" },
	[4] = { 3, false, false, true, 0, 2, "ns2-child" },
	[5] = { 3, true, false, false, 0, 1, "init-ns3" },
	[6] = { 5, false, false, true, 0, 2, "ns3-child", 's' },
	[IDX_Z3] = { 5, false, false, false, 3, 0, "ns3-zombie" },
	[8] = { 0, false, true, false, 0, 0, "unsharer" },
	[9] = { 8, false, false, false, 0, 1, "init-nsU" },
	[10] = { 8, false, false, false, 0, 2, "nsU-second" },
};

/* ---- what a process or thread records about itself ---------------------- */

struct ids {
	pid_t pid, ppid, tid;
	char proc_self[64];      /* readlink /proc/self or /proc/thread-self */
	char ns_lines[512];      /* the NS* lines of its status file */
};

static void read_ns_lines(const char *status_path, char *out, size_t size)
{
	char buf[8192];
	size_t len = 0;

	out[0] = '\0';
	if (wl_read_path(status_path, buf, sizeof(buf)) <= 0)
		return;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "NSpid:", 6) != 0 && strncmp(line, "NStgid:", 7) != 0 &&
		    strncmp(line, "NSpgid:", 7) != 0 && strncmp(line, "NSsid:", 6) != 0)
			continue;
		len += (size_t)snprintf(out + len, size - len, "%s|", line);
		if (len >= size)
			break;
	}
}

static void ids_record(struct ids *r, bool thread)
{
	ssize_t n;

	r->pid = getpid();
	r->ppid = getppid();
	r->tid = (pid_t)syscall(SYS_gettid);
	n = readlink(thread ? "/proc/thread-self" : "/proc/self", r->proc_self, sizeof(r->proc_self) - 1);
	r->proc_self[n > 0 ? n : 0] = '\0';
	read_ns_lines(thread ? "/proc/thread-self/status" : "/proc/self/status", r->ns_lines, sizeof(r->ns_lines));
}

/* Differences between then and now, into out (empty when equal). */
static void ids_compare(const struct ids *then, bool thread, char *out, size_t size)
{
	struct ids now;

	ids_record(&now, thread);
	if (wt_me == 0)
		now.ppid = then->ppid;   /* the root's parent: the harness, then the subreaper */
	out[0] = '\0';
	if (now.pid != then->pid || now.ppid != then->ppid || now.tid != then->tid)
		snprintf(out, size, "pid/ppid/tid %d/%d/%d, was %d/%d/%d", (int)now.pid, (int)now.ppid,
			 (int)now.tid, (int)then->pid, (int)then->ppid, (int)then->tid);
	else if (strcmp(now.proc_self, then->proc_self) != 0)
		snprintf(out, size, "/proc sees it as %s, was %s", now.proc_self, then->proc_self);
	else if (strcmp(now.ns_lines, then->ns_lines) != 0)
		snprintf(out, size, "status '%s', was '%s'", now.ns_lines, then->ns_lines);
}

/* ---- the second thread ------------------------------------------------------ */

static struct ids thread_ids;
static volatile int thread_ready, thread_go;
static char thread_err[1100];
static pthread_t thread_handle;

static void *thread_main(void *arg)
{
	(void)arg;
	ids_record(&thread_ids, true);
	__atomic_store_n(&thread_ready, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&thread_go, __ATOMIC_ACQUIRE))
		wt_sleep_ms(10);
	ids_compare(&thread_ids, true, thread_err, sizeof(thread_err));
	return (void *)0x7e57;
}

static void thread_start(void)
{
	sigset_t usr2, old;
	int err;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	err = pthread_create(&thread_handle, NULL, thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		wt_fatal("pthread_create: %s", strerror(err));
	while (!__atomic_load_n(&thread_ready, __ATOMIC_ACQUIRE))
		wt_sleep_ms(1);
}

static void thread_verify(void)
{
	struct timespec deadline;
	void *ret = NULL;
	int err;

	__atomic_store_n(&thread_go, 1, __ATOMIC_RELEASE);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 3;
	err = pthread_timedjoin_np(thread_handle, &ret, &deadline);
	if (!wt_check(err == 0, "pthread_join of thread %d: %s", (int)thread_ids.tid, strerror(err)))
		return;
	wt_check(ret == (void *)0x7e57, "thread returned %p", ret);
	wt_check(thread_err[0] == '\0', "thread %d: %s", (int)thread_ids.tid, thread_err);
}

/* ---- the processes ------------------------------------------------------- */

static struct ids my_ids;
static pid_t kid_pid[N_PROCS];
static int kid_idx[N_PROCS], n_kids;

static __attribute__((noreturn)) void proc_main(int i);

static pid_t host_pid_of_self(void)
{
	char buf[64];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	buf[n > 0 ? n : 0] = '\0';
	return (pid_t)atoi(buf);
}

/* The pid of this process's parent as /proc (the harness) sees it. */
static pid_t host_ppid_of_self(void)
{
	char buf[1024];
	const char *p;
	int ppid = -1;

	if (wl_read_path("/proc/self/stat", buf, sizeof(buf)) > 0 && (p = strrchr(buf, ')')))
		sscanf(p + 2, "%*c %d", &ppid);
	return (pid_t)ppid;
}

static void spawn(int i)
{
	pid_t pid;

	if (specs[i].newpid)
		pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
	else
		pid = fork();
	if (pid < 0)
		wt_fatal("%s for process %d: %s", specs[i].newpid ? "clone(CLONE_NEWPID)" : "fork", i,
			 strerror(errno));
	if (pid == 0) {
		wt_become(i);
		n_kids = 0;
		proc_main(i);
	}
	kid_pid[n_kids] = pid;
	kid_idx[n_kids++] = i;
}

static void write_ready(int i, char kind)
{
	char tids[64];

	if (specs[i].thread) {
		const char *t = strrchr(thread_ids.proc_self, '/');

		snprintf(tids, sizeof(tids), "%d,%s", (int)host_pid_of_self(), t ? t + 1 : "?");
	} else {
		snprintf(tids, sizeof(tids), "%s", kind == 'Z' ? "-" : my_ids.proc_self);
	}
	wt_write_ready(i, "%d %c %d %d %s %s\n", i, kind, (int)host_pid_of_self(), (int)host_ppid_of_self(), tids,
		       specs[i].role);
}

static void verify_self(void)
{
	char diff[1100];

	ids_compare(&my_ids, false, diff, sizeof(diff));
	wt_check(diff[0] == '\0', "%s: %s", specs[wt_me].role, diff);
	if (specs[wt_me].want_pid)
		wt_check(getpid() == specs[wt_me].want_pid, "%s: pid %d, want %d", specs[wt_me].role, (int)getpid(),
			 (int)specs[wt_me].want_pid);
	if (specs[wt_me].thread)
		thread_verify();
	for (int k = 0; k < n_kids; k++)
		if (specs[kid_idx[k]].zombie_exit)
			wt_check_zombie(kid_idx[k], kid_pid[k], CLD_EXITED, specs[kid_idx[k]].zombie_exit);
}

static void proc_main(int i)
{
	if (specs[i].group == 'g' && setpgid(0, 0) < 0)
		wt_fatal("setpgid: %s", strerror(errno));
	if (specs[i].group == 's' && setsid() < 0)
		wt_fatal("setsid: %s", strerror(errno));
	ids_record(&my_ids, false);
	if (specs[i].want_pid && my_ids.pid != specs[i].want_pid)
		wt_fatal("%s has pid %d, meant %d", specs[i].role, (int)my_ids.pid, (int)specs[i].want_pid);
	if (specs[i].zombie_exit) {
		write_ready(i, 'Z');
		_exit(specs[i].zombie_exit);
	}
	if (specs[i].unshare_children && unshare(CLONE_NEWPID) < 0)
		wt_fatal("unshare(CLONE_NEWPID): %s", strerror(errno));
	for (int c = 0; c < N_PROCS; c++)
		if (specs[c].parent == i)
			spawn(c);
	for (int k = 0; k < n_kids; k++) {
		siginfo_t si;

		if (specs[kid_idx[k]].zombie_exit &&
		    waitid(P_PID, (id_t)kid_pid[k], &si, WEXITED | WNOWAIT) < 0)
			wt_fatal("waitid: %s", strerror(errno));
	}
	if (specs[i].thread)
		thread_start();
	write_ready(i, 'N');
	if (i == 0) {
		wt_root_await_ready(N_PROCS, 20);
		wl_ready();
	}

	wl_wait_trigger();
	for (int k = 0; k < n_kids; k++)
		if (!specs[kid_idx[k]].zombie_exit)
			kill(kid_pid[k], SIGUSR2);
	verify_self();
	if (i == 0) {
		static bool want[N_PROCS];

		for (int c = 1; c < N_PROCS; c++)
			want[c] = !specs[c].zombie_exit;
		wt_root_collect(N_PROCS, want, 15);
		wl_check(wt_fail_count == 0, "root: %s", wt_fail_text);
		wt_reap(kid_pid, n_kids, 10);
		wl_finish();
	}
	wt_write_result();
	wt_reap(kid_pid, n_kids, 15);
	/* U2 lives in U1's namespace without being its child: when U1 (its
	 * init) exits, the kernel kills U2, so U1 waits for U2's result. */
	for (int c = 0; c < N_PROCS; c++) {
		int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10 * 1000000000LL;

		if (specs[c].parent == specs[i].parent && specs[i].want_pid == 1 && !specs[i].newpid &&
		    c != i && !specs[c].zombie_exit)
			while (!wt_file_exists("res", c) && wl_now_ns(CLOCK_MONOTONIC) < deadline)
				wt_sleep_ms(5);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	wt_become(0);
	proc_main(0);
}
