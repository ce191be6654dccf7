/* Pseudo-terminal pairs whose master the tree holds: a tmux or screen
 * server, script, expect.  Both ends are one object (fdshare.h), the pts
 * index its key; a pts whose master is outside the tree is the shell
 * job's terminal (fd/reg.c, tty_dump).
 *
 * Dump: every description of the pair records its index, which end it
 * is, and the pair's state, read through the master: the slave's termios
 * and window size, packet mode (TIOCGPKT) and the slave's lock
 * (TIOCGPTLCK), and the data not yet read on either side (read out and
 * put back at once: see "the queued bytes" below).  A slave must be
 * /dev/pts/N and a master /dev/ptmx or /dev/pts/ptmx of cr's devpts.
 *
 * Restore, in the process that opens the object (the common ancestor of
 * all its holders): /dev/ptmx is opened until the kernel gives the dumped
 * index (it gives the lowest free one; the ones below are closed again),
 * the slave is unlocked and opened, the state set, the queued bytes
 * written, and the lock put back.
 * The master's description is the one made there; each slave description
 * is the slave opened anew with its flags, never as a controlling
 * terminal (state/ctty.c makes it one for its session's leader). */
#include "fd/pty.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/reg.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/ctty.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

/* devpts slaves: major 136, the pts index as minor. */
#define PTS_MAJOR 136
/* How many pts indexes the restore may open below the one it wants. */
#define PTMX_TRIES 4096

static bool is_ptmx(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == 5 && minor(st->st_rdev) == 2;
}

static bool is_pts(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == PTS_MAJOR;
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

struct end_wanted {
	pid_t pid;
	int index;
};

static bool is_master_of(int fd, const struct stat *st, void *arg)
{
	const struct end_wanted *w = arg;

	return is_ptmx(st) && master_index(w->pid, fd) == w->index;
}

/* The first fd of pid that is on a master of pts index (slave 0), or on
 * the slave itself; -1 if none. */
static int find_end(pid_t pid, int index, dev_t slave)
{
	struct end_wanted w = { pid, index };

	return slave ? proc_find_fd(pid, proc_fd_is_chrdev, &slave) : proc_find_fd(pid, is_master_of, &w);
}

/* A process of the dump holding that end of pts index, and its fd. */
static bool end_in_dump(const struct dump_ctx *ctx, int index, bool master, pid_t *pid, int *fd)
{
	dev_t slave = master ? 0 : makedev(PTS_MAJOR, (unsigned)index);

	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && (*fd = find_end(ctx->tasks[i].pid, index, slave)) >= 0) {
			*pid = ctx->tasks[i].pid;
			return true;
		}
	return false;
}

static bool pty_match(const struct fd_probe *p)
{
	return is_ptmx(&p->st) || is_pts(&p->st);
}

/* ------------------------------------------------- the queued bytes
 *
 * Data queued in the pair is read out while the tree is frozen and put
 * back at once (and written in the same way at restore).  The slave's
 * input went through its line discipline already (echo, ICRNL, signals):
 * in canonical mode its whole lines are read first as the process would
 * read them (one a read: a line that ends in none of its line-end bytes
 * ended with an end-of-file, a ^D, which is kept as a NUL after it; a NUL
 * typed is refused, as it would come back as an end-of-file), then it is
 * read with the slave switched to raw (which makes a canonical line not
 * yet ended readable too).  It is written back through the master with
 * echo, signals, input mapping and flow control off, and in canonical
 * mode with the editing characters moved to a byte the data does not
 * hold and VEOF to another, which each NUL is written as, so that the
 * same lines end at the same bytes ('\n', VEOL, VEOL2, end-of-file).  The
 * slave's output towards the master went through OPOST already: written
 * back through the slave with OPOST off.  Then the termios is set back.
 * IXON stays on (turning it off would start a tty stopped by ^S): START
 * and STOP are moved aside too.  The bytes written reach the line
 * discipline through the tty's buffer work: FIONREAD is awaited, and a
 * canonical line not ended or an end-of-file, which it does not count, is
 * awaited with poll (which runs that work) when no whole line precedes
 * it, else 50 ms.
 * A master in packet mode would see the termios changes in its status
 * byte: a pair with data queued and its master in packet mode is
 * refused, as before. */

#define PTY_QMAX (1 << 16)

struct pty_queues {
	uint8_t *in, *out;       /* the slave's input, the master's input */
	size_t n_in, n_out;
	/* Which of the first n_eof bytes of in stand for an end-of-file (read
	 * at dump); without it (restore), in canonical mode every NUL does. */
	bool *eof;
	size_t n_eof;
};

static void queues_free(struct pty_queues *q)
{
	free(q->in);
	free(q->out);
	free(q->eof);
	*q = (struct pty_queues){ 0 };
}

static int inq(int fd)
{
	int n = 0;

	return ioctl(fd, FIONREAD, &n) < 0 ? -1 : n;
}

/* Everything fd has queued, read until it stays empty (more than the line
 * discipline's 4 KiB waits in the tty's buffers and comes in as it is
 * read).  -1 with errno on error. */
static int drain(int fd, uint8_t **buf, size_t *len)
{
	for (int quiet = 0; quiet < 3;) {
		int n = inq(fd);
		ssize_t r;

		if (n < 0)
			return -1;
		if (n == 0) {
			quiet++;
			usleep(2000);
			continue;
		}
		quiet = 0;
		if (*len + (size_t)n > PTY_QMAX) {
			errno = EFBIG;
			return -1;
		}
		*buf = xrealloc(*buf, *len + (size_t)n);
		r = read(fd, *buf + *len, (size_t)n);
		if (r <= 0) {
			errno = r < 0 ? errno : EIO;
			return -1;
		}
		*len += (size_t)r;
	}
	return 0;
}

static bool holds(const uint8_t *p, size_t n, int c)
{
	return memchr(p, c, n) != NULL;
}

/* A byte neither in the data nor a line end nor other, for the editing
 * characters (or VEOF) while the data is written back; 0 if none. */
static cc_t spare_byte(const struct pty_queues *q, const struct termios *t, int other)
{
	for (int c = 1; c < 256; c++)
		if (!holds(q->in, q->n_in, c) && c != '\n' && c != t->c_cc[VEOL] && c != t->c_cc[VEOL2] && c != other)
			return (cc_t)c;
	return 0;
}

/* A NUL in q that is no end-of-file. */
static bool literal_nul(const struct pty_queues *q)
{
	for (size_t i = 0; i < q->n_in; i++)
		if (q->in[i] == 0 && !(i < q->n_eof && q->eof[i]))
			return true;
	return false;
}

/* A byte that ends a canonical line of t, besides an end-of-file. */
static bool line_end(const struct termios *t, uint8_t c)
{
	return c == '\n' || (c != 0 && c == t->c_cc[VEOL]) ||
	       ((t->c_lflag & IEXTEN) && c != 0 && c == t->c_cc[VEOL2]);
}

/* The whole lines queued for a canonical slave s, read one a read: one
 * that ends with an end-of-file gets a NUL after it, marked in q->eof. */
static int read_lines(int s, const struct termios *t, struct pty_queues *q, cr_error_t *err)
{
	uint8_t line[4096];   /* the line discipline's whole buffer */
	struct pollfd p = { .fd = s, .events = POLLIN };

	while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		ssize_t r = read(s, line, sizeof(line));
		bool eof;

		if (r < 0)
			return cr_error(err, errno, "read a line queued for the slave");
		eof = r == 0 || !line_end(t, line[r - 1]);
		if (q->n_in + (size_t)r + eof > PTY_QMAX)
			return cr_error(err, EFBIG, "read the bytes queued for the slave");
		q->in = xrealloc(q->in, q->n_in + (size_t)r + eof);
		q->eof = xrealloc(q->eof, (q->n_in + (size_t)r + eof) * sizeof(*q->eof));
		memcpy(q->in + q->n_in, line, (size_t)r);
		memset(q->eof + q->n_in, 0, (size_t)r * sizeof(*q->eof));
		q->n_in += (size_t)r;
		if (eof) {
			q->eof[q->n_in] = true;
			q->in[q->n_in++] = 0;
		}
		q->n_eof = q->n_in;
	}
	return 0;
}

static void no_processing(struct termios *t)
{
	/* IXON stays: turning it off would start a tty stopped by ^S. */
	t->c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IUCLC);
	t->c_oflag &= ~(tcflag_t)OPOST;
	t->c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT | ECHOKE | ISIG | TOSTOP);
}

/* Waits until fd shows want bytes queued (at most what the line
 * discipline takes), and for a canonical line not yet ended (not counted)
 * a little more. */
static int landed(int fd, size_t want, bool tail, cr_error_t *err)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (want > 4000)
		want = 4000;
	for (int i = 0; i < 2000; i++) {
		int n = inq(fd);

		if (n < 0)
			return cr_error(err, errno, "FIONREAD");
		if ((size_t)n >= want) {
			if (tail && want == 0)
				poll(&p, 1, 0);   /* n_tty's poll waits for the tty's buffer work */
			else if (tail || want == 4000)
				usleep(50000);
			return 0;
		}
		usleep(1000);
	}
	return cr_error(err, 0, "the bytes written did not arrive (%zu awaited)", want);
}

/* Writes q into the pair (m the master, s a slave; s may be -1 when q has
 * no output) set as orig, and sets orig back. */
static int put_back(int m, int s, const struct termios *orig, const struct pty_queues *q, cr_error_t *err)
{
	struct termios t = *orig;
	bool canon = orig->c_lflag & ICANON;
	size_t lines = q->n_in, eofs = 0;
	cleanup_free uint8_t *in = NULL;
	int rc = 0;

	if (q->n_in == 0 && q->n_out == 0)
		return tcsetattr(m, TCSANOW, orig) < 0 ? cr_error(err, errno, "set the pair's termios back") : 0;
	no_processing(&t);
	t.c_cc[VSTART] = t.c_cc[VSTOP] = spare_byte(q, orig, 0);
	if (q->n_in > 0) {
		in = xmalloc(q->n_in);
		memcpy(in, q->in, q->n_in);
	}
	if (canon) {
		cc_t c = spare_byte(q, orig, 0);

		t.c_cc[VERASE] = t.c_cc[VKILL] = t.c_cc[VEOF] = c;
		t.c_cc[VWERASE] = t.c_cc[VREPRINT] = t.c_cc[VLNEXT] = c;
		/* Each end-of-file is written as VEOF (FIONREAD does not count
		 * it); a NUL written is a NUL. */
		t.c_cc[VEOF] = spare_byte(q, orig, c);
		for (size_t i = 0; i < q->n_in; i++)
			if (q->eof ? i < q->n_eof && q->eof[i] : in[i] == 0) {
				in[i] = t.c_cc[VEOF];
				eofs++;
			}
		while (lines > 0 && !line_end(orig, q->in[lines - 1]) && in[lines - 1] != t.c_cc[VEOF])
			lines--;
	}
	if (tcsetattr(m, TCSANOW, &t) < 0)
		return cr_error(err, errno, "set the pair raw to put its queued bytes back");
	if (q->n_in > 0 && (write_all(m, in, q->n_in, err) < 0 ||
			    landed(s >= 0 ? s : m, s >= 0 ? lines - eofs : 0, lines < q->n_in || eofs > 0, err) < 0))
		rc = cr_error_wrap(err, "put back the %zu bytes queued for the slave", q->n_in);
	if (rc == 0 && q->n_out > 0 && (write_all(s, q->out, q->n_out, err) < 0 || landed(m, q->n_out, false, err) < 0))
		rc = cr_error_wrap(err, "put back the %zu bytes queued for the master", q->n_out);
	if (tcsetattr(m, TCSANOW, orig) < 0 && rc == 0)
		rc = cr_error(err, errno, "set the pair's termios back");
	return rc;
}

static bool writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* Reads the pair's queued bytes (m the master, s a slave of the tree or
 * -1: then the slave's input is not looked at) and puts them back; q
 * holds them. */
static int take_queues(int m, int s, bool packet, struct pty_queues *q, cr_error_t *err)
{
	struct termios orig, raw;
	cr_error_t back = NULL;
	int rc = 0, n = inq(m), e;

	if (n < 0 || tcgetattr(m, &orig) < 0)
		return cr_error(err, errno, "FIONREAD on the master");
	if (n > 0 && s < 0)
		return cr_error(err, 0, "%d bytes queued for the master while no process of the tree holds the slave "
				"(unsupported; dump once they are read)", n);
	if (n > 0 && !writable(s))
		return cr_error(err, 0, "%d bytes queued for the master while the slave cannot write (stopped by ^S, "
				"or the master's buffer full): unsupported, dump once they are read", n);
	if (packet) {
		/* A termios change can tell a packet-mode master (TIOCPKT_DOSTOP, EXTPROC's TIOCPKT_IOCTL). */
		if (n == 0 && s >= 0)
			n = inq(s);
		if (n != 0)
			return cr_error(err, 0, "%d bytes queued in a pair whose master is in packet mode (unsupported; "
					"dump once they are read)", n);
		return 0;
	}
	if (n == 0 && (s < 0 || (n = inq(s)) == 0) && (orig.c_lflag & ICANON) == 0)
		return 0;
	raw = orig;
	no_processing(&raw);
	raw.c_lflag &= ~(tcflag_t)(ICANON | IEXTEN);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (s >= 0 && (orig.c_lflag & ICANON) && read_lines(s, &orig, q, err) < 0)
		rc = -1;
	if (rc == 0 && tcsetattr(m, TCSANOW, &raw) < 0)
		rc = cr_error(err, errno, "set the pair raw to read its queued bytes");
	if (rc == 0 && s >= 0 && drain(s, &q->in, &q->n_in) < 0)
		rc = cr_error(err, errno, "read the bytes queued for the slave");
	if (rc == 0 && drain(m, &q->out, &q->n_out) < 0)
		rc = cr_error(err, errno, "read the bytes queued for the master");
	if (rc == 0 && ((orig.c_lflag & ICANON) || (orig.c_iflag & IXON)) &&
	    (spare_byte(q, &orig, 0) == 0 ||
	     ((orig.c_lflag & ICANON) && spare_byte(q, &orig, spare_byte(q, &orig, 0)) == 0)))
		rc = cr_error(err, 0, "the %zu bytes queued for the slave hold every byte value: cannot put them back "
				"past canonical mode or IXON (unsupported)", q->n_in);
	if (rc == 0 && (orig.c_lflag & ICANON) && literal_nul(q))
		rc = cr_error(err, 0, "a NUL typed and queued for the slave in canonical mode, which the image would "
				"hold as an end-of-file (unsupported; dump once it is read)");
	e = put_back(m, s, &orig, q, rc == 0 ? err : &back);
	if (e < 0 && rc < 0)
		cr_error_wrap(err, "and putting the bytes read back failed too (%s)", back->msg);
	cr_error_release(&back);
	return rc < 0 ? rc : e;
}

/* The slave's unread input is seen through a slave fd of the tree; input
 * queued for a slave no process of the tree holds is not seen (opening
 * the slave to look would tell the master it was closed). */
static int read_queues(struct dump_ctx *ctx, int m, PtyEntry *e, cr_error_t *err)
{
	struct pty_queues q = { 0 };
	cleanup_close int s = -1;
	pid_t pid;
	int fd, rc;

	if (end_in_dump(ctx, (int)e->index, false, &pid, &fd) && (s = fdkind_steal_fd(pid, fd, err)) < 0)
		return -1;
	rc = take_queues(m, s, e->packet, &q, err);
	if (rc == 0 && q.n_in > 0) {
		e->has_slave_in = true;
		e->slave_in = (ProtobufCBinaryData){ q.n_in, arena_memdup(&ctx->arena, q.in, q.n_in) };
	}
	if (rc == 0 && q.n_out > 0) {
		e->has_master_in = true;
		e->master_in = (ProtobufCBinaryData){ q.n_out, arena_memdup(&ctx->arena, q.out, q.n_out) };
	}
	queues_free(&q);
	return rc < 0 ? cr_error_wrap(err, "/dev/pts/%u", e->index) : 0;
}

/* The pair's state, through the master (pid's fd). */
static int read_pair(struct dump_ctx *ctx, pid_t pid, int fd, PtyEntry *e, cr_error_t *err)
{
	cleanup_close int m = fdkind_steal_fd(pid, fd, err);
	int pkt = 0, lck = 0;

	if (m < 0)
		return -1;
	if (ioctl(m, TIOCGPKT, &pkt) < 0 || ioctl(m, TIOCGPTLCK, &lck) < 0)
		return cr_error(err, errno, "the packet mode and lock of /dev/pts/%u", e->index);
	e->packet = pkt != 0;
	e->locked = lck != 0;
	if (ctty_read_settings(&ctx->arena, m, &e->termios, &e->winsize, err) < 0)
		return cr_error_wrap(err, "/dev/pts/%u", e->index);
	return read_queues(ctx, m, e, err);
}

static int pty_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	PtyEntry *e = arena_new(&ctx->arena, PtyEntry);
	char want[64];
	pid_t holder = t->pid;
	int mfd = p->fd, index;

	pty_entry__init(e);
	e->master = is_ptmx(&p->st);
	index = e->master ? master_index(p->pid, p->fd) : (int)minor(p->st.st_rdev);
	if (index < 0)
		return cr_error(err, 0, "a pty master (%s) whose pts index cr cannot read", p->link);
	if (!e->master && !end_in_dump(ctx, index, true, &holder, &mfd))
		return tty_dump(ctx, t, p, fe, err);   /* the shell job's terminal, or refused there */
	e->index = (uint32_t)index;
	snprintf(want, sizeof(want), "/dev/pts/%d", index);
	if (e->master ? strcmp(p->link, "/dev/ptmx") != 0 && strcmp(p->link, "/dev/pts/ptmx") != 0
		      : strcmp(p->link, want) != 0)
		return cr_error(err, 0, "%s: a pty %s of /dev/pts/%d not at its path in cr's devpts (another devpts "
				"instance: unsupported)", p->link, e->master ? "master" : "slave", index);
	if (!e->master && fdshare_refuse_outside(ctx, t->pid, p, "pty slave", err) < 0)
		return -1;
	fe->pty = e;
	return read_pair(ctx, holder, mfd, e, err);
}

/* --------------------------------------------------------------- restore */

static bool pty_key(const FileEntry *fe, struct fdshare_key *k)
{
	if (fe->pty == NULL)
		return false;
	*k = (struct fdshare_key){ .ino = fe->pty->index };
	return true;
}

static const FileEntry *first_of_pair(const struct restore_ctx *ctx, const FileEntry *fe)
{
	return fdshare_first(ctx, fe, pty_key);
}

static int pty_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	char what[48];

	(void)ctx;
	if (fe->pty == NULL)
		return cr_error(err, 0, "a pty without its pty entry");
	snprintf(what, sizeof(what), "/dev/pts/%u", fe->pty->index);
	return ctty_check_settings(fe->pty->termios, what, err);
}

/* /dev/ptmx opened until the kernel hands out index (the lowest free one
 * each time); the masters below it are closed again. */
static int open_master(unsigned index, cr_error_t *err)
{
	cleanup_free int *below = xcalloc(PTMX_TRIES, sizeof(int));
	int n = 0, m = -1;

	while (m < 0 && n < PTMX_TRIES) {
		int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		unsigned got;

		if (fd < 0) {
			cr_error(err, errno, "open /dev/ptmx");
			break;
		}
		if (ioctl(fd, TIOCGPTN, &got) < 0) {
			cr_error(err, errno, "TIOCGPTN");
			close(fd);
			break;
		}
		if (got == index) {
			m = fd;
			break;
		}
		below[n++] = fd;
		if (got > index) {
			cr_error(err, 0, "/dev/pts/%u is in use here: the pty pair cannot get its number back", index);
			break;
		}
	}
	if (m < 0 && n == PTMX_TRIES)
		cr_error(err, 0, "/dev/pts/%u: more than %d ptys below it", index, PTMX_TRIES);
	for (int i = 0; i < n; i++)
		close(below[i]);
	return m;
}

static int set_pair(int m, int s, const PtyEntry *e, cr_error_t *err)
{
	struct pty_queues q = {
		.in = e->slave_in.data, .out = e->master_in.data, .n_in = e->slave_in.len, .n_out = e->master_in.len,
	};
	int pkt = e->packet, lck = 1;
	struct termios orig;

	if (ctty_set_settings(m, e->termios, e->winsize, err) < 0)
		return -1;
	if ((q.n_in > 0 || q.n_out > 0) && tcgetattr(m, &orig) < 0)
		return cr_error(err, errno, "tcgetattr");
	if ((q.n_in > 0 || q.n_out > 0) && put_back(m, s, &orig, &q, err) < 0)
		return -1;
	if (ioctl(m, TIOCPKT, &pkt) < 0)
		return cr_error(err, errno, "packet mode");
	if (e->locked && ioctl(m, TIOCSPTLCK, &lck) < 0)
		return cr_error(err, errno, "lock the slave");
	return 0;
}

static struct fd_anchor *create_pair(const struct restore_task *t, const FileEntry *first, cr_error_t *err)
{
	const PtyEntry *e = first->pty;
	int fds[2] = { open_master(e->index, err), -1 };
	int unlock = 0;

	if (fds[0] < 0)
		return NULL;
	if (ioctl(fds[0], TIOCSPTLCK, &unlock) < 0)
		cr_error(err, errno, "unlock /dev/pts/%u", e->index);
	else if ((fds[1] = ioctl(fds[0], TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		cr_error(err, errno, "open /dev/pts/%u", e->index);
	else if (set_pair(fds[0], fds[1], e, err) == 0)
		return fd_anchor_add(t, first->id, fds, err);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return NULL;
}

/* The master has one description, the one made; a slave's is opened anew
 * with its flags, never as a controlling terminal. */
static int open_end(struct fd_anchor *a, const FileEntry *fe, cr_error_t *err)
{
	char path[64];
	cleanup_close int fd = -1;

	if (fe->pty->master) {
		if (a->taken[0])
			return cr_error(err, 0, "a second description of the master of /dev/pts/%u", fe->pty->index);
		fd = fcntl(a->fd[0], F_DUPFD_CLOEXEC, 0);
		a->taken[0] = true;
	} else {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", a->fd[1]);
		fd = open(path, (int)(fe->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY | O_CLOEXEC);
	}
	if (fd < 0)
		return cr_error(err, errno, "open the %s of /dev/pts/%u", fe->pty->master ? "master" : "slave",
				fe->pty->index);
	if (fcntl(fd, F_SETFL, fe->flags & (O_NONBLOCK | O_APPEND)) < 0)
		return cr_error(err, errno, "set flags 0%o", fe->flags);
	return steal_fd(&fd);
}

static int pty_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const FileEntry *first = first_of_pair(ctx, fe);
	struct fd_anchor *a = fd_anchor_find(first->id);

	if (a == NULL && (a = create_pair(t, first, err)) == NULL)
		return cr_error_wrap(err, "pty pair /dev/pts/%u", first->pty->index);
	return open_end(a, fe, err);
}

bool pty_pair_in_dump(const struct dump_ctx *ctx, dev_t slave)
{
	pid_t pid;
	int fd;

	return major(slave) == PTS_MAJOR && end_in_dump(ctx, (int)minor(slave), true, &pid, &fd);
}

bool pty_in_dump(const struct restore_ctx *ctx, dev_t slave)
{
	if (major(slave) != PTS_MAJOR)
		return false;
	for (size_t i = 0; i < ctx->n_files; i++)
		if (ctx->files[i]->kind == FILE_KIND__FILE_PTY && ctx->files[i]->pty->index == minor(slave))
			return true;
	return false;
}

const struct fd_kind fdkind_pty = {
	.name = "pty", .kind = FILE_KIND__FILE_PTY, .shareable = true, .first = first_of_pair, .aside = 2,
	.match = pty_match, .dump = pty_dump, .validate = pty_validate, .open = pty_open,
};
