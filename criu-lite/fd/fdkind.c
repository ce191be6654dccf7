#include "fd/fdkind.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Kinds defined in their own files; weak so each can land on its own. */
#define KIND(name) extern const struct fd_kind name __attribute__((weak));
KIND(fdkind_memfd)
KIND(fdkind_deleted)
KIND(fdkind_pipe)
KIND(fdkind_fifo)
KIND(fdkind_unix)
KIND(fdkind_eventfd)
KIND(fdkind_timerfd)
KIND(fdkind_signalfd)
KIND(fdkind_epoll)
KIND(fdkind_inotify)
KIND(fdkind_pidfd)
#undef KIND
extern const struct fd_kind fdkind_tty, fdkind_chr, fdkind_reg;

/* Dump asks them in this order: the specific kinds before the generic
 * path-based ones. */
static const struct fd_kind *const kinds[] = {
	&fdkind_memfd, &fdkind_deleted, &fdkind_pipe, &fdkind_fifo, &fdkind_unix,
	&fdkind_eventfd, &fdkind_timerfd, &fdkind_signalfd, &fdkind_epoll, &fdkind_inotify,
	&fdkind_pidfd, &fdkind_tty, &fdkind_chr, &fdkind_reg,
};

static const FileKind kind_ids[] = {
	FILE_KIND__FILE_MEMFD, FILE_KIND__FILE_DELETED_REG, FILE_KIND__FILE_PIPE, FILE_KIND__FILE_FIFO,
	FILE_KIND__FILE_UNIX_SOCKET, FILE_KIND__FILE_EVENTFD, FILE_KIND__FILE_TIMERFD,
	FILE_KIND__FILE_SIGNALFD, FILE_KIND__FILE_EPOLL, FILE_KIND__FILE_INOTIFY, FILE_KIND__FILE_PIDFD,
	FILE_KIND__FILE_TTY, FILE_KIND__FILE_CHR, FILE_KIND__FILE_REG,
};

_Static_assert(sizeof(kinds) / sizeof(kinds[0]) == sizeof(kind_ids) / sizeof(kind_ids[0]),
	       "every kind has its FileKind");

const struct fd_kind *fdkind_for_entry(const FileEntry *fe)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kind_ids[i] == fe->kind && kinds[i] != NULL && kinds[i]->open != NULL)
			return kinds[i];
	return NULL;
}

const struct fd_kind *fdkind_for_probe(const struct fd_probe *p)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i] != NULL && kinds[i]->match(p))
			return kinds[i];
	return NULL;
}

int fdkind_max_phase(void)
{
	int max = 0;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i] != NULL && kinds[i]->phase > max)
			max = kinds[i]->phase;
	return max;
}

int fdkind_steal_fd(pid_t pid, int fd, cr_error_t *err)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int dup;

	if (pidfd < 0)
		return cr_error(err, errno, "pidfd_open %d", pid);
	dup = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (dup < 0) {
		int e = errno;

		close(pidfd);
		return cr_error(err, e, "pid %d fd %d: pidfd_getfd", pid, fd);
	}
	close(pidfd);
	return dup;
}
