/*
 * w_sessions STATE_DIR [left]
 *
 * Sessions and process groups of several shapes (the harness starts the root
 * as a session leader). Processes, by index (parent, what it does):
 *
 *   0  R     root, leads session R and group R
 *   1  A     R's child, leads its own group A (setpgid(0, 0))
 *   2  A1    A's child, in group A
 *   3  A2    A's child, in group A
 *   4  A2a   A2's child, leads its own group
 *   5  B     R's child, in group R
 *   6  B1    B's child, joins group A (its uncle's) with setpgid
 *   7  C     R's child, leads a new session C (setsid)
 *   8  C1    C's child, in session C, group C
 *   9  C1a   C1's child, leads a group in session C
 *  10  C1b   C1's child, joins its sibling C1a's group
 *  11  C2    C's child, leads yet another session (setsid below a session leader)
 *  12  C2a   C2's child, in session C2
 *  13  D     R's child, leads group D, then killed by SIGTERM: a zombie
 *            group leader (never reaped) ...
 *  14  E     R's child, ... whose group E joined: a live member of a group
 *            led by a zombie
 *  15  Y     R's child, joins group A, then exits 5: a zombie member of a
 *            group led by another process
 *
 * With "left", two more:
 *
 *  16  K     R's child, forks G, then leaves R's session (setsid)
 *  17  G     K's child, still in R's session and group: its session is led
 *            by its grandparent, not by its parent (restore must fork G
 *            before K calls setsid). Dumping K's subtree alone gives a
 *            session whose leader (R) is outside the dumped tree.
 *
 * Every live process records its pid, parent, group and session, and checks
 * at set-up that they are the intended ones. On SIGUSR2 each forwards the
 * trigger to its live children and checks getpid/getppid/getpgid/getsid
 * against what it recorded; the root also checks the zombies' groups and
 * sessions (getpgid/getsid work on zombies) and their exit statuses, then
 * aggregates every res.<i> (see wl_tree.h).
 *
 * ready.<i> lines: "<i> <N|Z> <pid> <ppid> <pid|-> <role>"; pid.<i> holds
 * process i's pid once it has its group (the joiners wait for it).
 */
#include "wl.h"
#include "wl_tree.h"

#include <sys/syscall.h>

enum act { ACT_NONE, ACT_OWN_PGRP, ACT_JOIN_PGRP, ACT_SETSID, ACT_SETSID_AFTER_FORK };

struct spec {
	int parent;
	enum act act;
	int join;          /* ACT_JOIN_PGRP: the index whose group to join */
	const char *role;
	int exit_code;     /* zombies: exit with it ... */
	int kill_sig;      /* ... or be killed by the root with it */
};

#define N_PROCS 18
#define IDX_D 13
#define IDX_E 14
#define IDX_Y 15

static const struct spec specs[N_PROCS] = {
	[0] = { -1, ACT_NONE, 0, "sid-leader", 0, 0 },
	[1] = { 0, ACT_OWN_PGRP, 0, "pgrp-leader", 0, 0 },
	[2] = { 1, ACT_NONE, 0, "member", 0, 0 },
	[3] = { 1, ACT_NONE, 0, "member", 0, 0 },
	[4] = { 3, ACT_OWN_PGRP, 0, "pgrp-leader", 0, 0 },
	[5] = { 0, ACT_NONE, 0, "member", 0, 0 },
	[6] = { 5, ACT_JOIN_PGRP, 1, "joined-uncle-pgrp", 0, 0 },
	[7] = { 0, ACT_SETSID, 0, "sid-leader", 0, 0 },
	[8] = { 7, ACT_NONE, 0, "member", 0, 0 },
	[9] = { 8, ACT_OWN_PGRP, 0, "pgrp-leader", 0, 0 },
	[10] = { 8, ACT_JOIN_PGRP, 9, "joined-sibling-pgrp", 0, 0 },
	[11] = { 7, ACT_SETSID, 0, "sid-leader", 0, 0 },
	[12] = { 11, ACT_NONE, 0, "member", 0, 0 },
	[IDX_D] = { 0, ACT_OWN_PGRP, 0, "zombie-pgrp-leader", 0, SIGTERM },
	[IDX_E] = { 0, ACT_JOIN_PGRP, IDX_D, "member-of-zombie-led-pgrp", 0, 0 },
	[IDX_Y] = { 0, ACT_JOIN_PGRP, 1, "zombie-member", 5, 0 },
	[16] = { 0, ACT_SETSID_AFTER_FORK, 0, "left-session-after-fork", 0, 0 },
	[17] = { 16, ACT_NONE, 0, "in-grandparent-session", 0, 0 },
};

static int n_procs = 16;        /* 18 with "left" */

static bool is_zombie(int i)
{
	return specs[i].exit_code || specs[i].kill_sig;
}

static pid_t my_pid, my_ppid, my_pgid, my_sid;
static pid_t kid_pid[N_PROCS];
static int kid_idx[N_PROCS], n_kids;
static pid_t zombie_pgid[N_PROCS], zombie_sid[N_PROCS];

/* The pid of process i, once it has set its group (pid.<i>). */
static pid_t pid_of(int i)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10 * 1000000000LL;
	char name[32], buf[32];

	snprintf(name, sizeof(name), "pid.%d", i);
	while (wl_read_file(name, buf, sizeof(buf)) <= 0) {
		if (wl_now_ns(CLOCK_MONOTONIC) > deadline)
			wt_fatal("process %d never wrote %s", wt_me, name);
		wt_sleep_ms(2);
	}
	return (pid_t)atoi(buf);
}

static void await_file(const char *prefix, int i)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10 * 1000000000LL;

	while (!wt_file_exists(prefix, i)) {
		if (wt_file_exists("res", i) || wl_now_ns(CLOCK_MONOTONIC) > deadline)
			wt_fatal("process %d is not ready", i);
		wt_sleep_ms(2);
	}
}

/* Does what process i is for, and checks that the group and session are
 * the intended ones (the expected pids come from pid.<i> files). */
static void take_place(int i)
{
	const struct spec *s = &specs[i];
	pid_t want_pgid = 0, want_sid = getsid(0);

	switch (s->act) {
	case ACT_NONE:
	case ACT_SETSID_AFTER_FORK:   /* later, in proc_main */
		want_pgid = getpgid(0);
		break;
	case ACT_OWN_PGRP:
		if (setpgid(0, 0) < 0)
			wt_fatal("setpgid(0, 0): %s", strerror(errno));
		want_pgid = getpid();
		break;
	case ACT_JOIN_PGRP:
		want_pgid = pid_of(s->join);
		if (setpgid(0, want_pgid) < 0)
			wt_fatal("setpgid(0, %d): %s", (int)want_pgid, strerror(errno));
		break;
	case ACT_SETSID:
		if (setsid() < 0)
			wt_fatal("setsid: %s", strerror(errno));
		want_pgid = want_sid = getpid();
		break;
	}
	my_pid = getpid();
	my_ppid = getppid();
	my_pgid = getpgid(0);
	my_sid = getsid(0);
	if (my_pgid != want_pgid || my_sid != want_sid)
		wt_fatal("pgid %d sid %d, meant %d %d", (int)my_pgid, (int)my_sid, (int)want_pgid, (int)want_sid);
}

static void write_pid_file(int i)
{
	char name[32];

	snprintf(name, sizeof(name), "pid.%d", i);
	if (wl_write_file(name, "%d\n", (int)getpid()) < 0)
		wt_fatal("write %s: %s", name, strerror(errno));
}

static __attribute__((noreturn)) void proc_main(int i);

static void spawn(int i)
{
	pid_t pid = fork();

	if (pid < 0)
		wt_fatal("fork for process %d: %s", i, strerror(errno));
	if (pid == 0) {
		wt_become(i);
		n_kids = 0;
		proc_main(i);
	}
	kid_pid[n_kids] = pid;
	kid_idx[n_kids++] = i;
}

/* A zombie's own life: take its place, say so, then die as planned. */
static __attribute__((noreturn)) void zombie_main(int i)
{
	take_place(i);
	write_pid_file(i);
	if (specs[i].exit_code)
		_exit(specs[i].exit_code);
	for (;;)
		pause();
}

/* Root: once process i (a child) is a zombie, records its group and session
 * and writes its ready line. */
static void settle_zombie(int i, pid_t pid)
{
	siginfo_t si;

	if (specs[i].kill_sig) {
		await_file("ready", IDX_E);   /* E must join D's group first */
		pid_of(i);
		kill(pid, specs[i].kill_sig);
	}
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0)
		wl_fatal("waitid %d: %s", (int)pid, strerror(errno));
	if (specs[i].exit_code && (si.si_code != CLD_EXITED || si.si_status != specs[i].exit_code))
		wl_fatal("process %d exited with code %d status %d before becoming a zombie", i, si.si_code,
			 si.si_status);
	zombie_pgid[i] = getpgid(pid);
	zombie_sid[i] = getsid(pid);
	wt_write_ready(i, "%d Z %d %d - %s\n", i, (int)pid, (int)getpid(), specs[i].role);
}

static void verify_self(void)
{
	wt_check(getpid() == my_pid && syscall(SYS_getpid) == my_pid, "pid %d, was %d", (int)getpid(),
		 (int)my_pid);
	if (wt_me != 0)
		wt_check(getppid() == my_ppid, "parent %d, was %d", (int)getppid(), (int)my_ppid);
	wt_check(getpgid(0) == my_pgid, "%s: process group %d, was %d", specs[wt_me].role, (int)getpgid(0),
		 (int)my_pgid);
	wt_check(getsid(0) == my_sid, "%s: session %d, was %d", specs[wt_me].role, (int)getsid(0), (int)my_sid);
}

static void verify_zombies(void)
{
	for (int k = 0; k < n_kids; k++) {
		int i = kid_idx[k];
		pid_t pid = kid_pid[k];

		if (!is_zombie(i))
			continue;
		wt_check(getpgid(pid) == zombie_pgid[i], "zombie %d (%s, pid %d): group %d, was %d", i,
			 specs[i].role, (int)pid, (int)getpgid(pid), (int)zombie_pgid[i]);
		wt_check(getsid(pid) == zombie_sid[i], "zombie %d (%s, pid %d): session %d, was %d", i,
			 specs[i].role, (int)pid, (int)getsid(pid), (int)zombie_sid[i]);
		if (specs[i].exit_code)
			wt_check_zombie(i, pid, CLD_EXITED, specs[i].exit_code);
		else
			wt_check_zombie(i, pid, CLD_KILLED, specs[i].kill_sig);
	}
}

static void proc_main(int i)
{
	if (is_zombie(i))
		zombie_main(i);
	if (i == 0) {
		if (getsid(0) != getpid() && setsid() < 0)
			wl_fatal("setsid: %s", strerror(errno));
		my_pid = getpid();
		my_ppid = getppid();
		my_pgid = getpgid(0);
		my_sid = getsid(0);
	} else {
		take_place(i);
	}
	write_pid_file(i);
	for (int c = 0; c < n_procs; c++)
		if (specs[c].parent == i)
			spawn(c);
	if (specs[i].act == ACT_SETSID_AFTER_FORK) {
		for (int k = 0; k < n_kids; k++)
			await_file("ready", kid_idx[k]);   /* they have recorded R's session */
		if (setsid() < 0)
			wt_fatal("setsid after fork: %s", strerror(errno));
		my_pgid = getpgid(0);
		my_sid = getsid(0);
	}
	for (int k = 0; k < n_kids; k++)
		if (is_zombie(kid_idx[k]))
			settle_zombie(kid_idx[k], kid_pid[k]);
	wt_write_ready(i, "%d N %d %d %d %s\n", i, (int)my_pid, (int)my_ppid, (int)my_pid, specs[i].role);
	if (i == 0) {
		wt_root_await_ready(n_procs, 20);
		wl_ready();
	}

	wl_wait_trigger();
	for (int k = 0; k < n_kids; k++)
		if (!is_zombie(kid_idx[k]))
			kill(kid_pid[k], SIGUSR2);
	verify_self();
	verify_zombies();
	if (i == 0) {
		static bool want[N_PROCS];

		for (int c = 1; c < n_procs; c++)
			want[c] = !is_zombie(c);
		wt_root_collect(n_procs, want, 15);
		wl_check(wt_fail_count == 0, "root: %s", wt_fail_text);
		wt_reap(kid_pid, n_kids, 10);
		wl_finish();
	}
	wt_write_result();
	wt_reap(kid_pid, n_kids, 15);
	_exit(0);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (argc > 2 && strcmp(argv[2], "left") == 0)
		n_procs = 18;
	wt_become(0);
	proc_main(0);
}
