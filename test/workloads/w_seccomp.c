/*
 * w_seccomp STATE_DIR [shared|kill|strict|partial|notify]
 *
 * A process under seccomp, in one of these shapes:
 *
 * shared (the default): three threads.  After creating threads A and B the
 *   main thread installs filter F1 (getppid fails with EPERM) with
 *   SECCOMP_FILTER_FLAG_TSYNC, so that all three share it; then B adds two
 *   filters of its own: F2, of BPF_MAXINSNS instructions, with
 *   SECCOMP_FILTER_FLAG_LOG (uname fails with EPERM), and above it F3
 *   (uname fails with EACCES, which wins as the newer).  On the trigger
 *   every thread checks, in that thread, that getppid fails with EPERM,
 *   that uname fails (with EACCES) only in B, and that gettid works; then B
 *   installs an allow-all filter with TSYNC, which succeeds only if F1 is
 *   still one filter shared by the three (a copy per thread is no ancestor
 *   of B's), and after which uname fails in the main thread too (B's stack
 *   reached it).  The file "threads" lists each thread's tid and how many
 *   filters it has ("TID COUNT" lines).
 * kill: one thread; its filter kills the process (SECCOMP_RET_KILL_PROCESS)
 *   on rt_sigaction and getitimer, which cr runs inside the process at dump
 *   and restore, and fails getppid with EPERM.  On the trigger getppid
 *   must fail and a forked child that calls getitimer must die of SIGSYS.
 * strict: one thread in SECCOMP_MODE_STRICT, which allows only read,
 *   write, _exit and sigreturn, so it takes commands, one byte each, from
 *   the FIFO STATE_DIR/cmd instead of a signal: 'p' appends "pong PID
 *   TOKEN" to STATE_DIR/out; 'g' appends "getppid" and calls getppid,
 *   which strict mode answers with SIGKILL (had it returned, "getppid
 *   allowed" follows); 'q' exits with status 0.  Its token and ready files
 *   are written before it enters strict mode.
 * partial: three threads; B is created first, then the main thread
 *   installs F1 (no TSYNC) and creates A, which inherits it: F1 is shared
 *   by two threads of three, which cr refuses.  On the trigger getppid
 *   fails in the main thread and A and works in B.
 * notify: one thread whose filter answers getppid with
 *   SECCOMP_RET_USER_NOTIF; with no listener the kernel fails the call
 *   with ENOSYS.  cr refuses it.  On the trigger getppid fails with ENOSYS.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define NONE 0xffffffffu   /* matches no syscall */

/* A filter: nr1 gets action1, nr2 action2, anything else is allowed;
 * with `big`, padded to BPF_MAXINSNS instructions (32 KiB). */
static long install_filter(unsigned flags, bool big, uint32_t nr1, uint32_t action1, uint32_t nr2, uint32_t action2)
{
	static struct sock_filter f[BPF_MAXINSNS];
	struct sock_fprog prog = { .filter = f };
	size_t n = 0;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	do
		f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	while (big && n < BPF_MAXINSNS - 5);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr1, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action1);
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr2, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action2);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)n;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static long install(unsigned flags, uint32_t nr1, uint32_t action1, uint32_t nr2, uint32_t action2)
{
	return install_filter(flags, false, nr1, action1, nr2, action2);
}

static const uint32_t EPERM_ACTION = SECCOMP_RET_ERRNO | EPERM;

/* "" when getppid fails with EPERM (or works, if !getppid_blocked), uname
 * fails with errno uname_errno (or works, if 0), and gettid works; else
 * what is wrong. */
static void check_calls(const char *who, bool getppid_blocked, int uname_errno, char *out, size_t size)
{
	struct utsname u;
	size_t len = 0;
	long r;
	int e;

	out[0] = '\0';
#define BAD(...) (len += (size_t)snprintf(out + len, len < size ? size - len : 0, __VA_ARGS__))
	errno = 0;
	r = syscall(SYS_getppid);
	e = errno;
	if (getppid_blocked ? !(r == -1 && e == EPERM) : r <= 0)
		BAD("%s: getppid returned %ld (%s), want %s; ", who, r, strerror(e), getppid_blocked ? "EPERM" : "a pid");
	errno = 0;
	r = uname(&u);
	e = errno;
	if (uname_errno ? !(r == -1 && e == uname_errno) : r != 0)
		BAD("%s: uname returned %ld (%s), want %s; ", who, r, strerror(e),
		    uname_errno ? strerrorname_np(uname_errno) : "0");
	if (syscall(SYS_gettid) <= 0)
		BAD("%s: gettid failed; ", who);
#undef BAD
}

/* ------------------------------------------------------------ threads */

/* A thread that runs commands in itself, one byte over a pipe each. */
struct worker {
	const char *name;
	pthread_t thread;
	int cmd[2], done[2];
	pid_t tid;
	bool getppid_blocked;
	int uname_errno;
	char answer[512];
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char c;

	w->tid = (pid_t)syscall(SYS_gettid);
	while (read(w->cmd[0], &c, 1) == 1) {
		w->answer[0] = '\0';
		if (c == 'c') {          /* check the calls */
			check_calls(w->name, w->getppid_blocked, w->uname_errno, w->answer, sizeof(w->answer));
		} else if (c == 'f') {
			/* Filters of its own: a logged one of 32 KiB, uname
			 * fails with EPERM; above it uname fails with EACCES,
			 * which wins: of two answers of one kind, the newer
			 * filter's is taken, so the order is seen. */
			if (install_filter(SECCOMP_FILTER_FLAG_LOG, true, SYS_uname, EPERM_ACTION, NONE, 0) != 0 ||
			    install(0, SYS_uname, SECCOMP_RET_ERRNO | EACCES, NONE, 0) != 0)
				snprintf(w->answer, sizeof(w->answer), "%s: install its filters: %s", w->name,
					 strerror(errno));
		} else if (c == 't') {   /* an allow-all filter for every thread */
			long r = install(SECCOMP_FILTER_FLAG_TSYNC, NONE, 0, NONE, 0);

			if (r != 0)
				snprintf(w->answer, sizeof(w->answer),
					 "%s: TSYNC returned %ld (%s): the threads no longer share their filter",
					 w->name, r, r < 0 ? strerror(errno) : "the tid of a thread it cannot sync");
		}
		if (write(w->done[1], "", 1) != 1)
			break;
	}
	return NULL;
}

static void start_worker(struct worker *w, const char *name)
{
	sigset_t usr2, old;
	int err;

	w->name = name;
	if (pipe(w->cmd) < 0 || pipe(w->done) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	/* Only the main thread takes the trigger. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	err = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		wl_fatal("pthread_create: %s", strerror(err));
}

/* Runs command c in the worker; its answer, "" when all is well. */
static const char *ask(struct worker *w, char c)
{
	char ack;

	if (write(w->cmd[1], &c, 1) != 1 || read(w->done[0], &ack, 1) != 1)
		return "the worker thread does not answer";
	return w->answer;
}

static void wait_tid(struct worker *w)
{
	if (ask(w, 'n')[0] != '\0' || w->tid == 0)
		wl_fatal("%s did not start", w->name);
}

/* Every check of the calls, in each thread; "" when all pass. */
static void check_all(struct worker *workers, size_t n, bool main_getppid, int main_uname, char *out, size_t size)
{
	size_t len;

	check_calls("main", main_getppid, main_uname, out, size);
	for (size_t i = 0; i < n; i++) {
		len = strlen(out);
		snprintf(out + len, size - len, "%s", ask(&workers[i], 'c'));
	}
}

static int run_shared(void)
{
	struct worker w[2] = { 0 };
	char problems[2048];

	start_worker(&w[0], "thread A");
	start_worker(&w[1], "thread B");
	wait_tid(&w[0]);
	wait_tid(&w[1]);
	if (install(SECCOMP_FILTER_FLAG_TSYNC, SYS_getppid, EPERM_ACTION, NONE, 0) != 0)
		wl_fatal("install the shared filter with TSYNC: %s", strerror(errno));
	if (ask(&w[1], 'f')[0] != '\0')
		wl_fatal("%s", w[1].answer);
	w[0].getppid_blocked = w[1].getppid_blocked = true;
	w[1].uname_errno = EACCES;
	check_all(w, 2, true, 0, problems, sizeof(problems));
	if (problems[0] != '\0')
		wl_fatal("before any dump: %s", problems);
	wl_write_file("threads", "%d 1\n%d 1\n%d 3\n", (int)getpid(), (int)w[0].tid, (int)w[1].tid);
	wl_ready();
	wl_wait_trigger();

	check_all(w, 2, true, 0, problems, sizeof(problems));
	wl_check(problems[0] == '\0', "%s", problems);
	wl_check(wl_status_field("Seccomp") == 2, "Seccomp: %ld in the main thread, want 2",
		 wl_status_field("Seccomp"));
	wl_check(wl_status_field("Seccomp_filters") == 1, "Seccomp_filters: %ld in the main thread, want 1",
		 wl_status_field("Seccomp_filters"));
	/* Proves the sharing: B's TSYNC reaches the others only if their
	 * filter is F1 itself, under B's own. */
	if (wl_check(ask(&w[1], 't')[0] == '\0', "%s", w[1].answer)) {
		struct utsname u;

		errno = 0;
		wl_check(uname(&u) == -1 && errno == EACCES,
			 "after thread B's TSYNC the main thread's uname is not refused with EACCES: B's stack did "
			 "not reach it");
	}
	wl_finish();
}

static int run_partial(void)
{
	struct worker w[2] = { 0 };
	char problems[2048];

	start_worker(&w[1], "thread B");
	wait_tid(&w[1]);
	if (install(0, SYS_getppid, EPERM_ACTION, NONE, 0) != 0)
		wl_fatal("install the filter: %s", strerror(errno));
	start_worker(&w[0], "thread A");   /* inherits it */
	wait_tid(&w[0]);
	w[0].getppid_blocked = true;
	check_all(w, 2, true, 0, problems, sizeof(problems));
	if (problems[0] != '\0')
		wl_fatal("before any dump: %s", problems);
	wl_ready();
	wl_wait_trigger();
	check_all(w, 2, true, 0, problems, sizeof(problems));
	wl_check(problems[0] == '\0', "%s", problems);
	wl_finish();
}

/* -------------------------------------------------------- one thread */

static int run_kill(void)
{
	char problems[512];
	int status = 0;
	pid_t child;

	if (install(0, SYS_rt_sigaction, SECCOMP_RET_KILL_PROCESS, SYS_getitimer, SECCOMP_RET_KILL_PROCESS) != 0 ||
	    install(0, SYS_getppid, EPERM_ACTION, NONE, 0) != 0)
		wl_fatal("install the filters: %s", strerror(errno));
	wl_ready();
	wl_wait_trigger();
	check_calls("main", true, 0, problems, sizeof(problems));
	wl_check(problems[0] == '\0', "%s", problems);
	child = fork();
	if (child == 0) {
		struct { long v[4]; } it;

		syscall(SYS_getitimer, 0, &it);
		_exit(0);
	}
	wl_check(child > 0 && waitpid(child, &status, 0) == child && WIFSIGNALED(status) &&
			 WTERMSIG(status) == SIGSYS,
		 "a child calling getitimer was not killed by SIGSYS (status 0x%x): the filter is gone", status);
	wl_finish();
}

static int run_notify(void)
{
	long r;

	if (install(0, SYS_getppid, SECCOMP_RET_USER_NOTIF, NONE, 0) != 0)
		wl_fatal("install the filter: %s", strerror(errno));
	wl_ready();
	wl_wait_trigger();
	errno = 0;
	r = syscall(SYS_getppid);
	wl_check(r == -1 && errno == ENOSYS, "getppid returned %ld (%s), want ENOSYS", r, strerror(errno));
	wl_finish();
}

static void put(int fd, const char *s)
{
	syscall(SYS_write, fd, s, strlen(s));
}

static int run_strict(void)
{
	char path[4096], pong[128];
	int cmd, out;
	char c;

	wl_path(path, sizeof(path), "cmd");
	if (mkfifo(path, 0600) < 0 || (cmd = open(path, O_RDWR)) < 0)
		wl_fatal("fifo %s: %s", path, strerror(errno));
	wl_path(path, sizeof(path), "out");
	if ((out = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600)) < 0)
		wl_fatal("%s: %s", path, strerror(errno));
	snprintf(pong, sizeof(pong), "pong %d %016llx\n", (int)wl_pid(), (unsigned long long)wl_token());
	wl_ready();
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL) != 0)
		wl_fatal("enter strict mode: %s", strerror(errno));
	/* From here on: read, write, _exit, sigreturn, and nothing that
	 * could make any other call. */
	while (syscall(SYS_read, cmd, &c, 1) == 1) {
		if (c == 'p') {
			put(out, pong);
		} else if (c == 'g') {
			put(out, "getppid\n");
			syscall(SYS_getppid);
			put(out, "getppid allowed\n");
		} else if (c == 'q') {
			syscall(SYS_exit, 0);
		}
	}
	syscall(SYS_exit, 3);
	return 3;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "shared";

	wl_init(argc, argv);
	if (strcmp(mode, "shared") == 0)
		return run_shared();
	if (strcmp(mode, "partial") == 0)
		return run_partial();
	if (strcmp(mode, "kill") == 0)
		return run_kill();
	if (strcmp(mode, "notify") == 0)
		return run_notify();
	if (strcmp(mode, "strict") == 0)
		return run_strict();
	wl_fatal("unknown mode %s", mode);
}
