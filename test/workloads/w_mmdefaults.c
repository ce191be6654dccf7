/*
 * w_mmdefaults STATE_DIR MODE
 *
 * What a process asks of every mapping it makes later, which no mapping it
 * has shows:
 *   future   mlockall(MCL_FUTURE): a mapping made after the trigger must be
 *            locked (VmFlags "lo") with every page resident at once;
 *   onfault  mlockall(MCL_FUTURE | MCL_ONFAULT) and KSM merge-any
 *            (PR_SET_MEMORY_MERGE): a new mapping must be locked on fault
 *            ("lo lf", nothing resident until touched) and mergeable
 *            ("mg"), PR_GET_MEMORY_MERGE must say 1, and a mapping made
 *            unmergeable again (MADV_UNMERGEABLE) must stay so.
 * In both, a mapping made before mlockall must not be locked (MCL_CURRENT
 * was not asked for), and the data of each is checked.
 */
#include "wl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

#define PG    4096
#define PAGES 4

static char *map_anon(void)
{
	char *p = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	return p;
}

/* One page of a mapping marked with the token, so data loss shows. */
static void mark(char *p)
{
	uint64_t t = wl_token();

	memcpy(p, &t, sizeof(t));
}

static bool marked(const char *p)
{
	uint64_t t = wl_token();

	return memcmp(p, &t, sizeof(t)) == 0;
}

static void check_flags(const char *name, const char *p, const char *want, const char *refuse, long locked_kb)
{
	char flags[256], m[3];
	long locked = -1;

	if (!wl_check(wl_smaps_of(p, flags, sizeof(flags), &locked), "%s: not in smaps", name))
		return;
	for (const char *w = want; *w; w += 2 + (w[2] == ' ')) {
		snprintf(m, sizeof(m), "%.2s", w);
		wl_check(wl_has_vmflag(flags, m), "%s: VmFlags \"%s\" lacks %s", name, flags, m);
	}
	for (const char *w = refuse; *w; w += 2 + (w[2] == ' ')) {
		snprintf(m, sizeof(m), "%.2s", w);
		wl_check(!wl_has_vmflag(flags, m), "%s: VmFlags \"%s\" has %s", name, flags, m);
	}
	if (locked_kb >= 0)
		wl_check(locked == locked_kb, "%s: Locked %ld kB, want %ld", name, locked, locked_kb);
}

int main(int argc, char **argv)
{
	bool onfault;
	char *before, *unmerged = NULL, *after;

	wl_init(argc, argv);
	if (argc < 3 || (strcmp(argv[2], "future") != 0 && strcmp(argv[2], "onfault") != 0))
		wl_fatal("usage: w_mmdefaults STATE_DIR future|onfault");
	onfault = strcmp(argv[2], "onfault") == 0;
	before = map_anon();
	mark(before);
	if (mlockall(MCL_FUTURE | (onfault ? MCL_ONFAULT : 0)) < 0)
		wl_fatal("mlockall: %s", strerror(errno));
	if (onfault) {
		if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) < 0)
			wl_fatal("PR_SET_MEMORY_MERGE: %s", strerror(errno));
		unmerged = map_anon();
		if (madvise(unmerged, PAGES * PG, MADV_UNMERGEABLE) < 0)
			wl_fatal("MADV_UNMERGEABLE: %s", strerror(errno));
		mark(unmerged);
	}
	wl_ready();
	wl_wait_trigger();

	after = map_anon();
	check_flags("before mlockall", before, "", "lo lf", 0);
	wl_check(marked(before), "before mlockall: data lost");
	if (onfault) {
		check_flags("new mapping", after, "lo lf mg", "", 0);
		mark(after);
		check_flags("new mapping, one page touched", after, "lo lf", "", PG / 1024);
		check_flags("made unmergeable", unmerged, "lo lf", "mg", PG / 1024);
		wl_check(marked(unmerged), "made unmergeable: data lost");
		wl_check(prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 1, "PR_GET_MEMORY_MERGE says %d",
			 prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	} else {
		check_flags("new mapping", after, "lo", "lf mg", PAGES * PG / 1024);
		wl_check(prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 0, "PR_GET_MEMORY_MERGE says %d",
			 prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0));
	}
	wl_finish();
}
