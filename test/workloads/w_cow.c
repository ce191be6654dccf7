/*
 * w_cow STATE_DIR [MIB [MORE]]
 *
 * Private memory a parent and its children still share copy-on-write,
 * which only a restore that shares it again keeps small, and only a restore
 * that keeps every process's own view passes:
 *
 *   the parent maps MIB MiB (default 32) of private anonymous memory and
 *   fills every page with a pattern of the token (salt 1), and a heap block
 *   (salt 2); then it forks
 *   child A, which writes pages 0-15 (salt 10), drops pages 100-131
 *            (MADV_DONTNEED: zeros from then on) and unmaps pages 200-263;
 *   child B, which changes nothing and forks grandchild G, which writes
 *            pages 16-31 (salt 20) and drops pages 132-139;
 *   child C, which starts a thread and writes page 40 (salt 30);
 *   MORE more children (default 0), which change nothing.
 * Beside the region, a 16-page file (salt 50) mapped privately, whose
 * pages 0-11 the parent writes (salt 51) before it forks: child A drops
 * pages 0-1 (the file's contents again) and writes page 5 (salt 52),
 * grandchild G writes page 6 (salt 53).
 *
 * The pids go to files child_a, child_b, grandchild, child_c, all of them
 * (the parent's first) to "pids", and the region's address and size to
 * "region" ("<hex address> <pages>"), the file mapping's to "fregion".
 *
 * On SIGUSR2 the parent checks its own memory, then overwrites every page
 * (salt 99) and tells the others, through a shared page, to check theirs:
 * each must still see the parent's memory as it was before (copy-on-write:
 * the parent's writes are not theirs), its own writes, zeros where it
 * dropped pages, and nothing where it unmapped them.  Each writes its
 * verdict to the shared page and exits; the parent collects the verdicts.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL
#define HEAP_BYTES (256u << 10)
#define MAX_KIDS 68                /* A, B, G, C and up to 64 more */

enum { KID_A, KID_B, KID_G, KID_C, KID_MORE };
static const char *const kid_name[KID_MORE] = { "child A", "child B", "grandchild G", "child C" };
static int n_kids = KID_MORE;

struct ctl {
	volatile uint32_t go;
	volatile uint32_t verdict[MAX_KIDS];   /* 1 pass, 2 fail */
	char why[MAX_KIDS][512];
};

#define FPAGES 16
#define FWRITTEN 12

static char *mem;
static char *fmem;
static size_t pages;
static char *heap;
static struct ctl *ctl;

static void fill(char *base, size_t page, size_t n, uint64_t salt)
{
	for (size_t p = page; p < page + n; p++) {
		uint64_t s = wl_seed(salt << 24 | p);

		for (size_t i = 0; i < PG; i += 8) {
			uint64_t v = wl_xorshift(&s);

			memcpy(base + p * PG + i, &v, 8);
		}
	}
}

/* The page of base holds the pattern of salt (0: zeros). */
static bool holds(const char *base, size_t p, uint64_t salt)
{
	uint64_t s = wl_seed(salt << 24 | p);

	for (size_t i = 0; i < PG; i += 8) {
		uint64_t have, v = salt ? wl_xorshift(&s) : 0;

		memcpy(&have, base + p * PG + i, 8);
		if (have != v)
			return false;
	}
	return true;
}

static bool mapped(const void *addr)
{
	unsigned char vec;

	return mincore((void *)addr, PG, &vec) == 0 || errno != ENOMEM;
}

/* ---- a child's own view -------------------------------------------------- */

static char why[512];
static size_t why_len;

static __attribute__((format(printf, 2, 3))) void expect(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok || why_len >= sizeof(why) - 1)
		return;
	va_start(ap, fmt);
	why_len += (size_t)vsnprintf(why + why_len, sizeof(why) - why_len, fmt, ap);
	va_end(ap);
	if (why_len < sizeof(why) - 2) {
		why[why_len++] = ';';
		why[why_len++] = ' ';
		why[why_len] = 0;
	}
}

/* Salt of page p as kid k must see it (0: zeros, -1: unmapped). */
static int64_t kid_salt(int k, size_t p)
{
	if (k == KID_A && p < 16)
		return 10;
	if (k == KID_A && p >= 100 && p < 132)
		return 0;
	if (k == KID_A && p >= 200 && p < 264)
		return -1;
	if (k == KID_G && p >= 16 && p < 32)
		return 20;
	if (k == KID_G && p >= 132 && p < 140)
		return 0;
	if (k == KID_C && p == 40)
		return 30;
	return 1;
}

/* Salt of page p of the file mapping as kid k must see it. */
static uint64_t kid_fsalt(int k, size_t p)
{
	if (k == KID_A && p < 2)
		return 50;
	if (k == KID_A && p == 5)
		return 52;
	if (k == KID_G && p == 6)
		return 53;
	return p < FWRITTEN ? 51 : 50;
}

static void check_view(int k)
{
	size_t bad = 0, first = 0;

	for (size_t p = 0; p < pages; p++) {
		int64_t salt = kid_salt(k, p);
		bool ok = salt < 0 ? !mapped(mem + p * PG) : holds(mem, p, (uint64_t)salt);

		if (!ok && bad++ == 0)
			first = p;
	}
	expect(bad == 0, "%zu pages differ, the first %zu (want %s)", bad, first,
	       kid_salt(k, first) < 0 ? "unmapped" : kid_salt(k, first) == 0 ? "zeros" : "its pattern");
	for (size_t i = 0; i < HEAP_BYTES / PG; i++)
		if (!holds(heap, i, 2)) {
			expect(false, "heap page %zu differs", i);
			break;
		}
	for (size_t p = 0; p < FPAGES; p++)
		expect(holds(fmem, p, kid_fsalt(k, p)), "page %zu of the file mapping differs (want salt %llu)", p,
		       (unsigned long long)kid_fsalt(k, p));
}

static volatile uint64_t spins;

static void *spin(void *arg)
{
	(void)arg;
	for (;;) {
		struct timespec ts = { 0, 5000000 };

		spins++;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void wait_go(void)
{
	while (!ctl->go) {
		struct timespec ts = { 0, 10000000 };

		nanosleep(&ts, NULL);
	}
}

static __attribute__((noreturn)) void kid_main(int k)
{
	pthread_t th;
	uint64_t before;

	if (k == KID_A) {
		fill(mem, 0, 16, 10);
		fill(fmem, 5, 1, 52);
		if (madvise(mem + 100 * PG, 32 * PG, MADV_DONTNEED) < 0 || munmap(mem + 200 * PG, 64 * PG) < 0 ||
		    madvise(fmem, 2 * PG, MADV_DONTNEED) < 0)
			_exit(3);
	} else if (k == KID_G) {
		fill(mem, 16, 16, 20);
		fill(fmem, 6, 1, 53);
		if (madvise(mem + 132 * PG, 8 * PG, MADV_DONTNEED) < 0)
			_exit(3);
	} else if (k == KID_C) {
		if (pthread_create(&th, NULL, spin, NULL) != 0)
			_exit(3);
		fill(mem, 40, 1, 30);
	}
	wait_go();
	check_view(k);
	if (k == KID_C) {
		struct timespec ts = { 0, 100000000 };

		before = spins;
		nanosleep(&ts, NULL);
		expect(spins != before, "its thread no longer runs");
	}
	if (k == KID_B)
		waitpid(-1, NULL, 0);   /* G */
	memcpy(ctl->why[k], why, sizeof(ctl->why[k]));
	ctl->verdict[k] = why_len == 0 ? 1 : 2;
	_exit(0);
}

static pid_t fork_kid(int k)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0)
		kid_main(k);
	return pid;
}

/* Child B: forks G, tells its pid, then lives as a kid. */
static pid_t fork_b(void)
{
	int fds[2];
	pid_t pid, g = 0;

	if (pipe(fds) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		g = fork_kid(KID_G);
		if (write(fds[1], &g, sizeof(g)) != sizeof(g))
			_exit(3);
		close(fds[1]);
		kid_main(KID_B);
	}
	close(fds[1]);
	if (read(fds[0], &g, sizeof(g)) != sizeof(g))
		wl_fatal("child B did not tell its child's pid");
	close(fds[0]);
	wl_write_file("grandchild", "%d\n", (int)g);
	return pid;
}

static void collect(const pid_t *kids)
{
	struct timespec ts = { 0, 10000000 };

	for (int i = 0; i < 3000; i++) {
		bool all = true;

		for (int k = 0; k < n_kids; k++)
			all &= ctl->verdict[k] != 0;
		if (all)
			break;
		nanosleep(&ts, NULL);
	}
	for (int k = 0; k < n_kids; k++)
		wl_check(ctl->verdict[k] == 1, "%s %d: %s", k < KID_MORE ? kid_name[k] : "child", k,
			 ctl->verdict[k] == 0 ? "no verdict within 30 s" : ctl->why[k]);
	for (int k = 0; k < n_kids; k++)
		if (kids[k] > 0)
			waitpid(kids[k], NULL, 0);
}

static void write_pids(const pid_t *kids, pid_t g)
{
	char buf[MAX_KIDS * 12 + 16];
	size_t len = (size_t)snprintf(buf, sizeof(buf), "%d", (int)getpid());

	for (int k = 0; k < n_kids; k++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %d", (int)(k == KID_G ? g : kids[k]));
	wl_write_file("pids", "%s\n", buf);
}

/* The 16-page file, its pattern written through write(2), mapped
 * privately; pages 0-11 then written through the mapping. */
static void map_file(void)
{
	char path[4096], *buf = malloc(FPAGES * PG);
	int fd;

	wl_path(path, sizeof(path), "fmap");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || buf == NULL)
		wl_fatal("create %s: %s", path, strerror(errno));
	fill(buf, 0, FPAGES, 50);
	if (write(fd, buf, FPAGES * PG) != (ssize_t)(FPAGES * PG))
		wl_fatal("write %s: %s", path, strerror(errno));
	fmem = mmap(NULL, FPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fmem == MAP_FAILED)
		wl_fatal("map %s: %s", path, strerror(errno));
	close(fd);
	free(buf);
	fill(fmem, 0, FWRITTEN, 51);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 32;
	pid_t kids[MAX_KIDS] = { 0 };
	char g[16] = "";
	size_t bad = 0;

	wl_init(argc, argv);
	n_kids = KID_MORE + (argc > 3 ? atoi(argv[3]) : 0);
	if (n_kids < KID_MORE || n_kids > MAX_KIDS)
		wl_fatal("0 to %d more children, please", MAX_KIDS - KID_MORE);
	pages = mib * 256;
	if (pages < 300)
		wl_fatal("at least 2 MiB, please");
	mem = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	heap = malloc(HEAP_BYTES);
	if (mem == MAP_FAILED || ctl == MAP_FAILED || heap == NULL)
		wl_fatal("allocate: %s", strerror(errno));
	fill(mem, 0, pages, 1);
	fill(heap, 0, HEAP_BYTES / PG, 2);
	map_file();
	kids[KID_A] = fork_kid(KID_A);
	kids[KID_B] = fork_b();
	kids[KID_C] = fork_kid(KID_C);
	for (int k = KID_MORE; k < n_kids; k++)
		kids[k] = fork_kid(k);
	wl_read_file("grandchild", g, sizeof(g));
	write_pids(kids, (pid_t)atoi(g));
	wl_write_file("child_a", "%d\n", (int)kids[KID_A]);
	wl_write_file("child_b", "%d\n", (int)kids[KID_B]);
	wl_write_file("child_c", "%d\n", (int)kids[KID_C]);
	wl_write_file("region", "%lx %zu\n", (unsigned long)mem, pages);
	wl_write_file("fregion", "%lx %d\n", (unsigned long)fmem, FPAGES);
	wl_ready();
	wl_wait_trigger();

	for (size_t p = 0; p < pages; p++)
		bad += !holds(mem, p, 1);
	wl_check(bad == 0, "parent: %zu pages of its region differ", bad);
	for (size_t i = 0; i < HEAP_BYTES / PG; i++)
		if (!holds(heap, i, 2)) {
			wl_check(false, "parent: heap page %zu differs", i);
			break;
		}
	for (size_t p = 0; p < FPAGES; p++)
		if (!holds(fmem, p, p < FWRITTEN ? 51 : 50)) {
			wl_check(false, "parent: page %zu of its file mapping differs", p);
			break;
		}
	fill(mem, 0, pages, 99);   /* copy-on-write: the others must not see this */
	fill(fmem, 0, FPAGES, 98);
	ctl->go = 1;
	collect(kids);
	wl_finish();
}
