/* inotify: the watches, each with its watch descriptor, its mask and the
 * inode it watches.
 *
 * Dump: fdinfo lists every watch with the watched inode's file handle.
 * cr opens the handle (open_by_handle_at, on a mount of the inode's
 * filesystem) to learn where the inode is now, and records that path.
 *
 * Restore: inotify_add_watch hands out watch descriptors in increasing
 * order, so the watches are added in the order of their numbers; a number
 * nobody uses any more is skipped by adding a throw-away watch and
 * removing it.  Those removals queue IN_IGNORED events, which are read
 * away before the process gets the fd back.
 *
 * A watch on a deleted file the process still holds as an fd records
 * that fd: the restore watches the file made again (fd/deleted.c)
 * through a new fd of it (/proc/self/fd/N), whatever the fds' order.
 *
 * Events queued and not read at dump refuse the dump (reading them would
 * take them from the process, and nothing can queue them again), unless
 * --skip-in-flight, which drops them with a warning.  Not kept: events
 * that happen between dump and restore, and which number the next new watch gets (it
 * follows the highest restored one).  Watches on deleted files the process
 * holds no fd of, or on them in an inotify other processes share, make
 * the dump fail. */
#include "fd/fdkind.h"
#include "fd/fhandle.h"
#include "os/log.h"
#include "os/util.h"
#include "state/files.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>
#include <sys/sysmacros.h>

/* Watch numbers skipped one by one at restore; more means a broken image. */
#define MAX_WD_GAP (1 << 20)

typedef InotifyEntry__Watch Watch;

/* What one fdinfo line tells about a watch. */
struct watch_info {
	unsigned wd, mask, ignored_mask;
	struct fhandle_info fh;
};

/* ------------------------------------------------------------------ dump */

static bool inotify_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:inotify") == 0;
}

static int parse_watch_line(const char *l, struct watch_info *w, cr_error_t *err)
{
	unsigned sdev;
	int used = 0;

	if (sscanf(l, "inotify wd:%x ino:%" SCNx64 " sdev:%x mask:%x ignored_mask:%x%n", &w->wd, &w->fh.ino, &sdev,
		   &w->mask, &w->ignored_mask, &used) != 5)
		return cr_error(err, 0, "cannot parse inotify fdinfo line '%.60s'", l);
	w->fh.dev = fhandle_sdev(sdev);
	if (fhandle_parse(l + used, &w->fh) < 0)
		return cr_error(err, 0, "watch %u (inode %" PRIu64 ") has no file handle: unsupported kind (a "
				"watch on a filesystem without file handles)", w->wd, w->fh.ino);
	if (w->ignored_mask != 0)
		return cr_error(err, 0, "watch %u has an ignored mask 0x%x: unsupported kind", w->wd,
				w->ignored_mask);
	return 0;
}

/* A deleted regular file the process holds open as an fd: the fd, or -1. */
static int held_deleted(pid_t pid, const struct fhandle_info *fh)
{
	char path[64];
	struct dirent *d;
	struct stat st;
	int found = -1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	while (dir != NULL && found < 0 && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.' || fstatat(dirfd(dir), d->d_name, &st, 0) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_nlink == 0 && st.st_ino == fh->ino && st.st_dev == fh->dev)
			found = atoi(d->d_name);
	}
	if (dir != NULL)
		closedir(dir);
	return found;
}

/* Another process of the dump holding the inotify description fd of
 * pid (kcmp), or 0. */
static pid_t shared_with(const struct dump_ctx *ctx, pid_t pid, int fd)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		pid_t other = ctx->tasks[i].pid;
		char path[64], link[64];
		struct dirent *d;
		bool shared = false;
		DIR *dir;

		if (other == pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", other);
		dir = opendir(path);
		while (dir != NULL && !shared && (d = readdir(dir)) != NULL) {
			ssize_t n = readlinkat(dirfd(dir), d->d_name, link, sizeof(link) - 1);

			if (n <= 0 || (link[n] = '\0', strcmp(link, "anon_inode:inotify") != 0))
				continue;
			shared = syscall(SYS_kcmp, pid, other, KCMP_FILE, fd, atoi(d->d_name)) == 0;
		}
		if (dir != NULL)
			closedir(dir);
		if (shared)
			return other;
	}
	return 0;
}

/* Where the watched inode is now (fd/fhandle.h); for a deleted file the
 * process holds, the fd it holds it by (*held). */
static int find_path(const struct dump_ctx *ctx, const struct fd_probe *p, const struct watch_info *w,
		     char **path, int *held, cr_error_t *err)
{
	pid_t other;

	*held = -1;
	*path = fhandle_path(&w->fh);
	if (*path != NULL)
		return 0;
	*held = held_deleted(p->pid, &w->fh);
	if (*held < 0)
		return cr_error(err, 0, "watch %u: the watched inode %" PRIu64 " (device %u:%u) has no path any "
				"more, and the process holds no fd on it: unsupported kind (a watch on a deleted file)",
				w->wd, w->fh.ino, major(w->fh.dev), minor(w->fh.dev));
	other = shared_with(ctx, p->pid, p->fd);
	if (other != 0)
		return cr_error(err, 0, "watch %u is on a deleted file, and pid %d holds this inotify too: "
				"unsupported (the restore watches the file through the fd of the process that opens it)",
				w->wd, other);
	*path = xstrdup(p->link);   /* no path: the inotify's own, for messages */
	return 0;
}

static int add_watch_entry(struct dump_ctx *ctx, const struct fd_probe *p, InotifyEntry *e, const char *l,
			   cr_error_t *err)
{
	struct watch_info w = { 0 };
	cleanup_free char *path = NULL;
	int held;
	Watch *x;

	if (parse_watch_line(l, &w, err) < 0 || find_path(ctx, p, &w, &path, &held, err) < 0)
		return -1;
	x = arena_new(&ctx->arena, Watch);
	inotify_entry__watch__init(x);
	x->wd = w.wd;
	x->mask = w.mask;
	x->ino = w.fh.ino;
	x->path = arena_strdup(&ctx->arena, path);
	x->has_fd = held >= 0;
	x->fd = held >= 0 ? (uint32_t)held : 0;
	e->watches[e->n_watches++] = x;
	return 0;
}

static int by_wd(const void *a, const void *b)
{
	const Watch *x = *(Watch *const *)a, *y = *(Watch *const *)b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

static int inotify_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	InotifyEntry *e = arena_new(&ctx->arena, InotifyEntry);

	inotify_entry__init(e);
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "inotify with flags 0%o: unsupported kind (only O_NONBLOCK is kept)",
				fe->flags);
	/* Before cr looks for the watched files (fd/fhandle.h). */
	if (fhandle_check_unread(t->pid, p->fd, "inotify", ctx->opts->skip_in_flight, err) < 0)
		return -1;
	e->watches = arena_array(&ctx->arena, Watch *, proc_fdinfo_count(p->fdinfo, "inotify wd") + 1);
	for (const char *l = proc_fdinfo_next(p->fdinfo, "inotify wd", NULL); l != NULL;
	     l = proc_fdinfo_next(p->fdinfo, "inotify wd", l))
		if (add_watch_entry(ctx, p, e, l, err) < 0)
			return -1;
	if (e->n_watches > 1)
		qsort(e->watches, e->n_watches, sizeof(*e->watches), by_wd);
	fe->inotify = e;
	return 0;
}

/* --------------------------------------------------------------- restore */

static int inotify_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const InotifyEntry *e = fe->inotify;
	(void)ctx;

	if (e == NULL)
		return cr_error(err, 0, "inotify without its watches");
	for (size_t i = 0; i < e->n_watches; i++) {
		uint32_t prev = i ? e->watches[i - 1]->wd : 0;

		if (e->watches[i]->wd <= prev || e->watches[i]->wd - prev > MAX_WD_GAP ||
		    (e->watches[i]->path[0] != '/' && !e->watches[i]->has_fd))
			return cr_error(err, 0, "inotify watch %zu (wd %u) is out of order or has no absolute path",
					i, e->watches[i]->wd);
	}
	return 0;
}

/* A path to watch and unwatch for skipping numbers: any inode that no
 * restored watch watches. */
static int pick_spare(const InotifyEntry *e, const char **spare, cr_error_t *err)
{
	static const char *const candidates[] = { "/", "/proc", "/dev", "/sys", "/tmp" };

	for (size_t c = 0; c < ARRAY_SIZE(candidates); c++) {
		struct stat cs, ws;
		bool taken = false;

		if (lstat(candidates[c], &cs) < 0)
			continue;
		for (size_t i = 0; i < e->n_watches && !taken; i++)
			taken = lstat(e->watches[i]->path, &ws) == 0 && ws.st_ino == cs.st_ino && ws.st_dev == cs.st_dev;
		if (!taken) {
			*spare = candidates[c];
			return 0;
		}
	}
	return cr_error(err, 0, "no spare inode to skip watch numbers with");
}

/* Uses up watch numbers until the next one handed out is wd. */
static int skip_to(int fd, uint32_t wd, uint32_t *next, const char *spare, cr_error_t *err)
{
	while (*next < wd) {
		int w = inotify_add_watch(fd, spare, IN_DELETE_SELF | IN_DONT_FOLLOW);

		if (w < 0)
			return cr_error(err, errno, "watch %s to skip a number", spare);
		if (inotify_rm_watch(fd, w) < 0)
			return cr_error(err, errno, "remove skipping watch %d", w);
		*next = (uint32_t)w + 1;
	}
	return 0;
}

/* A new fd on the deleted file x watches, which fd x->fd of process t
 * holds: opened by its kind (made again if no fd of it is open yet). */
static int open_held(const struct restore_ctx *ctx, struct restore_task *t, const Watch *x, cr_error_t *err)
{
	const struct fd_kind *kind;
	const FileEntry *fe = NULL;

	for (size_t i = 0; i < t->n_fds && fe == NULL; i++)
		if (t->fds[i]->fd == x->fd)
			fe = restore_file(ctx, t->fds[i]->file_id);
	kind = fe ? fdkind_for_entry(fe) : NULL;
	if (kind == NULL)
		return cr_error(err, 0, "watch %u is on the deleted file of fd %u, which pid %d does not hold", x->wd,
				x->fd, t->pid);
	return kind->open(ctx, t, fe, err);
}

static int add_watch(const struct restore_ctx *ctx, struct restore_task *t, int fd, const Watch *x,
		     uint32_t *next, cr_error_t *err)
{
	uint32_t mask = x->mask & ~(uint32_t)(IN_MASK_ADD | IN_MASK_CREATE);
	cleanup_close int held = -1;
	char path[64];
	int w;

	if (x->has_fd) {   /* through the magic link, which IN_DONT_FOLLOW would watch itself */
		held = open_held(ctx, t, x, err);
		if (held < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", held);
		w = inotify_add_watch(fd, path, mask & ~(uint32_t)IN_DONT_FOLLOW);
	} else {
		if (fhandle_check_path("watched file", x->path, x->ino, err) < 0)
			return -1;
		w = inotify_add_watch(fd, x->path, mask | IN_DONT_FOLLOW);
	}
	if (w < 0)
		return cr_error(err, errno, "inotify_add_watch(%s, 0x%x)", x->path, mask);
	if ((uint32_t)w != x->wd)
		return cr_error(err, 0, "watch on %s got number %d, not %u", x->path, w, x->wd);
	*next = (uint32_t)w + 1;
	return 0;
}

/* Reads away the IN_IGNORED events of the skipping watches. */
static int drain(int fd, cr_error_t *err)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0 && errno != EINTR)
			return cr_error(err, errno, "read inotify events");
	}
}

static int inotify_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			cr_error_t *err)
{
	const InotifyEntry *e = fe->inotify;
	cleanup_close int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	const char *spare = NULL;
	uint32_t next = 1;

	if (fd < 0)
		return cr_error(err, errno, "inotify_init1");
	for (size_t i = 0; i < e->n_watches; i++) {
		const Watch *x = e->watches[i];

		if (x->wd > next && spare == NULL && pick_spare(e, &spare, err) < 0)
			return -1;
		if (skip_to(fd, x->wd, &next, spare, err) < 0 || add_watch(ctx, t, fd, x, &next, err) < 0)
			return cr_error_wrap(err, "inotify watch %u", x->wd);
	}
	if (spare != NULL && drain(fd, err) < 0)
		return -1;
	if (!(fe->flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		return cr_error(err, errno, "clear O_NONBLOCK");
	return steal_fd(&fd);
}

const struct fd_kind fdkind_inotify = {
	.kind = FILE_KIND__FILE_INOTIFY,
	.shareable = true,
	.name = "inotify",
	.match = inotify_match,
	.dump = inotify_dump,
	.validate = inotify_validate,
	.open = inotify_open,
};
