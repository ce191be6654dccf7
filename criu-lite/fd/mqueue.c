/* POSIX message queues (mq_open): a queue is a file of its ipc
 * namespace's mqueue file system, and an fd on it is reopened by name
 * (mq_open) in the restored process, which is in that namespace by then
 * (the ns kind comes before the fd table).  The queue itself, with its
 * messages, is the namespace's: state/ipcns.c recreates those of an ipc
 * namespace the tree has of its own; a queue of cr's own namespace is
 * the host's, like a regular file, and must still exist at restore.
 * Refused: a queue unlinked while open (no name reaches it again), and a
 * queue a process of the tree asked to be notified of (mq_notify): the
 * registration goes with its owner, and no call reads back its sigevent. */
#include "dump/steps.h"
#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#define MQUEUE_FS_MAGIC 0x19800202   /* linux/magic.h MQUEUE_MAGIC */

/* The file system of a regular file is asked once per device in a row:
 * a process with thousands of files open on one file system asks once. */
static bool mqueue_match(const struct fd_probe *p)
{
	static struct { dev_t dev; bool known, mqueue; } last;
	char path[64];
	struct statfs fs;

	if (!S_ISREG(p->st.st_mode) || p->link[0] != '/')
		return false;
	if (last.known && last.dev == p->st.st_dev)
		return last.mqueue;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)p->pid, p->fd);
	if (statfs(path, &fs) < 0)
		return false;
	last.dev = p->st.st_dev;
	last.known = true;
	last.mqueue = fs.f_type == MQUEUE_FS_MAGIC;
	return last.mqueue;
}

/* The process that registered for the queue's notification (mq_notify),
 * as reading the queue tells it (NOTIFY_PID, in cr's pid namespace), or 0.
 * Read through a description of cr's own (the process's may be write-only,
 * and its offset stays as it is). */
static int notify_pid(pid_t pid, int fd, pid_t *owner, cr_error_t *err)
{
	char buf[256];
	const char *at;
	cleanup_close int dup = -1;
	ssize_t n;

	*owner = 0;
	snprintf(buf, sizeof(buf), "/proc/%d/fd/%d", (int)pid, fd);
	dup = open(buf, O_RDONLY | O_CLOEXEC);
	if (dup < 0)
		return cr_error(err, errno, "open the queue to read its state");
	n = read(dup, buf, sizeof(buf) - 1);
	if (n < 0)
		return cr_error(err, errno, "read the queue's state");
	buf[n] = '\0';
	at = strstr(buf, "NOTIFY_PID:");
	if (at != NULL)
		*owner = (pid_t)strtol(at + strlen("NOTIFY_PID:"), NULL, 10);
	return 0;
}

static int mqueue_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		       cr_error_t *err)
{
	pid_t owner;

	(void)t;
	if (proc_link_deleted(p->link, NULL))
		return cr_error(err, 0, "POSIX message queue %s: unlinked while open: unsupported", p->link);
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "POSIX message queue %s with flags 0%o: unsupported (only the access mode "
				"and O_NONBLOCK are kept)", p->link, fe->flags);
	/* Its owner's death (the dump's kill) drops the registration, and no
	 * call reads back its sigevent. */
	if (notify_pid(p->pid, p->fd, &owner, err) < 0)
		return -1;
	if (owner != 0 && dump_find_task(ctx, owner) != NULL)
		return cr_error(err, 0, "POSIX message queue %s: a notification (mq_notify) registered by pid %d, "
				"which cr does not restore: unsupported", p->link, owner);
	return 0;
}

static int mqueue_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	size_t len = strlen(fe->path);

	(void)ctx;
	if (fe->path[0] != '/' || len < 2 || len > NAME_MAX + 1 || strchr(fe->path + 1, '/') != NULL ||
	    (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK)) != 0 || (fe->flags & O_ACCMODE) == O_ACCMODE)
		return cr_error(err, 0, "a POSIX message queue '%s' with flags 0%o", fe->path, fe->flags);
	return 0;
}

static int mqueue_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = (int)syscall(SYS_mq_open, fe->path + 1, (int)fe->flags | O_CLOEXEC, 0, NULL);

	(void)ctx, (void)t;
	if (fd < 0)
		return cr_error(err, errno, "mq_open %s", fe->path);
	return steal_fd(&fd);
}

const struct fd_kind fdkind_mqueue = {
	.kind = FILE_KIND__FILE_MQUEUE,
	.shareable = true,
	.name = "POSIX message queue",
	.match = mqueue_match,
	.dump = mqueue_dump,
	.validate = mqueue_validate,
	.open = mqueue_open,
};
