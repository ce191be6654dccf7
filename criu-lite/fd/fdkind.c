#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Every kind, each defined in a file of its own as fdkind_NAME (a misspelt
 * name fails the link), in the order dump asks them: the specific kinds
 * before the generic path-based ones.  Adding a kind is one line here. */
#define FD_KINDS(X) \
	X(mqueue) X(memfd) X(deleted) X(pipe) X(fifo) X(unix) X(eventfd) X(timerfd) X(signalfd) X(epoll) X(inotify) \
	X(pidfd) X(tty) X(chr) X(reg)

#define DECLARE(name) extern const struct fd_kind fdkind_##name;
FD_KINDS(DECLARE)
#undef DECLARE

static const struct fd_kind *const kinds[] = {
#define ENTRY(name) &fdkind_##name,
	FD_KINDS(ENTRY)
#undef ENTRY
};

const struct fd_kind *fdkind_for_entry(const FileEntry *fe)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->kind == fe->kind)
			return kinds[i];
	return NULL;
}

const struct fd_kind *fdkind_for_probe(const struct fd_probe *p)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->match(p))
			return kinds[i];
	return NULL;
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
		return cr_error(err, e, "pidfd_getfd of fd %d", fd);
	}
	close(pidfd);
	return dup;
}
