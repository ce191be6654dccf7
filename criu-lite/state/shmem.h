/* Shared anonymous memory (state_shmem, shmem.c): the objects behind
 * MAP_SHARED|MAP_ANONYMOUS mappings, one for all the processes that map
 * them.  The memory kind (mem.c) finds the mappings and maps them again;
 * these are its calls. */
#ifndef CR_SHMEM_H
#define CR_SHMEM_H

#include "os/error.h"
#include "os/proc.h"
#include "state/task.h"

/* Dump, in the memory kind's collect: e (v in /proc/PID/maps, "/dev/zero
 * (deleted)", shared) maps the object with v's inode: records it, once
 * for all its mappings in every process, and sets e->shmem_id. */
void shmem_dump_vma(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e);

/* Restore, in the transplant of a process that maps object id: its fd
 * there (inherited from the process that created it). */
int shmem_fd(const struct restore_ctx *ctx, uint32_t id);

/* Restore: the bytes of data of every object (for the progress line). */
uint64_t shmem_bytes(const struct restore_ctx *ctx);
/* Fills every object with its data from the images, once, by the
 * restorer, through its creator's fd; before any transplant goes beyond
 * memory. */
int shmem_fill(struct restore_ctx *ctx, cr_error_t *err);

#endif
