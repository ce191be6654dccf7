/* What the dump makes of a mapping's VmFlags (state/vmflags.c): each flag
 * is carried by the mapping, recorded for restore, or refused by name;
 * a flag cr does not know and a protection key are refused; guard regions
 * are read from the pagemap (live, on a mapping of this test's own). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os/proc.h"
#include "state/vmflags.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

struct fixture {
	struct dump_ctx ctx;
	struct dump_task t;
	struct proc_vma v;
	VmaEntry e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->t.pid = 4242;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	arena_free(&f->ctx.arena);
	free(f);
	return 0;
}

/* A private anonymous mapping with the given flags, dumped afresh. */
static int dump(struct fixture *f, uint64_t flags, cr_error_t *err)
{
	memset(&f->v, 0, sizeof(f->v));
	f->v.start = 0x7f0000000000;
	f->v.end = 0x7f0000004000;
	f->v.prot = PROT_READ | PROT_WRITE;
	f->v.vmflags = PROC_VMF(RD) | PROC_VMF(WR) | PROC_VMF(MR) | PROC_VMF(MW) | PROC_VMF(ME) | flags;
	vma_entry__init(&f->e);
	return vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, err);
}

static void test_carried_flags(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	assert_ok(dump(f, PROC_VMF(AC) | PROC_VMF(SD) | PROC_VMF(SH) | PROC_VMF(MS), &err), &err);
	assert_int_equal(f->e.flags, 0);
	assert_false(f->e.has_flags);
	assert_false(f->e.growsdown);
	assert_ok(dump(f, PROC_VMF(GD), &err), &err);
	assert_true(f->e.growsdown);
	assert_int_equal(f->e.flags, 0);
}

static void test_restored_flags(void **state)
{
	static const struct {
		uint64_t vmf;
		uint32_t flag;
	} cases[] = {
		{ PROC_VMF(LO), VMA_FLAG__VMA_FLAG_LOCKED },
		{ PROC_VMF(LO) | PROC_VMF(LF), VMA_FLAG__VMA_FLAG_LOCKED | VMA_FLAG__VMA_FLAG_LOCKONFAULT },
		{ PROC_VMF(HG), VMA_FLAG__VMA_FLAG_HUGEPAGE },
		{ PROC_VMF(NH), VMA_FLAG__VMA_FLAG_NOHUGEPAGE },
		{ PROC_VMF(DC), VMA_FLAG__VMA_FLAG_DONTFORK },
		{ PROC_VMF(WF), VMA_FLAG__VMA_FLAG_WIPEONFORK },
		{ PROC_VMF(DD), VMA_FLAG__VMA_FLAG_DONTDUMP },
		{ PROC_VMF(MG), VMA_FLAG__VMA_FLAG_MERGEABLE },
		{ PROC_VMF(SR), VMA_FLAG__VMA_FLAG_SEQUENTIAL },
		{ PROC_VMF(RR), VMA_FLAG__VMA_FLAG_RANDOM },
		{ PROC_VMF(NR), VMA_FLAG__VMA_FLAG_NORESERVE },
		{ PROC_VMF(SL), VMA_FLAG__VMA_FLAG_SEALED },
		{ PROC_VMF(DP) | PROC_VMF(WF) | PROC_VMF(DD) | PROC_VMF(NR),
		  VMA_FLAG__VMA_FLAG_DROPPABLE | VMA_FLAG__VMA_FLAG_WIPEONFORK | VMA_FLAG__VMA_FLAG_DONTDUMP |
			  VMA_FLAG__VMA_FLAG_NORESERVE },
	};
	struct fixture *f = *state;
	cr_error_t err = NULL;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_ok(dump(f, cases[i].vmf, &err), &err);
		assert_int_equal(f->e.flags, cases[i].flag);
		assert_true(f->e.has_flags);
	}
}

/* Every flag cr cannot bring back is refused, naming the pid, the mapping,
 * what it is and its mnemonic. */
static void test_refused_flags(void **state)
{
	static const struct {
		unsigned flag;
		const char *what;
	} cases[] = {
		{ PROC_VMF_PF, "device mapping" },   { PROC_VMF_IO, "device mapping" },
		{ PROC_VMF_MM, "device mapping" },   { PROC_VMF_DE, "cannot grow" },
		{ PROC_VMF_AR, "PAT" },              { PROC_VMF_HT, "hugetlb" },
		{ PROC_VMF_SF, "MAP_SYNC" },         { PROC_VMF_UM, "userfaultfd" },
		{ PROC_VMF_UW, "userfaultfd" },      { PROC_VMF_UI, "userfaultfd" },
		{ PROC_VMF_SS, "shadow stack" },     { PROC_VMF_BT, "BTI" },
		{ PROC_VMF_MT, "MTE" },
	};
	struct fixture *f = *state;
	cr_error_t err = NULL;
	char mnemonic[16];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(dump(f, UINT64_C(1) << cases[i].flag, &err), -1);
		snprintf(mnemonic, sizeof(mnemonic), "\"%s\"", proc_vmflag_name(cases[i].flag));
		assert_non_null(strstr(err->msg, "pid 4242: mapping 0x7f0000000000-0x7f0000004000"));
		assert_err_has(&err, cases[i].what, mnemonic);
	}
	/* Every flag cr knows is in one of the three sets: none is dropped. */
	for (unsigned flag = 0; flag < PROC_VMF_N; flag++) {
		if (flag == PROC_VMF_GU)
			continue;   /* read from the pagemap: test_guard_regions */
		if (dump(f, UINT64_C(1) << flag, &err) < 0)
			assert_err_has(&err, "unsupported", proc_vmflag_name(flag));
		else
			assert_true(f->e.flags != 0 || ((UINT64_C(1) << flag) &
							(PROC_VMF(RD) | PROC_VMF(WR) | PROC_VMF(EX) | PROC_VMF(SH) |
							 PROC_VMF(MR) | PROC_VMF(MW) | PROC_VMF(ME) | PROC_VMF(MS) |
							 PROC_VMF(GD) | PROC_VMF(AC) | PROC_VMF(SD))));
	}
}

/* hugetlb: its page size from smaps is kept, and the VM_DONTEXPAND that
 * hugetlbfs sets on its every mapping is no refusal there; without a page
 * size it is refused. */
static void test_hugetlb(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	memset(&f->v, 0, sizeof(f->v));
	f->v.start = 0x7f0000000000;
	f->v.end = 0x7f0000400000;
	f->v.vmflags = PROC_VMF(RD) | PROC_VMF(WR) | PROC_VMF(MR) | PROC_VMF(MW) | PROC_VMF(HT) | PROC_VMF(DE);
	f->v.page_kb = 2048;
	vma_entry__init(&f->e);
	assert_ok(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), &err);
	assert_true(f->e.has_huge_page_kb);
	assert_int_equal(f->e.huge_page_kb, 2048);
	assert_int_equal(vmflags_mmap_flags(&f->e), MAP_HUGETLB | (21u << MAP_HUGE_SHIFT));
	f->v.page_kb = 3000;
	vma_entry__init(&f->e);
	assert_int_equal(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), -1);
	assert_err_has(&err, "hugetlb", "\"ht\"");
	f->v.vmflags &= ~PROC_VMF(HT);
	vma_entry__init(&f->e);
	assert_int_equal(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), -1);
	assert_err_has(&err, "cannot grow", "\"de\"");
}

static void test_unknown_and_pkey(void **state)
{
	struct fixture *f = *state;
	cr_error_t err = NULL;

	memset(&f->v, 0, sizeof(f->v));
	f->v.start = 0x1000;
	f->v.end = 0x2000;
	f->v.path = "/bin/x";
	strcpy(f->v.vmflag_unknown, "??");
	vma_entry__init(&f->e);
	assert_int_equal(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), -1);
	assert_err_has(&err, "of /bin/x: unsupported: a flag unknown to cr", "\"??\"");
	f->v.vmflag_unknown[0] = '\0';
	f->v.pkey = 3;
	assert_int_equal(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), -1);
	assert_err_has(&err, "pid 4242", "protection key 3");
	/* The vdso's flags are the kernel's. */
	f->v.pkey = 0;
	f->v.special = VMA_SPECIAL_VDSO;
	f->v.vmflags = PROC_VMF(DE) | PROC_VMF(PF);
	assert_ok(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), &err);
}

/* A guard region in this process: found in the pagemap, as a run from the
 * mapping's start; the pages around it are no guard. */
static void test_guard_regions(void **state)
{
	struct fixture *f = *state;
	long pg = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 6 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_error_t err = NULL;

	assert_true(p != MAP_FAILED);
	p[0] = 1;
	assert_int_equal(madvise(p + pg, 2 * (size_t)pg, MADV_GUARD_INSTALL), 0);
	assert_int_equal(madvise(p + 4 * pg, (size_t)pg, MADV_GUARD_INSTALL), 0);
	f->t.pid = getpid();
	memset(&f->v, 0, sizeof(f->v));
	f->v.start = (uintptr_t)p;
	f->v.end = (uintptr_t)p + 6 * (size_t)pg;
	f->v.vmflags = PROC_VMF(RD) | PROC_VMF(WR) | PROC_VMF(GU);
	vma_entry__init(&f->e);
	assert_ok(vmflags_dump(&f->ctx, &f->t, &f->v, &f->e, &err), &err);
	assert_int_equal(f->e.n_guards, 2);
	assert_int_equal(f->e.guards[0]->offset, pg);
	assert_int_equal(f->e.guards[0]->nr_pages, 2);
	assert_int_equal(f->e.guards[1]->offset, 4 * pg);
	assert_int_equal(f->e.guards[1]->nr_pages, 1);
	munmap(p, 6 * (size_t)pg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_carried_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restored_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hugetlb, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_and_pkey, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_regions, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
