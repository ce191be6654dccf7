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

#define MAX_HANDLE_BYTES 128
/* Watch numbers skipped one by one at restore; more means a broken image. */
#define MAX_WD_GAP (1 << 20)

typedef InotifyEntry__Watch Watch;

/* What one fdinfo line tells about a watch. */
struct watch_info {
	unsigned wd, mask, ignored_mask, sdev, handle_bytes;
	int handle_type;
	uint64_t ino;
	unsigned char handle[MAX_HANDLE_BYTES];
};

/* ------------------------------------------------------------------ dump */

static bool inotify_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:inotify") == 0;
}

static int parse_hex_bytes(const char *hex, unsigned char *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

static int parse_watch_line(const char *l, struct watch_info *w, cr_error_t *err)
{
	int used = 0;

	if (sscanf(l, "inotify wd:%x ino:%" SCNx64 " sdev:%x mask:%x ignored_mask:%x%n", &w->wd, &w->ino, &w->sdev,
		   &w->mask, &w->ignored_mask, &used) != 5)
		return cr_error(err, 0, "cannot parse inotify fdinfo line '%.60s'", l);
	if (sscanf(l + used, " fhandle-bytes:%x fhandle-type:%x f_handle:", &w->handle_bytes,
		   &w->handle_type) != 2 || w->handle_bytes == 0 || w->handle_bytes > MAX_HANDLE_BYTES)
		return cr_error(err, 0, "watch %u (inode %" PRIu64 ") has no file handle: unsupported kind (a "
				"watch on a filesystem without file handles)", w->wd, w->ino);
	if (parse_hex_bytes(strstr(l, "f_handle:") + strlen("f_handle:"), w->handle, w->handle_bytes) < 0)
		return cr_error(err, 0, "watch %u: bad file handle", w->wd);
	if (w->ignored_mask != 0)
		return cr_error(err, 0, "watch %u has an ignored mask 0x%x: unsupported kind", w->wd,
				w->ignored_mask);
	return 0;
}

/* Undoes the octal escapes (\040 for a space, ...) of a mountinfo field. */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		unsigned v;

		if (s[0] == '\\' && sscanf(s + 1, "%3o", &v) == 1 && s[1] >= '0' && s[1] <= '3') {
			*out++ = (char)v;
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* Opens the handle through mount point mnt; returns the path of the inode
 * if it is the watched one, else NULL. */
static char *path_through(const char *mnt, const struct watch_info *w, dev_t dev)
{
	char buf[sizeof(struct file_handle) + MAX_HANDLE_BYTES], link[64], path[PATH_MAX];
	struct file_handle *fh = (struct file_handle *)buf;
	cleanup_close int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* not O_PATH: refused */
	cleanup_close int fd = -1;
	struct stat st;
	ssize_t n;

	if (mfd < 0)
		return NULL;
	fh->handle_bytes = w->handle_bytes;
	fh->handle_type = w->handle_type;
	memcpy(fh->f_handle, w->handle, w->handle_bytes);
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		return NULL;
	path[n] = '\0';
	if (lstat(path, &st) < 0 || st.st_ino != w->ino || st.st_dev != dev)
		return NULL;
	return xstrdup(path);
}

/* Where the watched inode is now: through each mount of its filesystem. */
static int find_path(const struct watch_info *w, char **path, cr_error_t *err)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	dev_t dev = makedev(w->sdev >> 20, w->sdev & 0xfffff);
	char line[4096];

	if (f == NULL)
		return cr_error(err, errno, "open /proc/self/mountinfo");
	*path = NULL;
	while (*path == NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned maj, min;
		char mnt[PATH_MAX];

		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) != 3 || makedev(maj, min) != dev)
			continue;
		unescape(mnt);
		*path = path_through(mnt, w, dev);
	}
	if (*path == NULL)
		return cr_error(err, 0, "watch %u: the watched inode %" PRIu64 " (device %u:%u) has no path any "
				"more: unsupported kind (a watch on a deleted file)", w->wd, w->ino, major(dev),
				minor(dev));
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
	x->ino = w.ino;
	x->path = arena_strdup(&ctx->arena, path);
	e->watches[e->n_watches++] = x;
	return 0;
}

static int by_wd(const void *a, const void *b)
{
	const Watch *x = *(Watch *const *)a, *y = *(Watch *const *)b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

/* Unread events cannot be kept: say so. */
static void warn_unread(pid_t pid, int fd)
{
	cr_error_t err = NULL;
	cleanup_close int dup = fdkind_steal_fd(pid, fd, &err);
	int bytes = 0;

	cr_error_release(&err);
	if (dup >= 0 && ioctl(dup, FIONREAD, &bytes) == 0 && bytes > 0)
		pr_warn("pid %d fd %d: inotify has %d bytes of events not read yet; they are not restored", pid, fd,
			bytes);
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
	warn_unread(t->pid, p->fd);
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
	struct stat st;
	int w;

	if (lstat(x->path, &st) < 0)
		return cr_error(err, errno, "watched file %s", x->path);
	if (st.st_ino != x->ino)
		return cr_error(err, 0, "watched file %s is inode %llu, not %llu as at dump: it was replaced",
				x->path, (unsigned long long)st.st_ino, (unsigned long long)x->ino);
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
