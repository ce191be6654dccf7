/* The controlling terminal of each process, and with --shell-job the
 * handover of the restoring terminal to the restored job.
 *
 * Dump: a process's controlling terminal (/proc/PID/stat tty_nr), its
 * session and foreground group (tpgid); for the root, the terminal's
 * settings (termios) and window size, read through one of its fds on it.
 * With --shell-job the root's terminal is the job's: every other process
 * whose controlling terminal is another one is refused.
 *
 * Restore with --shell-job: the restoring terminal takes the place of the
 * dumped one.  A root that led the terminal's session does not lead a new
 * one (it would have no terminal): it joins the session of `cr restore`,
 * whose controlling terminal the restoring one must be, as the leader of
 * its own group.  Once every process exists, before any runs, cr gives
 * the terminal the dumped settings and makes the dumped foreground group
 * (when it is one of the tree's) the terminal's foreground group.  The
 * window size stays the restoring terminal's own, the screen's real size;
 * the foreground group gets SIGWINCH once it runs, as after a resize, so
 * that a full-screen program draws itself on the new screen. */
#include "state/ctty.h"
#include "fd/fdkind.h"
#include "fd/pty.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

/* /proc/PID/stat's tty_nr, the kernel's new_encode_dev, as a dev_t. */
dev_t ctty_dev(int tty_nr)
{
	unsigned nr = (unsigned)tty_nr;

	return makedev((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
}

static const char *dev_name(dev_t d, char *buf, size_t len)
{
	snprintf(buf, len, "%u:%u", major(d), minor(d));
	return buf;
}

/* ---------------------------------------------------------------- dump */

/* An fd of pid on the terminal dev, taken by cr, or -1. */
static int fd_on(pid_t pid, dev_t dev)
{
	cr_error_t err = NULL;
	int fd = proc_find_fd(pid, proc_fd_is_chrdev, &dev);

	if (fd >= 0 && (fd = fdkind_steal_fd(pid, fd, &err)) < 0)
		cr_error_release(&err);
	return fd;
}

static bool has_fd_on(pid_t pid, dev_t dev)
{
	return proc_find_fd(pid, proc_fd_is_chrdev, &dev) >= 0;
}

static TermiosEntry *termios_of(struct arena *arena, const struct termios *tio)
{
	TermiosEntry *e = arena_new(arena, TermiosEntry);

	termios_entry__init(e);
	e->iflag = tio->c_iflag;
	e->oflag = tio->c_oflag;
	e->cflag = tio->c_cflag;
	e->lflag = tio->c_lflag;
	e->line = tio->c_line;
	e->cc = (ProtobufCBinaryData){ NCCS, arena_memdup(arena, tio->c_cc, NCCS) };
	e->ispeed = (uint32_t)cfgetispeed(tio);
	e->ospeed = (uint32_t)cfgetospeed(tio);
	return e;
}

int ctty_read_settings(struct arena *arena, int fd, TermiosEntry **tios, WinsizeEntry **wsp, cr_error_t *err)
{
	struct termios tio;
	struct winsize ws;
	WinsizeEntry *w;

	if (tcgetattr(fd, &tio) < 0)
		return cr_error(err, errno, "read the terminal's settings");
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return cr_error(err, errno, "read the terminal's window size");
	*tios = termios_of(arena, &tio);
	w = arena_new(arena, WinsizeEntry);
	winsize_entry__init(w);
	w->rows = ws.ws_row;
	w->cols = ws.ws_col;
	w->xpixel = ws.ws_xpixel;
	w->ypixel = ws.ws_ypixel;
	*wsp = w;
	return 0;
}

/* The terminal's settings and size, through an fd of the root on it
 * (none: the process cannot read or set them either). */
static int read_terminal(struct dump_ctx *ctx, struct dump_task *t, CttyEntry *c, cr_error_t *err)
{
	cleanup_close int fd = fd_on(t->pid, (dev_t)c->rdev);

	if (fd < 0)
		return 0;
	return ctty_read_settings(&ctx->arena, fd, &c->termios, &c->winsize, err);
}

dev_t ctty_shell_terminal(const struct dump_ctx *ctx)
{
	return ctx->tasks[0].stat.tty_nr ? ctty_dev(ctx->tasks[0].stat.tty_nr) : 0;
}

int ctty_before_hold(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	CttyEntry *c;

	if (t->stat.tty_nr == 0)
		return 0;
	c = arena_new(&ctx->arena, CttyEntry);
	ctty_entry__init(c);
	c->rdev = (uint32_t)ctty_dev(t->stat.tty_nr);
	c->sid = (uint32_t)t->stat.session;
	c->has_fg_pgid = t->stat.tpgid > 0;
	c->fg_pgid = t->stat.tpgid > 0 ? (uint32_t)t->stat.tpgid : 0;
	t->ctty = c;
	if (t == &ctx->tasks[0] && ctx->opts->shell_job && read_terminal(ctx, t, c, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	return 0;
}

static int ctty_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	dev_t shell = ctty_shell_terminal(ctx);
	char a[32], b[32];

	if (t->ctty == NULL)
		return 0;
	if (ctx->opts->shell_job && t->ctty->rdev != shell)
		return cr_error(err, 0, "pid %d: its controlling terminal (%s) is not the shell job's (%s, that of "
				"the root, pid %d), which alone the restoring terminal replaces (unsupported)", t->pid,
				dev_name(t->ctty->rdev, a, sizeof(a)), shell ? dev_name(shell, b, sizeof(b)) : "none",
				ctx->tasks[0].pid);
	if (t->ctty->has_fg_pgid && t->ctty->sid == (uint32_t)t->pid && t->ctty->fg_pgid != (uint32_t)t->stat.pgrp &&
	    pty_pair_in_dump(ctx, (dev_t)t->ctty->rdev) && !has_fd_on(t->pid, (dev_t)t->ctty->rdev))
		return cr_error(err, 0, "pid %d leads the session of its pty %s, whose foreground group %u is not its "
				"own, and holds no fd on it to give it back with (unsupported)", t->pid,
				dev_name(t->ctty->rdev, a, sizeof(a)), t->ctty->fg_pgid);
	t->core->ctty = t->ctty;
	return 0;
}

/* ------------------------------------------------------------- restore */

/* The root's terminal session becomes cr's: the root led it. */
static bool joins_terminal_session(const struct restore_ctx *ctx, const struct restore_task *t)
{
	const CttyEntry *c = t->core ? t->core->ctty : NULL;

	return ctx->opts->shell_job && t->parent == NULL && c != NULL && c->sid == t->pstree->ns_sid[0];
}

/* cr's terminal: the first of fds 0-2 that is one (as create.c keeps it). */
static int restorer_terminal(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (isatty(fd))
			return fd;
	return -1;
}

static int ctty_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CttyEntry *c = t->core->ctty;
	char what[48];
	int fd;

	if (c == NULL)
		return 0;
	snprintf(what, sizeof(what), "core-%d.img", t->pid);
	if (ctty_check_settings(c->termios, what, err) < 0)
		return -1;
	if (!ctx->opts->shell_job || t->parent != NULL)
		return 0;
	fd = restorer_terminal();
	if (fd < 0)
		return cr_error(err, 0, "pid %d had a controlling terminal: restore --shell-job on a terminal "
				"(none of fds 0-2 is one)", t->pid);
	if (tcgetsid(fd) != getsid(0))
		return cr_error(err, 0, "pid %d had a controlling terminal, and fd %d of cr restore is a terminal "
				"but not cr's controlling terminal: restore --shell-job from the terminal's own session",
				t->pid, fd);
	return 0;
}

/* What the restorer changed on its terminal, to give it back. */
struct ctty_plan {
	int fd;                    /* cr's terminal, -1 if none was taken */
	pid_t fg;                  /* the foreground group handed over, 0 if none */
	bool saved;
	struct termios tio;        /* cr's own settings */
};

static int ctty_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	(void)err;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		ctx->tasks[i].tty_session = !ctx->tasks[i].zombie && joins_terminal_session(ctx, &ctx->tasks[i]);
	ctx->ctty = xcalloc(1, sizeof(*ctx->ctty));
	ctx->ctty->fd = -1;
	return 0;
}

/* The group, as cr sees it, that the dumped foreground group is: a group
 * led in the tree; 0 if it was none of the tree's. */
static pid_t foreground_here(const struct restore_ctx *ctx, const CttyEntry *c)
{
	if (!c->has_fg_pgid)
		return 0;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		if (!t->zombie && t->pstree->ns_pid[0] == c->fg_pgid && t->pstree->ns_pgid[0] == c->fg_pgid)
			return t->host_pid;
	}
	return 0;
}

static void termios_from(const TermiosEntry *e, struct termios *tio)
{
	tio->c_iflag = e->iflag;
	tio->c_oflag = e->oflag;
	tio->c_cflag = e->cflag;
	tio->c_lflag = e->lflag;
	tio->c_line = (cc_t)e->line;
	memcpy(tio->c_cc, e->cc.data, NCCS);
	cfsetispeed(tio, (speed_t)e->ispeed);
	cfsetospeed(tio, (speed_t)e->ospeed);
}

int ctty_set_settings(int fd, const TermiosEntry *e, const WinsizeEntry *w, cr_error_t *err)
{
	struct termios tio;

	if (e != NULL) {
		if (tcgetattr(fd, &tio) < 0)
			return cr_error(err, errno, "read the terminal's settings");
		termios_from(e, &tio);
		if (tcsetattr(fd, TCSANOW, &tio) < 0)
			return cr_error(err, errno, "set the terminal's settings");
	}
	if (w != NULL) {
		struct winsize ws = { .ws_row = (unsigned short)w->rows, .ws_col = (unsigned short)w->cols,
				      .ws_xpixel = (unsigned short)w->xpixel, .ws_ypixel = (unsigned short)w->ypixel };

		if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
			return cr_error(err, errno, "set the terminal's window size");
	}
	return 0;
}

int ctty_check_settings(const TermiosEntry *e, const char *what, cr_error_t *err)
{
	if (e != NULL && e->cc.len != NCCS)
		return cr_error(err, 0, "%s: the terminal's settings have %zu control characters, not %d", what,
				e->cc.len, NCCS);
	return 0;
}

/* The number of an fd of t on the slave of its pair, or -1. */
static int slave_fd(const struct restore_ctx *ctx, const struct restore_task *t, dev_t dev)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FileEntry *fe = ctx->files[t->fds[i]->file_id - 1];

		if (fe->kind == FILE_KIND__FILE_PTY && !fe->pty->master && makedev(136, fe->pty->index) == dev)
			return (int)t->fds[i]->fd;
	}
	return -1;
}

int ctty_take(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CttyEntry *c = t->zombie ? NULL : t->core->ctty;
	cleanup_close int fd = -1;
	char path[64];

	if (c == NULL || c->sid != t->pstree->ns_pid[0] || !pty_in_dump(ctx, (dev_t)c->rdev))
		return 0;
	snprintf(path, sizeof(path), "/dev/pts/%u", minor((dev_t)c->rdev));
	fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open %s, its controlling terminal", path);
	if (ioctl(fd, TIOCSCTTY, 0) < 0)
		return cr_error(err, errno, "make %s its controlling terminal", path);
	return 0;
}

/* The pair's foreground group, set by its session's leader (only a
 * process of the session may) once every group exists. */
static int pair_foreground(struct restore_ctx *ctx, struct restore_task *t, const CttyEntry *c, cr_error_t *err)
{
	const struct restore_task *fg = NULL;
	int32_t pgid;
	int fd;

	if (c->sid != t->pstree->ns_pid[0] || !c->has_fg_pgid || c->fg_pgid == t->pstree->ns_pgid[0] ||
	    !pty_in_dump(ctx, (dev_t)c->rdev))
		return 0;
	for (size_t i = 0; i < ctx->n_tasks && fg == NULL; i++)
		if (!ctx->tasks[i].zombie && ctx->tasks[i].pstree->ns_pid[0] == c->fg_pgid &&
		    ctx->tasks[i].pstree->ns_pgid[0] == c->fg_pgid)
			fg = &ctx->tasks[i];
	fd = slave_fd(ctx, t, (dev_t)c->rdev);
	if (fg == NULL || fd < 0 || fg->pstree->pidns != t->pstree->pidns)
		return cr_error(err, 0, "pid %d: the foreground group %u of its pty is none it can set", t->pid,
				c->fg_pgid);
	pgid = (int32_t)fg->pstree->ns_pid[fg->pstree->n_ns_pid - 1];
	if (remote_write(t->host_pid, t->tramp + TRAMP_TTY_PGRP, &pgid, sizeof(pgid), err) < 0)
		return cr_error_wrap(err, "write the foreground group");
	inject_batch_add(&t->batch, "set the terminal's foreground group", SYS_ioctl, (uint64_t)fd, TIOCSPGRP,
			 t->tramp + TRAMP_TTY_PGRP, 0, 0, 0);
	return 0;
}

/* By the restorer, once every process exists and before the first is
 * transplanted (the root is): the terminal's settings, then its
 * foreground group.  SIGTTOU is blocked: cr may be in the background
 * by the time it gives the terminal back. */
static int take_terminal(struct restore_ctx *ctx, const CttyEntry *c, cr_error_t *err)
{
	struct ctty_plan *p = ctx->ctty;
	pid_t fg = foreground_here(ctx, c);

	p->fd = restorer_terminal();
	if (p->fd < 0)
		return cr_error(err, 0, "cr has no terminal on fds 0-2");
	if (tcgetattr(p->fd, &p->tio) < 0)
		return cr_error(err, errno, "read the settings of cr's terminal");
	p->saved = true;
	if (ctty_set_settings(p->fd, c->termios, NULL, err) < 0)
		return cr_error_wrap(err, "give the terminal the job's");
	if (fg > 0 && fg != getpgrp()) {
		if (tcsetpgrp(p->fd, fg) < 0)
			return cr_error(err, errno, "make group %d the terminal's foreground group", fg);
		p->fg = fg;
	}
	pr_debug("the terminal (fd %d) is the job's: foreground group %d", p->fd, fg);
	return 0;
}

static int ctty_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (t->core->ctty == NULL)
		return 0;
	if (ctx->opts->shell_job && t->parent == NULL)
		return take_terminal(ctx, t->core->ctty, err);
	return pair_foreground(ctx, t, t->core->ctty, err);
}

void ctty_released(const struct restore_ctx *ctx)
{
	if (ctx->ctty != NULL && ctx->ctty->fg > 0)
		kill(-ctx->ctty->fg, SIGWINCH);
}

void ctty_give_back(const struct restore_ctx *ctx, bool settings)
{
	struct ctty_plan *p = ctx->ctty;
	sigset_t ttou, old;

	if (p == NULL || p->fd < 0)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (p->fg > 0 && tcgetpgrp(p->fd) == p->fg)
		tcsetpgrp(p->fd, getpgrp());
	if (settings && p->saved)
		tcsetattr(p->fd, TCSANOW, &p->tio);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

void ctty_job_stopped(const struct restore_ctx *ctx)
{
	struct ctty_plan *p = ctx->ctty;
	sigset_t ttou, old;

	if (p == NULL || p->fg <= 0)
		return;
	ctty_give_back(ctx, false);
	raise(SIGSTOP);
	/* Continued (fg): the job has the terminal again, and goes on. */
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	sigprocmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(p->fd, p->fg) < 0)
		pr_warn("give the terminal back to group %d: %s", p->fg, strerror(errno));
	sigprocmask(SIG_SETMASK, &old, NULL);
	kill(-p->fg, SIGCONT);
}

static void ctty_release(struct restore_ctx *ctx)
{
	free(steal_pointer(&ctx->ctty));
}

const struct state_kind state_ctty = {
	.name = "controlling terminal",
	.collect = ctty_collect,
	.validate = ctty_validate,
	.plan = ctty_plan,
	.apply = ctty_apply,
	.release_restore = ctty_release,
};
