/* Copy-on-write sharing between a process and its parent (state_cow,
 * cow.c).  After fork, a parent and its child share every private page
 * neither has written since; a dump that wrote each process's pages on
 * their own would bring them back as private copies, once per process.
 * The memory kind (mem.c, pagedata.c) maps and fills memory; these are its
 * calls. */
#ifndef CR_COW_H
#define CR_COW_H

#include "os/error.h"
#include "state/task.h"

/* Whether a VMA can share pages with its parent's or a child's: a plain
 * private mapping of anonymous memory (heap included) or of a file. */
bool cow_eligible(const VmaEntry *e);

/* Restore, in the transplant: the address ranges t's cow VMAs are built
 * in, which must stay when cr's own memory goes; at most n into keep.
 * Returns how many. */
size_t cow_keep(const struct restore_task *t, uint64_t (*keep)[2], size_t n);
/* Restore, in the transplant: queues the moves of cow VMA i (mm index)
 * from where it was built to its dumped address. */
void cow_queue_move(struct restore_task *t, size_t i);
/* How many of t's cow VMAs there are (0 when it has none). */
size_t cow_count(const struct restore_task *t);

#endif
