/* See track.h. */
#include "state/track.h"
#include "fd/fdkind.h"
#include "os/inject.h"
#include "os/log.h"
#include "os/pagemap.h"
#include "os/runs.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#define SCAN_VEC 512   /* regions one PAGEMAP_SCAN call returns at most */

struct track_proc *track_proc_of(struct tracker *tr, pid_t pid, uint64_t start_time)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->v[i].pid == pid && tr->v[i].start_time == start_time)
			return &tr->v[i];
	tr->v = xrealloc(tr->v, (tr->n + 1) * sizeof(*tr->v));
	tr->v[tr->n] = (struct track_proc){ .pid = pid, .start_time = start_time, .uffd = -1 };
	return &tr->v[tr->n++];
}

void track_free(struct tracker *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->v[i].uffd >= 0)
			close(tr->v[i].uffd);
	free(tr->v);
	tr->v = NULL;
	tr->n = 0;
}

bool track_trackable(const struct proc_vma *v)
{
	if (v->shared || v->special == VMA_SPECIAL_VDSO || v->special == VMA_SPECIAL_VVAR ||
	    v->special == VMA_SPECIAL_VVAR_VCLOCK || v->special == VMA_SPECIAL_VSYSCALL ||
	    v->special == VMA_SPECIAL_OTHER)
		return false;
	return !(v->vmflags & (PROC_VMF(HT) | PROC_VMF(IO) | PROC_VMF(PF) | PROC_VMF(MM) | PROC_VMF(DP)));
}

int track_userfaultfd(struct injector *inj, pid_t pid, int *uffd, const char **why, cr_error_t *err)
{
	cr_error_t ignored = NULL;
	long fd = -1, closed;

	*uffd = -1;
	if (inject_syscall(inj, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0, &fd,
			   err) < 0)
		return -1;
	if (fd < 0) {
		if (why != NULL)
			*why = strerror((int)-fd);
		return 0;
	}
	*uffd = fdkind_steal_fd(pid, (int)fd, &ignored);
	cr_error_release(&ignored);
	if (inject_call(inj, "close the userfaultfd cr made", SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &closed,
			err) < 0) {
		if (*uffd >= 0)
			close(*uffd);
		*uffd = -1;
		return -1;
	}
	if (*uffd < 0 && why != NULL)
		*why = "pidfd_getfd failed";
	return 0;
}

/* A userfaultfd with asynchronous write-protect, made inside t (in
 * injection) and taken out; -1 (said why) if the process cannot have one,
 * -2 if the injection failed. */
static int make_uffd(struct dump_task *t, cr_error_t *err)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC_F | UFFD_FEATURE_WP_UNPOPULATED_F };
	const char *why = NULL;
	int uffd;

	if (track_userfaultfd(t->inj, t->pid, &uffd, &why, err) < 0)
		return -2;
	if (uffd < 0) {
		pr_warn("pid %d: no write tracking (userfaultfd: %s): every page is copied in the next round too",
			t->pid, why);
		return -1;
	}
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		pr_warn("pid %d: no write tracking (UFFDIO_API with WP_ASYNC: %s)", t->pid, strerror(errno));
		close(uffd);
		return -1;
	}
	return uffd;
}

/* Pages of [start, end) there (present or swapped) and not
 * write-protected (written since the last scan, or never protected), into
 * dirty; wp: protects them (again).  Pages not there are left alone: a
 * hole the scan protected would get a pte marker (WP_UNPOPULATED), page
 * tables and, for whoever reads it, a page; a hole written later comes
 * without protection and counts as written then. */
static int scan(int pm, const struct dump_task *t, uint64_t start, uint64_t end, bool wp, struct runs *dirty,
		cr_error_t *err)
{
	struct pm_region vec[SCAN_VEC];
	uint64_t flags = PM_SCAN_CHECK_WPASYNC_F | (wp ? PM_SCAN_WP_MATCHING_F : 0);
	uint64_t there = PAGE_IS_PRESENT_C | PAGE_IS_SWAPPED_C;

	while (start < end) {
		uint64_t walk_end = 0;
		long n = pagemap_scan(pm, start, end, flags, PAGE_IS_WRITTEN_C, there, PAGE_IS_WRITTEN_C, vec, SCAN_VEC,
				      &walk_end);

		if (n < 0)
			return cr_error(err, errno, "pid %d: PAGEMAP_SCAN of 0x%llx-0x%llx", t->pid,
					(unsigned long long)start, (unsigned long long)end);
		for (long i = 0; i < n; i++)
			runs_add(dirty, vec[i].start, vec[i].end);
		if (walk_end <= start || walk_end > end)
			return cr_error(err, 0, "pid %d: PAGEMAP_SCAN of 0x%llx-0x%llx stopped at 0x%llx", t->pid,
					(unsigned long long)start, (unsigned long long)end,
					(unsigned long long)walk_end);
		start = walk_end;
	}
	return 0;
}

/* Registers v with uffd for write-protect: 0, or the errno. */
static int register_wp(int uffd, const struct proc_vma *v)
{
	struct uffdio_register r = { .range = { .start = v->start, .len = v->end - v->start },
				     .mode = UFFDIO_REGISTER_MODE_WP };

	return ioctl(uffd, UFFDIO_REGISTER, &r) == 0 ? 0 : errno;
}

struct track_run {
	struct dump_task *t;
	int uffd, pm;
	bool arm;
	struct runs tracked, dirty, scratch;
};

/* One mapping: tracked since the round before (its written pages in
 * dirty), or (armed) registered now, to be copied whole this round. */
static int track_vma(struct track_run *r, struct proc_vma *v, struct tracker *tr, cr_error_t *err)
{
	bool was = (v->vmflags & PROC_VMF(UW)) != 0;
	int e;

	if (!was && !r->arm)
		return 0;
	e = register_wp(r->uffd, v);
	if (e == EBUSY && r->arm)   /* the final dump would refuse it (vmflags.c): refused before */
		return cr_error(err, 0, "pid %d: mapping 0x%llx-0x%llx: unsupported: it is registered with a "
				"userfaultfd of the process's own", r->t->pid, (unsigned long long)v->start,
				(unsigned long long)v->end);
	if (e == EBUSY)
		return 0;   /* the process's own: its "uw" stays, the dump refuses it */
	if (e != 0) {
		pr_debug("pid %d: 0x%llx-0x%llx not tracked (UFFDIO_REGISTER: %s)", r->t->pid,
			 (unsigned long long)v->start, (unsigned long long)v->end, strerror(e));
		return 0;
	}
	v->vmflags &= ~PROC_VMF(UW);   /* cr's registration, not the process's */
	if (!was || !tr->have_prev) {   /* new to cr, or no round before: copied whole now */
		r->scratch.n = 0;
		return r->arm ? scan(r->pm, r->t, v->start, v->end, true, &r->scratch, err) : 0;
	}
	runs_add(&r->tracked, v->start, v->end);   /* scanned by runs, once all are registered */
	return 0;
}

/* The written pages of the tracked mappings: one scan per run of adjacent
 * mappings (a process has hundreds of mappings, in a few runs), each
 * mapping of it registered with cr's userfaultfd (PM_SCAN_CHECK_WPASYNC
 * would refuse one that is not). */
static int track_vmas(struct track_run *r, struct tracker *tr, cr_error_t *err)
{
	for (size_t i = 0; i < r->t->vmas.n; i++) {
		struct proc_vma *v = &r->t->vmas.v[i];

		if (track_trackable(v) && track_vma(r, v, tr, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < r->tracked.n; i++)
		if (scan(r->pm, r->t, r->tracked.v[i][0], r->tracked.v[i][1], r->arm, &r->dirty, err) < 0)
			return -1;
	return 0;
}

int track_task(struct tracker *tr, struct dump_task *t, bool arm, cr_error_t *err)
{
	struct track_proc *p = track_proc_of(tr, t->pid, t->stat.start_time);
	struct track_run r = { .t = t, .arm = arm, .pm = -1 };
	int ret;

	if (p->uffd < 0 && arm) {
		p->uffd = make_uffd(t, err);
		if (p->uffd == -2) {
			p->uffd = -1;
			return -1;
		}
	}
	if (p->uffd < 0)
		return 0;
	r.uffd = p->uffd;
	if (pagemap_open(t->pid, &r.pm, err) < 0)
		return -1;
	ret = track_vmas(&r, tr, err);
	close(r.pm);
	free(r.scratch.v);
	t->tracked = r.tracked.v;
	t->n_tracked = r.tracked.n;
	t->dirty = r.dirty.v;
	t->n_dirty = r.dirty.n;
	if (ret == 0)
		pr_debug("pid %d: %zu tracked runs, %zu runs written since the round before", t->pid, t->n_tracked,
			 t->n_dirty);
	return ret < 0 ? cr_error_wrap(err, "track the writes of pid %d", t->pid) : 0;
}
