/* Copy-on-write sharing between a process and its parent, as a kind of
 * state (see cow.h).
 *
 * Dump (check_tree, the tree frozen): for each process and each private
 * VMA that overlaps one of its parent's backed alike (anonymous memory, or
 * the same file at the same offset), /proc/PID/pagemap of both is compared
 * page by page; a private page (not the file's cache) present (or
 * swapped) at the same physical frame (swap slot) in both is the same
 * page, still shared.  Such
 * runs become pagemap entries without bytes (in_parent), and both VMAs are
 * marked cow: their other pages go to early-pages-PID.img.
 *
 * Restore: the pages must be shared before the child exists, so a cow VMA
 * is built in the process, still running cr's code, before it forks (in
 * before_fork), at a staging address, then moved (mremap keeps the pages
 * and their sharing) to its dumped address in the transplant.  The plan
 * gives every process its staging addresses: processes at even depth build
 * in one window, at odd depth in another, each window free in cr's layout,
 * in every dumped layout and of every trampoline, and held PROT_NONE in
 * every process of the tree so that nothing of cr's lands there.  A process
 * builds a cow VMA by mapping it afresh (anonymous, or its file, which it
 * opens now rather than in mem.c's setup) at its staging address, moving
 * in each piece of its parent's staging that holds pages it shares (then
 * dropping, MADV_DONTNEED, the pages of those pieces it does not share:
 * zeros, or the file's contents again),
 * and reading its own pages from early-pages-PID.img; then it gives its
 * parent's staging back to PROT_NONE and forks.
 *
 * A VMA made of pieces moved from different places is several kernel VMAs:
 * mremap moves a range only within one, so each process records where its
 * cow VMAs were cut (its own VMA's ends, its parent's overlapping VMAs'
 * ends and their cuts), and moves piece by piece, both when its children
 * take pieces of it and in its own transplant. */
#include "state/cow.h"
#include "dump/steps.h"
#include "img/image.h"
#include "img/pages.h"
#include "os/pagemap.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/files.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define PM_BATCH   16384                /* pagemap entries read at once */

bool cow_eligible(const VmaEntry *e)
{
	if (e->shared || e->has_shmem_id || e->growsdown || (e->flags & VMA_FLAG__VMA_FLAG_DROPPABLE) ||
	    e->has_huge_page_kb)
		return false;
	return e->kind == VMA_KIND__VMA_ANON || e->kind == VMA_KIND__VMA_HEAP ||
	       (e->kind == VMA_KIND__VMA_FILE && e->has_file_id);
}

static bool is_file(const VmaEntry *e)
{
	return e->kind == VMA_KIND__VMA_FILE;
}

/* Whether a child's VMA and its parent's are backed alike: both anonymous,
 * or both the same file at the same offset for the same address. */
static bool same_backing(const VmaEntry *a, const VmaEntry *b)
{
	if (is_file(a) != is_file(b))
		return false;
	return !is_file(a) || (a->file_id == b->file_id && a->pgoff + b->start == b->pgoff + a->start);
}

static bool is_cow(const VmaEntry *e)
{
	return e->has_cow && e->cow;
}

/* ------------------------------------------------------------------ dump */

struct finder {
	int child_fd, parent_fd;
	pid_t child, parent;
	uint64_t *c, *p;       /* PM_BATCH entries each */
};

/* The same private page in both: the same frame (or swap slot), one
 * there, and no page of a file's cache (which both map from the file). */
static bool same_page(uint64_t a, uint64_t b)
{
	const uint64_t key = PM_PRESENT | PM_SWAP | PM_FILE | PM_FRAME;

	if (!(a & (PM_PRESENT | PM_SWAP)) || (a & PM_FILE) || (a & PM_FRAME) == 0)
		return false;
	return (a & key) == (b & key);
}

/* Appends [start, end), joined to the last run if it follows it and that
 * run is one of this overlap's (from first on). */
static void add_run(struct dump_task *t, size_t first, uint64_t start, uint64_t end)
{
	if (t->n_in_parent > first && t->in_parent[t->n_in_parent - 1][1] == start) {
		t->in_parent[t->n_in_parent - 1][1] = end;
		return;
	}
	if (t->n_in_parent >= 8 && (t->n_in_parent & (t->n_in_parent - 1)) == 0)
		t->in_parent = xreallocarray(t->in_parent, t->n_in_parent * 2, sizeof(*t->in_parent));
	else if (t->n_in_parent == 0)
		t->in_parent = xreallocarray(t->in_parent, 8, sizeof(*t->in_parent));
	t->in_parent[t->n_in_parent][0] = start;
	t->in_parent[t->n_in_parent++][1] = end;
}

/* The pages of [lo, hi), in one VMA of the child and one of its parent's,
 * that the two share. */
static int compare_range(struct finder *f, struct dump_task *t, uint64_t lo, uint64_t hi, bool *found,
			 cr_error_t *err)
{
	size_t first = t->n_in_parent;

	for (uint64_t win = lo; win < hi; win += PM_BATCH * PAGE_SIZE_CR) {
		size_t n = (size_t)((hi - win) / PAGE_SIZE_CR);

		if (n > PM_BATCH)
			n = PM_BATCH;
		if (pagemap_read(f->child_fd, f->child, f->c, win, n, err) < 0 ||
		    pagemap_read(f->parent_fd, f->parent, f->p, win, n, err) < 0)
			return -1;
		for (size_t i = 0; i < n;) {
			size_t j = i;

			while (j < n && same_page(f->c[j], f->p[j]))
				j++;
			if (j > i) {
				add_run(t, first, win + i * PAGE_SIZE_CR, win + j * PAGE_SIZE_CR);
				*found = true;
			}
			i = j + 1;
		}
	}
	return 0;
}

/* Below this many shared pages a child is not worth building before its
 * parent forks it (about 0.4 ms more per process, measured on trees of
 * small processes): its pages are dumped as its own. */
#define COW_MIN_PAGES 64

/* Walks the child's and the parent's VMAs together (both by address); the
 * pairs that share pages are marked cow, if they share enough. */
static int compare_vmas(struct finder *f, struct dump_task *t, const MmEntry *pm, cr_error_t *err)
{
	const MmEntry *cm = t->mm;
	cleanup_free VmaEntry **pairs = NULL;
	size_t w = 0, n_pairs = 0, first = t->n_in_parent;
	uint64_t shared = 0;

	for (size_t v = 0; v < cm->n_vmas; v++) {
		VmaEntry *ce = cm->vmas[v];

		if (!cow_eligible(ce))
			continue;
		while (w < pm->n_vmas && pm->vmas[w]->end <= ce->start)
			w++;
		for (size_t k = w; k < pm->n_vmas && pm->vmas[k]->start < ce->end; k++) {
			VmaEntry *pe = pm->vmas[k];
			uint64_t lo = ce->start > pe->start ? ce->start : pe->start;
			uint64_t hi = ce->end < pe->end ? ce->end : pe->end;
			bool found = false;

			if (!cow_eligible(pe) || !same_backing(ce, pe))
				continue;
			if (compare_range(f, t, lo, hi, &found, err) < 0)
				return -1;
			if (!found)
				continue;
			pairs = xreallocarray(pairs, n_pairs + 2, sizeof(*pairs));
			pairs[n_pairs++] = ce;
			pairs[n_pairs++] = pe;
		}
	}
	for (size_t i = first; i < t->n_in_parent; i++)
		shared += (t->in_parent[i][1] - t->in_parent[i][0]) / PAGE_SIZE_CR;
	if (shared < COW_MIN_PAGES) {
		t->n_in_parent = first;
		return 0;
	}
	for (size_t i = 0; i < n_pairs; i++)
		pairs[i]->has_cow = pairs[i]->cow = true;
	return 0;
}

static int find_with_parent(struct finder *f, struct dump_task *t, const struct dump_task *parent, cr_error_t *err)
{
	int ret;

	f->child = t->pid;
	f->parent = parent->pid;
	f->child_fd = f->parent_fd = -1;
	ret = pagemap_open(t->pid, &f->child_fd, err) < 0 || pagemap_open(parent->pid, &f->parent_fd, err) < 0 ?
		      -1 : compare_vmas(f, t, parent->mm, err);
	if (f->child_fd >= 0)
		close(f->child_fd);
	if (f->parent_fd >= 0)
		close(f->parent_fd);
	return ret;
}

static int cow_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	struct finder f = { .c = xmalloc(PM_BATCH * 8), .p = xmalloc(PM_BATCH * 8) };
	int ret = 0;

	for (size_t i = 0; i < ctx->n_tasks && ret == 0; i++) {
		struct dump_task *t = &ctx->tasks[i];
		const struct dump_task *parent;

		if (t->zombie || t->ppid == 0)
			continue;
		parent = dump_find_task(ctx, t->ppid);
		if (parent == NULL || parent->zombie)
			continue;
		ret = find_with_parent(&f, t, parent, err);
		if (ret < 0)
			cr_error_wrap(err, "pid %d: pages shared with its parent %d", t->pid, parent->pid);
	}
	free(f.c);
	free(f.p);
	return ret;
}

static void cow_release_dump(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		free(steal_pointer(&ctx->tasks[i].in_parent));
		ctx->tasks[i].n_in_parent = 0;
	}
}

/* --------------------------------------------------------------- restore */

/* The index of mm's VMA holding addr, or -1. */
static ssize_t vma_index_at(const MmEntry *mm, uint64_t addr)
{
	size_t lo = 0, hi = mm->n_vmas;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mm->vmas[mid]->end <= addr)
			lo = mid + 1;
		else if (mm->vmas[mid]->start > addr)
			hi = mid;
		else
			return (ssize_t)mid;
	}
	return -1;
}

static int check_in_parent(const struct restore_task *t, size_t i, const PagemapEntry *p, cr_error_t *err)
{
	uint64_t end = p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE_CR;
	ssize_t v = vma_index_at(t->mm, p->vaddr), w;
	const struct restore_task *parent = t->parent;

	if (v < 0 || !is_cow(t->mm->vmas[v]))
		return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%llx) is its parent's but lies in no cow VMA",
				t->pid, i, (unsigned long long)p->vaddr);
	if (parent == NULL || parent->zombie || parent->mm == NULL)
		return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%llx) is its parent's, but pid %d has no "
				"parent with memory in the dump", t->pid, i, (unsigned long long)p->vaddr, t->pid);
	w = vma_index_at(parent->mm, p->vaddr);
	if (w < 0 || !is_cow(parent->mm->vmas[w]) || end > parent->mm->vmas[w]->end ||
	    !same_backing(t->mm->vmas[v], parent->mm->vmas[w]))
		return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%llx, %u pages) is its parent's, but lies "
				"in no cow VMA of pid %d", t->pid, i, (unsigned long long)p->vaddr, p->nr_pages,
				parent->pid);
	return 0;
}

static int cow_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (is_cow(e) && !cow_eligible(e))
			return cr_error(err, 0, "mm-%d.img: VMA %zu (0x%llx-0x%llx) is marked cow but is no plain "
					"private mapping of anonymous memory or a file", t->pid, i, (unsigned long long)e->start,
					(unsigned long long)e->end);
	}
	for (size_t i = 0; i < t->n_pagemap; i++)
		if (t->pagemap[i]->has_in_parent && t->pagemap[i]->in_parent &&
		    check_in_parent(t, i, t->pagemap[i], err) < 0)
			return -1;
	return 0;
}

/* --- plan --- */

struct cow_plan {
	uint64_t *stage;       /* per VMA: where it is built, 0 if it is no cow VMA */
	uint64_t **cuts;       /* per cow VMA: where its pieces begin, then its end */
	size_t *n_cuts;
	size_t n_cow;
	bool planned;
};

static uint64_t vma_len(const VmaEntry *e)
{
	return e->end - e->start;
}

static size_t depth_of(const struct restore_task *t)
{
	size_t d = 0;

	for (const struct restore_task *p = t->parent; p != NULL; p = p->parent)
		d++;
	return d;
}

static int cmp_u64(const void *pa, const void *pb)
{
	uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;

	return a < b ? -1 : a > b;
}

static int cmp_range(const void *pa, const void *pb)
{
	return cmp_u64(pa, pb);
}

/* The cuts of cow VMA i of t: its ends, and within it those of its
 * parent's cow VMAs and their own cuts. */
static void plan_cuts(struct restore_task *t, size_t i)
{
	const VmaEntry *e = t->mm->vmas[i];
	const struct restore_task *p = t->parent;
	size_t n = 0, cap = 2;
	uint64_t *c;

	if (p != NULL && p->cow != NULL)
		for (size_t k = 0; k < p->mm->n_vmas; k++)
			cap += p->cow->stage[k] ? p->cow->n_cuts[k] + 2 : 0;
	c = xmalloc(cap * sizeof(*c));
	c[n++] = e->start;
	c[n++] = e->end;
	for (size_t k = 0; p != NULL && p->cow != NULL && k < p->mm->n_vmas; k++) {
		const VmaEntry *w = p->mm->vmas[k];

		if (!p->cow->stage[k] || w->end <= e->start || w->start >= e->end)
			continue;
		for (size_t j = 0; j < p->cow->n_cuts[k]; j++)
			if (p->cow->cuts[k][j] > e->start && p->cow->cuts[k][j] < e->end)
				c[n++] = p->cow->cuts[k][j];
		if (w->start > e->start)
			c[n++] = w->start;
		if (w->end < e->end)
			c[n++] = w->end;
	}
	qsort(c, n, sizeof(*c), cmp_u64);
	t->cow->n_cuts[i] = 0;
	for (size_t k = 0; k < n; k++)
		if (k == 0 || c[k] != c[k - 1])
			c[t->cow->n_cuts[i]++] = c[k];
	t->cow->cuts[i] = c;
}

/* Each cow VMA's staging address, from base on, and its cuts: the
 * parent's first. */
static void plan_task(struct restore_ctx *ctx, struct restore_task *t)
{
	uint64_t at;

	if (t->cow == NULL || t->cow->planned)
		return;
	if (t->parent != NULL)
		plan_task(ctx, t->parent);
	at = ctx->cow_window[depth_of(t) % 2][0];
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		if (!t->cow->stage[i])
			continue;
		t->cow->stage[i] = at;
		at += vma_len(t->mm->vmas[i]);
		plan_cuts(t, i);
	}
	t->cow->planned = true;
}

/* Marks t's cow VMAs (stage 1 for now) and returns their total size. */
static uint64_t mark_task(struct restore_task *t)
{
	uint64_t total = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		if (!is_cow(t->mm->vmas[i]))
			continue;
		if (t->cow == NULL) {
			t->cow = xcalloc(1, sizeof(*t->cow));
			t->cow->stage = xcalloc(t->mm->n_vmas, sizeof(uint64_t));
			t->cow->cuts = xcalloc(t->mm->n_vmas, sizeof(uint64_t *));
			t->cow->n_cuts = xcalloc(t->mm->n_vmas, sizeof(size_t));
		}
		t->cow->stage[i] = 1;
		t->cow->n_cow++;
		total += vma_len(t->mm->vmas[i]);
	}
	return total;
}

/* Everything the windows must keep clear of: cr's own mappings, every
 * dumped VMA, every trampoline; sorted. */
static uint64_t (*busy_ranges(const struct restore_ctx *ctx, size_t *n))[2]
{
	size_t cap = ctx->cr_layout.n + 2, k = 0;
	uint64_t (*busy)[2];

	for (size_t i = 0; i < ctx->n_tasks; i++)
		cap += ctx->tasks[i].mm ? ctx->tasks[i].mm->n_vmas + 1 : 0;
	busy = xmalloc(cap * sizeof(*busy));
	for (size_t i = 0; i < ctx->cr_layout.n; i++, k++) {
		busy[k][0] = ctx->cr_layout.v[i].start;
		busy[k][1] = ctx->cr_layout.v[i].end;
	}
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		if (t->mm == NULL)
			continue;
		for (size_t j = 0; j < t->mm->n_vmas; j++, k++) {
			busy[k][0] = t->mm->vmas[j]->start;
			busy[k][1] = t->mm->vmas[j]->end;
		}
		busy[k][0] = t->tramp;
		busy[k++][1] = t->tramp + t->tramp_size;
	}
	qsort(busy, k, sizeof(*busy), cmp_range);
	*n = k;
	return busy;
}

#define WINDOW_FROM (1ULL << 32)
#define WINDOW_TO   0x7ff000000000ULL

/* The lowest start of len free bytes, a page clear of every busy range
 * (sorted by start) and of avoid; 0 if there is none. */
static uint64_t first_gap(const uint64_t (*busy)[2], size_t n, uint64_t len, const uint64_t avoid[2])
{
	uint64_t cand = WINDOW_FROM;

	for (size_t i = 0; i <= n; i++) {
		uint64_t lo = i < n ? busy[i][0] : WINDOW_TO;
		uint64_t hi = i < n ? busy[i][1] : WINDOW_TO;

		if (avoid[1] > avoid[0] && cand < avoid[1] + PAGE_SIZE_CR && avoid[0] < cand + len + PAGE_SIZE_CR)
			cand = avoid[1] + PAGE_SIZE_CR;
		if (cand + len + PAGE_SIZE_CR <= lo)
			return cand + len <= WINDOW_TO ? cand : 0;
		if (hi + PAGE_SIZE_CR > cand)
			cand = ((hi + PAGE_SIZE_CR - 1) & ~(PAGE_SIZE_CR - 1)) + PAGE_SIZE_CR;
	}
	return 0;
}

static int reserve_window(uint64_t w[2], cr_error_t *err)
{
	void *p;

	if (w[1] == w[0])
		return 0;
	p = mmap((void *)(uintptr_t)w[0], w[1] - w[0], PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return cr_error(err, errno, "hold 0x%llx-0x%llx for memory shared copy-on-write",
				(unsigned long long)w[0], (unsigned long long)w[1]);
	return 0;
}

static int place_windows(struct restore_ctx *ctx, const uint64_t size[2], cr_error_t *err)
{
	size_t n;
	cleanup_free uint64_t (*busy)[2] = busy_ranges(ctx, &n);
	uint64_t none[2] = { 0, 0 };

	for (int k = 0; k < 2; k++) {
		uint64_t at = size[k] ? first_gap((const uint64_t (*)[2])busy, n, size[k], k ? ctx->cow_window[0] : none) : 0;

		if (size[k] && at == 0)
			return cr_error(err, 0, "no free address range of %llu bytes to build memory shared "
					"copy-on-write in", (unsigned long long)size[k]);
		ctx->cow_window[k][0] = at;
		ctx->cow_window[k][1] = at + size[k];
		if (reserve_window(ctx->cow_window[k], err) < 0)
			return -1;
	}
	return 0;
}

static int cow_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	uint64_t size[2] = { 0, 0 };

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];
		uint64_t total;

		if (t->zombie)
			continue;
		total = mark_task(t);
		if (total > size[depth_of(t) % 2])
			size[depth_of(t) % 2] = total;
	}
	if (size[0] == 0 && size[1] == 0)
		return 0;
	if (place_windows(ctx, size, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			plan_task(ctx, &ctx->tasks[i]);
	return 0;
}

/* --- in the process, before it forks --- */

/* Cow VMA i as a fresh private mapping at its staging address: of its
 * file (opened into its slot now, as mem.c's setup would later), or
 * anonymous. */
static int map_fresh(struct restore_ctx *ctx, const struct restore_task *t, size_t i, cr_error_t *err)
{
	const VmaEntry *e = t->mm->vmas[i];
	int flags = MAP_PRIVATE | MAP_FIXED | (is_file(e) ? 0 : MAP_ANONYMOUS);
	int fd = is_file(e) ? t->reserved_base + t->vma_fd[i] : -1;

	if (e->flags & VMA_FLAG__VMA_FLAG_NORESERVE)
		flags |= MAP_NORESERVE;
	if (fd >= 0 && fcntl(fd, F_GETFD) < 0 &&
	    files_open_mapped(ctx, t, restore_file(ctx, e->file_id), fd, err) < 0)
		return cr_error_wrap(err, "mapping 0x%llx-0x%llx", (unsigned long long)e->start,
				     (unsigned long long)e->end);
	if (mmap((void *)(uintptr_t)t->cow->stage[i], vma_len(e), PROT_READ | PROT_WRITE, flags, fd,
		 (off_t)(is_file(e) ? e->pgoff : 0)) == MAP_FAILED)
		return cr_error(err, errno, "map 0x%llx-0x%llx to build at 0x%llx", (unsigned long long)e->start,
				(unsigned long long)e->end, (unsigned long long)t->cow->stage[i]);
	return 0;
}

/* Whether the process opens files for its cow VMAs before it forks. */
static bool opens_files(const struct restore_task *t)
{
	for (size_t i = 0; t != NULL && t->cow != NULL && i < t->mm->n_vmas; i++)
		if (t->cow->stage[i] && is_file(t->mm->vmas[i]))
			return true;
	return false;
}

/* The slots of mapped files a parent opened before it forked are its own:
 * each process opens its files into its own slots (mem.c's setup would
 * take an open slot for its file). */
static int close_parents_slots(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	unsigned first = (unsigned)(t->reserved_base + RESERVED_MAPS);

	if (!opens_files(t->parent) || ctx->stash_base <= (int)first)
		return 0;
	if (syscall(SYS_close_range, first, (unsigned)ctx->stash_base - 1, 0) < 0)
		return cr_error(err, errno, "close the parent's mapped files");
	return 0;
}

static bool entry_in_parent(const PagemapEntry *p)
{
	return p->has_in_parent && p->in_parent;
}

static uint64_t entry_end(const PagemapEntry *p)
{
	return p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE_CR;
}

/* Drops the pages of [a, b) (dumped addresses, built at a - start + at)
 * that no in_parent entry from *k on covers; *k moves past those before b. */
static int zap_unshared(const struct restore_task *t, size_t *k, uint64_t a, uint64_t b, uint64_t shift,
			cr_error_t *err)
{
	uint64_t from = a;

	for (; *k < t->n_pagemap && t->pagemap[*k]->vaddr < b; (*k)++) {
		const PagemapEntry *p = t->pagemap[*k];

		if (!entry_in_parent(p) || entry_end(p) <= a)
			continue;
		if (p->vaddr > from && madvise((void *)(uintptr_t)(from + shift), p->vaddr - from, MADV_DONTNEED) < 0)
			return cr_error(err, errno, "drop pages at 0x%llx", (unsigned long long)from);
		from = entry_end(p);
	}
	if (b > from && madvise((void *)(uintptr_t)(from + shift), b - from, MADV_DONTNEED) < 0)
		return cr_error(err, errno, "drop pages at 0x%llx", (unsigned long long)from);
	return 0;
}

/* Whether an in_parent entry from *k on lies in [a, b); *k moves to the
 * first entry ending after a. */
static bool shares_in(const struct restore_task *t, size_t *k, uint64_t a, uint64_t b)
{
	while (*k < t->n_pagemap && entry_end(t->pagemap[*k]) <= a)
		(*k)++;
	for (size_t j = *k; j < t->n_pagemap && t->pagemap[j]->vaddr < b; j++)
		if (entry_in_parent(t->pagemap[j]))
			return true;
	return false;
}

/* Moves piece [a, b) of cow VMA i from the parent's staging into t's. */
static int take_piece(const struct restore_task *t, size_t i, uint64_t a, uint64_t b, cr_error_t *err)
{
	const struct restore_task *p = t->parent;
	ssize_t w = vma_index_at(p->mm, a);
	uint64_t from, to = t->cow->stage[i] + (a - t->mm->vmas[i]->start);
	void *got;

	if (w < 0 || !p->cow->stage[w])
		return cr_error(err, 0, "0x%llx: the parent has no cow VMA there", (unsigned long long)a);
	from = p->cow->stage[w] + (a - p->mm->vmas[w]->start);
	got = (void *)syscall(SYS_mremap, from, b - a, b - a, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (got == MAP_FAILED)
		return cr_error(err, errno, "move the parent's pages 0x%llx-0x%llx", (unsigned long long)a,
				(unsigned long long)b);
	return 0;
}

/* Every piece of cow VMA i that holds shared pages, from the parent. */
static int take_shared(const struct restore_task *t, size_t i, size_t *k, cr_error_t *err)
{
	const VmaEntry *e = t->mm->vmas[i];
	uint64_t shift = t->cow->stage[i] - e->start;

	for (size_t j = 0; j + 1 < t->cow->n_cuts[i]; j++) {
		uint64_t a = t->cow->cuts[i][j], b = t->cow->cuts[i][j + 1];
		size_t z;

		if (!shares_in(t, k, a, b))
			continue;
		z = *k;
		if (take_piece(t, i, a, b, err) < 0 || zap_unshared(t, &z, a, b, shift, err) < 0)
			return cr_error_wrap(err, "build 0x%llx-0x%llx", (unsigned long long)e->start,
					     (unsigned long long)e->end);
	}
	return 0;
}

#define BOUNCE (1u << 20)

/* len bytes of page data from r to dst in this process's memory, through
 * a buffer: process_vm_writev fills fresh pages through the kernel's own
 * mapping of them, where a read into dst would touch each one through the
 * process's page tables first (on this VM, five times slower). */
static int fill_own(struct cr_pages_reader *r, char *buf, char *dst, size_t len, cr_error_t *err)
{
	pid_t self = (pid_t)syscall(SYS_getpid);

	while (len > 0) {
		size_t n = len < BOUNCE ? len : BOUNCE;
		struct iovec local = { buf, n }, remote = { dst, n };

		if (cr_pages_read(r, buf, n, err) < 0)
			return -1;
		if (process_vm_writev(self, &local, 1, &remote, 1, 0) != (ssize_t)n)
			return cr_error(err, errno, "write pages at %p", (void *)dst);
		dst += n;
		len -= n;
	}
	return 0;
}

/* t's own pages of its cow VMAs, from early-pages-PID.img. */
static int read_own(const struct restore_task *t, cr_error_t *err)
{
	struct cr_pages_reader *r = NULL;
	cleanup_free char *buf = xmalloc(BOUNCE);
	char name[IMG_NAME_MAX];
	size_t v = 0;
	int ret = -1;

	if (cr_pages_reader_open_as(t->reserved_base + RESERVED_DIR, img_name(name, CR_IMG_EARLY_PAGES, t->pid),
				    CR_IMG_EARLY_PAGES, &r, err) < 0)
		return -1;
	cr_img_hash_checked(cr_pages_reader_img(r));   /* restore_load verified every image */
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *p = t->pagemap[i];

		while (t->mm->vmas[v]->end <= p->vaddr)
			v++;
		if (!t->cow->stage[v] || entry_in_parent(p))
			continue;
		if (fill_own(r, buf, (char *)(uintptr_t)(t->cow->stage[v] + (p->vaddr - t->mm->vmas[v]->start)),
			     (size_t)p->nr_pages * PAGE_SIZE_CR, err) < 0)
			goto out;
	}
	ret = cr_pages_reader_check_end(r, err);
out:
	cr_pages_reader_close(r);
	return ret;
}

static int build(struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	size_t k = 0;
	bool own = false;

	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->cow->stage[i] && map_fresh(ctx, t, i, err) < 0)
			return -1;
	for (size_t i = 0; i < t->mm->n_vmas && t->parent != NULL && t->parent->cow != NULL; i++)
		if (t->cow->stage[i] && take_shared(t, i, &k, err) < 0)
			return -1;
	for (size_t i = 0, v = 0; i < t->n_pagemap && !own; i++) {
		const PagemapEntry *p = t->pagemap[i];

		while (t->mm->vmas[v]->end <= p->vaddr)
			v++;
		own = t->cow->stage[v] && !entry_in_parent(p);
	}
	return own ? read_own(t, err) : 0;   /* restore_load checked the empty file */
}

/* The parent's staging, given back to the window: its pages are not
 * this process's, nor its children's. */
static int release_parents(const struct restore_task *p, cr_error_t *err)
{
	for (size_t i = 0; i < p->mm->n_vmas; i++) {
		uint64_t at = p->cow->stage[i];

		if (at && mmap((void *)(uintptr_t)at, vma_len(p->mm->vmas[i]), PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
			return cr_error(err, errno, "give back the parent's staging at 0x%llx", (unsigned long long)at);
	}
	return 0;
}

static int cow_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (t->parent != NULL && close_parents_slots(ctx, t, err) < 0)
		return -1;
	if (t->cow != NULL && build(ctx, t, err) < 0)
		return cr_error_wrap(err, "memory shared copy-on-write");
	if (t->parent != NULL && t->parent->cow != NULL && release_parents(t->parent, err) < 0)
		return -1;
	return 0;
}

/* --- in the transplant --- */

size_t cow_count(const struct restore_task *t)
{
	return t->cow ? t->cow->n_cow : 0;
}

size_t cow_keep(const struct restore_task *t, uint64_t (*keep)[2], size_t n)
{
	size_t k = 0;

	for (size_t i = 0; t->cow != NULL && i < t->mm->n_vmas && k < n; i++) {
		if (!t->cow->stage[i])
			continue;
		keep[k][0] = t->cow->stage[i];
		keep[k++][1] = t->cow->stage[i] + vma_len(t->mm->vmas[i]);
	}
	return k;
}

void cow_queue_move(struct restore_task *t, size_t i)
{
	uint64_t shift = t->cow->stage[i] - t->mm->vmas[i]->start;

	for (size_t j = 0; j + 1 < t->cow->n_cuts[i]; j++) {
		uint64_t a = t->cow->cuts[i][j], len = t->cow->cuts[i][j + 1] - a;

		inject_batch_add(&t->batch, "move memory shared copy-on-write into place", SYS_mremap, a + shift,
				 len, len, MREMAP_MAYMOVE | MREMAP_FIXED, a, 0);
	}
}

static void free_plan(struct restore_task *t)
{
	struct cow_plan *c = steal_pointer(&t->cow);

	if (c == NULL)
		return;
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		free(c->cuts[i]);
	free(c->cuts);
	free(c->n_cuts);
	free(c->stage);
	free(c);
}

static void cow_release_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		free_plan(&ctx->tasks[i]);
	for (int k = 0; k < 2; k++) {
		if (ctx->cow_window[k][1] > ctx->cow_window[k][0])
			munmap((void *)(uintptr_t)ctx->cow_window[k][0], ctx->cow_window[k][1] - ctx->cow_window[k][0]);
		ctx->cow_window[k][0] = ctx->cow_window[k][1] = 0;
	}
}

const struct state_kind state_cow = {
	.name = "copy-on-write sharing",
	.check_tree = cow_check_tree,
	.release_dump = cow_release_dump,
	.validate = cow_validate,
	.plan = cow_plan,
	.before_fork = cow_before_fork,
	.release_restore = cow_release_restore,
};
