/*
 * w_precopy STATE_DIR MIB [HOT_KIB [thp]]
 *
 * For pre-copy (cr pre-dump): writes its memory all the time while rounds
 * are taken, so that a page restored from an old round instead of the
 * last one is seen.  MIB MiB of pages, each filled from its index and its
 * version; every write raises one page's version and the generation
 * counter, kept on pages of their own (HOT_KIB: writes go to the first
 * HOT_KIB KiB only; thp: the pages are transparent huge pages, with
 * MADV_HUGEPAGE): the versions must sum to the
 * generation (less what was dropped), every page must match its version,
 * and the generation must be at least the one in STATE_DIR/gen_min (the
 * last the harness saw before the final dump: "gen N" lines on stdout).
 *
 * SIGUSR1 changes the layout between rounds, as real programs do: the
 * last 16 pages (cold, with a hot set) are dropped (MADV_DONTNEED) and
 * read again (the zero page), a 1 MiB mapping is unmapped and mapped again at the
 * same address with new bytes, another is moved (mremap), and a child is
 * forked that writes its own copy from then on (it checks itself at the
 * trigger).  Ends with PASS/FAIL at SIGUSR2, as every workload.
 */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u
#define DROPPED 0xffffffffu
#define SIDE (1u << 20)

static unsigned char *mem;
static size_t n_pages, n_hot;
static uint32_t *ver;            /* its own mapping */
static uint64_t *gen, *lost;     /* a page of their own */
static unsigned char *side_b, *side_c;
static uint32_t side_b_ver;
static volatile sig_atomic_t relayout;
static pid_t child;

static uint64_t word(size_t page, uint32_t v, size_t k)
{
	return (((uint64_t)page << 32) | v) ^ ((uint64_t)k * 0x9e3779b97f4a7c15ULL);
}

static void fill_page(unsigned char *p, size_t page, uint32_t v)
{
	uint64_t *w = (uint64_t *)p;

	for (size_t k = 0; k < PAGE / 8; k++)
		w[k] = word(page, v, k);
}

static bool page_ok(const unsigned char *p, size_t page, uint32_t v)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t k = 0; k < PAGE / 8; k++)
		if (w[k] != (v == DROPPED ? 0 : word(page, v, k)))
			return false;
	return true;
}

static void fill_side(unsigned char *p, size_t tag, uint32_t v)
{
	for (size_t off = 0; off < SIDE; off += PAGE)
		fill_page(p + off, tag + off / PAGE, v);
}

static bool side_ok(const unsigned char *p, size_t tag, uint32_t v)
{
	for (size_t off = 0; off < SIDE; off += PAGE)
		if (!page_ok(p + off, tag + off / PAGE, v))
			return false;
	return true;
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fatal("mmap %zu bytes", len);
	return p;
}

/* One write: a page chosen from the generation gets its next version. */
static void step(void)
{
	size_t i = (size_t)((*gen * 0x2545f4914f6cdd1dULL) >> 17) % n_hot;

	if (ver[i] == DROPPED)
		ver[i] = 0;
	ver[i]++;
	fill_page(mem + i * PAGE, i, ver[i]);
	(*gen)++;
}

static void change_layout(void)
{
	void *at;

	size_t first = n_pages > 16 ? n_pages - 16 : 0;

	for (size_t i = first; i < n_pages; i++)
		if (ver[i] != DROPPED) {
			*lost += ver[i];
			ver[i] = DROPPED;
		}
	if (madvise(mem + first * PAGE, (n_pages - first) * PAGE, MADV_DONTNEED) < 0)
		wl_fatal("madvise MADV_DONTNEED");
	for (size_t i = first; i < n_pages; i++)
		(void)*(volatile unsigned char *)(mem + i * PAGE);   /* the zero page */
	at = side_b;
	if (munmap(side_b, SIDE) < 0 || mmap(at, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
					     MAP_FIXED, -1, 0) != at)
		wl_fatal("map again at %p", at);
	fill_side(side_b, 1u << 20, ++side_b_ver);
	at = mremap(side_c, SIDE, SIDE, MREMAP_MAYMOVE | MREMAP_FIXED, side_b + 2 * SIDE);
	if (at == MAP_FAILED)
		wl_fatal("mremap");
	side_c = at;
	if (child == 0) {
		child = fork();
		if (child < 0)
			wl_fatal("fork");
		if (child == 0)
			child = -1;   /* the child: checks itself */
	}
}

static bool all_ok(char *why, size_t size)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n_pages; i++) {
		if (!page_ok(mem + i * PAGE, i, ver[i])) {
			snprintf(why, size, "page %zu does not hold version %u", i, ver[i]);
			return false;
		}
		sum += ver[i] == DROPPED ? 0 : ver[i];
	}
	if (sum + *lost != *gen) {
		snprintf(why, size, "versions sum to %llu, generation %llu", (unsigned long long)(sum + *lost),
			 (unsigned long long)*gen);
		return false;
	}
	if (!side_ok(side_b, 1u << 20, side_b_ver) || !side_ok(side_c, 2u << 20, 1)) {
		snprintf(why, size, "a remapped or moved mapping lost its bytes");
		return false;
	}
	return true;
}

static void on_usr1(int sig)
{
	(void)sig;
	relayout = 1;
}

int main(int argc, char **argv)
{
	char why[128], buf[32];
	struct timespec last = { 0 }, now;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_precopy DIR MIB");
	n_pages = (size_t)atoi(argv[2]) * (1u << 20) / PAGE;
	n_hot = argc > 3 ? (size_t)atoi(argv[3]) * 1024 / PAGE : n_pages;
	if (n_hot == 0 || n_hot > n_pages)
		wl_fatal("HOT_KIB must be 4 to MIB * 1024");
	mem = map(n_pages * PAGE);
	if (argc > 4 && strcmp(argv[4], "thp") == 0 && madvise(mem, n_pages * PAGE, MADV_HUGEPAGE) < 0)
		wl_fatal("madvise MADV_HUGEPAGE");
	ver = map((n_pages * sizeof(*ver) + PAGE - 1) / PAGE * PAGE);
	gen = map(PAGE);
	lost = gen + 1;
	side_b = map(4 * SIDE);   /* b, then room for c to move to */
	munmap(side_b + SIDE, 3 * SIDE);
	side_c = map(SIDE);
	for (size_t i = 0; i < n_pages; i++)
		fill_page(mem + i * PAGE, i, 0);
	fill_side(side_b, 1u << 20, side_b_ver);
	fill_side(side_c, 2u << 20, 1);
	signal(SIGUSR1, on_usr1);
	wl_ready();
	while (!wl_triggered) {
		for (int k = 0; k < 64; k++)
			step();
		if (relayout) {
			relayout = 0;
			change_layout();
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (child >= 0 && now.tv_sec != last.tv_sec) {
			printf("gen %llu\n", (unsigned long long)*gen);
			fflush(stdout);
			last = now;
		}
		usleep(200);
	}
	if (child == -1)   /* the child */
		_exit(all_ok(why, sizeof(why)) ? 0 : 1);
	if (wl_read_file("gen_min", buf, sizeof(buf)) > 0)
		wl_check(*gen >= strtoull(buf, NULL, 10), "generation went back (an old round's pages?)");
	wl_check(all_ok(why, sizeof(why)), "%s", why);
	if (child > 0) {
		int status;

		kill(child, SIGUSR2);
		wl_check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			 "the child forked between rounds found its memory wrong");
	}
	wl_finish();
}
