/*
 * w_manyfds STATE_DIR COUNT [HIGH_FD [NOFILE]]
 *
 * Holds COUNT regular-file fds (from fd 3 up) on a few data files in the
 * state dir, so that many descriptions share one inode, and checks them
 * after restore:
 *
 *   offsets  each fd sits at its own offset (drawn from the token) and
 *            reads the byte the file holds there;
 *   access   even fds are read-only, odd ones read-write;
 *   shared   every 64th fd is a dup of the one before (one description):
 *            a seek through one moves the other, and close-on-exec is set
 *            on the dup only;
 *   high     with HIGH_FD, one more fd at that number (say, just below the
 *            hard limit), at an offset of its own;
 *   limit    with NOFILE, RLIMIT_NOFILE is set to NOFILE (soft and hard)
 *            once the fds are open, and must be that after restore.
 *
 * Sabotage: offset (seeks fd COUNT/2 before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define N_FILES   8
#define FILE_SIZE 65536
#define DUP_EVERY 64

static int count, high_fd = -1;
static rlim_t nofile;
static uint32_t *offsets;   /* by fd */

static uint8_t byte_at(int file, uint32_t off)
{
	return (uint8_t)((off * 131u + (uint32_t)file * 17u) ^ (off >> 8));
}

static void make_files(void)
{
	static uint8_t buf[FILE_SIZE];
	char path[256], name[32];

	for (int f = 0; f < N_FILES; f++) {
		int fd;

		for (uint32_t i = 0; i < FILE_SIZE; i++)
			buf[i] = byte_at(f, i);
		snprintf(name, sizeof(name), "data%d", f);
		wl_path(path, sizeof(path), name);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || close(fd) < 0)
			wl_fatal("write %s: %s", path, strerror(errno));
	}
}

static bool is_dup(int fd)
{
	return fd > 3 && fd != high_fd && fd % DUP_EVERY == 0;
}

static int file_of(int fd)
{
	return is_dup(fd) ? file_of(fd - 1) : fd % N_FILES;
}

static int access_of(int fd)
{
	return is_dup(fd) ? access_of(fd - 1) : (fd % 2 ? O_RDWR : O_RDONLY);
}

static void open_at(int fd, uint64_t *seed)
{
	char path[256], name[32];
	int got;

	snprintf(name, sizeof(name), "data%d", file_of(fd));
	wl_path(path, sizeof(path), name);
	got = is_dup(fd) ? fcntl(fd - 1, F_DUPFD_CLOEXEC, fd) : open(path, access_of(fd));
	if (got < 0)
		wl_fatal("open fd %d: %s", fd, strerror(errno));
	if (got != fd && (dup2(got, fd) < 0 || close(got) < 0))
		wl_fatal("move fd %d to %d: %s", got, fd, strerror(errno));
	offsets[fd] = is_dup(fd) ? offsets[fd - 1] : (uint32_t)(wl_xorshift(seed) % FILE_SIZE);
	if (lseek(fd, offsets[fd], SEEK_SET) < 0)
		wl_fatal("seek fd %d: %s", fd, strerror(errno));
}

static void check_fd(int fd)
{
	int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
	off_t at = lseek(fd, 0, SEEK_CUR);
	uint8_t b = 0;

	if (!wl_check(fl >= 0 && at >= 0, "(offsets) fd %d is not open: %s", fd, strerror(errno)))
		return;
	wl_check((fl & O_ACCMODE) == access_of(fd), "(access) fd %d has access mode %d", fd, fl & O_ACCMODE);
	wl_check(!!(fdfl & FD_CLOEXEC) == is_dup(fd), "(shared) fd %d close-on-exec is wrong", fd);
	if (!wl_check(at == offsets[fd], "(offsets) fd %d is at %lld, want %u", fd, (long long)at, offsets[fd]))
		return;
	wl_check(read(fd, &b, 1) == 1 && b == byte_at(file_of(fd), offsets[fd]), "(offsets) fd %d reads the wrong byte",
		 fd);
	offsets[fd]++;
	if (is_dup(fd + 1))
		offsets[fd + 1]++;   /* one description, one offset */
}

/* A seek through a dup moves the fd it was made from. */
static void check_shared(void)
{
	for (int fd = DUP_EVERY; fd < 3 + count; fd += DUP_EVERY) {
		if (!is_dup(fd) || lseek(fd, 5, SEEK_SET) != 5)
			continue;
		wl_check(lseek(fd - 1, 0, SEEK_CUR) == 5, "(shared) fd %d and fd %d are not one description", fd - 1, fd);
	}
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "offset") == 0)
		lseek(3 + count / 2, 1, SEEK_CUR);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

static void set_limit(void)
{
	struct rlimit r = { nofile, nofile };

	if (nofile && setrlimit(RLIMIT_NOFILE, &r) < 0)
		wl_fatal("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)nofile, strerror(errno));
}

static void check_limit(void)
{
	struct rlimit r;

	if (nofile == 0)
		return;
	wl_check(getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur == nofile && r.rlim_max == nofile,
		 "(limit) RLIMIT_NOFILE is %llu/%llu, want %llu", (unsigned long long)r.rlim_cur,
		 (unsigned long long)r.rlim_max, (unsigned long long)nofile);
}

int main(int argc, char **argv)
{
	uint64_t seed;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_manyfds DIR COUNT [HIGH_FD [NOFILE]]");
	count = atoi(argv[2]);
	high_fd = argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : -1;
	nofile = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
	if (count < 1 || high_fd == 0 || (high_fd > 0 && high_fd < 3 + count))
		wl_fatal("bad arguments");
	offsets = calloc((size_t)(high_fd > 0 ? high_fd : 3 + count) + 1, sizeof(*offsets));
	if (offsets == NULL)
		wl_fatal("out of memory");
	seed = wl_seed(0x6d616e79);
	make_files();
	for (int fd = 3; fd < 3 + count; fd++)
		open_at(fd, &seed);
	if (high_fd > 0)
		open_at(high_fd, &seed);
	set_limit();
	wl_ready();
	wl_wait_trigger();
	sabotage();

	for (int fd = 3; fd < 3 + count; fd++)
		check_fd(fd);
	if (high_fd > 0)
		check_fd(high_fd);
	check_shared();
	check_limit();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
