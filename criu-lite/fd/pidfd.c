/* pidfd: a process file descriptor the process holds, reopened with
 * pidfd_open on the same pid at restore.
 *
 * The process it refers to is either one of the dumped ones (the process
 * itself, most often), a process outside the dump, which must still run
 * at restore: cr records its start time and refuses to restore a pidfd
 * whose pid is gone or now names another process (a reused pid), or one
 * that exited and was reaped (pidfd_reaped.h).
 *
 * Not shareable: opened by the process itself once its children exist, so
 * that a pidfd of a child can be opened; a pidfd shared between processes
 * is refused at dump. */
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/pidfd_reaped.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

static bool pidfd_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[pidfd]") == 0;
}

/* *pid: -1 for a process that exited and was reaped. */
static int parse_pid(const struct fd_probe *p, pid_t *pid, cr_error_t *err)
{
	const char *value = proc_fdinfo_field(p->fdinfo, "Pid");

	if (value == NULL)
		return cr_error(err, 0, "fdinfo lacks Pid");
	*pid = (pid_t)strtol(value, NULL, 10);
	if (*pid == 0 || *pid < -1)
		return cr_error(err, 0, "the process it refers to is outside cr's pid namespace: unsupported kind");
	return 0;
}

static int reaped_dump(const struct fd_probe *p, PidfdEntry *e, cr_error_t *err)
{
	cleanup_close int dup = fdkind_steal_fd(p->pid, p->fd, err);

	return dup < 0 ? -1 : pidfd_reaped_dump(dup, e, err);
}

static int pidfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		      cr_error_t *err)
{
	PidfdEntry *e = arena_new(&ctx->arena, PidfdEntry);
	struct proc_stat st;
	pid_t pid = 0;

	(void)t;
	pidfd_entry__init(e);
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK | PIDFD_THREAD))
		return cr_error(err, 0, "pidfd with flags 0%o: unsupported kind", fe->flags);
	if (parse_pid(p, &pid, err) < 0)
		return -1;
	fe->pidfd = e;
	if (pid == -1)
		return reaped_dump(p, e, err);
	e->pid = (uint32_t)pid;
	e->in_dump = fdshare_in_dump(ctx, pid);
	if (!e->in_dump) {
		if (proc_read_stat(pid, &st, err) < 0)
			return cr_error_wrap(err, "pidfd of pid %d", pid);
		e->has_start_time = true;
		e->start_time = st.start_time;
	}
	return 0;
}

/* A process outside the dump must still be the one dumped, before any
 * process exists (pidfd_open checks it again). */
static int check_still_there(const PidfdEntry *e, cr_error_t *err)
{
	struct proc_stat st;

	if (proc_read_stat((pid_t)e->pid, &st, err) < 0) {
		cr_error_release(err);
		return cr_error(err, 0, "pid %u, which the pidfd refers to, has exited since the dump (it was "
				"outside the dump, so cr cannot bring it back)", e->pid);
	}
	if (st.start_time != e->start_time)
		return cr_error(err, 0, "pid %u is no longer the process the pidfd referred to: it has exited and "
				"its pid was reused", e->pid);
	return 0;
}

static int pidfd_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const PidfdEntry *e = fe->pidfd;
	(void)ctx;

	if (e != NULL && e->has_reaped && e->reaped)
		return pidfd_reaped_validate(e, err);
	if (e == NULL || e->pid == 0 || e->pid > INT32_MAX)
		return cr_error(err, 0, "pidfd without a valid pid");
	if (!e->in_dump && !e->has_start_time)
		return cr_error(err, 0, "pidfd of pid %u outside the dump without its start time", e->pid);
	return e->in_dump ? 0 : check_still_there(e, err);
}

/* The pidfd still refers to a live process, which must be the one dumped. */
static int check_same_process(int fd, const PidfdEntry *e, cr_error_t *err)
{
	if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) < 0)
		return cr_error(err, 0, "pid %u, which the pidfd refers to, has exited since the dump", e->pid);
	return check_still_there(e, err);
}

static int pidfd_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const PidfdEntry *e = fe->pidfd;
	pid_t pid = (pid_t)e->pid == t->pid ? getpid() : (pid_t)e->pid;
	cleanup_close int fd = -1;

	(void)ctx;
	if (e->has_reaped && e->reaped)
		return pidfd_reaped_open(e, fe->flags & (O_NONBLOCK | PIDFD_THREAD), err);
	fd = (int)syscall(SYS_pidfd_open, pid, fe->flags & (O_NONBLOCK | PIDFD_THREAD));
	if (fd < 0 && errno == ESRCH)
		return cr_error(err, 0, "pid %u, which the pidfd refers to, no longer exists%s", e->pid,
				e->in_dump ? "" : " (it was outside the dump, so cr cannot bring it back)");
	if (fd < 0)
		return cr_error(err, errno, "pidfd_open(%u)", e->pid);
	if (!e->in_dump && check_same_process(fd, e, err) < 0)
		return -1;
	return steal_fd(&fd);
}

static pid_t pidfd_refers_to(const FileEntry *fe)
{
	return fe->pidfd != NULL && fe->pidfd->in_dump ? (pid_t)fe->pidfd->pid : 0;
}

const struct fd_kind fdkind_pidfd = {
	.kind = FILE_KIND__FILE_PIDFD,
	.name = "pidfd",
	.match = pidfd_match,
	.dump = pidfd_dump,
	.validate = pidfd_validate,
	.open = pidfd_open,
	.refers_to = pidfd_refers_to,
};
