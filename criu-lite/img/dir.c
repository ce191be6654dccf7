/* The image directory: opened without following links, its files read only
 * when regular, created only when new, and a failed dump's files removed
 * exactly (see dir.h). */
#include "img/dir.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFLNK: return "a symbolic link";
	case S_IFIFO: return "a FIFO";
	case S_IFDIR: return "a directory";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	default: return "not a regular file";
	}
}

/* --- the directory ------------------------------------------------------- */

/* path without its trailing slashes ("dir/" names a link's target). */
static int strip_slashes(const char *path, char out[PATH_MAX], cr_error_t *err)
{
	size_t len = strlen(path);

	if (len == 0)
		return cr_error(err, ENOENT, "image directory ''");
	if (len >= PATH_MAX)
		return cr_error(err, ENAMETOOLONG, "image directory %s", path);
	memcpy(out, path, len + 1);
	while (len > 1 && out[len - 1] == '/')
		out[--len] = '\0';
	return 0;
}

static int refuse_dir(const char *path, int open_errno, cr_error_t *err)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		return cr_error(err, 0, "image directory %s is a symbolic link (cr follows no link in an "
				"image directory; give the directory itself)", path);
	if (lstat(path, &st) == 0 && !S_ISDIR(st.st_mode))
		return cr_error(err, 0, "image directory %s is %s, not a directory", path, type_name(st.st_mode));
	return cr_error(err, open_errno, "open image directory %s", path);
}

int img_dir_open(const char *path, bool create, cr_error_t *err)
{
	char dir[PATH_MAX];
	int fd;

	if (strip_slashes(path, dir, err) < 0)
		return -1;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return cr_error(err, errno, "create image directory %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return refuse_dir(dir, errno, err);
	return fd;
}

int img_dir_check_private(int dirfd, const char *path, cr_error_t *err)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0)
		return cr_error(err, errno, "stat image directory %s", path);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return cr_error(err, 0, "image directory %s is writable by %s (mode 0%o): another user could put "
				"images there; use a directory only its owner can write", path,
				(st.st_mode & S_IWOTH) ? "others" : "its group", st.st_mode & 07777);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		return cr_error(err, 0, "image directory %s belongs to uid %u: another user could put images "
				"there; use a directory of your own", path, st.st_uid);
	return 0;
}

/* --- reading ------------------------------------------------------------- */

static int refuse_kind(const char *name, mode_t mode, cr_error_t *err)
{
	return cr_error(err, 0, "%s: %s, not a regular file: refused", name, type_name(mode));
}

int img_dir_open_read(int dirfd, const char *name, struct stat *out_st, cr_error_t *err)
{
	cleanup_close int fd = -1;
	struct stat st;
	int flags;

	/* Looked at first, so that not even O_NONBLOCK opens a device. */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return cr_error(err, errno, "%s: open", name);
	if (!S_ISREG(st.st_mode))
		return refuse_kind(name, st.st_mode, err);
	fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ELOOP)
		return refuse_kind(name, S_IFLNK, err);
	if (fd < 0)
		return cr_error(err, errno, "%s: open", name);
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "%s: stat", name);
	if (!S_ISREG(st.st_mode))   /* swapped since the look */
		return refuse_kind(name, st.st_mode, err);
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
		return cr_error(err, errno, "%s: clear O_NONBLOCK", name);
	if (out_st != NULL)
		*out_st = st;
	return steal_fd(&fd);
}

/* --- the journal of created files ------------------------------------------ */

struct created {
	char *name;
	dev_t dev;
	ino_t ino;
};

static struct {
	pthread_mutex_t lock;
	bool open;
	int dirfd;             /* the directory of the first file, duplicated */
	dev_t dir_dev;
	ino_t dir_ino;
	struct created *v;
	size_t n;
} journal = { .lock = PTHREAD_MUTEX_INITIALIZER, .dirfd = -1 };

static bool is_journal_dir(int dirfd)
{
	struct stat st;

	return fstat(dirfd, &st) == 0 && st.st_dev == journal.dir_dev && st.st_ino == journal.dir_ino;
}

/* Binds the journal to dirfd when it is still unbound. */
static bool journal_dir(int dirfd)
{
	struct stat st;

	if (journal.dirfd >= 0)
		return is_journal_dir(dirfd);
	if (fstat(dirfd, &st) < 0)
		return false;
	journal.dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	journal.dir_dev = st.st_dev;
	journal.dir_ino = st.st_ino;
	return journal.dirfd >= 0;
}

static void journal_record(int dirfd, const char *name, int fd)
{
	struct stat st;

	pthread_mutex_lock(&journal.lock);
	if (journal.open && fstat(fd, &st) == 0 && journal_dir(dirfd)) {
		journal.v = xreallocarray(journal.v, journal.n + 1, sizeof(*journal.v));
		journal.v[journal.n++] = (struct created){ xstrdup(name), st.st_dev, st.st_ino };
	}
	pthread_mutex_unlock(&journal.lock);
}

void img_dir_forget(int dirfd, const char *name)
{
	pthread_mutex_lock(&journal.lock);
	for (size_t i = 0; journal.open && i < journal.n; i++) {
		if (strcmp(journal.v[i].name, name) != 0 || !is_journal_dir(dirfd))
			continue;
		free(journal.v[i].name);
		journal.v[i] = journal.v[--journal.n];
		break;
	}
	pthread_mutex_unlock(&journal.lock);
}

static void journal_close(void)
{
	for (size_t i = 0; i < journal.n; i++)
		free(journal.v[i].name);
	free(journal.v);
	journal.v = NULL;
	journal.n = 0;
	if (journal.dirfd >= 0)
		close(journal.dirfd);
	journal.dirfd = -1;
	journal.open = false;
}

void img_dir_journal_begin(void)
{
	pthread_mutex_lock(&journal.lock);
	journal_close();
	journal.open = true;
	pthread_mutex_unlock(&journal.lock);
}

/* Removes one recorded file if its name still holds the file created. */
static void remove_created(const struct created *c)
{
	struct stat st;

	if (fstatat(journal.dirfd, c->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    st.st_dev == c->dev && st.st_ino == c->ino)
		unlinkat(journal.dirfd, c->name, 0);
}

void img_dir_journal_undo(void)
{
	pthread_mutex_lock(&journal.lock);
	for (size_t i = 0; journal.dirfd >= 0 && i < journal.n; i++)
		remove_created(&journal.v[i]);
	journal_close();
	pthread_mutex_unlock(&journal.lock);
}

void img_dir_journal_end(void)
{
	pthread_mutex_lock(&journal.lock);
	journal_close();
	pthread_mutex_unlock(&journal.lock);
}

/* --- writing --------------------------------------------------------------- */

static int create_failed(const char *name, cr_error_t *err)
{
	if (errno == EEXIST)
		return cr_error(err, errno, "%s: create (cr never replaces a file it did not create)", name);
	return cr_error(err, errno, "%s: create", name);
}

static int create_new(int dirfd, const char *name, cr_error_t *err)
{
	int fd = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);

	return fd < 0 ? create_failed(name, err) : fd;
}

int img_dir_create(int dirfd, const char *name, cr_error_t *err)
{
	int fd = create_new(dirfd, name, err);

	if (fd >= 0)
		journal_record(dirfd, name, fd);
	return fd;
}

int img_dir_create_unnamed(int dirfd)
{
	return openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
}

int img_dir_name(int dirfd, const char *name, int fd, cr_error_t *err)
{
	char path[32];

	/* Through /proc: linkat of the fd itself (AT_EMPTY_PATH) asks for CAP_DAC_READ_SEARCH. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, path, dirfd, name, AT_SYMLINK_FOLLOW) < 0)
		return create_failed(name, err);
	journal_record(dirfd, name, fd);
	return 0;
}

int img_dir_replace(int dirfd, const char *name, cr_error_t *err)
{
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return cr_error(err, errno, "%s: remove the old one", name);
	return create_new(dirfd, name, err);
}
