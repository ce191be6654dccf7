/* Tests for the /proc parsers: recorded and hand-made fixtures (see
 * test/fixtures/proc/README), malformed input, and the live wrappers run on
 * this test process. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "os/proc.h"
#include "os/util.h"
#include "state/autogroup.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Fixtures live next to this file: test/unit/../fixtures/proc/ (relative to
 * the repository root, where the tests run, unless __FILE__ is absolute). */
static char *fixture_path(const char *name)
{
	char *path = NULL;
#ifdef FIXTURES
	assert_true(asprintf(&path, "%s/proc/%s", FIXTURES, name) > 0);
#else
	const char *slash = strrchr(__FILE__, '/');
	int dir_len = slash != NULL ? (int)(slash - __FILE__ + 1) : 0;

	assert_true(asprintf(&path, "%.*s../fixtures/proc/%s", dir_len, __FILE__, name) > 0);
#endif
	return path;
}

static char *load(const char *name)
{
	cleanup_free char *path = fixture_path(name);
	cr_error_t err = NULL;
	char *text = NULL;

	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &err) < 0)
		fail_msg("fixture %s: %s", name, err->msg);
	return text;
}

/* The text with the line starting with prefix replaced by repl (a whole
 * line without its newline), or removed when repl is NULL. */
static char *replace_line(const char *text, const char *prefix, const char *repl)
{
	const char *line = text, *next;
	char *out = NULL;

	while (strncmp(line, prefix, strlen(prefix)) != 0) {
		line = strchr(line, '\n');
		if (line == NULL)
			fail_msg("no line starting with %s", prefix);
		line++;
	}
	next = strchr(line, '\n');
	next = next != NULL ? next + 1 : line + strlen(line);
	assert_true(asprintf(&out, "%.*s%s%s%s", (int)(line - text), text, repl ? repl : "",
			     repl ? "\n" : "", next) > 0);
	return out;
}

/* rc is a failure whose message contains needle. */
static void expect_error(int rc, cr_error_t *err, const char *needle)
{
	assert_int_equal(rc, -1);
	assert_non_null(*err);
	assert_non_null((*err)->msg);
	if (strstr((*err)->msg, needle) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", (*err)->msg, needle);
	cr_error_release(err);
}

static void expect_status_error(const char *text, const char *needle)
{
	struct proc_status st;
	cr_error_t err = NULL;

	expect_error(proc_parse_status(text, &st, &err), &err, needle);
	assert_null(st.groups);
}

static void expect_stat_error(const char *text, const char *needle)
{
	struct proc_stat st;
	cr_error_t err = NULL;

	expect_error(proc_parse_stat(text, &st, &err), &err, needle);
}

static void expect_maps_error(const char *text, const char *needle)
{
	struct proc_vma_list l;
	cr_error_t err = NULL;

	expect_error(proc_parse_maps(text, &l, &err), &err, needle);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void expect_fdinfo_error(const char *text, const char *needle)
{
	struct proc_fdinfo fi;
	cr_error_t err = NULL;

	expect_error(proc_parse_fdinfo(text, &fi, &err), &err, needle);
}

static void expect_limits_error(const char *text, const char *needle)
{
	struct rlimit rl[RLIM_NLIMITS];
	cr_error_t err = NULL;

	expect_error(proc_parse_limits(text, rl, &err), &err, needle);
}

/* "PID (COMM) R 4 5 ... LAST\n": field N holds N, except for the
 * (int field, const char *value) pairs that follow, ended by 0. */
static char *make_stat(const char *pid, const char *comm, int last, ...)
{
	const char *values[64] = { NULL };
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);
	va_list ap;
	int field;

	assert_non_null(f);
	assert_true(last < 64);
	va_start(ap, last);
	while ((field = va_arg(ap, int)) != 0)
		values[field] = va_arg(ap, const char *);
	va_end(ap);
	fprintf(f, "%s (%s) %s", pid, comm, values[3] ? values[3] : "R");
	for (int n = 4; n <= last; n++) {
		if (values[n] != NULL)
			fprintf(f, " %s", values[n]);
		else
			fprintf(f, " %d", n);
	}
	fputc('\n', f);
	assert_int_equal(fclose(f), 0);
	return out;
}

/* A thread parked until released, for the tid tests. */
struct parked {
	pthread_t th;
	pid_t tid;
	int pipe[2];
};

static void *parked_main(void *arg)
{
	struct parked *p = arg;
	char c;

	__atomic_store_n(&p->tid, gettid(), __ATOMIC_SEQ_CST);
	while (read(p->pipe[0], &c, 1) < 0)
		;
	return NULL;
}

static void park_thread(struct parked *p)
{
	p->tid = 0;
	assert_int_equal(pipe(p->pipe), 0);
	assert_int_equal(pthread_create(&p->th, NULL, parked_main, p), 0);
	while (__atomic_load_n(&p->tid, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
}

static void release_thread(struct parked *p)
{
	assert_int_equal(write(p->pipe[1], "x", 1), 1);
	assert_int_equal(pthread_join(p->th, NULL), 0);
	close(p->pipe[0]);
	close(p->pipe[1]);
}

/* ---- status ------------------------------------------------------------------- */

static void test_status_recorded(void **state)
{
	cleanup_free char *text = load("status");
	struct proc_status st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_status(text, &st, &err), 0);
	assert_string_equal(st.name, "a) b (c");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.umask, 027);
	assert_int_equal(st.tgid, 21546);
	assert_int_equal(st.pid, 21546);
	assert_int_equal(st.ppid, 21525);
	assert_int_equal(st.tracer_pid, 0);
	assert_int_equal(st.n_levels, 1);
	assert_int_equal(st.ns_tgid[0], 21546);
	assert_int_equal(st.ns_pid[0], 21546);
	assert_int_equal(st.ns_pgid[0], 21524);
	assert_int_equal(st.ns_sid[0], 2142);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(st.uid[i], 0);
		assert_int_equal(st.gid[i], 0);
	}
	assert_int_equal(st.n_groups, 3);
	assert_int_equal(st.groups[0], 10);
	assert_int_equal(st.groups[1], 20);
	assert_int_equal(st.groups[2], 1000);
	assert_int_equal(st.threads, 2);
	assert_int_equal(st.sig_pnd, 0x200);
	assert_int_equal(st.shd_pnd, 0x4000);
	assert_int_equal(st.sig_blk, 0x4200);
	assert_int_equal(st.sig_ign, 0x1006);
	assert_int_equal(st.sig_cgt, 0x100000800);
	assert_int_equal(st.cap_inh, 0x400);
	assert_int_equal(st.cap_prm, 0x1fffeffffff);
	assert_int_equal(st.cap_eff, 0x1fffebfffff);
	assert_int_equal(st.cap_bnd, 0x1fffeffffff);
	assert_int_equal(st.cap_amb, 0x400);
	assert_int_equal(st.seccomp, 2);
	assert_int_equal(st.no_new_privs, 1);
	proc_status_free(&st);
	assert_null(st.groups);
	assert_int_equal(st.n_groups, 0);
}

static void test_status_thread(void **state)
{
	cleanup_free char *text = load("status-thread");
	struct proc_status st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_status(text, &st, &err), 0);
	assert_int_equal(st.pid, 21548);
	assert_int_equal(st.tgid, 21546);
	assert_int_equal(st.ns_pid[0], 21548);
	assert_int_equal(st.ns_tgid[0], 21546);
	assert_int_equal(st.sig_pnd, 0);      /* the raise() went to the main thread */
	assert_int_equal(st.shd_pnd, 0x4000); /* shared by the thread group */
	proc_status_free(&st);
}

static void test_status_nested_ns(void **state)
{
	cleanup_free char *text = load("status-nested-ns");
	const pid_t pids[] = { 21561, 3, 2, 1 };
	struct proc_status st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_status(text, &st, &err), 0);
	assert_string_equal(st.name, "sleep");
	assert_int_equal(st.n_levels, 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(st.ns_pid[i], pids[i]);
		assert_int_equal(st.ns_tgid[i], pids[i]);
		assert_int_equal(st.ns_pgid[i], i == 0 ? 21524 : 0);
		assert_int_equal(st.ns_sid[i], i == 0 ? 2142 : 0);
	}
	assert_int_equal(st.n_groups, 0); /* "Groups:\t \n" */
	assert_null(st.groups);
	assert_int_equal(st.sig_ign, 6);
	proc_status_free(&st);
}

static void test_status_minimal(void **state)
{
	cleanup_free char *text = load("status-minimal");
	struct proc_status st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_status(text, &st, &err), 0);
	assert_string_equal(st.name, "init");
	assert_int_equal(st.pid, 1);
	assert_int_equal(st.n_levels, 1);
	assert_int_equal(st.ns_tgid[0], 0); /* no NStgid line */
	assert_int_equal(st.threads, 0);
	assert_int_equal(st.n_groups, 0);
	proc_status_free(&st);
}

/* The speculation lines: read as text; only what a task chose for itself
 * counts as chosen. */
/* The task flags PR_SET_IO_FLUSHER sets, and not the kernel's own use of
 * one of them. */
static void test_stat_io_flusher(void **state)
{
	struct proc_stat st = { 0 };

	(void)state;
	st.flags = 0x00400100;   /* PF_RANDOMIZE | PF_SUPERPRIV: a usual process */
	assert_false(proc_stat_io_flusher(&st));
	st.flags |= 0x00080000;   /* PF_MEMALLOC_NOIO alone: the kernel's scope */
	assert_false(proc_stat_io_flusher(&st));
	st.flags |= 0x00100000;   /* and PF_LOCAL_THROTTLE: PR_SET_IO_FLUSHER */
	assert_true(proc_stat_io_flusher(&st));
}

/* /proc/PID/autogroup: a session's autogroup, and the root one (empty: a
 * process whose session never called setsid, as a CI runner under init). */
static void test_autogroup_parse(void **state)
{
	int32_t nice = 99;

	(void)state;
	assert_int_equal(autogroup_parse("/autogroup-12 nice 7\n", &nice), 0);
	assert_int_equal(nice, 7);
	assert_int_equal(autogroup_parse("/autogroup-3 nice -20\n", &nice), 0);
	assert_int_equal(nice, -20);
	nice = 99;
	assert_int_equal(autogroup_parse("", &nice), 0);
	assert_int_equal(nice, 0);
	assert_int_equal(autogroup_parse("/autogroup-3 nice 20\n", &nice), -1);
	assert_int_equal(autogroup_parse("nice 3\n", &nice), -1);
}

static void test_status_speculation(void **state)
{
	static const struct {
		const char *ssb, *ib, *chosen;
	} cases[] = {
		{ "vulnerable", "always enabled", NULL },
		{ "thread vulnerable", "conditional enabled", NULL },
		{ "globally mitigated", "always disabled", NULL },
		{ "not vulnerable", "unknown", NULL },
		{ "thread mitigated", "conditional enabled", "speculative store bypass: thread mitigated" },
		{ "thread force mitigated", "always enabled", "speculative store bypass: thread force mitigated" },
		{ "thread vulnerable", "conditional disabled", "indirect branch speculation: conditional disabled" },
		{ "vulnerable", "conditional force disabled",
		  "indirect branch speculation: conditional force disabled" },
	};
	cleanup_free char *text = load("status-thread");
	struct proc_status st;
	cr_error_t err = NULL;
	char buf[96];

	(void)state;
	assert_int_equal(proc_parse_status(text, &st, &err), 0);
	assert_string_equal(st.spec_store_bypass, "vulnerable");
	assert_string_equal(st.spec_indirect_branch, "always enabled");
	proc_status_free(&st);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *l1 = NULL, *l2 = NULL, *t1 = NULL, *t2 = NULL;
		const char *got;

		assert_true(asprintf(&l1, "Speculation_Store_Bypass:\t%s", cases[i].ssb) > 0);
		assert_true(asprintf(&l2, "SpeculationIndirectBranch:\t%s", cases[i].ib) > 0);
		t1 = replace_line(text, "Speculation_Store_Bypass:", l1);
		t2 = replace_line(t1, "SpeculationIndirectBranch:", l2);
		assert_int_equal(proc_parse_status(t2, &st, &err), 0);
		got = proc_status_spec_chosen(&st, buf, sizeof(buf));
		if (cases[i].chosen == NULL)
			assert_null(got);
		else
			assert_string_equal(got, cases[i].chosen);
		proc_status_free(&st);
	}
	/* absent lines (older kernels): nothing chosen */
	{
		cleanup_free char *minimal = load("status-minimal");

		assert_int_equal(proc_parse_status(minimal, &st, &err), 0);
		assert_string_equal(st.spec_store_bypass, "");
		assert_null(proc_status_spec_chosen(&st, buf, sizeof(buf)));
		proc_status_free(&st);
	}
}

static void test_status_bounds(void **state)
{
	cleanup_free char *text = load("status-minimal");
	cleanup_free char *ns33 = NULL, *with_ns = NULL;
	cleanup_free char *groups = NULL, *with_groups = NULL;
	struct proc_status st;
	cr_error_t err = NULL;
	size_t off = 0;

	(void)state;
	/* 33 levels is the most the kernel makes */
	ns33 = malloc(8 + 33 * 3);
	assert_non_null(ns33);
	off = (size_t)sprintf(ns33, "NSpid:\t1");
	for (int i = 1; i < 33; i++)
		off += (size_t)sprintf(ns33 + off, " %d", i + 1);
	with_ns = replace_line(text, "NSpid:", ns33);
	assert_int_equal(proc_parse_status(with_ns, &st, &err), 0);
	assert_int_equal(st.n_levels, 33);
	assert_int_equal(st.ns_pid[32], 33);
	proc_status_free(&st);

	/* a name longer than the buffer is cut at 63 characters */
	for (int len = 62; len <= 100; len += len < 65 ? 1 : 35) {
		cleanup_free char *long_name = NULL, *named = NULL;

		assert_true(asprintf(&long_name, "Name:\t%0*d", len, 7) > 0);
		named = replace_line(text, "Name:", long_name);
		assert_int_equal(proc_parse_status(named, &st, &err), 0);
		assert_int_equal(strlen(st.name), len < 63 ? len : 63);
		assert_memory_equal(st.name, long_name + 6, strlen(st.name));
		assert_int_equal(st.state, 'S');
		proc_status_free(&st);
	}

	/* PROC_MAX_GROUPS groups are fine, one more is an error */
	groups = malloc(8 + (PROC_MAX_GROUPS + 1) * 8);
	assert_non_null(groups);
	off = (size_t)sprintf(groups, "Groups:\t");
	for (int i = 0; i < PROC_MAX_GROUPS; i++)
		off += (size_t)sprintf(groups + off, "%d ", i + 100000);
	assert_true(asprintf(&with_groups, "%s%s\n", text, groups) > 0);
	assert_int_equal(proc_parse_status(with_groups, &st, &err), 0);
	assert_int_equal(st.n_groups, PROC_MAX_GROUPS);
	assert_int_equal(st.groups[PROC_MAX_GROUPS - 1], PROC_MAX_GROUPS - 1 + 100000);
	proc_status_free(&st);
	free(with_groups);
	with_groups = NULL;
	sprintf(groups + off, "7");
	assert_true(asprintf(&with_groups, "%s%s\n", text, groups) > 0);
	expect_status_error(with_groups, "Groups: more than 65536 groups");
}

static void test_status_missing_lines(void **state)
{
	static const char *const mandatory[] = {
		"Name", "State", "Tgid", "Pid", "NSpid", "Uid", "Gid", "SigBlk",
	};
	cleanup_free char *text = load("status");

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(mandatory); i++) {
		cleanup_free char *prefix = NULL, *cut = NULL, *want = NULL;

		assert_true(asprintf(&prefix, "%s:", mandatory[i]) > 0);
		assert_true(asprintf(&want, "status: no %s line", mandatory[i]) > 0);
		cut = replace_line(text, prefix, NULL);
		expect_status_error(cut, want);
	}
	expect_status_error("", "status: no Name line");
}

static void test_status_errors(void **state)
{
	static const struct {
		const char *prefix, *line, *error;
	} cases[] = {
		{ "Pid:", "Pid:\tabc", "status: line 6: Pid: bad number" },
		{ "Pid:", "Pid:\t-1", "line 6: Pid: bad number" },
		{ "Pid:", "Pid:\t2147483648", "line 6: Pid: bad number" },
		{ "Pid:", "Pid:\t12 13", "line 6: Pid: bad number" },
		{ "Pid:", "Pid:", "line 6: Pid: bad number" },
		{ "Umask:", "Umask:\t0089", "line 2: Umask: bad number" },
		{ "State:", "State:\t ", "line 3: State: empty state" },
		{ "Uid:", "Uid:\t0\t0\t0", "line 9: Uid: want 4 ids" },
		{ "Gid:", "Gid:\t0\t0\t0\t0\t0", "line 10: Gid: want 4 ids" },
		{ "Gid:", "Gid:\t0\t0\t0\t4294967296", "line 10: Gid: want 4 ids" },
		{ "Groups:", "Groups:\t10 x 1000", "line 12: Groups: bad group id" },
		{ "NSpid:", "NSpid:\t", "line 14: NSpid: empty list" },
		{ "NSpid:", "NSpid:\t21546\t-3", "line 14: NSpid: bad pid" },
		{ "SigBlk:", "SigBlk:\t10000000000000000", "SigBlk: bad number" },
		{ "SigBlk:", "SigBlk:\t000000000000420g", "SigBlk: bad number" },
		{ "Threads:", "Threads:\t99999999999", "Threads: bad number" },
		{ "Tgid:", "Tgid:\t21546\nTgid:\t21546", "line 5: duplicate Tgid" },
		{ "Ngid:", "garbage without a colon", "status: line 5: no ':'" },
	};
	cleanup_free char *text = load("status");
	cleanup_free char *truncated = load("status-truncated");
	cleanup_free char *mismatch = load("status-bad-ns-mismatch");
	cleanup_free char *levels = load("status-bad-ns-levels");

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *bad = replace_line(text, cases[i].prefix, cases[i].line);

		expect_status_error(bad, cases[i].error);
	}
	expect_status_error(truncated, "status: line 9: Uid: want 4 ids");
	expect_status_error(mismatch, "status: NS lists differ in length (3 and 4 levels)");
	expect_status_error(levels, "status: line 5: NSpid: more than 33 levels");
}

/* ---- stat --------------------------------------------------------------------- */

static void test_stat_recorded(void **state)
{
	cleanup_free char *text = load("stat");
	struct proc_stat st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_stat(text, &st, &err), 0);
	assert_int_equal(st.pid, 21546);
	assert_string_equal(st.comm, "a) b (c");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 21525);
	assert_int_equal(st.pgrp, 21524);
	assert_int_equal(st.session, 2142);
	assert_int_equal(st.tty_nr, 0);
	assert_int_equal(st.flags, 4194560);
	assert_int_equal(st.priority, 20);
	assert_int_equal(st.nice, 0);
	assert_int_equal(st.num_threads, 2);
	assert_int_equal(st.start_time, 121458);
	assert_int_equal(st.start_code, 4198400);
	assert_int_equal(st.end_code, 4764961);
	assert_int_equal(st.start_stack, 140726136062720);
	assert_int_equal(st.exit_signal, 17);
	assert_int_equal(st.rt_priority, 0);
	assert_int_equal(st.policy, 0);
	assert_int_equal(st.start_data, 4941488);
	assert_int_equal(st.end_data, 4965040);
	assert_int_equal(st.start_brk, 789352448);
	assert_int_equal(st.arg_start, 140726136068486);
	assert_int_equal(st.arg_end, 140726136068513);
	assert_int_equal(st.env_start, 140726136068513);
	assert_int_equal(st.env_end, 140726136070109);
	assert_int_equal(st.exit_code, 0);
}

static void test_stat_numbered(void **state)
{
	cleanup_free char *text = load("stat-numbered");
	struct proc_stat st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_stat(text, &st, &err), 0);
	assert_int_equal(st.pid, 1);
	assert_string_equal(st.comm, "a) b (c");
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.ppid, 4);
	assert_int_equal(st.pgrp, 5);
	assert_int_equal(st.session, 6);
	assert_int_equal(st.tty_nr, 7);
	assert_int_equal(st.flags, 9);
	assert_int_equal(st.priority, 18);
	assert_int_equal(st.nice, 19);
	assert_int_equal(st.num_threads, 20);
	assert_int_equal(st.start_time, 22);
	assert_int_equal(st.start_code, 26);
	assert_int_equal(st.end_code, 27);
	assert_int_equal(st.start_stack, 28);
	assert_int_equal(st.exit_signal, 38);
	assert_int_equal(st.rt_priority, 40);
	assert_int_equal(st.policy, 41);
	assert_int_equal(st.start_data, 45);
	assert_int_equal(st.end_data, 46);
	assert_int_equal(st.start_brk, 47);
	assert_int_equal(st.arg_start, 48);
	assert_int_equal(st.arg_end, 49);
	assert_int_equal(st.env_start, 50);
	assert_int_equal(st.env_end, 51);
	assert_int_equal(st.exit_code, 52);
}

static void test_stat_edge_cases(void **state)
{
	cleanup_free char *odd_comm = make_stat("42", ")\n(x", 52, 0);
	cleanup_free char *thread = make_stat("7", "t", 52, 7, "34816", 18, "39", 19, "-19",
					      38, "-1", 40, "99", 41, "1", 52, "255", 0);
	cleanup_free char *extremes = make_stat("2147483647", "e", 52, 18, "9223372036854775807",
						19, "-9223372036854775808", 22,
						"18446744073709551615", 0);
	cleanup_free char *longer = make_stat("1", "a", 54, 0);
	struct proc_stat st;
	cr_error_t err = NULL;

	(void)state;
	/* comm holding a newline and more parentheses; no trailing newline */
	odd_comm[strlen(odd_comm) - 1] = '\0';
	assert_int_equal(proc_parse_stat(odd_comm, &st, &err), 0);
	assert_int_equal(st.pid, 42);
	assert_string_equal(st.comm, ")\n(x");
	assert_int_equal(st.exit_code, 52);

	/* a thread: negative nice, exit_signal -1; and a big tty_nr */
	assert_int_equal(proc_parse_stat(thread, &st, &err), 0);
	assert_int_equal(st.tty_nr, 34816);
	assert_int_equal(st.priority, 39);
	assert_int_equal(st.nice, -19);
	assert_int_equal(st.exit_signal, UINT32_MAX);
	assert_int_equal(st.rt_priority, 99);
	assert_int_equal(st.policy, 1);
	assert_int_equal(st.exit_code, 255);

	assert_int_equal(proc_parse_stat(extremes, &st, &err), 0);
	assert_int_equal(st.pid, INT32_MAX);
	assert_true(st.priority == INT64_MAX);
	assert_true(st.nice == INT64_MIN);
	assert_true(st.start_time == UINT64_MAX);

	/* later kernels may append fields */
	assert_int_equal(proc_parse_stat(longer, &st, &err), 0);
	assert_int_equal(st.exit_code, 52);

	/* comm is cut at 63 characters */
	for (int len = 62; len <= 100; len += len < 65 ? 1 : 35) {
		cleanup_free char *long_comm = NULL, *named = NULL;

		assert_true(asprintf(&long_comm, "%0*d", len, 5) > 0);
		named = make_stat("1", long_comm, 52, 0);
		assert_int_equal(proc_parse_stat(named, &st, &err), 0);
		assert_int_equal(strlen(st.comm), len < 63 ? len : 63);
		assert_memory_equal(st.comm, long_comm, strlen(st.comm));
		assert_int_equal(st.state, 'R');
		assert_int_equal(st.ppid, 4);
	}
}

static void test_stat_errors(void **state)
{
	static const struct {
		int field;
		const char *value, *error;
	} cases[] = {
		{ 3, "RR", "stat: field 3: bad value 'RR'" },
		{ 4, "-4", "stat: field 4: bad value '-4'" },
		{ 7, "4294967296", "stat: field 7: bad value '4294967296'" },
		{ 9, "-1", "stat: field 9: bad value '-1'" },
		{ 11, "1.5", "stat: field 11: bad value '1.5'" },
		{ 22, "2x", "stat: field 22: bad value '2x'" },
		{ 26, "18446744073709551616", "stat: field 26: bad value '18446744073709551616'" },
		{ 18, "9223372036854775808", "stat: field 18: bad value '9223372036854775808'" },
		{ 19, "-9223372036854775809", "stat: field 19: bad value '-9223372036854775809'" },
		{ 38, "-2147483649", "stat: field 38: bad value '-2147483649'" },
		{ 52, "5e2", "stat: field 52: bad value '5e2'" },
	};
	cleanup_free char *truncated = load("stat-truncated");
	cleanup_free char *short_stat = make_stat("1", "a", 51, 0);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *bad = make_stat("1", "a", 52, cases[i].field, cases[i].value, 0);

		expect_stat_error(bad, cases[i].error);
	}
	expect_stat_error("", "stat: no (comm)");
	expect_stat_error("1 (a R 2 3\n", "stat: no (comm)");
	expect_stat_error("1 a) R (2 3\n", "stat: no (comm)");
	expect_stat_error("1 (a)", "stat: 2 fields, want at least 52");
	/* comm ends at the last ")", wherever it is */
	expect_stat_error("1 (a) R 4 5)\n", "stat: 2 fields, want at least 52");
	expect_stat_error(short_stat, "stat: 51 fields, want at least 52");
	expect_stat_error(truncated, "stat: 30 fields, want at least 52");
	expect_stat_error("x1 (a) R\n", "stat: bad pid before (comm)");
	expect_stat_error("1(a) R\n", "stat: bad pid before (comm)");
	expect_stat_error("1 2 (a) R\n", "stat: bad pid before (comm)");
}

/* ---- maps --------------------------------------------------------------------- */

static void check_vma(const struct proc_vma *v, uint64_t start, uint64_t end, uint32_t prot,
		      bool shared, const char *path, bool deleted, enum proc_vma_special special)
{
	assert_int_equal(v->start, start);
	assert_int_equal(v->end, end);
	assert_int_equal(v->prot, prot);
	assert_int_equal(v->shared, shared);
	if (path == NULL)
		assert_null(v->path);
	else
		assert_string_equal(v->path, path);
	assert_int_equal(v->deleted, deleted);
	assert_int_equal(v->special, special);
}

static void test_maps_recorded(void **state)
{
	cleanup_free char *text = load("maps");
	struct proc_vma_list l;
	cr_error_t err = NULL;
	const struct proc_vma *v;

	(void)state;
	assert_int_equal(proc_parse_maps(text, &l, &err), 0);
	assert_int_equal(l.n, 19);
	v = l.v;
	check_vma(&v[0], 0x400000, 0x401000, PROT_READ, false, "/tmp/tmp.f9t78P6r5g/record",
		  false, VMA_SPECIAL_NONE);
	assert_int_equal(v[0].dev_major, 0xfe);
	assert_int_equal(v[0].dev_minor, 0);
	assert_int_equal(v[0].ino, 10953323);
	check_vma(&v[1], 0x401000, 0x48c000, PROT_READ | PROT_EXEC, false,
		  "/tmp/tmp.f9t78P6r5g/record", false, VMA_SPECIAL_NONE);
	assert_int_equal(v[1].pgoff, 0x1000);
	assert_int_equal(v[4].pgoff, 0xba000);
	check_vma(&v[5], 0x4bd000, 0x4c2000, PROT_READ | PROT_WRITE, false, NULL, false,
		  VMA_SPECIAL_NONE);
	assert_int_equal(v[5].ino, 0);
	check_vma(&v[6], 0x2f0c9000, 0x2f0eb000, PROT_READ | PROT_WRITE, false, "[heap]", false,
		  VMA_SPECIAL_HEAP);
	check_vma(&v[7], 0x7f6967e97000, 0x7f6967e98000, PROT_NONE, false, NULL, false,
		  VMA_SPECIAL_NONE);
	check_vma(&v[9], 0x7f6968698000, 0x7f6968699000, PROT_READ | PROT_EXEC, false,
		  "/memfd:cr-test", true, VMA_SPECIAL_NONE);
	assert_int_equal(v[9].dev_major, 0);
	assert_int_equal(v[9].dev_minor, 1);
	assert_int_equal(v[9].ino, 27);
	check_vma(&v[10], 0x7f6968699000, 0x7f696869a000, PROT_READ | PROT_WRITE, true,
		  "/dev/zero", true, VMA_SPECIAL_NONE);
	check_vma(&v[11], 0x7f696869a000, 0x7f696869d000, PROT_NONE, false, NULL, false,
		  VMA_SPECIAL_NONE);
	check_vma(&v[12], 0x7f696869d000, 0x7f696869f000, PROT_READ | PROT_WRITE, true,
		  "/tmp/cr-fixture-deleted", true, VMA_SPECIAL_NONE);
	assert_int_equal(v[12].ino, 10953318);
	check_vma(&v[13], 0x7f696869f000, 0x7f69686a1000, PROT_READ, false,
		  "/tmp/cr fixture/with spaces.bin", false, VMA_SPECIAL_NONE);
	check_vma(&v[14], 0x7f69686a1000, 0x7f69686a5000, PROT_READ, false, "[vvar]", false,
		  VMA_SPECIAL_VVAR);
	check_vma(&v[15], 0x7f69686a5000, 0x7f69686a7000, PROT_READ, false, "[vvar_vclock]",
		  false, VMA_SPECIAL_VVAR_VCLOCK);
	check_vma(&v[16], 0x7f69686a7000, 0x7f69686a9000, PROT_READ | PROT_EXEC, false, "[vdso]",
		  false, VMA_SPECIAL_VDSO);
	check_vma(&v[17], 0x7ffd5b57d000, 0x7ffd5b59e000, PROT_READ | PROT_WRITE, false,
		  "[stack]", false, VMA_SPECIAL_STACK);
	check_vma(&v[18], 0xffffffffff600000, 0xffffffffff601000, PROT_EXEC, false,
		  "[vsyscall]", false, VMA_SPECIAL_VSYSCALL);
	proc_vma_list_free(&l);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void test_maps_edge_cases(void **state)
{
	cleanup_free char *text = load("maps-edge");
	struct proc_vma_list l;
	cr_error_t err = NULL;
	const struct proc_vma *v;

	(void)state;
	assert_int_equal(proc_parse_maps(text, &l, &err), 0);
	assert_int_equal(l.n, 6);
	v = l.v;
	check_vma(&v[0], 0x10000, 0x11000, PROT_READ, false, "[uprobes]", false,
		  VMA_SPECIAL_OTHER);
	check_vma(&v[1], 0x55d0c0a00000, 0x55d0c0a01000, PROT_READ | PROT_WRITE, true,
		  "/a (deleted) b", false, VMA_SPECIAL_NONE);
	assert_int_equal(v[1].pgoff, 0x1f000);
	assert_int_equal(v[1].dev_major, 0xfd);
	assert_int_equal(v[1].dev_minor, 0x1a);
	assert_int_equal(v[1].ino, UINT64_MAX);
	check_vma(&v[2], 0x7f0000000000, 0x7f0000001000, PROT_READ | PROT_EXEC, false, "/lib/x",
		  true, VMA_SPECIAL_NONE);
	assert_int_equal(v[2].dev_major, 0x103);
	assert_int_equal(v[2].dev_minor, 2);
	check_vma(&v[3], 0x7f0000001000, 0x7f0000002000, PROT_READ | PROT_WRITE, false, NULL,
		  false, VMA_SPECIAL_NONE);
	check_vma(&v[4], 0x7f0000002000, 0x7f0000003000, PROT_READ, false,
		  "/dev/shm/two  spaces ", false, VMA_SPECIAL_NONE);
	check_vma(&v[5], 0x7f0000003000, 0x7f0000004000, PROT_READ | PROT_WRITE, false,
		  "[anon:cr test]", false, VMA_SPECIAL_OTHER);
	proc_vma_list_free(&l);

	/* nothing mapped (a kernel thread) */
	assert_int_equal(proc_parse_maps("", &l, &err), 0);
	assert_int_equal(l.n, 0);
	proc_vma_list_free(&l);
}

static void test_maps_errors(void **state)
{
	static const struct {
		const char *line, *error;
	} cases[] = {
		{ "1000-2000 rw-p 0 00:00 0 /x\n2000-1000 rw-p 0 00:00 0",
		  "maps: line 2: bad address range" },
		{ "1000-1000 rw-p 0 00:00 0", "maps: line 1: bad address range" },
		{ "1000 rw-p 0 00:00 0", "line 1: bad address range" },
		{ "1000-2000x rw-p 0 00:00 0", "line 1: bad address range" },
		{ "1000-10000000000000000 rw-p 0 00:00 0", "line 1: bad address range" },
		{ "1000-2000 rwzp 0 00:00 0", "line 1: bad permissions" },
		{ "1000-2000 rw-", "line 1: bad permissions" },
		{ "1000-2000 rw-pp 0 00:00 0", "line 1: bad permissions" },
		{ "1000-2000 rw-x 0 00:00 0", "line 1: bad permissions" },
		{ "1000-2000 rw-p", "line 1: bad offset" },
		{ "1000-2000 rw-p 0g 00:00 0", "line 1: bad offset" },
		{ "1000-2000 rw-p 0 0000 0", "line 1: bad device" },
		{ "1000-2000 rw-p 0 00:", "line 1: bad device" },
		{ "1000-2000 rw-p 0 100000000:00 0", "line 1: bad device" },
		{ "1000-2000 rw-p 0 00:00", "line 1: bad inode" },
		{ "1000-2000 rw-p 0 00:00 12/x", "line 1: bad inode" },
		{ "1000-3000 rw-p 0 00:00 0\n2000-4000 rw-p 0 00:00 0",
		  "line 2: mapping overlaps the previous one" },
	};
	cleanup_free char *garbage = load("maps-bad-garbage");

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_maps_error(cases[i].line, cases[i].error);
	expect_maps_error(garbage, "maps: line 3: bad address range");
}

/* ---- smaps -------------------------------------------------------------------- */

static uint64_t vmf(const char *list)
{
	uint64_t bits = 0;

	for (const char *p = list; *p != '\0'; p += p[2] ? 3 : 2) {
		unsigned i = 0;

		while (i < PROC_VMF_N && strncmp(proc_vmflag_name(i), p, 2) != 0)
			i++;
		if (i == PROC_VMF_N)
			fail_msg("no flag %.2s", p);
		bits |= UINT64_C(1) << i;
	}
	return bits;
}

static void check_flags(const struct proc_vma *v, uint64_t start, const char *flags)
{
	assert_int_equal(v->start, start);
	if (v->vmflags != vmf(flags))
		fail_msg("mapping 0x%lx: flags 0x%llx, want %s (0x%llx)", (unsigned long)start,
			 (unsigned long long)v->vmflags, flags, (unsigned long long)vmf(flags));
	assert_string_equal(v->vmflag_unknown, "");
	assert_int_equal(v->pkey, 0);
}

/* record_smaps.c: one mapping per mnemonic cr acts on. */
static void test_smaps_recorded(void **state)
{
	cleanup_free char *text = load("smaps");
	struct proc_vma_list l;
	cr_error_t err = NULL;
	const struct proc_vma *v;

	(void)state;
	assert_int_equal(proc_parse_smaps(text, &l, &err), 0);
	assert_int_equal(l.n, 38);
	v = l.v;
	check_vma(&v[0], 0x400000, 0x401000, PROT_READ, false, "/tmp/tmp.ORNbWhroTo/record_smaps", false,
		  VMA_SPECIAL_NONE);
	assert_int_equal(v[0].ino, 10956028);
	check_flags(&v[0], 0x400000, "rd mr mw me");
	check_flags(&v[1], 0x401000, "rd ex mr mw me");
	check_flags(&v[4], 0x4a6000, "rd wr mr mw me ac");
	check_vma(&v[6], 0x229e3000, 0x22a05000, PROT_READ | PROT_WRITE, false, "[heap]", false,
		  VMA_SPECIAL_HEAP);
	check_vma(&v[7], 0x7fc887ada000, 0x7fc887adb000, PROT_READ | PROT_WRITE, true, "/dev/zero", true,
		  VMA_SPECIAL_NONE);
	assert_int_equal(v[7].ino, 1125);
	check_flags(&v[7], 0x7fc887ada000, "rd wr sh mr mw me ms lo");
	check_flags(&v[8], 0x7fc887adb000, "rd wr sh mr mw me ms");
	assert_int_equal(v[8].pgoff, 0x1000);
	check_flags(&v[9], 0x7fc887bdc000, "rd wr mr mw me gd ac");
	check_flags(&v[10], 0x7fc887be0000, "rd wr mr mw me gu ac");
	check_flags(&v[11], 0x7fc887be3000, "rd mr mw me sl");
	check_flags(&v[12], 0x7fc887be4000, "rd wr mr mw me nr wf dd dp");
	check_flags(&v[13], 0x7fc887be5000, "rd wr mr mw me nr");
	check_flags(&v[14], 0x7fc887be6000, "rd wr mr mw me rr ac");
	check_flags(&v[15], 0x7fc887be7000, "mr mw me");
	assert_int_equal(v[15].prot, PROT_NONE);
	check_flags(&v[16], 0x7fc887be8000, "rd wr mr mw me sr ac");
	check_flags(&v[18], 0x7fc887bea000, "rd wr mr mw me ac mg");
	check_flags(&v[20], 0x7fc887bec000, "rd wr mr mw me ac dd");
	check_flags(&v[22], 0x7fc887bee000, "rd wr mr mw me ac wf");
	check_flags(&v[24], 0x7fc887bf0000, "rd wr mr mw me dc ac");
	check_flags(&v[26], 0x7fc887bf2000, "rd wr mr mw me ac nh");
	check_flags(&v[28], 0x7fc887bf4000, "rd wr mr mw me ac hg");
	check_flags(&v[30], 0x7fc887bf6000, "rd wr mr mw me lo lf ac");
	check_flags(&v[32], 0x7fc887bf8000, "rd wr mr mw me lo ac");
	check_vma(&v[33], 0x7fc887bf9000, 0x7fc887bfd000, PROT_READ, false, "[vvar]", false, VMA_SPECIAL_VVAR);
	check_flags(&v[33], 0x7fc887bf9000, "rd mr pf io de dd");
	check_flags(&v[35], 0x7fc887bff000, "rd ex mr mw me de");
	check_flags(&v[36], 0x7ffc960da000, "rd wr mr mw me gd ac");
	check_vma(&v[37], 0xffffffffff600000, 0xffffffffff601000, PROT_EXEC, false, "[vsyscall]", false,
		  VMA_SPECIAL_VSYSCALL);
	check_flags(&v[37], 0xffffffffff600000, "ex");
	proc_vma_list_free(&l);
}

/* Protection keys, mnemonics cr does not know, a tab, an empty list and
 * no final newline. */
static void test_smaps_edge_cases(void **state)
{
	cleanup_free char *text = load("smaps-edge");
	struct proc_vma_list l;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_smaps(text, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.v[0].pkey, 5);
	assert_int_equal(l.v[0].vmflags, vmf("rd mr mw me lo"));
	assert_string_equal(l.v[0].vmflag_unknown, "??");
	assert_string_equal(l.v[0].path, "/bin/x");
	assert_int_equal(l.v[1].vmflags, vmf("rd wr mr mw me ac"));
	assert_int_equal(l.v[1].pkey, 0);
	assert_int_equal(l.v[2].vmflags, vmf("mr mw me"));
	assert_int_equal(l.v[2].prot, PROT_NONE);
	proc_vma_list_free(&l);

	assert_int_equal(proc_parse_smaps("", &l, &err), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(proc_parse_smaps("1000-2000 rw-p 0 00:00 0\nVmFlags:\n", &l, &err), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].vmflags, 0);
	proc_vma_list_free(&l);
	assert_string_equal(proc_vmflag_name(PROC_VMF_LO), "lo");
	assert_string_equal(proc_vmflag_name(PROC_VMF_GU), "gu");
	assert_string_equal(proc_vmflag_name(PROC_VMF_N), "?");
}

static void test_kernel_memory_files(void **state)
{
	(void)state;
	assert_string_equal(proc_kernel_memory_file("/dev/zero"), "shared anonymous memory");
	assert_string_equal(proc_kernel_memory_file("/dev/zero (deleted)"), "shared anonymous memory");
	assert_string_equal(proc_kernel_memory_file("/SYSV0000002a (deleted)"), "System V shared memory (shmat)");
	assert_string_equal(proc_kernel_memory_file("/anon_hugepage (deleted)"), "hugetlb memory");
	assert_string_equal(proc_kernel_memory_file("/[aio] (deleted)"), "an aio ring (io_setup)");
	assert_string_equal(proc_kernel_memory_file("/memfd:x (deleted)"), "a memfd");
	assert_null(proc_kernel_memory_file("/dev/zero2 (deleted)"));
	assert_null(proc_kernel_memory_file("/dev/shm/x (deleted)"));
	assert_null(proc_kernel_memory_file("/anon_hugepages"));
	assert_null(proc_kernel_memory_file(""));
}

static void expect_smaps_error(const char *text, const char *needle)
{
	struct proc_vma_list l;
	cr_error_t err = NULL;

	expect_error(proc_parse_smaps(text, &l, &err), &err, needle);
	assert_null(l.v);
	assert_int_equal(l.n, 0);
}

static void test_smaps_errors(void **state)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "VmFlags: rd\n", "smaps: line 1: a field before any mapping" },
		{ "1000-2000 rw-p 0 00:00 0\nSize: 4 kB\n2000-3000 rw-p 0 00:00 0\nVmFlags: rd\n",
		  "smaps: line 3: the mapping before has no VmFlags" },
		{ "1000-2000 rw-p 0 00:00 0\nVmFlags: rd\n2000-3000 rw-p 0 00:00 0\nSize: 4 kB\n",
		  "smaps: line 5: the last mapping has no VmFlags" },
		{ "1000-2000 rw-p 0 00:00 0\nVmFlags: rd\nVmFlags: rd\n", "line 3: duplicate VmFlags" },
		{ "1000-2000 rw-p 0 00:00 0\nProtectionKey: 1\nProtectionKey: 1\nVmFlags: rd\n",
		  "line 3: duplicate ProtectionKey" },
		{ "1000-2000 rw-p 0 00:00 0\nProtectionKey: x\nVmFlags: rd\n", "line 2: ProtectionKey: bad number" },
		{ "1000-2000 rw-p 0 00:00 0\nProtectionKey: 99999999999\nVmFlags: rd\n",
		  "line 2: ProtectionKey: bad number" },
		{ "1000-2000 rw-p 0 00:00 0\nVmFlags: rd abcdefgh\n", "line 2: VmFlags: mnemonic too long" },
		{ "1000-2000 rw-p 0 00:00 0\nVmFlags: rd\ngarbage\n", "line 3: bad address range" },
		{ "1000-2000 rw-p 0 00:00 0\nVmFlags: rd\n1800-3000 rw-p 0 00:00 0\nVmFlags: rd\n",
		  "line 3: mapping overlaps the previous one" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_smaps_error(cases[i].text, cases[i].error);
}

/* ---- fdinfo ------------------------------------------------------------------- */

static void test_fdinfo_recorded(void **state)
{
	cleanup_free char *file = load("fdinfo-file");
	cleanup_free char *efd = load("fdinfo-eventfd");
	struct proc_fdinfo fi;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_fdinfo(file, &fi, &err), 0);
	assert_int_equal(fi.pos, 5);
	assert_int_equal(fi.flags, 0102002); /* O_RDWR | O_APPEND | O_LARGEFILE */
	assert_int_equal(fi.mnt_id, 26);
	assert_int_equal(fi.ino, 10953319);

	/* eventfd-* lines belong to the eventfd code */
	assert_int_equal(proc_parse_fdinfo(efd, &fi, &err), 0);
	assert_int_equal(fi.pos, 0);
	assert_int_equal(fi.flags, O_RDWR | O_NONBLOCK);
	assert_int_equal(fi.mnt_id, 17);
	assert_int_equal(fi.ino, 26);
}

static void test_fdinfo_old_kernel(void **state)
{
	cleanup_free char *text = load("fdinfo-old");
	struct proc_fdinfo fi;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_parse_fdinfo(text, &fi, &err), 0);
	assert_int_equal(fi.pos, 1024);
	assert_int_equal(fi.flags, O_RDWR);
	assert_int_equal(fi.mnt_id, 21);
	assert_int_equal(fi.ino, 0);

	/* pos is a loff_t; a negative one keeps its bits */
	assert_int_equal(proc_parse_fdinfo("pos:\t-1\nflags:\t0\nmnt_id:\t3\n", &fi, &err), 0);
	assert_true(fi.pos == UINT64_MAX);
}

static void test_fdinfo_errors(void **state)
{
	static const struct {
		const char *text, *error;
	} cases[] = {
		{ "", "fdinfo: no pos line" },
		{ "flags:\t02\nmnt_id:\t21\n", "fdinfo: no pos line" },
		{ "pos:\t0\nmnt_id:\t21\n", "fdinfo: no flags line" },
		{ "pos:\t0\nflags:\t02\n", "fdinfo: no mnt_id line" },
		{ "pos:\tx\nflags:\t02\nmnt_id:\t21\n", "fdinfo: line 1: pos: bad number" },
		{ "pos:\t0\nflags:\t09\nmnt_id:\t21\n", "fdinfo: line 2: flags: bad number" },
		{ "pos:\t0\nflags:\t02\nmnt_id:\t21 22\n", "fdinfo: line 3: mnt_id: bad number" },
		{ "pos:\t0\nflags:\t02\nmnt_id:\t1\nino:\t-5\n", "fdinfo: line 4: ino: bad number" },
		{ "pos:\t0\npos:\t0\nflags:\t02\nmnt_id:\t1\n", "fdinfo: line 2: duplicate pos" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_fdinfo_error(cases[i].text, cases[i].error);
}

/* ---- limits ------------------------------------------------------------------- */

static void test_limits_recorded(void **state)
{
	static const struct {
		int res;
		rlim_t cur, max;
	} want[] = {
		{ RLIMIT_CPU, 3600, 7200 },
		{ RLIMIT_FSIZE, 1073741824, RLIM_INFINITY },
		{ RLIMIT_DATA, RLIM_INFINITY, RLIM_INFINITY },
		{ RLIMIT_STACK, 8388608, RLIM_INFINITY },
		{ RLIMIT_CORE, 0, RLIM_INFINITY },
		{ RLIMIT_RSS, RLIM_INFINITY, RLIM_INFINITY },
		{ RLIMIT_NPROC, 96365, 96365 },
		{ RLIMIT_NOFILE, 1024, 4096 },
		{ RLIMIT_MEMLOCK, 65536, 131072 },
		{ RLIMIT_AS, RLIM_INFINITY, RLIM_INFINITY },
		{ RLIMIT_LOCKS, 100, 200 },
		{ RLIMIT_SIGPENDING, 96365, 96365 },
		{ RLIMIT_MSGQUEUE, 8192, 16384 },
		{ RLIMIT_NICE, 0, 0 },
		{ RLIMIT_RTPRIO, 0, 0 },
		{ RLIMIT_RTTIME, 500000, 1000000 },
	};
	cleanup_free char *text = load("limits");
	struct rlimit rl[RLIM_NLIMITS];
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(ARRAY_SIZE(want), RLIM_NLIMITS);
	assert_int_equal(proc_parse_limits(text, rl, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		assert_int_equal(rl[want[i].res].rlim_cur, want[i].cur);
		assert_int_equal(rl[want[i].res].rlim_max, want[i].max);
	}
}

static void test_limits_errors(void **state)
{
	static const struct {
		const char *prefix, *line, *error;
	} cases[] = {
		{ "Limit ", "Limits", "limits: line 1: no header" },
		{ "Max cpu time", "Max cpu time    3600x 7200 seconds",
		  "limits: line 2: Max cpu time: bad value" },
		{ "Max cpu time", "Max cpu time    3600", "line 2: Max cpu time: bad value" },
		{ "Max cpu time", "Max cpu time    unlimitedx 1", "line 2: Max cpu time: bad value" },
		{ "Max cpu time", "Max cpu time    18446744073709551616 1",
		  "line 2: Max cpu time: bad value" },
		{ "Max cpu time", "Max cpu times   1 1 seconds", "limits: line 2: unknown limit" },
		{ "Max cpu time", "Max cpu time", "limits: line 2: unknown limit" },
		{ "Max cpu time", "", "limits: line 2: unknown limit" },
		{ "Max data size", "Max file size   1 1 bytes", "limits: line 4: duplicate Max file size" },
	};
	cleanup_free char *text = load("limits");
	cleanup_free char *missing = load("limits-bad-missing-row");

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *bad = replace_line(text, cases[i].prefix, cases[i].line);

		expect_limits_error(bad, cases[i].error);
	}
	expect_limits_error("", "limits: line 1: no header");
	expect_limits_error(missing, "limits: no 'Max file locks' row");
}

/* ---- every parser survives truncation and corruption of every fixture ----- */

static int run_status(const char *text, cr_error_t *err)
{
	struct proc_status st;
	int rc = proc_parse_status(text, &st, err);

	if (rc == 0)
		proc_status_free(&st);
	return rc;
}

static int run_stat(const char *text, cr_error_t *err)
{
	struct proc_stat st;

	return proc_parse_stat(text, &st, err);
}

static int run_maps(const char *text, cr_error_t *err)
{
	struct proc_vma_list l;
	int rc = proc_parse_maps(text, &l, err);

	if (rc == 0)
		proc_vma_list_free(&l);
	return rc;
}

static int run_smaps(const char *text, cr_error_t *err)
{
	struct proc_vma_list l;
	int rc = proc_parse_smaps(text, &l, err);

	if (rc == 0)
		proc_vma_list_free(&l);
	return rc;
}

static int run_fdinfo(const char *text, cr_error_t *err)
{
	struct proc_fdinfo fi;

	return proc_parse_fdinfo(text, &fi, err);
}

static int run_limits(const char *text, cr_error_t *err)
{
	struct rlimit rl[RLIM_NLIMITS];

	return proc_parse_limits(text, rl, err);
}

static void run_checked(int (*run)(const char *, cr_error_t *), const char *text)
{
	cr_error_t err = NULL;
	int rc = run(text, &err);

	if (rc == 0) {
		assert_null(err);
		return;
	}
	assert_int_equal(rc, -1);
	assert_non_null(err);
	assert_non_null(err->msg);
	cr_error_release(&err);
}

static void test_parsers_survive_damage(void **state)
{
	static const struct {
		const char *fixture;
		int (*run)(const char *, cr_error_t *);
	} files[] = {
		{ "status", run_status },       { "status-nested-ns", run_status },
		{ "stat", run_stat },           { "stat-numbered", run_stat },
		{ "maps", run_maps },           { "maps-edge", run_maps },
		{ "smaps-edge", run_smaps },
		{ "fdinfo-eventfd", run_fdinfo }, { "fdinfo-old", run_fdinfo },
		{ "limits", run_limits },
	};
	static const char junk[] = { '\n', ' ', '\t', ':', '(', ')', '-', '9', 'f', 'x', '\377' };

	(void)state;
	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		cleanup_free char *text = load(files[f].fixture);
		cleanup_free char *copy = strdup(text);
		size_t len = strlen(text);

		for (size_t cut = 0; cut < len; cut++) {
			copy[cut] = '\0';
			run_checked(files[f].run, copy);
			copy[cut] = text[cut];
		}
		for (size_t at = 0; at < len; at++) {
			for (size_t j = 0; j < sizeof(junk); j++) {
				copy[at] = junk[j];
				run_checked(files[f].run, copy);
			}
			copy[at] = text[at];
		}
	}
}

/* ---- live wrappers, on this process -------------------------------------------- */

static void test_live_status(void **state)
{
	struct proc_status st;
	cr_error_t err = NULL;
	struct parked th;

	(void)state;
	assert_int_equal(proc_read_status(getpid(), 0, &st, &err), 0);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.tgid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.uid[0], getuid());
	assert_int_equal(st.gid[1], getegid());
	assert_int_equal(st.state, 'R');
	assert_true(st.n_levels >= 1);
	proc_status_free(&st);

	park_thread(&th);
	assert_int_equal(proc_read_status(getpid(), th.tid, &st, &err), 0);
	assert_int_equal(st.pid, th.tid);
	assert_int_equal(st.tgid, getpid());
	assert_int_equal(st.threads, 2);
	proc_status_free(&st);
	release_thread(&th);
}

static void test_live_stat(void **state)
{
	struct proc_stat st;
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_read_stat(getpid(), &st, &err), 0);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.pgrp, getpgrp());
	assert_int_equal(st.session, getsid(0));
	assert_int_equal(st.state, 'R');
	assert_int_equal(st.num_threads, 1);
	assert_true(st.start_code < st.end_code);
	assert_true(st.arg_start < st.arg_end);
}

static void test_live_maps(void **state)
{
	uint64_t code = (uint64_t)(uintptr_t)&test_live_maps;
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
	struct proc_vma_list l;
	cr_error_t err = NULL;
	bool saw_vdso = false, saw_code = false;

	(void)state;
	assert_int_equal(proc_read_maps(getpid(), &l, &err), 0);
	assert_true(l.n > 5);
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *v = &l.v[i];

		if (v->special == VMA_SPECIAL_VDSO) {
			assert_int_equal(v->start, vdso);
			assert_int_equal(v->prot, PROT_READ | PROT_EXEC);
			saw_vdso = true;
		}
		if (v->start <= code && code < v->end) {
			assert_true(v->prot & PROT_EXEC);
			assert_non_null(v->path);
			saw_code = true;
		}
	}
	assert_true(saw_vdso);
	assert_true(saw_code);
	proc_vma_list_free(&l);
}

/* smaps shows the flags set on a mapping. */
static void test_live_smaps(void **state)
{
	char *p = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct proc_vma_list smaps;
	cr_error_t err = NULL;
	bool saw = false;

	(void)state;
	assert_true(p != MAP_FAILED);
	assert_int_equal(madvise(p + 4096, 4096, MADV_DONTFORK), 0);
	assert_int_equal(proc_read_smaps(getpid(), &smaps, &err), 0);
	for (size_t i = 0; i < smaps.n; i++) {
		if (smaps.v[i].start == (uintptr_t)p + 4096) {
			assert_int_equal(smaps.v[i].end, (uintptr_t)p + 2 * 4096);
			assert_true(smaps.v[i].vmflags & PROC_VMF(DC));
			assert_true(smaps.v[i].vmflags & PROC_VMF(WR));
			saw = true;
		} else if (smaps.v[i].start <= (uintptr_t)p && (uintptr_t)p < smaps.v[i].end) {
			assert_false(smaps.v[i].vmflags & PROC_VMF(DC));
		}
	}
	assert_true(saw);
	proc_vma_list_free(&smaps);
	munmap(p, 3 * 4096);
}

static void test_live_fdinfo(void **state)
{
	char path[] = "/tmp/cr-test-proc-XXXXXX";
	cleanup_close int fd = mkostemp(path, O_APPEND);
	cleanup_free char *text = NULL;
	struct proc_fdinfo fi;
	struct stat sb;
	cr_error_t err = NULL;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "hello", 5), 5);
	assert_int_equal(lseek(fd, 3, SEEK_SET), 3);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(proc_read_fdinfo(getpid(), fd, &fi, &text, &err), 0);
	assert_int_equal(fi.pos, 3);
	assert_int_equal(fi.flags & O_ACCMODE, O_RDWR);
	assert_true(fi.flags & O_APPEND);
	assert_int_equal(fi.ino, sb.st_ino);
	assert_true(fi.mnt_id > 0);
	assert_non_null(strstr(text, "pos:\t3\n"));

	assert_int_equal(proc_read_fdinfo(getpid(), fd, &fi, NULL, &err), 0);
	assert_int_equal(fi.pos, 3);
}

static void test_live_limits(void **state)
{
	struct rlimit rl[RLIM_NLIMITS];
	cr_error_t err = NULL;

	(void)state;
	assert_int_equal(proc_read_limits(getpid(), rl, &err), 0);
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		struct rlimit want;

		assert_int_equal(getrlimit(r, &want), 0);
		assert_int_equal(rl[r].rlim_cur, want.rlim_cur);
		assert_int_equal(rl[r].rlim_max, want.rlim_max);
	}
}

static void test_live_auxv(void **state)
{
	cleanup_free uint64_t *auxv = NULL;
	cr_error_t err = NULL;
	size_t n = 0;
	bool saw_pagesz = false;

	(void)state;
	assert_int_equal(proc_read_auxv(getpid(), &auxv, &n, &err), 0);
	assert_true(n >= 4);
	assert_int_equal(n % 2, 0);
	assert_int_equal(auxv[n - 2], AT_NULL);
	for (size_t i = 0; i + 2 < n; i += 2) {
		assert_int_not_equal(auxv[i], AT_NULL);
		if (auxv[i] == AT_PAGESZ) {
			assert_int_equal(auxv[i + 1], 4096);
			saw_pagesz = true;
		}
		if (auxv[i] == AT_ENTRY)
			assert_int_equal(auxv[i + 1], getauxval(AT_ENTRY));
	}
	assert_true(saw_pagesz);
}

static void test_live_tasks(void **state)
{
	cleanup_free pid_t *tasks = NULL;
	cr_error_t err = NULL;
	struct parked th;
	size_t n = 0;

	(void)state;
	assert_int_equal(proc_list_tasks(getpid(), &tasks, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(tasks[0], getpid());
	free(tasks);
	tasks = NULL;

	park_thread(&th);
	assert_int_equal(proc_list_tasks(getpid(), &tasks, &n, &err), 0);
	release_thread(&th);
	assert_int_equal(n, 2);
	assert_true(tasks[0] < tasks[1]);
	assert_true(tasks[0] == getpid() || tasks[1] == getpid());
	assert_true(tasks[0] == th.tid || tasks[1] == th.tid);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static void test_live_fds(void **state)
{
	cleanup_free int *fds = NULL;
	cleanup_close int high = -1;
	cr_error_t err = NULL;
	size_t n = 0;

	(void)state;
	high = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 200);
	assert_int_equal(high, 200);
	assert_int_equal(proc_list_fds(getpid(), &fds, &n, &err), 0);
	assert_true(n >= 4);
	assert_int_equal(fds[0], 0);
	assert_int_equal(fds[1], 1);
	assert_int_equal(fds[2], 2);
	for (size_t i = 1; i < n; i++)
		assert_true(fds[i - 1] < fds[i]);
	assert_non_null(bsearch(&high, fds, n, sizeof(*fds), cmp_int));
	/* the descriptor used to read /proc/self/fd is not listed */
	for (size_t i = 0; i < n; i++)
		assert_true(fcntl(fds[i], F_GETFD) >= 0);
}

static void test_live_errors(void **state)
{
	const pid_t gone = 2147483647; /* above any pid_max */
	struct proc_status status;
	struct proc_stat stat;
	struct proc_vma_list maps;
	struct proc_fdinfo fdinfo;
	struct rlimit rl[RLIM_NLIMITS];
	uint64_t *auxv;
	pid_t *tasks;
	int *fds;
	size_t n;
	cr_error_t err = NULL;

	(void)state;
	expect_error(proc_read_status(gone, 0, &status, &err), &err,
		     "open /proc/2147483647/status: No such file or directory");
	expect_error(proc_read_status(getpid(), gone, &status, &err), &err, "/task/2147483647/status");
	expect_error(proc_read_stat(gone, &stat, &err), &err, "/proc/2147483647/stat:");
	expect_error(proc_read_maps(gone, &maps, &err), &err, "/proc/2147483647/maps:");
	expect_error(proc_read_fdinfo(getpid(), 12345, &fdinfo, NULL, &err), &err,
		     "/fdinfo/12345: No such file or directory");
	expect_error(proc_read_limits(gone, rl, &err), &err, "/proc/2147483647/limits:");
	expect_error(proc_read_auxv(gone, &auxv, &n, &err), &err, "/proc/2147483647/auxv:");
	expect_error(proc_list_tasks(gone, &tasks, &n, &err), &err, "open /proc/2147483647/task:");
	expect_error(proc_list_fds(gone, &fds, &n, &err), &err, "open /proc/2147483647/fd:");
}

/* --- namespace links and time namespace offsets ------------------------------ */

static void test_ns_links(void **state)
{
	uint64_t ino = 0, own = 0, again = 0;
	cr_error_t err = NULL;

	(void)state;
	assert_ok(proc_parse_ns_link("uts:[4026531838]", "uts", &ino, &err), &err);
	assert_int_equal(ino, 4026531838ULL);
	assert_ok(proc_parse_ns_link("time:[4026531834]", "time_for_children", &ino, &err), &err);
	assert_int_equal(ino, 4026531834ULL);
	assert_ok(proc_parse_ns_link("pid:[1]", "pid_for_children", &ino, &err), &err);
	assert_int_equal(ino, 1);
	expect_error(proc_parse_ns_link("ipc:[4026531839]", "uts", &ino, &err), &err, "is not a uts namespace");
	expect_error(proc_parse_ns_link("uts:[]", "uts", &ino, &err), &err, "unexpected 'uts:[]'");
	expect_error(proc_parse_ns_link("uts:[12", "uts", &ino, &err), &err, "unexpected");
	expect_error(proc_parse_ns_link("uts:[12]x", "uts", &ino, &err), &err, "unexpected");
	expect_error(proc_parse_ns_link("uts[12]", "uts", &ino, &err), &err, "unexpected");
	expect_error(proc_parse_ns_link("uts:[99999999999999999999]", "uts", &ino, &err), &err, "unexpected");
	/* Live: cr's own is what /proc/PID/ns shows for its pid. */
	assert_ok(proc_read_ns(0, "uts", &own, &err), &err);
	assert_ok(proc_read_ns(getpid(), "uts", &again, &err), &err);
	assert_int_equal(own, again);
	expect_error(proc_read_ns(2147483647, "uts", &ino, &err), &err, "readlink /proc/2147483647/ns/uts");
}

static void test_timens_offsets(void **state)
{
	struct proc_timens_offsets o;
	cr_error_t err = NULL;

	(void)state;
	assert_ok(proc_parse_timens_offsets("monotonic           0         0\n"
					    "boottime            0         0\n", &o, &err), &err);
	assert_int_equal(o.monotonic_sec, 0);
	assert_ok(proc_parse_timens_offsets("boottime   -7   999999999\nmonotonic 1000 5\n", &o, &err), &err);
	assert_int_equal(o.monotonic_sec, 1000);
	assert_int_equal(o.monotonic_nsec, 5);
	assert_int_equal(o.boottime_sec, -7);
	assert_int_equal(o.boottime_nsec, 999999999);
	expect_error(proc_parse_timens_offsets("monotonic 1 0\n", &o, &err), &err, "lacks the monotonic or");
	expect_error(proc_parse_timens_offsets("monotonic 1 0\nboottime 1 1000000000\n", &o, &err), &err,
		     "line 2");
	expect_error(proc_parse_timens_offsets("monotonic 1 0\nmonotonic 1 0\nboottime 0 0\n", &o, &err), &err,
		     "line 2");
	expect_error(proc_parse_timens_offsets("realtime 1 0\n", &o, &err), &err, "line 1");
	expect_error(proc_parse_timens_offsets("monotonic 1\nboottime 0 0\n", &o, &err), &err, "line 1");
	expect_error(proc_parse_timens_offsets("monotonic 1 2 3\nboottime 0 0\n", &o, &err), &err, "line 1");
	expect_error(proc_parse_timens_offsets("", &o, &err), &err, "lacks");
	assert_ok(proc_read_timens_offsets(0, &o, &err), &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_recorded),
		cmocka_unit_test(test_status_thread),
		cmocka_unit_test(test_status_nested_ns),
		cmocka_unit_test(test_status_minimal),
		cmocka_unit_test(test_status_bounds),
		cmocka_unit_test(test_status_speculation),
		cmocka_unit_test(test_autogroup_parse),
		cmocka_unit_test(test_stat_io_flusher),
		cmocka_unit_test(test_status_missing_lines),
		cmocka_unit_test(test_status_errors),
		cmocka_unit_test(test_stat_recorded),
		cmocka_unit_test(test_stat_numbered),
		cmocka_unit_test(test_stat_edge_cases),
		cmocka_unit_test(test_stat_errors),
		cmocka_unit_test(test_maps_recorded),
		cmocka_unit_test(test_maps_edge_cases),
		cmocka_unit_test(test_maps_errors),
		cmocka_unit_test(test_smaps_recorded),
		cmocka_unit_test(test_smaps_edge_cases),
		cmocka_unit_test(test_smaps_errors),
		cmocka_unit_test(test_kernel_memory_files),
		cmocka_unit_test(test_fdinfo_recorded),
		cmocka_unit_test(test_fdinfo_old_kernel),
		cmocka_unit_test(test_fdinfo_errors),
		cmocka_unit_test(test_limits_recorded),
		cmocka_unit_test(test_limits_errors),
		cmocka_unit_test(test_parsers_survive_damage),
		cmocka_unit_test(test_live_status),
		cmocka_unit_test(test_live_stat),
		cmocka_unit_test(test_live_maps),
		cmocka_unit_test(test_live_smaps),
		cmocka_unit_test(test_live_fdinfo),
		cmocka_unit_test(test_live_limits),
		cmocka_unit_test(test_live_auxv),
		cmocka_unit_test(test_live_tasks),
		cmocka_unit_test(test_live_fds),
		cmocka_unit_test(test_live_errors),
		cmocka_unit_test(test_ns_links),
		cmocka_unit_test(test_timens_offsets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
