/*
 * w_bigmem STATE_DIR MIB [random|text|mixed]
 *
 * For `make bench`: holds MIB MiB of anonymous memory, incompressible
 * (xorshift) or text-like (compressible), and its checksum. When triggered
 * it checks the memory against the checksum, so a benchmark round that
 * restored garbage fails.
 *
 * mixed (t_pages): the MIB MiB, random, are five mappings that a restore
 * fills in different ways: plain read-write, read-only once filled,
 * madvise(MADV_HUGEPAGE), every other page touched (the rest never), and
 * a private mapping of a file in STATE_DIR written all over.
 *
 * If STATE_DIR/scribble exists when triggered, the process overwrites all
 * its memory instead of checking it, passes and exits: a dump taken
 * before (--leave-running) must keep the old bytes (t_pages).
 */
#include "wl.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u
#define PARTS 5

struct part {
	unsigned char *p;
	size_t len;
	bool holes;   /* every other page only */
};

static struct part parts[PARTS];
static size_t n_parts;

static uint64_t checksum(void)
{
	uint64_t sum = 0;

	for (size_t k = 0; k < n_parts; k++) {
		const uint64_t *w = (const uint64_t *)parts[k].p;

		for (size_t i = 0; i < parts[k].len / 8; i++)
			sum = (sum ^ w[i]) * 0x100000001b3ULL;
	}
	return sum;
}

static void fill(struct part *pt, bool text, uint64_t *seed)
{
	static const char line[] = "the quick brown fox jumps over the lazy dog 0123456789\n";

	for (size_t off = 0; off < pt->len; off += PAGE) {
		if (pt->holes && (off / PAGE) % 2)
			continue;
		for (size_t i = 0; i < PAGE; i += 8) {
			if (text) {
				for (size_t j = 0; j < 8; j++)
					pt->p[off + i + j] = (unsigned char)line[(off + i + j + (off + i) / 4096) %
										 (sizeof(line) - 1)];
			} else {
				uint64_t v = wl_xorshift(seed);

				memcpy(pt->p + off + i, &v, 8);
			}
		}
	}
}

static unsigned char *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fatal("mmap %zu bytes", len);
	return p;
}

static unsigned char *map_file(size_t len)
{
	char path[4096];
	int fd;
	void *p;

	wl_path(path, sizeof(path), "backing");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)len) < 0)
		wl_fatal("create %s", path);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		wl_fatal("mmap %s", path);
	close(fd);
	return p;
}

static void layout(size_t bytes, bool mixed)
{
	size_t each = bytes / PARTS / PAGE * PAGE;

	if (!mixed) {
		parts[n_parts++] = (struct part){ .p = map_anon(bytes), .len = bytes };
		return;
	}
	parts[n_parts++] = (struct part){ .p = map_anon(each), .len = each };
	parts[n_parts++] = (struct part){ .p = map_anon(each), .len = each };   /* read-only below */
	parts[n_parts] = (struct part){ .p = map_anon(each), .len = each };
	if (madvise(parts[n_parts++].p, each, MADV_HUGEPAGE) < 0)
		wl_fatal("madvise MADV_HUGEPAGE");
	parts[n_parts++] = (struct part){ .p = map_anon(each), .len = each, .holes = true };
	parts[n_parts++] = (struct part){ .p = map_file(each), .len = each };
}

/* Every page that held data gets other bytes. */
static void scribble(void)
{
	mprotect(parts[n_parts > 1 ? 1 : 0].p, parts[n_parts > 1 ? 1 : 0].len, PROT_READ | PROT_WRITE);
	for (size_t k = 0; k < n_parts; k++)
		for (size_t off = 0; off < parts[k].len; off += PAGE)
			if (!parts[k].holes || (off / PAGE) % 2 == 0)
				memset(parts[k].p + off, 0x5a, PAGE);
}

int main(int argc, char **argv)
{
	const char *how = argc > 3 ? argv[3] : "random";
	bool mixed = strcmp(how, "mixed") == 0;
	uint64_t sum, seed;
	char path[4096];

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_bigmem DIR MIB [random|text|mixed]");
	seed = wl_seed(1);
	layout((size_t)atol(argv[2]) << 20, mixed);
	for (size_t k = 0; k < n_parts; k++)
		fill(&parts[k], strcmp(how, "text") == 0, &seed);
	if (mixed && mprotect(parts[1].p, parts[1].len, PROT_READ) < 0)
		wl_fatal("mprotect PROT_READ");
	sum = checksum();
	wl_ready();
	wl_wait_trigger();
	wl_path(path, sizeof(path), "scribble");
	if (access(path, F_OK) == 0) {
		scribble();
		unlink(path);
		wl_finish();
	}
	wl_check(checksum() == sum, "memory differs from its checksum");
	wl_finish();
}
