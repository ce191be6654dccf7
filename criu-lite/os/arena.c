#include "os/arena.h"
#include "os/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ARENA_BLOCK (64 * 1024)
#define SHARED_BLOCK_MIN (1u << 20)
#define SHARED_BLOCK_MAX (16u << 20)

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

/* Shared blocks double up to SHARED_BLOCK_MAX: few mappings for many
 * images. */
static struct arena_block *new_shared_block(const struct arena *a, size_t want)
{
	size_t size = a->head ? a->head->size * 2 : SHARED_BLOCK_MIN;
	struct arena_block *b;

	if (size > SHARED_BLOCK_MAX)
		size = SHARED_BLOCK_MAX;
	if (size < want + sizeof(*b))
		size = (want + sizeof(*b) + 4095) & ~(size_t)4095;
	b = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b == MAP_FAILED)
		xalloc_failed(size);
	b->size = size - sizeof(*b);
	return b;
}

static struct arena_block *new_block(const struct arena *a, size_t want)
{
	size_t size = want > ARENA_BLOCK ? want : ARENA_BLOCK;
	struct arena_block *b;

	if (a->shared)
		return new_shared_block(a, want);
	b = xcalloc(1, sizeof(*b) + size);
	b->size = size;
	return b;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head;
	size_t aligned = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (a->sealed)
		abort();   /* a bug: nothing is allocated once the arena is read-only */
	if (b == NULL || b->size - b->used < aligned) {
		b = new_block(a, aligned);
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += aligned;
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s) + 1);
}

void *arena_memdup(struct arena *a, const void *p, size_t size)
{
	void *d = arena_alloc(a, size ? size : 1);

	if (size)   /* p may be NULL then (an empty image's messages) */
		memcpy(d, p, size);
	return d;
}

void arena_free(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_block *next = a->head->next;

		if (a->shared)
			munmap(a->head, a->head->size + sizeof(*a->head));
		else
			free(a->head);
		a->head = next;
	}
	a->sealed = false;
}

void arena_share(struct arena *a)
{
	a->shared = true;
}

void arena_seal(struct arena *a)
{
	for (struct arena_block *b = a->head; b != NULL && a->shared; b = b->next)
		mprotect(b, b->size + sizeof(*b), PROT_READ);
	a->sealed = true;
}
