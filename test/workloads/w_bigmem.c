/*
 * w_bigmem STATE_DIR MIB [random|text]
 *
 * For `make bench`: holds MIB MiB of anonymous memory, incompressible
 * (xorshift) or text-like (compressible), and its checksum. When triggered
 * it checks the memory against the checksum, so a benchmark round that
 * restored garbage fails.
 */
#include "wl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t checksum(const uint64_t *p, size_t words)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < words; i++)
		sum = (sum ^ p[i]) * 0x100000001b3ULL;
	return sum;
}

static void fill(uint64_t *p, size_t words, bool text)
{
	static const char line[] = "the quick brown fox jumps over the lazy dog 0123456789\n";
	uint64_t seed = wl_seed(1);

	if (text) {
		char *c = (char *)p;

		for (size_t i = 0; i < words * 8; i++)
			c[i] = line[(i + i / 4096) % (sizeof(line) - 1)];
		return;
	}
	for (size_t i = 0; i < words; i++)
		p[i] = wl_xorshift(&seed);
}

int main(int argc, char **argv)
{
	size_t bytes, words;
	uint64_t *mem, sum;

	wl_init(argc, argv);
	if (argc < 3)
		wl_fatal("usage: w_bigmem DIR MIB [random|text]");
	bytes = (size_t)atol(argv[2]) << 20;
	words = bytes / 8;
	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_fatal("mmap %zu bytes", bytes);
	fill(mem, words, argc > 3 && strcmp(argv[3], "text") == 0);
	sum = checksum(mem, words);
	wl_ready();
	wl_wait_trigger();
	wl_check(checksum(mem, words) == sum, "memory differs from its checksum");
	wl_finish();
}
