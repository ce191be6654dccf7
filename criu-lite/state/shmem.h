/* Memory objects (state_shmem, shmem.c): the objects behind shared
 * anonymous mappings, memfd and System V mappings and mappings of deleted
 * files, one for all the processes that map them (and the fds on them).
 * The memory kind (mem.c) finds the mappings and maps them again; these
 * are its calls. */
#ifndef CR_SHMEM_H
#define CR_SHMEM_H

#include "os/error.h"
#include "os/proc.h"
#include "state/task.h"

/* Dump, in the memory kind's collect: e (v in /proc/PID/maps: "/dev/zero
 * (deleted)", a memfd, a System V segment, a deleted file; shared or
 * private) maps the object with v's inode, of source (a ShmemSource, 0 for
 * shared anonymous memory): records it, once for all its mappings in every
 * process, and sets e->shmem_id. */
void shmem_dump_vma(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		    int source);

/* Restore, in the transplant of a process that maps object id: its fd
 * there (inherited from the process that created it). */
int shmem_fd(const struct restore_ctx *ctx, uint32_t id);

/* Restore: the System V segment object id is attached from (its id now),
 * or -1 when the object is no segment. */
int shmem_sysv_id(const struct restore_ctx *ctx, uint32_t id);

/* Restore, by the restorer before the first transplant maps anything
 * (transplant.c, before it forks a second transplanter; mem.c): fills
 * every object (the creators hold them, waiting; nothing runs yet), then
 * seals the memfds, whose seals may forbid the mappings' writable fds. */
int shmem_fill(struct restore_ctx *ctx, cr_error_t *err);

/* Restore, once every process is transplanted (attached to its segments):
 * the System V segments made anew are removed again, as they were. */
void shmem_transplanted(struct restore_ctx *ctx);

/* Restore: the bytes of data of every object (for the progress line). */
uint64_t shmem_bytes(const struct restore_ctx *ctx);

#endif
