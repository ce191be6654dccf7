/* File locks: flock(2), POSIX record locks (fcntl F_SETLK) and OFD locks
 * (F_OFD_SETLK), each with its type and byte range, held again before the
 * restored process runs.
 *
 * Dump: the "lock:" lines of /proc/PID/fdinfo/FD show the locks taken
 * through that fd's description that its process owns: flock and OFD locks
 * belong to the description (every process holding it shows them), POSIX
 * locks to the process.  A description's lock is recorded once, by the
 * first process of the tree that holds it.  /proc/locks is the cross-check:
 * a lock owned by a process of the dump that none of its fds shows (held
 * through a mapping only, or taken by a process that shares its fd table)
 * is refused, but for a flock through one process's mapping (mapped_flock).
 * So is a flock or OFD lock naming no process of the dump (OFD locks name
 * none; a flock's taker may have exited) on a file the dump maps, unless a
 * process outside shows it through an fd (check_unnamed).  Refused too:
 * leases and delegations; a flock or OFD lock on a description that a
 * process outside the dump shares (that process keeps the lock while the
 * dump is away, and restore could only take it back from it); locks on
 * files other than regular, deleted and memfd files.  Requests still
 * waiting (a process blocked in F_SETLKW or flock) are not recorded: the
 * call restarts after restore and waits again.
 *
 * Restore: a flock or OFD lock is taken by the process that opens its
 * description (the lowest common ancestor of the holders, in before_fork)
 * on the stashed fd, so every holder inherits the one lock with the
 * description.  POSIX locks are taken by the process itself in setup, on
 * its restored fds, after it closed cr's fds on the same files (the stash),
 * whose later close would release them; a lock on a file the process maps
 * waits for the transplant (restore opens a mapping's file on an fd of
 * cr's and closes it before the process runs), where the process takes
 * every POSIX lock again after that close (after_close).  Nothing blocks: a lock that
 * another process holds now fails the restore, naming the file and the
 * range. */
#include "state/locks.h"
#include "fd/fdkind.h"
#include "os/job.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/files.h"
#include "state/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/sysmacros.h>

/* ------------------------------------------------------------------ dump */

/* A lock recorded in this dump, as fdinfo showed it. */
struct seen_lock {
	pid_t pid;                  /* the process whose fd showed it */
	int fd;
	uint32_t file_id;
	struct proc_lock l;
};

/* Kept from collect to check_tree (freed by release_dump), here rather
 * than in struct dump_ctx: no other kind needs it.  Keyed by the dump. */
static struct {
	const struct dump_ctx *ctx;
	struct seen_lock *v;
	size_t n, cap;
} seen;

static void seen_clear(void)
{
	free(seen.v);
	memset(&seen, 0, sizeof(seen));
}

static void seen_add(const struct dump_ctx *ctx, pid_t pid, int fd, uint32_t file_id, const struct proc_lock *l)
{
	if (seen.ctx != ctx) {
		seen_clear();
		seen.ctx = ctx;
	}
	if (seen.n == seen.cap) {
		seen.cap = seen.cap ? seen.cap * 2 : 32;
		seen.v = xreallocarray(seen.v, seen.cap, sizeof(*seen.v));
	}
	seen.v[seen.n++] = (struct seen_lock){ .pid = pid, .fd = fd, .file_id = file_id, .l = *l };
}

static bool same_lock(const struct proc_lock *a, const struct proc_lock *b)
{
	return a->cls == b->cls && a->type == b->type && a->start == b->start && a->end == b->end &&
	       a->dev_major == b->dev_major && a->dev_minor == b->dev_minor && a->ino == b->ino;
}

/* Recorded already: a description's lock by any process, a POSIX lock by
 * this one (it shows on every fd of its description). */
static bool seen_before(const struct dump_ctx *ctx, pid_t pid, uint32_t file_id, const struct proc_lock *l)
{
	if (seen.ctx != ctx)
		return false;
	for (size_t i = 0; i < seen.n; i++)
		if (seen.v[i].file_id == file_id && same_lock(&seen.v[i].l, l) &&
		    (l->cls != PROC_LOCK_POSIX || seen.v[i].pid == pid))
			return true;
	return false;
}

static const char *class_name(enum proc_lock_class cls)
{
	switch (cls) {
	case PROC_LOCK_POSIX: return "POSIX lock";
	case PROC_LOCK_OFD: return "OFD lock";
	case PROC_LOCK_FLOCK: return "flock";
	case PROC_LOCK_OTHER: break;
	}
	return "lock";
}

static const char *type_name(int type)
{
	return type == F_WRLCK ? "write" : type == F_RDLCK ? "read" : "unlock";
}

static bool lockable_kind(FileKind kind)
{
	return kind == FILE_KIND__FILE_REG || kind == FILE_KIND__FILE_DELETED_REG || kind == FILE_KIND__FILE_MEMFD;
}

/* What restore could not take back, refused while the process runs. */
static int check_lock(const struct dump_task *t, const FileEntry *fe, const struct proc_lock *l, cr_error_t *err)
{
	const struct fd_kind *kind = fdkind_for_entry(fe);

	if (l->cls == PROC_LOCK_OTHER)
		return cr_error(err, 0, "a %s (%s %s): unsupported, cr does not restore leases or delegations",
				strcmp(l->name, "LEASE") == 0 ? "lease" : "lock of another kind", l->name,
				type_name(l->type));
	if (!lockable_kind(fe->kind) || l->type == F_UNLCK)
		return cr_error(err, 0, "a %s %s on a %s: unsupported kind", type_name(l->type), class_name(l->cls),
				kind ? kind->name : "file of unknown kind");
	if (l->cls != PROC_LOCK_POSIX)
		return 0;
	if (l->pid != t->pid)
		return cr_error(err, 0, "a POSIX lock owned by this process but taken by pid %d, which shares its "
				"fd table: unsupported", l->pid);
	return 0;
}

static LockEntry *lock_entry(struct dump_ctx *ctx, int fd, const struct proc_lock *l)
{
	LockEntry *e = arena_new(&ctx->arena, LockEntry);

	lock_entry__init(e);
	e->kind = l->cls == PROC_LOCK_POSIX ? LOCK_KIND__LOCK_POSIX :
		  l->cls == PROC_LOCK_OFD ? LOCK_KIND__LOCK_OFD : LOCK_KIND__LOCK_FLOCK;
	e->fd = (uint32_t)fd;
	e->write = l->type == F_WRLCK;
	if (l->cls != PROC_LOCK_FLOCK) {
		e->start = (uint64_t)l->start;
		e->len = l->end < 0 ? 0 : (uint64_t)(l->end - l->start) + 1;
	}
	return e;
}

/* The locks of one fd not recorded yet, appended to *out (grown as
 * needed). */
static int collect_fd(struct dump_ctx *ctx, struct dump_task *t, const FdEntry *fde, LockEntry ***out, size_t *n,
		      size_t *cap, cr_error_t *err)
{
	const FileEntry *fe = ctx->files.v[fde->file_id - 1];
	cleanup_free struct proc_lock *locks = NULL;
	cleanup_free char *text = NULL;
	struct proc_fdinfo info;
	size_t n_locks = 0;

	if (proc_read_fdinfo(t->pid, (int)fde->fd, &info, &text, err) < 0 ||
	    proc_parse_fdinfo_locks(text, &locks, &n_locks, err) < 0)
		return -1;
	for (size_t i = 0; i < n_locks; i++) {
		const struct proc_lock *l = &locks[i];

		if (check_lock(t, fe, l, err) < 0)
			return -1;
		if (seen_before(ctx, t->pid, fde->file_id, l))
			continue;
		seen_add(ctx, t->pid, (int)fde->fd, fde->file_id, l);
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			*out = xreallocarray(*out, *cap, sizeof(**out));
		}
		(*out)[(*n)++] = lock_entry(ctx, (int)fde->fd, l);
		pr_debug("pid %d fd %u: %s %s %" PRId64 "-%" PRId64 " on %s", t->pid, fde->fd, type_name(l->type),
			 class_name(l->cls), l->start, l->end, fe->path);
	}
	return 0;
}

static int locks_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	const struct img_msgs *fds = &t->img[CR_IMG_FDINFO];
	cleanup_free LockEntry **v = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < fds->n; i++) {
		const FdEntry *fde = (const FdEntry *)fds->v[i];

		if (collect_fd(ctx, t, fde, &v, &n, &cap, err) < 0)
			return cr_error_wrap(err, "pid %d fd %u (%s)", t->pid, fde->fd,
					     ctx->files.v[fde->file_id - 1]->path);
	}
	if (n == 0)
		return 0;
	t->core->locks = arena_array(&ctx->arena, LockEntry *, n);
	memcpy(t->core->locks, v, n * sizeof(*v));
	t->core->n_locks = n;
	return 0;
}

static bool in_dump(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

/* Was this lock of /proc/locks recorded?  A flock or OFD lock is one lock
 * of one description, so each record stands for one line only (claimed):
 * two equal read flocks on two descriptions are two records. */
static bool recorded(const struct dump_ctx *ctx, const struct proc_lock *l, bool *claimed)
{
	if (seen.ctx != ctx)
		return false;
	for (size_t i = 0; i < seen.n; i++) {
		if (!same_lock(&seen.v[i].l, l))
			continue;
		if (l->cls == PROC_LOCK_POSIX && seen.v[i].pid == l->pid)
			return true;
		if (l->cls != PROC_LOCK_POSIX && !claimed[i]) {
			claimed[i] = true;
			return true;
		}
	}
	return false;
}

/* A mapping of the dump on the lock's file, to name it; NULL if none. */
static const char *mapped_by(const struct dump_ctx *ctx, const struct proc_lock *l)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		for (size_t j = 0; j < ctx->tasks[i].vmas.n; j++) {
			const struct proc_vma *v = &ctx->tasks[i].vmas.v[j];

			if (v->path != NULL && v->ino == l->ino && v->dev_major == l->dev_major &&
			    v->dev_minor == l->dev_minor)
				return v->path;
		}
	return NULL;
}

static int refuse_unseen(const struct dump_ctx *ctx, const struct proc_lock *l, cr_error_t *err)
{
	const char *path = mapped_by(ctx, l);
	char where[PATH_MAX + 64];

	if (path != NULL)
		snprintf(where, sizeof(where), "%s (inode %x:%02x:%" PRIu64 "), held through a mapping", path,
			 l->dev_major, l->dev_minor, l->ino);
	else
		snprintf(where, sizeof(where), "inode %x:%02x:%" PRIu64 ", held through a mapping or another "
			 "process's fd table", l->dev_major, l->dev_minor, l->ino);
	return cr_error(err, 0, "pid %d holds a %s %s that none of its fds shows, on %s: unsupported", l->pid,
			type_name(l->type), l->cls == PROC_LOCK_OTHER ? l->name : class_name(l->cls), where);
}

/* A flock held through a mapping only: when one process of the dump maps
 * the file (with no fd of the dump showing the lock), every mapping of it
 * is one description at restore (mem.c), which takes the lock again;
 * recorded on the file's entry.  false if it is not such a lock. */
static bool mapped_flock(const struct dump_ctx *ctx, const struct proc_lock *l)
{
	const struct dump_task *owner = NULL;
	FileEntry *fe = NULL;

	if (l->cls != PROC_LOCK_FLOCK || (l->type != F_RDLCK && l->type != F_WRLCK))
		return false;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct dump_task *t = &ctx->tasks[i];
		const MmEntry *mm = t->mm;

		for (size_t j = 0; mm != NULL && j < t->vmas.n; j++) {
			const struct proc_vma *v = &t->vmas.v[j];

			if (v->path == NULL || v->deleted || v->ino != l->ino || v->dev_major != l->dev_major ||
			    v->dev_minor != l->dev_minor)
				continue;
			if (owner != NULL && owner != t)
				return false;   /* mapped by two processes: two descriptions at restore */
			owner = t;
			for (size_t k = 0; k < mm->n_vmas; k++)
				if (mm->vmas[k]->start == v->start && mm->vmas[k]->kind == VMA_KIND__VMA_FILE &&
				    mm->vmas[k]->has_file_id) {
					FileEntry *f = ctx->files.v[mm->vmas[k]->file_id - 1];

					if (fe != NULL && fe != f)
						return false;   /* opened two ways (read-only, read-write) */
					fe = f;
				}
		}
	}
	if (fe == NULL || (fe->has_mapped_flock && fe->mapped_flock != (l->type == F_WRLCK ? 2u : 1u)))
		return false;
	fe->has_mapped_flock = true;
	fe->mapped_flock = l->type == F_WRLCK ? 2 : 1;
	pr_info("pid %d: a %s flock on %s, held through its mapping: taken again on the mapping's file at restore",
		owner->pid, type_name(l->type), fe->path);
	return true;
}

static bool is_lock_file(const struct proc_lock *l, const struct stat *st)
{
	return (uint64_t)st->st_ino == l->ino && major(st->st_dev) == l->dev_major && minor(st->st_dev) == l->dev_minor;
}

/* Does fd of q show l among its locks (fdinfo)? */
static bool fd_shows(pid_t q, const char *fd, const struct proc_lock *l)
{
	char path[PATH_MAX];
	cleanup_free char *text = NULL;
	cleanup_free struct proc_lock *locks = NULL;
	struct proc_fdinfo info;
	size_t n = 0;
	cr_error_t ignored = NULL;
	struct stat st;
	bool shown = false;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", q, fd);
	if (stat(path, &st) < 0 || !is_lock_file(l, &st))
		return false;
	if (proc_read_fdinfo(q, atoi(fd), &info, &text, &ignored) == 0 &&
	    proc_parse_fdinfo_locks(text, &locks, &n, &ignored) == 0)
		for (size_t i = 0; i < n && !shown; i++)
			shown = same_lock(&locks[i], l);
	cr_error_release(&ignored);
	return shown;
}

/* Does q map the file of l? */
static bool maps_file(pid_t q, const struct proc_lock *l)
{
	char path[64], line[PATH_MAX + 128];
	cleanup_fclose FILE *f = NULL;
	unsigned int maj, min;
	uint64_t ino;

	snprintf(path, sizeof(path), "/proc/%d/maps", q);
	f = fopen(path, "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%*x-%*x %*s %*x %x:%x %" SCNu64, &maj, &min, &ino) == 3 && ino == l->ino &&
		    maj == l->dev_major && min == l->dev_minor)
			return true;
	return false;
}

/* Whose is l, a flock or OFD lock that no fd of the dump shows: a process
 * outside the dump that shows it through an fd, or that maps the file
 * (*mapper), owns it or may; 0 when none does. */
static pid_t owner_outside(const struct dump_ctx *ctx, const struct proc_lock *l, pid_t *mapper)
{
	cleanup_closedir DIR *d = opendir("/proc");
	pid_t self = getpid();
	struct dirent *e;

	*mapper = 0;
	while (d != NULL && (e = readdir(d)) != NULL) {
		pid_t q = (pid_t)atoi(e->d_name);
		char path[64];
		cleanup_closedir DIR *fds = NULL;
		struct dirent *fd;

		if (q <= 0 || q == self || in_dump(ctx, q))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", q);
		fds = opendir(path);
		while (fds != NULL && (fd = readdir(fds)) != NULL)
			if (fd->d_name[0] != '.' && fd_shows(q, fd->d_name, l))
				return q;
		if (*mapper == 0 && maps_file(q, l))
			*mapper = q;
	}
	return 0;
}

/* A flock or OFD lock that no fd of the dump shows, on a file the dump
 * maps (an OFD lock names no process; a flock names the process that took
 * it, which may have exited or be outside): held through the mapping,
 * unless a process outside the dump holds it.  A flock through one
 * process's mapping is taken again (mapped_flock); the rest is refused. */
static int check_unnamed(const struct dump_ctx *ctx, const struct proc_lock *l, const char *path, cr_error_t *err)
{
	pid_t mapper, owner = owner_outside(ctx, l, &mapper);

	if (owner != 0)
		return 0;   /* its own fd shows it */
	if (mapper != 0)
		return cr_error(err, 0, "a %s %s on %s that no fd shows, held through a mapping of the dump or of pid %d "
				"outside it: unsupported (cr cannot tell which)", type_name(l->type),
				class_name(l->cls), path, mapper);
	if (mapped_flock(ctx, l))
		return 0;
	return cr_error(err, 0, "a %s %s on %s held only through a mapping of the dump: unsupported", type_name(l->type),
			class_name(l->cls), path);
}

#define WARM_EVERY_US 2000
#define WARM_READ_MAX_NS 500000   /* a read that walks this long stops the warming */
#define WARM_AT_MOST  1000   /* reads, 2 s: a dump that takes longer to
                              * freeze its tree waits for its read once */

static struct {
	bool started;
	atomic_bool frozen;
	struct cr_job job;
	struct proc_lock *all;
	size_t n;
} ahead;

/* One read to keep the kernel's lock warm; false when it took long (a
 * host with many locks, every one of whose lock calls waits while a read
 * walks them: then the warming stops). */
static bool warm_once(bool first)
{
	cleanup_free struct proc_lock *discard = NULL;
	cr_error_t ignored = NULL;
	struct timespec t0, t1;
	size_t n;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (proc_read_locks(&discard, &n, &ignored) < 0)
		cr_error_release(&ignored);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return first || (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < WARM_READ_MAX_NS;
}

static int read_ahead(void *arg, cr_error_t *err)
{
	(void)arg;
	for (int i = 0; i < WARM_AT_MOST && !atomic_load(&ahead.frozen) && warm_once(i == 0); i++)
		usleep(WARM_EVERY_US);
	while (!atomic_load(&ahead.frozen))
		usleep(WARM_EVERY_US);
	return proc_read_locks(&ahead.all, &ahead.n, err);
}

void locks_warm_up(void)
{
	ahead.all = NULL;
	ahead.n = 0;
	atomic_store(&ahead.frozen, false);
	ahead.started = cr_job_start(&ahead.job, read_ahead, NULL);
}

void locks_prefetch(void)
{
	if (!ahead.started)
		locks_warm_up();
	atomic_store(&ahead.frozen, true);
}

/* The prefetched /proc/locks, or read now where no thread read it. */
static int read_locks(struct proc_lock **all, size_t *n, cr_error_t *err)
{
	if (!ahead.started)
		return proc_read_locks(all, n, err);
	ahead.started = false;
	if (cr_job_wait(&ahead.job, err) < 0)
		return cr_error_wrap(err, "/proc/locks, read ahead");
	*all = ahead.all;
	*n = ahead.n;
	ahead.all = NULL;
	return 0;
}

/* Every lock that /proc/locks gives to a process of the dump must be one
 * that an fd showed, or a flock held through a mapping.  Locks that name
 * no process of the dump (OFD locks name none: -1) but are on a file the
 * dump maps: check_unnamed. */
static int cross_check(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free struct proc_lock *all = NULL;
	cleanup_free bool *claimed = xcalloc(seen.n + 1, sizeof(*claimed));
	size_t n = 0;

	if (read_locks(&all, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct proc_lock *l = &all[i];
		const char *path;

		if (l->waiting || recorded(ctx, l, claimed))
			continue;
		if (l->pid > 0 && in_dump(ctx, l->pid)) {
			if (!mapped_flock(ctx, l))
				return refuse_unseen(ctx, l, err);
		} else if ((l->cls == PROC_LOCK_FLOCK || l->cls == PROC_LOCK_OFD) && (path = mapped_by(ctx, l)) != NULL &&
			   check_unnamed(ctx, l, path, err) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Does process q, outside the dump, hold the description behind fd of
 * pid?  *q_fd gets its fd. */
static bool held_outside(pid_t pid, int fd, const char *link, pid_t q, int *q_fd)
{
	char path[64], other[PATH_MAX];
	cleanup_closedir DIR *d = NULL;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/fd", q);
	d = opendir(path);
	if (d == NULL)
		return false;   /* gone, or a kernel thread */
	while ((e = readdir(d)) != NULL) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		*q_fd = atoi(e->d_name);
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", q, *q_fd);
		len = readlink(path, other, sizeof(other) - 1);
		if (len <= 0)
			continue;
		other[len] = '\0';
		if (strcmp(other, link) == 0 && syscall(SYS_kcmp, pid, q, KCMP_FILE, fd, *q_fd) == 0)
			return true;
	}
	return false;
}

/* A flock or OFD lock belongs to its description: a process outside the
 * dump that shares the description holds the lock too. */
static int refuse_shared_outside(const struct dump_ctx *ctx, const struct seen_lock *s, cr_error_t *err)
{
	const char *link = ctx->files.v[s->file_id - 1]->path;
	cleanup_closedir DIR *d = opendir("/proc");
	pid_t self = getpid();
	struct dirent *e;
	int q_fd = -1;

	if (d == NULL)
		return cr_error(err, errno, "opendir /proc");
	while ((e = readdir(d)) != NULL) {
		pid_t q = (pid_t)atoi(e->d_name);

		if (q <= 0 || q == self || in_dump(ctx, q) || !held_outside(s->pid, s->fd, link, q, &q_fd))
			continue;
		return cr_error(err, 0, "pid %d fd %d (%s): a %s %s on a description that pid %d (fd %d), outside the "
				"dump, shares: unsupported (that process holds the lock too)", s->pid, s->fd, link,
				type_name(s->l.type), class_name(s->l.cls), q, q_fd);
	}
	return 0;
}

static int locks_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	if (cross_check(ctx, err) < 0)
		return -1;
	for (size_t i = 0; seen.ctx == ctx && i < seen.n; i++)
		if (seen.v[i].l.cls != PROC_LOCK_POSIX && refuse_shared_outside(ctx, &seen.v[i], err) < 0)
			return -1;
	return 0;
}

static void locks_release_dump(struct dump_ctx *ctx)
{
	(void)ctx;
	if (ahead.started) {   /* a dump that failed before its check */
		atomic_store(&ahead.frozen, true);
		ahead.started = false;
		cr_job_wait(&ahead.job, NULL);
	}
	free(ahead.all);
	ahead.all = NULL;
	seen_clear();
}

/* --------------------------------------------------------------- restore */

static const FdEntry *find_fd(const struct restore_task *t, uint32_t fd)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->fd == fd)
			return t->fds[i];
	return NULL;
}

static const char *kind_word(const LockEntry *e)
{
	return e->kind == LOCK_KIND__LOCK_POSIX ? "POSIX lock" : e->kind == LOCK_KIND__LOCK_OFD ? "OFD lock" : "flock";
}

static int validate_range(const LockEntry *e, uint32_t acc, cr_error_t *err)
{
	if (e->kind == LOCK_KIND__LOCK_FLOCK)
		return e->start == 0 && e->len == 0 ? 0 : cr_error(err, 0, "a flock with a byte range");
	if (e->start > INT64_MAX || e->len > INT64_MAX || (e->len > 0 && e->len - 1 > INT64_MAX - e->start))
		return cr_error(err, 0, "bytes %" PRIu64 " (+%" PRIu64 ") out of range", e->start, e->len);
	if (acc == O_ACCMODE || (e->write && acc == O_RDONLY) || (!e->write && acc == O_WRONLY))
		return cr_error(err, 0, "a %s lock on an fd opened %s", e->write ? "write" : "read",
				acc == O_RDONLY ? "read-only" : acc == O_WRONLY ? "write-only" : "for neither");
	return 0;
}

static int validate_lock(const struct restore_ctx *ctx, const struct restore_task *t, const LockEntry *e,
			 cr_error_t *err)
{
	const FdEntry *f = find_fd(t, e->fd);
	const FileEntry *fe = f ? restore_file(ctx, f->file_id) : NULL;
	const struct fd_kind *kind = fe ? fdkind_for_entry(fe) : NULL;

	if (e->kind != LOCK_KIND__LOCK_FLOCK && e->kind != LOCK_KIND__LOCK_POSIX && e->kind != LOCK_KIND__LOCK_OFD)
		return cr_error(err, 0, "unknown kind %d", e->kind);
	if (fe == NULL || kind == NULL)
		return cr_error(err, 0, "fd %u is not in the fd table", e->fd);
	if (!lockable_kind(fe->kind) || !kind->shareable || (fe->flags & O_PATH))
		return cr_error(err, 0, "a %s on fd %u, a %s that cannot be locked", kind_word(e), e->fd, kind->name);
	return validate_range(e, fe->flags & O_ACCMODE, err);
}

static int locks_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->core->n_locks; i++)
		if (validate_lock(ctx, t, t->core->locks[i], err) < 0)
			return cr_error_wrap(err, "core-%d.img: lock %zu", t->pid, i);
	return 0;
}

/* "bytes 20-24", "bytes 200 to the end", or nothing for a flock. */
static void range_words(const LockEntry *e, char *buf, size_t size)
{
	if (e->kind == LOCK_KIND__LOCK_FLOCK)
		snprintf(buf, size, "the whole file");
	else if (e->len == 0)
		snprintf(buf, size, "bytes %" PRIu64 " to the end", e->start);
	else
		snprintf(buf, size, "bytes %" PRIu64 "-%" PRIu64, e->start, e->start + e->len - 1);
}

/* Who holds what conflicts with e now, for the error: " (pid N)". */
static void holder_words(int fd, const LockEntry *e, char *buf, size_t size)
{
	struct flock fl = {
		.l_type = e->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
		.l_start = (off_t)e->start, .l_len = (off_t)e->len,
	};
	int cmd = e->kind == LOCK_KIND__LOCK_OFD ? F_OFD_GETLK : F_GETLK;

	buf[0] = '\0';
	if (e->kind == LOCK_KIND__LOCK_FLOCK || fcntl(fd, cmd, &fl) < 0 || fl.l_type == F_UNLCK)
		return;
	if (fl.l_pid > 0)
		snprintf(buf, size, ", held by pid %d", fl.l_pid);
	else
		snprintf(buf, size, ", held through an OFD lock");
}

static int take_lock(int fd, const LockEntry *e, const char *path, cr_error_t *err)
{
	struct flock fl = {
		.l_type = e->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
		.l_start = (off_t)e->start, .l_len = (off_t)e->len,
	};
	char range[64], holder[64];
	int r;

	if (e->kind == LOCK_KIND__LOCK_FLOCK)
		r = flock(fd, (e->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	else
		r = fcntl(fd, e->kind == LOCK_KIND__LOCK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
	if (r == 0)
		return 0;
	range_words(e, range, sizeof(range));
	if (errno != EAGAIN && errno != EACCES)
		return cr_error(err, errno, "%s %s on %s (fd %u), %s", e->write ? "write" : "read", kind_word(e), path,
				e->fd, range);
	holder_words(fd, e, holder, sizeof(holder));
	return cr_error(err, errno, "%s %s on %s (fd %u), %s: another process holds a conflicting lock now%s",
			e->write ? "write" : "read", kind_word(e), path, e->fd, range, holder);
}

/* A flock or OFD lock, taken on its description by the process that
 * opens it for its holders. */
struct planned_lock {
	const LockEntry *e;
	uint32_t id;                  /* the file */
	pid_t holder;                 /* the dumped process it was found in */
};

struct locks_plan {
	struct planned_lock *v;       /* grouped by taker */
	size_t *first;                /* per task, and one past the last: its range of v */
	char **what;                  /* the names of the calls after_close adds */
	size_t n_what;
};

static bool lock_of_description(const LockEntry *e)
{
	return e->kind != LOCK_KIND__LOCK_POSIX;
}

/* A description one process holds is opened by that process as it sets
 * up its fds (files_setup), not before any fork: no stash slot. */
static bool opened_before_fork(const struct restore_ctx *ctx, uint32_t id)
{
	return ctx->file_slot[id] >= 0;
}

/* Which process takes each flock and OFD lock of a description several
 * processes hold: the one that opens it for them (files_plan chose it),
 * so that each process walks only its own at restore.  The locks of a
 * description of one process are taken by it in setup. */
static int locks_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	struct locks_plan *p = xcalloc(1, sizeof(*p));
	size_t n = 0, *next = NULL;

	(void)err;
	p->first = xcalloc(ctx->n_tasks + 1, sizeof(*p->first));
	ctx->locks = p;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < ctx->n_tasks; i++) {
			const struct restore_task *u = &ctx->tasks[i];

			for (size_t j = 0; !u->zombie && j < u->core->n_locks; j++) {
				const LockEntry *e = u->core->locks[j];
				uint32_t id = find_fd(u, e->fd)->file_id;
				size_t taker = (size_t)(ctx->file_lca[id] - ctx->tasks);

				if (!lock_of_description(e) || !opened_before_fork(ctx, id))
					continue;
				if (pass == 0)
					p->first[taker + 1]++;
				else
					p->v[next[taker]++] = (struct planned_lock){ e, id, u->pid };
			}
		}
		if (pass == 1)
			break;
		for (size_t i = 0; i < ctx->n_tasks; i++)
			p->first[i + 1] += p->first[i];
		n = p->first[ctx->n_tasks];
		p->v = xcalloc(n + 1, sizeof(*p->v));
		next = xmalloc(ctx->n_tasks * sizeof(*next));
		memcpy(next, p->first, ctx->n_tasks * sizeof(*next));
	}
	free(next);
	return 0;
}

/* The flock and OFD locks of every description this process opens for
 * its holders (files_before_fork put it in the stash just now). */
static int locks_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	size_t me = (size_t)(t - ctx->tasks);

	for (size_t k = ctx->locks->first[me]; k < ctx->locks->first[me + 1]; k++) {
		const struct planned_lock *l = &ctx->locks->v[k];

		if (ctx->opened[l->id] < 0)
			return cr_error(err, 0, "file %u of pid %d fd %u was not opened for its lock", l->id, l->holder,
					l->e->fd);
		if (take_lock(ctx->opened[l->id], l->e, restore_file(ctx, l->id)->path, err) < 0)
			return cr_error_wrap(err, "pid %d", l->holder);
	}
	return 0;
}

static void locks_release_restore(struct restore_ctx *ctx)
{
	if (ctx->locks == NULL)
		return;
	free(ctx->locks->v);
	free(ctx->locks->first);
	for (size_t i = 0; i < ctx->locks->n_what; i++)
		free(ctx->locks->what[i]);
	free(ctx->locks->what);
	free(ctx->locks);
	ctx->locks = NULL;
}

/* The file of fd, for comparing with the others this process has. */
static int file_of(int fd, struct stat *st, cr_error_t *err)
{
	if (fstat(fd, st) < 0)
		return cr_error(err, errno, "stat fd %d", fd);
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Does the process map the locked file (its executable too)?  Its
 * mapping's fd, which cr closes in the transplant, would release the lock
 * taken before: locks_after_close takes it then. */
static bool mapped(const struct restore_ctx *ctx, const struct restore_task *t, const struct stat *locked)
{
	const MmEntry *mm = t->mm;
	struct stat st;

	for (size_t i = 0; i <= mm->n_vmas; i++) {
		uint32_t id = i < mm->n_vmas ? mm->vmas[i]->file_id : mm->exe_file_id;
		const FileEntry *fe = restore_file(ctx, id);

		if (fe != NULL && stat(fe->path, &st) == 0 && same_file(&st, locked))
			return true;
	}
	return false;
}

/* cr's fds (its block and what it keeps aside: the stash) on a file this process
 * holds POSIX locks on: the restorer would close them before the process
 * runs, and with them the locks.  Closed now, before the locks are taken;
 * the children that needed the stash exist already. */
static int close_cr_fds_on(const struct restore_task *t, const struct stat *locked, cr_error_t *err)
{
	cleanup_closedir DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	struct stat st;

	if (d == NULL)
		return cr_error(err, errno, "opendir /proc/self/fd");
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (!restore_fd_is_crs(t, fd) || fd == dirfd(d) || fstat(fd, &st) < 0 || !same_file(&st, locked))
			continue;
		if (close(fd) < 0)
			return cr_error(err, errno, "close cr's fd %d", fd);
	}
	return 0;
}

static int setup_posix(struct restore_ctx *ctx, struct restore_task *t, const LockEntry *e, cr_error_t *err)
{
	const FileEntry *fe = restore_file(ctx, find_fd(t, e->fd)->file_id);
	struct stat st;

	if (file_of((int)e->fd, &st, err) < 0)
		return -1;
	if (mapped(ctx, t, &st))
		return 0;
	if (close_cr_fds_on(t, &st, err) < 0)
		return -1;
	return take_lock((int)e->fd, e, fe->path, err);
}

static size_t n_posix(const struct restore_task *t)
{
	size_t n = 0;

	for (size_t i = 0; i < t->core->n_locks; i++)
		n += t->core->locks[i]->kind == LOCK_KIND__LOCK_POSIX;
	return n;
}

uint64_t locks_tramp_bytes(const struct restore_task *t)
{
	return n_posix(t) * sizeof(struct flock);
}

/* Every POSIX lock again, once cr's fds are closed: those on a mapped file
 * for the first time (setup left them), the others again, which changes
 * nothing (the ranges of one owner never overlap). */
static int locks_after_close(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	size_t n = n_posix(t), k = 0;
	cleanup_free struct flock *fl = NULL;
	uint64_t at = t->tramp + t->tramp_locks;
	struct locks_plan *p = ctx->locks;

	if (n == 0)
		return 0;
	fl = xcalloc(n, sizeof(*fl));
	p->what = xreallocarray(p->what, p->n_what + n, sizeof(*p->what));
	for (size_t i = 0; i < t->core->n_locks; i++) {
		const LockEntry *e = t->core->locks[i];
		char range[64];

		if (e->kind != LOCK_KIND__LOCK_POSIX)
			continue;
		fl[k] = (struct flock){ .l_type = e->write ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET,
					.l_start = (off_t)e->start, .l_len = (off_t)e->len };
		range_words(e, range, sizeof(range));
		p->what[p->n_what] = xasprintf("%s POSIX lock on %s (fd %u), %s, once cr's fds are closed",
					       e->write ? "write" : "read",
					       restore_file(ctx, find_fd(t, e->fd)->file_id)->path, e->fd, range);
		inject_batch_add(&t->batch, p->what[p->n_what++], SYS_fcntl, e->fd, F_SETLK,
				 at + k * sizeof(*fl), 0, 0, 0);
		k++;
	}
	return remote_write(t->host_pid, at, fl, n * sizeof(*fl), err);
}

/* A flock or OFD lock on a description only this process holds, on its
 * fd in place. */
static int setup_own_description(const struct restore_ctx *ctx, const struct restore_task *t, const LockEntry *e,
				 cr_error_t *err)
{
	uint32_t id = find_fd(t, e->fd)->file_id;

	if (opened_before_fork(ctx, id))
		return 0;   /* taken before the fork by its opener */
	return take_lock((int)e->fd, e, restore_file(ctx, id)->path, err);
}

static int locks_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->core->n_locks; i++) {
		const LockEntry *e = t->core->locks[i];

		if (e->kind == LOCK_KIND__LOCK_POSIX ? setup_posix(ctx, t, e, err) < 0 :
						       setup_own_description(ctx, t, e, err) < 0)
			return -1;
	}
	return 0;
}

const struct state_kind state_locks = {
	.name = "file locks",
	.collect = locks_collect,
	.check_tree = locks_check_tree,
	.release_dump = locks_release_dump,
	.validate = locks_validate,
	.plan = locks_plan,
	.before_fork = locks_before_fork,
	.setup = locks_setup,
	.after_close = locks_after_close,
	.release_restore = locks_release_restore,
};
