/* A bump allocator for the many small objects a dump builds (protobuf
 * messages and their arrays); everything is freed at once.
 *
 * A shared arena (arena_share, before its first allocation) takes its
 * blocks from MAP_SHARED anonymous memory: a fork copies no page table
 * entry of it, and a child maps only the pages it reads.  The restore
 * loads every image into one, so that creating a tree of N processes,
 * each a copy of cr, does not cost N times the images of all N.  Sealed,
 * it is read-only (a write would be seen by every process sharing it). */
#ifndef CR_ARENA_H
#define CR_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
	bool shared;
	bool sealed;
};

/* Zeroed memory; aborts the program when memory is exhausted (the dumper
 * cannot continue without it and the target is released by the kernel's
 * ptrace detach on exit). */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void *arena_memdup(struct arena *a, const void *p, size_t size);
void arena_free(struct arena *a);
void arena_share(struct arena *a);
void arena_seal(struct arena *a);

#define arena_new(a, type) ((type *)arena_alloc((a), sizeof(type)))
#define arena_array(a, type, n) ((type *)arena_alloc((a), sizeof(type) * (n)))

#endif
