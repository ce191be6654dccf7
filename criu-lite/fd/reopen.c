/* See reopen.h. */
#include "fd/reopen.h"
#include "os/fscreds.h"
#include "os/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include "os/util.h"
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FSUID 3   /* creds_entry.uid and .gid: real, effective, saved, fs */

static int open_no_links(const char *path, int flags)
{
	struct open_how how = {
		/* openat2 refuses O_PATH with other flags than these */
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC | ((flags & O_PATH) ? 0 : O_NOCTTY)),
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
}

/* The credentials of the process's main thread, as dumped. */
static const CredsEntry *creds_of(const struct restore_task *t)
{
	const CredsEntry *c;

	if (t == NULL || t->core == NULL || t->core->n_threads == 0 || t->core->threads[0]->creds == NULL)
		return NULL;
	c = t->core->threads[0]->creds;
	return c->n_uid > FSUID && c->n_gid > FSUID ? c : NULL;
}

/* The fd, or -1 with errno set; -2 with err set if the credentials could
 * not be taken. */
static int open_as(const CredsEntry *c, const char *path, int flags, cr_error_t *err)
{
	struct fscreds_saved saved;
	int fd, saved_errno;

	if (fscreds_enter(c->uid[FSUID], c->gid[FSUID], c->groups, c->n_groups, c->cap_eff, &saved, err) < 0) {
		cr_error_wrap(err, "open %s as the process", path);
		return -2;
	}
	fd = open_no_links(path, flags);
	saved_errno = errno;
	fscreds_leave(&saved);
	errno = saved_errno;
	return fd;
}

int reopen_path(const struct restore_task *t, const char *path, int flags, bool *as_cr, cr_error_t *err)
{
	const CredsEntry *c = creds_of(t);
	bool mine = c == NULL || fscreds_already(c->uid[FSUID], c->gid[FSUID], c->groups, c->n_groups, c->cap_eff);
	int fd = mine ? open_no_links(path, flags) : open_as(c, path, flags, err);

	*as_cr = false;
	if (fd == -2)
		return -1;
	if (fd < 0 && !mine && (errno == EACCES || errno == EPERM)) {
		pr_debug("%s: the process's credentials may not open it: opened as cr, if it is the same file", path);
		fd = open_no_links(path, flags);
		*as_cr = true;
	}
	if (fd < 0 && errno == ELOOP)
		return cr_error(err, errno, "open %s: its path now goes through a symbolic link", path);
	if (fd < 0)
		return cr_error(err, errno, "open %s", path);
	return fd;
}

static bool canonical(const char *path)
{
	if (path[0] != '/')
		return false;
	if (path[1] == '\0')
		return true;
	for (const char *p = path; *p != '\0'; p = strchr(p + 1, '/') ? strchr(p + 1, '/') : p + strlen(p)) {
		size_t len = strcspn(p + 1, "/");

		if (len == 0 || (len == 1 && p[1] == '.') || (len == 2 && p[1] == '.' && p[2] == '.'))
			return false;
	}
	return true;
}

static int place(const char *path, int flags, cr_error_t *err)
{
	int fd;

	if (strlen(path) >= PATH_MAX || !canonical(path))
		return cr_error(err, 0, "the path '%.64s' is not an absolute path as /proc shows one", path);
	fd = open_no_links(path, O_PATH | flags);
	if (fd < 0 && errno == ELOOP)
		return cr_error(err, errno, "%s: its path now goes through a symbolic link", path);
	if (fd < 0)
		return cr_error(err, errno, "%s", path);
	return fd;
}

int reopen_place(const char *path, cr_error_t *err)
{
	return place(path, 0, err);
}

static int look(const char *path, int flags, struct stat *st, cr_error_t *err)
{
	cleanup_close int fd = place(path, flags, err);

	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0)
		return cr_error(err, errno, "%s", path);
	return 0;
}

int reopen_look(const char *path, struct stat *st, cr_error_t *err)
{
	return look(path, 0, st, err);
}

int reopen_look_nofollow(const char *path, struct stat *st, cr_error_t *err)
{
	return look(path, O_NOFOLLOW, st, err);
}

int reopen_check_offset(const char *path, uint64_t pos, cr_error_t *err)
{
	cleanup_close int fd = -1;

	if (pos == 0)
		return 0;
	fd = open_no_links(path, O_RDONLY | O_NONBLOCK);
	if (fd < 0)
		return cr_error(err, errno, "%s", path);
	if (pos > INT64_MAX || lseek(fd, (off_t)pos, SEEK_SET) < 0)
		return cr_error(err, pos > INT64_MAX ? EINVAL : errno, "%s: offset %llu", path,
				(unsigned long long)pos);
	return 0;
}

/* What a description's f_flags may hold, as fdinfo shows them (O_CLOEXEC
 * is the fd's, and taken out at dump). */
#define KERNEL_O_LARGEFILE 0100000   /* the kernel sets it on x86_64; glibc's O_LARGEFILE is 0 there */
#define DESCRIPTION_FLAGS (O_ACCMODE | O_APPEND | O_NONBLOCK | O_DSYNC | O_SYNC | O_DIRECT | KERNEL_O_LARGEFILE | \
			   O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_PATH | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC)

int reopen_check_flags(const char *path, uint32_t flags, cr_error_t *err)
{
	if ((flags & ~(uint32_t)DESCRIPTION_FLAGS) != 0 || (flags & O_ACCMODE) == O_ACCMODE)
		return cr_error(err, 0, "%s: open flags 0%o", path, flags);
	return 0;
}
