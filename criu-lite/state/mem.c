/* Memory, as a kind of state: every mapping (VMA) of a process with its
 * address, size, protection, kind and flags, in mm-PID.img, and its
 * contents (pagedata.c; shared anonymous memory: shmem.c).
 *
 * Dump: the VMAs come from /proc/PID/smaps, each with its VmFlags
 * (vmflags.c); a file mapping names its file in files.img (restore checks
 * it is unchanged), opened for writing if the mapping may write to it
 * (VmFlags "mw"), so that mprotect works on it as it did.  Mappings of
 * the kernel's memory objects (shared anonymous memory, memfds, System V
 * segments) and of deleted files map an object of shmem.c; a private
 * /dev/zero mapping is anonymous memory; an aio ring is made again by
 * io_setup (aio.c).  Refused by name: special mappings cr does not know,
 * part of a System V segment, and files that are not regular.
 *
 * Restore: the restorer plans, for each process, fd slots for the files its
 * VMAs map and the place of its trampoline (tramp.c).  The child opens the
 * mapped files into their slots and maps the trampoline; then, by
 * injection, everything of cr's is unmapped (cr's rseq registration first:
 * it points into cr's memory), the vdso and vvar go to their dumped
 * addresses, every dumped VMA is mapped at its address (writable where
 * pages go; an object's mapping from its inherited fd, a System V segment
 * attached by id; a process without a vdso gets none) with
 * its advice and guard regions (a cow VMA, built before the fork with the
 * pages it shares with its parent, is moved there instead: cow.c), the
 * pages are written, and the dumped protections, then mlock and mseal,
 * are queued for the next batch. */
#include "fd/reg.h"
#include "state/aio.h"
#include "img/pages.h"
#include "os/log.h"
#include "os/ptrace.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/cow.h"
#include "state/mntns.h"
#include "state/files.h"
#include "state/pagedata.h"
#include "state/sharing.h"
#include "state/shmem.h"
#include "state/state.h"
#include "state/tramp.h"
#include "state/vmflags.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define RSEQ_FLAG_UNREGISTER 1

/* ------------------------------------------------------------------ dump */

/* A shared mapping that may write (VmFlags "mw") had its file open for
 * writing, whether or not it is writable now: mprotect(PROT_WRITE) must
 * still work after restore. */
static int add_file_vma(struct dump_ctx *ctx, struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
			cr_error_t *err)
{
	uint32_t flags = (v->shared && (v->vmflags & PROC_VMF(MW))) ? O_RDWR : O_RDONLY;
	char view[PATH_MAX + 64];
	struct stat st;

	if (stat(mntns_dump_view(t->pid, v->path, view, sizeof(view)), &st) < 0)
		return cr_error(err, errno, "pid %d: mapped file %s", t->pid, v->path);
	if (!S_ISREG(st.st_mode))
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx of %s: only regular files can be mapped",
				t->pid, (unsigned long)v->start, (unsigned long)v->end, v->path);
	if (st.st_ino != v->ino)
		return cr_error(err, 0, "pid %d: mapped file %s was replaced since it was mapped "
				"(a deleted file is not supported yet)", t->pid, v->path);
	e->kind = VMA_KIND__VMA_FILE;
	e->has_file_id = true;
	e->file_id = files_add_mapped(ctx, t, v->path, flags, &st);
	return 0;
}

/* What a mapping of a file that has no name any more is, for the refusal. */
static const char *deleted_kind(const struct proc_vma *v)
{
	const char *what = proc_kernel_memory_file(v->path);

	if (what == NULL && (v->vmflags & PROC_VMF(HT)))
		return "a deleted file of a hugetlbfs mount";
	return what != NULL ? what : "a mapping of a deleted file";
}

/* The source of the object a deleted mapping maps (0: shared anonymous
 * memory), -1 for the kernel's memory files cr does not restore. */
static int object_source(const struct proc_vma *v)
{
	const char *what = proc_kernel_memory_file(v->path);

	if (what == NULL)
		return (v->vmflags & PROC_VMF(HT)) ? -1 : SHMEM_SOURCE__SHMEM_DELETED;
	if (strcmp(v->path, "/dev/zero") == 0)
		return 0;
	if (strncmp(v->path, "/memfd:", 7) == 0)
		return SHMEM_SOURCE__SHMEM_MEMFD;
	if (strncmp(v->path, "/SYSV", 5) == 0)
		return SHMEM_SOURCE__SHMEM_SYSV;
	return -1;
}

/* A mapping of a file deleted under the name it was mapped by and still
 * linked under another (glibc's sem_open makes a semaphore under a
 * temporary name, maps it and links it under the real one): recorded as
 * a mapping of the file by that other name (fd/reg.h), which the restore
 * maps (maps then shows that name).  1 if it is one; 0 leaves it to the
 * other kinds of deleted files (whose refusal names it). */
static int relinked_vma(struct dump_ctx *ctx, struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
			cr_error_t *err)
{
	char link[96], view[PATH_MAX + 64], other[PATH_MAX];
	struct proc_vma named = *v;
	struct stat st;

	snprintf(link, sizeof(link), "/proc/%d/map_files/%lx-%lx", t->pid, (unsigned long)v->start,
		 (unsigned long)v->end);
	if (stat(link, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0 || st.st_ino != v->ino)
		return 0;
	if (strcmp(mntns_dump_view(t->pid, v->path, view, sizeof(view)), v->path) != 0)
		return 0;   /* a mount namespace of its own: not looked for */
	if (!reg_other_name(v->path, link, &st, other, sizeof(other)))
		return 0;
	pr_info("pid %d: mapping 0x%lx-0x%lx of %s (deleted) is mapped as %s, another name of the file", t->pid,
		(unsigned long)v->start, (unsigned long)v->end, v->path, other);
	named.path = other;
	named.deleted = false;
	return add_file_vma(ctx, t, &named, e, err) < 0 ? -1 : 1;
}

/* shmat attaches a segment whole: a mapping of part of one (an munmap or
 * mremap since) could not be made again. */
static int check_sysv_whole(const struct dump_task *t, const struct proc_vma *v, cr_error_t *err)
{
	struct shmid_ds ds;
	uint64_t size;

	if (shmctl((int)v->ino, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "pid %d: mapping 0x%lx-0x%lx of System V segment %llu: shmctl(IPC_STAT)",
				t->pid, (unsigned long)v->start, (unsigned long)v->end, (unsigned long long)v->ino);
	size = (ds.shm_segsz + PAGE_SIZE_CR - 1) / PAGE_SIZE_CR * PAGE_SIZE_CR;
	if (v->pgoff != 0 || v->end - v->start != size)
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx is part of System V segment %llu (%zu bytes): "
				"unsupported (shmat attaches a segment whole)", t->pid, (unsigned long)v->start,
				(unsigned long)v->end, (unsigned long long)v->ino, (size_t)ds.shm_segsz);
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
	if (!v->deleted && !v->shared && strcmp(v->path, "/dev/zero") == 0) {
		e->kind = VMA_KIND__VMA_ANON;   /* a private mapping of /dev/zero is anonymous memory */
		return 0;
	}
	if (v->deleted && strcmp(v->path, "/anon_hugepage") == 0) {
		e->kind = VMA_KIND__VMA_ANON;   /* MAP_HUGETLB: private, or shared (an object) */
		if (v->shared)
			shmem_dump_vma(ctx, t, v, e, 0);
		return 0;
	}
	if (v->deleted && strcmp(v->path, "/[aio]") == 0)
		return aio_dump_vma(ctx, t, v, e, err);
	if (v->deleted && object_source(v) == SHMEM_SOURCE__SHMEM_DELETED) {
		int r = relinked_vma(ctx, t, v, e, err);

		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	if (v->deleted) {
		int source = object_source(v);

		if (source >= 0 && (source != SHMEM_SOURCE__SHMEM_SYSV || check_sysv_whole(t, v, err) == 0)) {
			e->kind = VMA_KIND__VMA_ANON;   /* mapped from its object */
			e->read_only_attach = source == SHMEM_SOURCE__SHMEM_SYSV && !(v->vmflags & PROC_VMF(MW));
			e->has_read_only_attach = e->read_only_attach;
			shmem_dump_vma(ctx, t, v, e, source);
			return 0;
		}
		if (source >= 0)
			return -1;
	}
	if (v->deleted)
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx of %s (deleted): unsupported kind (%s)", t->pid,
				(unsigned long)v->start, (unsigned long)v->end, v->path, deleted_kind(v));
	return add_file_vma(ctx, t, v, e, err);
}

static int mem_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
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
		if (classify_vma(ctx, t, v, e, err) < 0 || vmflags_dump(ctx, t, v, e, err) < 0)
			return -1;
		mm->vmas[mm->n_vmas++] = e;
	}
	return 0;
}


static int mem_collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	(void)ctx;
	return aio_check_owned(t, err);
}

static int mem_write(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	return pagedata_dump(ctx, t, err);
}

static void mem_release_dump(struct dump_ctx *ctx)
{
	pagedata_bufs_free(steal_pointer(&ctx->page_bufs));
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

/* What mmap refuses: a shared mapping of other than a file or shared
 * memory, MAP_GROWSDOWN on a shared or file mapping, a file mapping of
 * other than a regular file. */
static int check_vma_kind(const struct restore_ctx *ctx, const struct restore_task *t, size_t i, const VmaEntry *e,
			  cr_error_t *err)
{
	const FileEntry *fe = e->has_file_id ? restore_file(ctx, e->file_id) : NULL;

	if (e->shared && e->kind != VMA_KIND__VMA_FILE && e->kind != VMA_KIND__VMA_ANON)
		return cr_error(err, 0, "mm-%d.img: VMA %zu of kind %d is shared", t->pid, i, e->kind);
	if (e->growsdown && (e->shared || e->kind == VMA_KIND__VMA_FILE || is_special(e->kind)))
		return cr_error(err, 0, "mm-%d.img: VMA %zu grows down but is shared, a file's or special", t->pid, i);
	if (fe != NULL && fe->kind != FILE_KIND__FILE_REG)
		return cr_error(err, 0, "mm-%d.img: VMA %zu maps file %u, which is no regular file", t->pid, i, fe->id);
	return 0;
}

static int validate_layout(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
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
		/* mmap takes a file offset up to the largest file size, end included. */
		if (e->pgoff > (uint64_t)INT64_MAX - (e->end - e->start))
			return cr_error(err, 0, "mm-%d.img: VMA %zu (0x%lx) maps offset 0x%llx, beyond any file", t->pid,
					i, (unsigned long)e->start, (unsigned long long)e->pgoff);
		if (e->start < prev_end)
			return cr_error(err, 0, "mm-%d.img: VMA %zu at 0x%lx overlaps the one before it",
					t->pid, i, (unsigned long)e->start);
		if (e->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC))
			return cr_error(err, 0, "mm-%d.img: VMA %zu has bad protection 0x%x", t->pid, i, e->prot);
		if (e->kind < VMA_KIND__VMA_ANON || e->kind > VMA_KIND__VMA_VVAR_VCLOCK ||
		    (e->kind != VMA_KIND__VMA_FILE && e->has_file_id))
			return cr_error(err, 0, "mm-%d.img: VMA %zu has kind %d%s", t->pid, i, e->kind,
					e->has_file_id ? " with a file" : "");
		if (e->kind == VMA_KIND__VMA_FILE && !e->has_file_id)
			return cr_error(err, 0, "mm-%d.img: file VMA %zu names no file", t->pid, i);
		if (e->has_file_id && restore_file(ctx, e->file_id) == NULL)
			return cr_error(err, 0, "mm-%d.img: VMA %zu names file %u, which files.img lacks", t->pid,
					i, e->file_id);
		if (e->kind == VMA_KIND__VMA_ANON && e->shared && !e->has_shmem_id && !aio_is_ring(e))
			return cr_error(err, 0, "mm-%d.img: shared anonymous VMA %zu names no shmem object", t->pid, i);
		if (check_vma_kind(ctx, t, i, e, err) < 0)
			return -1;
		if (vmflags_validate(t, i, err) < 0 || aio_validate(t, i, err) < 0)
			return -1;
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
		    is_special(mm->vmas[v]->kind) || (mm->vmas[v]->has_shmem_id && mm->vmas[v]->shared) ||
		    aio_is_ring(mm->vmas[v]))
			return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%lx, %u pages) lies outside "
					"every VMA", t->pid, i, (unsigned long)p->vaddr, p->nr_pages);
		if (p->has_in_prev && p->in_prev &&
		    ((p->has_in_parent && p->in_parent) || (mm->vmas[v]->has_cow && mm->vmas[v]->cow)))
			return cr_error(err, 0, "pagemap-%d.img: entry %zu (0x%lx) is an earlier round's in memory built "
					"before the children exist", t->pid, i, (unsigned long)p->vaddr);
		prev_end = end;
	}
	return 0;
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

static int cmp_keep(const void *pa, const void *pb)
{
	const uint64_t *a = pa, *b = pb;

	return a[0] < b[0] ? -1 : a[0] > b[0];
}

/* Unmaps everything of cr's in one sweep of user space around what stays:
 * the trampoline, the special mappings if they are to be moved, and the
 * cow VMAs the process built before it forked (cow.c). */
static void unmap_cr_layout(struct restore_task *t, const struct cr_specials *sp, bool keep_specials,
			    const uint64_t *aio_at)
{
	size_t max = 1 + sp->n + cow_count(t) + t->mm->n_vmas, n = 0;
	cleanup_free uint64_t (*keep)[2] = xmalloc(max * sizeof(*keep));
	uint64_t from = 0;

	keep[n][0] = t->tramp;
	keep[n++][1] = t->tramp + t->tramp_size;
	for (size_t i = 0; keep_specials && i < sp->n; i++, n++) {
		keep[n][0] = sp->v[i]->start;
		keep[n][1] = sp->v[i]->end;
	}
	n += cow_keep(t, keep + n, max - n);
	for (size_t i = 0, k = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (!aio_is_ring(e))
			continue;
		keep[n][0] = aio_at[k++];   /* the rings the child made, moved below */
		keep[n][1] = keep[n][0] + (e->end - e->start);
		n++;
	}
	qsort(keep, n, sizeof(*keep), cmp_keep);
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
	cleanup_free uint64_t (*busy)[2] = xcalloc(mm->n_vmas + sp->n + 1, sizeof(*busy));
	uint64_t to[8], total = 0, tmp;
	size_t nb = 0;
	bool direct = true;

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
	tmp = find_free_range((const uint64_t (*)[2])busy, nb, total);
	if (tmp == 0)
		return cr_error(err, 0, "pid %d: no free address range to move the vdso through", t->pid);
	for (size_t i = 0, off = 0; i < sp->n; off += sp->v[i]->end - sp->v[i]->start, i++)
		mremap_to(t, sp->v[i]->start, sp->v[i]->end - sp->v[i]->start, tmp + off);
	for (size_t i = 0, off = 0; i < sp->n; off += sp->v[i]->end - sp->v[i]->start, i++)
		mremap_to(t, tmp + off, sp->v[i]->end - sp->v[i]->start, to[i]);
	return 0;
}

/* The fd VMA i is mapped from in the child, -1 if none. */
static int vma_fd(const struct restore_task *t, size_t i)
{
	return t->vma_fd[i] < 0 ? -1 : t->reserved_base + t->vma_fd[i];
}

/* A System V segment, attached at its place (shmat fails on a mapping
 * there), read-only if it was attached so (SHM_RDONLY), else writable,
 * then given its protection. */
static void attach_segment(struct restore_task *t, const VmaEntry *e, int id)
{
	uint32_t prot = PROT_READ | (e->read_only_attach ? 0 : PROT_WRITE) | (e->prot & PROT_EXEC);

	inject_batch_add(&t->batch, "attach a System V segment", SYS_shmat, (uint64_t)id, e->start,
			 ((e->prot & PROT_EXEC) ? SHM_EXEC : 0) | (e->read_only_attach ? SHM_RDONLY : 0), 0, 0, 0);
	if (e->prot != prot)
		inject_batch_add(&t->batch, "set a VMA's protection", SYS_mprotect, e->start, e->end - e->start,
				 e->prot, 0, 0, 0);
}

/* MAP_FIXED_NOREPLACE: the call fails rather than land anywhere else.
 * Shared anonymous memory is its object's fd, at its offset; MAP_DROPPABLE
 * is a type of mapping of its own, in place of MAP_PRIVATE. */
static void map_vma(const struct restore_ctx *ctx, struct restore_task *t, size_t i)
{
	const VmaEntry *e = t->mm->vmas[i];
	uint64_t prot = e->prot;
	uint64_t flags = MAP_FIXED_NOREPLACE | vmflags_mmap_flags(e);
	int64_t fd = vma_fd(t, i);
	bool by_fd = e->kind == VMA_KIND__VMA_FILE || e->has_shmem_id;

	if (aio_is_ring(e)) {
		vmflags_queue_advice(t, e);   /* made by io_setup, moved to its place (restore_layout) */
		return;
	}
	if (e->has_cow && e->cow) {
		cow_queue_move(t, i);   /* built before the fork, pages and all */
		vmflags_queue_advice(t, e);
		return;
	}
	if (e->has_shmem_id && shmem_sysv_id(ctx, e->shmem_id) >= 0) {
		attach_segment(t, e, shmem_sysv_id(ctx, e->shmem_id));
		vmflags_queue_advice(t, e);
		return;
	}
	if (t->vma_has_pages[i])
		prot |= PROT_READ | PROT_WRITE;
	if (!(e->flags & VMA_FLAG__VMA_FLAG_DROPPABLE))
		flags |= e->shared ? MAP_SHARED : MAP_PRIVATE;
	if (e->has_shmem_id)
		fd = shmem_fd(ctx, e->shmem_id);
	if (!by_fd)
		flags |= MAP_ANONYMOUS;
	if (e->growsdown)
		flags |= MAP_GROWSDOWN;
	inject_batch_add(&t->batch, "map a VMA", SYS_mmap, e->start, e->end - e->start, prot, flags, (uint64_t)fd,
			 by_fd ? e->pgoff : 0);
	vmflags_queue_advice(t, e);
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
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->has_cow && t->mm->vmas[i]->cow)
			t->vma_has_pages[i] = 1;   /* built writable */
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

static bool has_specials(const struct restore_task *t)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (is_special(t->mm->vmas[i]->kind))
			return true;
	return false;
}

static int restore_layout(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	struct cr_specials sp;
	cleanup_free uint64_t *aio_at = NULL;
	size_t n_aio;
	uint64_t base;

	t->vma_has_pages = xcalloc(t->mm->n_vmas + 1, 1);
	mark_vmas_with_pages(t);
	if (find_specials(t, &ctx->cr_layout, &sp, err) < 0 || aio_find_rings(t, &aio_at, &n_aio, err) < 0)
		return -1;
	base = specials_as_kernel_maps(t, &sp);
	if (!has_specials(t)) {
		unmap_cr_layout(t, &sp, false, aio_at);   /* the process had unmapped its vdso */
	} else if (base != 0 && vdso_mappable(&sp)) {
		unmap_cr_layout(t, &sp, false, aio_at);
		remake_specials(t, &sp, base);
	} else {
		unmap_cr_layout(t, &sp, true, aio_at);
		if (move_specials(t, &sp, err) < 0)
			return -1;
	}
	for (size_t i = 0, k = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (aio_is_ring(e) && aio_at[k] != e->start)   /* the kernel follows: the context is its address */
			inject_batch_add(&t->batch, "move an aio ring to its dumped address", SYS_mremap, aio_at[k],
					 e->end - e->start, e->end - e->start, MREMAP_MAYMOVE | MREMAP_FIXED, e->start,
					 0);
		k += aio_is_ring(e);
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (!is_special(t->mm->vmas[i]->kind))
			map_vma(ctx, t, i);
	return restore_batch_run(t, t->inj, err);
}


/* Each page data file must hold exactly the pages the pagemap lists in it. */
static int validate_page_total(const struct restore_ctx *ctx, const struct restore_task *t, bool early,
			       cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	uint64_t have, want = pagedata_bytes(t, early);

	if (cr_pages_scan(ctx->dirfd, img_name(name, early ? CR_IMG_EARLY_PAGES : CR_IMG_PAGES, t->pid), &have,
			  err) < 0)
		return -1;
	if (have != want)
		return cr_error(err, 0, "%s holds %llu bytes of pages, pagemap-%d.img lists %llu for it", name,
				(unsigned long long)have, t->pid, (unsigned long long)want);
	return 0;
}

/* The files the VMAs map are there and are the dumped ones, checked
 * before any process exists (the child checks again as it opens them). */
static int validate_mapped_files(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	uint32_t last = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		const FileEntry *fe;

		if (e->kind != VMA_KIND__VMA_FILE || e->file_id == last)
			continue;
		last = e->file_id;
		fe = restore_file(ctx, e->file_id);
		if ((fe->flags & O_ACCMODE) != O_RDONLY && (fe->flags & O_ACCMODE) != O_RDWR)
			return cr_error(err, 0, "mm-%d.img: mapping 0x%llx-0x%llx: file %u is opened write-only, which "
					"no mapping can use", t->pid, (unsigned long long)e->start,
					(unsigned long long)e->end, fe->id);
		if (reg_check(ctx, fe, !(fe->flags & O_ACCMODE), err) < 0)
			return cr_error_wrap(err, "mm-%d.img: mapping 0x%llx-0x%llx", t->pid,
					     (unsigned long long)e->start, (unsigned long long)e->end);
	}
	return 0;
}

static int mem_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	if (validate_layout(ctx, t, err) < 0 || validate_mapped_files(ctx, t, err) < 0)
		return -1;
	if (validate_page_total(ctx, t, false, err) < 0)
		return -1;
	return validate_page_total(ctx, t, true, err);
}

/* A file VMA by file id, then by index. */
struct vma_ref {
	uint32_t file_id;
	size_t i;
};

static int cmp_vma_ref(const void *pa, const void *pb)
{
	const struct vma_ref *a = pa, *b = pb;

	if (a->file_id != b->file_id)
		return a->file_id < b->file_id ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

/* Per VMA, the first VMA of the same file (itself for the first, and for
 * VMAs of no file): found by sorting, not by looking back over all. */
static size_t *first_of_same_file(const MmEntry *mm)
{
	size_t *first = xmalloc((mm->n_vmas + 1) * sizeof(*first));
	cleanup_free struct vma_ref *refs = xmalloc((mm->n_vmas + 1) * sizeof(*refs));
	size_t n = 0;

	for (size_t i = 0; i < mm->n_vmas; i++) {
		first[i] = i;
		if (mm->vmas[i]->kind == VMA_KIND__VMA_FILE)
			refs[n++] = (struct vma_ref){ mm->vmas[i]->file_id, i };
	}
	qsort(refs, n, sizeof(*refs), cmp_vma_ref);
	for (size_t k = 1; k < n; k++)
		if (refs[k].file_id == refs[k - 1].file_id)
			first[refs[k].i] = first[refs[k - 1].i];
	return first;
}

/* One fd slot per mapped file, after the reserved ones; VMAs of the same
 * file share it. */
static void plan_vma_fds(struct restore_task *t)
{
	cleanup_free size_t *first = first_of_same_file(t->mm);
	int slot = RESERVED_MAPS;

	t->vma_fd = xmalloc((t->mm->n_vmas + 1) * sizeof(int));
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		if (t->mm->vmas[i]->kind != VMA_KIND__VMA_FILE)
			t->vma_fd[i] = -1;
		else
			t->vma_fd[i] = first[i] == i ? slot++ : t->vma_fd[first[i]];
	}
	t->n_reserved = slot;
}

static int mem_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		if (t->zombie)
			continue;
		plan_vma_fds(t);
		if (tramp_plan(ctx, t, err) < 0)
			return cr_error_wrap(err, "pid %d", t->pid);
	}
	return 0;
}

/* In the child: the files its VMAs map, each at its slot, and the
 * trampoline. */
static int mem_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (vma_fd(t, i) < 0 || fcntl(vma_fd(t, i), F_GETFD) >= 0)
			continue;   /* none, or already open for an earlier VMA */
		if (files_open_mapped(ctx, t, restore_file(ctx, e->file_id), vma_fd(t, i), err) < 0)
			return cr_error_wrap(err, "mapping 0x%lx-0x%lx", (unsigned long)e->start,
					     (unsigned long)e->end);
	}
	if (tramp_map(t, err) < 0)
		return -1;
	return aio_setup_rings(t, err);
}

/* glibc registered an rseq area in cr's memory for the process's main
 * thread: it must go before that memory does. */
static int forget_cr_rseq(struct restore_task *t, cr_error_t *err)
{
	struct ptrace_rseq_configuration conf;
	bool has;

	if (ptrace_get_rseq(t->host_pid, &conf, &has, err) < 0)
		return -1;
	if (has)
		inject_batch_add(&t->batch, "unregister cr's rseq", SYS_rseq, conf.rseq_abi_pointer,
				 conf.rseq_abi_size, RSEQ_FLAG_UNREGISTER, conf.signature, 0, 0);
	return 0;
}

/* The dumped protections of VMAs that were mapped writable for their
 * pages, then every mlock and mseal, queued for the next batch. */
static void queue_protections(struct restore_task *t)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (!t->vma_has_pages[i] || (e->prot & (PROT_READ | PROT_WRITE)) == (PROT_READ | PROT_WRITE))
			continue;
		inject_batch_add(&t->batch, "set a VMA's protection", SYS_mprotect, e->start, e->end - e->start,
				 e->prot, 0, 0, 0);
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		vmflags_queue_locks(t, t->mm->vmas[i]);
}

/* Runs what was queued before it with the layout change: memory is the
 * first kind applied by injection. */
static int mem_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (shmem_fill(ctx, err) < 0 || forget_cr_rseq(t, err) < 0 || restore_layout(ctx, t, err) < 0 ||
	    pagedata_restore(ctx, t, err) < 0)
		return -1;
	queue_protections(t);
	return 0;
}

static void mem_release_restore(struct restore_ctx *ctx)
{
	pagedata_bufs_free(steal_pointer(&ctx->page_bufs));
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		free(steal_pointer(&ctx->tasks[i].vma_fd));
		free(steal_pointer(&ctx->tasks[i].vma_has_pages));
	}
}

/* An address space shared by two processes (clone with CLONE_VM and
 * without CLONE_THREAD; a vfork child before its exec) would come back
 * as two copies, each writing where the other no longer sees. */
static int mem_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	return sharing_refuse(ctx, KCMP_VM, "address space", err);
}

const struct state_kind state_memory = {
	.name = "memory",
	.collect = mem_collect,
	.collect_injected = mem_collect_injected,
	.check_tree = mem_check_tree,
	.write = mem_write,
	.release_dump = mem_release_dump,
	.validate = mem_validate,
	.plan = mem_plan,
	.setup = mem_setup,
	.apply = mem_apply,
	.release_restore = mem_release_restore,
};
