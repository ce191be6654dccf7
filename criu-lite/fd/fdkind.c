#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Every kind, each defined in a file of its own as fdkind_NAME (a misspelt
 * name fails the link), in the order dump asks them: the specific kinds
 * before the generic path-based ones.  Adding a kind is one line here.
 * Kinds that share a FileKind (reg, relinked: dumped differently, both
 * restored as regular files) restore through the first one listed. */
#define FD_KINDS(X) \
	X(removed_dir) X(opath) X(mqueue) X(memfd) X(deleted) X(pipe) X(fifo) X(unix) X(inet) X(netlink) X(eventfd) X(timerfd) X(signalfd) X(epoll) X(inotify) X(fanotify) \
	X(pidfd) X(nsfs) X(pty) X(tty) X(chr) X(reg) X(relinked)

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

int fdkind_prepare(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->prepare != NULL && kinds[i]->prepare(ctx, err) < 0)
			return -1;
	return 0;
}

int fdkind_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->check_tree != NULL && kinds[i]->check_tree(ctx, err) < 0)
			return -1;
	return 0;
}

void fdkind_release_dump(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->release_dump != NULL)
			kinds[i]->release_dump(ctx);
}

int fdkind_ready(const struct restore_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->ready != NULL && kinds[i]->ready(ctx, err) < 0)
			return -1;
	return 0;
}

void fdkind_released(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i]->released != NULL)
			kinds[i]->released(ctx);
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

#define AWAIT_MS 10000

static bool restores(const struct restore_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

/* The process's ancestors and children exist when it opens its fds. */
static bool born_before(const struct restore_task *t, pid_t pid)
{
	for (const struct restore_task *a = t->parent; a != NULL; a = a->parent)
		if (a->pid == pid)
			return true;
	for (size_t i = 0; i < t->n_children; i++)
		if (t->children[i]->pid == pid)
			return true;
	return false;
}

int fdkind_await_process(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe,
			 cr_error_t *err)
{
	const struct fd_kind *kind = fdkind_for_entry(fe);
	const struct timespec ms = { .tv_nsec = 1000000 };
	pid_t pid = kind && kind->refers_to ? kind->refers_to(fe) : 0;
	char path[32];

	if (pid == 0 || pid == t->pid || !restores(ctx, pid) || born_before(t, pid))
		return 0;
	/* The pid as /proc showed the dump, or as this process sees it (a
	 * pidfd of a restore into a new pid namespace). */
	snprintf(path, sizeof(path), "/proc/%d", pid);
	for (int i = 0; i < AWAIT_MS; i++) {
		if (access(path, F_OK) == 0 || kill(pid, 0) == 0 || errno == EPERM)
			return 0;
		nanosleep(&ms, NULL);
	}
	return cr_error(err, ETIMEDOUT, "%s %s refers to pid %d, which was not created within %d s", kind->name,
			fe->path, pid, AWAIT_MS / 1000);
}
