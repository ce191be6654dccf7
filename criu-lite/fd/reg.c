/* Regular files and directories, character devices, and the terminal a
 * shell job runs on. */
#include "fd/reg.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/fhandle.h"
#include "fd/reopen.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "state/ctty.h"
#include "state/mntns.h"
#include "state/ns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Terminals: the pty slaves (136-143), the virtual consoles (4), /dev/tty
 * and /dev/console (5:0, 5:1). */
static bool is_tty_rdev(dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);

	return (maj >= 136 && maj <= 143) || maj == 4 || (maj == 5 && (min == 0 || min == 1));
}

/* --- regular files and directories -------------------------------------- */

static bool reg_match(const struct fd_probe *p)
{
	mode_t type = p->st.st_mode & S_IFMT;
	char view[PATH_MAX + 64];
	struct stat now;

	if (type != S_IFREG && type != S_IFDIR)
		return false;
	if (p->link[0] != '/' || proc_link_deleted(p->link, NULL) || strncmp(p->link, "/memfd:", 7) == 0)
		return false;
	/* The path must still lead to the same file. */
	return stat(mntns_dump_view(p->pid, p->link, view, sizeof(view)), &now) == 0 && now.st_ino == p->st.st_ino && now.st_dev == p->st.st_dev;
}

void reg_identity(FileEntry *fe, const struct stat *st)
{
	fe->has_mode = fe->has_dev = fe->has_ino = fe->has_uid = fe->has_gid = true;
	fe->mode = st->st_mode;
	fe->dev = st->st_dev;
	fe->ino = st->st_ino;
	fe->uid = st->st_uid;
	fe->gid = st->st_gid;
}

/* The pid of a path /proc/PID or /proc/PID/..., else 0; *tid is TID of
 * /proc/PID/task/TID[/...], else 0. */
static pid_t proc_path_pid(const char *path, pid_t *tid)
{
	char *end;
	long pid, t = 0;

	*tid = 0;
	if (strncmp(path, "/proc/", 6) != 0 || path[6] < '1' || path[6] > '9')
		return 0;
	pid = strtol(path + 6, &end, 10);
	if ((*end != '/' && *end != '\0') || pid > INT32_MAX)
		return 0;
	if (strncmp(end, "/task/", 6) == 0 && end[6] >= '1' && end[6] <= '9') {
		t = strtol(end + 6, &end, 10);
		*tid = (*end == '/' || *end == '\0') && t <= INT32_MAX ? (pid_t)t : 0;
	}
	return (pid_t)pid;
}

/* A file of /proc/PID is reopened by its path once the restored PID
 * exists: PID must be a process of the dump (whatever process has the pid
 * of one outside at restore would do), and not a thread of one (threads
 * are made after the files are opened). */
static int check_proc_file(const struct dump_ctx *ctx, const char *path, cr_error_t *err)
{
	pid_t tid, pid = proc_path_pid(path, &tid);

	if (pid == 0)
		return 0;
	if (!fdshare_in_dump(ctx, pid))
		return cr_error(err, 0, "%s belongs to pid %d, which is no process of the dump (a thread, or a process "
				"outside it): a restore would open that of whatever has pid %d then (unsupported)",
				path, pid, pid);
	if (tid != 0 && tid != pid)
		return cr_error(err, 0, "%s belongs to thread %d of pid %d: the restore makes threads only once the "
				"files are open (unsupported)", path, tid, pid);
	return 0;
}

static pid_t reg_refers_to(const FileEntry *fe)
{
	pid_t tid;

	return proc_path_pid(fe->path, &tid);
}

static int reg_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	(void)t;
	if (fe->flags & O_TMPFILE_BIT)
		return cr_error(err, 0, "%s was made with O_TMPFILE and given a name since: its description keeps "
				"O_TMPFILE in its flags, which no open of a named file gives back (unsupported)",
				p->link);
	if (check_proc_file(ctx, p->link, err) < 0)
		return -1;
	fe->has_size = true;
	fe->size = S_ISREG(p->st.st_mode) ? (uint64_t)p->st.st_size : 0;
	reg_identity(fe, &p->st);
	return 0;
}

/* The same inode only means the same file on the same boot and device:
 * elsewhere (another machine, a file system mounted anew) the type, mode
 * and owner must match.  A file opened as cr, which the process's own
 * credentials may not open, must also have the dumped size and mtime
 * where the inode cannot vouch for it. */
/* Files of /proc are made afresh for each process, with new inodes, and
 * those of a restored process exist only once it does: their path is
 * their identity (issue 14 is to restore them properly). */
static bool in_procfs(const char *path)
{
	return strncmp(path, "/proc/", 6) == 0;
}

static int check_identity(const struct restore_ctx *ctx, const FileEntry *fe, const struct stat *st, bool exact,
			  cr_error_t *err)
{
	char view[PATH_MAX];
	/* A file of a tmpfs the restore made again is a new inode. */
	bool remade = ns_path_view(ctx, fe->mnt_ns, fe->path, view, sizeof(view)) == 0;

	if (in_procfs(fe->path))
		return 0;
	if (fe->has_ino && fe->has_dev && ctx->same_boot && st->st_dev == fe->dev && !remade) {
		if (st->st_ino != fe->ino)
			return cr_error(err, 0, "%s is another file than at dump (inode %llu, was %llu): refused",
					fe->path, (unsigned long long)st->st_ino, (unsigned long long)fe->ino);
		return 0;
	}
	if (fe->has_mode && st->st_mode != fe->mode)
		return cr_error(err, 0, "%s has mode 0%o, was 0%o at dump: refused", fe->path, st->st_mode, fe->mode);
	if (fe->has_uid && fe->has_gid && (st->st_uid != fe->uid || st->st_gid != fe->gid))
		return cr_error(err, 0, "%s is owned by %u:%u, was %u:%u at dump: refused", fe->path, st->st_uid,
				st->st_gid, fe->uid, fe->gid);
	if (exact && S_ISREG(st->st_mode) && fe->has_mtime_ns &&
	    ((uint64_t)st->st_size != fe->size || timespec_ns(&st->st_mtim) != fe->mtime_ns))
		return cr_error(err, 0, "%s changed since the dump, and the process's credentials may not open it: "
				"refused", fe->path);
	return 0;
}

int reg_check(const struct restore_ctx *ctx, const FileEntry *fe, bool strict, cr_error_t *err)
{
	char view[PATH_MAX];
	struct stat st;

	if (reopen_check_flags(fe->path, fe->flags, err) < 0)
		return -1;
	if (in_procfs(fe->path))
		return 0;
	if (ns_path_view(ctx, fe->mnt_ns, fe->path, view, sizeof(view)) == 0)
		return 0;   /* on a mount the restore makes: checked when opened */
	if (reopen_look(view, &st, err) < 0)
		return -1;
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return cr_error(err, 0, "%s is no longer a regular file or directory", fe->path);
	if (check_identity(ctx, fe, &st, false, err) < 0)
		return -1;
	if (strict && ((uint64_t)st.st_size != fe->size || (fe->has_mtime_ns && timespec_ns(&st.st_mtim) != fe->mtime_ns)))
		return cr_error(err, 0, "%s changed since the dump (size %lld, was %llu); restore needs the same file",
				fe->path, (long long)st.st_size, (unsigned long long)fe->size);
	/* A mapping has no offset; one within the file's size is always a
	 * valid one, so only an offset past the end is tried on the file. */
	if (strict || (S_ISREG(st.st_mode) && fe->pos <= (uint64_t)st.st_size))
		return 0;
	return reopen_check_offset(view, fe->pos, err);
}

static int reg_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	return reg_check(ctx, fe, false, err);
}

/* The pid that /proc shows for the process this one sees as pid: what
 * its pidfd's fdinfo says. */
static int pid_in_procfs(pid_t pid, pid_t *out, cr_error_t *err)
{
	cleanup_close int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	cleanup_close int dir = open("/proc/self/fdinfo", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct proc_fdinfo info;
	cleanup_free char *text = NULL;
	uint64_t v;

	if (pidfd < 0)
		return cr_error(err, errno, "pidfd_open %d", pid);
	if (dir < 0)
		return cr_error(err, errno, "open /proc/self/fdinfo");
	if (proc_read_fdinfo_at(dir, pid, pidfd, &info, &text, err) < 0)
		return -1;
	if (proc_fdinfo_u64(text, "Pid", 10, &v) < 0 || v == 0 || v > INT32_MAX)
		return cr_error(err, 0, "pid %d: /proc shows it in no pid namespace of its own", pid);
	*out = (pid_t)v;
	return 0;
}

/* A file of /proc/PID (PID a process of the dump, as its own namespace saw
 * it) after a restore into a new pid namespace: /proc, the host's, shows
 * that process under another pid.  In buf, the path with that pid. */
static const char *proc_path_here(const struct restore_ctx *ctx, const char *path, char *buf, size_t size,
				  cr_error_t *err)
{
	pid_t tid, pid = proc_path_pid(path, &tid), here = 0;
	const char *rest;

	if (pid == 0 || !ctx->opts->new_pidns)
		return path;
	if (pid_in_procfs(pid, &here, err) < 0)
		return NULL;
	rest = strchr(path + 6, '/');
	if (tid == pid)
		snprintf(buf, size, "/proc/%d/task/%d%s", here, here, strchr(strstr(rest, "/task/") + 6, '/') ?: "");
	else
		snprintf(buf, size, "/proc/%d%s", here, rest ? rest : "");
	return buf;
}

int reg_open(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe, bool strict,
	     cr_error_t *err)
{
	int flags = (int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	cleanup_close int fd = -1;
	char here[PATH_MAX];
	const char *path = proc_path_here(ctx, fe->path, here, sizeof(here), err);
	struct stat st;
	bool as_cr;

	if (path == NULL)
		return cr_error_wrap(err, "%s of a process restored in a new pid namespace", fe->path);
	fd = reopen_path(t, path, flags, &as_cr, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", fe->path);
	if (check_identity(ctx, fe, &st, as_cr, err) < 0)
		return -1;
	if (strict && ((uint64_t)st.st_size != fe->size || (fe->has_mtime_ns && timespec_ns(&st.st_mtim) != fe->mtime_ns)))
		return cr_error(err, 0, "%s changed since the dump (size %lld, was %llu); restore needs "
				"the same file", fe->path, (long long)st.st_size, (unsigned long long)fe->size);
	if (!strict && S_ISREG(st.st_mode) && (uint64_t)st.st_size != fe->size)
		pr_warn("%s: size is %lld, was %llu at dump", fe->path, (long long)st.st_size,
			(unsigned long long)fe->size);
	if (!strict && fe->pos && lseek(fd, (off_t)fe->pos, SEEK_SET) < 0)   /* a mapping has no offset */
		return cr_error(err, errno, "seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	return steal_fd(&fd);
}

static int reg_kind_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			 cr_error_t *err)
{
	return reg_open(ctx, t, fe, false, err);
}

const struct fd_kind fdkind_reg = {
	.name = "regular file", .kind = FILE_KIND__FILE_REG, .shareable = true,
	.match = reg_match, .dump = reg_dump, .validate = reg_validate, .open = reg_kind_open,
	.refers_to = reg_refers_to,
};

/* --- files deleted under one name, linked under another ------------------ */

/* A regular file whose fds show "PATH (deleted)" while it still has
 * links: reopened at restore through another of its names, as a regular
 * file of that path (its inode is checked as for any).  The name is
 * looked for in the directory of the deleted one, then asked of the
 * kernel through the file's handle (which gives a name the kernel still
 * has in its cache, if any); a file found by neither is refused: cr does
 * not search the file system for it. */
static bool relinked_match(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && p->link[0] == '/' && p->st.st_nlink > 0 && proc_link_deleted(p->link, NULL) &&
	       proc_kernel_memory_file(p->link) == NULL && strncmp(p->link, "/memfd:", 7) != 0;
}

/* Another name of the file st in the directory of former, into out. */
static bool other_name(const char *former, const struct stat *st, char *out, size_t size)
{
	const char *slash = strrchr(former, '/');
	char dir[PATH_MAX];
	struct dirent *e;
	struct stat now;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%.*s", slash == former ? 1 : (int)(slash - former), former);
	d = opendir(dir);
	while (d != NULL && !found && (e = readdir(d)) != NULL) {
		if (e->d_ino != st->st_ino)
			continue;
		if ((size_t)snprintf(out, size, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, e->d_name) >= size)
			continue;
		found = lstat(out, &now) == 0 && S_ISREG(now.st_mode) && now.st_ino == st->st_ino &&
			now.st_dev == st->st_dev;
	}
	if (d != NULL)
		closedir(d);
	return found;
}

/* A name of the file behind link (a magic link of /proc) that the
 * kernel's cache gives for its handle (fd/fhandle.h), checked to lead to
 * it; into out. */
static bool name_by_handle(const char *link, const struct stat *st, char *out, size_t size)
{
	char buf[sizeof(struct file_handle) + FHANDLE_MAX_BYTES];
	struct file_handle *fh = (struct file_handle *)buf;
	struct fhandle_info h = { .dev = st->st_dev, .ino = st->st_ino };
	cleanup_free char *path = NULL;
	int mnt;

	fh->handle_bytes = FHANDLE_MAX_BYTES;
	if (name_to_handle_at(AT_FDCWD, link, fh, &mnt, AT_SYMLINK_FOLLOW) < 0)
		return false;
	h.handle_bytes = fh->handle_bytes;
	h.handle_type = fh->handle_type;
	memcpy(h.handle, fh->f_handle, fh->handle_bytes);
	path = fhandle_path(&h);
	return path != NULL && (size_t)snprintf(out, size, "%s", path) < size;
}

bool reg_other_name(const char *former, const char *link, const struct stat *st, char *out, size_t size)
{
	return other_name(former, st, out, size) || name_by_handle(link, st, out, size);
}

static int relinked_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			 cr_error_t *err)
{
	struct fd_probe named = *p;
	char link[64];
	size_t stem = 0;

	proc_link_deleted(p->link, &stem);
	named.link[stem] = '\0';
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", t->pid, p->fd);
	if (!reg_other_name(named.link, link, &p->st, named.link, sizeof(named.link)))
		return cr_error(err, 0, "%s: deleted under the name it was opened by, still linked elsewhere (%lu links) "
				"but under no other name in its directory or that the kernel knows, which cr could "
				"reopen it by (unsupported)", p->link, (unsigned long)p->st.st_nlink);
	pr_info("pid %d fd %d: %s is reopened as %s, another name of the file", t->pid, p->fd, p->link, named.link);
	fe->path = arena_strdup(&ctx->arena, named.link);
	return reg_dump(ctx, t, &named, fe, err);
}

const struct fd_kind fdkind_relinked = {
	.name = "regular file deleted under one of its names", .kind = FILE_KIND__FILE_REG, .shareable = true,
	.match = relinked_match, .dump = relinked_dump,
};

/* --- O_PATH fds ------------------------------------------------------------ */

/* Whatever an O_PATH fd points at (a symbolic link itself when opened
 * with O_NOFOLLOW, a device, a FIFO, a directory...) is reopened by its
 * path with the same flags: the fd does no I/O, so nothing of the file is
 * kept but its identity, checked as for regular files. */
static bool opath_match(const struct fd_probe *p)
{
	return (p->info.flags & O_PATH) != 0;
}

static int opath_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		      cr_error_t *err)
{
	struct stat now;

	(void)ctx, (void)t;
	if (p->link[0] != '/' || proc_link_deleted(p->link, NULL))
		return cr_error(err, 0, "an O_PATH fd on %s, which has no path to reopen it by (unsupported)", p->link);
	if (in_procfs(p->link))
		return cr_error(err, 0, "an O_PATH fd on %s: the files of /proc are made afresh (unsupported)", p->link);
	if (lstat(p->link, &now) < 0 || now.st_ino != p->st.st_ino || now.st_dev != p->st.st_dev)
		return cr_error(err, 0, "an O_PATH fd on %s, which is no longer the file at that path (unsupported)",
				p->link);
	reg_identity(fe, &p->st);
	return 0;
}

static int opath_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	struct stat st;

	if (!(fe->flags & O_PATH))
		return cr_error(err, 0, "O_PATH fd on %s: flags 0%o without O_PATH", fe->path, fe->flags);
	if (reopen_check_flags(fe->path, fe->flags, err) < 0 || reopen_look_nofollow(fe->path, &st, err) < 0)
		return -1;
	return check_identity(ctx, fe, &st, false, err);
}

static int opath_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = -1;
	struct stat st;
	bool as_cr;

	fd = reopen_path(t, fe->path, (int)fe->flags & (O_PATH | O_NOFOLLOW | O_DIRECTORY), &as_cr, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", fe->path);
	if (check_identity(ctx, fe, &st, false, err) < 0)
		return -1;
	return steal_fd(&fd);
}

const struct fd_kind fdkind_opath = {
	.name = "O_PATH fd", .kind = FILE_KIND__FILE_OPATH, .shareable = true,
	.match = opath_match, .dump = opath_dump, .validate = opath_validate, .open = opath_open,
};

/* --- character devices --------------------------------------------------- */

static bool chr_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && p->link[0] == '/' && strcmp(p->link, "/dev/ptmx") != 0 &&
	       strncmp(p->link, "/dev/pts/", 9) != 0;
}

/* The restore opens the device by its path: the node must still be there,
 * the same device. */
static int chr_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	char view[PATH_MAX + 64];
	struct stat now;

	(void)ctx, (void)t;
	if (proc_link_deleted(p->link, NULL))
		return cr_error(err, 0, "%s: its device node was deleted, and the restore opens the device by the "
				"node's path (unsupported)", p->link);
	/* A tun fd attached to a device (TUNSETIFF) would come back detached. */
	if (p->fdinfo && proc_fdinfo_field(p->fdinfo, "iff") != NULL)
		return cr_error(err, 0, "%s attached to the tun/tap device %.*s: unsupported (an open of the node "
				"gives a detached fd)", p->link, (int)strcspn(proc_fdinfo_field(p->fdinfo, "iff"), "\n"),
				proc_fdinfo_field(p->fdinfo, "iff"));
	/* In a mount namespace of its own, through /proc/PID/root, a link
	 * reopen_look would refuse: the restore opens it without links. */
	if (mntns_dump_view(p->pid, p->link, view, sizeof(view)) != p->link) {
		if (stat(view, &now) < 0)
			return cr_error(err, errno, "its device node %s, which the restore opens", p->link);
	} else if (reopen_look(p->link, &now, err) < 0) {
		return cr_error_wrap(err, "its device node, which the restore opens");
	}
	if (!S_ISCHR(now.st_mode) || now.st_rdev != p->st.st_rdev)
		return cr_error(err, 0, "%s is no longer the node of its device %u:%u, and the restore opens the device "
				"by the node's path (unsupported)", p->link, major(p->st.st_rdev),
				minor(p->st.st_rdev));
	fe->has_rdev = true;
	fe->rdev = (uint32_t)p->st.st_rdev;
	return 0;
}

static int chr_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = -1;
	struct stat st;
	bool as_cr;

	(void)ctx;
	fd = reopen_path(t, fe->path, (int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC), &as_cr, err);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", fe->path);
	if (!S_ISCHR(st.st_mode) || (fe->has_rdev && st.st_rdev != fe->rdev))
		return cr_error(err, 0, "%s is not the character device it was at dump (%u:%u)", fe->path,
				major(fe->rdev), minor(fe->rdev));
	return steal_fd(&fd);
}

static int chr_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	char view[PATH_MAX];
	struct stat st;

	if (ns_path_view(ctx, fe->mnt_ns, fe->path, view, sizeof(view)) == 0)
		return 0;   /* on a mount the restore makes: checked when opened */
	if (reopen_look(view, &st, err) < 0)
		return -1;
	if (!S_ISCHR(st.st_mode) || !fe->has_rdev || st.st_rdev != fe->rdev)
		return cr_error(err, 0, "%s is not the character device it was at dump (%u:%u)", fe->path,
				major(fe->rdev), minor(fe->rdev));
	return 0;
}

const struct fd_kind fdkind_chr = {
	.name = "character device", .kind = FILE_KIND__FILE_CHR, .shareable = true,
	.match = chr_match, .dump = chr_dump, .validate = chr_validate, .open = chr_open,
};

/* --- the terminal of a shell job ------------------------------------------ */

static bool tty_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && is_tty_rdev(p->st.st_rdev);
}

/* /dev/tty is whatever terminal controls the process: the restoring one. */
static bool is_dev_tty(dev_t rdev)
{
	return major(rdev) == 5 && minor(rdev) == 0;
}

/* With --shell-job the restoring terminal stands for the root's
 * controlling terminal, and for no other: a second terminal would be
 * merged into it.  (A pts whose master the tree holds is fd/pty.c's.) */
int tty_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe, cr_error_t *err)
{
	dev_t shell = ctty_shell_terminal(ctx);

	(void)t;
	fe->kind = FILE_KIND__FILE_TTY;
	if (!is_dev_tty(p->st.st_rdev) && p->st.st_rdev != shell)
		return cr_error(err, 0, "terminal %s (%u:%u) is not the shell job's terminal (the controlling "
				"terminal of the root, pid %d: %s), the only one a restore can replace, by its own "
				"with --shell-job (unsupported)", p->link, major(p->st.st_rdev), minor(p->st.st_rdev),
				ctx->tasks[0].pid, shell ? "another" : "it has none");
	if (!ctx->opts->shell_job)
		return cr_error(err, 0, "terminal %s; dump with --shell-job to let the restored process use the "
				"restoring terminal", p->link);
	fe->has_rdev = true;
	fe->rdev = (uint32_t)p->st.st_rdev;
	return 0;
}

static int tty_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	if (!ctx->opts->shell_job)
		return cr_error(err, 0, "a terminal (%s): restore with --shell-job", fe->path);
	return 0;
}

/* The restoring terminal, which the restore keeps in a reserved slot,
 * opened anew: a description of the process's own, with its flags
 * (O_NONBLOCK set on it must not reach the shell that runs cr). */
static int tty_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	int flags = (int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	char path[64];
	int fd;

	(void)ctx;
	if (fcntl(t->reserved_base + RESERVED_TTY, F_GETFD) < 0)
		return cr_error(err, errno, "terminal %s: restore with --shell-job from a terminal", fe->path);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->reserved_base + RESERVED_TTY);
	fd = open(path, flags | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "terminal %s: open the restoring terminal", fe->path);
	return fd;
}

const struct fd_kind fdkind_tty = {
	.name = "terminal", .kind = FILE_KIND__FILE_TTY, .shareable = true,
	.match = tty_match, .dump = tty_dump, .validate = tty_validate, .open = tty_open,
};
