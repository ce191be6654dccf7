/*
 * w_deleted STATE_DIR
 *
 * Holds files that were deleted while open and checks, when triggered,
 * that every one is as it was:
 *
 *   (a) rw      STATE_DIR/deleted-rw, O_RDWR: 20000 bytes of data, a hole,
 *               8 bytes at 100000; mode 0640; offset 4321; a known mtime:
 *               the fd's path ("... (deleted)"), no links, size, contents
 *               (the hole reads as zeros), mode, mtime, offset.
 *   (b) append  STATE_DIR/deleted-append, written through an
 *               O_WRONLY|O_APPEND fd, also open O_RDONLY (a description of
 *               its own) at offset 100: both fds show the path, each keeps
 *               its flags and offset, and a write through the append fd
 *               lands at the end, where the read-only fd sees it.
 *
 * Sabotage (file "sabotage"): contents, offset — breaks that property just
 * before the checks, which must then fail.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RW_DATA 20000
#define RW_TAIL_AT 100000
#define RW_SIZE (RW_TAIL_AT + 8)
#define RW_OFFSET 4321
#define APPEND_DATA 5000

static int rw, app, app_ro;
static char rw_path[PATH_MAX], app_path[PATH_MAX];
static unsigned char rw_data[RW_DATA], app_data[APPEND_DATA];
static const struct timespec rw_mtime = { .tv_sec = 1234567890, .tv_nsec = 123456789 };

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void fill(unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t rng = wl_seed(salt);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)wl_xorshift(&rng);
}

static void build(void)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, rw_mtime };

	wl_path(rw_path, sizeof(rw_path), "deleted-rw");
	rw = open(rw_path, O_RDWR | O_CREAT | O_EXCL, 0600);
	must(rw >= 0, "create (a)");
	fill(rw_data, sizeof(rw_data), 0xa);
	must(write(rw, rw_data, sizeof(rw_data)) == sizeof(rw_data), "write (a)");
	must(pwrite(rw, "the tail", 8, RW_TAIL_AT) == 8, "write (a)");
	must(fchmod(rw, 0640) == 0 && futimens(rw, times) == 0, "fchmod/futimens (a)");
	must(lseek(rw, RW_OFFSET, SEEK_SET) == RW_OFFSET, "lseek (a)");
	must(unlink(rw_path) == 0, "unlink (a)");

	wl_path(app_path, sizeof(app_path), "deleted-append");
	app = open(app_path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, 0644);
	app_ro = open(app_path, O_RDONLY);
	must(app >= 0 && app_ro >= 0, "open (b)");
	fill(app_data, sizeof(app_data), 0xb);
	must(write(app, app_data, sizeof(app_data)) == sizeof(app_data), "write (b)");
	must(lseek(app_ro, 100, SEEK_SET) == 100, "lseek (b)");
	must(unlink(app_path) == 0, "unlink (b)");
}

/* ---- checks -------------------------------------------------------------- */

static void check_link(const char *what, int fd, const char *path)
{
	char proc[64], link[PATH_MAX + 16], want[PATH_MAX + 16];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "%s (deleted)", path);
	n = readlink(proc, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	wl_check(strcmp(link, want) == 0, "(%s) fd %d is '%s', want '%s'", what, fd, link, want);
}

static void check_offset(const char *what, int fd, off_t want)
{
	off_t at = lseek(fd, 0, SEEK_CUR);

	wl_check(at == want, "(%s) fd %d offset %lld, want %lld", what, fd, (long long)at, (long long)want);
}

static void check_rw(void)
{
	static unsigned char all[RW_SIZE];
	struct stat st;
	long bad = -1;

	check_link("a", rw, rw_path);
	check_offset("a", rw, RW_OFFSET);
	int r = fstat(rw, &st);

	if (wl_check(r == 0, "(a) fstat: %s", strerror(errno))) {
		wl_check(st.st_nlink == 0, "(a) %lu links, want none", (unsigned long)st.st_nlink);
		wl_check(st.st_size == RW_SIZE, "(a) size %lld, want %d", (long long)st.st_size, RW_SIZE);
		wl_check((st.st_mode & 07777) == 0640, "(a) mode 0%o, want 0640", st.st_mode & 07777);
		wl_check(st.st_mtim.tv_sec == rw_mtime.tv_sec && st.st_mtim.tv_nsec == rw_mtime.tv_nsec,
			 "(a) mtime %lld.%09ld, want %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (long long)rw_mtime.tv_sec, rw_mtime.tv_nsec);
	}
	if (!wl_check(pread(rw, all, sizeof(all), 0) == RW_SIZE, "(a) cannot read the file back"))
		return;
	for (long i = 0; i < RW_SIZE && bad < 0; i++) {
		unsigned char want = i < RW_DATA ? rw_data[i] : i >= RW_TAIL_AT ? (unsigned char)"the tail"[i - RW_TAIL_AT] : 0;

		if (all[i] != want)
			bad = i;
	}
	wl_check(bad < 0, "(a) contents differ at offset %ld", bad);
}

static void check_append(void)
{
	static unsigned char all[APPEND_DATA + 8];
	struct stat a, b;
	int fl = fcntl(app, F_GETFL), fl_ro = fcntl(app_ro, F_GETFL);

	check_link("b", app, app_path);
	check_link("b", app_ro, app_path);
	wl_check(fl >= 0 && (fl & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "(b) flags 0%o, want "
		 "O_WRONLY|O_APPEND", fl);
	wl_check(fl_ro >= 0 && (fl_ro & (O_ACCMODE | O_APPEND)) == O_RDONLY, "(b) read-only fd flags 0%o", fl_ro);
	wl_check(fstat(app, &a) == 0 && fstat(app_ro, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		 "(b) the two fds are on different files");
	wl_check(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, app, app_ro) != 0,
		 "(b) the two descriptions became one");
	check_offset("b", app_ro, 100);
	wl_check(pread(app_ro, all, APPEND_DATA, 0) == APPEND_DATA && memcmp(all, app_data, APPEND_DATA) == 0,
		 "(b) contents differ");
	wl_check(write(app, "appended", 8) == 8, "(b) write through the append fd failed");
	wl_check(pread(app_ro, all, 8, APPEND_DATA) == 8 && memcmp(all, "appended", 8) == 0,
		 "(b) the appended bytes are not at the end, as seen through the other fd");
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "contents") == 0) {
		unsigned char c = (unsigned char)~rw_data[RW_DATA / 2];

		wl_check(pwrite(rw, &c, 1, RW_DATA / 2) == 1, "sabotage write");
	} else if (strcmp(what, "offset") == 0) {
		wl_check(lseek(app_ro, 1, SEEK_CUR) > 0, "sabotage seek");
	} else {
		wl_check(false, "unknown sabotage '%s'", what);
	}
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	build();
	wl_ready();
	wl_wait_trigger();

	sabotage();
	check_rw();
	check_append();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
