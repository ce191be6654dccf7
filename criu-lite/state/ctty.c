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
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
	char path[64];
	cleanup_closedir DIR *d = NULL;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;
		cr_error_t err = NULL;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != dev)
			continue;
		fd = fdkind_steal_fd(pid, atoi(de->d_name), &err);
		cr_error_release(&err);
		if (fd >= 0)
			return fd;
	}
	return -1;
}

static TermiosEntry *termios_of(struct dump_ctx *ctx, const struct termios *tio)
{
	TermiosEntry *e = arena_new(&ctx->arena, TermiosEntry);

	termios_entry__init(e);
	e->iflag = tio->c_iflag;
	e->oflag = tio->c_oflag;
	e->cflag = tio->c_cflag;
	e->lflag = tio->c_lflag;
	e->line = tio->c_line;
	e->cc = (ProtobufCBinaryData){ NCCS, arena_memdup(&ctx->arena, tio->c_cc, NCCS) };
	e->ispeed = (uint32_t)cfgetispeed(tio);
	e->ospeed = (uint32_t)cfgetospeed(tio);
	return e;
}

/* The terminal's settings and size, through an fd of the root on it
 * (none: the process cannot read or set them either). */
static int read_terminal(struct dump_ctx *ctx, struct dump_task *t, CttyEntry *c, cr_error_t *err)
{
	cleanup_close int fd = fd_on(t->pid, (dev_t)c->rdev);
	struct termios tio;
	struct winsize ws;

	if (fd < 0)
		return 0;
	if (tcgetattr(fd, &tio) < 0)
		return cr_error(err, errno, "the settings of its terminal");
	c->termios = termios_of(ctx, &tio);
	if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
		return cr_error(err, errno, "the window size of its terminal");
	c->winsize = arena_new(&ctx->arena, WinsizeEntry);
	winsize_entry__init(c->winsize);
	c->winsize->rows = ws.ws_row;
	c->winsize->cols = ws.ws_col;
	c->winsize->xpixel = ws.ws_xpixel;
	c->winsize->ypixel = ws.ws_ypixel;
	return 0;
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
	int fd;

	if (c == NULL)
		return 0;
	if (c->termios != NULL && c->termios->cc.len != NCCS)
		return cr_error(err, 0, "core-%d.img: the terminal's settings have %zu control characters, not %d",
				t->pid, c->termios->cc.len, NCCS);
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

/* By the restorer, once every process exists and before the first is
 * transplanted (the root is): the terminal's settings, then its
 * foreground group.  SIGTTOU is blocked: cr may be in the background
 * by the time it gives the terminal back. */
static int take_terminal(struct restore_ctx *ctx, const CttyEntry *c, cr_error_t *err)
{
	struct ctty_plan *p = ctx->ctty;
	pid_t fg = foreground_here(ctx, c);
	struct termios tio;

	p->fd = restorer_terminal();
	if (p->fd < 0)
		return cr_error(err, 0, "cr has no terminal on fds 0-2");
	if (tcgetattr(p->fd, &p->tio) < 0)
		return cr_error(err, errno, "read the settings of cr's terminal");
	p->saved = true;
	if (c->termios != NULL) {
		tio = p->tio;
		termios_from(c->termios, &tio);
		if (tcsetattr(p->fd, TCSANOW, &tio) < 0)
			return cr_error(err, errno, "give the terminal its dumped settings");
	}
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
	if (!ctx->opts->shell_job || t->parent != NULL || t->core->ctty == NULL)
		return 0;
	return take_terminal(ctx, t->core->ctty, err);
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
