#include "state/tramp.h"
#include "state/locks.h"
#include "state/seccomp.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define PMD_SPAN (1ULL << 30)          /* what one page of page middle directory maps */
#define PUD_SPAN (1ULL << 39)          /* ... and one page of page upper directory */
#define PT_SPAN  (2ULL << 20)          /* ... and one page of page table */
#define USER_TOP 0x7ffffffff000ULL

static bool range_free(const uint64_t (*busy)[2], size_t n, uint64_t at, uint64_t len)
{
	for (size_t i = 0; i < n; i++)
		if (at < busy[i][1] + PAGE_SIZE_CR && busy[i][0] < at + len + PAGE_SIZE_CR)
			return false;
	return true;
}

/* How many levels of page tables above the last one cr's layout already
 * has for a mapping at addr: 2, 1 or 0 to allocate fewer in the child. */
static int tables_shared(const struct proc_vma_list *mine, uint64_t addr)
{
	int best = 0;

	for (size_t i = 0; i < mine->n && best < 2; i++) {
		const struct proc_vma *v = &mine->v[i];

		if (v->special == VMA_SPECIAL_VSYSCALL)
			continue;
		if (v->start / PMD_SPAN <= addr / PMD_SPAN && addr / PMD_SPAN <= (v->end - 1) / PMD_SPAN)
			best = 2;
		else if (v->start / PUD_SPAN <= addr / PUD_SPAN && addr / PUD_SPAN <= (v->end - 1) / PUD_SPAN)
			best = 1;
	}
	return best;
}

/* A place a page away from a dumped mapping, in the same 2 MiB: the page
 * tables the trampoline needs are then ones the dumped memory needs too,
 * and unmapping the trampoline at the end frees none.  Page tables come
 * and go at a high price on some hypervisors; of such places, the one
 * that shares the most of them with cr's own layout costs the child
 * least. */
static uint64_t beside_dumped(const uint64_t (*busy)[2], size_t n, const struct proc_vma_list *mine,
			      const struct restore_task *t)
{
	uint64_t len = t->tramp_size, best = 0;
	int best_shared = -1;

	for (size_t i = 0; i < t->mm->n_vmas && best_shared < 2; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		uint64_t at[2] = { e->end + PAGE_SIZE_CR, e->start - PAGE_SIZE_CR - len };
		bool ok[2];

		if (e->kind == VMA_KIND__VMA_VDSO || e->kind == VMA_KIND__VMA_VVAR ||
		    e->kind == VMA_KIND__VMA_VVAR_VCLOCK)
			continue;
		ok[0] = at[0] + len <= USER_TOP && (at[0] + len - 1) / PT_SPAN == (e->end - 1) / PT_SPAN;
		/* Not in the gap below a stack, where it grows. */
		ok[1] = !e->growsdown && e->start >= PT_SPAN + PAGE_SIZE_CR + len && at[1] / PT_SPAN == e->start / PT_SPAN;
		for (int k = 0; k < 2; k++) {
			int shared;

			if (!ok[k] || !range_free(busy, n, at[k], len))
				continue;
			shared = tables_shared(mine, at[k]);
			if (shared > best_shared) {
				best = at[k];
				best_shared = shared;
			}
		}
	}
	return best;
}

/* An address for the trampoline, free in cr's layout (mine) and in the
 * dumped one. */
static int find_trampoline(const struct proc_vma_list *mine, const struct restore_task *t, uint64_t *out,
			   cr_error_t *err)
{
	cleanup_free uint64_t (*busy)[2] = xcalloc(mine->n + t->mm->n_vmas + 1, sizeof(*busy));
	size_t n = 0;

	for (size_t i = 0; i < mine->n; i++, n++) {
		busy[n][0] = mine->v[i].start;
		busy[n][1] = mine->v[i].end;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++, n++) {
		busy[n][0] = t->mm->vmas[i]->start;
		busy[n][1] = t->mm->vmas[i]->end;
	}
	*out = beside_dumped((const uint64_t (*)[2])busy, n, mine, t);
	if (*out == 0)
		*out = find_free_range((const uint64_t (*)[2])busy, n, t->tramp_size);
	if (*out == 0)
		return cr_error(err, 0, "no free address for the trampoline");
	return 0;
}

static uint64_t page_up(uint64_t n)
{
	return (n + PAGE_SIZE_CR - 1) & ~(PAGE_SIZE_CR - 1);
}

/* The code and argument space, then the groups setgroups reads (their
 * number is the process's), then its POSIX locks, then the seccomp
 * filters (up to 32 KiB each, too many for the argument space), then the
 * batch calls. */
int tramp_plan(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	size_t groups = 0;

	for (size_t i = 0; i < t->core->n_threads; i++)
		if (t->core->threads[i]->creds->n_groups > groups)
			groups = t->core->threads[i]->creds->n_groups;
	t->tramp_locks = (TRAMP_GROUPS + groups * sizeof(uint32_t) + 7) & ~(uint64_t)7;
	t->tramp_filters = page_up(t->tramp_locks + locks_tramp_bytes(t));
	t->tramp_size = t->tramp_filters + page_up(seccomp_tramp_bytes(t)) + TRAMP_PROG_SIZE;
	return find_trampoline(&ctx->cr_layout, t, &t->tramp, err);
}

static void *map_rwx_at(uint64_t addr, uint64_t len)
{
	void *p = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	if (p != MAP_FAILED && p != (void *)(uintptr_t)addr) {   /* a kernel that took it as a hint */
		munmap(p, len);
		errno = EEXIST;
		return MAP_FAILED;
	}
	return p;
}

/* Maps the trampoline with a `syscall` for the restorer to run: where the
 * restorer planned it, or, if this process has put something there since
 * it inherited the restorer's layout, wherever its own layout and the
 * dumped one leave room. */
int tramp_map(struct restore_task *t, cr_error_t *err)
{
	void *p = t->tramp ? map_rwx_at(t->tramp, t->tramp_size) : MAP_FAILED;

	if (p == MAP_FAILED) {
		struct proc_vma_list mine = { 0 };
		int ret;

		if (proc_read_maps(0, &mine, err) < 0)
			return -1;
		ret = find_trampoline(&mine, t, &t->tramp, err);
		proc_vma_list_free(&mine);
		if (ret < 0)
			return -1;
		p = map_rwx_at(t->tramp, t->tramp_size);
		if (p == MAP_FAILED)
			return cr_error(err, errno, "map trampoline at 0x%lx", (unsigned long)t->tramp);
	}
	memcpy(p, "\x0f\x05\xcc", 3);   /* syscall; int3 */
	memcpy((char *)p + TRAMP_BATCH, inject_batch_code, INJECT_BATCH_CODE_SIZE);
	return 0;
}
