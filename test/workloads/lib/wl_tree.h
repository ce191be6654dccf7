/*
 * wl_tree — helpers for workloads that are a tree of processes (w_tree,
 * w_sessions, w_pidns). Header-only: only those workloads include it.
 *
 * Pipes between processes are not restorable yet, so the processes of a tree
 * talk to the root through files in the state dir, one per process:
 *
 *   ready.<i>   written by process i (or by the parent of a zombie i) once
 *               it is set up: one line describing it (format up to the
 *               workload); the root waits for all of them, then concatenates
 *               them into the file "tree" for the harness, then wl_ready()
 *   res.<i>     "PASS <i> <pid> <token>" or "FAIL <i> <pid> <token>: why",
 *               written by process i after the trigger; the root folds every
 *               one into its own result
 *
 * Each process keeps its own list of failures (wt_check); the root turns
 * its own list and its descendants' into wl_check()s before wl_finish().
 */
#ifndef WL_TREE_H
#define WL_TREE_H

#include "wl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WT_UNUSED __attribute__((unused))

/* Index of this process in the tree (0: the root). */
static int wt_me;

static char wt_fail_text[2048];
static size_t wt_fail_len;
static unsigned wt_fail_count;

/* Called first thing in every new process of the tree. */
static WT_UNUSED void wt_become(int index)
{
	wt_me = index;
	wt_fail_len = 0;
	wt_fail_text[0] = '\0';
	wt_fail_count = 0;
}

static WT_UNUSED __attribute__((format(printf, 2, 3))) bool wt_check(bool cond, const char *fmt, ...)
{
	size_t room = sizeof(wt_fail_text) - wt_fail_len;
	va_list ap;
	int n;

	if (cond)
		return true;
	wt_fail_count++;
	if (room <= 1)
		return false;
	if (wt_fail_len > 0) {
		n = snprintf(wt_fail_text + wt_fail_len, room, "; ");
		wt_fail_len += (size_t)n < room ? (size_t)n : room - 1;
		room = sizeof(wt_fail_text) - wt_fail_len;
	}
	va_start(ap, fmt);
	n = vsnprintf(wt_fail_text + wt_fail_len, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		wt_fail_len += (size_t)n < room ? (size_t)n : room - 1;
	return false;
}

/* Writes res.<me> with this process's verdict. */
static WT_UNUSED void wt_write_result(void)
{
	char name[32];

	snprintf(name, sizeof(name), "res.%d", wt_me);
	if (wt_fail_count == 0)
		wl_write_file(name, "PASS %d %d %016" PRIx64 "\n", wt_me, (int)getpid(), wl_token());
	else
		wl_write_file(name, "FAIL %d %d %016" PRIx64 ": %s\n", wt_me, (int)getpid(), wl_token(),
			      wt_fail_text);
}

/* A set-up step of a non-root process failed: the root sees res.<me> while it
 * waits for ready.<me> and gives up with this text. */
static WT_UNUSED __attribute__((noreturn, format(printf, 1, 2))) void wt_fatal(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	wt_check(false, "setup: %s", msg);
	wt_write_result();
	_exit(2);
}

static WT_UNUSED __attribute__((format(printf, 2, 3))) void wt_write_ready(int index, const char *fmt, ...)
{
	char name[32], text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(name, sizeof(name), "ready.%d", index);
	if (wl_write_file(name, "%s", text) < 0)
		wt_fatal("cannot write %s: %s", name, strerror(errno));
}

static WT_UNUSED bool wt_file_exists(const char *prefix, int index)
{
	char name[32], path[4200];

	snprintf(name, sizeof(name), "%s.%d", prefix, index);
	wl_path(path, sizeof(path), name);
	return access(path, F_OK) == 0;
}

static WT_UNUSED void wt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Root: waits (timeout_s) for ready.<i> of every i in [0, n); then writes
 * "tree". A process that wrote res.<i> instead failed its set-up. */
static WT_UNUSED void wt_root_await_ready(int n, int timeout_s)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout_s * 1000000000;
	static char tree[65536];
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		while (!wt_file_exists("ready", i)) {
			if (wt_file_exists("res", i)) {
				char name[32], buf[1024] = "";

				snprintf(name, sizeof(name), "res.%d", i);
				wl_read_file(name, buf, sizeof(buf));
				wl_fatal("process %d failed its set-up: %s", i, buf);
			}
			if (wl_now_ns(CLOCK_MONOTONIC) > deadline)
				wl_fatal("process %d was not ready within %d s", i, timeout_s);
			wt_sleep_ms(5);
		}
	}
	for (int i = 0; i < n; i++) {
		char name[32];
		ssize_t got;

		snprintf(name, sizeof(name), "ready.%d", i);
		got = wl_read_file(name, tree + len, sizeof(tree) - len);
		if (got <= 0 || len + (size_t)got + 1 >= sizeof(tree))
			wl_fatal("cannot read %s", name);
		len += (size_t)got;
	}
	if (wl_write_file("tree", "%s", tree) < 0)
		wl_fatal("cannot write tree: %s", strerror(errno));
}

/* Root: waits (timeout_s) for res.<i> of every i with want[i], and folds each
 * into the root's own result. */
static WT_UNUSED void wt_root_collect(int n, const bool *want, int timeout_s)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout_s * 1000000000;
	char expect[64];

	for (int i = 0; i < n; i++) {
		char name[32], buf[600] = "";

		if (!want[i])
			continue;
		while (!wt_file_exists("res", i) && wl_now_ns(CLOCK_MONOTONIC) < deadline)
			wt_sleep_ms(5);
		snprintf(name, sizeof(name), "res.%d", i);
		if (!wl_check(wl_read_file(name, buf, sizeof(buf)) > 0, "process %d: no result within %d s", i,
			      timeout_s))
			continue;
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(expect, sizeof(expect), "PASS %d ", i);
		if (!wl_check(strncmp(buf, expect, strlen(expect)) == 0, "process %s", buf + 5))
			continue;
		/* "PASS i pid token": the token is the root's (inherited at fork). */
		char *tok = strrchr(buf, ' ');
		char want_tok[32];

		snprintf(want_tok, sizeof(want_tok), " %016" PRIx64, wl_token());
		wl_check(tok && strcmp(tok, want_tok) == 0, "process %d reports token%s, want%s", i, tok ? tok : "?",
			 want_tok);
	}
}

/* Reaps the given children in whatever order they end (an init of a pid
 * namespace ends only once its parent's other children in that namespace
 * are reaped), waiting at most timeout_s in all. */
static WT_UNUSED void wt_reap(const pid_t *pids, int n, int timeout_s)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + (int64_t)timeout_s * 1000000000;
	bool done[64] = { false };
	int left = n;

	if (n > 64)
		n = left = 64;
	while (left > 0 && wl_now_ns(CLOCK_MONOTONIC) < deadline) {
		for (int i = 0; i < n; i++) {
			if (done[i])
				continue;
			if (pids[i] <= 0 || waitpid(pids[i], NULL, WNOHANG) != 0) {
				done[i] = true;
				left--;
			}
		}
		if (left > 0)
			wt_sleep_ms(5);
	}
}

/* Field "State:" of /proc/<pid>/stat as one letter ('?' if unreadable).
 * pid as /proc sees it (the harness's pid namespace). */
static WT_UNUSED char wt_proc_state(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (wl_read_path(path, buf, sizeof(buf)) <= 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* After a zombie child's exit: true when it is a zombie with the status
 * (status as from waitpid) — and reaps it. Reports what differs. */
static WT_UNUSED void wt_check_zombie(int index, pid_t pid, int want_code, int want_status)
{
	siginfo_t si;
	int st = 0;
	pid_t r;

	memset(&si, 0, sizeof(si));
	r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
	if (!wt_check(r == 0, "zombie %d (pid %d): waitid: %s (reaped or not our child?)", index, (int)pid,
		      strerror(errno)))
		return;
	if (!wt_check(si.si_pid == pid, "zombie %d (pid %d) has not exited (it runs: state %c)", index, (int)pid,
		      wt_proc_state(pid)))
		return;
	wt_check(si.si_code == want_code && si.si_status == want_status,
		 "zombie %d (pid %d): si_code %d si_status %d, want %d %d", index, (int)pid, si.si_code,
		 si.si_status, want_code, want_status);
	r = waitpid(pid, &st, WNOHANG);
	if (wt_check(r == pid, "zombie %d (pid %d): waitpid gave %d", index, (int)pid, (int)r)) {
		if (want_code == CLD_EXITED)
			wt_check(WIFEXITED(st) && WEXITSTATUS(st) == want_status,
				 "zombie %d: wait status %#x, want exit %d", index, st, want_status);
		else
			wt_check(WIFSIGNALED(st) && WTERMSIG(st) == want_status,
				 "zombie %d: wait status %#x, want signal %d", index, st, want_status);
	}
}

#endif
