/* A bump allocator for the many small objects a dump builds (protobuf
 * messages and their arrays); everything is freed at once. */
#ifndef CR_ARENA_H
#define CR_ARENA_H

#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
};

/* Zeroed memory; aborts the program when memory is exhausted (the dumper
 * cannot continue without it and the target is released by the kernel's
 * ptrace detach on exit). */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
void *arena_memdup(struct arena *a, const void *p, size_t size);
void arena_free(struct arena *a);

#define arena_new(a, type) ((type *)arena_alloc((a), sizeof(type)))
#define arena_array(a, type, n) ((type *)arena_alloc((a), sizeof(type) * (n)))

#endif
