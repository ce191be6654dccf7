/* A mapping's flags beyond its protection and kind (see vmflags.h).
 *
 * Dump: every VmFlags mnemonic of a mapping is either carried back by the
 * mapping itself (protection, sharing, the may-flags, which follow from
 * the file's open mode, growsdown, accounting), restored by cr (the table
 * below), or refused by name: a restore that dropped it would change the
 * process silently.  A mnemonic cr does not know, and a protection key,
 * are refused too.  Guard regions ("gu": a mapping that may hold some)
 * are read from the pagemap, which marks each guard page.
 *
 * Restore: MAP_NORESERVE and MAP_DROPPABLE go with the mmap; the madvise
 * advice and guard regions right after it; mlock and mseal once the pages
 * and the dumped protection are there. */
#include "state/vmflags.h"
#include "os/pagemap.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08          /* Linux 6.11 */
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102      /* Linux 6.13 */
#endif
#ifndef SYS_mseal
#define SYS_mseal 462               /* Linux 6.10 */
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

#define GUARD_BATCH 4096   /* pagemap entries read at once */

/* ------------------------------------------------------------------ dump */

/* Flags the mapping brings back by itself, as cr maps it. */
static const uint64_t carried = PROC_VMF(RD) | PROC_VMF(WR) | PROC_VMF(EX) | PROC_VMF(SH) | PROC_VMF(MR) |
				PROC_VMF(MW) | PROC_VMF(ME) | PROC_VMF(MS) | PROC_VMF(GD) | PROC_VMF(AC) |
				PROC_VMF(SD) | PROC_VMF(GU) | PROC_VMF(HT);   /* ht: huge_page_kb */

static const struct {
	unsigned flag;
	VmaFlag vma_flag;
} restored[] = {
	{ PROC_VMF_LO, VMA_FLAG__VMA_FLAG_LOCKED },     { PROC_VMF_LF, VMA_FLAG__VMA_FLAG_LOCKONFAULT },
	{ PROC_VMF_HG, VMA_FLAG__VMA_FLAG_HUGEPAGE },   { PROC_VMF_NH, VMA_FLAG__VMA_FLAG_NOHUGEPAGE },
	{ PROC_VMF_DC, VMA_FLAG__VMA_FLAG_DONTFORK },   { PROC_VMF_WF, VMA_FLAG__VMA_FLAG_WIPEONFORK },
	{ PROC_VMF_DD, VMA_FLAG__VMA_FLAG_DONTDUMP },   { PROC_VMF_MG, VMA_FLAG__VMA_FLAG_MERGEABLE },
	{ PROC_VMF_SR, VMA_FLAG__VMA_FLAG_SEQUENTIAL }, { PROC_VMF_RR, VMA_FLAG__VMA_FLAG_RANDOM },
	{ PROC_VMF_NR, VMA_FLAG__VMA_FLAG_NORESERVE },  { PROC_VMF_DP, VMA_FLAG__VMA_FLAG_DROPPABLE },
	{ PROC_VMF_SL, VMA_FLAG__VMA_FLAG_SEALED },
};

/* What each flag cr cannot bring back is, for the refusal. */
static const struct {
	unsigned flag;
	const char *what;
} refused[] = {
	{ PROC_VMF_PF, "a device mapping (VM_PFNMAP)" },
	{ PROC_VMF_IO, "a device mapping (VM_IO)" },
	{ PROC_VMF_MM, "a device mapping (VM_MIXEDMAP)" },
	{ PROC_VMF_DE, "a driver's mapping that cannot grow (VM_DONTEXPAND)" },
	{ PROC_VMF_AR, "device memory with a PAT type (VM_PAT)" },
	{ PROC_VMF_SF, "a MAP_SYNC mapping (DAX)" },
	{ PROC_VMF_UM, "a userfaultfd registration (missing pages)" },
	{ PROC_VMF_UW, "a userfaultfd registration (write-protect)" },
	{ PROC_VMF_UI, "a userfaultfd registration (minor faults)" },
	{ PROC_VMF_SS, "a shadow stack" },
	{ PROC_VMF_BT, "an arm64 BTI mapping" },
	{ PROC_VMF_MT, "an arm64 MTE mapping" },
};

static const char *refused_what(unsigned flag)
{
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
		if (refused[i].flag == flag)
			return refused[i].what;
	return "a flag cr cannot restore";
}

static int refuse(const struct dump_task *t, const struct proc_vma *v, const char *what, const char *mnemonic,
		  cr_error_t *err)
{
	return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx%s%s: unsupported: %s (VmFlags \"%s\")", t->pid,
			(unsigned long)v->start, (unsigned long)v->end, v->path ? " of " : "", v->path ? v->path : "",
			what, mnemonic);
}

static void add_guard(struct dump_ctx *ctx, VmaEntry *e, uint64_t offset, uint64_t pages)
{
	PageRun *r = arena_new(&ctx->arena, PageRun);
	PageRun **v = arena_array(&ctx->arena, PageRun *, e->n_guards + 1);

	page_run__init(r);
	r->offset = offset;
	r->nr_pages = (uint32_t)pages;
	if (e->n_guards)
		memcpy(v, e->guards, e->n_guards * sizeof(*v));
	v[e->n_guards++] = r;
	e->guards = v;
}

/* The guard pages of v, as runs from its start: the pagemap marks each. */
static int read_guards(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		       cr_error_t *err)
{
	cleanup_close int fd = -1;
	cleanup_free uint64_t *pm = xmalloc(GUARD_BATCH * sizeof(*pm));
	uint64_t run = 0, run_start = 0;

	if (pagemap_open(t->pid, &fd, err) < 0)
		return -1;
	for (uint64_t addr = v->start; addr < v->end; addr += GUARD_BATCH * PAGE_SIZE_CR) {
		uint64_t n = (v->end - addr) / PAGE_SIZE_CR;

		if (n > GUARD_BATCH)
			n = GUARD_BATCH;
		if (pagemap_read(fd, t->pid, pm, addr, (size_t)n, err) < 0)
			return -1;
		for (uint64_t i = 0; i < n; i++) {
			bool guard = (pm[i] & PM_GUARD) != 0;

			if (guard && run > 0 && run < UINT32_MAX) {
				run++;
				continue;
			}
			if (run > 0)
				add_guard(ctx, e, run_start - v->start, run);
			run = guard ? 1 : 0;
			run_start = addr + i * PAGE_SIZE_CR;
		}
	}
	if (run > 0)
		add_guard(ctx, e, run_start - v->start, run);
	return 0;
}

int vmflags_dump(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		 cr_error_t *err)
{
	if (v->special == VMA_SPECIAL_VDSO || v->special == VMA_SPECIAL_VVAR ||
	    v->special == VMA_SPECIAL_VVAR_VCLOCK)
		return 0;
	if (v->vmflag_unknown[0] != '\0')
		return refuse(t, v, "a flag unknown to cr", v->vmflag_unknown, err);
	if (v->pkey != 0)
		return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx: unsupported: protection key %u", t->pid,
				(unsigned long)v->start, (unsigned long)v->end, v->pkey);
	for (unsigned f = 0; f < PROC_VMF_N; f++) {
		size_t k = 0;

		if (!(v->vmflags & (UINT64_C(1) << f)) || (carried & (UINT64_C(1) << f)))
			continue;
		if (f == PROC_VMF_DE && ((v->vmflags & PROC_VMF(HT)) || e->has_aio_nr_req))
			continue;   /* hugetlbfs sets it on its every mapping, io_setup on its ring */
		while (k < ARRAY_SIZE(restored) && restored[k].flag != f)
			k++;
		if (k == ARRAY_SIZE(restored))
			return refuse(t, v, refused_what(f), proc_vmflag_name(f), err);
		e->flags |= (uint32_t)restored[k].vma_flag;
	}
	e->has_flags = e->flags != 0;
	e->growsdown = e->growsdown || (v->vmflags & PROC_VMF(GD));
	if (v->vmflags & PROC_VMF(HT)) {
		if (v->page_kb < 8 || (v->page_kb & (v->page_kb - 1)))
			return refuse(t, v, "a hugetlb mapping without a huge page size in smaps", "ht", err);
		e->has_huge_page_kb = true;
		e->huge_page_kb = v->page_kb;
	}
	return (v->vmflags & PROC_VMF(GU)) ? read_guards(ctx, t, v, e, err) : 0;
}

/* --------------------------------------------------------------- restore */

#define ALL_FLAGS 0x1fffu                   /* every VmaFlag value */
#define IMPLIED_BY_DROPPABLE (VMA_FLAG__VMA_FLAG_WIPEONFORK | VMA_FLAG__VMA_FLAG_DONTDUMP | \
			      VMA_FLAG__VMA_FLAG_NORESERVE)

static bool private_anon(const VmaEntry *e)
{
	return !e->shared && (e->kind == VMA_KIND__VMA_ANON || e->kind == VMA_KIND__VMA_HEAP ||
			      e->kind == VMA_KIND__VMA_STACK);
}

static int validate_flags(const struct restore_task *t, size_t i, const VmaEntry *e, cr_error_t *err)
{
	const char *bad = NULL;

	if (e->flags & ~ALL_FLAGS)
		bad = "an unknown flag";
	else if ((e->flags & VMA_FLAG__VMA_FLAG_LOCKONFAULT) && !(e->flags & VMA_FLAG__VMA_FLAG_LOCKED))
		bad = "lock on fault without lock";
	else if ((e->flags & (VMA_FLAG__VMA_FLAG_DROPPABLE | VMA_FLAG__VMA_FLAG_WIPEONFORK)) && !private_anon(e))
		bad = "droppable or wipe-on-fork on a mapping that is not private anonymous memory";
	else if ((e->flags & VMA_FLAG__VMA_FLAG_DROPPABLE) && e->kind != VMA_KIND__VMA_ANON)
		bad = "droppable heap or stack";
	else if (e->flags && (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR ||
			      e->kind == VMA_KIND__VMA_VVAR_VCLOCK))
		bad = "flags on the vdso";
	if (bad != NULL)
		return cr_error(err, 0, "mm-%d.img: VMA %zu has flags 0x%x: %s", t->pid, i, e->flags, bad);
	return 0;
}

int vmflags_validate(const struct restore_task *t, size_t i, cr_error_t *err)
{
	const VmaEntry *e = t->mm->vmas[i];
	uint64_t pages = (e->end - e->start) / PAGE_SIZE_CR, prev_end = 0;

	if (validate_flags(t, i, e, err) < 0)
		return -1;
	if (e->has_huge_page_kb) {
		uint64_t huge = (uint64_t)e->huge_page_kb << 10;

		if (e->huge_page_kb < 8 || e->huge_page_kb > (1u << 24) || (e->huge_page_kb & (e->huge_page_kb - 1)) ||
		    e->start % huge || e->end % huge || e->pgoff % huge || e->growsdown || e->n_guards ||
		    (e->kind != VMA_KIND__VMA_ANON))
			return cr_error(err, 0, "mm-%d.img: VMA %zu: a hugetlb mapping of %u kB pages that is not "
					"aligned to them, or of a kind hugetlb cannot be", t->pid, i, e->huge_page_kb);
	}
	for (size_t k = 0; k < e->n_guards; k++) {
		const PageRun *r = e->guards[k];

		if (r->nr_pages == 0 || r->offset % PAGE_SIZE_CR || r->offset < prev_end ||
		    r->offset / PAGE_SIZE_CR >= pages || r->nr_pages > pages - r->offset / PAGE_SIZE_CR)
			return cr_error(err, 0, "mm-%d.img: VMA %zu: guard region %zu (offset %llu, %u pages) is out "
					"of order or outside the VMA", t->pid, i, k, (unsigned long long)r->offset,
					r->nr_pages);
		prev_end = r->offset + (uint64_t)r->nr_pages * PAGE_SIZE_CR;
	}
	return 0;
}

uint64_t vmflags_mmap_flags(const VmaEntry *e)
{
	uint64_t flags = 0;

	if (e->flags & VMA_FLAG__VMA_FLAG_NORESERVE)
		flags |= MAP_NORESERVE;
	if (e->flags & VMA_FLAG__VMA_FLAG_DROPPABLE)
		flags |= MAP_DROPPABLE;
	if (e->has_huge_page_kb)
		flags |= vmflags_hugetlb_bits(e->huge_page_kb, MAP_HUGETLB);
	return flags;
}

uint64_t vmflags_hugetlb_bits(uint32_t page_kb, uint64_t hugetlb_flag)
{
	unsigned shift = 10;

	while ((UINT64_C(1) << shift) < ((uint64_t)page_kb << 10))
		shift++;
	return hugetlb_flag | ((uint64_t)shift << MAP_HUGE_SHIFT);   /* MFD_HUGE_SHIFT, SHM_HUGE_SHIFT: the same */
}

static const struct {
	VmaFlag flag;
	int advice;
	const char *name;
} advice[] = {
	{ VMA_FLAG__VMA_FLAG_HUGEPAGE, MADV_HUGEPAGE, "madvise MADV_HUGEPAGE" },
	{ VMA_FLAG__VMA_FLAG_NOHUGEPAGE, MADV_NOHUGEPAGE, "madvise MADV_NOHUGEPAGE" },
	{ VMA_FLAG__VMA_FLAG_DONTFORK, MADV_DONTFORK, "madvise MADV_DONTFORK" },
	{ VMA_FLAG__VMA_FLAG_WIPEONFORK, MADV_WIPEONFORK, "madvise MADV_WIPEONFORK" },
	{ VMA_FLAG__VMA_FLAG_DONTDUMP, MADV_DONTDUMP, "madvise MADV_DONTDUMP" },
	{ VMA_FLAG__VMA_FLAG_MERGEABLE, MADV_MERGEABLE, "madvise MADV_MERGEABLE" },
	{ VMA_FLAG__VMA_FLAG_SEQUENTIAL, MADV_SEQUENTIAL, "madvise MADV_SEQUENTIAL" },
	{ VMA_FLAG__VMA_FLAG_RANDOM, MADV_RANDOM, "madvise MADV_RANDOM" },
};

void vmflags_queue_advice(struct restore_task *t, const VmaEntry *e)
{
	uint32_t flags = e->flags;

	if (flags & VMA_FLAG__VMA_FLAG_DROPPABLE)
		flags &= ~(uint32_t)IMPLIED_BY_DROPPABLE;   /* MAP_DROPPABLE sets them */
	for (size_t k = 0; k < ARRAY_SIZE(advice); k++)
		if (flags & advice[k].flag)
			inject_batch_add(&t->batch, advice[k].name, SYS_madvise, e->start, e->end - e->start,
					 (uint64_t)advice[k].advice, 0, 0, 0);
	for (size_t k = 0; k < e->n_guards; k++)
		inject_batch_add(&t->batch, "install a guard region", SYS_madvise, e->start + e->guards[k]->offset,
				 (uint64_t)e->guards[k]->nr_pages * PAGE_SIZE_CR, MADV_GUARD_INSTALL, 0, 0, 0);
}

void vmflags_queue_locks(struct restore_task *t, const VmaEntry *e)
{
	uint64_t len = e->end - e->start;

	if (e->flags & VMA_FLAG__VMA_FLAG_LOCKONFAULT)
		inject_batch_add(&t->batch, "mlock2 MLOCK_ONFAULT", SYS_mlock2, e->start, len, MLOCK_ONFAULT, 0, 0, 0);
	else if (e->flags & VMA_FLAG__VMA_FLAG_LOCKED)
		inject_batch_add(&t->batch, "mlock", SYS_mlock, e->start, len, 0, 0, 0, 0);
	if (e->flags & VMA_FLAG__VMA_FLAG_SEALED)
		inject_batch_add(&t->batch, "mseal", SYS_mseal, e->start, len, 0, 0, 0, 0);
}
