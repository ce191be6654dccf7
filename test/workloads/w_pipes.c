/*
 * w_pipes STATE_DIR
 * w_pipes STATE_DIR hold-fifo PATH
 *
 * Holds pipes and a FIFO with data in them and checks, when triggered,
 * that every one is as it was:
 *
 *   (a) big      a pipe sized 256 KiB (F_SETPIPE_SZ) holding 100 KiB, more
 *                than a default pipe holds; read end O_NONBLOCK, write end
 *                blocking: size, FIONREAD, the bytes, both ends on one pipe,
 *                the flags, and a byte still goes through.
 *   (b) widowed  a pipe whose write end was closed, with data in it: the
 *                data, then end-of-file.
 *   (c) packets  an O_DIRECT pipe holding three packets: each read returns
 *                exactly one.
 *   (d) fifo     a FIFO in the state dir, opened by its path for reading
 *                (O_NONBLOCK) and for writing, with data in it: the paths,
 *                the data, and a byte still goes through.
 *   (e) reopened a second read description of a pipe (opened through
 *                /proc/self/fd), blocking where the first is not: it reads
 *                the same pipe, and is a description of its own.
 *   (f) dup      a dup of (a)'s read end: the same description (kcmp).
 *   (g) empty    an empty pipe: nothing to read (EAGAIN), still works.
 *
 * With "hold-fifo PATH" it only holds PATH (a FIFO someone else has open):
 * the dump must be refused; when triggered it checks it is not traced.
 *
 * With "inherited" it forks a child; both hold both ends of a pipe (the
 * same two descriptions) with data in it.  When triggered, the parent
 * tells the child (through a second inherited pipe) to read the data and
 * write an answer back, and checks both.  With "split" the parent keeps
 * only the read end and the child only the write end (two descriptions in
 * two processes: refused for now); the child writes when told to.
 *
 * Sabotage (file "sabotage"): big, widowed, packets, fifo, size — breaks
 * that property just before the checks, which must then fail.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG_PIPE (256 * 1024)
#define BIG_DATA (100 * 1024)

static int big[2], widowed_r, packets[2], fifo_r, fifo_w, shared[2], reopened, dup_of_big, empty[2];
static unsigned char big_data[BIG_DATA];
static char fifo_path[PATH_MAX];

static const char widowed_data[] = "the writer is gone, this stays";
static const char *const packet_data[] = { "one", "packet two", "3" };
static const char fifo_data[] = "through the FIFO";
static const char shared_data[] = "read me through either";

static void fill(unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t rng = wl_seed(salt);

	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)wl_xorshift(&rng);
}

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void write_exact(int fd, const void *buf, size_t len, const char *what)
{
	must(write(fd, buf, len) == (ssize_t)len, what);
}

static int reopen_self(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags);
}

static void build(void)
{
	int p[2];

	must(pipe2(big, O_NONBLOCK) == 0, "pipe (a)");
	must(fcntl(big[1], F_SETFL, 0) == 0, "F_SETFL (a)");
	must(fcntl(big[1], F_SETPIPE_SZ, BIG_PIPE) == BIG_PIPE, "F_SETPIPE_SZ (a)");
	fill(big_data, sizeof(big_data), 0xa);
	write_exact(big[1], big_data, sizeof(big_data), "write (a)");

	must(pipe(p) == 0, "pipe (b)");
	write_exact(p[1], widowed_data, sizeof(widowed_data), "write (b)");
	close(p[1]);
	widowed_r = p[0];

	must(pipe2(packets, O_DIRECT | O_NONBLOCK) == 0, "pipe (c)");
	for (int i = 0; i < 3; i++)
		write_exact(packets[1], packet_data[i], strlen(packet_data[i]), "write (c)");

	wl_path(fifo_path, sizeof(fifo_path), "fifo");
	must(mkfifo(fifo_path, 0600) == 0, "mkfifo (d)");
	fifo_r = open(fifo_path, O_RDONLY | O_NONBLOCK);
	fifo_w = open(fifo_path, O_WRONLY);
	must(fifo_r >= 0 && fifo_w >= 0, "open FIFO (d)");
	write_exact(fifo_w, fifo_data, sizeof(fifo_data), "write (d)");

	must(pipe2(shared, O_NONBLOCK) == 0, "pipe (e)");
	reopened = reopen_self(shared[0], O_RDONLY);
	must(reopened >= 0, "reopen (e)");
	write_exact(shared[1], shared_data, sizeof(shared_data), "write (e)");

	dup_of_big = dup(big[0]);
	must(dup_of_big >= 0, "dup (f)");
	must(pipe2(empty, O_NONBLOCK) == 0, "pipe (g)");
}

/* ---- checks -------------------------------------------------------------- */

static ino_t ino_of(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

static int queued(int fd)
{
	int n = -1;

	return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

static bool same_description(int a, int b)
{
	return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, a, b) == 0;
}

/* read(), but never blocking for more than a second: a lost byte is a
 * failure, not a hang. */
static ssize_t read_now(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 1000) != 1) {
		errno = EAGAIN;
		return -1;
	}
	return read(fd, buf, len);
}

static void check_flags(const char *what, int fd, int want)
{
	int fl = fcntl(fd, F_GETFL);

	wl_check(fl >= 0 && (fl & (O_ACCMODE | O_NONBLOCK | O_DIRECT)) == want, "(%s) fd %d flags 0%o, want 0%o",
		 what, fd, fl, want);
}

static void check_goes_through(const char *what, int rfd, int wfd)
{
	char c = 0;

	ssize_t n = write(wfd, "!", 1);

	wl_check(n == 1, "(%s) write: %s", what, strerror(errno));
	wl_check(read_now(rfd, &c, 1) == 1 && c == '!', "(%s) a byte written after restore did not come through",
		 what);
}

static void check_big(void)
{
	static unsigned char got[BIG_DATA + 1];
	ssize_t n;

	wl_check(fcntl(big[0], F_GETPIPE_SZ) == BIG_PIPE, "(a) pipe size %d, want %d", fcntl(big[0], F_GETPIPE_SZ),
		 BIG_PIPE);
	wl_check(queued(big[0]) == BIG_DATA, "(a) %d bytes queued, want %d", queued(big[0]), BIG_DATA);
	wl_check(ino_of(big[0]) == ino_of(big[1]), "(a) the two ends are on different pipes");
	check_flags("a", big[0], O_RDONLY | O_NONBLOCK);
	check_flags("a", big[1], O_WRONLY);
	n = read_now(big[0], got, sizeof(got));
	wl_check(n == BIG_DATA && memcmp(got, big_data, BIG_DATA) == 0, "(a) read %zd bytes, want the %d written",
		 n, BIG_DATA);
	check_goes_through("a", big[0], big[1]);
}

static void check_widowed(void)
{
	char got[sizeof(widowed_data) + 8];
	ssize_t n = read_now(widowed_r, got, sizeof(got));

	wl_check(n == (ssize_t)sizeof(widowed_data) && memcmp(got, widowed_data, sizeof(widowed_data)) == 0,
		 "(b) read %zd bytes, want the %zu written", n, sizeof(widowed_data));
	n = read_now(widowed_r, got, sizeof(got));
	wl_check(n == 0, "(b) read %zd after the data, want 0 (end of file: no writer)", n);
}

static void check_packets(void)
{
	char got[64];

	for (int i = 0; i < 3; i++) {
		ssize_t n = read_now(packets[0], got, sizeof(got));

		wl_check(n == (ssize_t)strlen(packet_data[i]) && memcmp(got, packet_data[i], (size_t)n) == 0,
			 "(c) read %d returned %zd bytes, want packet '%s'", i, n, packet_data[i]);
	}
	wl_check(read(packets[0], got, sizeof(got)) < 0 && errno == EAGAIN, "(c) more than three packets");
	check_flags("c", packets[1], O_WRONLY | O_NONBLOCK | O_DIRECT);
}

static void check_link(const char *what, int fd, const char *want)
{
	char path[64], link[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	wl_check(strcmp(link, want) == 0, "(%s) fd %d is '%s', want '%s'", what, fd, link, want);
}

static void check_fifo(void)
{
	char got[sizeof(fifo_data) + 8];
	ssize_t n;

	check_link("d", fifo_r, fifo_path);
	check_link("d", fifo_w, fifo_path);
	check_flags("d", fifo_r, O_RDONLY | O_NONBLOCK);
	check_flags("d", fifo_w, O_WRONLY);
	n = read_now(fifo_r, got, sizeof(got));
	wl_check(n == (ssize_t)sizeof(fifo_data) && memcmp(got, fifo_data, sizeof(fifo_data)) == 0,
		 "(d) read %zd bytes from the FIFO, want the %zu written", n, sizeof(fifo_data));
	check_goes_through("d", fifo_r, fifo_w);
}

static void check_reopened(void)
{
	char got[sizeof(shared_data) + 8];
	ssize_t n;

	wl_check(ino_of(reopened) == ino_of(shared[0]), "(e) the reopened fd is on another pipe");
	wl_check(!same_description(reopened, shared[0]), "(e) the reopened fd shares the first one's description");
	check_flags("e", shared[0], O_RDONLY | O_NONBLOCK);
	check_flags("e", reopened, O_RDONLY);
	n = read_now(reopened, got, sizeof(got));
	wl_check(n == (ssize_t)sizeof(shared_data) && memcmp(got, shared_data, sizeof(shared_data)) == 0,
		 "(e) read %zd bytes through the reopened fd, want the %zu written", n, sizeof(shared_data));
	check_goes_through("e", shared[0], shared[1]);
}

static void check_rest(void)
{
	char c;

	wl_check(same_description(dup_of_big, big[0]), "(f) the dup is no longer the read end's description");
	wl_check(queued(empty[0]) == 0 && read(empty[0], &c, 1) < 0 && errno == EAGAIN,
		 "(g) the empty pipe has something to read");
	check_goes_through("g", empty[0], empty[1]);
}

static void sabotage(void)
{
	char what[32], buf[64];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "big") == 0)
		wl_check(read(big[0], buf, 1) == 1, "sabotage read");
	else if (strcmp(what, "widowed") == 0)
		wl_check(read(widowed_r, buf, 1) == 1, "sabotage read");
	else if (strcmp(what, "packets") == 0)
		wl_check(read(packets[0], buf, sizeof(buf)) > 0, "sabotage read");
	else if (strcmp(what, "fifo") == 0)
		wl_check(read(fifo_r, buf, 1) == 1, "sabotage read");
	else if (strcmp(what, "size") == 0)
		wl_check(fcntl(big[1], F_SETPIPE_SZ, 2 * BIG_PIPE) > 0, "sabotage F_SETPIPE_SZ");
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

static void hold_fifo(const char *path)
{
	int fd = open(path, O_RDWR);

	if (fd < 0)
		wl_fatal("open %s: %s", path, strerror(errno));
	wl_ready();
	wl_wait_trigger();
	wl_check(wl_status_field("TracerPid") == 0, "still traced");
	check_link("hold", fd, path);
	wl_finish();
}

/* The child of "inherited" and "split": waits for a byte on go, then
 * checks the data (when it has the read end) and answers on `answer`. */
static void child(int go, int data, int answer, bool reads)
{
	char got[sizeof(shared_data)] = "", c;

	if (read(go, &c, 1) != 1)
		_exit(3);
	if (reads && (read(data, got, sizeof(got)) != (ssize_t)sizeof(got) || memcmp(got, shared_data, sizeof(got))))
		_exit(4);
	_exit(write(answer, "A", 1) == 1 ? 0 : 5);
}

static void two_processes(bool split)
{
	int go[2], back[2], status = -1;
	char c = 0;
	pid_t pid;

	must(pipe(go) == 0 && pipe(back) == 0 && pipe(shared) == 0, "pipe");
	write_exact(shared[1], shared_data, sizeof(shared_data), "write");
	pid = fork();
	must(pid >= 0, "fork");
	if (pid == 0) {
		if (split)
			close(shared[0]);
		child(go[0], shared[0], split ? shared[1] : back[1], !split);
	}
	if (split)
		close(shared[1]);
	wl_write_file("fds", "read %d\nchild %d\n", shared[0], (int)pid);
	wl_ready();
	wl_wait_trigger();
	if (split)
		wl_check(read_now(shared[0], (char[sizeof(shared_data)]){ 0 }, sizeof(shared_data)) ==
			 sizeof(shared_data), "(split) the data is lost");
	wl_check(write(go[1], "g", 1) == 1, "tell the child");
	wl_check(read_now(split ? shared[0] : back[0], &c, 1) == 1 && c == 'A',
		 "the child's answer did not come through");
	wl_check(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "the child failed (status 0x%x: 4 means it lost the data)", status);
	wl_finish();
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (argc > 3 && strcmp(argv[2], "hold-fifo") == 0)
		hold_fifo(argv[3]);
	if (argc > 2 && (strcmp(argv[2], "inherited") == 0 || strcmp(argv[2], "split") == 0))
		two_processes(strcmp(argv[2], "split") == 0);
	build();
	wl_ready();
	wl_wait_trigger();

	sabotage();
	check_big();
	check_widowed();
	check_packets();
	check_fifo();
	check_reopened();
	check_rest();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
