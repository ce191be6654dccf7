/* See fhandle.h. */
#include "fd/fhandle.h"
#include "fd/fdkind.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

dev_t fhandle_sdev(unsigned sdev)
{
	return makedev(sdev >> 20, sdev & 0xfffff);
}

static int parse_hex_bytes(const char *hex, unsigned char *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (sscanf(hex + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	return 0;
}

int fhandle_parse(const char *l, struct fhandle_info *h)
{
	const char *hex = strstr(l, "f_handle:");

	if (sscanf(l, " fhandle-bytes:%x fhandle-type:%x f_handle:", &h->handle_bytes, &h->handle_type) != 2 ||
	    h->handle_bytes == 0 || h->handle_bytes > FHANDLE_MAX_BYTES || hex == NULL)
		return -1;
	return parse_hex_bytes(hex + strlen("f_handle:"), h->handle, h->handle_bytes);
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

/* open_by_handle_at wants its mount as an fd that is not O_PATH, and
 * opening the mount's root for it queues IN_OPEN and IN_CLOSE_NOWRITE in
 * every inotify watching that directory: events the process would then
 * seem to have left unread (fhandle_check_unread).  AT_FDCWD names the
 * mount too, and an O_PATH open and a fchdir queue nothing: the calling
 * thread gets a working directory of its own (unshare CLONE_FS, once),
 * and goes back to it after.  Where that fails, the root is opened. */
static int open_handle_quietly(const char *mnt, struct file_handle *fh)
{
	static bool own_fs;
	cleanup_close int here = -1, at = -1, mfd = -1;
	int fd, e;

	if (!own_fs && unshare(CLONE_FS) == 0)
		own_fs = true;
	if (own_fs && (here = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
	    (at = open(mnt, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0 && fchdir(at) == 0) {
		fd = open_by_handle_at(AT_FDCWD, fh, O_PATH | O_CLOEXEC);
		e = errno;
		if (fchdir(here) < 0)
			abort();   /* cr's relative paths would go astray */
		errno = e;
		return fd;
	}
	mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return mfd < 0 ? -1 : open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
}

/* Opens the handle through mount point mnt; returns the path of the inode
 * if it is the watched one, else NULL. */
static char *path_through(const char *mnt, const struct fhandle_info *h)
{
	char buf[sizeof(struct file_handle) + FHANDLE_MAX_BYTES], link[64], path[PATH_MAX];
	struct file_handle *fh = (struct file_handle *)buf;
	cleanup_close int fd = -1;
	struct stat st;
	ssize_t n;

	fh->handle_bytes = h->handle_bytes;
	fh->handle_type = h->handle_type;
	memcpy(fh->f_handle, h->handle, h->handle_bytes);
	fd = open_handle_quietly(mnt, fh);
	if (fd < 0)
		return NULL;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		return NULL;
	path[n] = '\0';
	if (lstat(path, &st) < 0 || st.st_ino != h->ino || st.st_dev != h->dev)
		return NULL;
	return xstrdup(path);
}

char *fhandle_path(const struct fhandle_info *h)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], *path = NULL;

	while (f != NULL && path == NULL && fgets(line, sizeof(line), f) != NULL) {
		unsigned maj, min;
		char mnt[PATH_MAX];

		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) != 3 || makedev(maj, min) != h->dev)
			continue;
		unescape(mnt);
		path = path_through(mnt, h);
	}
	return path;
}

int fhandle_check_path(const char *what, const char *path, uint64_t ino, cr_error_t *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return cr_error(err, errno, "%s %s", what, path);
	if (st.st_ino != ino)
		return cr_error(err, 0, "%s %s is inode %llu, not %llu as at dump: it was replaced", what, path,
				(unsigned long long)st.st_ino, (unsigned long long)ino);
	return 0;
}

int fhandle_check_unread(pid_t pid, int fd, const char *what, bool skip, cr_error_t *err)
{
	cleanup_close int dup = fdkind_steal_fd(pid, fd, err);
	int bytes = 0;

	if (dup < 0)
		return -1;
	if (ioctl(dup, FIONREAD, &bytes) < 0)
		return cr_error(err, errno, "pid %d fd %d: %s: FIONREAD", pid, fd, what);
	if (bytes == 0)
		return 0;
	if (!skip)
		return cr_error(err, 0, "pid %d fd %d: unsupported: %s with %d bytes of events not read yet (nothing "
				"can queue them again; --skip-in-flight drops them)", pid, fd, what, bytes);
	pr_warn("pid %d fd %d: %s has %d bytes of events not read yet; they are dropped (--skip-in-flight)", pid, fd,
		what, bytes);
	return 0;
}
