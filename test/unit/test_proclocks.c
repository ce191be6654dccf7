/* Tests for the file lock parsers (/proc/locks and fdinfo "lock:" lines):
 * recorded fixtures (test/fixtures/proc/locks, fdinfo-locks), hand-made
 * edge cases, malformed lines, damaged copies of the fixtures, and the
 * live wrapper on locks this test takes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "os/proc.h"
#include "os/util.h"

static char *load(const char *name)
{
	const char *slash = strrchr(__FILE__, '/');
	int dir_len = slash != NULL ? (int)(slash - __FILE__ + 1) : 0;
	cleanup_free char *path = NULL;
	cr_error_t err = NULL;
	char *text = NULL;

	assert_true(asprintf(&path, "%.*s../fixtures/proc/%s", dir_len, __FILE__, name) > 0);
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &err) < 0)
		fail_msg("fixture %s: %s", name, err->msg);
	return text;
}

static void check_lock(const struct proc_lock *l, enum proc_lock_class cls, const char *name, bool waiting,
		       int type, pid_t pid, uint64_t ino, int64_t start, int64_t end)
{
	assert_int_equal(l->cls, cls);
	assert_string_equal(l->name, name);
	assert_int_equal(l->waiting, waiting);
	assert_int_equal(l->type, type);
	assert_int_equal(l->pid, pid);
	assert_true(l->has_inode);
	assert_int_equal(l->dev_major, 0xfe);
	assert_int_equal(l->dev_minor, 0);
	assert_int_equal(l->ino, ino);
	assert_int_equal(l->start, start);
	assert_int_equal(l->end, end);
}

static void test_locks_recorded(void **state)
{
	cleanup_free char *text = load("locks");
	cleanup_free struct proc_lock *v = NULL;
	cr_error_t err = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(proc_parse_locks(text, &v, &n, &err), 0);
	assert_int_equal(n, 8);
	check_lock(&v[0], PROC_LOCK_OTHER, "LEASE", false, F_RDLCK, 155677, 10953842, 0, -1);
	check_lock(&v[1], PROC_LOCK_OFD, "OFDLCK", false, F_RDLCK, -1, 10953107, 200, -1);
	check_lock(&v[2], PROC_LOCK_OFD, "OFDLCK", false, F_WRLCK, -1, 10953107, 100, 149);
	check_lock(&v[3], PROC_LOCK_POSIX, "POSIX", false, F_WRLCK, 155677, 10953091, 20, 24);
	check_lock(&v[4], PROC_LOCK_POSIX, "POSIX", true, F_WRLCK, 155731, 10953091, 20, 24);
	check_lock(&v[5], PROC_LOCK_POSIX, "POSIX", false, F_RDLCK, 155677, 10953091, 0, 9);
	check_lock(&v[6], PROC_LOCK_FLOCK, "FLOCK", false, F_WRLCK, 155677, 10953075, 0, -1);
	check_lock(&v[7], PROC_LOCK_FLOCK, "FLOCK", true, F_RDLCK, 155732, 10953075, 0, -1);
}

static void test_fdinfo_locks_recorded(void **state)
{
	cleanup_free char *text = load("fdinfo-locks");
	cleanup_free struct proc_lock *v = NULL;
	cr_error_t err = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(proc_parse_fdinfo_locks(text, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	check_lock(&v[0], PROC_LOCK_POSIX, "POSIX", false, F_RDLCK, 155677, 10953091, 0, 9);
	check_lock(&v[1], PROC_LOCK_POSIX, "POSIX", false, F_WRLCK, 155677, 10953091, 20, 24);
}

static void test_lock_edge_cases(void **state)
{
	struct proc_lock l;
	cr_error_t err = NULL;

	(void)state;
	/* A deeper waiter is indented; a lock without an inode; a delegation. */
	assert_int_equal(proc_parse_lock("12:  -> POSIX  ADVISORY  READ 7 08:01:5 0 EOF", &l, &err), 0);
	assert_true(l.waiting);
	assert_int_equal(l.end, -1);
	assert_int_equal(proc_parse_lock("3: POSIX  *NOINODE* WRITE 9 <none>:0 5 5\n", &l, &err), 0);
	assert_false(l.has_inode);
	assert_int_equal(l.start, 5);
	assert_int_equal(l.end, 5);
	assert_int_equal(proc_parse_lock("1: DELEG  ACTIVE    READ 0 103:02:9223372036854775807 0 EOF", &l, &err), 0);
	assert_int_equal(l.cls, PROC_LOCK_OTHER);
	assert_string_equal(l.name, "DELEG");
	assert_int_equal(l.dev_major, 0x103);
	assert_int_equal(l.dev_minor, 2);
	assert_int_equal(l.ino, 9223372036854775807ULL);
	assert_int_equal(proc_parse_lock("2: ACCESS ADVISORY  UNLCK 4 fe:00:1 0 9223372036854775806", &l, &err), 0);
	assert_int_equal(l.type, F_UNLCK);
	assert_int_equal(l.end, INT64_MAX - 1);
	/* A kind a later kernel adds is a lock of another kind, by name. */
	assert_int_equal(proc_parse_lock("7: LAYOUT ACTIVE    READ 4 fe:00:1 0 EOF", &l, &err), 0);
	assert_int_equal(l.cls, PROC_LOCK_OTHER);
	assert_string_equal(l.name, "LAYOUT");
	assert_null(err);
}

static void expect_lock_error(const char *line, const char *needle)
{
	struct proc_lock l;
	cr_error_t err = NULL;

	assert_int_equal(proc_parse_lock(line, &l, &err), -1);
	assert_non_null(err);
	if (strstr(err->msg, needle) == NULL)
		fail_msg("'%s': error '%s' lacks '%s'", line, err->msg, needle);
	cr_error_release(&err);
}

static void test_lock_errors(void **state)
{
	(void)state;
	expect_lock_error("", "bad lock number");
	expect_lock_error("x: POSIX ADVISORY WRITE 1 fe:00:1 0 EOF", "bad lock number");
	expect_lock_error("1: ", "no kind of lock");
	expect_lock_error("1: -> ", "no kind of lock");
	expect_lock_error("1: posix ADVISORY WRITE 1 fe:00:1 0 EOF", "unknown kind of lock");
	expect_lock_error("1: VERYLONGKINDOFLOCK ADVISORY WRITE 1 fe:00:1 0 EOF", "unknown kind of lock");
	expect_lock_error("1: POSIX", "no lock state");
	expect_lock_error("1: POSIX ADVISORY", "no lock type");
	expect_lock_error("1: POSIX ADVISORY RW 1 fe:00:1 0 EOF", "bad lock type");
	expect_lock_error("1: POSIX ADVISORY WRITE -2 fe:00:1 0 EOF", "bad pid");
	expect_lock_error("1: POSIX ADVISORY WRITE 1x fe:00:1 0 EOF", "bad pid");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00 0 EOF", "bad inode");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 <none>:01 0 EOF", "bad inode");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00:1 -1 EOF", "bad start");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00:1 9 8", "bad end");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00:1 0 EOFX", "junk after");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00:1 0 5 6", "junk after");
	expect_lock_error("1: POSIX ADVISORY WRITE 1 fe:00:1 0 9223372036854775808", "bad end");
}

static void test_fdinfo_lock_errors(void **state)
{
	cleanup_free struct proc_lock *v = NULL;
	cr_error_t err = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(proc_parse_fdinfo_locks("pos:\t0\nflags:\t02\n", &v, &n, &err), 0);
	assert_int_equal(n, 0);
	free(steal_pointer(&v));
	assert_int_equal(proc_parse_fdinfo_locks("pos:\t0\nlock:\t1: FLOCK  ADVISORY  WRITE 1 fe:00:1 0 EOF\n"
						 "lock:\t2: FLOCK ADVISORY\n", &v, &n, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err->msg, "lock line 2"));
	cr_error_release(&err);
}

static int run_locks(const char *text, cr_error_t *err)
{
	cleanup_free struct proc_lock *v = NULL;
	size_t n;

	return proc_parse_locks(text, &v, &n, err);
}

static int run_fdinfo_locks(const char *text, cr_error_t *err)
{
	cleanup_free struct proc_lock *v = NULL;
	size_t n;

	return proc_parse_fdinfo_locks(text, &v, &n, err);
}

/* Every prefix and every single-byte change: an error or a result, never a
 * crash (ASan and UBSan watch). */
static void test_lock_parsers_survive_damage(void **state)
{
	static const struct {
		const char *fixture;
		int (*run)(const char *, cr_error_t *);
	} files[] = { { "locks", run_locks }, { "fdinfo-locks", run_fdinfo_locks } };
	static const char junk[] = { '\n', ' ', '\t', ':', '-', '>', '9', 'f', 'x', '\377' };

	(void)state;
	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		cleanup_free char *text = load(files[f].fixture);
		cleanup_free char *copy = strdup(text);
		size_t len = strlen(text);

		for (size_t at = 0; at <= len; at++) {
			for (size_t j = 0; j <= sizeof(junk); j++) {
				cr_error_t err = NULL;
				int rc;

				if (j == sizeof(junk))
					copy[at] = '\0';
				else if (at < len)
					copy[at] = junk[j];
				else
					continue;
				rc = files[f].run(copy, &err);
				assert_true(rc == 0 ? err == NULL : rc == -1 && err != NULL);
				cr_error_release(&err);
			}
			copy[at] = text[at];
		}
	}
}

/* Locks this process takes show in its own fdinfo and in /proc/locks. */
static void test_live_locks(void **state)
{
	char path[] = "/tmp/cr-test-locks.XXXXXX";
	int fd = mkstemp(path);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 5 };
	cleanup_free struct proc_lock *all = NULL;
	cleanup_free char *text = NULL;
	cleanup_free struct proc_lock *v = NULL;
	cr_error_t err = NULL;
	struct proc_fdinfo fi;
	struct stat st;
	size_t n = 0, found = 0;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(flock(fd, LOCK_SH), 0);
	assert_int_equal(fcntl(fd, F_SETLK, &fl), 0);
	assert_int_equal(proc_read_fdinfo(getpid(), fd, &fi, &text, &err), 0);
	assert_int_equal(proc_parse_fdinfo_locks(text, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].cls, PROC_LOCK_FLOCK);
	assert_int_equal(v[0].type, F_RDLCK);
	assert_int_equal(v[1].cls, PROC_LOCK_POSIX);
	assert_int_equal(v[1].start, 10);
	assert_int_equal(v[1].end, 14);
	assert_int_equal(v[1].pid, getpid());
	assert_int_equal(v[1].ino, st.st_ino);
	assert_int_equal(proc_read_locks(&all, &n, &err), 0);
	for (size_t i = 0; i < n; i++)
		if (all[i].ino == st.st_ino && all[i].pid == getpid() && !all[i].waiting)
			found++;
	assert_int_equal(found, 2);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locks_recorded),
		cmocka_unit_test(test_fdinfo_locks_recorded),
		cmocka_unit_test(test_lock_edge_cases),
		cmocka_unit_test(test_lock_errors),
		cmocka_unit_test(test_fdinfo_lock_errors),
		cmocka_unit_test(test_lock_parsers_survive_damage),
		cmocka_unit_test(test_live_locks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
