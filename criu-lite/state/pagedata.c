/* Page data: the contents of a process's memory that neither the kernel
 * nor a file holds, in pagemap-PID.img (which runs of pages) and
 * pages-PID.img (their bytes, see img/pages.h).
 *
 * Dump: pagemap says which pages of each VMA are present or swapped; they
 * are read out of the process with process_vm_readv (or /proc/PID/mem for
 * pages it cannot read) in 1 MiB batches, while the image's own thread
 * writes the batch before.  Restore: batches are read ahead by the image's
 * thread while the main thread writes the one before into the process:
 * into its private anonymous VMAs with UFFDIO_COPY through a userfaultfd
 * of the process, which puts new pages in place already filled, elsewhere
 * (or if that fails) with process_vm_writev, which faults each page in
 * zeroed first.  The buffers are allocated once for a whole run. */
#include "state/pagedata.h"
#include "img/image.h"
#include "img/pages.h"
#include "fd/fdkind.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/pagemap.h"
#include "os/progress.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "os/supervise.h"
#include "state/track.h"
#include "restore/chain.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define COPY_BATCH    (1u << 20)       /* bytes of page data moved at once */
#define N_BUFS        3                /* batch buffers in flight */

/* ------------------------------------------------------------------ dump */

enum page_policy {
	PAGES_NONE,          /* contents come from the kernel or the file */
	PAGES_ANON,          /* every present or swapped page */
	PAGES_PRIVATE_FILE,  /* pages written since mapping (now anonymous) */
};


static enum page_policy vma_policy(const VmaEntry *e)
{
	if (e->has_aio_nr_req)
		return PAGES_NONE;   /* an aio ring: its events are in its entry (aio.c) */
	if (e->has_shmem_id)   /* in its object's own image (shmem.c), but the pages a private one wrote */
		return e->shared ? PAGES_NONE : PAGES_PRIVATE_FILE;
	switch (e->kind) {
	case VMA_KIND__VMA_VDSO:
	case VMA_KIND__VMA_VVAR:
	case VMA_KIND__VMA_VVAR_VCLOCK:
		return PAGES_NONE;
	case VMA_KIND__VMA_FILE:
		return e->shared ? PAGES_NONE : PAGES_PRIVATE_FILE;
	default:
		return PAGES_ANON;
	}
}

static bool page_wanted(enum page_policy p, uint64_t pm)
{
	if ((pm & PM_GUARD) || pagemap_is_marker(pm))
		return false;   /* the VMA's guard regions (vmflags.c), write tracking's marks (track.h) */
	if (p == PAGES_ANON)
		return (pm & (PM_PRESENT | PM_SWAP)) != 0;
	if (p == PAGES_PRIVATE_FILE)
		return (pm & PM_SWAP) || ((pm & PM_PRESENT) && !(pm & PM_FILE));
	return false;
}

/* Allocated once for all the processes of a run: on a VM each new mapping
 * costs page tables, which made small processes pay for big buffers. */
struct page_bufs {
	char *buf[N_BUFS];
	uint64_t *pagemap;     /* dump only: PAGEMAP_BATCH entries */
};

void pagedata_bufs_free(struct page_bufs *pb)
{
	if (pb == NULL)
		return;
	for (int i = 0; i < N_BUFS; i++)
		xfree_populated(pb->buf[i], COPY_BATCH);
	free(pb->pagemap);
	free(pb);
}

static struct page_bufs *page_bufs_get(struct page_bufs **slot, bool pagemap)
{
	struct page_bufs *pb = *slot;

	if (pb == NULL)
		pb = *slot = xcalloc(1, sizeof(*pb));
	for (int i = 0; i < N_BUFS; i++)
		if (pb->buf[i] == NULL)   /* page-aligned: UFFDIO_COPY's source */
			pb->buf[i] = xalloc_populated(COPY_BATCH);
	if (pagemap && pb->pagemap == NULL)
		pb->pagemap = xmalloc(PAGEMAP_BATCH * 8);
	return pb;
}

void pagedata_bufs_prepare(struct dump_ctx *ctx)
{
	page_bufs_get(&ctx->page_bufs, true);
}

struct page_dumper {
	pid_t pid;
	int pagemap_fd, mem_fd;
	struct cr_pages_writer *late, *early;   /* pages-PID.img, early-pages-PID.img */
	struct cr_pages_writer *pages;          /* the one the batch goes to */
	struct cr_img *pagemap_img;
	const uint64_t (*in_parent)[2];         /* the task's, by address (cow.c) */
	size_t n_in_parent, next_in_parent;
	const struct dump_task *t;              /* its tracked and dirty runs (track.h) */
	size_t next_tracked, next_dirty;
	bool lenient;          /* pre-dump: the tree runs; a page gone meanwhile reads as zeros */
	uint64_t copied, in_prev;               /* pages */
	char **bufs;           /* N_BUFS, read into in turn while the image's thread */
	uint64_t marks[N_BUFS];/* writes out the others; their marks when handed over, */
	struct cr_img *marked[N_BUFS];   /* in the image of the writer they went to */
	int cur;               /* bufs[cur]: the batch being gathered */
	size_t used;
	struct iovec remote[IOV_MAX];
	int n_remote;
	bool via_mem;          /* batch must be read through /proc/PID/mem */
	uint64_t run_start, run_pages;
	uint64_t *pm;          /* pagemap entries of the current window */
};

static int read_batch(struct page_dumper *d, cr_error_t *err)
{
	char *buf = d->bufs[d->cur];
	struct iovec local = { .iov_base = buf, .iov_len = d->used };
	size_t off = 0;

	if (!d->via_mem) {
		ssize_t n = process_vm_readv(d->pid, &local, 1, d->remote, (unsigned long)d->n_remote, 0);

		if (n == (ssize_t)d->used)
			return 0;
		/* Fall back page by page through /proc/PID/mem below. */
	}
	for (int i = 0; i < d->n_remote; i++) {
		const struct iovec *r = &d->remote[i];
		ssize_t n = pread(d->mem_fd, buf + off, r->iov_len, (off_t)(uintptr_t)r->iov_base);

		if (n != (ssize_t)r->iov_len && d->lenient) {
			/* Unmapped since the freeze: the next round finds the change. */
			memset(buf + off, 0, r->iov_len);
			n = (ssize_t)r->iov_len;
		}
		if (n != (ssize_t)r->iov_len)
			return cr_error(err, n < 0 ? errno : EIO, "pid %d: read memory at %p (%zu bytes)",
					d->pid, r->iov_base, r->iov_len);
		off += r->iov_len;
	}
	return 0;
}

static int flush_batch(struct page_dumper *d, cr_error_t *err)
{
	if (cr_should_stop())
		return cr_error(err, EINTR, "interrupted");
	if (d->used == 0)
		return 0;
	if (read_batch(d, err) < 0)
		return -1;
	/* A full batch means much data: worth the threads from now on. */
	if (d->used == COPY_BATCH)
		cr_img_async(cr_pages_writer_img(d->pages));
	if (cr_pages_write(d->pages, d->bufs[d->cur], d->used, err) < 0)
		return -1;
	d->marked[d->cur] = cr_pages_writer_img(d->pages);
	d->marks[d->cur] = cr_img_mark(d->marked[d->cur]);
	d->cur = (d->cur + 1) % N_BUFS;
	if (d->marked[d->cur] != NULL && cr_img_wait(d->marked[d->cur], d->marks[d->cur], err) < 0)
		return -1;
	progress_add(d->used);
	d->used = 0;
	d->n_remote = 0;
	return 0;
}

static int emit_run(struct page_dumper *d, cr_error_t *err)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (d->run_pages == 0)
		return 0;
	pe.vaddr = d->run_start;
	pe.nr_pages = (uint32_t)d->run_pages;
	d->run_pages = 0;
	return cr_img_write_msg(d->pagemap_img, &pe.base, err);
}

/* Pages without bytes (in runs that fit an entry): the parent's, shared,
 * or (prev) the round before's, unchanged. */
static int emit_without_bytes(struct page_dumper *d, uint64_t addr, uint64_t npages, bool prev, cr_error_t *err)
{
	PagemapEntry pe = PAGEMAP_ENTRY__INIT;

	if (emit_run(d, err) < 0)
		return -1;
	if (prev)
		pe.has_in_prev = pe.in_prev = true;
	else
		pe.has_in_parent = pe.in_parent = true;
	if (prev)
		d->in_prev += npages;
	while (npages > 0) {
		pe.vaddr = addr;
		pe.nr_pages = npages > UINT32_MAX ? UINT32_MAX : (uint32_t)npages;
		if (cr_img_write_msg(d->pagemap_img, &pe.base, err) < 0)
			return -1;
		addr += (uint64_t)pe.nr_pages * PAGE_SIZE_CR;
		npages -= pe.nr_pages;
	}
	return 0;
}

/* Switches the batch to the writer of a VMA's pages. */
static int use_writer(struct page_dumper *d, struct cr_pages_writer *w, cr_error_t *err)
{
	if (d->pages == w)
		return 0;
	if (emit_run(d, err) < 0 || flush_batch(d, err) < 0)
		return -1;
	d->pages = w;
	return 0;
}

static int add_pages(struct page_dumper *d, uint64_t addr, uint64_t npages, bool via_mem, cr_error_t *err)
{
	if (d->run_pages && (d->run_start + d->run_pages * PAGE_SIZE_CR != addr ||
			     d->run_pages + npages > UINT32_MAX)) {
		if (emit_run(d, err) < 0)
			return -1;
	}
	if (d->run_pages == 0)
		d->run_start = addr;
	d->run_pages += npages;
	d->copied += npages;

	if (d->used && via_mem != d->via_mem && flush_batch(d, err) < 0)
		return -1;
	d->via_mem = via_mem;
	while (npages > 0) {
		uint64_t room = (COPY_BATCH - d->used) / PAGE_SIZE_CR;
		uint64_t take = npages < room ? npages : room;
		struct iovec *last = d->n_remote ? &d->remote[d->n_remote - 1] : NULL;

		if (last && (uint64_t)(uintptr_t)last->iov_base + last->iov_len == addr) {
			last->iov_len += take * PAGE_SIZE_CR;
		} else {
			d->remote[d->n_remote].iov_base = (void *)(uintptr_t)addr;
			d->remote[d->n_remote].iov_len = take * PAGE_SIZE_CR;
			d->n_remote++;
		}
		d->used += take * PAGE_SIZE_CR;
		addr += take * PAGE_SIZE_CR;
		npages -= take;
		if ((d->used == COPY_BATCH || d->n_remote == IOV_MAX) && flush_batch(d, err) < 0)
			return -1;
	}
	return 0;
}

/* How many pages from addr on (at most n) lie, or do not lie, in the
 * first run of runs at or after *next that ends above addr. */
static uint64_t runs_span(const uint64_t (*runs)[2], size_t n_runs, size_t *next, uint64_t addr, uint64_t n,
			  bool *inside)
{
	uint64_t end = addr + n * PAGE_SIZE_CR;

	while (*next < n_runs && runs[*next][1] <= addr)
		(*next)++;
	if (*next == n_runs || runs[*next][0] >= end) {
		*inside = false;
		return n;
	}
	if (runs[*next][0] > addr) {
		*inside = false;
		return (runs[*next][0] - addr) / PAGE_SIZE_CR;
	}
	*inside = true;
	end = runs[*next][1] < end ? runs[*next][1] : end;
	return (end - addr) / PAGE_SIZE_CR;
}

/* Pages that are not the parent's: with bytes, or, where the round before
 * holds them unchanged (pre-copy), without.  Pages built before the
 * children exist (early) always have bytes. */
static int add_own(struct page_dumper *d, uint64_t addr, uint64_t npages, bool via_mem, cr_error_t *err)
{
	const struct dump_task *t = d->t;

	while (npages > 0) {
		bool tracked, dirty = true;
		uint64_t k = d->pages == d->early ? npages :
			runs_span((const uint64_t (*)[2])t->tracked, t->n_tracked, &d->next_tracked, addr, npages,
				  &tracked);

		if (d->pages == d->early)
			tracked = false;
		if (tracked)
			k = runs_span((const uint64_t (*)[2])t->dirty, t->n_dirty, &d->next_dirty, addr, k, &dirty);
		if ((tracked && !dirty ? emit_without_bytes(d, addr, k, true, err) :
					 add_pages(d, addr, k, via_mem, err)) < 0)
			return -1;
		addr += k * PAGE_SIZE_CR;
		npages -= k;
	}
	return 0;
}

/* Wanted pages: with bytes, or, where they are the parent's, without. */
static int add_wanted(struct page_dumper *d, uint64_t addr, uint64_t npages, bool via_mem, cr_error_t *err)
{
	while (npages > 0) {
		bool parents;
		uint64_t k = runs_span(d->in_parent, d->n_in_parent, &d->next_in_parent, addr, npages, &parents);

		if ((parents ? emit_without_bytes(d, addr, k, false, err) : add_own(d, addr, k, via_mem, err)) < 0)
			return -1;
		addr += k * PAGE_SIZE_CR;
		npages -= k;
	}
	return 0;
}

/* The wanted pages of [start, end), from the pagemap entry by entry. */
static int wanted_by_pagemap(struct page_dumper *d, uint64_t start, uint64_t end, enum page_policy policy,
			     bool via_mem, cr_error_t *err)
{
	for (uint64_t win = start; win < end; win += PAGEMAP_BATCH * PAGE_SIZE_CR) {
		uint64_t n = (end - win) / PAGE_SIZE_CR;

		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		if (pagemap_read(d->pagemap_fd, d->pid, d->pm, win, (size_t)n, err) < 0)
			return -1;
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;

			while (j < n && page_wanted(policy, d->pm[j]))
				j++;
			if (j > i && add_wanted(d, win + i * PAGE_SIZE_CR, j - i, via_mem, err) < 0)
				return -1;
			i = j + 1;
		}
	}
	return 0;
}

/* The same in runs, by PAGEMAP_SCAN (a large VMA's pagemap is megabytes):
 * present or swapped, and, for a private file mapping, not the file's.
 * 0 when the kernel has no PAGEMAP_SCAN (*scanned false). */
static int wanted_by_scan(struct page_dumper *d, const VmaEntry *e, enum page_policy policy, bool via_mem,
			  bool *scanned, cr_error_t *err)
{
	struct pm_region vec[256];
	uint64_t none = policy == PAGES_PRIVATE_FILE ? PAGE_IS_FILE_C : 0, at = e->start;

	*scanned = false;
	while (at < e->end) {
		uint64_t walk_end = 0;
		long n = pagemap_scan_without(d->pagemap_fd, at, e->end, none, PAGE_IS_PRESENT_C | PAGE_IS_SWAPPED_C,
					      vec, sizeof(vec) / sizeof(vec[0]), &walk_end);

		if (n < 0 && at == e->start && (errno == ENOTTY || errno == EINVAL))
			return 0;
		if (n < 0 || walk_end <= at || walk_end > e->end)
			return cr_error(err, n < 0 ? errno : EIO, "pid %d: PAGEMAP_SCAN of 0x%llx-0x%llx", d->pid,
					(unsigned long long)at, (unsigned long long)e->end);
		*scanned = true;
		for (long i = 0; i < n; i++) {
			/* Swapped, or a pte marker (which the scan does not tell
			 * apart): the pagemap says which. */
			int r = vec[i].categories & PAGE_IS_PRESENT_C ?
					add_wanted(d, vec[i].start, (vec[i].end - vec[i].start) / PAGE_SIZE_CR, via_mem,
						   err) :
					wanted_by_pagemap(d, vec[i].start, vec[i].end, policy, via_mem, err);

			if (r < 0)
				return -1;
		}
		at = walk_end;
	}
	return 0;
}

static int dump_vma_pages(struct page_dumper *d, const VmaEntry *e, cr_error_t *err)
{
	enum page_policy policy = vma_policy(e);
	bool via_mem = !(e->prot & PROT_READ), scanned = false;

	if (policy == PAGES_NONE)
		return 0;
	if (use_writer(d, e->has_cow && e->cow ? d->early : d->late, err) < 0)
		return -1;
	/* Guard regions are markers the scan may count as swapped: by entry. */
	if (e->n_guards == 0 && wanted_by_scan(d, e, policy, via_mem, &scanned, err) < 0)
		return -1;
	if (!scanned && wanted_by_pagemap(d, e->start, e->end, policy, via_mem, err) < 0)
		return -1;
	return emit_run(d, err);   /* runs never span two VMAs */
}

void pagedata_layout(struct dump_ctx *ctx, struct dump_task *t)
{
	MmEntry *mm = t->mm;

	mm->vmas = arena_array(&ctx->arena, VmaEntry *, t->vmas.n);
	mm->n_vmas = 0;
	for (size_t i = 0; i < t->vmas.n; i++) {
		const struct proc_vma *v = &t->vmas.v[i];
		VmaEntry *e;

		if (!track_trackable(v))
			continue;
		e = arena_new(&ctx->arena, VmaEntry);
		vma_entry__init(e);
		e->start = v->start;
		e->end = v->end;
		e->prot = v->prot;
		e->kind = v->path == NULL || v->special != VMA_SPECIAL_NONE || strcmp(v->path, "/dev/zero") == 0 ?
				  VMA_KIND__VMA_ANON : VMA_KIND__VMA_FILE;
		mm->vmas[mm->n_vmas++] = e;
	}
}

static int open_proc_file(pid_t pid, const char *name, int *fd, cr_error_t *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return cr_error(err, errno, "open %s", path);
	return 0;
}

static int dump_all_pages(struct dump_ctx *ctx, struct dump_task *t, struct page_dumper *d, cr_error_t *err)
{
	char name[IMG_NAME_MAX];

	if (cr_img_create(ctx->dirfd, img_name(name, CR_IMG_PAGEMAP, t->pid), CR_IMG_PAGEMAP, &d->pagemap_img,
			  err) < 0)
		return -1;
	if (cr_pages_writer_open(ctx->dirfd, img_name(name, CR_IMG_PAGES, t->pid), ctx->opts->compress,
				 &d->late, err) < 0 ||
	    cr_pages_writer_open_as(ctx->dirfd, img_name(name, CR_IMG_EARLY_PAGES, t->pid), CR_IMG_EARLY_PAGES,
				    ctx->opts->compress, &d->early, err) < 0)
		return -1;
	d->pages = d->late;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		if (dump_vma_pages(d, t->mm->vmas[i], err) < 0)
			return -1;
	}
	if (flush_batch(d, err) < 0)
		return -1;
	pr_info("pid %d: %llu KiB of pages, %llu KiB more built before its children exist", t->pid,
		(unsigned long long)(cr_pages_written(d->late) >> 10),
		(unsigned long long)(cr_pages_written(d->early) >> 10));
	if (cr_pages_writer_finish(steal_pointer(&d->late), err) < 0 ||
	    cr_pages_writer_finish(steal_pointer(&d->early), err) < 0)
		return -1;
	return cr_img_finish(steal_pointer(&d->pagemap_img), err);
}

int pagedata_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct page_dumper d = { .pid = t->pid, .pagemap_fd = -1, .mem_fd = -1, .t = t,
				 .in_parent = (const uint64_t (*)[2])t->in_parent, .n_in_parent = t->n_in_parent,
				 .lenient = ctx->opts->pre_dump };
	struct page_bufs *pb = page_bufs_get(&ctx->page_bufs, true);
	int ret = -1;

	d.bufs = pb->buf;
	d.pm = pb->pagemap;
	if (pagemap_open(t->pid, &d.pagemap_fd, err) < 0 ||
	    open_proc_file(t->pid, "mem", &d.mem_fd, err) < 0)
		goto out;
	ret = dump_all_pages(ctx, t, &d, err);
	t->pages_copied = d.copied;
	ctx->pages_copied += d.copied;
	ctx->pages_in_prev += d.in_prev;
out:
	if (d.late)
		cr_pages_writer_abort(d.late);
	if (d.early)
		cr_pages_writer_abort(d.early);
	if (d.pagemap_img)
		cr_img_abort(d.pagemap_img);
	if (d.pagemap_fd >= 0)
		close(d.pagemap_fd);
	if (d.mem_fd >= 0)
		close(d.mem_fd);
	if (ret < 0)
		cr_error_wrap(err, "dump memory of pid %d", t->pid);
	return ret;
}

/* --------------------------------------------------------------- restore */

/* One batch of page data: its buffer, where in the process it goes, and
 * the image mark after which its bytes have arrived. */
struct fill_batch {
	char *buf;
	size_t used;
	struct iovec remote[IOV_MAX];
	int n_remote;
	uint64_t mark;
};

/* A userfaultfd of the process being filled, and the VMAs registered with
 * it (whole ones, in address order). */
struct uffd_fill {
	int fd;                /* cr's duplicate; -1: not in use */
	uint64_t (*vma)[2];
	size_t n, next;        /* next: where the last lookup stopped */
};

/* Batches are gathered in turn: while the image's thread reads batch k in
 * (cr_pages_read_later), the main thread writes batch k-1 into the process. */
struct page_filler {
	pid_t pid;
	struct uffd_fill uffd;
	struct cr_img *img;
	struct fill_batch batch[N_BUFS];
	int cur;               /* being gathered */
	int prev;              /* gathered, not yet written, or -1 */
};

/* Unregisters every VMA and closes the userfaultfd: from then on pages
 * go in with process_vm_writev, which must never meet a registered VMA
 * (its fault would wait for cr itself). */
static void uffd_stop(struct uffd_fill *u)
{
	if (u->fd < 0)
		return;
	for (size_t i = 0; i < u->n; i++) {
		struct uffdio_range r = { .start = u->vma[i][0], .len = u->vma[i][1] - u->vma[i][0] };

		ioctl(u->fd, UFFDIO_UNREGISTER, &r);
	}
	close(steal_fd(&u->fd));
	free(steal_pointer(&u->vma));
	u->n = 0;
}

/* Whether [addr, addr + len) is in a registered VMA. */
static bool uffd_covers(struct uffd_fill *u, uint64_t addr, uint64_t len)
{
	if (u->fd < 0)
		return false;
	/* Lookups go up within a pass, and start low again with each round
	 * of a chain: back to the first VMA whenever addr may lie below. */
	if (u->next > 0 && u->vma[u->next - 1][1] > addr)
		u->next = 0;
	while (u->next < u->n && u->vma[u->next][1] <= addr)
		u->next++;
	return u->next < u->n && u->vma[u->next][0] <= addr && addr + len <= u->vma[u->next][1];
}

/* Whether the kernel gives every anonymous VMA huge pages where it can. */
static bool thp_always(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) < 0)
			buf[0] = '\0';
		close(fd);
	}
	return strstr(buf, "[always]") != NULL;
}

/* UFFDIO_COPY puts small pages: a VMA the kernel would fill with huge
 * pages at a fault (MADV_HUGEPAGE, or transparent huge pages always on)
 * is left to process_vm_writev, and so are hugetlb and droppable ones. */
static bool uffd_suits(const struct restore_task *t, size_t i, bool thp)
{
	const VmaEntry *e = t->mm->vmas[i];

	if (!t->vma_has_pages[i] || vma_policy(e) != PAGES_ANON || e->shared || (e->has_cow && e->cow) ||
	    e->has_huge_page_kb)
		return false;
	if (e->flags & (VMA_FLAG__VMA_FLAG_HUGEPAGE | VMA_FLAG__VMA_FLAG_DROPPABLE))
		return false;
	return !thp || (e->flags & VMA_FLAG__VMA_FLAG_NOHUGEPAGE);
}

/* Makes a userfaultfd in the process and registers its private anonymous
 * VMAs that get pages; none of it is needed, so anything refused leaves
 * u unused (or with fewer VMAs).  Only a failed injection is an error. */
static int uffd_start(struct restore_task *t, struct uffd_fill *u, cr_error_t *err)
{
	struct uffdio_api api = { .api = UFFD_API };
	bool thp;

	/* User-mode faults only: a fault of the kernel's own (process_vm_writev)
	 * on a registered VMA fails at once instead of waiting for cr. */
	if (track_userfaultfd(t->inj, t->host_pid, &u->fd, NULL, err) < 0)
		return -1;
	if (u->fd < 0 || ioctl(u->fd, UFFDIO_API, &api) < 0) {
		uffd_stop(u);
		return 0;
	}
	thp = thp_always();
	u->vma = xcalloc(t->mm->n_vmas, sizeof(*u->vma));
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		struct uffdio_register r = { .range = { .start = e->start, .len = e->end - e->start },
					     .mode = UFFDIO_REGISTER_MODE_MISSING };

		if (!uffd_suits(t, i, thp))
			continue;
		if (ioctl(u->fd, UFFDIO_REGISTER, &r) == 0) {
			u->vma[u->n][0] = e->start;
			u->vma[u->n++][1] = e->end;
		}
	}
	pr_debug("pid %d: %zu VMAs filled by UFFDIO_COPY", t->pid, u->n);
	return 0;
}

/* Copies len bytes into the process at addr by UFFDIO_COPY; false (u
 * stopped) if the kernel did not take all of them: *done says how many
 * it did. */
static bool uffd_copy(struct uffd_fill *u, uint64_t addr, const char *src, size_t len, size_t *done)
{
	*done = 0;
	while (*done < len) {
		struct uffdio_copy c = { .dst = addr + *done, .src = (uint64_t)(uintptr_t)(src + *done),
					 .len = len - *done };

		if (ioctl(u->fd, UFFDIO_COPY, &c) == 0) {
			*done = len;
			break;
		}
		if (c.copy <= 0 || errno != EAGAIN) {
			if (c.copy > 0)
				*done += (size_t)c.copy;
			uffd_stop(u);
			return false;
		}
		*done += (size_t)c.copy;
	}
	return true;
}

static int write_pages(struct page_filler *f, const char *src, const struct iovec *remote, unsigned long n,
		       size_t len, cr_error_t *err)
{
	struct iovec local = { .iov_base = (void *)src, .iov_len = len };
	ssize_t got = process_vm_writev(f->pid, &local, 1, remote, n, 0);

	if (got != (ssize_t)len)
		return cr_error(err, got < 0 ? errno : EFAULT, "pid %d: write %zu bytes of pages near %p", f->pid, len,
				remote[0].iov_base);
	return 0;
}

/* Each run of the batch by UFFDIO_COPY where it can, else (the rest of
 * the batch once the userfaultfd is stopped) by process_vm_writev. */
static int fill_write(struct page_filler *f, struct fill_batch *b, cr_error_t *err)
{
	size_t off = 0;

	if (cr_img_wait(f->img, b->mark, err) < 0)
		return -1;
	for (int i = 0; i < b->n_remote; i++) {
		uint64_t addr = (uint64_t)(uintptr_t)b->remote[i].iov_base;
		size_t len = b->remote[i].iov_len, done = 0;
		struct iovec rest;

		if (uffd_covers(&f->uffd, addr, len) && uffd_copy(&f->uffd, addr, b->buf + off, len, &done)) {
			off += len;
			continue;
		}
		rest = (struct iovec){ .iov_base = (char *)b->remote[i].iov_base + done, .iov_len = len - done };
		if (f->uffd.fd >= 0) {   /* a run outside the registered VMAs */
			if (write_pages(f, b->buf + off + done, &rest, 1, rest.iov_len, err) < 0)
				return -1;
			off += len;
			continue;
		}
		/* No userfaultfd (any more): the run's rest and every run after it at once. */
		b->remote[i] = rest;
		if (write_pages(f, b->buf + off + done, b->remote + i, (unsigned long)(b->n_remote - i),
				b->used - off - done, err) < 0)
			return -1;
		break;
	}
	progress_add(b->used);
	return 0;
}

/* Closes the batch being gathered and writes out the one before it. */
static int fill_next(struct page_filler *f, cr_error_t *err)
{
	struct fill_batch *b = &f->batch[f->cur];

	if (b->used == 0)
		return 0;
	b->mark = cr_img_mark(f->img);
	if (f->prev >= 0 && fill_write(f, &f->batch[f->prev], err) < 0)
		return -1;
	f->prev = f->cur;
	f->cur = (f->cur + 1) % N_BUFS;
	f->batch[f->cur].used = 0;
	f->batch[f->cur].n_remote = 0;
	return 0;
}

static int fill_finish(struct page_filler *f, cr_error_t *err)
{
	if (fill_next(f, err) < 0)
		return -1;
	if (f->prev >= 0 && fill_write(f, &f->batch[f->prev], err) < 0)
		return -1;
	f->prev = -1;
	return 0;
}

static int fill_entry(struct page_filler *f, struct cr_pages_reader *r, const PagemapEntry *p, cr_error_t *err)
{
	uint64_t addr = p->vaddr, left = (uint64_t)p->nr_pages * PAGE_SIZE_CR;

	while (left > 0) {
		struct fill_batch *b = &f->batch[f->cur];
		size_t n = COPY_BATCH - b->used;

		if (n > left)
			n = (size_t)left;
		if (cr_pages_read_later(r, b->buf + b->used, n, err) < 0)
			return -1;
		b->remote[b->n_remote].iov_base = (void *)(uintptr_t)addr;
		b->remote[b->n_remote++].iov_len = n;
		b->used += n;
		addr += n;
		left -= n;
		if ((b->used == COPY_BATCH || b->n_remote == IOV_MAX) && fill_next(f, err) < 0)
			return -1;
	}
	return 0;
}

/* Whether entry i's bytes are in the file of early (cow VMA) pages, in
 * the other, or in neither (the parent's); *v walks the VMAs along. */
enum entry_file { ENTRY_LATE, ENTRY_EARLY, ENTRY_NONE };

static enum entry_file entry_file(const struct restore_task *t, size_t i, size_t *v)
{
	const PagemapEntry *p = t->pagemap[i];
	const VmaEntry *e;

	if ((p->has_in_parent && p->in_parent) || (p->has_in_prev && p->in_prev))
		return ENTRY_NONE;
	while (*v < t->mm->n_vmas && t->mm->vmas[*v]->end <= p->vaddr)
		(*v)++;
	if (*v == t->mm->n_vmas)
		return ENTRY_LATE;   /* refused by validation */
	e = t->mm->vmas[*v];
	return e->has_cow && e->cow ? ENTRY_EARLY : ENTRY_LATE;
}

uint64_t pagedata_bytes(const struct restore_task *t, bool early)
{
	enum entry_file want = early ? ENTRY_EARLY : ENTRY_LATE;
	uint64_t total = 0;
	size_t v = 0;

	for (size_t i = 0; i < t->n_pagemap; i++)
		if (entry_file(t, i, &v) == want)
			total += (uint64_t)t->pagemap[i]->nr_pages * PAGE_SIZE_CR;
	return total;
}

/* Reads and drops len bytes of page data (a run no process wants); the
 * scratch buffer is free again when each piece has arrived. */
static int skip_pages(struct cr_pages_reader *r, char *scratch, uint64_t len, cr_error_t *err)
{
	struct cr_img *img = cr_pages_reader_img(r);

	while (len > 0) {
		size_t n = len < COPY_BATCH ? (size_t)len : COPY_BATCH;

		if (cr_pages_read_later(r, scratch, n, err) < 0 || cr_img_wait(img, cr_img_mark(img), err) < 0)
			return -1;
		len -= n;
	}
	return 0;
}

/* One entry of a round before: the runs of it that p wants go in, the
 * rest is read past (every byte is read: the checksum covers them all). */
/* The end of the VMA of t's layout that holds addr (*v walks along): a
 * run of an earlier round may span two VMAs of the last (one split since),
 * and each goes in by its own means (UFFDIO_COPY takes one VMA's pages). */
static uint64_t vma_end_at(const struct restore_task *t, size_t *v, uint64_t addr)
{
	while (*v < t->mm->n_vmas && t->mm->vmas[*v]->end <= addr)
		(*v)++;
	return *v < t->mm->n_vmas ? t->mm->vmas[*v]->end : UINT64_MAX;
}

static int fill_round_entry(struct page_filler *f, struct cr_pages_reader *r, const PagemapEntry *e,
			    const struct chain_part *p, size_t *w, size_t *v, const struct restore_task *t,
			    char *scratch, cr_error_t *err)
{
	uint64_t at = e->vaddr, end = e->vaddr + (uint64_t)e->nr_pages * PAGE_SIZE_CR;

	while (at < end) {
		PagemapEntry run = PAGEMAP_ENTRY__INIT;
		uint64_t stop;

		while (*w < p->n_want && p->want[*w][1] <= at)
			(*w)++;
		if (*w == p->n_want || p->want[*w][0] >= end)
			return skip_pages(r, scratch, end - at, err);
		if (p->want[*w][0] > at) {
			if (skip_pages(r, scratch, p->want[*w][0] - at, err) < 0)
				return -1;
			at = p->want[*w][0];
		}
		stop = p->want[*w][1] < end ? p->want[*w][1] : end;
		if (stop > vma_end_at(t, v, at))
			stop = vma_end_at(t, v, at);
		run.vaddr = at;
		run.nr_pages = (uint32_t)((stop - at) / PAGE_SIZE_CR);
		if (fill_entry(f, r, &run, err) < 0)
			return -1;
		at = stop;
	}
	return 0;
}

static uint64_t want_bytes(const struct chain_part *p)
{
	uint64_t total = 0;

	for (size_t i = 0; p != NULL && i < p->n_want; i++)
		total += p->want[i][1] - p->want[i][0];
	return total;
}

/* Bytes of t's pages that rounds before the dump hold. */
static uint64_t rounds_bytes(const struct restore_ctx *ctx, const struct restore_task *t)
{
	uint64_t total = 0;

	for (size_t k = 1; ctx->chain != NULL && k <= ctx->chain->n; k++)
		total += want_bytes(chain_part_of(ctx, t, k));
	return total;
}

/* The pages of t that rounds before the dump hold (restore/chain.h). */
static int fill_rounds(struct restore_ctx *ctx, struct restore_task *t, struct page_filler *f, cr_error_t *err)
{
	cleanup_free char *scratch = NULL;

	for (size_t k = 1; ctx->chain != NULL && k <= ctx->chain->n; k++) {
		const struct chain_part *p = chain_part_of(ctx, t, k);
		struct cr_pages_reader *r = NULL;
		char name[IMG_NAME_MAX];
		size_t w = 0, v = 0;
		int ret = 0;

		if (p == NULL || p->n_want == 0)
			continue;
		if (scratch == NULL)
			scratch = xmalloc(COPY_BATCH);
		if (cr_pages_reader_open(ctx->chain->dirfd[k], img_name(name, CR_IMG_PAGES, t->pid), &r, err) < 0)
			return cr_error_wrap(err, "%s", ctx->chain->name[k]);
		f->img = cr_pages_reader_img(r);
		cr_img_hash_checked(f->img);   /* chain_load verified it */
		if (want_bytes(p) >= CR_PAGES_ASYNC_MIN)
			cr_img_async(f->img);
		for (size_t i = 0; i < p->n_pm && ret == 0; i++)
			if (!(p->pm[i]->has_in_prev && p->pm[i]->in_prev))
				ret = fill_round_entry(f, r, p->pm[i], p, &w, &v, t, scratch, err);
		if (ret == 0)
			ret = fill_finish(f, err);
		if (ret == 0)
			ret = cr_pages_reader_check_end(r, err);
		cr_pages_reader_close(r);
		if (ret < 0)
			return cr_error_wrap(err, "pages of pid %d from %s", t->pid, ctx->chain->name[k]);
	}
	return 0;
}

int pagedata_restore(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	struct page_bufs *pb = page_bufs_get(&ctx->page_bufs, false);
	cleanup_free struct page_filler *f = xcalloc(1, sizeof(*f));
	struct cr_pages_reader *r = NULL;
	char name[IMG_NAME_MAX];
	int ret = -1;

	f->pid = t->host_pid;
	f->prev = -1;
	for (int i = 0; i < N_BUFS; i++)
		f->batch[i].buf = pb->buf[i];
	f->uffd.fd = -1;
	if (cr_pages_reader_open(ctx->dirfd, img_name(name, CR_IMG_PAGES, t->pid), &r, err) < 0)
		goto out;
	f->img = cr_pages_reader_img(r);
	cr_img_hash_checked(f->img);   /* restore_load verified every image */
	if (pagedata_bytes(t, false) >= CR_PAGES_ASYNC_MIN)
		cr_img_async(f->img);
	/* Earlier rounds' pages count too: they go in by the same means. */
	if (pagedata_bytes(t, false) + rounds_bytes(ctx, t) >= CR_PAGES_ASYNC_MIN && uffd_start(t, &f->uffd, err) < 0)
		goto out;
	for (size_t i = 0, v = 0; i < t->n_pagemap; i++)
		if (entry_file(t, i, &v) == ENTRY_LATE && fill_entry(f, r, t->pagemap[i], err) < 0)
			goto out;
	if (fill_finish(f, err) < 0 || cr_pages_reader_check_end(r, err) < 0 || fill_rounds(ctx, t, f, err) < 0)
		goto out;
	ret = 0;
out:
	uffd_stop(&f->uffd);
	if (r)
		cr_pages_reader_close(r);
	return ret;
}
