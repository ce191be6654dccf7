/* /proc/PID/pagemap: one 64-bit entry per page of a process's address
 * space, read by the dump for page data (state/pagedata.c), guard regions
 * (state/vmflags.c) and pages shared with the parent (state/cow.c). */
#ifndef CR_PAGEMAP_H
#define CR_PAGEMAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "os/error.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP    (1ULL << 62)
#define PM_FILE    (1ULL << 61)       /* the page cache's or shared: not a private copy */
#define PM_GUARD   (1ULL << 58)       /* a guard region's page (a swap-like marker, no data) */
#define PM_FRAME   ((1ULL << 55) - 1) /* the page frame, or swap type and offset */
#define PM_SWAP_TYPE(e) ((e) & 0x1f)  /* of a swap-like entry (PM_SWAP) */
/* The swap type of a pte marker (SWP_PTE_MARKER, the last of 32): a
 * page that holds no data, only a mark (userfaultfd write-protect of a
 * page not there, a guard page). */
#define PM_SWAP_TYPE_MARKER 31
#define PAGEMAP_BATCH 65536           /* entries a caller reads at once, at most */

/* --- PAGEMAP_SCAN (linux/fs.h, Linux 6.7) and asynchronous write-protect
 * (linux/userfaultfd.h, Linux 6.4 and 6.7), newer than Debian 12's uapi
 * headers: the values are the kernel's. */
struct pm_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN_IOC         _IOWR('f', 16, struct pm_scan_arg)
#define PM_SCAN_WP_MATCHING_F    (1ULL << 0)
#define PM_SCAN_CHECK_WPASYNC_F  (1ULL << 1)
#define PAGE_IS_WPALLOWED_C      (1ULL << 0)
#define PAGE_IS_WRITTEN_C        (1ULL << 1)
#define PAGE_IS_FILE_C           (1ULL << 2)
#define PAGE_IS_PRESENT_C        (1ULL << 3)
#define PAGE_IS_SWAPPED_C        (1ULL << 4)
#define PAGE_IS_PFNZERO_C        (1ULL << 5)
#define PAGE_IS_HUGE_C           (1ULL << 6)
#define UFFD_FEATURE_WP_UNPOPULATED_F (1ULL << 13)
#define UFFD_FEATURE_WP_ASYNC_F       (1ULL << 15)

/* PAGEMAP_SCAN of [start, end) on fd (a /proc/PID/pagemap): the regions
 * with every category of all and any of anyof, in vec (n of them at
 * most), their categories masked by ret; *walk_end (if not NULL): where
 * the walk stopped.  The number of regions, or -1 with errno. */
long pagemap_scan(int fd, uint64_t start, uint64_t end, uint64_t flags, uint64_t all, uint64_t anyof, uint64_t ret,
		  struct pm_region *vec, size_t n, uint64_t *walk_end);

/* The same, for the regions that have none of the categories of none
 * (category_inverted and category_mask both none). */
long pagemap_scan_without(int fd, uint64_t start, uint64_t end, uint64_t none, uint64_t anyof, struct pm_region *vec,
			  size_t n, uint64_t *walk_end);
/* Whether a pagemap entry is a pte marker: no page, no data. */
static inline int pagemap_is_marker(uint64_t e)
{
	return (e & (PM_PRESENT | PM_SWAP)) == PM_SWAP && PM_SWAP_TYPE(e) == PM_SWAP_TYPE_MARKER;
}

/* Opens /proc/PID/pagemap into *fd. */
int pagemap_open(pid_t pid, int *fd, cr_error_t *err);
/* The n entries of the pages from addr on into buf. */
int pagemap_read(int fd, pid_t pid, uint64_t *buf, uint64_t addr, size_t n, cr_error_t *err);

#endif
