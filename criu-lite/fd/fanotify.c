/* fanotify: a group of the notification class (FAN_CLASS_NOTIF) with its
 * init flags, the flags its events' fds are opened with, and its marks on
 * inodes, each with its mask.
 *
 * Dump: fdinfo lists the group's flags and every mark with the marked
 * inode's file handle, through which cr finds where the inode is now
 * (fd/fhandle.h), as for inotify.
 *
 * Restore: fanotify_init with the same flags, then fanotify_mark on each
 * path (checked to be the same inode).
 *
 * Refused: groups of the content classes (their permission events wait
 * for the process's answer), marks on mounts or filesystems, marks with an
 * ignored mask or flags (FAN_MARK_IGNORED_SURV_MODIFY, FAN_MARK_EVICTABLE,
 * FAN_MARK_IGNORE), marks on inodes without a path (deleted), and events
 * queued and not read (unless --skip-in-flight, which drops them with a
 * warning).  Not kept: events between dump and restore. */
#include "fd/fdkind.h"
#include "fd/fhandle.h"
#include "os/log.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

typedef FanotifyEntry__Mark Mark;

#define CLASS_BITS (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)
#define FD_BITS    (FAN_CLOEXEC | FAN_NONBLOCK)

/* ------------------------------------------------------------------ dump */

static bool fanotify_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[fanotify]") == 0;
}

static int parse_group(const struct fd_probe *p, FanotifyEntry *e, cr_error_t *err)
{
	const char *l = proc_fdinfo_next(p->fdinfo, "fanotify flags", NULL);

	if (l == NULL || sscanf(l, "fanotify flags:%x event-flags:%x", &e->init_flags, &e->event_flags) != 2)
		return cr_error(err, 0, "cannot parse the fanotify group line of fdinfo");
	if (e->init_flags & CLASS_BITS)
		return cr_error(err, 0, "a fanotify group of a content class (flags 0x%x): unsupported (its "
				"permission events wait for the process's answer)", e->init_flags);
	e->init_flags &= ~(uint32_t)FD_BITS;
	if (proc_fdinfo_next(p->fdinfo, "fanotify mnt_id", NULL) != NULL ||
	    proc_fdinfo_next(p->fdinfo, "fanotify sdev", NULL) != NULL)
		return cr_error(err, 0, "a fanotify mark on a mount or a filesystem: unsupported (only marks on "
				"inodes are restored)");
	return 0;
}

static int add_mark(struct dump_ctx *ctx, FanotifyEntry *e, const char *l, cr_error_t *err)
{
	struct fhandle_info fh = { 0 };
	unsigned sdev, mflags, mask, ignored;
	char *path;
	int used = 0;
	Mark *m;

	if (sscanf(l, "fanotify ino:%" SCNx64 " sdev:%x mflags:%x mask:%x ignored_mask:%x%n", &fh.ino, &sdev, &mflags,
		   &mask, &ignored, &used) != 5)
		return cr_error(err, 0, "cannot parse fanotify fdinfo line '%.60s'", l);
	fh.dev = fhandle_sdev(sdev);
	if (mflags != 0 || ignored != 0)
		return cr_error(err, 0, "a fanotify mark on inode %" PRIu64 " with flags 0x%x and an ignored mask "
				"0x%x: unsupported (only a mark's events are restored)", fh.ino, mflags, ignored);
	if (fhandle_parse(l + used, &fh) < 0 || (path = fhandle_path(&fh)) == NULL)
		return cr_error(err, 0, "a fanotify mark on inode %" PRIu64 " (device %u:%u), which has no path any "
				"more: unsupported (a mark on a deleted file)", fh.ino, major(fh.dev), minor(fh.dev));
	m = arena_new(&ctx->arena, Mark);
	fanotify_entry__mark__init(m);
	m->mask = mask;
	m->ino = fh.ino;
	m->path = arena_strdup(&ctx->arena, path);
	free(path);
	e->marks[e->n_marks++] = m;
	return 0;
}

static int fanotify_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			 cr_error_t *err)
{
	FanotifyEntry *e = arena_new(&ctx->arena, FanotifyEntry);

	fanotify_entry__init(e);
	if (parse_group(p, e, err) < 0)
		return -1;
	/* Before cr looks for the marked files (fd/fhandle.h). */
	if (fhandle_check_unread(t->pid, p->fd, "fanotify", ctx->opts->skip_in_flight, err) < 0)
		return -1;
	e->marks = arena_array(&ctx->arena, Mark *, proc_fdinfo_count(p->fdinfo, "fanotify ino") + 1);
	for (const char *l = proc_fdinfo_next(p->fdinfo, "fanotify ino", NULL); l != NULL;
	     l = proc_fdinfo_next(p->fdinfo, "fanotify ino", l))
		if (add_mark(ctx, e, l, err) < 0)
			return -1;
	fe->fanotify = e;
	return 0;
}

/* --------------------------------------------------------------- restore */

static int fanotify_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const FanotifyEntry *e = fe->fanotify;

	(void)ctx;
	if (e == NULL)
		return cr_error(err, 0, "fanotify without its group");
	if (e->init_flags & (CLASS_BITS | FD_BITS))
		return cr_error(err, 0, "fanotify group with init flags 0x%x", e->init_flags);
	for (size_t i = 0; i < e->n_marks; i++)
		if (e->marks[i]->path[0] != '/')
			return cr_error(err, 0, "fanotify mark %zu has no absolute path", i);
	return 0;
}

static int add_mark_again(int fd, const Mark *m, cr_error_t *err)
{
	if (fhandle_check_path("marked file", m->path, m->ino, err) < 0)
		return -1;
	if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_DONT_FOLLOW, m->mask, AT_FDCWD, m->path) < 0)
		return cr_error(err, errno, "fanotify_mark(%s, 0x%x)", m->path, m->mask);
	return 0;
}

static int fanotify_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			 cr_error_t *err)
{
	const FanotifyEntry *e = fe->fanotify;
	unsigned flags = e->init_flags | FAN_CLOEXEC | ((fe->flags & O_NONBLOCK) ? FAN_NONBLOCK : 0);
	cleanup_close int fd = fanotify_init(flags, e->event_flags);

	(void)ctx, (void)t;
	if (fd < 0)
		return cr_error(err, errno, "fanotify_init(0x%x, 0%o)", flags, e->event_flags);
	for (size_t i = 0; i < e->n_marks; i++)
		if (add_mark_again(fd, e->marks[i], err) < 0)
			return cr_error_wrap(err, "fanotify mark %zu", i);
	return steal_fd(&fd);
}

const struct fd_kind fdkind_fanotify = {
	.kind = FILE_KIND__FILE_FANOTIFY,
	.shareable = true,
	.name = "fanotify",
	.match = fanotify_match,
	.dump = fanotify_dump,
	.validate = fanotify_validate,
	.open = fanotify_open,
};
