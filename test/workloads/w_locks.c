/*
 * w_locks STATE_DIR [blocked|lease|mapped|maponly]
 *
 * Holds file locks of every kind and checks them after restore.  Files in
 * the state dir:
 *
 *   flock.file    flock LOCK_EX
 *   posix.file    POSIX locks through one fd: read on bytes 0-9, write on
 *                 20-29, write from 1000 to the end; and through a second,
 *                 read-only description of the same file, read on 100-109
 *   ofd.file      OFD locks: write on 100-149, read on 200-249
 *   shared.file   flock LOCK_SH on a description the child S inherited;
 *                 S holds its own POSIX write lock on byte 5 through it
 *
 * Checks, each asked by a fresh process through a description of its own
 * (F_GETLK never reports the caller's own POSIX locks): every range is held,
 * by the right type and pid (OFD locks show pid -1), and the bytes between
 * are free; a conflicting flock cannot be had.  Then each lock is released
 * through the workload's own fd and its range must come free: the restored
 * locks are this process's own, not some helper's.  Releasing the shared
 * flock through the parent's fd frees it although S still holds the
 * description: one lock on one description.
 *
 * Variants:
 *   blocked   the workload holds a POSIX write lock on wait-posix.file and
 *             a flock on wait-flock.file; child W1 waits in
 *             fcntl(F_SETLKW) for the one, W2 in flock() for the other.
 *             After restore neither may have its lock while the workload
 *             holds it; once the workload releases them each must get it.
 *   lease     holds a read lease on lease.file (the dump must refuse it);
 *             checks the lease is still there.
 *   mapped    maps mapped.file (shared), writes a token through the
 *             mapping and holds a POSIX write lock on bytes 0-9 of it;
 *             checks the lock is its own (released, the range comes free)
 *             and that the mapping is still the file's (the token reads
 *             back through the fd, a new write shows in the file).
 *   maponly   flocks maponly.file, maps it and closes the fd: the mapping
 *             keeps the description, and the lock, with no fd to show it
 *             (as the JVM's hsperfdata file); checks the lock.
 *
 * Sabotage: posix, flock, ofd, child (S dies before the checks), release
 * (blocked: the waiters get their locks before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define FLOCK_HELD (-2)   /* a probe's answer for a flock it could not have */

static int fl_fd, px_fd, px2_fd, ofd_fd, sh_fd;
static pid_t child_s;

static int open_file(const char *name, int flags)
{
	char path[4200];
	int fd;

	wl_path(path, sizeof(path), name);
	fd = open(path, flags | O_CREAT, 0644);
	if (fd < 0)
		wl_fatal("open %s: %s", name, strerror(errno));
	return fd;
}

static int posix(int fd, int cmd, int type, off_t start, off_t len)
{
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

static void must(int r, const char *what)
{
	if (r < 0)
		wl_fatal("%s: %s", what, strerror(errno));
}

/* What a new description of name meets when it asks for type on the range:
 * F_UNLCK when free, else the conflicting type and its holder in *pid.  cmd
 * is F_GETLK, F_OFD_GETLK, or 0 for a flock (FLOCK_HELD when held).  Asked
 * by a fresh child process. */
static int probe(int cmd, const char *name, int type, off_t start, off_t len, pid_t *pid)
{
	int pfd[2], st;
	struct flock fl = { .l_type = (short)type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	pid_t c;

	must(pipe(pfd), "pipe");
	c = fork();
	must(c, "fork");
	if (c == 0) {
		int fd = open_file(name, O_RDWR);

		if (cmd == 0) {
			int how = (type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB;

			fl.l_type = flock(fd, how) == 0 ? F_UNLCK : FLOCK_HELD;
			fl.l_pid = 0;
		} else if (fcntl(fd, cmd, &fl) < 0) {
			_exit(3);
		}
		_exit(write(pfd[1], &fl, sizeof(fl)) == sizeof(fl) ? 0 : 3);
	}
	close(pfd[1]);
	fl.l_type = -1;
	if (read(pfd[0], &fl, sizeof(fl)) != sizeof(fl))
		fl.l_type = -1;
	close(pfd[0]);
	waitpid(c, &st, 0);
	*pid = fl.l_pid;
	return fl.l_type;
}

static const char *type_name(int type)
{
	switch (type) {
	case F_UNLCK: return "free";
	case F_RDLCK: return "read-locked";
	case F_WRLCK: return "write-locked";
	case FLOCK_HELD: return "flocked";
	default: return "unknown (the probe failed)";
	}
}

/* The range is held with want (F_UNLCK: free) by holder (ignored when free). */
static void expect(const char *what, int cmd, const char *name, int type, off_t start, off_t len, int want,
		   pid_t holder)
{
	pid_t pid = 0;
	int got = probe(cmd, name, type, start, len, &pid);

	if (want == F_UNLCK || cmd == 0)
		wl_check(got == want, "(%s) %s bytes %lld+%lld: %s, want %s", what, name, (long long)start,
			 (long long)len, type_name(got), type_name(want));
	else
		wl_check(got == want && pid == holder, "(%s) %s bytes %lld+%lld: %s by pid %d, want %s by pid %d",
			 what, name, (long long)start, (long long)len, type_name(got), pid, type_name(want), holder);
}

/* ---- the main variant ------------------------------------------------------ */

static __attribute__((noreturn)) void child_s_main(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (posix(sh_fd, F_SETLK, F_WRLCK, 5, 1) < 0)
		_exit(3);
	for (;;)
		pause();
}

static void set_up(void)
{
	fl_fd = open_file("flock.file", O_RDWR);
	px_fd = open_file("posix.file", O_RDWR);
	px2_fd = open_file("posix.file", O_RDONLY);
	ofd_fd = open_file("ofd.file", O_RDWR);
	sh_fd = open_file("shared.file", O_RDWR);
	must(flock(fl_fd, LOCK_EX | LOCK_NB), "flock");
	must(posix(px_fd, F_SETLK, F_RDLCK, 0, 10), "read lock 0-9");
	must(posix(px_fd, F_SETLK, F_WRLCK, 20, 10), "write lock 20-29");
	must(posix(px_fd, F_SETLK, F_WRLCK, 1000, 0), "write lock 1000-");
	must(posix(px2_fd, F_SETLK, F_RDLCK, 100, 10), "read lock 100-109");
	must(posix(ofd_fd, F_OFD_SETLK, F_WRLCK, 100, 50), "OFD write lock 100-149");
	must(posix(ofd_fd, F_OFD_SETLK, F_RDLCK, 200, 50), "OFD read lock 200-249");
	must(flock(sh_fd, LOCK_SH | LOCK_NB), "shared flock");
	child_s = fork();
	must(child_s, "fork");
	if (child_s == 0)
		child_s_main();
	/* S is ready once its lock shows. */
	for (int i = 0; i < 500; i++) {
		pid_t pid;

		if (probe(F_GETLK, "shared.file", F_RDLCK, 5, 1, &pid) == F_WRLCK && pid == child_s)
			return;
		usleep(10000);
	}
	wl_fatal("child S did not take its lock");
}

static void check_held(void)
{
	pid_t me = wl_pid();

	expect("flock", 0, "flock.file", F_RDLCK, 0, 0, FLOCK_HELD, 0);
	expect("posix read 0-9", F_GETLK, "posix.file", F_WRLCK, 0, 10, F_RDLCK, me);
	expect("posix read 0-9 shared", F_GETLK, "posix.file", F_RDLCK, 0, 10, F_UNLCK, 0);
	expect("posix 10-19 free", F_GETLK, "posix.file", F_WRLCK, 10, 10, F_UNLCK, 0);
	expect("posix write 20-29", F_GETLK, "posix.file", F_RDLCK, 20, 10, F_WRLCK, me);
	expect("posix 30-99 free", F_GETLK, "posix.file", F_WRLCK, 30, 70, F_UNLCK, 0);
	expect("posix write 1000-", F_GETLK, "posix.file", F_RDLCK, 1 << 20, 1, F_WRLCK, me);
	expect("posix read 100-109 (second description)", F_GETLK, "posix.file", F_WRLCK, 100, 10, F_RDLCK, me);
	expect("ofd write 100-149", F_OFD_GETLK, "ofd.file", F_RDLCK, 100, 50, F_WRLCK, -1);
	expect("ofd 150-199 free", F_OFD_GETLK, "ofd.file", F_WRLCK, 150, 50, F_UNLCK, 0);
	expect("ofd read 200-249", F_OFD_GETLK, "ofd.file", F_WRLCK, 200, 50, F_RDLCK, -1);
	expect("ofd read 200-249 shared", F_OFD_GETLK, "ofd.file", F_RDLCK, 200, 50, F_UNLCK, 0);
	expect("ofd against posix", F_GETLK, "ofd.file", F_RDLCK, 120, 1, F_WRLCK, -1);
	expect("shared flock", 0, "shared.file", F_WRLCK, 0, 0, FLOCK_HELD, 0);
	expect("shared flock is shared", 0, "shared.file", F_RDLCK, 0, 0, F_UNLCK, 0);
	expect("child posix", F_GETLK, "shared.file", F_RDLCK, 5, 1, F_WRLCK, child_s);
}

/* Each lock goes through the workload's own fd, and its range comes free. */
static void check_release(void)
{
	int st;

	wl_check(posix(px_fd, F_SETLK, F_UNLCK, 20, 10) == 0, "(release) unlock 20-29: %s", strerror(errno));
	expect("released 20-29", F_GETLK, "posix.file", F_WRLCK, 20, 10, F_UNLCK, 0);
	wl_check(posix(ofd_fd, F_OFD_SETLK, F_UNLCK, 100, 50) == 0, "(release) OFD unlock: %s", strerror(errno));
	expect("released ofd 100-149", F_OFD_GETLK, "ofd.file", F_WRLCK, 100, 50, F_UNLCK, 0);
	wl_check(flock(fl_fd, LOCK_UN) == 0, "(release) flock: %s", strerror(errno));
	expect("released flock", 0, "flock.file", F_WRLCK, 0, 0, F_UNLCK, 0);
	wl_check(flock(sh_fd, LOCK_UN) == 0, "(release) shared flock: %s", strerror(errno));
	expect("released shared flock", 0, "shared.file", F_WRLCK, 0, 0, F_UNLCK, 0);
	kill(child_s, SIGKILL);
	waitpid(child_s, &st, 0);
	expect("child gone", F_GETLK, "shared.file", F_WRLCK, 0, 0, F_UNLCK, 0);
}

static void sabotage(const char *what)
{
	int st;

	if (strcmp(what, "posix") == 0)
		posix(px_fd, F_SETLK, F_UNLCK, 0, 10);
	else if (strcmp(what, "flock") == 0)
		flock(fl_fd, LOCK_UN);
	else if (strcmp(what, "ofd") == 0)
		posix(ofd_fd, F_OFD_SETLK, F_UNLCK, 200, 50);
	else if (strcmp(what, "child") == 0 && kill(child_s, SIGKILL) == 0)
		waitpid(child_s, &st, 0);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

/* ---- blocked: waiters that must wait again after restore ----------------- */

static int wait_pipe[2];
static pid_t waiter_posix, waiter_flock;

static __attribute__((noreturn)) void waiter_main(bool use_flock)
{
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open_file(use_flock ? "wait-flock.file" : "wait-posix.file", O_RDWR);
	if (use_flock ? flock(fd, LOCK_EX) < 0 : posix(fd, F_SETLKW, F_WRLCK, 0, 1) < 0)
		_exit(3);
	_exit(write(wait_pipe[1], use_flock ? "F" : "P", 1) == 1 ? 0 : 3);
}

/* Both waiters show in /proc/locks as requests ("->") with their pids. */
static bool waiting(pid_t pid)
{
	char line[256], needle[32];
	FILE *f = fopen("/proc/locks", "r");
	bool found = false;

	if (f == NULL)
		return false;
	snprintf(needle, sizeof(needle), " %d ", pid);
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, "-> ") != NULL && strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void set_up_blocked(void)
{
	px_fd = open_file("wait-posix.file", O_RDWR);
	fl_fd = open_file("wait-flock.file", O_RDWR);
	must(posix(px_fd, F_SETLK, F_WRLCK, 0, 0), "write lock");
	must(flock(fl_fd, LOCK_EX | LOCK_NB), "flock");
	must(pipe2(wait_pipe, O_NONBLOCK), "pipe");
	waiter_posix = fork();
	must(waiter_posix, "fork");
	if (waiter_posix == 0)
		waiter_main(false);
	waiter_flock = fork();
	must(waiter_flock, "fork");
	if (waiter_flock == 0)
		waiter_main(true);
	for (int i = 0; i < 500 && !(waiting(waiter_posix) && waiting(waiter_flock)); i++)
		usleep(10000);
	if (!waiting(waiter_posix) || !waiting(waiter_flock))
		wl_fatal("the waiters do not wait");
}

/* The next byte a waiter wrote, waiting up to ms. */
static char next_grant(int ms)
{
	struct pollfd p = { .fd = wait_pipe[0], .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, ms) == 1 && read(wait_pipe[0], &c, 1) == 1)
		return c;
	return 0;
}

static void check_waiter(pid_t pid, const char *what)
{
	int st = 0;

	wl_check(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "(%s) the waiter ended with status %#x", what, st);
}

static void check_blocked(void)
{
	char early = next_grant(300), c;

	wl_check(early == 0, "(blocked) waiter '%c' got its lock while the workload held it", early);
	expect("blocked posix held", F_GETLK, "wait-posix.file", F_WRLCK, 0, 1, F_WRLCK, wl_pid());
	expect("blocked flock held", 0, "wait-flock.file", F_RDLCK, 0, 0, FLOCK_HELD, 0);
	wl_check(posix(px_fd, F_SETLK, F_UNLCK, 0, 0) == 0, "(blocked) unlock: %s", strerror(errno));
	c = next_grant(5000);
	wl_check(c == 'P', "(blocked posix) the waiter did not get the lock once it was free (got '%c')", c ? c : '-');
	wl_check(flock(fl_fd, LOCK_UN) == 0, "(blocked) flock unlock: %s", strerror(errno));
	c = next_grant(5000);
	wl_check(c == 'F', "(blocked flock) the waiter did not get the lock once it was free (got '%c')", c ? c : '-');
	check_waiter(waiter_posix, "blocked posix");
	check_waiter(waiter_flock, "blocked flock");
}

/* ---- a lease (refused by the dump), a POSIX lock on a mapped file -------- */

static void set_up_lease(void)
{
	close(open_file("lease.file", O_RDWR));
	fl_fd = open_file("lease.file", O_RDONLY);
	must(fcntl(fl_fd, F_SETLEASE, F_RDLCK), "F_SETLEASE");
}

static char *mapped_at;

static void set_up_mapped(void)
{
	px_fd = open_file("mapped.file", O_RDWR);
	must(ftruncate(px_fd, 4096), "ftruncate");
	mapped_at = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, px_fd, 0);
	if (mapped_at == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	snprintf(mapped_at + 100, 64, "token %d", (int)wl_pid());
	must(posix(px_fd, F_SETLK, F_WRLCK, 0, 10), "write lock 0-9");
}

static void check_mapped(void)
{
	char want[64], got[64] = "";

	expect("mapped", F_GETLK, "mapped.file", F_RDLCK, 0, 10, F_WRLCK, wl_pid());
	snprintf(want, sizeof(want), "token %d", (int)wl_pid());
	wl_check(pread(px_fd, got, sizeof(got) - 1, 100) > 0 && strcmp(got, want) == 0,
		 "(mapped) the file holds '%s' at 100, want '%s'", got, want);
	memcpy(mapped_at + 200, "after", 6);
	wl_check(pread(px_fd, got, 6, 200) == 6 && strcmp(got, "after") == 0,
		 "(mapped) a write through the mapping is not in the file");
	must(posix(px_fd, F_SETLK, F_UNLCK, 0, 10), "unlock 0-9");
	expect("mapped unlocked", F_GETLK, "mapped.file", F_RDLCK, 0, 10, F_UNLCK, 0);
}

static void set_up_maponly(void)
{
	int fd = open_file("maponly.file", O_RDWR);

	must(ftruncate(fd, 4096), "ftruncate");
	must(flock(fd, LOCK_EX | LOCK_NB), "flock");
	if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	const char *variant = argc > 2 ? argv[2] : "";
	char what[32];

	wl_init(argc, argv);
	if (strcmp(variant, "blocked") == 0)
		set_up_blocked();
	else if (strcmp(variant, "lease") == 0)
		set_up_lease();
	else if (strcmp(variant, "mapped") == 0)
		set_up_mapped();
	else if (strcmp(variant, "maponly") == 0)
		set_up_maponly();
	else
		set_up();
	wl_ready();
	wl_wait_trigger();
	if (wl_read_file("sabotage", what, sizeof(what)) > 0) {
		what[strcspn(what, "\n")] = '\0';
		if (strcmp(what, "release") == 0) {
			posix(px_fd, F_SETLK, F_UNLCK, 0, 0);
			flock(fl_fd, LOCK_UN);
		} else {
			sabotage(what);
		}
	}

	if (strcmp(variant, "blocked") == 0) {
		check_blocked();
	} else if (strcmp(variant, "lease") == 0) {
		int lease = fcntl(fl_fd, F_GETLEASE);

		wl_check(lease == F_RDLCK, "(lease) F_GETLEASE is %d, want a read lease", lease);
	} else if (strcmp(variant, "mapped") == 0) {
		check_mapped();
	} else if (strcmp(variant, "maponly") == 0) {
		expect("maponly", 0, "maponly.file", F_RDLCK, 0, 0, FLOCK_HELD, 0);
	} else {
		check_held();
		check_release();
	}
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
