/* Regular files deleted while open: contents, size, mode, owner and mtime
 * are kept in the image.
 *
 * Dump: as for memfds (memfd.c), through a description of cr's own, with
 * the contents in the first description of each file.  A file deleted
 * under one name but still linked under another is refused.
 *
 * Restore: the file is created again at its former path (O_EXCL) and
 * unlinked at once, so the restored fds show "PATH (deleted)" as before;
 * both in its directory opened as the process would reach it (its
 * credentials, no symbolic link: fd/reopen.h).
 * When something else took that path meanwhile, an O_TMPFILE in the same
 * directory stands in (its fds show "DIR/#INO (deleted)"; a warning says
 * so).  A file made with O_TMPFILE (a description's flags say so) is made
 * again with O_TMPFILE in its directory, with that description's flags;
 * whether it was made with O_EXCL (never linkable) the kernel does not
 * show, and it comes back linkable, as O_TMPFILE makes files by default.
 * The file is then filled, owned, moded and dated as dumped, and is the
 * anchor of its descriptions (fdshare.h), each at its own offset.
 *
 * Either way its directory must exist: a file deleted together with its
 * directory is refused at dump.  A deleted file that is mapped too is made
 * by shmem.c, and its descriptions are opened from that object. */
#include "fd/contents.h"
#include "fd/deleted.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/reg.h"
#include "fd/reopen.h"
#include "os/log.h"
#include "os/util.h"
#include "state/mntns.h"
#include "state/ns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ dump */

/* Not the kernel's own memory files (a memfd has a kind of its own; an fd
 * on shared anonymous or System V memory would come back as a file of its
 * own, no longer the memory that is mapped). */
static bool deleted_match(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && p->link[0] == '/' && proc_kernel_memory_file(p->link) == NULL &&
	       p->st.st_nlink == 0 && proc_link_deleted(p->link, NULL);
}

/* Descriptions of one deleted file: its device and inode. */
static bool file_key(const FileEntry *fe, struct fdshare_key *k)
{
	if (fe->kind != FILE_KIND__FILE_DELETED_REG || fe->deleted == NULL)
		return false;
	*k = (struct fdshare_key){ .ino = fe->deleted->ino, .dev = fe->deleted->dev };
	return true;
}

static void describe(const struct stat *st, DeletedEntry *de)
{
	de->ino = st->st_ino;
	de->dev = st->st_dev;
	de->size = (uint64_t)st->st_size;
	de->mode = st->st_mode & 07777;
	de->uid = st->st_uid;
	de->gid = st->st_gid;
	de->mtime_ns = timespec_ns(&st->st_mtim);
}

/* The directory of path, "/" for a file at the top. */
static void dir_of(const char *path, char dir[PATH_MAX])
{
	const char *slash = strrchr(path, '/');

	snprintf(dir, PATH_MAX, "%.*s", slash == NULL || slash == path ? 1 : (int)(slash - path), path);
}

/* The restore makes the thing again in its directory (reached without a
 * symbolic link, from cr's root as the path is): at dump, and again before
 * any process exists, it must be one.  In a mount namespace of the dump it
 * is looked at where cr reaches it (state/mntns.h): at dump through
 * /proc/PID/root (pid), at restore on the host path of its mount, or not
 * at all before the restore makes that mount (ctx). */
int deleted_check_dir(const char *what, const char *path, pid_t pid, const struct restore_ctx *ctx, uint32_t mnt,
		      cr_error_t *err)
{
	char dir[PATH_MAX], view[PATH_MAX + 64];
	const char *look = dir;
	struct stat st;

	dir_of(path, dir);
	if (pid != 0)
		look = mntns_dump_view(pid, dir, view, sizeof(view));
	else if (ns_path_view(ctx, mnt, dir, view, sizeof(view)) == 0)
		return 0;
	else
		look = view;
	if (pid != 0 && look == view) {   /* /proc/PID/root is a link reopen_look refuses */
		if (stat(look, &st) < 0)
			return cr_error(err, errno, "%s %s: its directory %s, where cr makes it again, is gone "
					"(unsupported)", what, path, dir);
	} else if (reopen_look(look, &st, err) < 0) {
		return cr_error_wrap(err, "%s %s: its directory, where cr makes it again, is gone (unsupported)",
				     what, path);
	}
	if (!S_ISDIR(st.st_mode))
		return cr_error(err, 0, "%s %s: %s, where cr makes it again, is no directory", what, path, dir);
	return 0;
}

static int deleted_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	DeletedEntry *de = arena_new(&ctx->arena, DeletedEntry);
	cleanup_close int fd = -1;
	struct contents c;
	struct stat st;
	size_t stem = 0;

	deleted_entry__init(de);
	if (fdshare_refuse_outside(ctx, t->pid, p, "deleted file", err) < 0)
		return -1;
	fd = fdshare_reopen(t->pid, p->fd, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", p->link);
	describe(&st, de);
	proc_link_deleted(p->link, &stem);
	fe->path[stem] = '\0';   /* the former path */
	if (deleted_check_dir("deleted file", fe->path, t->pid, NULL, 0, err) < 0)
		return -1;
	fe->deleted = de;
	if (fdshare_recorded(ctx, fe, file_key))
		return 0;   /* its first description holds the contents */
	if (shmem_mapped_in_dump(ctx, de->ino, de->dev)) {
		de->has_in_object = de->in_object = true;   /* its contents are the mapped object's */
		return 0;
	}
	if (contents_dump(&ctx->arena, fd, de->size, &c, err) < 0)
		return cr_error_wrap(err, "deleted file %s", fe->path);
	de->n_data_off = de->n_data = c.n;
	de->data_off = c.off;
	de->data = c.data;
	return 0;
}

/* --------------------------------------------------------------- restore */

/* A description made with O_TMPFILE is one of a directory's unnamed
 * files, open for writing. */
static bool tmpfile_flags_ok(uint32_t flags)
{
	return !(flags & O_TMPFILE_BIT) || ((flags & O_DIRECTORY) && (flags & O_ACCMODE) != O_RDONLY);
}

static int deleted_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const DeletedEntry *de = fe->deleted;

	if (de == NULL)
		return cr_error(err, 0, "deleted file without its entry");
	if (fe->path[0] != '/')
		return cr_error(err, 0, "deleted file at a relative path '%s'", fe->path);
	if (!tmpfile_flags_ok(fe->flags))
		return cr_error(err, 0, "deleted file %s: flags 0%o are no O_TMPFILE's", fe->path, fe->flags);
	if (deleted_check_dir("deleted file", fe->path, 0, ctx, fe->mnt_ns, err) < 0)
		return -1;
	if (de->in_object && (de->n_data || !shmem_has_file_object(ctx, false, de->ino, de->dev)))
		return cr_error(err, 0, "deleted file %s: its contents are in a memory object the dump lacks",
				fe->path);
	return contents_validate(de->size, de->n_data_off, de->data_off, de->n_data, de->data, err);
}

static const FileEntry *first_of_file(const struct restore_ctx *ctx, const FileEntry *fe)
{
	return fdshare_first(ctx, fe, file_key);
}

/* The directory of path, opened as process t would reach it (its
 * credentials, no symbolic link on the way: fd/reopen.h); *base points
 * into path at the last component. */
static int open_parent(const struct restore_task *t, const char *path, const char **base, cr_error_t *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	bool as_cr;

	if (slash == NULL || slash[1] == '\0')
		return cr_error(err, 0, "%s is no absolute path to a file", path);
	dir_of(path, dir);
	*base = slash + 1;
	return reopen_path(t, dir, O_PATH | O_DIRECTORY, &as_cr, err);
}

/* An unnamed file in dir, the directory of path. */
static int tmpfile_in(int dir, const char *path, cr_error_t *err)
{
	int fd = openat(dir, ".", O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);   /* O_EXCL: never linkable */

	if (fd < 0)
		return cr_error(err, errno, "%s is taken, and an unnamed file beside it", path);
	pr_warn("%s exists again: its deleted namesake is restored as an unnamed file in its directory", path);
	return fd;
}

/* The file at its former path, unlinked at once; created and unlinked in
 * its directory as reached without a symbolic link, so that a link put on
 * the way since the dump takes neither call elsewhere. */
int deleted_make(const struct restore_task *t, const char *path, cr_error_t *err)
{
	const char *base;
	cleanup_close int dir = open_parent(t, path, &base, err);
	int fd;

	if (dir < 0)
		return -1;
	fd = openat(dir, base, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? tmpfile_in(dir, path, err) : cr_error(err, errno, "create %s", path);
	if (unlinkat(dir, base, 0) < 0) {
		cr_error(err, errno, "unlink %s", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* The description of first's file that was made with O_TMPFILE, if any. */
static const FileEntry *made_with_tmpfile(const struct restore_ctx *ctx, const FileEntry *first)
{
	for (size_t i = 0; i < ctx->n_files; i++) {
		const FileEntry *fe = ctx->files[i];

		if (fe->kind == first->kind && (fe->flags & O_TMPFILE_BIT) && fe->deleted != NULL &&
		    fe->deleted->ino == first->deleted->ino && fe->deleted->dev == first->deleted->dev)
			return fe;
	}
	return NULL;
}

/* Flags F_SETFL sets later, and flags only open looks at. */
#define NOT_AT_CREATION (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY)

/* An O_TMPFILE in the directory of tmp's path, with tmp's flags, so that
 * tmp's description is this very one (fdshare.h). */
static int remake_tmpfile(const struct restore_task *t, const FileEntry *tmp, cr_error_t *err)
{
	const char *base;
	cleanup_close int dir = open_parent(t, tmp->path, &base, err);
	int fd;

	if (dir < 0)
		return -1;
	fd = openat(dir, ".", (int)(tmp->flags & ~(uint32_t)NOT_AT_CREATION) | O_CLOEXEC, 0600);
	if (fd < 0)
		return cr_error(err, errno, "make a file with O_TMPFILE (flags 0%o) in the directory of %s",
				tmp->flags, tmp->path);
	return fd;
}

static int create_file(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *first,
		       cr_error_t *err)
{
	const DeletedEntry *de = first->deleted;
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, ns_timespec(de->mtime_ns) };
	const FileEntry *tmp = made_with_tmpfile(ctx, first);
	cleanup_close int fd = tmp ? remake_tmpfile(t, tmp, err) : deleted_make(t, first->path, err);

	if (fd < 0 || contents_restore(fd, de->size, de->n_data, de->data_off, de->data, err) < 0)
		return -1;
	if (fchown(fd, de->uid, de->gid) < 0)
		return cr_error(err, errno, "chown to %u:%u", de->uid, de->gid);
	if (fchmod(fd, de->mode) < 0)
		return cr_error(err, errno, "chmod 0%o", de->mode);
	if (futimens(fd, times) < 0)
		return cr_error(err, errno, "set mtime");
	return steal_fd(&fd);
}

static int deleted_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			cr_error_t *err)
{
	const FileEntry *first = first_of_file(ctx, fe);
	struct fd_anchor *a = fd_anchor_find(first->id);

	if (a == NULL) {
		bool none;
		int obj = shmem_file_fd(ctx, t, false, first->deleted->ino, first->deleted->dev, &none, err);
		int fds[2] = { none ? create_file(ctx, t, first, err) : obj, -1 };

		if (fds[0] < 0 || (a = fd_anchor_add(t, first->id, fds, err)) == NULL)
			return cr_error_wrap(err, "deleted file %s", first->path);
	}
	return fd_anchor_open_at(a, fe, err);
}

const struct fd_kind fdkind_deleted = {
	.kind = FILE_KIND__FILE_DELETED_REG,
	.shareable = true,
	.first = first_of_file,
	.aside = 1,
	.extra_flags = O_TMPFILE_BIT,
	.name = "deleted file", .match = deleted_match, .dump = deleted_dump, .validate = deleted_validate,
	.open = deleted_open,
};

/* ------------------------------------------ directories and FIFOs, anew */

static int make_node(int dir, const char *name, mode_t mode)
{
	return S_ISDIR(mode) ? mkdirat(dir, name, 0700) : mknodat(dir, name, S_IFIFO | 0600, 0);
}

int deleted_remake_node(const struct restore_task *t, const char *path, mode_t mode, uid_t uid, gid_t gid,
			int flags, cr_error_t *err)
{
	const char *base;
	cleanup_close int dir = open_parent(t, path, &base, err);
	char name[NAME_MAX + 1];
	int fd;

	if (dir < 0)
		return -1;
	snprintf(name, sizeof(name), "%s", base);
	if (make_node(dir, name, mode) < 0) {
		if (errno != EEXIST)
			return cr_error(err, errno, "make %s", path);
		snprintf(name, sizeof(name), "%.200s.cr-%d", base, (int)getpid());
		pr_warn("%s exists again: its removed namesake is made again as %s beside it", path, name);
		if (make_node(dir, name, mode) < 0)
			return cr_error(err, errno, "make %s in the directory of %s", name, path);
	}
	/* Owned and moded by name: an O_PATH fd takes neither. */
	if (fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 || fchmodat(dir, name, mode & 07777, 0) < 0) {
		cr_error(err, errno, "give %s the owner %u:%u and mode 0%o", path, uid, gid, mode & 07777);
		unlinkat(dir, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
		return -1;
	}
	fd = openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		cr_error(err, errno, "open %s (made again)", path);
	if (unlinkat(dir, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0) < 0 && fd >= 0) {
		cr_error(err, errno, "remove %s (made again)", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* A directory removed while open: empty (rmdir only removes empty ones),
 * so its mode and owner are all there is to it. */
static bool removed_dir_match(const struct fd_probe *p)
{
	return S_ISDIR(p->st.st_mode) && p->link[0] == '/' && p->st.st_nlink == 0 && proc_link_deleted(p->link, NULL);
}

static int removed_dir_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			    cr_error_t *err)
{
	size_t stem = 0;

	(void)ctx, (void)t;
	proc_link_deleted(p->link, &stem);
	fe->path[stem] = '\0';   /* the former path */
	fe->pos = 0;   /* nothing to read in it but "." and "..", which getdents no longer shows */
	reg_identity(fe, &p->st);
	return deleted_check_dir("removed directory", fe->path, p->pid, NULL, 0, err);
}

static int removed_dir_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	if (!fe->has_mode || !S_ISDIR(fe->mode) || !fe->has_uid || !fe->has_gid)
		return cr_error(err, 0, "removed directory %s without its mode and owner", fe->path);
	if (reopen_check_flags(fe->path, fe->flags, err) < 0)
		return -1;
	return deleted_check_dir("removed directory", fe->path, 0, ctx, fe->mnt_ns, err);
}

static int removed_dir_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			    cr_error_t *err)
{
	(void)ctx;
	return deleted_remake_node(t, fe->path, fe->mode, fe->uid, fe->gid,
				   (int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC), err);
}

const struct fd_kind fdkind_removed_dir = {
	.kind = FILE_KIND__FILE_REMOVED_DIR, .shareable = true,
	.name = "removed directory", .match = removed_dir_match, .dump = removed_dir_dump,
	.validate = removed_dir_validate, .open = removed_dir_open,
};
