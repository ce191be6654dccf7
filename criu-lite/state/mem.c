#include "state/mem.h"
#include "img/image.h"
#include "img/kinds.h"
#include "os/log.h"
#include "img/pages.h"
#include "os/progress.h"
#include "dump/supervise.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP    (1ULL << 62)
#define PM_FILE    (1ULL << 61)
#define PAGEMAP_BATCH 65536            /* pagemap entries read at once */
#define COPY_BATCH    (1u << 20)       /* bytes of page data moved at once */
#define N_BUFS        3                /* batch buffers in flight */
#define USER_ADDR_MAX 0x00fffffffffff000ULL
#define FREE_SEARCH_START (1ULL << 32)
#define FREE_SEARCH_END   0x7ff000000000ULL

/* ------------------------------------------------------------------ dump */

enum page_policy {
	PAGES_NONE,          /* contents come from the kernel or the file */
	PAGES_ANON,          /* every present or swapped page */
	PAGES_PRIVATE_FILE,  /* pages written since mapping (now anonymous) */
};

static int add_file_vma(struct dump_ctx *ctx, struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
			cr_error_t *err)
{
	uint32_t flags = (v->shared && (v->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
	struct stat st;
	FileEntry *fe;
	uint32_t id;

	if (stat(v->path, &st) < 0)
		return cr_error(err, errno, "pid %d: mapped file %s", t->pid, v->path);
	if (!S_ISREG(st.st_mode))
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx of %s: only regular files can be mapped",
				t->pid, (unsigned long)v->start, (unsigned long)v->end, v->path);
	if (st.st_ino != v->ino)
		return cr_error(err, 0, "pid %d: mapped file %s was replaced since it was mapped "
				"(a deleted file is not supported yet)", t->pid, v->path);
	e->kind = VMA_KIND__VMA_FILE;
	id = file_table_find(ctx, v->path, flags);
	if (id == 0) {
		fe = arena_new(&ctx->arena, FileEntry);
		file_entry__init(fe);
		fe->kind = FILE_KIND__FILE_REG;
		fe->path = arena_strdup(&ctx->arena, v->path);
		fe->flags = flags;
		fe->has_size = fe->has_mtime_ns = fe->has_mode = true;
		fe->size = (uint64_t)st.st_size;
		fe->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
		fe->mode = st.st_mode;
		id = file_table_add(ctx, fe);
	}
	e->has_file_id = true;
	e->file_id = id;
	return 0;
}

static int classify_vma(struct dump_ctx *ctx, struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
			cr_error_t *err)
{
	switch (v->special) {
	case VMA_SPECIAL_VDSO:
		e->kind = VMA_KIND__VMA_VDSO;
		return 0;
	case VMA_SPECIAL_VVAR:
		e->kind = VMA_KIND__VMA_VVAR;
		return 0;
	case VMA_SPECIAL_VVAR_VCLOCK:
		e->kind = VMA_KIND__VMA_VVAR_VCLOCK;
		return 0;
	case VMA_SPECIAL_HEAP:
		e->kind = VMA_KIND__VMA_HEAP;
		return 0;
	case VMA_SPECIAL_STACK:
		e->kind = VMA_KIND__VMA_STACK;
		e->growsdown = true;
		return 0;
	case VMA_SPECIAL_OTHER:
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx %s: unsupported special mapping",
				t->pid, (unsigned long)v->start, (unsigned long)v->end, v->path);
	default:
		break;
	}
	if (v->path == NULL) {
		e->kind = VMA_KIND__VMA_ANON;
		return 0;
	}
	if (v->deleted && v->shared && strcmp(v->path, "/dev/zero") == 0) {
		e->kind = VMA_KIND__VMA_ANON;   /* MAP_SHARED|MAP_ANONYMOUS */
		return 0;
	}
	if (v->deleted)
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx of deleted file %s: unsupported kind "
				"(deleted or memfd mapping)", t->pid, (unsigned long)v->start,
				(unsigned long)v->end, v->path);
	return add_file_vma(ctx, t, v, e, err);
}

int mem_dump_vmas(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	MmEntry *mm = t->mm;

	mm->vmas = arena_array(&ctx->arena, VmaEntry *, t->vmas.n);
	mm->n_vmas = 0;
	for (size_t i = 0; i < t->vmas.n; i++) {
		const struct proc_vma *v = &t->vmas.v[i];
		VmaEntry *e;

		if (v->special == VMA_SPECIAL_VSYSCALL)
			continue;   /* fixed by the kernel, not part of the mm */
		e = arena_new(&ctx->arena, VmaEntry);
		vma_entry__init(e);
		e->start = v->start;
		e->end = v->end;
		e->pgoff = v->pgoff;
		e->prot = v->prot;
		e->shared = v->shared;
		if (classify_vma(ctx, t, v, e, err) < 0)
			return -1;
		mm->vmas[mm->n_vmas++] = e;
	}
	return 0;
}

static enum page_policy vma_policy(const VmaEntry *e)
{
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

void mem_page_bufs_free(struct page_bufs *pb)
{
	if (pb == NULL)
		return;
	for (int i = 0; i < N_BUFS; i++)
		free(pb->buf[i]);
	free(pb->pagemap);
	free(pb);
}

static struct page_bufs *page_bufs_get(struct page_bufs **slot, bool pagemap, pid_t pid, cr_error_t *err)
{
	struct page_bufs *pb = *slot;
	bool ok;

	if (pb == NULL)
		pb = *slot = calloc(1, sizeof(*pb));
	ok = pb != NULL;
	for (int i = 0; ok && i < N_BUFS; i++) {
		if (pb->buf[i] == NULL)
			pb->buf[i] = malloc(COPY_BATCH);
		ok = pb->buf[i] != NULL;
	}
	if (ok && pagemap && pb->pagemap == NULL) {
		pb->pagemap = malloc(PAGEMAP_BATCH * 8);
		ok = pb->pagemap != NULL;
	}
	if (!ok) {
		cr_error(err, ENOMEM, "pid %d: page buffers", pid);
		return NULL;
	}
	return pb;
}

struct page_dumper {
	pid_t pid;
	int pagemap_fd, mem_fd;
	struct cr_pages_writer *pages;
	struct cr_img *pagemap_img;
	char **bufs;           /* N_BUFS, read into in turn while the image's thread */
	uint64_t marks[N_BUFS];/* writes out the others; their marks when handed over */
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
	if (d->used == COPY_BATCH && cr_img_async(cr_pages_writer_img(d->pages), err) < 0)
		return -1;
	if (cr_pages_write(d->pages, d->bufs[d->cur], d->used, err) < 0)
		return -1;
	d->marks[d->cur] = cr_img_mark(cr_pages_writer_img(d->pages));
	d->cur = (d->cur + 1) % N_BUFS;
	if (cr_img_wait(cr_pages_writer_img(d->pages), d->marks[d->cur], err) < 0)
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

static int dump_vma_pages(struct page_dumper *d, const VmaEntry *e, cr_error_t *err)
{
	enum page_policy policy = vma_policy(e);
	bool via_mem = !(e->prot & PROT_READ);

	if (policy == PAGES_NONE)
		return 0;
	for (uint64_t win = e->start; win < e->end; win += PAGEMAP_BATCH * PAGE_SIZE_CR) {
		uint64_t n = (e->end - win) / PAGE_SIZE_CR;
		ssize_t got;

		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		got = pread(d->pagemap_fd, d->pm, n * 8, (off_t)(win / PAGE_SIZE_CR * 8));
		if (got != (ssize_t)(n * 8))
			return cr_error(err, got < 0 ? errno : EIO, "pid %d: read pagemap at 0x%lx", d->pid,
					(unsigned long)win);
		for (uint64_t i = 0; i < n;) {
			uint64_t j = i;

			while (j < n && page_wanted(policy, d->pm[j]))
				j++;
			if (j > i && add_pages(d, win + i * PAGE_SIZE_CR, j - i, via_mem, err) < 0)
				return -1;
			i = j + 1;
		}
	}
	return emit_run(d, err);   /* runs never span two VMAs */
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
				 &d->pages, err) < 0)
		return -1;
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		if (dump_vma_pages(d, t->mm->vmas[i], err) < 0)
			return -1;
	}
	if (flush_batch(d, err) < 0)
		return -1;
	pr_info("pid %d: %llu KiB of pages", t->pid, (unsigned long long)(cr_pages_written(d->pages) >> 10));
	if (cr_pages_writer_finish(steal_pointer(&d->pages), err) < 0)
		return -1;
	return cr_img_finish(steal_pointer(&d->pagemap_img), err);
}

int mem_dump_pages(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct page_dumper d = { .pid = t->pid, .pagemap_fd = -1, .mem_fd = -1 };
	struct page_bufs *pb = page_bufs_get(&ctx->page_bufs, true, t->pid, err);
	int ret = -1;

	if (pb == NULL)
		goto out;
	d.bufs = pb->buf;
	d.pm = pb->pagemap;
	if (open_proc_file(t->pid, "pagemap", &d.pagemap_fd, err) < 0 ||
	    open_proc_file(t->pid, "mem", &d.mem_fd, err) < 0)
		goto out;
	ret = dump_all_pages(ctx, t, &d, err);
out:
	if (d.pages)
		cr_pages_writer_abort(d.pages);
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

static bool is_special(VmaKind k)
{
	return k == VMA_KIND__VMA_VDSO || k == VMA_KIND__VMA_VVAR || k == VMA_KIND__VMA_VVAR_VCLOCK;
}

static const char *kind_name(VmaKind k)
{
	switch (k) {
	case VMA_KIND__VMA_VDSO: return "[vdso]";
	case VMA_KIND__VMA_VVAR: return "[vvar]";
	case VMA_KIND__VMA_VVAR_VCLOCK: return "[vvar_vclock]";
	default: return "mapping";
	}
}

int mem_validate(const struct restore_task *t, cr_error_t *err)
{
	const MmEntry *mm = t->mm;
	uint64_t prev_end = 0;
	size_t v = 0;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];

		if (e->start >= e->end || e->start % PAGE_SIZE_CR || e->end % PAGE_SIZE_CR ||
		    e->end > USER_ADDR_MAX || e->pgoff % PAGE_SIZE_CR)
			return cr_error(err, 0, "mm-%d.img: VMA %zu has a bad range 0x%lx-0x%lx", t->pid, i,
					(unsigned long)e->start, (unsigned long)e->end);
		if (e->start < prev_end)
			return cr_error(err, 0, "mm-%d.img: VMA %zu at 0x%lx overlaps the one before it",
					t->pid, i, (unsigned long)e->start);
		if (e->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
			return cr_error(err, 0, "mm-%d.img: VMA %zu has bad protection 0x%x", t->pid, i, e->prot);
		if (e->kind == VMA_KIND__VMA_FILE && !e->has_file_id)
			return cr_error(err, 0, "mm-%d.img: file VMA %zu names no file", t->pid, i);
		prev_end = e->end;
	}
	prev_end = 0;
	for (size_t i = 0; i < t->n_pagemap; i++) {
		const PagemapEntry *p = t->pagemap[i];
		uint64_t end = p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE_CR;

		if (p->nr_pages == 0 || p->vaddr % PAGE_SIZE_CR || p->vaddr < prev_end || end > USER_ADDR_MAX)
			return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%lx, %u pages) is out of order or "
					"malformed", t->pid, i, (unsigned long)p->vaddr, p->nr_pages);
		while (v < mm->n_vmas && mm->vmas[v]->end <= p->vaddr)
			v++;
		if (v == mm->n_vmas || mm->vmas[v]->start > p->vaddr || end > mm->vmas[v]->end ||
		    is_special(mm->vmas[v]->kind))
			return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%lx, %u pages) lies outside "
					"every VMA", t->pid, i, (unsigned long)p->vaddr, p->nr_pages);
		prev_end = end;
	}
	return 0;
}

uint64_t mem_find_free(const uint64_t (*busy)[2], size_t n, uint64_t len)
{
	uint64_t cand = FREE_SEARCH_START;
	bool moved = true;

	/* A page of space on each side keeps the kernel from merging the new
	 * mapping with a neighbour. */
	while (moved) {
		moved = false;
		for (size_t i = 0; i < n; i++) {
			if (cand < busy[i][1] + PAGE_SIZE_CR && busy[i][0] < cand + len + PAGE_SIZE_CR) {
				cand = ((busy[i][1] + PAGE_SIZE_CR - 1) & ~(PAGE_SIZE_CR - 1)) + PAGE_SIZE_CR;
				moved = true;
			}
		}
		if (cand + len > FREE_SEARCH_END)
			return 0;
	}
	return cand;
}

static VmaKind special_kind(enum proc_vma_special s)
{
	switch (s) {
	case VMA_SPECIAL_VDSO: return VMA_KIND__VMA_VDSO;
	case VMA_SPECIAL_VVAR: return VMA_KIND__VMA_VVAR;
	case VMA_SPECIAL_VVAR_VCLOCK: return VMA_KIND__VMA_VVAR_VCLOCK;
	default: return 0;
	}
}

/* The kernel's special mappings of cr's layout (vdso, vvar...), which a
 * restored process keeps and moves to its dumped addresses. */
struct cr_specials {
	const struct proc_vma *v[8];
	size_t n;
	uint64_t top;          /* the end of cr's highest mapping in user space */
};

/* Unmaps everything of cr's in one sweep of user space around what stays:
 * the trampoline, and the special mappings if they are to be moved. */
static void unmap_cr_layout(struct restore_task *t, const struct cr_specials *sp, bool keep_specials)
{
	uint64_t keep[9][2], from = 0;
	size_t n = 0;

	keep[n][0] = t->tramp;
	keep[n++][1] = t->tramp + t->tramp_size;
	for (size_t i = 0; keep_specials && i < sp->n; i++, n++) {
		keep[n][0] = sp->v[i]->start;
		keep[n][1] = sp->v[i]->end;
		for (size_t j = n; j > 0 && keep[j][0] < keep[j - 1][0]; j--) {
			uint64_t tmp[2] = { keep[j][0], keep[j][1] };

			memcpy(keep[j], keep[j - 1], sizeof(tmp));
			memcpy(keep[j - 1], tmp, sizeof(tmp));
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (keep[i][0] > from)
			inject_batch_add(&t->batch, "unmap cr's own memory", SYS_munmap, from, keep[i][0] - from, 0, 0,
					 0, 0);
		if (keep[i][1] > from)
			from = keep[i][1];
	}
	if (sp->top > from)
		inject_batch_add(&t->batch, "unmap cr's own memory", SYS_munmap, from, sp->top - from, 0, 0, 0, 0);
}

static void mremap_to(struct restore_task *t, uint64_t from, uint64_t len, uint64_t to)
{
	if (from != to)
		inject_batch_add(&t->batch, "move vdso/vvar", SYS_mremap, from, len, len,
				 MREMAP_MAYMOVE | MREMAP_FIXED, to, 0);
}

static bool overlaps(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* Moves the child's vdso/vvar to where the dumped process had them, once
 * the rest of cr's memory is gone.  A move that would land on another
 * special mapping not moved yet (or on its own old place) makes them all
 * go through a free area first. */
static int move_specials(struct restore_task *t, const struct cr_specials *sp, cr_error_t *err)
{
	const MmEntry *mm = t->mm;
	cleanup_free uint64_t (*busy)[2] = calloc(mm->n_vmas + sp->n + 1, sizeof(*busy));
	uint64_t to[8], total = 0, tmp;
	size_t nb = 0;
	bool direct = true;

	if (busy == NULL)
		return cr_error(err, ENOMEM, "move vdso");
	for (size_t i = 0; i < mm->n_vmas; i++) {
		busy[nb][0] = mm->vmas[i]->start;
		busy[nb++][1] = mm->vmas[i]->end;
	}
	busy[nb][0] = t->tramp;
	busy[nb++][1] = t->tramp + t->tramp_size;
	for (size_t i = 0; i < sp->n; i++) {
		const struct proc_vma *v = sp->v[i];
		VmaKind k = special_kind(v->special);
		const VmaEntry *want = NULL;

		for (size_t j = 0; j < mm->n_vmas && want == NULL; j++)
			if (mm->vmas[j]->kind == k)
				want = mm->vmas[j];
		if (want == NULL || want->end - want->start != v->end - v->start)
			return cr_error(err, 0, "pid %d: %s is %lu bytes in the image but %lu on this kernel; restore "
					"needs the kernel the dump was made on", t->pid, kind_name(k),
					want ? (unsigned long)(want->end - want->start) : 0UL,
					(unsigned long)(v->end - v->start));
		to[i] = want->start;
		total += v->end - v->start;
	}
	for (size_t i = 0; i < sp->n; i++)
		for (size_t j = 0; j < sp->n; j++)
			if (to[i] != sp->v[i]->start &&
			    overlaps(to[i], to[i] + (sp->v[i]->end - sp->v[i]->start), sp->v[j]->start, sp->v[j]->end))
				direct = false;
	if (direct) {
		for (size_t i = 0; i < sp->n; i++)
			mremap_to(t, sp->v[i]->start, sp->v[i]->end - sp->v[i]->start, to[i]);
		return 0;
	}
	for (size_t i = 0; i < sp->n; i++, nb++) {
		busy[nb][0] = sp->v[i]->start;
		busy[nb][1] = sp->v[i]->end;
	}
	tmp = mem_find_free((const uint64_t (*)[2])busy, nb, total);
	if (tmp == 0)
		return cr_error(err, 0, "pid %d: no free address range to move the vdso through", t->pid);
	for (size_t i = 0, off = 0; i < sp->n; off += sp->v[i]->end - sp->v[i]->start, i++)
		mremap_to(t, sp->v[i]->start, sp->v[i]->end - sp->v[i]->start, tmp + off);
	for (size_t i = 0, off = 0; i < sp->n; off += sp->v[i]->end - sp->v[i]->start, i++)
		mremap_to(t, tmp + off, sp->v[i]->end - sp->v[i]->start, to[i]);
	return 0;
}

/* MAP_FIXED_NOREPLACE: the call fails rather than land anywhere else. */
static void map_vma(struct restore_task *t, size_t i)
{
	const VmaEntry *e = t->mm->vmas[i];
	uint64_t prot = e->prot;
	uint64_t flags = MAP_FIXED_NOREPLACE | (e->shared ? MAP_SHARED : MAP_PRIVATE);
	int64_t fd = t->vma_fd[i];

	if (t->vma_has_pages[i])
		prot |= PROT_READ | PROT_WRITE;
	if (e->kind != VMA_KIND__VMA_FILE)
		flags |= MAP_ANONYMOUS;
	if (e->growsdown)
		flags |= MAP_GROWSDOWN;
	inject_batch_add(&t->batch, "map a VMA", SYS_mmap, e->start, e->end - e->start, prot, flags, (uint64_t)fd,
			 e->kind == VMA_KIND__VMA_FILE ? e->pgoff : 0);
}

static void mark_vmas_with_pages(struct restore_task *t)
{
	size_t v = 0;

	for (size_t i = 0; i < t->n_pagemap; i++) {
		while (v < t->mm->n_vmas && t->mm->vmas[v]->end <= t->pagemap[i]->vaddr)
			v++;
		if (v < t->mm->n_vmas)
			t->vma_has_pages[v] = 1;
	}
}

#define USER_SPACE_47 0x7ffffffff000ULL   /* where the kernel maps without a hint */

static int find_specials(const struct restore_task *t, const struct proc_vma_list *cr, struct cr_specials *sp,
			 cr_error_t *err)
{
	sp->n = 0;
	sp->top = USER_SPACE_47;
	for (size_t i = 0; i < cr->n; i++) {
		const struct proc_vma *v = &cr->v[i];

		if (v->special == VMA_SPECIAL_VSYSCALL)
			continue;   /* above user space */
		if (v->end > sp->top)
			sp->top = v->end;
		if (!special_kind(v->special))
			continue;
		if (sp->n == ARRAY_SIZE(sp->v))
			return cr_error(err, 0, "pid %d: more special mappings than cr knows of", t->pid);
		sp->v[sp->n++] = v;
	}
	return 0;
}

#ifndef ARCH_MAP_VDSO_64
#define ARCH_MAP_VDSO_64 0x2003
#endif

/* Where the dumped special mappings start, if they lie as the kernel lays
 * out its own (cr's: same kinds, order, sizes and offsets), so that
 * arch_prctl(ARCH_MAP_VDSO_64) can make them there afresh; else 0. */
static uint64_t specials_as_kernel_maps(const struct restore_task *t, const struct cr_specials *sp)
{
	uint64_t base = 0;
	size_t k = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (!is_special(e->kind))
			continue;
		if (k == sp->n || e->kind != special_kind(sp->v[k]->special))
			return 0;
		if (k == 0)
			base = e->start;
		if (e->start - base != sp->v[k]->start - sp->v[0]->start ||
		    e->end - e->start != sp->v[k]->end - sp->v[k]->start)
			return 0;
		k++;
	}
	return k == sp->n ? base : 0;
}

/* The kernel maps a vdso where asked (CONFIG_CHECKPOINT_RESTORE) if, asked
 * while the restorer has one, it answers EEXIST. */
static bool vdso_mappable(const struct cr_specials *sp)
{
	return sp->n > 0 && syscall(SYS_arch_prctl, ARCH_MAP_VDSO_64, 0) < 0 && errno == EEXIST;
}

/* Moving the vdso/vvar costs a page-table move each; once cr's memory is
 * gone (they with it) the kernel makes them anew where the dump had them,
 * and each is checked to be there before anything else is mapped. */
static void remake_specials(struct restore_task *t, const struct cr_specials *sp, uint64_t base)
{
	inject_batch_add(&t->batch, "map the vdso at its dumped address", SYS_arch_prctl, ARCH_MAP_VDSO_64, base, 0,
			 0, 0, 0);
	for (size_t i = 0; i < sp->n; i++)
		inject_batch_add(&t->batch, "find the vdso at its dumped address", SYS_msync,
				 base + (sp->v[i]->start - sp->v[0]->start), sp->v[i]->end - sp->v[i]->start, 0, 0,
				 0, 0);
}

int mem_restore_layout(struct restore_ctx *ctx, struct restore_task *t, const struct proc_vma_list *cr_layout,
		       cr_error_t *err)
{
	struct cr_specials sp;
	uint64_t base;

	(void)ctx;
	t->vma_has_pages = calloc(t->mm->n_vmas + 1, 1);
	if (t->vma_has_pages == NULL)
		return cr_error(err, ENOMEM, "pid %d: VMA table", t->pid);
	mark_vmas_with_pages(t);
	if (find_specials(t, cr_layout, &sp, err) < 0)
		return -1;
	base = specials_as_kernel_maps(t, &sp);
	if (base != 0 && vdso_mappable(&sp)) {
		unmap_cr_layout(t, &sp, false);
		remake_specials(t, &sp, base);
	} else {
		unmap_cr_layout(t, &sp, true);
		if (move_specials(t, &sp, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (!is_special(t->mm->vmas[i]->kind))
			map_vma(t, i);
	return restore_batch_run(t, t->inj, err);
}

/* One batch of page data: its buffer, where in the process it goes, and
 * the image mark after which its bytes have arrived. */
struct fill_batch {
	char *buf;
	size_t used;
	struct iovec remote[IOV_MAX];
	int n_remote;
	uint64_t mark;
};

/* Batches are gathered in turn: while the image's thread reads batch k in
 * (cr_pages_read_later), the main thread writes batch k-1 into the process. */
struct page_filler {
	pid_t pid;
	struct cr_img *img;
	struct fill_batch batch[N_BUFS];
	int cur;               /* being gathered */
	int prev;              /* gathered, not yet written, or -1 */
};

static int fill_write(struct page_filler *f, struct fill_batch *b, cr_error_t *err)
{
	struct iovec local = { .iov_base = b->buf, .iov_len = b->used };
	ssize_t n;

	if (cr_img_wait(f->img, b->mark, err) < 0)
		return -1;
	n = process_vm_writev(f->pid, &local, 1, b->remote, (unsigned long)b->n_remote, 0);
	if (n != (ssize_t)b->used)
		return cr_error(err, n < 0 ? errno : EFAULT, "pid %d: write %zu bytes of pages near %p",
				f->pid, b->used, b->remote[0].iov_base);
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

static int set_protections(struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (!t->vma_has_pages[i] || (e->prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE))
			continue;
		inject_batch_add(&t->batch, "set a VMA's protection", SYS_mprotect, e->start, e->end - e->start,
				 e->prot, 0, 0, 0);
	}
	return restore_batch_run(t, t->inj, err);
}

uint64_t mem_page_bytes(const struct restore_task *t)
{
	uint64_t total = 0;

	for (size_t i = 0; i < t->n_pagemap; i++)
		total += (uint64_t)t->pagemap[i]->nr_pages * PAGE_SIZE_CR;
	return total;
}

int mem_restore_pages(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	struct page_bufs *pb = page_bufs_get(&ctx->page_bufs, false, t->pid, err);
	cleanup_free struct page_filler *f = calloc(1, sizeof(*f));
	struct cr_pages_reader *r = NULL;
	char name[IMG_NAME_MAX];
	int ret = -1;

	if (pb == NULL)
		return -1;
	if (f == NULL)
		return cr_error(err, ENOMEM, "pid %d: page batches", t->pid);
	f->pid = t->host_pid;
	f->prev = -1;
	for (int i = 0; i < N_BUFS; i++)
		f->batch[i].buf = pb->buf[i];
	if (cr_pages_reader_open(ctx->dirfd, img_name(name, CR_IMG_PAGES, t->pid), &r, err) < 0)
		goto out;
	f->img = cr_pages_reader_img(r);
	cr_img_crc_checked(f->img);   /* restore_load verified every image */
	if (mem_page_bytes(t) >= CR_PAGES_ASYNC_MIN && cr_img_async(f->img, err) < 0)
		goto out;
	for (size_t i = 0; i < t->n_pagemap; i++)
		if (fill_entry(f, r, t->pagemap[i], err) < 0)
			goto out;
	if (fill_finish(f, err) < 0 || cr_pages_reader_check_end(r, err) < 0)
		goto out;
	ret = set_protections(t, err);
out:
	if (r)
		cr_pages_reader_close(r);
	return ret;
}
