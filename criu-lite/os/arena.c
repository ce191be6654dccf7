#include "os/arena.h"
#include "os/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (64 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

static struct arena_block *new_block(size_t want)
{
	size_t size = want > ARENA_BLOCK ? want : ARENA_BLOCK;
	struct arena_block *b = xcalloc(1, sizeof(*b) + size);

	b->size = size;
	return b;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b = a->head;
	size_t aligned = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	void *p;

	if (b == NULL || b->size - b->used < aligned) {
		b = new_block(aligned);
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

	memcpy(d, p, size);
	return d;
}

void arena_free(struct arena *a)
{
	while (a->head != NULL) {
		struct arena_block *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}
