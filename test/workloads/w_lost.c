/*
 * w_lost STATE_DIR CAUSE
 *
 * One piece of state a restore once could not bring back although its dump
 * had succeeded, and so had killed the process (issue 14, "never lose a
 * process at restore").  t_lost dumps it: cr must either restore it exactly
 * (these checks pass after the restore) or refuse the dump naming the
 * process and the thing (the process runs on and the same checks pass).
 *
 *   tmpfile         two files made with O_TMPFILE, one O_RDWR (0640), one
 *                   O_WRONLY|O_EXCL as glibc's tmpfile() makes them: open
 *                   flags (F_GETFL shows O_TMPFILE), mode, size, contents,
 *                   offset, still without a name.
 *   tmpfile_linked  a file made with O_TMPFILE and given a name since
 *                   (linkat): flags, contents, its name.
 *   deleted_dir     a file deleted together with its directory: contents.
 *   chroot          chrooted into its state dir, its cwd the sub-directory
 *                   "sub", a file there open by a relative path: the root
 *                   (the same directory, ".." of "/" is "/"), the cwd
 *                   ("/sub"), the fd (contents, offset, the same file).
 *   chroot_outside  chrooted into its state dir, its cwd left outside the new
 *                   root (the directory above it): cwd and root.
 *   chroot_unix     chrooted into its state dir, a datagram socket bound to
 *                   "/sock" (an absolute name inside its root): its name,
 *                   and a datagram sent to "/sock" reaches it; another
 *                   bound to "/gone/s", whose file and directory it
 *                   removed: its name, no /gone.
 *   chrdev_deleted  an fd on a character device node (1:3, like /dev/null)
 *                   it made in /dev and unlinked: writes work, the device.
 *   proc_child      holds /proc/CHILD/stat of its child: it reads the
 *                   child's pid there.
 *   proc_sibling    its first child holds /proc/SIBLING/stat of its second.
 *   proc_shared     holds /proc/CHILD/stat of its first child, and shares
 *                   the description with its second child (forked after
 *                   it opened the file): it reads the first child's pid.
 *   proc_thread     holds /proc/PID/task/TID/stat of a thread of its own.
 *   proc_outside    holds /proc/PPID/stat of its parent, outside the dump.
 *   pidfd_zombie    a pidfd of its child, which has exited (status 7) and
 *                   is not reaped: the pidfd refers to it, is readable, and
 *                   waitid(P_PIDFD) reaps it with status 7.
 *   pidfd_sibling   its first child holds a pidfd of its second child.
 *   unix_deleted    a datagram socket and a listener with an accepted
 *                   connection and one not accepted yet, whose socket
 *                   files were unlinked: names, queued data both ways,
 *                   still listening, the waiting connection accepted after
 *                   the restore works, no files.
 *   unix_replaced   a datagram socket whose file was replaced by a regular
 *                   file: its name; the
 *                   regular file is still there, the same inode with the
 *                   same contents, and nothing else in its directory.
 *   unix_dir_gone   a datagram socket bound to DIR/sub/s, whose file and
 *                   both directories are gone: its name, no DIR.
 *   unix_cwd_gone   a datagram socket bound to the relative name "s" in its
 *                   cwd, which it then removed (refused: the restore binds
 *                   relative names from the cwd): its name.
 *   unix_dir_file   a datagram socket bound to DIR/s, whose directory was
 *                   replaced by a regular file (refused: the restore cannot
 *                   make DIR again): its name; the file DIR is unchanged.
 *   unix_sender_gone  datagrams queued from two senders that closed
 *                   without unlinking their files, one bound to an
 *                   absolute name, one to a relative one: each datagram
 *                   comes with its sender's name; the files are still
 *                   there.
 *
 * Children (the *_sibling, proc_child and pidfd_zombie modes) die with the
 * workload (PR_SET_PDEATHSIG); a child that holds the thing checks it when
 * the workload passes the trigger on, and writes "child_result".
 */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static char pattern[10000];

static void fill_pattern(void)
{
	uint64_t s = wl_seed(14);

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (char)wl_xorshift(&s);
}

static bool same_bytes(int fd, off_t at, const void *want, size_t len)
{
	char buf[sizeof(pattern)];

	return len <= sizeof(buf) && pread(fd, buf, len, at) == (ssize_t)len && memcmp(buf, want, len) == 0;
}

/* ------------------------------------------------------------ O_TMPFILE */

static int tmp_rw, tmp_wo, tmp_rw_flags, tmp_wo_flags;

static void tmpfile_setup(void)
{
	fill_pattern();
	tmp_rw = open(wl_dir(), O_TMPFILE | O_RDWR, 0640);
	tmp_wo = open(wl_dir(), O_TMPFILE | O_WRONLY | O_EXCL, 0600);
	if (tmp_rw < 0 || tmp_wo < 0)
		wl_fatal("open O_TMPFILE in %s: %s", wl_dir(), strerror(errno));
	fchmod(tmp_rw, 0640);
	wl_write_all(tmp_rw, pattern, sizeof(pattern));
	wl_write_all(tmp_wo, "bee", 3);
	lseek(tmp_rw, 1234, SEEK_SET);
	tmp_rw_flags = fcntl(tmp_rw, F_GETFL);
	tmp_wo_flags = fcntl(tmp_wo, F_GETFL);
}

static void check_unnamed(const char *what, int fd, int flags, mode_t mode, off_t size, off_t pos)
{
	char link[PATH_MAX], prefix[PATH_MAX + 4];
	struct stat st;

	wl_fd_link(fd, link, sizeof(link));
	snprintf(prefix, sizeof(prefix), "%s/#", wl_dir());
	wl_check(fcntl(fd, F_GETFL) == flags, "(%s) flags 0%o, were 0%o", what, fcntl(fd, F_GETFL), flags);
	wl_check(fstat(fd, &st) == 0 && st.st_nlink == 0 && S_ISREG(st.st_mode), "(%s) not an unnamed file", what);
	wl_check((st.st_mode & 07777) == mode, "(%s) mode 0%o, was 0%o", what, st.st_mode & 07777, mode);
	wl_check(st.st_size == size, "(%s) size %lld, was %lld", what, (long long)st.st_size, (long long)size);
	wl_check(lseek(fd, 0, SEEK_CUR) == pos, "(%s) offset %lld, was %lld", what, (long long)lseek(fd, 0, SEEK_CUR),
		 (long long)pos);
	wl_check(strncmp(link, prefix, strlen(prefix)) == 0 && wl_has_suffix(link, " (deleted)"),
		 "(%s) fd shows '%s'", what, link);
}

static void tmpfile_check(void)
{
	check_unnamed("rw", tmp_rw, tmp_rw_flags, 0640, sizeof(pattern), 1234);
	check_unnamed("wo", tmp_wo, tmp_wo_flags, 0600, 3, 3);
	wl_check(same_bytes(tmp_rw, 0, pattern, sizeof(pattern)), "(rw) contents differ");
}

static int linked_fd, linked_flags;

static void tmpfile_linked_setup(void)
{
	char path[64], name[PATH_MAX];

	linked_fd = open(wl_dir(), O_TMPFILE | O_RDWR, 0600);
	if (linked_fd < 0)
		wl_fatal("open O_TMPFILE: %s", strerror(errno));
	wl_write_all(linked_fd, "named later", 11);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", linked_fd);
	wl_path(name, sizeof(name), "named");
	if (linkat(AT_FDCWD, path, AT_FDCWD, name, AT_SYMLINK_FOLLOW) < 0)
		wl_fatal("linkat: %s", strerror(errno));
	linked_flags = fcntl(linked_fd, F_GETFL);
}

static void tmpfile_linked_check(void)
{
	char name[PATH_MAX];
	struct stat a, b;

	wl_path(name, sizeof(name), "named");
	wl_check(fcntl(linked_fd, F_GETFL) == linked_flags, "flags 0%o, were 0%o", fcntl(linked_fd, F_GETFL),
		 linked_flags);
	wl_check(same_bytes(linked_fd, 0, "named later", 11), "contents differ");
	wl_check(fstat(linked_fd, &a) == 0 && stat(name, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		 "the fd is not the file named %s", name);
}

/* ---------------------------------------------- a deleted directory's file */

static int gone_fd;

static void deleted_dir_setup(void)
{
	char dir[PATH_MAX], file[PATH_MAX + 8];

	wl_path(dir, sizeof(dir), "gone");
	snprintf(file, sizeof(file), "%s/file", dir);
	if (mkdir(dir, 0700) < 0 || (gone_fd = open(file, O_RDWR | O_CREAT, 0600)) < 0)
		wl_fatal("make %s: %s", file, strerror(errno));
	wl_write_all(gone_fd, "in a removed dir", 16);
	if (unlink(file) < 0 || rmdir(dir) < 0)
		wl_fatal("remove %s: %s", dir, strerror(errno));
}

static void deleted_dir_check(void)
{
	struct stat st;

	wl_check(same_bytes(gone_fd, 0, "in a removed dir", 16), "contents differ");
	wl_check(fstat(gone_fd, &st) == 0 && st.st_nlink == 0, "the file has a name again");
	wl_check(lseek(gone_fd, 0, SEEK_CUR) == 16, "offset %lld", (long long)lseek(gone_fd, 0, SEEK_CUR));
}

/* ------------------------------------------------------------------ chroot */

static struct stat root_st;
static int sub_fd;

static void chroot_into_dir(void)
{
	if (stat(wl_dir(), &root_st) < 0 || chroot(wl_dir()) < 0)
		wl_fatal("chroot %s: %s", wl_dir(), strerror(errno));
	wl_dir_is_root();
}

static void chroot_setup(void)
{
	char sub[PATH_MAX];

	wl_path(sub, sizeof(sub), "sub");
	if (mkdir(sub, 0700) < 0 || chdir(sub) < 0 || (sub_fd = open("file", O_RDWR | O_CREAT, 0600)) < 0)
		wl_fatal("make %s/file: %s", sub, strerror(errno));
	wl_write_all(sub_fd, "chroot data", 11);
	lseek(sub_fd, 3, SEEK_SET);
	chroot_into_dir();
}

static void chroot_check(void)
{
	char cwd[PATH_MAX] = "";
	struct stat root, up, file, named;

	wl_check(stat("/", &root) == 0 && wl_same_inode(&root, &root_st), "the root is another directory");
	wl_check(stat("/..", &up) == 0 && wl_same_inode(&up, &root_st), "\"..\" of the root leads out of it");
	wl_check(getcwd(cwd, sizeof(cwd)) != NULL && strcmp(cwd, "/sub") == 0, "cwd is '%s', not /sub", cwd);
	wl_check(fstat(sub_fd, &file) == 0 && stat("/sub/file", &named) == 0 && wl_same_inode(&file, &named),
		 "the fd is not /sub/file");
	wl_check(same_bytes(sub_fd, 0, "chroot data", 11), "contents differ");
	wl_check(lseek(sub_fd, 0, SEEK_CUR) == 3, "offset %lld", (long long)lseek(sub_fd, 0, SEEK_CUR));
}

/* ----------------------------------------------------------- unix sockets */

static socklen_t unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "%s", path);
	return (socklen_t)sizeof(*sun);
}

static int bound_socket(int type, const char *path)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(path, &sun);
	int fd = socket(AF_UNIX, type, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, len) < 0)
		wl_fatal("bind %s: %s", path, strerror(errno));
	return fd;
}

static void check_name(const char *what, int fd, const char *path)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	wl_check(getsockname(fd, (struct sockaddr *)&sun, &len) == 0 && strcmp(sun.sun_path, path) == 0,
		 "(%s) bound to '%s', not %s", what, sun.sun_path, path);
}

static void check_no_file(const char *path)
{
	struct stat st;

	wl_check(lstat(path, &st) < 0 && errno == ENOENT, "%s exists again", path);
}

static bool receives(int fd, const char *want)
{
	char buf[64] = "";
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, 2000) != 1)
		return false;
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static struct stat cwd_st;

static void chroot_outside_setup(void)
{
	char above[PATH_MAX];

	wl_path(above, sizeof(above), "..");
	if (chdir(above) < 0 || stat(".", &cwd_st) < 0)
		wl_fatal("chdir %s: %s", above, strerror(errno));
	chroot_into_dir();
}

static void chroot_outside_check(void)
{
	struct stat cwd, root;

	wl_check(stat(".", &cwd) == 0 && wl_same_inode(&cwd, &cwd_st), "the cwd is another directory");
	wl_check(stat("/", &root) == 0 && wl_same_inode(&root, &root_st), "the root is another directory");
	wl_check(!wl_same_inode(&cwd, &root), "the cwd is the root");
}

static int chroot_sock;

static int chroot_gone;

static void chroot_unix_setup(void)
{
	chroot_into_dir();
	chroot_sock = bound_socket(SOCK_DGRAM, "/sock");
	if (mkdir("/gone", 0700) < 0)
		wl_fatal("mkdir /gone: %s", strerror(errno));
	chroot_gone = bound_socket(SOCK_DGRAM, "/gone/s");
	if (unlink("/gone/s") < 0 || rmdir("/gone") < 0)
		wl_fatal("remove /gone/s: %s", strerror(errno));
}

static void chroot_unix_check(void)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr("/sock", &sun);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0);

	check_name("chrooted", chroot_sock, "/sock");
	check_name("chrooted, gone", chroot_gone, "/gone/s");
	check_no_file("/gone");
	wl_check(sendto(s, "in", 2, 0, (struct sockaddr *)&sun, len) == 2, "send to /sock: %s", strerror(errno));
	wl_check(receives(chroot_sock, "in"), "the datagram sent to /sock did not arrive");
	close(s);
}

static char dg_path[PATH_MAX], ls_path[PATH_MAX];
static int dg, ls, ls_client, ls_server, ls_waiting;

static void unix_deleted_setup(void)
{
	struct sockaddr_un sun;
	socklen_t len;

	wl_path(dg_path, sizeof(dg_path), "dg");
	wl_path(ls_path, sizeof(ls_path), "ls");
	dg = bound_socket(SOCK_DGRAM, dg_path);
	ls = bound_socket(SOCK_STREAM, ls_path);
	len = unix_addr(ls_path, &sun);
	ls_client = socket(AF_UNIX, SOCK_STREAM, 0);
	if (listen(ls, 4) < 0 || connect(ls_client, (struct sockaddr *)&sun, len) < 0 ||
	    (ls_server = accept(ls, NULL, NULL)) < 0)
		wl_fatal("connect to %s: %s", ls_path, strerror(errno));
	wl_write_all(ls_client, "hello", 5);
	ls_waiting = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(ls_waiting, (struct sockaddr *)&sun, len) < 0)
		wl_fatal("connect to %s: %s", ls_path, strerror(errno));
	if (unlink(dg_path) < 0 || unlink(ls_path) < 0)
		wl_fatal("unlink: %s", strerror(errno));
}

static void unix_deleted_check(void)
{
	int listening = 0;
	socklen_t len = sizeof(listening);

	check_name("datagram", dg, dg_path);
	check_name("listener", ls, ls_path);
	check_name("accepted", ls_server, ls_path);
	check_no_file(dg_path);
	check_no_file(ls_path);
	wl_check(getsockopt(ls, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening,
		 "the listener no longer listens");
	wl_check(receives(ls_server, "hello"), "the queued data did not arrive");
	wl_check(write(ls_server, "back", 4) == 4 && receives(ls_client, "back"), "no data back");
	{
		struct pollfd p = { .fd = ls, .events = POLLIN };
		int c = poll(&p, 1, 2000) == 1 ? accept(ls, NULL, NULL) : -1;

		wl_check(c >= 0, "the connection waiting on the listener was not accepted: %s", strerror(errno));
		if (c >= 0) {
			check_name("accepted after restore", c, ls_path);
			wl_check(write(ls_waiting, "late", 4) == 4 && receives(c, "late"),
				 "no data on the connection accepted after restore");
			close(c);
		}
	}
}

static char rp_path[PATH_MAX];
static int rp;
static ino_t rp_ino;

static void unix_replaced_setup(void)
{
	int fd;

	wl_path(rp_path, sizeof(rp_path), "rp");
	rp = bound_socket(SOCK_DGRAM, rp_path);
	if (unlink(rp_path) < 0 || (fd = open(rp_path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
		wl_fatal("replace %s: %s", rp_path, strerror(errno));
	wl_write_all(fd, "other", 5);
	close(fd);
	{
		struct sockaddr_un sun;
		socklen_t len = unix_addr(rp_path, &sun);
		int s = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct stat st;

		if (stat(rp_path, &st) < 0)
			wl_fatal("stat %s: %s", rp_path, strerror(errno));
		rp_ino = st.st_ino;
		/* By the socket's fd: its path no longer leads to it. */
		if (connect(s, (struct sockaddr *)&sun, len) == 0)
			wl_fatal("%s still leads to a socket", rp_path);
		close(s);
	}
}

/* The file that took the place of a socket's file, or of its directory. */
static void check_reads(const char *path, const char *want)
{
	char text[16] = "";

	wl_check(wl_read_path(path, text, sizeof(text)) == (ssize_t)strlen(want) && strcmp(text, want) == 0,
		 "%s, which took the place of the socket's, reads '%s'", path, text);
}

static void unix_replaced_check(void)
{
	check_name("replaced", rp, rp_path);
	check_reads(rp_path, "other");
	{
		struct stat st;
		char dir[PATH_MAX];
		char *slash;
		DIR *d;
		struct dirent *de;

		wl_check(stat(rp_path, &st) == 0 && st.st_ino == rp_ino && S_ISREG(st.st_mode),
			 "%s is not the same regular file (inode %lu, was %lu)", rp_path, (unsigned long)st.st_ino,
			 (unsigned long)rp_ino);
		snprintf(dir, sizeof(dir), "%s", rp_path);
		slash = strrchr(dir, '/');
		*slash = '\0';
		d = opendir(dir);
		while (d != NULL && (de = readdir(d)) != NULL)
			wl_check(strstr(de->d_name, "aside") == NULL, "%s/%s was left behind", dir, de->d_name);
		if (d != NULL)
			closedir(d);
	}
}

static char sd_dir[PATH_MAX], sd_sub[PATH_MAX + 8], sd_path[PATH_MAX + 16];
static int sd;

static void unix_dir_gone_setup(void)
{
	wl_path(sd_dir, sizeof(sd_dir), "sd");
	snprintf(sd_sub, sizeof(sd_sub), "%s/sub", sd_dir);
	snprintf(sd_path, sizeof(sd_path), "%s/s", sd_sub);
	if (mkdir(sd_dir, 0700) < 0 || mkdir(sd_sub, 0700) < 0)
		wl_fatal("mkdir %s: %s", sd_sub, strerror(errno));
	sd = bound_socket(SOCK_DGRAM, sd_path);
	if (unlink(sd_path) < 0 || rmdir(sd_sub) < 0 || rmdir(sd_dir) < 0)
		wl_fatal("remove %s: %s", sd_dir, strerror(errno));
}

static void unix_dir_gone_check(void)
{
	check_name("dir gone", sd, sd_path);
	check_no_file(sd_dir);
}

static char cg_dir[PATH_MAX];
static int cg;

static void unix_cwd_gone_setup(void)
{
	wl_path(cg_dir, sizeof(cg_dir), "cg");
	if (mkdir(cg_dir, 0700) < 0 || chdir(cg_dir) < 0)
		wl_fatal("mkdir %s: %s", cg_dir, strerror(errno));
	cg = bound_socket(SOCK_DGRAM, "s");
	if (unlink("s") < 0 || rmdir(cg_dir) < 0)
		wl_fatal("remove %s: %s", cg_dir, strerror(errno));
}

static void unix_cwd_gone_check(void)
{
	check_name("cwd gone", cg, "s");
}

static char df_dir[PATH_MAX], df_path[PATH_MAX + 8];
static int df;

static void unix_dir_file_setup(void)
{
	int fd;

	wl_path(df_dir, sizeof(df_dir), "df");
	snprintf(df_path, sizeof(df_path), "%s/s", df_dir);
	if (mkdir(df_dir, 0700) < 0)
		wl_fatal("mkdir %s: %s", df_dir, strerror(errno));
	df = bound_socket(SOCK_DGRAM, df_path);
	if (unlink(df_path) < 0 || rmdir(df_dir) < 0 || (fd = open(df_dir, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0)
		wl_fatal("replace %s: %s", df_dir, strerror(errno));
	wl_write_all(fd, "file", 4);
	close(fd);
}

static void unix_dir_file_check(void)
{
	check_name("dir now a file", df, df_path);
	check_reads(df_dir, "file");
}

static char rv_path[PATH_MAX], sn_path[PATH_MAX];
static int rv;

static void send_and_close(const char *name, const char *text)
{
	struct sockaddr_un sun;
	socklen_t len = unix_addr(rv_path, &sun);
	int s = bound_socket(SOCK_DGRAM, name);

	if (sendto(s, text, strlen(text), 0, (struct sockaddr *)&sun, len) != (ssize_t)strlen(text))
		wl_fatal("send from %s: %s", name, strerror(errno));
	close(s);
}

static void unix_sender_gone_setup(void)
{
	wl_path(rv_path, sizeof(rv_path), "recv");
	wl_path(sn_path, sizeof(sn_path), "send");
	rv = bound_socket(SOCK_DGRAM, rv_path);
	send_and_close(sn_path, "absolute");
	if (chdir(wl_dir()) < 0)
		wl_fatal("chdir %s: %s", wl_dir(), strerror(errno));
	send_and_close("rel", "relative");
}

static void check_from(const char *want_text, const char *want_from)
{
	char buf[64] = "";
	struct sockaddr_un from;
	socklen_t len = sizeof(from);
	ssize_t n;

	memset(&from, 0, sizeof(from));
	n = recvfrom(rv, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
	wl_check(n == (ssize_t)strlen(want_text) && strcmp(buf, want_text) == 0 && strcmp(from.sun_path, want_from) == 0,
		 "received '%s' from '%s', not '%s' from %s", buf, from.sun_path, want_text, want_from);
}

static void unix_sender_gone_check(void)
{
	struct stat st;

	check_from("absolute", sn_path);
	check_from("relative", "rel");
	wl_check(stat(sn_path, &st) == 0 && S_ISSOCK(st.st_mode), "the absolute sender's file is gone");
	wl_check(stat("rel", &st) == 0 && S_ISSOCK(st.st_mode), "the relative sender's file is gone");
}

/* ----------------------------------------------------- a deleted device */

static int dev_fd;

static void chrdev_deleted_setup(void)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/w_lost-null.%d", getpid());
	if (mknod(path, S_IFCHR | 0600, makedev(1, 3)) < 0 || (dev_fd = open(path, O_RDWR)) < 0)
		wl_fatal("make %s: %s", path, strerror(errno));
	unlink(path);
}

static void chrdev_deleted_check(void)
{
	char link[PATH_MAX];
	struct stat st;

	wl_fd_link(dev_fd, link, sizeof(link));
	wl_check(fstat(dev_fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
		 "not the device 1:3");
	wl_check(write(dev_fd, "x", 1) == 1, "write: %s", strerror(errno));
	wl_check(wl_has_suffix(link, " (deleted)"), "the fd shows '%s'", link);
}

/* --------------------------------------------- processes and their files */

static pid_t child_a, child_b;

static void die_with_parent(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		_exit(3);
}

static pid_t sleeping_child(void)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		die_with_parent();
		for (;;)
			pause();
	}
	return pid;
}

/* The pid in the first field of the stat file fd reads. */
static long stat_pid(int fd)
{
	char buf[512] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static int open_stat_of(pid_t pid, pid_t tid)
{
	char path[96];
	int fd;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		wl_fatal("open %s: %s", path, strerror(errno));
	return fd;
}

static int held_fd;

static void proc_child_setup(void)
{
	child_a = sleeping_child();
	held_fd = open_stat_of(child_a, 0);
}

static void proc_child_check(void)
{
	wl_check(stat_pid(held_fd) == child_a, "/proc/%d/stat reads pid %ld", child_a, stat_pid(held_fd));
}

static pid_t parent;

static void proc_outside_setup(void)
{
	parent = getppid();
	held_fd = open_stat_of(parent, 0);
}

static void proc_outside_check(void)
{
	wl_check(stat_pid(held_fd) == parent, "/proc/%d/stat reads pid %ld", parent, stat_pid(held_fd));
}

static void proc_shared_setup(void)
{
	proc_child_setup();
	child_b = sleeping_child();   /* inherits held_fd */
}

static pid_t thread_tid;

static void *blocked_thread(void *arg)
{
	(void)arg;
	__atomic_store_n(&thread_tid, gettid(), __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return NULL;
}

static void proc_thread_setup(void)
{
	pthread_t th;

	if (pthread_create(&th, NULL, blocked_thread, NULL) != 0)
		wl_fatal("pthread_create");
	while (__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST) == 0)
		usleep(1000);
	held_fd = open_stat_of(getpid(), thread_tid);
}

static void proc_thread_check(void)
{
	wl_check(stat_pid(held_fd) == thread_tid, "the thread's stat reads pid %ld, not %d", stat_pid(held_fd),
		 thread_tid);
}

static void pidfd_zombie_setup(void)
{
	siginfo_t si;

	child_a = fork();
	if (child_a < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child_a == 0)
		_exit(7);
	held_fd = (int)syscall(SYS_pidfd_open, child_a, 0);
	if (held_fd < 0 || waitid(P_PID, (id_t)child_a, &si, WEXITED | WNOWAIT) < 0)
		wl_fatal("pidfd_open, waitid: %s", strerror(errno));
}

static void pidfd_zombie_check(void)
{
	long pid = wl_fdinfo_field(held_fd, "Pid");
	siginfo_t si = { 0 };

	wl_check(pid == child_a, "the pidfd refers to pid %ld, not %d", pid, child_a);
	wl_check(wl_readable(held_fd, 0), "the pidfd does not say its process exited");
	wl_check(waitid((idtype_t)P_PIDFD, (id_t)held_fd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == child_a &&
		 si.si_code == CLD_EXITED && si.si_status == 7, "waitid(P_PIDFD): pid %d code %d status %d (%s)",
		 si.si_pid, si.si_code, si.si_status, strerror(errno));
}

/* The first child holds what refers to the second, which is forked after
 * it; the first checks it when the trigger is passed on. */
static void sibling_holder(int from_parent, bool pidfd)
{
	pid_t b;
	int fd;

	die_with_parent();
	if (read(from_parent, &b, sizeof(b)) != sizeof(b))
		_exit(3);
	close(from_parent);
	fd = pidfd ? (int)syscall(SYS_pidfd_open, b, 0) : open_stat_of(b, 0);
	if (fd < 0)
		wl_fatal("pidfd_open %d: %s", b, strerror(errno));
	wl_write_file("child_ready", "%d\n", b);
	wl_wait_trigger();
	if (pidfd)
		wl_check(wl_fdinfo_field(fd, "Pid") == b && !wl_readable(fd, 0),
			 "(child) the pidfd refers to pid %ld, not the live %d", wl_fdinfo_field(fd, "Pid"), b);
	else
		wl_check(stat_pid(fd) == b, "(child) /proc/%d/stat reads pid %ld", b, stat_pid(fd));
	wl_write_file("child_result", "%s\n", wl_failures() ? "failed" : "ok");
	for (;;)
		pause();
}

static void sibling_setup(bool pidfd)
{
	char ready[16];
	int p[2];

	if (pipe(p) < 0 || (child_a = fork()) < 0)
		wl_fatal("pipe, fork: %s", strerror(errno));
	if (child_a == 0) {
		close(p[1]);
		sibling_holder(p[0], pidfd);
	}
	close(p[0]);
	child_b = sleeping_child();
	wl_write_all(p[1], &child_b, sizeof(child_b));
	close(p[1]);
	for (int i = 0; i < 1000 && wl_read_file("child_ready", ready, sizeof(ready)) <= 0; i++)
		usleep(10000);
	if (wl_read_file("child_ready", ready, sizeof(ready)) <= 0)
		wl_fatal("the first child did not get ready");
}

static void proc_sibling_setup(void)
{
	sibling_setup(false);
}

static void pidfd_sibling_setup(void)
{
	sibling_setup(true);
}

static void sibling_check(void)
{
	char result[16] = "";

	kill(child_a, SIGUSR2);
	for (int i = 0; i < 1000 && wl_read_file("child_result", result, sizeof(result)) <= 0; i++)
		usleep(10000);
	wl_check(strcmp(result, "ok\n") == 0, "the first child (pid %d) reports '%s'", child_a, result);
}

/* -------------------------------------------------------------- the modes */

static const struct wl_mode modes[] = {
	{ "tmpfile", tmpfile_setup, tmpfile_check },
	{ "tmpfile_linked", tmpfile_linked_setup, tmpfile_linked_check },
	{ "deleted_dir", deleted_dir_setup, deleted_dir_check },
	{ "chroot", chroot_setup, chroot_check },
	{ "chroot_outside", chroot_outside_setup, chroot_outside_check },
	{ "chroot_unix", chroot_unix_setup, chroot_unix_check },
	{ "chrdev_deleted", chrdev_deleted_setup, chrdev_deleted_check },
	{ "proc_child", proc_child_setup, proc_child_check },
	{ "proc_sibling", proc_sibling_setup, sibling_check },
	{ "proc_shared", proc_shared_setup, proc_child_check },
	{ "proc_thread", proc_thread_setup, proc_thread_check },
	{ "proc_outside", proc_outside_setup, proc_outside_check },
	{ "pidfd_zombie", pidfd_zombie_setup, pidfd_zombie_check },
	{ "pidfd_sibling", pidfd_sibling_setup, sibling_check },
	{ "unix_deleted", unix_deleted_setup, unix_deleted_check },
	{ "unix_replaced", unix_replaced_setup, unix_replaced_check },
	{ "unix_dir_gone", unix_dir_gone_setup, unix_dir_gone_check },
	{ "unix_dir_file", unix_dir_file_setup, unix_dir_file_check },
	{ "unix_cwd_gone", unix_cwd_gone_setup, unix_cwd_gone_check },
	{ "unix_sender_gone", unix_sender_gone_setup, unix_sender_gone_check },
};

int main(int argc, char **argv)
{
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_lost STATE_DIR CAUSE");
}
