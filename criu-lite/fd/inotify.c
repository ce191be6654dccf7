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
 * Not kept: events queued and not read at dump (reading them would take
 * them from the process; cr warns when there are some), events that happen
 * between dump and restore, and which number the next new watch gets (it
 * follows the highest restored one).  Watches on files that have no path
 * (deleted) or no file handle (procfs, sysfs, ...) make the dump fail. */
#include "fd/fdkind.h"
#include "fd/fhandle.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

/* Where the watched inode is now (fd/fhandle.h). */
static int find_path(const struct watch_info *w, char **path, cr_error_t *err)
{
	*path = fhandle_path(&w->fh);
	if (*path == NULL)
		return cr_error(err, 0, "watch %u: the watched inode %" PRIu64 " (device %u:%u) has no path any "
				"more: unsupported kind (a watch on a deleted file)", w->wd, w->fh.ino,
				major(w->fh.dev), minor(w->fh.dev));
	return 0;
}

static int add_watch_entry(struct dump_ctx *ctx, InotifyEntry *e, const char *l, cr_error_t *err)
{
	struct watch_info w = { 0 };
	cleanup_free char *path = NULL;
	Watch *x;

	if (parse_watch_line(l, &w, err) < 0 || find_path(&w, &path, err) < 0)
		return -1;
	x = arena_new(&ctx->arena, Watch);
	inotify_entry__watch__init(x);
	x->wd = w.wd;
	x->mask = w.mask;
	x->ino = w.fh.ino;
	x->path = arena_strdup(&ctx->arena, path);
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
	e->watches = arena_array(&ctx->arena, Watch *, proc_fdinfo_count(p->fdinfo, "inotify wd") + 1);
	for (const char *l = proc_fdinfo_next(p->fdinfo, "inotify wd", NULL); l != NULL;
	     l = proc_fdinfo_next(p->fdinfo, "inotify wd", l))
		if (add_watch_entry(ctx, e, l, err) < 0)
			return -1;
	if (e->n_watches > 1)
		qsort(e->watches, e->n_watches, sizeof(*e->watches), by_wd);
	fhandle_warn_unread(t->pid, p->fd, "inotify");
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
		    e->watches[i]->path[0] != '/')
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

static int add_watch(int fd, const Watch *x, uint32_t *next, cr_error_t *err)
{
	uint32_t mask = (x->mask & ~(uint32_t)(IN_MASK_ADD | IN_MASK_CREATE)) | IN_DONT_FOLLOW;
	int w;

	if (fhandle_check_path("watched file", x->path, x->ino, err) < 0)
		return -1;
	w = inotify_add_watch(fd, x->path, mask);
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

	(void)ctx, (void)t;
	if (fd < 0)
		return cr_error(err, errno, "inotify_init1");
	for (size_t i = 0; i < e->n_watches; i++) {
		const Watch *x = e->watches[i];

		if (x->wd > next && spare == NULL && pick_spare(e, &spare, err) < 0)
			return -1;
		if (skip_to(fd, x->wd, &next, spare, err) < 0 || add_watch(fd, x, &next, err) < 0)
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
