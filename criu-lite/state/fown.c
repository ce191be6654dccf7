/* Signal-driven I/O: the owner of a file description (F_SETOWN_EX: the
 * thread, process or process group that gets its SIGIO and SIGURG), the
 * signal sent (F_SETSIG), and O_ASYNC.
 *
 * Dump: the fd table calls fown_dump for every description it records
 * (the owner is read through a duplicate of the fd); the whole tree then
 * shows whether the owner holds the description itself.  O_ASYNC moves
 * from the open flags to the owner's entry: a description reopened with
 * it would carry the flag without the kernel's fasync entry (open does
 * not make one, and F_SETFL acts only on a change), and so never signal.  Restore: the
 * owner sets it again on its own fd, in its setup, once its threads exist
 * (a thread of its own, itself, or the group it leads are the only owners
 * it can name by then: other owners are refused at dump).  O_ASYNC comes
 * last, as the kernel would signal nobody before the owner is set.
 * A directory with an owner or a signal is refused: F_NOTIFY (dnotify)
 * sets its owner, and which events it asked for no call tells. */
#include "state/fown.h"
#include "fd/fdkind.h"
#include "os/util.h"
#include "state/files.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#define MAX_SIGNAL 64

/* ------------------------------------------------------------------ dump */

int fown_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe, cr_error_t *err)
{
	struct f_owner_ex own = { 0 };
	cleanup_close int fd = -1;
	FownEntry *e;
	int sig;

	if (S_ISREG(p->st.st_mode) || (fe->flags & O_PATH))
		return 0;   /* SIGIO does not come from these (an O_PATH fd takes no fcntl F_GETOWN) */
	fd = fdkind_steal_fd(t->pid, p->fd, err);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_GETOWN_EX, &own) < 0 || (sig = fcntl(fd, F_GETSIG)) < 0)
		return cr_error(err, errno, "read the SIGIO owner");
	/* A directory gets an owner from F_NOTIFY (dnotify), whose events no
	 * call reads back: it would come back deaf. */
	if (S_ISDIR(p->st.st_mode) && (own.pid != 0 || sig != 0))
		return cr_error(err, 0, "directory %s has a signal owner (pid %d, signal %d), as directory notification "
				"(fcntl F_NOTIFY, dnotify) sets, whose events cr cannot read back: unsupported", p->link,
				own.pid, sig);
	if (S_ISDIR(p->st.st_mode))
		return 0;
	if (own.pid == 0 && sig == 0 && !(fe->flags & O_ASYNC))
		return 0;
	e = arena_new(&ctx->arena, FownEntry);
	fown_entry__init(e);
	e->type = (uint32_t)own.type;
	e->pid = (uint32_t)own.pid;
	e->signum = (uint32_t)sig;
	e->async = (fe->flags & O_ASYNC) != 0;
	fe->flags &= ~(uint32_t)O_ASYNC;
	fe->fown = e;
	return 0;
}

/* Is the owner o itself, one of its threads, or the group it leads? */
static bool dump_owned_by(const struct dump_task *o, const FownEntry *e)
{
	switch (e->type) {
	case F_OWNER_PID:
		return o->pid == (pid_t)e->pid;
	case F_OWNER_PGRP:
		return o->pid == (pid_t)e->pid && o->status.n_levels > 0 && o->status.ns_pgid[0] == o->pid;
	default:
		for (size_t i = 0; i < o->n_threads; i++)
			if (o->threads[i].tid == (pid_t)e->pid)
				return true;
		return false;
	}
}

static bool holds(const struct dump_task *t, uint32_t file_id)
{
	const struct img_msgs *fds = &t->img[CR_IMG_FDINFO];

	for (size_t i = 0; i < fds->n; i++)
		if (((const FdEntry *)fds->v[i])->file_id == file_id)
			return true;
	return false;
}

/* Every owner must hold the description it owns, to set it again. */
static int fown_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t f = 0; f < ctx->files.n; f++) {
		const FileEntry *fe = ctx->files.v[f];
		bool found = false;

		if (fe->fown == NULL || fe->fown->pid == 0)
			continue;
		for (size_t i = 0; i < ctx->n_tasks && !found; i++)
			found = !ctx->tasks[i].zombie && dump_owned_by(&ctx->tasks[i], fe->fown) &&
				holds(&ctx->tasks[i], fe->id);
		if (!found)
			return cr_error(err, 0, "%s (%s): its SIGIO owner %u is no process, thread or group leader of "
					"the dump that holds it: unsupported", fe->path, fe->fown->type == F_OWNER_PGRP ?
					"process group" : fe->fown->type == F_OWNER_TID ? "thread" : "process",
					fe->fown->pid);
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

/* The owner as t sees it (its innermost pid level), if t is the owner. */
static pid_t own_view(const struct restore_task *t, const FownEntry *e)
{
	const PstreeEntry *p = t->pstree;
	size_t last = p->n_ns_pid - 1;

	if (e->type == F_OWNER_PID && p->ns_pid[0] == e->pid)
		return (pid_t)p->ns_pid[last];
	if (e->type == F_OWNER_PGRP && p->ns_pid[0] == e->pid && p->ns_pgid[0] == e->pid)
		return (pid_t)p->ns_pgid[last];
	for (size_t k = 0; e->type == F_OWNER_TID && k < p->n_threads; k++)
		if (p->threads[k]->ns_tid[0] == e->pid)
			return (pid_t)p->threads[k]->ns_tid[p->threads[k]->n_ns_tid - 1];
	return 0;
}

static int fown_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FownEntry *e = restore_file(ctx, t->fds[i]->file_id)->fown;

		if (e == NULL)
			continue;
		if ((e->type != F_OWNER_TID && e->type != F_OWNER_PID && e->type != F_OWNER_PGRP) ||
		    e->signum > MAX_SIGNAL)
			return cr_error(err, 0, "files.img: file %u: SIGIO owner of type %u, signal %u",
					t->fds[i]->file_id, e->type, e->signum);
	}
	return 0;
}

static int set_owner(int fd, const FownEntry *e, pid_t pid, cr_error_t *err)
{
	struct f_owner_ex own = { .type = (int)e->type, .pid = pid };

	if (fcntl(fd, F_SETOWN_EX, &own) < 0)
		return cr_error(err, errno, "fd %d: set the SIGIO owner to %d", fd, pid);
	if (fcntl(fd, F_SETSIG, (int)e->signum) < 0)
		return cr_error(err, errno, "fd %d: F_SETSIG %u", fd, e->signum);
	return 0;
}

static int set_async(int fd, cr_error_t *err)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC) < 0)
		return cr_error(err, errno, "fd %d: set O_ASYNC", fd);
	return 0;
}

static int fown_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FileEntry *fe = restore_file(ctx, t->fds[i]->file_id);
		int fd = (int)t->fds[i]->fd;
		pid_t me = fe->fown ? own_view(t, fe->fown) : 0;

		if (me != 0 && set_owner(fd, fe->fown, me, err) < 0)
			return -1;
		if (fe->fown && fe->fown->pid == 0 && fe->fown->signum && set_owner(fd, fe->fown, 0, err) < 0)
			return -1;
		if (fe->fown && fe->fown->async && set_async(fd, err) < 0)
			return -1;
	}
	return 0;
}

const struct state_kind state_fown = {
	.name = "SIGIO owners",
	.check_tree = fown_check_tree,
	.validate = fown_validate,
	.setup = fown_setup,
};
