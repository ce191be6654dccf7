/*
 * w_tree STATE_DIR [FANOUT...]
 *
 * A tree of processes (default fanouts 4 3 3: 1 + 4 + 12 + 36 = 53 running
 * processes in four levels), numbered breadth first, the root being 0. Each
 * process holds memory derived from the token and its index (a heap block and
 * a .bss area), records its pid and parent pid, and some have extra threads:
 * process i has 2-4 threads when i % 6 == 0 (the root has 4). Each extra
 * thread records its tid and keeps a TLS value; in a process with 3 or more
 * threads, thread 1 holds a robust mutex. Beside the numbered tree:
 *
 *   S      a child of the root, stopped (SIGSTOP) before ready
 *   Z42    a child of the root that exited with status 42, never reaped
 *   ZTERM  a child of the root killed by SIGTERM, never reaped
 *   Z7     a child of process 2 that exited with status 7, never reaped
 *   fd 40  a regular file opened by the root (offset 100) and inherited by
 *          process 1 only: one file description, one offset
 *
 * ready.<i> lines (concatenated into "tree"; pids as the harness sees them):
 *   "<i> N <pid> <ppid> <tid,tid,...>"   running process (main thread first)
 *   "<i> S <pid> <ppid> <pid>"           the stopped child
 *   "<i> Z <pid> <ppid> -"               a zombie
 *
 * On SIGUSR2 every running process forwards the trigger to its running
 * children, then verifies: same pid and parent pid, its memory, each
 * thread's tid and TLS value (checked by the thread itself), the thread list
 * in /proc/self/task, pthread_join of every thread (timed: a thread whose
 * clear_child_tid was lost is never joined) and, where there is one, that the
 * robust mutex left locked by a thread that exited is EOWNERDEAD (timed: a
 * lost robust list leaves it locked for ever). The parent of a zombie checks
 * it is still a zombie with its exit status (waitid WNOHANG|WNOWAIT, then
 * waitpid reaps it). Process 1 checks fd 40 is its parent's description
 * (kcmp) at offset 100 and writes 10 bytes. The root also checks: S is still
 * stopped (State T) until the root sends SIGCONT (then S verifies itself),
 * fd 40's offset moved to 110 by process 1's write, and every process's
 * res.<i>. Each non-root process reaps its children and exits.
 */
#include "wl.h"
#include "wl_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <sys/syscall.h>

#define MAX_LEVELS 6
#define MAX_NODES 400
#define MAX_KIDS 16
#define MAX_THREADS 4
#define SHARED_FD 40
#define SHARED_INIT 100
#define SHARED_ADD 10
#define MEM_WORDS 8192   /* 64 KiB of heap per process */
#define BSS_WORDS 1024

/* ---- the shape ----------------------------------------------------------- */

static int n_nodes;                 /* running processes of the numbered tree */
static int parent_of[MAX_NODES], first_child[MAX_NODES], n_children_of[MAX_NODES];
static int idx_stopped, idx_z42, idx_zterm, idx_z7, n_total;

static void build_shape(int argc, char **argv)
{
	int fanout[MAX_LEVELS] = { 4, 3, 3 }, levels = 3;
	int level_start = 0, level_count = 1;

	if (argc > 2) {
		levels = 0;
		for (int i = 2; i < argc && levels < MAX_LEVELS; i++)
			fanout[levels++] = atoi(argv[i]);
	}
	n_nodes = 1;
	parent_of[0] = -1;
	for (int l = 0; l < levels; l++) {
		int next_start = n_nodes;

		for (int k = level_start; k < level_start + level_count; k++) {
			first_child[k] = n_nodes;
			n_children_of[k] = fanout[l];
			for (int c = 0; c < fanout[l]; c++) {
				if (n_nodes >= MAX_NODES - 8 || fanout[l] > MAX_KIDS - 4)
					wl_fatal("tree too large");
				parent_of[n_nodes++] = k;
			}
		}
		level_start = next_start;
		level_count = n_nodes - next_start;
	}
	idx_stopped = n_nodes;
	idx_z42 = n_nodes + 1;
	idx_zterm = n_nodes + 2;
	idx_z7 = n_nodes > 2 ? n_nodes + 3 : -1;
	n_total = n_nodes + (idx_z7 >= 0 ? 4 : 3);
}

static int threads_of(int i)
{
	if (i == 0)
		return 4;
	return i % 6 == 0 ? 2 + (i / 6) % 3 : 1;
}

/* ---- per-process state ----------------------------------------------------- */

static pid_t my_pid, my_ppid;
static pid_t kid_pid[MAX_KIDS];
static int kid_idx[MAX_KIDS], n_kids;
static uint64_t *mem;
static uint64_t bss_area[BSS_WORDS];
static __thread uint64_t tls_value;

static uint64_t tls_want(int thread)
{
	return wl_seed(0x71500 + (uint64_t)wt_me * 16 + (uint64_t)thread);
}

static uint64_t join_want(int thread)
{
	return wl_seed(0x70100 + (uint64_t)wt_me * 16 + (uint64_t)thread) | 1;
}

static void memory_build(void)
{
	uint64_t rng = wl_seed(0x3e3000 + (uint64_t)wt_me);

	mem = malloc(MEM_WORDS * sizeof(*mem));
	if (!mem)
		wt_fatal("malloc");
	for (size_t i = 0; i < MEM_WORDS; i++)
		mem[i] = wl_xorshift(&rng);
	for (size_t i = 0; i < BSS_WORDS; i++)
		bss_area[i] = wl_xorshift(&rng) ^ (uint64_t)wt_me;
	tls_value = tls_want(0);
}

static void memory_verify(void)
{
	uint64_t rng = wl_seed(0x3e3000 + (uint64_t)wt_me);

	for (size_t i = 0; i < MEM_WORDS; i++)
		if (!wt_check(mem[i] == wl_xorshift(&rng), "heap differs at word %zu", i))
			return;
	for (size_t i = 0; i < BSS_WORDS; i++)
		if (!wt_check(bss_area[i] == (wl_xorshift(&rng) ^ (uint64_t)wt_me), ".bss differs at word %zu", i))
			return;
	wt_check(tls_value == tls_want(0), "main thread TLS %#" PRIx64 ", want %#" PRIx64, tls_value, tls_want(0));
}

/* ---- threads ----------------------------------------------------------------- */

struct thr {
	int n;                      /* 1.. */
	bool robust_holder;
	pthread_t handle;
	pid_t tid;
	uint64_t *tls_addr;
	volatile int started;
	char err[256];
};

static struct thr thr[MAX_THREADS];
static int n_thr;
static pthread_mutex_t go_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cond = PTHREAD_COND_INITIALIZER;
static int go;
static pthread_mutex_t robust;

static void *thread_main(void *arg)
{
	struct thr *t = arg;

	t->tid = (pid_t)syscall(SYS_gettid);
	tls_value = tls_want(t->n);
	t->tls_addr = &tls_value;
	if (t->robust_holder && pthread_mutex_lock(&robust) != 0)
		snprintf(t->err, sizeof(t->err), "robust lock failed before ready");
	__atomic_store_n(&t->started, 1, __ATOMIC_RELEASE);

	pthread_mutex_lock(&go_lock);
	while (!go) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&go_cond, &go_lock, &ts);
	}
	pthread_mutex_unlock(&go_lock);

	pid_t tid = (pid_t)syscall(SYS_gettid);
	if (tid != t->tid)
		snprintf(t->err, sizeof(t->err), "thread %d: tid %d, was %d", t->n, (int)tid, (int)t->tid);
	else if (tls_value != tls_want(t->n) || &tls_value != t->tls_addr)
		snprintf(t->err, sizeof(t->err), "thread %d (tid %d): TLS %#" PRIx64 " at %p, want %#" PRIx64 " at %p",
			 t->n, (int)tid, tls_value, (void *)&tls_value, tls_want(t->n), (void *)t->tls_addr);
	/* The robust holder returns with the mutex still locked. */
	return (void *)(uintptr_t)join_want(t->n);
}

static void threads_start(void)
{
	pthread_mutexattr_t ma;
	sigset_t usr2, old;

	n_thr = threads_of(wt_me) - 1;
	if (n_thr <= 0)
		return;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	if (pthread_mutex_init(&robust, &ma) != 0)
		wt_fatal("robust mutex init");
	/* Only the main thread takes the trigger. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	for (int i = 0; i < n_thr; i++) {
		int err;

		thr[i].n = i + 1;
		thr[i].robust_holder = n_thr >= 2 && i == 0;
		err = pthread_create(&thr[i].handle, NULL, thread_main, &thr[i]);
		if (err)
			wt_fatal("pthread_create: %s", strerror(err));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	for (int i = 0; i < n_thr; i++)
		while (!__atomic_load_n(&thr[i].started, __ATOMIC_ACQUIRE))
			wt_sleep_ms(1);
}

static bool tid_known(pid_t tid)
{
	if (tid == my_pid)
		return true;
	for (int i = 0; i < n_thr; i++)
		if (thr[i].tid == tid)
			return true;
	return false;
}

static void threads_verify(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int count = 0;

	if (wt_check(d != NULL, "opendir /proc/self/task: %s", strerror(errno))) {
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			count++;
			wt_check(tid_known(atoi(e->d_name)), "unknown thread %s in /proc/self/task", e->d_name);
		}
		closedir(d);
		wt_check(count == n_thr + 1, "%d threads in /proc/self/task, want %d", count, n_thr + 1);
	}
	if (n_thr == 0)
		return;

	pthread_mutex_lock(&go_lock);
	go = 1;
	pthread_cond_broadcast(&go_cond);
	pthread_mutex_unlock(&go_lock);

	for (int i = 0; i < n_thr; i++) {
		struct timespec deadline;
		void *ret = NULL;
		int err;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 3;
		err = pthread_timedjoin_np(thr[i].handle, &ret, &deadline);
		if (!wt_check(err == 0, "pthread_join of thread %d (tid %d): %s", thr[i].n, (int)thr[i].tid,
			      strerror(err)))
			continue;
		wt_check(ret == (void *)(uintptr_t)join_want(thr[i].n), "thread %d returned %p, want %p", thr[i].n,
			 ret, (void *)(uintptr_t)join_want(thr[i].n));
		wt_check(thr[i].err[0] == '\0', "%s", thr[i].err);
	}
	if (n_thr >= 2) {
		struct timespec deadline;
		int err;

		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += 2;
		err = pthread_mutex_timedlock(&robust, &deadline);
		wt_check(err == EOWNERDEAD, "robust mutex left by exited thread %d: lock gave %s, want EOWNERDEAD",
			 (int)thr[0].tid, err ? strerror(err) : "success");
		if (err == EOWNERDEAD) {
			pthread_mutex_consistent(&robust);
			pthread_mutex_unlock(&robust);
		}
	}
}

static void tids_text(char *buf, size_t size)
{
	int n = snprintf(buf, size, "%d", (int)my_pid);

	for (int i = 0; i < n_thr && n > 0 && (size_t)n < size; i++)
		n += snprintf(buf + n, size - (size_t)n, ",%d", (int)thr[i].tid);
}

/* ---- the processes ------------------------------------------------------- */

static void process_verify(void)
{
	wt_check(getpid() == my_pid && syscall(SYS_getpid) == my_pid, "pid %d, was %d", (int)getpid(), (int)my_pid);
	if (wt_me != 0)
		wt_check(getppid() == my_ppid, "parent %d, was %d (reparented?)", (int)getppid(), (int)my_ppid);
	wt_check(syscall(SYS_gettid) == my_pid, "main thread tid %ld, want %d", syscall(SYS_gettid), (int)my_pid);
	memory_verify();
	wt_check(wl_status_field("TracerPid") == 0, "still traced");
}

static void forward_trigger(void)
{
	for (int i = 0; i < n_kids; i++)
		if (kid_idx[i] < n_nodes)
			kill(kid_pid[i], SIGUSR2);
}

static void shared_fd_verify_child(void)
{
	char buf[SHARED_ADD];
	off_t off = lseek(SHARED_FD, 0, SEEK_CUR);
	long same = syscall(SYS_kcmp, getpid(), getppid(), KCMP_FILE, SHARED_FD, SHARED_FD);

	wt_check(same == 0, "fd %d is not the same description as the parent's fd %d (kcmp %ld: %s)", SHARED_FD,
		 SHARED_FD, same, same < 0 ? strerror(errno) : "differ");
	wt_check(off == SHARED_INIT, "fd %d offset %lld, want %d", SHARED_FD, (long long)off, SHARED_INIT);
	wt_check((fcntl(SHARED_FD, F_GETFL) & O_ACCMODE) == O_RDWR, "fd %d is not O_RDWR", SHARED_FD);
	memset(buf, 'c', sizeof(buf));
	ssize_t n = write(SHARED_FD, buf, sizeof(buf));
	wt_check(n == SHARED_ADD, "write fd %d: %s", SHARED_FD, n < 0 ? strerror(errno) : "short write");
}

static void add_kid(pid_t pid, int index)
{
	kid_pid[n_kids] = pid;
	kid_idx[n_kids++] = index;
}

static __attribute__((noreturn)) void node_main(int index);

static void become(int index)
{
	wt_become(index);
	n_kids = 0;
	n_thr = 0;
	go = 0;
	if (index != 1)
		close(SHARED_FD);
	my_pid = getpid();
	my_ppid = getppid();
}

static pid_t spawn(int index)
{
	pid_t pid = fork();

	if (pid < 0)
		wt_fatal("fork for process %d: %s", index, strerror(errno));
	if (pid == 0) {
		become(index);
		node_main(index);
	}
	add_kid(pid, index);
	return pid;
}

/* A child that becomes a zombie: exits with code, or waits to be killed
 * by signal. Its ready line is written by the parent once it is dead. */
static void spawn_zombie(int index, int code, int signal)
{
	siginfo_t si;
	pid_t pid = fork();

	if (pid < 0)
		wt_fatal("fork for zombie %d: %s", index, strerror(errno));
	if (pid == 0) {
		become(index);
		if (signal == 0)
			_exit(code);
		for (;;)
			pause();
	}
	add_kid(pid, index);
	if (signal)
		kill(pid, signal);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		wt_fatal("waitid zombie: %s", strerror(errno));
	wt_write_ready(index, "%d Z %d %d -\n", index, (int)pid, (int)getpid());
}

static void check_zombies(void)
{
	for (int i = 0; i < n_kids; i++) {
		if (kid_idx[i] == idx_z42)
			wt_check_zombie(idx_z42, kid_pid[i], CLD_EXITED, 42);
		else if (kid_idx[i] == idx_zterm)
			wt_check_zombie(idx_zterm, kid_pid[i], CLD_KILLED, SIGTERM);
		else if (kid_idx[i] == idx_z7)
			wt_check_zombie(idx_z7, kid_pid[i], CLD_EXITED, 7);
	}
}

static void write_own_ready(char kind)
{
	char tids[256];

	tids_text(tids, sizeof(tids));
	wt_write_ready(wt_me, "%d %c %d %d %s\n", wt_me, kind, (int)my_pid, (int)my_ppid, tids);
}

/* The stopped child: set up, ready, stopped by the root; verifies itself once
 * the root has continued it and triggered it. */
static __attribute__((noreturn)) void stopped_main(void)
{
	memory_build();
	write_own_ready('S');
	wl_wait_trigger();
	process_verify();
	wt_write_result();
	_exit(0);
}

static pid_t stopped_pid;

static void spawn_stopped(void)
{
	int64_t deadline;
	pid_t pid = fork();

	if (pid < 0)
		wt_fatal("fork for the stopped child: %s", strerror(errno));
	if (pid == 0) {
		become(idx_stopped);
		stopped_main();
	}
	add_kid(pid, idx_stopped);
	stopped_pid = pid;
	deadline = wl_now_ns(CLOCK_MONOTONIC) + 10 * 1000000000LL;
	while (!wt_file_exists("ready", idx_stopped) && wl_now_ns(CLOCK_MONOTONIC) < deadline)
		wt_sleep_ms(2);
	kill(pid, SIGSTOP);
	while (wt_proc_state(pid) != 'T' && wl_now_ns(CLOCK_MONOTONIC) < deadline)
		wt_sleep_ms(2);
	if (wt_proc_state(pid) != 'T')
		wl_fatal("the stopped child %d did not stop", (int)pid);
}

static void root_verify_stopped(void)
{
	char state = wt_proc_state(stopped_pid);

	wl_check(state == 'T', "stopped child %d (S): state %c, want T (stopped)", (int)stopped_pid, state);
	wl_check(!wt_file_exists("res", idx_stopped), "stopped child %d (S) ran before SIGCONT",
		 (int)stopped_pid);
	kill(stopped_pid, SIGUSR2);
	kill(stopped_pid, SIGCONT);
}

static __attribute__((noreturn)) void root_finish(void)
{
	static bool want[MAX_NODES];
	off_t off;

	for (int i = 0; i < n_total; i++)
		want[i] = (i > 0 && i < n_nodes) || i == idx_stopped;
	wt_root_collect(n_total, want, 20);

	/* Process 1 wrote SHARED_ADD bytes through its fd (it is done: its
	 * res.1 is in): one description, so this offset moved too. */
	off = lseek(SHARED_FD, 0, SEEK_CUR);
	wl_check(off == SHARED_INIT + SHARED_ADD,
		 "fd %d offset %lld after process 1 wrote %d bytes, want %d (not one shared description?)",
		 SHARED_FD, (long long)off, SHARED_ADD, SHARED_INIT + SHARED_ADD);

	wl_check(wt_fail_count == 0, "root: %s", wt_fail_text);
	wt_reap(kid_pid, n_kids, 10);
	wl_finish();
}

static void node_main(int index)
{
	memory_build();
	for (int c = 0; c < n_children_of[index]; c++)
		spawn(first_child[index] + c);
	if (index == 2 && idx_z7 >= 0)
		spawn_zombie(idx_z7, 7, 0);
	if (index == 0) {
		spawn_zombie(idx_z42, 42, 0);
		spawn_zombie(idx_zterm, 0, SIGTERM);
		spawn_stopped();
	}
	threads_start();
	write_own_ready('N');
	if (index == 0) {
		wt_root_await_ready(n_total, 20);
		wl_ready();
	}

	wl_wait_trigger();
	forward_trigger();
	process_verify();
	threads_verify();
	check_zombies();
	if (index == 1)
		shared_fd_verify_child();
	if (index == 0) {
		root_verify_stopped();
		root_finish();
	}
	wt_write_result();
	wt_reap(kid_pid, n_kids, 20);
	_exit(0);
}

int main(int argc, char **argv)
{
	char path[4200], init[SHARED_INIT];
	int fd;

	wl_init(argc, argv);
	build_shape(argc, argv);

	wl_path(path, sizeof(path), "shared");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, SHARED_FD) < 0)
		wl_fatal("open shared file: %s", strerror(errno));
	close(fd);
	memset(init, 'r', sizeof(init));
	if (write(SHARED_FD, init, sizeof(init)) != SHARED_INIT)
		wl_fatal("write shared file: %s", strerror(errno));

	wt_become(0);
	my_pid = getpid();
	my_ppid = getppid();
	node_main(0);
}
