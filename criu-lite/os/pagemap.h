/* /proc/PID/pagemap: one 64-bit entry per page of a process's address
 * space, read by the dump for page data (state/pagedata.c), guard regions
 * (state/vmflags.c) and pages shared with the parent (state/cow.c). */
#ifndef CR_PAGEMAP_H
#define CR_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "os/error.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP    (1ULL << 62)
#define PM_FILE    (1ULL << 61)       /* the page cache's or shared: not a private copy */
#define PM_GUARD   (1ULL << 58)       /* a guard region's page (a swap-like marker, no data) */
#define PM_FRAME   ((1ULL << 55) - 1) /* the page frame, or swap type and offset */
#define PAGEMAP_BATCH 65536           /* entries a caller reads at once, at most */

/* Opens /proc/PID/pagemap into *fd. */
int pagemap_open(pid_t pid, int *fd, cr_error_t *err);
/* The n entries of the pages from addr on into buf. */
int pagemap_read(int fd, pid_t pid, uint64_t *buf, uint64_t addr, size_t n, cr_error_t *err);

#endif
