/* Pseudo-terminal masters (/dev/ptmx, or a devpts mount's ptmx): pty
 * pairs are not restored yet (a tmux or screen server, script, expect).
 * The dump refuses a master precisely, naming its slave /dev/pts/N and
 * which processes of the tree hold that slave; fd/reg.c refuses the slave
 * side, naming the master's holder (pty_master_holder). */
#include "fd/pty.h"
#include "fd/fdkind.h"
#include "os/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* devpts slaves: major 136, the pts index as minor. */
#define PTS_MAJOR 136

static bool is_ptmx(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 5 && minor(st->st_rdev) == 2;
}

/* The pts index of a master fd of pid, or -1. */
static int master_index(pid_t pid, int fd)
{
	cr_error_t err = NULL;
	cleanup_close int dup = fdkind_steal_fd(pid, fd, &err);
	unsigned n;

	cr_error_release(&err);
	if (dup < 0 || ioctl(dup, TIOCGPTN, &n) < 0)
		return -1;
	return (int)n;
}

/* Calls each(pid, fd, arg) for every fd of pid whose file matches; stops
 * at the first non-zero answer, which it returns. */
static int each_fd(pid_t pid, bool (*match)(const struct stat *st, void *arg),
		   int (*each)(pid_t pid, int fd, void *arg), void *arg)
{
	char path[64];
	cleanup_closedir DIR *d = NULL;
	struct dirent *de;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (ret == 0 && d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] != '.' && fstatat(dirfd(d), de->d_name, &st, 0) == 0 && match(&st, arg))
			ret = each(pid, atoi(de->d_name), arg);
	}
	return ret;
}

struct holders {
	int index;                 /* the pts index looked for */
	dev_t slave;               /* its device, when looking for slave holders */
	char text[256];            /* "pid P fd F, ..." */
	size_t n;
};

static void note_holder(struct holders *h, pid_t pid, int fd)
{
	size_t len = strlen(h->text);

	if (h->n++ < 4)
		snprintf(h->text + len, sizeof(h->text) - len, "%spid %d fd %d", len ? ", " : "", pid, fd);
	else if (h->n == 5)
		snprintf(h->text + len, sizeof(h->text) - len, ", ...");
}

static bool match_ptmx(const struct stat *st, void *arg)
{
	(void)arg;
	return is_ptmx(st);
}

static int note_master(pid_t pid, int fd, void *arg)
{
	struct holders *h = arg;

	if (master_index(pid, fd) == h->index)
		note_holder(h, pid, fd);
	return 0;
}

static bool match_slave(const struct stat *st, void *arg)
{
	const struct holders *h = arg;

	return S_ISCHR(st->st_mode) && st->st_rdev == h->slave;
}

static int note_slave(pid_t pid, int fd, void *arg)
{
	note_holder(arg, pid, fd);
	return 0;
}

const char *pty_master_holder(const struct dump_ctx *ctx, dev_t slave, char *buf, size_t len)
{
	struct holders h = { .index = -1 };

	buf[0] = '\0';
	if (major(slave) != PTS_MAJOR)
		return NULL;
	h.index = (int)minor(slave);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			each_fd(ctx->tasks[i].pid, match_ptmx, note_master, &h);
	if (h.n == 0)
		return NULL;
	snprintf(buf, len, "%s", h.text);
	return buf;
}

static bool pty_match(const struct fd_probe *p)
{
	return is_ptmx(&p->st);
}

/* The slave /dev/pts/N is opened by path: its device number is that of
 * the master's index in the same devpts, found through any slave fd. */
static int pty_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	struct holders h = { 0 };
	int index = master_index(p->pid, p->fd);

	(void)t, (void)fe;
	if (index < 0)
		return cr_error(err, 0, "a pty master (%s) whose pts index cr cannot read: pty pairs are not "
				"restored (unsupported)", p->link);
	h.index = index;
	h.slave = makedev(PTS_MAJOR, (unsigned)index);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			each_fd(ctx->tasks[i].pid, match_slave, note_slave, &h);
	return cr_error(err, 0, "the pty master of /dev/pts/%d (%s), whose slave is held by %s: pty pairs (a "
			"terminal emulator, tmux, screen, script, expect) are not restored (unsupported)", index,
			p->link, h.n ? h.text : "no process of the tree");
}

static int pty_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx;
	return cr_error(err, 0, "file %u: a pty master, which no dump makes (pty pairs are not restored)", fe->id);
}

const struct fd_kind fdkind_pty = {
	.name = "pty master", .kind = FILE_KIND__FILE_PTY_MASTER,
	.match = pty_match, .dump = pty_dump, .validate = pty_validate,
};
