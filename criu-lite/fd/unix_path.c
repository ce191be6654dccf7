/* Binding a unix socket again at a path whose socket file was gone at
 * dump: see unix_path.h. */
#include "fd/unix_path.h"
#include "os/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <linux/un.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The directory of path, in out: "." for a bare relative name. */
static void dir_of(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, size, ".");
	else if (slash == path)
		snprintf(out, size, "/");
	else
		snprintf(out, size, "%.*s", (int)(slash - path), path);
}

int unix_path_now(int sk, char *out, size_t size)
{
	char link[64];
	int file = ioctl(sk, SIOCUNIXFILE, 0);   /* O_PATH on the socket file */
	ssize_t n;

	if (file < 0)
		return -1;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", file);
	n = readlink(link, out, size - 1);
	close(file);
	if (n < 0 || (size_t)n >= size - 1) {
		errno = n < 0 ? errno : ENAMETOOLONG;
		return -1;
	}
	out[n] = '\0';
	if (n > 10 && strcmp(out + n - 10, " (deleted)") == 0)
		return 0;
	return out[0] == '/' ? 1 : (errno = ENOENT, -1);   /* "/": reached from cr's root */
}

int unix_path_check_dirs(const char *path, cr_error_t *err)
{
	char dir[PATH_MAX + 128];
	struct stat st;

	dir_of(path, dir, sizeof(dir));
	while (stat(dir, &st) < 0) {
		char up[sizeof(dir)];

		if (errno != ENOENT || strcmp(dir, "/") == 0 || strcmp(dir, ".") == 0)
			return cr_error(err, errno, "stat %s", dir);
		dir_of(dir, up, sizeof(up));
		memcpy(dir, up, sizeof(dir));
	}
	if (!S_ISDIR(st.st_mode))
		return cr_error(err, 0, "%s is not a directory", dir);
	return 0;
}

/* Makes the directories of u->path that are missing, from the top. */
static int make_dirs(struct unix_path_undo *u, cr_error_t *err)
{
	char prefix[PATH_MAX + 128];
	struct stat st;

	for (const char *p = strchr(u->path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(p - u->path), u->path);
		if (stat(prefix, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return cr_error(err, 0, "%s is not a directory", prefix);
			continue;
		}
		if (errno != ENOENT || mkdir(prefix, 0700) < 0)
			return cr_error(err, errno, "make the directory %s again for the socket bound to %s", prefix,
					u->path);
		if (u->made == NULL)
			u->made = strdup(prefix);
		if (u->made == NULL)
			return cr_error(err, ENOMEM, "strdup");
	}
	return 0;
}

/* Moves what is at u->path aside, in the same directory. */
static int move_aside(struct unix_path_undo *u, cr_error_t *err)
{
	char dir[PATH_MAX + 128], aside[PATH_MAX + 256];
	const char *base = strrchr(u->path, '/');
	struct stat st;

	if (lstat(u->path, &st) < 0)
		return errno == ENOENT ? 0 : cr_error(err, errno, "stat %s", u->path);
	dir_of(u->path, dir, sizeof(dir));
	snprintf(aside, sizeof(aside), "%s/.%s.cr-aside.%d", dir, base ? base + 1 : u->path, (int)getpid());
	if (renameat2(AT_FDCWD, u->path, AT_FDCWD, aside, RENAME_NOREPLACE) < 0)
		return cr_error(err, errno, "move %s aside to %s, to bind the socket that had that name", u->path,
				aside);
	u->aside = strdup(aside);
	if (u->aside == NULL) {
		if (renameat2(AT_FDCWD, aside, AT_FDCWD, u->path, RENAME_NOREPLACE) < 0)
			pr_warn("cannot move %s back to %s: %s", aside, u->path, strerror(errno));
		return cr_error(err, ENOMEM, "strdup");
	}
	pr_debug("moved %s aside to %s", u->path, aside);
	return 0;
}

int unix_path_prepare(const char *path, struct unix_path_undo *u, cr_error_t *err)
{
	*u = (struct unix_path_undo){ .path = strdup(path) };
	if (u->path == NULL)
		return cr_error(err, ENOMEM, "strdup");
	if (make_dirs(u, err) < 0 || move_aside(u, err) < 0) {
		unix_path_restore(u);
		return -1;
	}
	return 0;
}

void unix_path_bound(struct unix_path_undo *u)
{
	struct stat st;

	if (u->path != NULL && lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		u->sock_ino = st.st_ino;
		u->sock_dev = st.st_dev;
	}
}

/* Removes the directories made, from the socket's up to u->made. */
static void remove_dirs(struct unix_path_undo *u)
{
	char dir[PATH_MAX + 128], up[PATH_MAX + 128];

	if (u->made == NULL)
		return;
	dir_of(u->path, dir, sizeof(dir));
	for (;;) {
		if (rmdir(dir) < 0) {
			pr_warn("cannot remove %s, made again to bind a socket: %s", dir, strerror(errno));
			return;
		}
		if (strcmp(dir, u->made) == 0)
			return;
		dir_of(dir, up, sizeof(up));
		memcpy(dir, up, sizeof(dir));
	}
}

static void unix_path_forget_quiet(struct unix_path_undo *u);

void unix_path_forget(struct unix_path_undo *u)
{
	if (u->path == NULL)
		return;
	pr_warn("left behind: the socket file bound again at %s%s%s%s%s", u->path, u->aside ? ", and what was there at " : "",
		u->aside ? u->aside : "", u->made ? ", in directories made from " : "", u->made ? u->made : "");
	unix_path_forget_quiet(u);
}

/* Renames over to only if it is the old socket file (old_ino, old_dev). */
static int rename_over_old(const char *from, const char *to, ino_t old_ino, dev_t old_dev)
{
	struct stat st;

	if (lstat(to, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || st.st_ino != old_ino || st.st_dev != old_dev) {
			errno = EEXIST;
			return -1;
		}
		return rename(from, to);
	}
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int unix_path_rename(struct unix_path_undo *u, const char *to, ino_t old_ino, dev_t old_dev)
{
	struct stat st;

	if (u->sock_ino == 0 || lstat(u->path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_ino != u->sock_ino ||
	    st.st_dev != u->sock_dev) {
		pr_warn("%s is no longer the socket file the restore made: not renamed to %s", u->path, to);
		return -1;
	}
	if (rename_over_old(u->path, to, old_ino, old_dev) < 0) {
		pr_warn("cannot rename %s to %s, where the socket file was at dump: %s", u->path, to, strerror(errno));
		return -1;
	}
	pr_debug("renamed %s to %s, where it was at dump", u->path, to);
	u->sock_ino = 0;
	return 0;
}

void unix_path_restore(struct unix_path_undo *u)
{
	struct stat st;

	if (u->path == NULL)
		return;
	if (u->sock_ino != 0) {
		if (lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == u->sock_ino &&
		    st.st_dev == u->sock_dev) {
			if (unlink(u->path) < 0)
				pr_warn("cannot unlink %s again (it was unlinked at dump): %s", u->path, strerror(errno));
		} else {
			pr_warn("%s is no longer the socket file the restore made: left there", u->path);
		}
	}
	if (u->aside != NULL && renameat2(AT_FDCWD, u->aside, AT_FDCWD, u->path, RENAME_NOREPLACE) < 0)
		pr_warn("cannot move %s back to %s, where it was: %s", u->aside, u->path, strerror(errno));
	else if (u->aside != NULL)
		pr_debug("moved %s back to %s", u->aside, u->path);
	remove_dirs(u);
	unix_path_forget_quiet(u);
}

static void unix_path_forget_quiet(struct unix_path_undo *u)
{
	free(u->path);
	free(u->aside);
	free(u->made);
	*u = (struct unix_path_undo){ 0 };
}
