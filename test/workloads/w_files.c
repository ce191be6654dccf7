/*
 * w_files STATE_DIR KIND
 *
 * One kind of open file that is easy to lose at restore (issue 14 item 5,
 * "Files").  t_files dumps it: cr must either restore it exactly (these
 * checks pass after the restore) or refuse the dump naming the process and
 * the thing (the process runs on and the same checks pass).
 *
 *   fifo_deleted     a FIFO unlinked while open three times (read-only,
 *                    write-only, read-write) with 6 bytes queued: the
 *                    queued bytes, the flags, the fds show "(deleted)",
 *                    and data written at one end comes out of the other.
 *   dir_open         a directory of 40 files read half-way with getdents,
 *                    and the same directory opened O_PATH: the rest of the
 *                    entries come next (each name once), the flags.
 *   dir_deleted      a directory (mode 0751) opened and then removed: the
 *                    fd is a removed directory with that mode, files cannot
 *                    be made in it, and its path is free.
 *   cwd_shared       two children in one removed directory (mode 0751),
 *                    which their parent left: the same directory (inode)
 *                    for both after restore.
 *   cwd_deleted      the working directory (mode 0751), removed: "." is a
 *                    removed directory with that mode, getcwd fails with
 *                    ENOENT, /proc/self/cwd ends in "(deleted)".
 *   opath_symlink    a symbolic link opened O_PATH|O_NOFOLLOW: the fd is the
 *                    link (its inode, readlinkat(fd, "") gives its target),
 *                    the flags.
 *   opath_file       a regular file and /dev/null opened O_PATH: the flags,
 *                    the inodes, read fails with EBADF.
 *   hardlink_deleted a file with a second name in its directory, open at
 *                    offset 3, deleted under the name it was opened by: the
 *                    fd is the file of the second name, contents, offset,
 *                    writes through the fd show under the second name.
 *   hardlink_elsewhere  the same with the second name in a sub-directory
 *                    (found through the file's handle: the kernel still
 *                    has that name in its cache).
 *   inotify_deleted  an inotify watch on a file that was deleted while held
 *                    open: the watch (its number) still reports a write to
 *                    the file, and a second watch on a file with a path.
 *   fanotify         a fanotify group (non-blocking) marking a directory for
 *                    opens of its files and a file for writes: an open in
 *                    the directory and a write to the file make events;
 *                    the flags.  The directory is one of its own (fan/ in
 *                    the state dir), where no one else opens files: events
 *                    queued and not read refuse the dump.
 *   nsfs_own         its own net, uts and ipc namespaces open as nsfs fds:
 *                    each fd is the namespace the process is in.
 *   nsfs_other       the uts namespace of a child that unshared it and
 *                    exited: the fd's namespace has the child's host name.
 */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags, 0600);

	if (fd < 0)
		wl_fatal("open %s: %s", path, strerror(errno));
	return fd;
}

/* ---------------------------------------------------------- deleted FIFO */

static int ff_rd, ff_wr, ff_rw, ff_flags[3];

static void fifo_deleted_setup(void)
{
	char path[PATH_MAX];

	wl_path(path, sizeof(path), "fifo");
	if (mkfifo(path, 0640) < 0)
		wl_fatal("mkfifo: %s", strerror(errno));
	ff_rd = open_or_die(path, O_RDONLY | O_NONBLOCK);
	ff_wr = open_or_die(path, O_WRONLY);
	ff_rw = open_or_die(path, O_RDWR);
	wl_write_all(ff_wr, "queued", 6);
	if (unlink(path) < 0)
		wl_fatal("unlink: %s", strerror(errno));
	ff_flags[0] = fcntl(ff_rd, F_GETFL);
	ff_flags[1] = fcntl(ff_wr, F_GETFL);
	ff_flags[2] = fcntl(ff_rw, F_GETFL);
}

static void fifo_deleted_check(void)
{
	int fds[3] = { ff_rd, ff_wr, ff_rw };
	char buf[16] = "", link[PATH_MAX];
	struct stat st, st0;

	fstat(ff_rd, &st0);
	for (int i = 0; i < 3; i++) {
		wl_fd_link(fds[i], link, sizeof(link));
		wl_check(fcntl(fds[i], F_GETFL) == ff_flags[i], "fd %d flags 0%o, were 0%o", fds[i],
			 fcntl(fds[i], F_GETFL), ff_flags[i]);
		wl_check(fstat(fds[i], &st) == 0 && S_ISFIFO(st.st_mode) && st.st_nlink == 0 && wl_same_inode(&st, &st0),
			 "fd %d is not the one deleted FIFO", fds[i]);
		wl_check(wl_has_suffix(link, "/fifo (deleted)"), "fd %d shows '%s'", fds[i], link);
	}
	wl_check((st0.st_mode & 07777) == 0640, "mode 0%o", st0.st_mode & 07777);
	wl_check(read(ff_rd, buf, sizeof(buf) - 1) == 6 && strcmp(buf, "queued") == 0, "read '%s'", buf);
	memset(buf, 0, sizeof(buf));
	wl_check(write(ff_rw, "more", 4) == 4 && read(ff_rd, buf, sizeof(buf) - 1) == 4 && strcmp(buf, "more") == 0,
		 "rw end to read end: '%s'", buf);
}

/* ------------------------------------------------------------ directories */

#define DIR_FILES 40

static int dir_fd, dir_path_fd, dir_flags, dir_path_flags;
static bool seen[DIR_FILES];

/* Reads entries with a small buffer; marks the f<N> names; -1 on a name
 * seen twice. */
static int read_some(int fd, int max_calls)
{
	char buf[256];
	int n = 0;

	for (int c = 0; c < max_calls; c++) {
		long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));

		if (got <= 0)
			break;
		for (long off = 0; off < got;) {
			struct dirent64 *d = (struct dirent64 *)(buf + off);
			int i;

			if (sscanf(d->d_name, "f%d", &i) == 1 && i >= 0 && i < DIR_FILES) {
				if (seen[i])
					return -1;
				seen[i] = true;
				n++;
			}
			off += d->d_reclen;
		}
	}
	return n;
}

static void dir_open_setup(void)
{
	char dir[PATH_MAX], f[PATH_MAX + 16];

	wl_path(dir, sizeof(dir), "d");
	if (mkdir(dir, 0700) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	for (int i = 0; i < DIR_FILES; i++) {
		snprintf(f, sizeof(f), "%s/f%d", dir, i);
		close(open_or_die(f, O_WRONLY | O_CREAT));
	}
	dir_fd = open_or_die(dir, O_RDONLY | O_DIRECTORY);
	dir_path_fd = open_or_die(dir, O_PATH | O_DIRECTORY);
	if (read_some(dir_fd, 2) <= 0)
		wl_fatal("getdents read nothing");
	dir_flags = fcntl(dir_fd, F_GETFL);
	dir_path_flags = fcntl(dir_path_fd, F_GETFL);
}

static void dir_open_check(void)
{
	char dir[PATH_MAX];
	struct stat a, b, c;
	int all = 1;

	wl_path(dir, sizeof(dir), "d");
	wl_check(read_some(dir_fd, 1000) > 0, "getdents after restore: nothing more or a name twice");
	for (int i = 0; i < DIR_FILES; i++)
		all &= seen[i];
	wl_check(all, "some names never came");
	wl_check(fcntl(dir_fd, F_GETFL) == dir_flags, "flags 0%o, were 0%o", fcntl(dir_fd, F_GETFL), dir_flags);
	wl_check(fcntl(dir_path_fd, F_GETFL) == dir_path_flags, "O_PATH flags 0%o, were 0%o",
		 fcntl(dir_path_fd, F_GETFL), dir_path_flags);
	wl_check(fstat(dir_fd, &a) == 0 && fstat(dir_path_fd, &b) == 0 && stat(dir, &c) == 0 && wl_same_inode(&a, &c) &&
		 wl_same_inode(&b, &c), "the fds are not the directory");
}

/* ---------------------------------------------------- removed directories */

static int rm_fd;

static int removed_dir(const char *name)
{
	char dir[PATH_MAX];
	int fd;

	wl_path(dir, sizeof(dir), name);
	if (mkdir(dir, 0751) < 0 || chmod(dir, 0751) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	fd = open_or_die(dir, O_RDONLY | O_DIRECTORY);
	if (rmdir(dir) < 0)
		wl_fatal("rmdir: %s", strerror(errno));
	return fd;
}

static void check_removed(const char *what, int fd, const char *name)
{
	char path[PATH_MAX];
	struct stat st;

	wl_path(path, sizeof(path), name);
	wl_check(fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0,
		 "(%s) not a removed directory (nlink %lu)", what, (unsigned long)st.st_nlink);
	wl_check((st.st_mode & 07777) == 0751, "(%s) mode 0%o", what, st.st_mode & 07777);
	wl_check(openat(fd, "new", O_WRONLY | O_CREAT, 0600) < 0 && errno == ENOENT,
		 "(%s) a file could be made in it", what);
	wl_check(lstat(path, &st) < 0 && errno == ENOENT, "(%s) %s exists again", what, path);
}

static void dir_deleted_setup(void)
{
	rm_fd = removed_dir("rmd");
}

static void dir_deleted_check(void)
{
	char link[PATH_MAX];

	check_removed("fd", rm_fd, "rmd");
	wl_fd_link(rm_fd, link, sizeof(link));
	wl_check(wl_has_suffix(link, "/rmd (deleted)"), "the fd shows '%s'", link);
}

static void cwd_deleted_setup(void)
{
	int fd = removed_dir("rmcwd");

	if (fchdir(fd) < 0)
		wl_fatal("fchdir: %s", strerror(errno));
	close(fd);
}

static void cwd_deleted_check(void)
{
	char buf[PATH_MAX];
	ssize_t n;
	int dot = open(".", O_RDONLY | O_DIRECTORY);

	check_removed("cwd", dot, "rmcwd");
	wl_check(getcwd(buf, sizeof(buf)) == NULL && errno == ENOENT, "getcwd works: %s", buf);
	n = readlink("/proc/self/cwd", buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = '\0';
	wl_check(wl_has_suffix(buf, "/rmcwd (deleted)"), "/proc/self/cwd is '%s'", buf);
	close(dot);
}

/* Two children in one removed directory, which their parent left: after
 * restore both are in one directory again (the same inode), a removed one
 * with its mode. */
static pid_t cwd_kids[2];

static __attribute__((noreturn)) void cwd_kid(int i)
{
	char ask[PATH_MAX], name[32];
	struct stat st;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	wl_path(ask, sizeof(ask), "cwd_ask");
	while (access(ask, F_OK) < 0)
		usleep(10000);
	snprintf(name, sizeof(name), "cwd_kid%d", i);
	if (stat(".", &st) == 0)
		wl_write_file(name, "%llu %llu %o %lu\n", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
			      st.st_mode & 07777, (unsigned long)st.st_nlink);
	for (;;)
		pause();
}

static void cwd_shared_setup(void)
{
	int fd = removed_dir("rmshared");

	if (fchdir(fd) < 0)
		wl_fatal("fchdir: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		cwd_kids[i] = fork();
		if (cwd_kids[i] < 0)
			wl_fatal("fork: %s", strerror(errno));
		if (cwd_kids[i] == 0)
			cwd_kid(i);
	}
	if (chdir(wl_dir()) < 0)
		wl_fatal("chdir: %s", strerror(errno));
	close(fd);
}

static void cwd_shared_check(void)
{
	char a[128] = "", b[128] = "";

	wl_write_file("cwd_ask", "1\n");
	for (int i = 0; i < 500 && (wl_read_file("cwd_kid0", a, sizeof(a)) <= 0 || wl_read_file("cwd_kid1", b, sizeof(b)) <= 0); i++)
		usleep(10000);
	wl_check(a[0] != '\0' && strcmp(a, b) == 0, "the children are in different directories: '%s' and '%s'", a, b);
	wl_check(strstr(a, " 751 0\n") != NULL, "their directory is not a removed one of mode 0751: '%s'", a);
	for (int i = 0; i < 2; i++)
		kill(cwd_kids[i], SIGKILL);
}

/* ----------------------------------------------------------------- O_PATH */

static int op_fd, op_dev, op_flags, op_dev_flags;

static void opath_symlink_setup(void)
{
	char path[PATH_MAX];

	wl_path(path, sizeof(path), "sl");
	if (symlink("target-of-the-link", path) < 0)
		wl_fatal("symlink: %s", strerror(errno));
	op_fd = open_or_die(path, O_PATH | O_NOFOLLOW);
	op_flags = fcntl(op_fd, F_GETFL);
}

static void opath_symlink_check(void)
{
	char path[PATH_MAX], target[64] = "";
	struct stat a, b;

	wl_path(path, sizeof(path), "sl");
	wl_check(fcntl(op_fd, F_GETFL) == op_flags, "flags 0%o, were 0%o", fcntl(op_fd, F_GETFL), op_flags);
	wl_check(fstat(op_fd, &a) == 0 && S_ISLNK(a.st_mode) && lstat(path, &b) == 0 && wl_same_inode(&a, &b),
		 "the fd is not the link");
	wl_check(readlinkat(op_fd, "", target, sizeof(target) - 1) == 18 && strcmp(target, "target-of-the-link") == 0,
		 "readlinkat: '%s'", target);
}

static void opath_file_setup(void)
{
	char path[PATH_MAX];

	wl_path(path, sizeof(path), "f");
	close(open_or_die(path, O_WRONLY | O_CREAT));
	op_fd = open_or_die(path, O_PATH);
	op_dev = open_or_die("/dev/null", O_PATH);
	op_flags = fcntl(op_fd, F_GETFL);
	op_dev_flags = fcntl(op_dev, F_GETFL);
}

static void opath_file_check(void)
{
	char path[PATH_MAX], c;
	struct stat a, b;

	wl_path(path, sizeof(path), "f");
	wl_check(fcntl(op_fd, F_GETFL) == op_flags, "flags 0%o, were 0%o", fcntl(op_fd, F_GETFL), op_flags);
	wl_check(fcntl(op_dev, F_GETFL) == op_dev_flags, "/dev/null flags 0%o, were 0%o", fcntl(op_dev, F_GETFL),
		 op_dev_flags);
	wl_check(fstat(op_fd, &a) == 0 && stat(path, &b) == 0 && wl_same_inode(&a, &b), "the fd is not the file");
	wl_check(fstat(op_dev, &a) == 0 && S_ISCHR(a.st_mode) && a.st_rdev == makedev(1, 3), "not /dev/null");
	wl_check(read(op_fd, &c, 1) < 0 && errno == EBADF, "read works on an O_PATH fd");
}

/* ------------------------------------------------------------ hard links */

static int hl_fd;
static char hl_other[PATH_MAX];

static void hardlink_setup(const char *other)
{
	char path[PATH_MAX], sub[PATH_MAX];

	wl_path(path, sizeof(path), "hl_a");
	wl_path(sub, sizeof(sub), "sub");
	mkdir(sub, 0700);
	wl_path(hl_other, sizeof(hl_other), other);
	hl_fd = open_or_die(path, O_RDWR | O_CREAT);
	wl_write_all(hl_fd, "hard-linked", 11);
	lseek(hl_fd, 3, SEEK_SET);
	if (link(path, hl_other) < 0 || unlink(path) < 0)
		wl_fatal("link %s, unlink %s: %s", hl_other, path, strerror(errno));
}

static void hardlink_deleted_setup(void)
{
	hardlink_setup("hl_b");
}

static void hardlink_elsewhere_setup(void)
{
	hardlink_setup("sub/hl_c");
}

static void hardlink_check(void)
{
	char buf[32] = "";
	struct stat a, b;

	wl_check(fstat(hl_fd, &a) == 0 && stat(hl_other, &b) == 0 && wl_same_inode(&a, &b), "the fd is not %s",
		 hl_other);
	wl_check(a.st_nlink == 1, "nlink %lu", (unsigned long)a.st_nlink);
	wl_check(lseek(hl_fd, 0, SEEK_CUR) == 3, "offset %lld", (long long)lseek(hl_fd, 0, SEEK_CUR));
	wl_check(write(hl_fd, "D", 1) == 1, "write: %s", strerror(errno));
	wl_check(wl_read_path(hl_other, buf, sizeof(buf)) == 11 && strcmp(buf, "harD-linked") == 0,
		 "%s reads '%s'", hl_other, buf);
}

/* ------------------------------------------------- inotify and fanotify */

static int in_fd, in_file, in_wd, in_wd2;

static void inotify_deleted_setup(void)
{
	char path[PATH_MAX], other[PATH_MAX];

	wl_path(path, sizeof(path), "watched");
	wl_path(other, sizeof(other), "other");
	in_file = open_or_die(path, O_RDWR | O_CREAT);
	close(open_or_die(other, O_RDWR | O_CREAT));
	in_fd = inotify_init1(IN_NONBLOCK);
	if (in_fd < 0 || (in_wd2 = inotify_add_watch(in_fd, other, IN_ATTRIB)) < 0 ||
	    (in_wd = inotify_add_watch(in_fd, path, IN_MODIFY)) < 0 || unlink(path) < 0)
		wl_fatal("inotify: %s", strerror(errno));
	while (wl_readable(in_fd, 100)) {   /* IN_ATTRIB of the unlink, if any */
		char buf[256];
		if (read(in_fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

static void inotify_deleted_check(void)
{
	char buf[256], other[PATH_MAX];
	struct inotify_event *ev = (struct inotify_event *)buf;

	wl_check(write(in_file, "x", 1) == 1, "write: %s", strerror(errno));
	wl_check(wl_readable(in_fd, 2000) && read(in_fd, buf, sizeof(buf)) > 0 && (ev->mask & IN_MODIFY) &&
		 ev->wd == in_wd, "no IN_MODIFY from the deleted file on watch %d", in_wd);
	wl_path(other, sizeof(other), "other");
	chmod(other, 0640);
	wl_check(wl_readable(in_fd, 2000) && read(in_fd, buf, sizeof(buf)) > 0 && (ev->mask & IN_ATTRIB) &&
		 ev->wd == in_wd2, "no IN_ATTRIB from %s on watch %d", other, in_wd2);
}

static int fan_fd, fan_flags;

static void fanotify_setup(void)
{
	char path[PATH_MAX], dir[PATH_MAX];

	wl_path(dir, sizeof(dir), "fan");
	if (mkdir(dir, 0700) < 0)
		wl_fatal("mkdir %s: %s", dir, strerror(errno));
	wl_path(path, sizeof(path), "fan/written");
	close(open_or_die(path, O_WRONLY | O_CREAT));
	fan_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (fan_fd < 0 || fanotify_mark(fan_fd, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, dir) < 0 ||
	    fanotify_mark(fan_fd, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, path) < 0)
		wl_fatal("fanotify: %s", strerror(errno));
	fan_flags = fcntl(fan_fd, F_GETFL);
}

/* The next event's mask, its fd closed; 0 if none comes. */
static uint64_t next_event(void)
{
	char buf[4096];
	struct fanotify_event_metadata *ev = (struct fanotify_event_metadata *)buf;

	if (!wl_readable(fan_fd, 2000) || read(fan_fd, buf, sizeof(buf)) < (ssize_t)sizeof(*ev))
		return 0;
	if (ev->fd >= 0)
		close(ev->fd);
	return ev->mask;
}

static void fanotify_check(void)
{
	char path[PATH_MAX];
	uint64_t mask;
	int fd;

	wl_check(fcntl(fan_fd, F_GETFL) == fan_flags, "flags 0%o, were 0%o", fcntl(fan_fd, F_GETFL), fan_flags);
	wl_path(path, sizeof(path), "fan/opened");
	close(open_or_die(path, O_RDONLY | O_CREAT));
	mask = next_event();
	wl_check(mask & FAN_OPEN, "no FAN_OPEN event (0x%llx)", (unsigned long long)mask);
	wl_path(path, sizeof(path), "fan/written");
	fd = open_or_die(path, O_WRONLY);   /* an open in the directory too */
	wl_check(next_event() & FAN_OPEN, "no FAN_OPEN event for %s", path);
	wl_write_all(fd, "x", 1);
	close(fd);
	mask = next_event();
	wl_check(mask & FAN_MODIFY, "no FAN_MODIFY event (0x%llx)", (unsigned long long)mask);
}

/* ------------------------------------------------------------------- nsfs */

static const char *const own_ns[] = { "net", "uts", "ipc" };
static int ns_fd[3];

static void nsfs_own_setup(void)
{
	char path[64];

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", own_ns[i]);
		ns_fd[i] = open_or_die(path, O_RDONLY);
	}
}

static void nsfs_own_check(void)
{
	char path[64];
	struct stat a, b;

	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/proc/self/ns/%s", own_ns[i]);
		wl_check(fstat(ns_fd[i], &a) == 0 && stat(path, &b) == 0 && wl_same_inode(&a, &b),
			 "the %s fd is not its namespace", own_ns[i]);
	}
}

static void nsfs_other_setup(void)
{
	char path[64], c;
	int up[2], down[2], status;
	pid_t child;

	if (pipe(up) < 0 || pipe(down) < 0 || (child = fork()) < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0) {
		if (unshare(CLONE_NEWUTS) < 0 || sethostname("w-files-child", 13) < 0 || write(up[1], "u", 1) != 1 ||
		    read(down[0], &c, 1) != 1)
			_exit(3);
		_exit(0);
	}
	if (read(up[0], &c, 1) != 1)
		wl_fatal("the child could not unshare its uts namespace");
	snprintf(path, sizeof(path), "/proc/%d/ns/uts", child);
	ns_fd[0] = open_or_die(path, O_RDONLY);
	wl_write_all(down[1], "x", 1);
	waitpid(child, &status, 0);
	close(up[0]), close(up[1]), close(down[0]), close(down[1]);
}

static void nsfs_other_check(void)
{
	struct utsname u;
	int self = open_or_die("/proc/self/ns/uts", O_RDONLY);

	wl_check(setns(ns_fd[0], CLONE_NEWUTS) == 0 && uname(&u) == 0 && strcmp(u.nodename, "w-files-child") == 0,
		 "the namespace's host name is not the child's");
	setns(self, CLONE_NEWUTS);
	close(self);
}

/* -------------------------------------------------------------- the modes */

static const struct wl_mode modes[] = {
	{ "fifo_deleted", fifo_deleted_setup, fifo_deleted_check },
	{ "dir_open", dir_open_setup, dir_open_check },
	{ "dir_deleted", dir_deleted_setup, dir_deleted_check },
	{ "cwd_deleted", cwd_deleted_setup, cwd_deleted_check },
	{ "cwd_shared", cwd_shared_setup, cwd_shared_check },
	{ "opath_symlink", opath_symlink_setup, opath_symlink_check },
	{ "opath_file", opath_file_setup, opath_file_check },
	{ "hardlink_deleted", hardlink_deleted_setup, hardlink_check },
	{ "hardlink_elsewhere", hardlink_elsewhere_setup, hardlink_check },
	{ "inotify_deleted", inotify_deleted_setup, inotify_deleted_check },
	{ "fanotify", fanotify_setup, fanotify_check },
	{ "nsfs_own", nsfs_own_setup, nsfs_own_check },
	{ "nsfs_other", nsfs_other_setup, nsfs_other_check },
};

int main(int argc, char **argv)
{
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_files STATE_DIR KIND");
}
