/* Memory: the VMAs of a process and the contents of its pages. */
#ifndef CR_MEM_H
#define CR_MEM_H

#include "os/error.h"
#include "state/task.h"

/* Dump: builds t->mm->vmas from /proc maps, refusing kinds cr cannot restore
 * (the error names pid, range and kind).  Needs no injection. */
int mem_dump_vmas(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Dump: writes pagemap-PID.img and pages-PID.img with every page that holds
 * data the files behind the mappings do not. */
int mem_dump_pages(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);

/* Frees the page buffers of a dump or restore (allocated on first use). */
void mem_page_bufs_free(struct page_bufs *pb);

/* Restore validation: VMAs sorted, aligned, in user space, not
 * overlapping; pagemap entries inside VMAs; special mappings sized as
 * on this kernel. */
int mem_validate(const struct restore_task *t, cr_error_t *err);

/* Restore, by injection into the stopped child, after the calls already
 * in t->batch: removes cr's own mappings (all but the trampoline and the
 * vdso/vvar, which move to their dumped addresses), then creates every
 * dumped VMA at its address.  cr_layout is the restorer's own layout,
 * which the child inherited (it never execs): its special mappings are
 * the child's. */
int mem_restore_layout(struct restore_ctx *ctx, struct restore_task *t, const struct proc_vma_list *cr_layout,
		       cr_error_t *err);
/* Restore: the bytes of page data pagemap-PID.img lists. */
uint64_t mem_page_bytes(const struct restore_task *t);
/* Restore: fills the pages from pages-PID.img, then sets the dumped
 * protections. */
int mem_restore_pages(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);

/* A page-aligned range of len bytes, free of every [start,end) pair in
 * busy (n pairs, any order) with a page to spare on each side, at or
 * above 4 GiB; 0 if there is none. */
uint64_t mem_find_free(const uint64_t (*busy)[2], size_t n, uint64_t len);

#endif
