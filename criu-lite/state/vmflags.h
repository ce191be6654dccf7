/* What a mapping carries beyond its address, protection and kind: the
 * flags /proc/PID/smaps shows in VmFlags (mlock, madvise advice,
 * MAP_NORESERVE, MAP_DROPPABLE, mseal) and its guard regions.  Part of
 * the memory kind (mem.c), which calls these. */
#ifndef CR_VMFLAGS_H
#define CR_VMFLAGS_H

#include "os/error.h"
#include "os/proc.h"
#include "state/task.h"

/* Dump: e->flags, e->growsdown and e->guards from v (read from smaps), or
 * a refusal naming the flag cr cannot bring back.  Special mappings (vdso,
 * vvar) are the kernel's and not looked at. */
int vmflags_dump(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		 cr_error_t *err);

/* Restore: e's flags and guard regions make sense for its kind. */
int vmflags_validate(const struct restore_task *t, size_t i, cr_error_t *err);

/* Restore: the mmap flags that give e some of its flags (MAP_NORESERVE,
 * MAP_DROPPABLE in place of MAP_PRIVATE). */
uint64_t vmflags_mmap_flags(const VmaEntry *e);
/* hugetlb_flag (MAP_HUGETLB, MFD_HUGETLB, SHM_HUGETLB) with the bits that
 * ask for huge pages of page_kb kB. */
uint64_t vmflags_hugetlb_bits(uint32_t page_kb, uint64_t hugetlb_flag);

/* Restore: queues e's madvise advice and guard regions, right after e is
 * mapped. */
void vmflags_queue_advice(struct restore_task *t, const VmaEntry *e);

/* Restore: queues mlock (mlock2) and then mseal of e, once its pages and
 * protection are in place: locking populates, and a sealed mapping takes
 * no more changes. */
void vmflags_queue_locks(struct restore_task *t, const VmaEntry *e);

#endif
