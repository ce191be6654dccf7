/* Write tracking between pre-copy rounds (cr pre-dump, then cr dump
 * --prev-images-dir), without soft-dirty bits.
 *
 * Each process gets a userfaultfd, made inside it by injection and taken
 * out with pidfd_getfd (its own fd is closed at once), with asynchronous
 * write-protect (UFFD_FEATURE_WP_ASYNC | WP_UNPOPULATED): a write to a
 * protected page is resolved by the kernel itself, which only clears the
 * page's protection.  Each private mapping is registered (MODE_WP) and
 * armed: PAGEMAP_SCAN with PM_SCAN_WP_MATCHING protects every page.  The
 * next round's scan for pages that are not protected (PAGE_IS_WRITTEN)
 * then names exactly the pages written since, and protects them again.
 *
 * A mapping counts as tracked only if it was registered with this very
 * userfaultfd before the round (VmFlags "uw", and registering it again
 * with cr's fd succeeds: another userfaultfd's mapping answers EBUSY).
 * New or moved (mremap drops the registration) mappings are copied whole;
 * a mapping registered with a userfaultfd of the process's own is refused
 * by the pre-dump (as the dump would).  Zero pages are copied too (a page dropped with
 * MADV_DONTNEED and read again is the zero page, not the old bytes).
 *
 * Between rounds the userfaultfds are held by a keeper process
 * (dump/keeper.h); closing them ends the tracking (the kernel unregisters
 * every mapping). */
#ifndef CR_TRACK_H
#define CR_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "img/dumpid.h"
#include "os/error.h"
#include "state/task.h"

struct track_proc {
	pid_t pid;
	uint64_t start_time;           /* /proc/PID/stat field 22: the same process */
	int uffd;                      /* cr's; -1: none */
};

struct tracker {
	struct track_proc *v;
	size_t n;
	bool kept;                     /* the userfaultfds of a round before came from its keeper */
	bool have_prev;                /* ... and this round leaves unchanged pages to that round */
	struct cr_dump_id prev_id;     /* that round's dump id */
};

/* A userfaultfd (user-mode faults only) made inside the process of pid by
 * inj, which must be injecting, and taken out: its own fd is closed.  -1
 * only if the injection failed; else 0, *uffd -1 if the process cannot
 * have one (why, if not NULL, says so). */
int track_userfaultfd(struct injector *inj, pid_t pid, int *uffd, const char **why, cr_error_t *err);

/* Whether cr tracks writes to v: private memory whose pages a dump copies
 * (not hugetlb, device or droppable memory). */
bool track_trackable(const struct proc_vma *v);

/* The process's entry (a new one, with no userfaultfd, if it had none). */
struct track_proc *track_proc_of(struct tracker *tr, pid_t pid, uint64_t start_time);

/* Frozen, with t->vmas read: t's tracked ranges and, in them, the pages
 * that need bytes (t->tracked, t->dirty).  Mappings that are cr's lose
 * their "uw" flag in t->vmas (the registration is cr's, not the
 * process's).  arm (a pre-dump): a process without a userfaultfd gets one
 * (t must be in injection), and every private mapping is registered and
 * protected for the next round. */
int track_task(struct tracker *tr, struct dump_task *t, bool arm, cr_error_t *err);

/* Closes every userfaultfd (the tracking ends) and frees tr's entries. */
void track_free(struct tracker *tr);

#endif
