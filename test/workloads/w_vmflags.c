/*
 * w_vmflags STATE_DIR [noguard]
 *
 * Mappings whose flags beyond protection (VmFlags in /proc/PID/smaps) only
 * a restore that gives them back keeps, each with data of the token:
 *
 *   locked      4 pages, mlock: "lo", Locked: 16 kB
 *   onfault     4 pages, mlock2(MLOCK_ONFAULT), one page touched: "lo lf",
 *               Locked: 4 kB
 *   hugepage, nohugepage, dontfork, wipeonfork, dontdump, mergeable,
 *   sequential, random
 *               2 pages each, madvise: "hg", "nh", "dc", "wf", "dd", "mg",
 *               "sr", "rr"
 *   droppable   2 pages, MAP_DROPPABLE: "dp"
 *   noreserve   2 pages, MAP_NORESERVE: "nr"
 *   growsdown   4 pages, MAP_GROWSDOWN: "gd"
 *   sealed      1 page, read-only, mseal: "sl", and mprotect is refused
 *   guard       3 pages, the middle one a guard region (MADV_GUARD_INSTALL):
 *               "gu", and the pagemap marks the middle page as a guard
 *   file-rw     a shared mapping, read-only, of a file opened O_RDWR:
 *               "mw", and mprotect(PROT_WRITE) works and writes reach
 *               the file
 *   file-ro     a shared mapping of a file opened O_RDONLY: no "mw", and
 *               mprotect(PROT_WRITE) is refused (no more rights than it had)
 *   shm-locked  2 pages of shared anonymous memory in this process alone,
 *               mlock: "sh lo", Locked: 8 kB, "/dev/zero (deleted)" in maps
 *
 * Then a child forked after restore finds the wipe-on-fork pages zero and
 * the dont-fork mapping absent.  "noguard" leaves the guard region out
 * (for a cr that cannot even dump one, to see the other checks fail).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096UL
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef SYS_mseal
#define SYS_mseal 462
#endif
#define PM_GUARD (1ULL << 58)

struct region {
	const char *name;
	size_t pages;
	const char *flags;    /* mnemonics VmFlags must show */
	const char *absent;   /* mnemonics it must not show */
	long locked_kb;       /* Locked:, or -1 */
	char *p;
};

enum { LOCKED, ONFAULT, HUGE, NOHUGE, DONTFORK, WIPE, DONTDUMP, MERGE, SEQ, RAND, DROP, NORES, GROWS, SEALED,
       GUARD, FILE_RW, FILE_RO, SHM_LOCKED, N_REGIONS };

static struct region r[N_REGIONS] = {
	[LOCKED] = { "locked", 4, "lo", "lf", 16, NULL },
	[ONFAULT] = { "onfault", 4, "lo lf", NULL, 4, NULL },
	[HUGE] = { "hugepage", 2, "hg", NULL, -1, NULL },
	[NOHUGE] = { "nohugepage", 2, "nh", NULL, -1, NULL },
	[DONTFORK] = { "dontfork", 2, "dc", NULL, -1, NULL },
	[WIPE] = { "wipeonfork", 2, "wf", NULL, -1, NULL },
	[DONTDUMP] = { "dontdump", 2, "dd", NULL, -1, NULL },
	[MERGE] = { "mergeable", 2, "mg", NULL, -1, NULL },
	[SEQ] = { "sequential", 2, "sr", NULL, -1, NULL },
	[RAND] = { "random", 2, "rr", NULL, -1, NULL },
	[DROP] = { "droppable", 2, "dp", NULL, -1, NULL },
	[NORES] = { "noreserve", 2, "nr", NULL, -1, NULL },
	[GROWS] = { "growsdown", 4, "gd", NULL, -1, NULL },
	[SEALED] = { "sealed", 1, "sl", NULL, -1, NULL },
	[GUARD] = { "guard", 3, "gu", NULL, -1, NULL },
	[FILE_RW] = { "file-rw", 1, "sh mw", NULL, -1, NULL },
	[FILE_RO] = { "file-ro", 1, "ms", "mw", -1, NULL },
	[SHM_LOCKED] = { "shm-locked", 2, "sh lo", NULL, 8, NULL },
};

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void fill(char *p, size_t len, uint64_t salt)
{
	uint64_t s = wl_seed(salt);

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = wl_xorshift(&s);

		memcpy(p + i, &v, 8);
	}
}

static bool same(const char *p, size_t len, uint64_t salt)
{
	uint64_t s = wl_seed(salt);

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = wl_xorshift(&s), have;

		memcpy(&have, p + i, 8);
		if (have != v)
			return false;
	}
	return true;
}

static char *anon(size_t pages, int prot, int flags)
{
	char *p = mmap(NULL, pages * PG, prot, flags | MAP_ANONYMOUS, -1, 0);

	must(p != MAP_FAILED, "mmap");
	return p;
}

static char *map_file(const char *name, int open_flags)
{
	char path[4200];
	char *p;
	int fd;

	wl_path(path, sizeof(path), name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	must(fd >= 0 && ftruncate(fd, (off_t)PG) == 0 && pwrite(fd, name, strlen(name), 0) > 0, path);
	close(fd);
	fd = open(path, open_flags);
	must(fd >= 0, path);
	p = mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, 0);
	must(p != MAP_FAILED, "mmap a file");
	close(fd);
	return p;
}

static void advise(int i, int advice, const char *what)
{
	r[i].p = anon(r[i].pages, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(r[i].p, r[i].pages * PG, (uint64_t)i);
	must(madvise(r[i].p, r[i].pages * PG, advice) == 0, what);
}

static bool no_guard;

static void set_up(void)
{
	r[LOCKED].p = anon(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(r[LOCKED].p, 4 * PG, LOCKED);
	must(mlock(r[LOCKED].p, 4 * PG) == 0, "mlock");
	r[ONFAULT].p = anon(4, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	must(syscall(SYS_mlock2, r[ONFAULT].p, 4 * PG, MLOCK_ONFAULT) == 0, "mlock2");
	fill(r[ONFAULT].p, PG, ONFAULT);
	advise(HUGE, MADV_HUGEPAGE, "MADV_HUGEPAGE");
	advise(NOHUGE, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE");
	advise(DONTFORK, MADV_DONTFORK, "MADV_DONTFORK");
	advise(WIPE, MADV_WIPEONFORK, "MADV_WIPEONFORK");
	advise(DONTDUMP, MADV_DONTDUMP, "MADV_DONTDUMP");
	advise(MERGE, MADV_MERGEABLE, "MADV_MERGEABLE");
	advise(SEQ, MADV_SEQUENTIAL, "MADV_SEQUENTIAL");
	advise(RAND, MADV_RANDOM, "MADV_RANDOM");
	r[DROP].p = anon(2, PROT_READ | PROT_WRITE, MAP_DROPPABLE);
	fill(r[DROP].p, 2 * PG, DROP);
	r[NORES].p = anon(2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE);
	fill(r[NORES].p, 2 * PG, NORES);
	r[GROWS].p = anon(4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
	fill(r[GROWS].p + 3 * PG, PG, GROWS);
	r[SEALED].p = anon(1, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(r[SEALED].p, PG, SEALED);
	must(mprotect(r[SEALED].p, PG, PROT_READ) == 0 && syscall(SYS_mseal, r[SEALED].p, PG, 0) == 0, "mseal");
	r[GUARD].p = anon(3, PROT_READ | PROT_WRITE, MAP_PRIVATE);
	fill(r[GUARD].p, PG, GUARD);
	fill(r[GUARD].p + 2 * PG, PG, GUARD + 100);
	must(no_guard || madvise(r[GUARD].p + PG, PG, MADV_GUARD_INSTALL) == 0, "MADV_GUARD_INSTALL");
	r[SHM_LOCKED].p = anon(2, PROT_READ | PROT_WRITE, MAP_SHARED);
	fill(r[SHM_LOCKED].p, 2 * PG, SHM_LOCKED);
	must(mlock(r[SHM_LOCKED].p, 2 * PG) == 0, "mlock shared");
	r[FILE_RW].p = map_file("file-rw", O_RDWR);
	r[FILE_RO].p = map_file("file-ro", O_RDONLY);
}

/* ---- checks ------------------------------------------------------------------ */

static void check_flags(const struct region *g)
{
	char flags[512], m[3] = { 0 };
	long locked = -2;

	if (!wl_check(wl_smaps_of(g->p, flags, sizeof(flags), &locked), "%s: not in smaps", g->name))
		return;
	flags[strcspn(flags, "\n")] = '\0';
	for (const char *p = g->flags; p != NULL && *p; p += p[2] ? 3 : 2) {
		memcpy(m, p, 2);
		wl_check(wl_has_vmflag(flags, m), "%s: VmFlags \"%s\" lacks %s", g->name, flags, m);
	}
	for (const char *p = g->absent; p != NULL && *p; p += p[2] ? 3 : 2) {
		memcpy(m, p, 2);
		wl_check(!wl_has_vmflag(flags, m), "%s: VmFlags \"%s\" has %s", g->name, flags, m);
	}
	if (g->locked_kb >= 0)
		wl_check(locked == g->locked_kb, "%s: Locked: %ld kB, want %ld", g->name, locked, g->locked_kb);
}

static void check_data(void)
{
	for (int i = HUGE; i <= RAND; i++)
		wl_check(same(r[i].p, r[i].pages * PG, (uint64_t)i), "%s: data differs", r[i].name);
	wl_check(same(r[LOCKED].p, 4 * PG, LOCKED), "locked: data differs");
	wl_check(same(r[ONFAULT].p, PG, ONFAULT), "onfault: data differs");
	wl_check(same(r[DROP].p, 2 * PG, DROP), "droppable: data differs");
	wl_check(same(r[NORES].p, 2 * PG, NORES), "noreserve: data differs");
	wl_check(same(r[GROWS].p + 3 * PG, PG, GROWS), "growsdown: data differs");
	wl_check(same(r[SEALED].p, PG, SEALED), "sealed: data differs");
	wl_check(same(r[GUARD].p, PG, GUARD) && same(r[GUARD].p + 2 * PG, PG, GUARD + 100),
		 "guard: data around the guard page differs");
	wl_check(memcmp(r[FILE_RW].p, "file-rw", 7) == 0, "file-rw: contents differ");
	wl_check(same(r[SHM_LOCKED].p, 2 * PG, SHM_LOCKED), "shm-locked: data differs");
}

static void check_behaviour(void)
{
	struct wl_map map;
	char path[4200], buf[8] = { 0 };
	uint64_t pm = 0;
	int fd, ret, e;

	wl_check(wl_maps_lookup((uintptr_t)r[SHM_LOCKED].p, &map) == 0 && strcmp(map.path, "/dev/zero (deleted)") == 0,
		 "shm-locked: maps does not say /dev/zero (deleted)");
	ret = mprotect(r[SEALED].p, PG, PROT_READ | PROT_WRITE);
	e = errno;
	wl_check(ret < 0 && e == EPERM, "sealed: mprotect was not refused with EPERM (%d, %s)", ret, strerror(e));
	fd = open("/proc/self/pagemap", O_RDONLY);
	wl_check(no_guard || (fd >= 0 && pread(fd, &pm, 8, (off_t)((uintptr_t)r[GUARD].p / PG + 1) * 8) == 8 &&
			      (pm & PM_GUARD)),
		 "guard: the middle page is no guard region (pagemap 0x%llx)", (unsigned long long)pm);
	if (fd >= 0)
		close(fd);
	ret = mprotect(r[FILE_RW].p, PG, PROT_READ | PROT_WRITE);
	e = errno;
	if (wl_check(ret == 0, "file-rw: mprotect(PROT_WRITE) failed: %s", strerror(e))) {
		memcpy(r[FILE_RW].p + 100, "written", 7);
		msync(r[FILE_RW].p, PG, MS_SYNC);
		wl_path(path, sizeof(path), "file-rw");
		fd = open(path, O_RDONLY);
		wl_check(fd >= 0 && pread(fd, buf, 7, 100) == 7 && memcmp(buf, "written", 7) == 0,
			 "file-rw: a write through the mapping did not reach the file");
		if (fd >= 0)
			close(fd);
	}
	ret = mprotect(r[FILE_RO].p, PG, PROT_READ | PROT_WRITE);
	e = errno;
	wl_check(ret < 0 && e == EACCES, "file-ro: mprotect(PROT_WRITE) was not refused with EACCES (%d, %s)", ret,
		 strerror(e));
}

/* A child forked now: wipe-on-fork pages read zero, dont-fork is absent. */
static void check_fork(void)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		bool zero = true;

		for (size_t i = 0; i < 2 * PG; i++)
			zero = zero && r[WIPE].p[i] == 0;
		errno = 0;
		_exit((zero ? 0 : 1) | (msync(r[DONTFORK].p, PG, MS_ASYNC) < 0 && errno == ENOMEM ? 0 : 2));
	}
	wl_check(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status), "fork after restore failed");
	wl_check(!(WEXITSTATUS(status) & 1), "wipeonfork: a child forked after restore sees the data");
	wl_check(!(WEXITSTATUS(status) & 2), "dontfork: a child forked after restore has the mapping");
	wl_check(same(r[WIPE].p, 2 * PG, WIPE), "wipeonfork: the parent's data differs after the fork");
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	no_guard = argc > 2 && strcmp(argv[2], "noguard") == 0;
	set_up();
	wl_ready();
	wl_wait_trigger();
	for (int i = 0; i < N_REGIONS; i++)
		if (i != GUARD || !no_guard)
			check_flags(&r[i]);
	check_data();
	check_behaviour();
	check_fork();
	wl_finish();
}
