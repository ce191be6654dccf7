/* Page data: the contents of a process's memory (pagemap-PID.img and
 * pages-PID.img).  Part of the memory kind (mem.c), which calls these. */
#ifndef CR_PAGEDATA_H
#define CR_PAGEDATA_H

#include "os/error.h"
#include "state/task.h"

/* Dump: writes pagemap-PID.img, pages-PID.img and early-pages-PID.img with
 * every page that holds data the files behind the mappings do not; a page
 * shared with the parent (cow.c: t->in_parent) has an entry and no bytes. */
int pagedata_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Pre-dump: t->mm gets an entry for each mapping whose writes are tracked
 * (state/track.h), enough to choose its pages; the others are copied by
 * the final dump. */
void pagedata_layout(struct dump_ctx *ctx, struct dump_task *t);
/* Restore: the bytes of page data pagemap-PID.img lists in
 * early-pages-PID.img (early: the cow VMAs', cow.c) or in pages-PID.img. */
uint64_t pagedata_bytes(const struct restore_task *t, bool early);
/* Restore: writes every page of pages-PID.img into the process, whose
 * VMAs must exist and be writable where pages go (those of cow VMAs are
 * there already). */
int pagedata_restore(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err);
/* Dump: the page buffers are allocated (and their pages faulted in) now,
 * before the tree is frozen, instead of at the first copy. */
void pagedata_bufs_prepare(struct dump_ctx *ctx);
/* Frees the page buffers of a dump or restore (allocated on first use). */
void pagedata_bufs_free(struct page_bufs *pb);

#endif
