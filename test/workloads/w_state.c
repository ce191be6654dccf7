/*
 * w_state STATE_DIR [compressible]
 *
 * Builds a little of every kind of per-process state cr must carry over,
 * announces itself, counts while it waits for SIGUSR2, then verifies all of
 * it. Each part below is named (a)..(m) as in the test plan; the FAIL reason
 * names the part that broke.
 *
 * With "compressible", the 64 MiB area holds one 4 KiB page repeated (for the
 * --compress size test) instead of a pattern that does not compress.
 *
 * Extra files it writes:
 *   mapfile, appendfile, rofile   files its mappings and fds use
 *   counter_at_ready              the counter when wl_ready() ran
 *   counter_at_verify             the counter when the trigger arrived
 * Files it reads:
 *   sabotage   (negative controls) a word naming one property to break just
 *              before verification, proving the check for it can fail.
 */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000	/* not in glibc's headers; the kernel reports it */
#endif

/* ---- (a) a pointer-rich heap ------------------------------------------ */

#define NODES 20000

struct node {
	struct node *next;
	struct node *jump;	/* an earlier node (or itself) */
	struct node *self;
	uint64_t value;
	uint32_t index;
};

static struct node *heap_head;
static struct node **heap_index;	/* malloc'd array of all nodes */

static void heap_build(void)
{
	uint64_t rng = wl_seed(0xa);
	struct node *prev = NULL;
	void *garbage[NODES / 4];
	size_t ngarbage = 0;

	heap_index = malloc(NODES * sizeof(*heap_index));
	if (!heap_index)
		wl_fatal("malloc");
	for (uint32_t i = 0; i < NODES; i++) {
		struct node *n = malloc(sizeof(*n));

		/* Interleave blocks that are freed again: the allocator's free
		 * lists then hold pointers that must survive too. */
		if (i % 4 == 0 && ngarbage < NODES / 4)
			garbage[ngarbage++] = malloc(16 + i % 200);
		if (!n)
			wl_fatal("malloc");
		n->value = wl_xorshift(&rng);
		n->index = i;
		n->self = n;
		n->next = NULL;
		heap_index[i] = n;
		n->jump = heap_index[wl_xorshift(&rng) % (i + 1)];
		if (prev)
			prev->next = n;
		else
			heap_head = n;
		prev = n;
	}
	for (size_t i = 0; i < ngarbage; i++)
		free(garbage[i]);
}

static void heap_verify(void)
{
	uint64_t rng = wl_seed(0xa);
	uint32_t i = 0;
	const struct node *n;

	for (n = heap_head; n && i < NODES; n = n->next, i++) {
		uint64_t value = wl_xorshift(&rng);
		uint64_t jump = wl_xorshift(&rng) % (i + 1);

		if (!wl_check(n->self == n && n->index == i && n->value == value &&
			      heap_index[i] == n && n->jump == heap_index[jump],
			      "(a) heap node %u damaged", i))
			return;
	}
	wl_check(i == NODES && n == NULL, "(a) heap list has %u nodes, want %u", i, NODES);

	/* The allocator itself must still work on the restored heap. */
	void *p[256];
	for (int k = 0; k < 256; k++) {
		p[k] = malloc(32 + k * 64);
		if (!wl_check(p[k] != NULL, "(a) malloc after restore failed"))
			return;
		memset(p[k], k, 32 + k * 64);
	}
	for (int k = 0; k < 256; k++)
		free(p[k]);
}

/* ---- (b) a large private anonymous area -------------------------------- */

#define BIG_SIZE (64UL << 20)
#define BIG_UNTOUCHED (1UL << 20)	/* tail never written: must read as 0 */

static uint64_t *big;
static bool big_compressible;

static uint64_t big_word(uint64_t *rng, size_t i, const uint64_t *first_page)
{
	if (big_compressible && i >= PAGE / 8)
		return first_page[i % (PAGE / 8)];
	return wl_xorshift(rng);
}

static void big_build(void)
{
	uint64_t rng = wl_seed(0xb);

	big = mmap(NULL, BIG_SIZE + BIG_UNTOUCHED, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		wl_fatal("mmap 64 MiB: %s", strerror(errno));
	for (size_t i = 0; i < BIG_SIZE / 8; i++)
		big[i] = big_word(&rng, i, big);
}

static void big_verify(void)
{
	uint64_t rng = wl_seed(0xb);
	struct wl_map m;
	uint64_t first_page[PAGE / 8];

	for (size_t i = 0; i < BIG_SIZE / 8; i++) {
		uint64_t want = big_word(&rng, i, first_page);

		if (i < PAGE / 8)
			first_page[i] = want;
		if (!wl_check(big[i] == want, "(b) anon area differs at offset %zu", i * 8))
			return;
	}
	const unsigned char *tail = (const unsigned char *)big + BIG_SIZE;
	for (size_t i = 0; i < BIG_UNTOUCHED; i++)
		if (!wl_check(tail[i] == 0, "(b) untouched anon page not zero at +%zu", i))
			return;
	if (wl_check(wl_maps_lookup((uintptr_t)big, &m) == 0, "(b) anon area not in maps"))
		wl_check(strcmp(m.perms, "rw-p") == 0, "(b) anon area perms %s, want rw-p", m.perms);
}

/* ---- (c) read-only and (d) PROT_NONE areas ----------------------------- */

#define RO_PAGES 16
#define NONE_PAGES 4

static unsigned char *ro_area, *none_area;

static void fill(unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t rng = wl_seed(salt);

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = wl_xorshift(&rng);
		memcpy(p + i, &v, 8);
	}
}

/* Offset of the first difference from the pattern, or -1. */
static long differs(const unsigned char *p, size_t len, uint64_t salt)
{
	uint64_t rng = wl_seed(salt);

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = wl_xorshift(&rng);
		if (memcmp(p + i, &v, 8) != 0)
			return (long)i;
	}
	return -1;
}

static unsigned char *protected_area(size_t pages, uint64_t salt, int prot)
{
	unsigned char *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	fill(p, pages * PAGE, salt);
	if (mprotect(p, pages * PAGE, prot) < 0)
		wl_fatal("mprotect: %s", strerror(errno));
	return p;
}

static void protected_verify(void)
{
	struct wl_map m;
	long off;

	if (wl_check(wl_maps_lookup((uintptr_t)ro_area, &m) == 0, "(c) ro area not in maps"))
		wl_check(strcmp(m.perms, "r--p") == 0, "(c) ro area perms %s, want r--p", m.perms);
	off = differs(ro_area, RO_PAGES * PAGE, 0xc);
	wl_check(off < 0, "(c) ro area differs at offset %ld", off);

	if (wl_check(wl_maps_lookup((uintptr_t)none_area, &m) == 0, "(d) PROT_NONE area not in maps"))
		wl_check(strcmp(m.perms, "---p") == 0, "(d) PROT_NONE area perms %s, want ---p", m.perms);
	if (!wl_check(mprotect(none_area, NONE_PAGES * PAGE, PROT_READ) == 0,
		      "(d) mprotect: %s", strerror(errno)))
		return;
	off = differs(none_area, NONE_PAGES * PAGE, 0xd);
	wl_check(off < 0, "(d) PROT_NONE area differs at offset %ld", off);
}

/* ---- (e) a private file mapping with one page changed in memory -------- */

#define MAP_PAGES 4

static unsigned char *file_map;
static char mapfile_path[PATH_MAX];

static void write_pattern_file(const char *name, size_t len, uint64_t salt, char *path, size_t size)
{
	unsigned char *buf = malloc(len);
	int fd;

	if (!buf)
		wl_fatal("malloc");
	fill(buf, len, salt);
	wl_path(path, size, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) < 0)
		wl_fatal("write %s: %s", path, strerror(errno));
	free(buf);
}

static void file_map_build(void)
{
	int fd;

	write_pattern_file("mapfile", MAP_PAGES * PAGE, 0xe0, mapfile_path, sizeof(mapfile_path));
	fd = open(mapfile_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_fatal("open mapfile: %s", strerror(errno));
	file_map = mmap(NULL, MAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (file_map == MAP_FAILED)
		wl_fatal("mmap mapfile: %s", strerror(errno));
	close(fd);
	fill(file_map + PAGE, PAGE, 0xe1);	/* page 1: private copy */
}

static void file_map_verify(void)
{
	unsigned char file_content[MAP_PAGES * PAGE];
	struct wl_map m;

	fill(file_content, sizeof(file_content), 0xe0);
	if (wl_check(wl_maps_lookup((uintptr_t)file_map, &m) == 0, "(e) file mapping not in maps")) {
		wl_check(strcmp(m.path, mapfile_path) == 0, "(e) mapping backed by '%s', want '%s'",
			 m.path, mapfile_path);
		wl_check(strcmp(m.perms, "rw-p") == 0, "(e) file mapping perms %s, want rw-p", m.perms);
	}
	for (int page = 0; page < MAP_PAGES; page++) {
		if (page == 1)
			wl_check(differs(file_map + PAGE, PAGE, 0xe1) < 0,
				 "(e) modified page 1 of the file mapping lost its content");
		else
			wl_check(memcmp(file_map + page * PAGE, file_content + page * PAGE, PAGE) == 0,
				 "(e) page %d of the file mapping differs from the file", page);
	}
}

/* ---- (f) file descriptors ---------------------------------------------- */

#define FD_APPEND 10
#define FD_RDONLY 11
#define APPEND_BYTES 12345
#define RDONLY_OFFSET 777
#define ROFILE_SIZE 4096

static char appendfile_path[PATH_MAX], rofile_path[PATH_MAX], log_path[PATH_MAX];

static void open_at(int want_fd, const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0 || dup2(fd, want_fd) < 0)
		wl_fatal("open %s as fd %d: %s", path, want_fd, strerror(errno));
	close(fd);
}

static void fds_build(void)
{
	unsigned char buf[APPEND_BYTES];

	wl_path(appendfile_path, sizeof(appendfile_path), "appendfile");
	wl_path(log_path, sizeof(log_path), "log");
	open_at(FD_APPEND, appendfile_path, O_RDWR | O_APPEND | O_CREAT | O_TRUNC);
	fill(buf, sizeof(buf) - sizeof(buf) % 8, 0xf0);
	memset(buf + sizeof(buf) - sizeof(buf) % 8, 'x', sizeof(buf) % 8);
	if (write(FD_APPEND, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		wl_fatal("write appendfile: %s", strerror(errno));

	write_pattern_file("rofile", ROFILE_SIZE, 0xf1, rofile_path, sizeof(rofile_path));
	open_at(FD_RDONLY, rofile_path, O_RDONLY);
	if (lseek(FD_RDONLY, RDONLY_OFFSET, SEEK_SET) != RDONLY_OFFSET)
		wl_fatal("lseek: %s", strerror(errno));
	if (fcntl(FD_RDONLY, F_SETFD, FD_CLOEXEC) < 0)
		wl_fatal("F_SETFD: %s", strerror(errno));
}

static void check_fd_target(int fd, const char *want)
{
	char link[64], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (!wl_check(n > 0, "(f) fd %d: readlink: %s", fd, strerror(errno)))
		return;
	target[n] = '\0';
	wl_check(strcmp(target, want) == 0, "(f) fd %d points to '%s', want '%s'", fd, target, want);
}

static void check_fd_set(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int count = 0;

	if (!wl_check(d != NULL, "(f) opendir /proc/self/fd: %s", strerror(errno)))
		return;
	while ((e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == dirfd(d))
			continue;
		count++;
		wl_check(fd <= 2 || fd == FD_APPEND || fd == FD_RDONLY,
			 "(f) unexpected fd %d is open", fd);
	}
	closedir(d);
	wl_check(count == 5, "(f) %d fds open, want 5 (0 1 2 %d %d)", count, FD_APPEND, FD_RDONLY);
}

static void fds_verify(void)
{
	unsigned char want[16], got[16];
	off_t off;
	int fl;

	check_fd_set();
	check_fd_target(0, "/dev/null");
	check_fd_target(1, log_path);
	check_fd_target(2, log_path);
	check_fd_target(FD_APPEND, appendfile_path);
	check_fd_target(FD_RDONLY, rofile_path);

	off = lseek(FD_APPEND, 0, SEEK_CUR);
	wl_check(off == APPEND_BYTES, "(f) fd %d offset %lld, want %d", FD_APPEND, (long long)off, APPEND_BYTES);
	fl = fcntl(FD_APPEND, F_GETFL);
	wl_check(fl >= 0 && (fl & (O_ACCMODE | O_APPEND)) == (O_RDWR | O_APPEND),
		 "(f) fd %d flags %#x, want O_RDWR|O_APPEND", FD_APPEND, fl);
	wl_check(fcntl(FD_APPEND, F_GETFD) == 0, "(f) fd %d has FD_CLOEXEC", FD_APPEND);

	off = lseek(FD_RDONLY, 0, SEEK_CUR);
	wl_check(off == RDONLY_OFFSET, "(f) fd %d offset %lld, want %d", FD_RDONLY, (long long)off, RDONLY_OFFSET);
	fl = fcntl(FD_RDONLY, F_GETFL);
	wl_check(fl >= 0 && (fl & (O_ACCMODE | O_APPEND)) == O_RDONLY,
		 "(f) fd %d flags %#x, want O_RDONLY", FD_RDONLY, fl);
	wl_check(fcntl(FD_RDONLY, F_GETFD) == FD_CLOEXEC, "(f) fd %d lost FD_CLOEXEC", FD_RDONLY);

	/* Reading goes on from the kept offset (the file is a known pattern). */
	unsigned char content[ROFILE_SIZE];
	fill(content, sizeof(content), 0xf1);
	memcpy(want, content + RDONLY_OFFSET, sizeof(want));
	wl_check(off == RDONLY_OFFSET && read(FD_RDONLY, got, sizeof(got)) == (ssize_t)sizeof(got) &&
		 memcmp(got, want, sizeof(got)) == 0, "(f) reading fd %d at its offset gave wrong data",
		 FD_RDONLY);
}

/* ---- (g) signal dispositions ------------------------------------------- */

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	usr1_seen = 1;
}

static void sigactions_build(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		wl_fatal("sigaction(SIGUSR1): %s", strerror(errno));
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		wl_fatal("signal(SIGPIPE): %s", strerror(errno));
}

/* Compares two sets over every signal number; returns the first that differs. */
static int set_diff(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < NSIG; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return s;
	return 0;
}

static void sigactions_verify(void)
{
	struct sigaction sa;
	sigset_t want;
	int d;

	if (wl_check(sigaction(SIGUSR1, NULL, &sa) == 0, "(g) sigaction: %s", strerror(errno))) {
		wl_check(sa.sa_sigaction == on_usr1, "(g) SIGUSR1 handler is %p, want %p",
			 (void *)sa.sa_sigaction, (void *)on_usr1);
		wl_check((sa.sa_flags & ~SA_RESTORER) == (SA_RESTART | SA_SIGINFO),
			 "(g) SIGUSR1 flags %#x, want SA_RESTART|SA_SIGINFO", sa.sa_flags);
		sigemptyset(&want);
		sigaddset(&want, SIGWINCH);
		d = set_diff(&sa.sa_mask, &want);
		wl_check(d == 0, "(g) SIGUSR1 sa_mask differs at signal %d", d);
	}
	if (wl_check(sigaction(SIGPIPE, NULL, &sa) == 0, "(g) sigaction: %s", strerror(errno)))
		wl_check(sa.sa_handler == SIG_IGN, "(g) SIGPIPE is not SIG_IGN");
	if (wl_check(sigaction(SIGUSR2, NULL, &sa) == 0, "(g) sigaction: %s", strerror(errno)))
		wl_check(sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN,
			 "(g) SIGUSR2 handler lost");
	wl_check(!usr1_seen, "(g) SIGUSR1 handler ran, nobody sent SIGUSR1");
}

/* ---- (h) blocked, pending signals -------------------------------------- */

/* The si_code this kernel gives a tgkill()ed signal (SI_TKILL on most,
 * SI_USER on some): learned from a probe so the check stays exact. */
static int tkill_code;

static void probe_tkill_code(void)
{
	struct timespec zero = { 0, 0 };
	sigset_t set, old;
	siginfo_t si;

	sigemptyset(&set);
	sigaddset(&set, SIGURG);
	sigprocmask(SIG_BLOCK, &set, &old);
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGURG) < 0 ||
	    sigtimedwait(&set, &si, &zero) != SIGURG)
		wl_fatal("tgkill probe: %s", strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
	tkill_code = si.si_code;
}

static void pending_build(void)
{
	sigset_t block;

	probe_tkill_code();

	sigemptyset(&block);
	sigaddset(&block, SIGRTMIN + 1);
	sigaddset(&block, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &block, NULL) < 0)
		wl_fatal("sigprocmask: %s", strerror(errno));
	/* Process-directed (shared queue), twice: rt signals queue up. */
	if (sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 4242 }) < 0 ||
	    sigqueue(getpid(), SIGRTMIN + 1, (union sigval){ .sival_int = 4343 }) < 0)
		wl_fatal("sigqueue: %s", strerror(errno));
	/* Thread-directed (private queue): tgkill, as raise() may use kill(). */
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGHUP) < 0)
		wl_fatal("tgkill: %s", strerror(errno));
}

static void take_signal(int sig, int value, int code)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t set;
	int got;

	sigemptyset(&set);
	sigaddset(&set, sig);
	memset(&si, 0, sizeof(si));
	got = sigtimedwait(&set, &si, &zero);
	if (!wl_check(got == sig, "(h) sigtimedwait(%d) returned %d (%s)", sig, got,
		      got < 0 ? strerror(errno) : "wrong signal"))
		return;
	wl_check(si.si_code == code, "(h) signal %d si_code %d, want %d", sig, si.si_code, code);
	wl_check(si.si_pid == wl_pid(), "(h) signal %d si_pid %d, want %d", sig, (int)si.si_pid, (int)wl_pid());
	if (code == SI_QUEUE)
		wl_check(si.si_value.sival_int == value, "(h) signal %d value %d, want %d", sig,
			 si.si_value.sival_int, value);
}

static void pending_verify(void)
{
	sigset_t want, cur;
	int d;

	sigemptyset(&want);
	sigaddset(&want, SIGRTMIN + 1);
	sigaddset(&want, SIGHUP);

	sigprocmask(SIG_BLOCK, NULL, &cur);
	d = set_diff(&cur, &want);
	wl_check(d == 0, "(h) blocked mask differs at signal %d", d);
	sigpending(&cur);
	d = set_diff(&cur, &want);
	wl_check(d == 0, "(h) pending set differs at signal %d", d);

	take_signal(SIGRTMIN + 1, 4242, SI_QUEUE);
	take_signal(SIGRTMIN + 1, 4343, SI_QUEUE);
	take_signal(SIGHUP, 0, tkill_code);
	sigpending(&cur);
	sigemptyset(&want);
	d = set_diff(&cur, &want);
	wl_check(d == 0, "(h) signal %d still pending after taking all", d);
}

/* ---- (i) process attributes -------------------------------------------- */

#define ALTSTACK_SIZE (64 * 1024)
#define ITIMER_SEC 1000
#define ITIMER_INTERVAL_SEC 500

static void *altstack;
static struct rlimit nofile_before;

static void attrs_build(void)
{
	struct rlimit rl;
	stack_t ss;

	umask(027);
	if (chdir(wl_dir()) < 0)
		wl_fatal("chdir: %s", strerror(errno));
	if (getrlimit(RLIMIT_NOFILE, &nofile_before) < 0)
		wl_fatal("getrlimit: %s", strerror(errno));
	rl = nofile_before;
	rl.rlim_cur = 512;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		wl_fatal("setrlimit: %s", strerror(errno));
	if (prctl(PR_SET_NAME, "wl-state-x", 0, 0, 0) < 0)
		wl_fatal("PR_SET_NAME: %s", strerror(errno));
	altstack = malloc(ALTSTACK_SIZE);
	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (!altstack || sigaltstack(&ss, NULL) < 0)
		wl_fatal("sigaltstack: %s", strerror(errno));
}

/* Armed last: the set-up above burns CPU time, which ITIMER_VIRTUAL counts. */
static void itimer_build(void)
{
	struct itimerval it = {
		.it_value = { ITIMER_SEC, 0 },
		.it_interval = { ITIMER_INTERVAL_SEC, 0 },
	};

	if (setitimer(ITIMER_VIRTUAL, &it, NULL) < 0)
		wl_fatal("setitimer: %s", strerror(errno));
}

static void attrs_verify(void)
{
	char cwd[PATH_MAX], name[32] = "";
	struct itimerval it;
	struct rlimit rl;
	stack_t ss;
	mode_t mask;

	mask = umask(0);
	umask(mask);
	wl_check(mask == 027, "(i) umask %03o, want 027", (unsigned)mask);
	wl_check(getcwd(cwd, sizeof(cwd)) && strcmp(cwd, wl_dir()) == 0,
		 "(i) cwd '%s', want '%s'", cwd, wl_dir());
	if (wl_check(getrlimit(RLIMIT_NOFILE, &rl) == 0, "(i) getrlimit: %s", strerror(errno)))
		wl_check(rl.rlim_cur == 512 && rl.rlim_max == nofile_before.rlim_max,
			 "(i) RLIMIT_NOFILE %llu/%llu, want 512/%llu", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)rl.rlim_max, (unsigned long long)nofile_before.rlim_max);
	prctl(PR_GET_NAME, name, 0, 0, 0);
	wl_check(strcmp(name, "wl-state-x") == 0, "(i) comm '%s', want 'wl-state-x'", name);
	if (wl_check(sigaltstack(NULL, &ss) == 0, "(i) sigaltstack: %s", strerror(errno)))
		wl_check(ss.ss_sp == altstack && ss.ss_size == ALTSTACK_SIZE && ss.ss_flags == 0,
			 "(i) sigaltstack %p/%zu/%#x, want %p/%d/0", ss.ss_sp, ss.ss_size,
			 (unsigned)ss.ss_flags, altstack, ALTSTACK_SIZE);
	if (wl_check(getitimer(ITIMER_VIRTUAL, &it) == 0, "(i) getitimer: %s", strerror(errno))) {
		long long us = it.it_value.tv_sec * 1000000LL + it.it_value.tv_usec;

		wl_check(us > 900 * 1000000LL && us <= ITIMER_SEC * 1000000LL,
			 "(i) ITIMER_VIRTUAL has %lld us left, want (900 s, 1000 s]", us);
		wl_check(it.it_interval.tv_sec == ITIMER_INTERVAL_SEC && it.it_interval.tv_usec == 0,
			 "(i) ITIMER_VIRTUAL interval %lld.%06lld s, want %d s",
			 (long long)it.it_interval.tv_sec, (long long)it.it_interval.tv_usec,
			 ITIMER_INTERVAL_SEC);
	}
}

/* ---- (j) kernel-held pointers into the address space ------------------- */

static struct {
	void *tid_address;
	void *robust_head;
	size_t robust_len;
	unsigned long sysinfo_ehdr;
	int64_t monotonic_ns;
	struct wl_map vdso, vvar, vvar_vclock;
	bool has_vvar, has_vvar_vclock;
	void *brk;
} k;

static void kernel_ptrs_record(void)
{
	if (prctl(PR_GET_TID_ADDRESS, &k.tid_address, 0, 0, 0) < 0)
		wl_fatal("PR_GET_TID_ADDRESS: %s", strerror(errno));
	if (syscall(SYS_get_robust_list, 0, &k.robust_head, &k.robust_len) < 0)
		wl_fatal("get_robust_list: %s", strerror(errno));
	k.sysinfo_ehdr = getauxval(AT_SYSINFO_EHDR);
	if (wl_maps_find("[vdso]", &k.vdso) < 0)
		wl_fatal("no [vdso] in maps");
	k.has_vvar = wl_maps_find("[vvar]", &k.vvar) == 0;
	k.has_vvar_vclock = wl_maps_find("[vvar_vclock]", &k.vvar_vclock) == 0;
	k.monotonic_ns = wl_now_ns(CLOCK_MONOTONIC);
}

static void check_same_map(const char *name, bool had, const struct wl_map *before)
{
	struct wl_map now;
	bool has = wl_maps_find(name, &now) == 0;

	if (!wl_check(has == had, "(j) %s %s after restore", name, had ? "missing" : "appeared"))
		return;
	if (had)
		wl_check(now.start == before->start && now.end == before->end,
			 "(j) %s at %#lx-%#lx, was %#lx-%#lx", name, (unsigned long)now.start,
			 (unsigned long)now.end, (unsigned long)before->start, (unsigned long)before->end);
}

static void kernel_ptrs_verify(void)
{
	void *tid_address = NULL, *head = NULL;
	size_t len = 0;
	int64_t now;

	prctl(PR_GET_TID_ADDRESS, &tid_address, 0, 0, 0);
	wl_check(tid_address == k.tid_address, "(j) clear_child_tid %p, want %p", tid_address, k.tid_address);
	syscall(SYS_get_robust_list, 0, &head, &len);
	wl_check(head == k.robust_head && len == k.robust_len, "(j) robust list %p/%zu, want %p/%zu",
		 head, len, k.robust_head, k.robust_len);
	wl_check(getauxval(AT_SYSINFO_EHDR) == k.sysinfo_ehdr, "(j) AT_SYSINFO_EHDR changed");
	wl_check(k.vdso.start == k.sysinfo_ehdr, "(j) [vdso] at %#lx but AT_SYSINFO_EHDR is %#lx",
		 (unsigned long)k.vdso.start, k.sysinfo_ehdr);
	check_same_map("[vdso]", true, &k.vdso);
	check_same_map("[vvar]", k.has_vvar, &k.vvar);
	check_same_map("[vvar_vclock]", k.has_vvar_vclock, &k.vvar_vclock);
	now = wl_now_ns(CLOCK_MONOTONIC);
	wl_check(now > k.monotonic_ns, "(j) CLOCK_MONOTONIC %lld did not move past %lld",
		 (long long)now, (long long)k.monotonic_ns);
	wl_check(wl_now_ns(CLOCK_REALTIME) > 0, "(j) CLOCK_REALTIME failed");
}

/* ---- (k) rseq ---------------------------------------------------------- */

#define RSEQ_SIG_X86 0x53053053

static void rseq_verify(void)
{
	struct rseq *area;
	unsigned int len = __rseq_size < 32 ? 32 : __rseq_size;
	long ret;
	int cpu;

	if (!wl_check(__rseq_size > 0, "(k) glibc did not register rseq"))
		return;
	area = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
	errno = 0;
	ret = syscall(SYS_rseq, area, len, 0, RSEQ_SIG_X86);
	wl_check(ret == -1 && errno == EBUSY, "(k) re-registering rseq gave %ld (%s), want EBUSY",
		 ret, strerror(errno));
	cpu = sched_getcpu();
	wl_check(cpu >= 0, "(k) sched_getcpu: %s", strerror(errno));
	wl_check(area->cpu_id < 4096,
		 "(k) rseq cpu_id %u is not a cpu", area->cpu_id);
}

/* ---- negative controls --------------------------------------------------- */

static void take_pending(int sig)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, sig);
	sigtimedwait(&set, NULL, &zero);
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "heap") == 0)
		heap_index[NODES / 2]->value ^= 1;
	else if (strcmp(what, "anon") == 0)
		((unsigned char *)big)[33 << 20] ^= 1;
	else if (strcmp(what, "filemap") == 0)
		file_map[2 * PAGE + 5] ^= 1;
	else if (strcmp(what, "fd") == 0)
		lseek(FD_RDONLY, 1, SEEK_CUR);
	else if (strcmp(what, "sigaction") == 0)
		signal(SIGPIPE, SIG_DFL);
	else if (strcmp(what, "pending") == 0)
		take_pending(SIGHUP);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
	volatile unsigned long counter = 0;
	unsigned long counter_at_ready;

	wl_init(argc, argv);
	big_compressible = argc > 2 && strcmp(argv[2], "compressible") == 0;

	heap_build();
	big_build();
	ro_area = protected_area(RO_PAGES, 0xc, PROT_READ);
	none_area = protected_area(NONE_PAGES, 0xd, PROT_NONE);
	file_map_build();
	fds_build();
	sigactions_build();
	pending_build();
	attrs_build();
	kernel_ptrs_record();
	itimer_build();

	wl_ready();
	counter_at_ready = counter;
	wl_write_file("counter_at_ready", "%lu\n", counter_at_ready);
	k.brk = sbrk(0);

	/* (m) count while waiting; the dump lands somewhere in here. */
	while (!wl_triggered) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		counter++;
		nanosleep(&ts, NULL);	/* EINTR (trigger or restore) just loops */
	}

	wl_check(sbrk(0) == k.brk, "brk %p, want %p", sbrk(0), k.brk);
	sabotage();
	pending_verify();	/* first: nothing else may touch the signal state */
	heap_verify();
	big_verify();
	protected_verify();
	file_map_verify();
	fds_verify();
	sigactions_verify();
	attrs_verify();
	kernel_ptrs_verify();
	rseq_verify();
	wl_check(getpid() == wl_pid() && syscall(SYS_getpid) == wl_pid() && syscall(SYS_gettid) == wl_pid(),
		 "(l) pid %d, want %d", (int)syscall(SYS_getpid), (int)wl_pid());
	wl_check(counter > counter_at_ready, "(m) counter %lu did not move past %lu",
		 (unsigned long)counter, counter_at_ready);
	wl_write_file("counter_at_verify", "%lu\n", (unsigned long)counter);
	wl_finish();
}
