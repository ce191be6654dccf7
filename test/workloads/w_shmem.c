/*
 * w_shmem STATE_DIR
 *
 * Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS) between a parent and
 * two children, which only a restore that keeps it one object passes:
 *
 *   the parent maps 1 MiB and fills pages 16-31 and 90-110 with a pattern
 *   of the token; it also maps the same object a second time (through
 *   /proc/self/map_files, 64 pages from page 64 on): one object, two VMAs;
 *   child A writes pages 32-47 and 200-203 and exits (reaped) before ready:
 *   those pages are in the object only, in no survivor's page tables;
 *   child B unmaps page 100 of its mapping (two VMAs of the object, at two
 *   offsets), says it is ready in page 0 and waits for SIGUSR1.
 *
 * On SIGUSR2 the parent checks its pages and child A's, that the second
 * mapping is the same memory (a write through one shows through the
 * other), that maps says "/dev/zero (deleted)", then writes pages 48-51
 * and a word in page 0 and wakes child B.  Child B checks the parent's
 * pages from before and after, child A's pages, its own two VMAs, then
 * writes pages 56-63 and its verdict, its mapping's inode and "done" in
 * page 0 and exits; the parent waits (5 s) for that, checks child B's
 * pages and inode and reaps it.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define PAGES 256
#define ALIAS_AT 64
#define ALIAS_PAGES 64
#define B_HOLE 100

/* Page 0: how the processes talk, through the memory itself. */
struct ctl {
	volatile uint32_t b_ready;
	volatile uint32_t parent_go;
	volatile uint64_t parent_after;
	volatile uint32_t b_done;
	volatile uint32_t b_verdict;      /* 1: B's checks passed */
	volatile uint64_t b_ino;
	char b_why[1024];
};

static char *mem;
static struct ctl *ctl;

/* Each page's pattern depends on the token, the salt and the page. */
static void fill(unsigned page, unsigned n, uint64_t salt)
{
	for (unsigned p = page; p < page + n; p++) {
		uint64_t s = wl_seed(salt << 16 | p);

		for (size_t i = 0; i < PG; i += 8) {
			uint64_t v = wl_xorshift(&s);

			memcpy(mem + p * PG + i, &v, 8);
		}
	}
}

/* The first page of [page, page + n) that does not hold the pattern, or -1. */
static int differs(const char *base, unsigned page, unsigned n, uint64_t salt)
{
	for (unsigned p = page; p < page + n; p++) {
		uint64_t s = wl_seed(salt << 16 | p);

		for (size_t i = 0; i < PG; i += 8) {
			uint64_t v = wl_xorshift(&s), have;

			memcpy(&have, base + p * PG + i, 8);
			if (have != v)
				return (int)p;
		}
	}
	return -1;
}

/* The inode of the mapping at addr, if maps shows it as shared anonymous
 * memory ("/dev/zero (deleted)", shared); 0 otherwise. */
static uint64_t shmem_inode(const void *addr)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	uint64_t ino = 0;

	while (f != NULL && fgets(line, sizeof(line), f)) {
		unsigned long start, end, i;
		char perms[8];
		int path_at = 0;

		if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %n", &start, &end, perms, &i, &path_at) < 4)
			continue;
		if ((uintptr_t)addr < start || (uintptr_t)addr >= end)
			continue;
		if (perms[3] == 's' && path_at && strncmp(line + path_at, "/dev/zero (deleted)", 19) == 0)
			ino = i;
		break;
	}
	if (f != NULL)
		fclose(f);
	return ino;
}

/* ---- checks, by the parent (wl_check) or by child B (into page 0) ---------- */

static bool in_child_b;
static char b_why[1024];
static size_t b_len;

static __attribute__((format(printf, 2, 3))) void check(bool ok, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	if (ok)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!in_child_b)
		wl_check(false, "%s", what);
	else if (b_len < sizeof(b_why) - 1)
		b_len += (size_t)snprintf(b_why + b_len, sizeof(b_why) - b_len, "%s; ", what);
}

static void expect_pattern(const char *base, unsigned page, unsigned n, uint64_t salt, const char *whose)
{
	int p = differs(base, page, n, salt);

	check(p < 0, "page %d (%s) differs", p, whose);
}

/* ---- child B ------------------------------------------------------------- */

static volatile sig_atomic_t b_woken;

static void on_usr1(int sig)
{
	(void)sig;
	b_woken = 1;
}

static void b_verify(void)
{
	check(ctl->parent_after == (wl_token() ^ 0x5a5a5a5a5a5a5a5aULL),
	      "the parent's word written after restore is not there");
	expect_pattern(mem, 16, 16, 1, "the parent's");
	expect_pattern(mem, 90, B_HOLE - 90, 1, "the parent's");
	expect_pattern(mem, B_HOLE + 1, 10, 1, "the parent's, in the second VMA");
	expect_pattern(mem, 32, 16, 2, "exited child A's");
	expect_pattern(mem, 200, 4, 2, "exited child A's");
	expect_pattern(mem, 48, 4, 3, "the parent's, written after restore");
	check(shmem_inode(mem) != 0, "maps does not say /dev/zero (deleted) for the mapping");
	check(shmem_inode(mem + (B_HOLE + 1) * PG) == shmem_inode(mem), "the two VMAs map other objects");
}

static void child_b(void)
{
	sigset_t usr1, old;
	struct timespec limit = { .tv_sec = 600 };

	in_child_b = true;
	signal(SIGUSR1, on_usr1);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	if (munmap(mem + B_HOLE * PG, PG) < 0)
		_exit(3);
	__atomic_store_n(&ctl->b_ready, 1, __ATOMIC_SEQ_CST);
	while (!b_woken)
		if (sigtimedwait(&usr1, NULL, &limit) == SIGUSR1)
			b_woken = 1;
	b_verify();
	fill(56, 8, 4);
	snprintf(ctl->b_why, sizeof(ctl->b_why), "%s", b_why);
	ctl->b_ino = shmem_inode(mem);
	ctl->b_verdict = b_len == 0 ? 1 : 2;
	__atomic_store_n(&ctl->b_done, 1, __ATOMIC_SEQ_CST);
	_exit(0);
}

/* ---- the parent ------------------------------------------------------------ */

static bool wait_for(volatile uint32_t *flag, int seconds)
{
	int64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + (int64_t)seconds * 1000000000LL;

	while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) {
		if (wl_now_ns(CLOCK_MONOTONIC) > deadline)
			return false;
		usleep(2000);
	}
	return true;
}

static char *map_alias(void)
{
	char path[96];
	int fd;
	char *alias;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)mem,
		 (unsigned long)(mem + PAGES * PG));
	fd = open(path, O_RDWR);
	if (fd < 0)
		wl_fatal("open %s: %s", path, strerror(errno));
	alias = mmap(NULL, ALIAS_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, ALIAS_AT * PG);
	if (alias == MAP_FAILED)
		wl_fatal("map the object again: %s", strerror(errno));
	close(fd);
	return alias;
}

static void parent_verify(char *alias, pid_t b)
{
	int status = 0;
	uint64_t ino = shmem_inode(mem);

	expect_pattern(mem, 16, 16, 1, "own");
	expect_pattern(mem, 90, 21, 1, "own");
	expect_pattern(mem, 32, 16, 2, "written by exited child A");
	expect_pattern(mem, 200, 4, 2, "written by exited child A");
	check(ino != 0, "maps does not say /dev/zero (deleted) for the shared mapping");
	check(shmem_inode(alias) == ino, "the second mapping of the object is another object");
	alias[PG + 8] = 0x77;
	check(mem[(ALIAS_AT + 1) * PG + 8] == 0x77, "a write through the second mapping does not show "
	      "through the first");
	fill(48, 4, 3);
	ctl->parent_after = wl_token() ^ 0x5a5a5a5a5a5a5a5aULL;
	__atomic_store_n(&ctl->parent_go, 1, __ATOMIC_SEQ_CST);
	if (kill(b, SIGUSR1) < 0)
		check(false, "child B (pid %d) is gone: %s", b, strerror(errno));
	if (!wl_check(wait_for(&ctl->b_done, 5), "child B's writes after restore never showed (not shared?)"))
		return;
	check(ctl->b_verdict == 1, "child B: %.200s", (const char *)ctl->b_why);
	expect_pattern(mem, 56, 8, 4, "written by child B after restore");
	check(ctl->b_ino == ino, "child B maps inode %" PRIu64 ", the parent %" PRIu64, (uint64_t)ctl->b_ino, ino);
	check(waitpid(b, &status, 0) == b && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child B did not exit cleanly (status 0x%x)", status);
}

int main(int argc, char **argv)
{
	pid_t a, b;
	int status;
	char *alias;

	wl_init(argc, argv);
	mem = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	ctl = (struct ctl *)mem;
	fill(16, 16, 1);
	fill(90, 21, 1);
	a = fork();
	if (a == 0) {
		fill(32, 16, 2);
		fill(200, 4, 2);
		_exit(0);
	}
	if (a < 0 || waitpid(a, &status, 0) != a || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		wl_fatal("child A failed");
	alias = map_alias();
	b = fork();
	if (b == 0)
		child_b();
	if (b < 0 || !wait_for(&ctl->b_ready, 10))
		wl_fatal("child B did not start");
	wl_write_file("child_b", "%d\n", b);
	wl_ready();
	wl_wait_trigger();
	parent_verify(alias, b);
	wl_finish();
}
