/* See reopen.h. */
#include "fd/reopen.h"
#include "os/fscreds.h"
#include "os/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FSUID 3   /* creds_entry.uid and .gid: real, effective, saved, fs */

static int open_no_links(const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(unsigned)(flags | O_CLOEXEC | O_NOCTTY),
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
