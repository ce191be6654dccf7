/* The guardian of a dump (dump/guard.h): a process in a session of its
 * own that waits for the dump to end and, if it died with records left,
 * puts each held process back: the scratch pages unmapped, each thread's
 * registers and signal mask as recorded, then continued if cr stopped it.
 * It touches registers only of a process still in its group stop (one that
 * ran since is not cr's to change) and only of the process that was
 * recorded (same start time).  Putting back is idempotent: a guardian
 * killed halfway leaves the records for the next try. */
#include "dump/guard.h"
#include "fd/tcp_stream.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#define SEIZE_WAIT_MS 5000   /* the dead tracer's detach may lag its fds' close */

struct record {
	struct guard_head h;
	struct guard_thread *th;
};

static int read_record(int dirfd, const char *name, struct record *r)
{
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t len;

	if (fd < 0 || read(fd, &r->h, sizeof(r->h)) != (ssize_t)sizeof(r->h))
		return -1;
	if (r->h.magic != GUARD_MAGIC || r->h.version != GUARD_VERSION || r->h.n_threads > 65536)
		return -1;
	len = r->h.n_threads * sizeof(*r->th);
	r->th = xcalloc(r->h.n_threads ? r->h.n_threads : 1, sizeof(*r->th));
	if (len && read(fd, r->th, len) != (ssize_t)len)
		return -1;
	return 0;
}

/* The recorded process, not another that took its pid since. */
static bool same_process(const struct record *r)
{
	struct proc_stat st;
	cr_error_t err = NULL;

	if (proc_read_stat(r->h.pid, &st, &err) < 0) {
		cr_error_release(&err);
		return false;
	}
	return st.start_time == r->h.start_time;
}

/* Seizes a thread once the dead dump's detach is through; *held says its
 * process is still in a group stop. */
static int seize_when_free(pid_t tid, bool *held, cr_error_t *err)
{
	struct timespec ms = { .tv_nsec = 1000000 };
	int stop_sig;

	for (int i = 0;; i++) {
		if (ptrace_seize_stop(tid, CR_PTRACE_OPTIONS_DUMP, &stop_sig, err) == 0) {
			*held = stop_sig != 0;
			return 0;
		}
		if ((*err)->status != EPERM || i >= SEIZE_WAIT_MS)
			return -1;
		cr_error_release(err);   /* still traced by the dying dump */
		nanosleep(&ms, NULL);
	}
}

static void let_go(const struct record *r, uint32_t n)
{
	cr_error_t err = NULL;

	for (uint32_t i = 0; i < n; i++)
		if (ptrace_release(r->th[i].tid, 0, &err) < 0)
			cr_error_release(&err);
}

static int put_back_thread(const struct guard_thread *th, cr_error_t *err)
{
	if (ptrace_set_regs(th->tid, &th->regs, err) < 0 || ptrace_set_sigmask(th->tid, th->sigmask, err) < 0)
		return -1;
	return ptrace_release(th->tid, 0, err);
}

/* Every thread seized (a process no longer in its group stop has run
 * since, with whatever it has: it is left alone); the scratch pages
 * unmapped by the main thread (an address cr chose in a hole: unmapping it
 * is harmless if the pages were never mapped); registers and masks back;
 * detached, still stopped.  The seize, not /proc's state, says whether it
 * is stopped: a tracee the dead dump has just let go runs for a moment
 * before it enters the stop again. */
static int put_back_injected(const struct record *r, cr_error_t *err)
{
	struct injector ij = { .tid = r->h.pid, .syscall_ip = r->h.syscall_ip };
	bool held = true, stopped;
	long ret;

	for (uint32_t i = 0; i < r->h.n_threads; i++) {
		if (seize_when_free(r->th[i].tid, &stopped, err) < 0) {
			let_go(r, i);
			return -1;
		}
		held &= stopped;
	}
	if (!held) {
		let_go(r, r->h.n_threads);
		return cr_error(err, 0, "no longer stopped (continued from outside?): left as it is");
	}
	for (uint32_t i = 0; i < r->h.n_threads; i++)
		if (r->th[i].tid == r->h.pid)
			ij.orig = r->th[i].regs;
	if (inject_start(&ij, err) < 0)   /* no signal may come in between */
		return -1;
	if (r->h.scratch && inject_syscall(&ij, SYS_munmap, r->h.scratch, SCRATCH_SIZE, 0, 0, 0, 0, &ret, err) < 0)
		return cr_error_wrap(err, "unmap cr's scratch pages");
	for (uint32_t i = 0; i < r->h.n_threads; i++)
		if (put_back_thread(&r->th[i], err) < 0)
			return -1;
	return 0;
}

/* The dump was complete and killing the tree: the kill is finished. */
static void finish_kill(int dirfd, const char *name)
{
	struct record r = { .th = NULL };

	if (read_record(dirfd, name, &r) == 0 && same_process(&r)) {
		kill(r.h.pid, SIGKILL);
		pr_info("guardian: pid %d killed: its dump was complete", r.h.pid);
	}
	unlinkat(dirfd, name, 0);
	free(r.th);
}

static void put_back(int dirfd, const char *name)
{
	struct record r = { .th = NULL };
	cr_error_t err = NULL;

	if (read_record(dirfd, name, &r) < 0) {
		pr_warn("guardian: unreadable record %s", name);
		goto out;
	}
	if (!same_process(&r))
		goto forget;
	if ((r.h.flags & GUARD_INJECTED) && put_back_injected(&r, &err) < 0) {
		pr_warn("guardian: pid %d: %s", r.h.pid, err->msg);
		cr_error_release(&err);
		goto out;   /* kept for another try */
	}
	if (r.h.flags & GUARD_CONTINUE)
		kill(r.h.pid, SIGCONT);
	pr_info("guardian: pid %d put back after the dump died", r.h.pid);
forget:
	unlinkat(dirfd, name, 0);
out:
	free(r.th);
}

/* A locked connection: out of repair mode and its table gone if the dump
 * died before it was complete (the process runs on); kept for the restore
 * if it was complete. */
static void tcp_put_back(int dirfd, const char *name, bool complete)
{
	struct guard_tcp r;
	cleanup_close int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 || read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r) || r.magic != GUARD_MAGIC ||
	    r.version != GUARD_VERSION || memchr(r.table, '\0', sizeof(r.table)) == NULL ||
	    memchr(r.netns_path, '\0', sizeof(r.netns_path)) == NULL) {
		pr_warn("guardian: unreadable record %s", name);
		unlinkat(dirfd, name, 0);
		return;
	}
	if (!complete) {
		struct record owner = { .h = { .pid = r.pid, .start_time = r.start_time } };

		if (r.pid > 0 && same_process(&owner))
			tcp_stream_unrepair(r.pid, r.fd, r.reuse);
		if (r.table[0])
			tcp_stream_unlock(r.pid, r.netns_ino, r.netns_path, r.table);
		pr_info("guardian: socket:[%u] of pid %d unlocked after cr died", r.ino, r.pid);
	}
	unlinkat(dirfd, name, 0);
}

int guard_recover(const char *path, bool wait)
{
	cleanup_close int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *e;
	bool complete;

	if (dirfd < 0)
		return 0;   /* the dump ended and removed it */
	if (flock(dirfd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0)
		return -1;  /* its guardian is at work */
	complete = faccessat(dirfd, GUARD_COMPLETE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	d = fdopendir(dup(dirfd));
	if (d == NULL)
		return -1;
	/* Connections first: a process continued below must not run with
	 * its socket still in repair mode. */
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, GUARD_TCP_PREFIX, strlen(GUARD_TCP_PREFIX)) == 0)
			tcp_put_back(dirfd, e->d_name, complete);
	rewinddir(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, GUARD_COMPLETE) == 0 ||
		    strncmp(e->d_name, GUARD_TCP_PREFIX, strlen(GUARD_TCP_PREFIX)) == 0)
			continue;
		if (e->d_name[0] != '.')
			(complete ? finish_kill : put_back)(dirfd, e->d_name);
		else if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd, e->d_name, 0);   /* a record the dump died writing */
	}
	closedir(d);
	unlinkat(dirfd, GUARD_COMPLETE, 0);
	if (rmdir(path) < 0 && errno != ENOENT)
		pr_warn("guardian: records left in %s: %s", path, strerror(errno));
	return 0;
}

/* The dump's worker has exited (a zombie no one reaped yet included). */
static bool dump_gone(pid_t pid)
{
	struct proc_stat st;
	cr_error_t err = NULL;

	if (proc_read_stat(pid, &st, &err) < 0) {
		cr_error_release(&err);
		return kill(pid, 0) < 0 && errno == ESRCH;
	}
	return st.state == 'Z' || st.state == 'X';
}

/* What a dump that died without its guardian (killed too) left: the
 * directories whose dump is gone and that no guardian holds. */
void guard_recover_stale(void)
{
	cleanup_closedir DIR *d = opendir(GUARD_ROOT);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[sizeof(GUARD_ROOT) + 256];
		int pid;

		if ((sscanf(e->d_name, "dump-%d.", &pid) != 1 && sscanf(e->d_name, "restore-%d.", &pid) != 1) ||
		    pid <= 0 || !dump_gone(pid))
			continue;
		snprintf(path, sizeof(path), GUARD_ROOT "/%s", e->d_name);
		if (guard_recover(path, false) == 0)
			pr_info("put back what the dump in %s left", path);
	}
}

/* Every fd but the standard ones, the log's, a and b: the guardian must
 * hold nothing of cr's that cr could wait on (a pipe's write end, when it
 * is started in the middle of a restore). */
static void close_others(int a, int b)
{
	int keep[3] = { a, b, cr_log_file_fd() }, last = 2;   /* 0 to 2 stay */

	for (int i = 1; i < 3; i++)
		for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (int i = 0; i < 3; i++) {
		if (keep[i] <= last)
			continue;
		if (keep[i] > last + 1)
			syscall(SYS_close_range, (unsigned int)last + 1, (unsigned int)keep[i] - 1, 0);
		last = keep[i];
	}
	syscall(SYS_close_range, (unsigned int)last + 1, ~0U, 0);
}

static void guardian_main(const char *path, int rd, int ack)
{
	pid_t me = getpid();
	char c;

	close_others(rd, ack);
	setsid();   /* before the dump goes on: a process-group kill misses it */
	if (write(ack, &me, sizeof(me)) != (ssize_t)sizeof(me))
		_exit(1);
	close(ack);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	while (read(rd, &c, 1) != 0 && (errno == EINTR || errno == EAGAIN))
		;
	guard_recover(path, true);
	_exit(0);
}

/* The guardian, or (detach) a process that starts it and exits at once:
 * then it is no child of cr's, which a restore waits for. */
static pid_t fork_guardian(const char *path, const int fds[2], const int ack[2], bool detach)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	close(fds[1]);
	close(ack[0]);
	if (detach && fork() != 0)
		_exit(0);
	guardian_main(path, fds[0], ack[1]);
	_exit(0);
}

pid_t guardian_spawn(const char *path, int *pipe_wr, bool detach, cr_error_t *err)
{
	int fds[2], ack[2];
	pid_t pid, guardian = 0;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return cr_error(err, errno, "pipe");
	if (pipe2(ack, O_CLOEXEC) < 0) {
		close(fds[0]);
		close(fds[1]);
		return cr_error(err, errno, "pipe");
	}
	fflush(NULL);
	pid = fork_guardian(path, fds, ack, detach);
	close(fds[0]);
	close(ack[1]);
	if (pid > 0 && detach)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	if (pid < 0 || read(ack[0], &guardian, sizeof(guardian)) != (ssize_t)sizeof(guardian)) {
		int e = errno;

		close(ack[0]);
		close(fds[1]);
		if (pid > 0 && !detach)
			waitpid(pid, NULL, 0);
		return cr_error(err, pid < 0 ? e : 0, "start the guardian");
	}
	close(ack[0]);
	*pipe_wr = fds[1];
	return guardian;
}
