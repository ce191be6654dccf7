/* Unix sockets: their fd kind, dump and restore.
 *
 * A socket is described by sock_diag (unix_diag.h): type, state, bound
 * name, peer (by inode), shutdown state, a listener's connections not
 * accepted yet (by their clients); its receive queue is peeked through a
 * pidfd_getfd duplicate with SO_PEEK_OFF (never consumed), with message
 * boundaries and, for datagrams, each sender's name and, with SO_PASSCRED,
 * credentials.
 *
 * What is refused (the dump fails naming pid, fd and kind): a socket or
 * peer open outside the dump (unless --ext-unix-sk, and the peer has an
 * absolute or abstract name: the restore connects to it again); fds in
 * flight (SCM_RIGHTS) other than unix sockets of the dump (held by a
 * process or only in flight), regular files no process holds and pipes
 * only the message holds or whose holders hold the socket or its peer
 * (keep_pipe, keep_held_pipe), and on a stream socket any whose
 * write cannot be told from the writes around it (fds_on_single_bytes,
 * check_writes);
 * data a client sent on a connection not accepted yet;
 * credentials queued in another pid namespace than cr's; a datagram
 * socket connected one way to an unnamed socket; a queue larger than
 * FDKIND_MAX_DATA.  A peer that no process holds and that is not in
 * flight in a queue of the dump is refused once every fd is recorded
 * (unix_check_tree).
 *
 * Sockets in flight join the component of the socket they are queued on;
 * files in flight are opened again by path at their offset, pipes made
 * again with their data or handed out from their holders' pipe.  Queued
 * messages, and with SO_PASSCRED each stretch of a stream written by one
 * sender, are sent again with their senders' credentials; a stream is
 * written again in stretches that end where a write with fds in flight
 * did, each with its fds.
 *
 * The sockets of a component (below) may be held by several processes of
 * the tree: the component is one object (the .first hook), made in the
 * common ancestor of its holders before it forks, and inherited.
 *
 * The first socket asked for is created together with its component: the
 * sockets of the image it is connected to, was accepted from, or received
 * datagrams from, is a connection not accepted yet on, and so on.  In this
 * order:
 *   1. listening sockets: socket, bind, listen with the dumped backlog;
 *   2. connected stream and seqpacket sockets: through their listener when
 *      one end was accepted from a listening socket of the component
 *      (connect + accept, which gives the accepted end its name), otherwise
 *      socketpair and a bind of each named end; a closed peer is played by
 *      a stand-in, closed at step 6; a peer outside the dump
 *      (--ext-unix-sk): connected to its name;
 *   3. datagram sockets: a socketpair for two connected to each other, a
 *      stand-in for a closed peer, else a socket of their own, bound;
 *      then the clients of connections not accepted yet, connected to
 *      their listener in accept order;
 *   4. buffer sizes, then every receive queue, written again by its
 *      sender: the peer, the socket bound to the sender's name, or a
 *      temporary socket bound to that name; with the recorded credentials
 *      (SCM_CREDENTIALS), from a short-lived process with the sender's pid
 *      when that pid is gone;
 *   5. datagram sockets connected one way, by the peer's name (in the
 *      component, or outside the dump): only now, as a connected socket
 *      takes datagrams from its peer alone;
 *   6. stand-ins closed; shutdown state, SO_PEEK_OFF, SO_PASSCRED.
 * Each socket is then stashed as the anchor of its file entry.
 *
 * Path names: a socket file left behind by the dumped socket (the inode
 * recorded at dump) is unlinked and bound again, with the dumped mode and
 * owner; any other file at that path stops the restore.  A name whose file
 * was already gone at dump (unlinked, replaced, its directories removed)
 * is bound at its path for the time the component is made, and the path
 * then put back as it was (unix_path.h). */
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/pipes.h"
#include "fd/unix_diag.h"
#include "fd/unix_path.h"
#include "fd/reopen.h"
#include "state/files.h"
#include "os/pidsel.h"
#include "os/proc.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/ns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

/* sk_state values as sock_diag reports them (include/net/tcp_states.h). */
#define USK_ESTABLISHED 1
#define USK_CLOSE       7
#define USK_LISTEN      10

/* sk_shutdown bits. */
#define USK_RCV_SHUTDOWN  1
#define USK_SEND_SHUTDOWN 2

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

#define MAX_MESSAGES (1u << 20)
#define CMSG_ROOM    4096
/* The most fds one message carries (the kernel's SCM_MAX_FD). */
#define SCM_MAX_FD   253

/* What every message names. */
struct who {
	pid_t pid;
	int fd;
	uint32_t ino;
	struct dump_task *t;   /* the process dumped */
	uint32_t peer;         /* its peer's inode, 0: none */
};

/* files.c names the process and the fd. */
#define WHO_FMT "socket:[%u]"
#define WHO_ARGS(w) (w)->ino

/* ------------------------------------------------------------- matching */

/* The network namespaces of the tree's processes are searched for its
 * sockets and their peers (a socket is shown only in its own). */
static int unix_prepare(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && unix_diag_add_ns(ctx->tasks[i].pid, err) < 0)
			return cr_error_wrap(err, "pid %d", ctx->tasks[i].pid);
	return 0;
}

static bool unix_match(const struct fd_probe *p)
{
	struct unix_diag d;
	cr_error_t err = NULL;
	int r;

	if (!S_ISSOCK(p->st.st_mode) || strncmp(p->link, "socket:[", 8) != 0)
		return false;
	r = unix_diag_lookup((uint32_t)p->st.st_ino, &d, &err);
	if (r < 0) {
		pr_warn("%s", err->msg);
		cr_error_release(&err);
	}
	return r == 1;
}

/* ------------------------------------------------------ what is refused */

/* Is socket:[ino] held by pid or another process of the dump?  1 if so;
 * 0 with *outside the pid of a holder outside the dump (0: none holds it). */
static int held_in_dump(const struct dump_ctx *ctx, pid_t pid, uint32_t ino, pid_t *outside, cr_error_t *err)
{
	char link[32];
	int r;

	snprintf(link, sizeof(link), "socket:[%u]", ino);
	if ((r = fdshare_held_by(ctx, link, pid, outside, err)) != 0)
		return r;
	return *outside != 0 && fdshare_in_dump(ctx, *outside) ? 1 : 0;
}

/* A client whose connection is not accepted yet: its peer is the socket
 * the kernel made for it in the listener's queue, which has no inode
 * (peer 0, as for a closed peer).  1 when it is one, and the listener is
 * in the dump. */
static int check_pending(const struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d, UnixSkEntry *e,
			 cr_error_t *err)
{
	uint32_t listener;
	pid_t other;
	int r;

	if (d->type == SOCK_DGRAM || (r = unix_diag_listener_of(d->ino, &listener, err)) == 0)
		return 0;
	if (r < 0)
		return -1;
	if (d->wqueue > 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its connection to listening socket:[%u] is not accepted "
				"yet and holds data it sent (%u bytes of buffers), which cr cannot read without "
				"accepting it", WHO_ARGS(w), listener, d->wqueue);
	if ((r = held_in_dump(ctx, w->pid, listener, &other, err)) < 0)
		return -1;
	if (r == 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its connection to listening socket:[%u] is not accepted "
				"yet, and that listener is %s%.0d", WHO_ARGS(w), listener,
				other ? "in pid " : "open in no process", other);
	e->has_pending_on = true;
	e->pending_on = listener;
	return 1;
}

/* --ext-unix-sk: a peer outside the dump is reached again by its name at
 * restore (a new connection to the listener or datagram socket bound
 * there): it needs a name that resolves the same from anywhere, and, for a
 * connection, nothing queued that only the old peer could have sent. */
static int record_ext_peer(struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d, UnixSkEntry *e,
			   pid_t other, cr_error_t *err)
{
	struct unix_diag peer;
	int r = unix_diag_lookup(d->peer, &peer, err);

	if (r < 0)
		return -1;
	if (r == 0 || peer.name_len == 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its peer socket:[%u] in pid %d, outside the dump, has no "
				"name to connect to again (--ext-unix-sk takes only named peers)", WHO_ARGS(w), d->peer,
				other);
	if (peer.name[0] != '\0' && peer.name[0] != '/')
		return cr_error(err, 0, WHO_FMT ": unsupported: its peer socket:[%u] in pid %d, outside the dump, has "
				"the relative name %.*s (--ext-unix-sk takes absolute and abstract names)", WHO_ARGS(w),
				d->peer, other, (int)peer.name_len, (const char *)peer.name);
	if (d->type != SOCK_DGRAM && d->rqueue > 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: %u bytes queued from its peer socket:[%u] in pid %d, "
				"outside the dump (--ext-unix-sk makes a new connection)", WHO_ARGS(w), d->rqueue,
				d->peer, other);
	e->has_ext_peer = true;
	e->ext_peer.data = arena_memdup(&ctx->arena, peer.name, peer.name_len);
	e->ext_peer.len = peer.name_len;
	pr_info("socket:[%u]: its peer socket:[%u] in pid %d is outside the dump: restored connected to its name again "
		"(--ext-unix-sk)", w->ino, d->peer, other);
	return 0;
}

static int check_peer(struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d, UnixSkEntry *e,
		      cr_error_t *err)
{
	char link[32];
	pid_t other;
	int r;

	if (d->has_peer && d->peer == 0 && d->state == USK_ESTABLISHED)
		return check_pending(ctx, w, d, e, err) < 0 ? -1 : 0;
	if (!d->has_peer || d->peer == 0 || d->peer == d->ino)
		return 0;
	snprintf(link, sizeof(link), "socket:[%u]", d->peer);
	r = fdshare_held_by(ctx, link, w->pid, &other, err);
	if (r < 0)
		return -1;
	if (r == 1 || (other != 0 && fdshare_in_dump(ctx, other)))
		return 0;   /* restored with it, in the two processes' common ancestor */
	if (other != 0 && ctx->opts->ext_unix_sk)
		return record_ext_peer(ctx, w, d, e, other, err);
	if (other != 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its peer %s is in pid %d, outside the dump (cr dump "
				"--ext-unix-sk connects it again by the peer's name at restore)", WHO_ARGS(w), link, other);
	return 0;   /* open in no process: in flight in a queue of the dump, or refused by unix_check_tree */
}

/* A listening socket's connections not accepted yet: each client must be
 * in the dump (check_pending checks the rest from the client's side). */
static int record_pending(struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d, UnixSkEntry *e,
			  cr_error_t *err)
{
	if (d->state != USK_LISTEN || d->n_icons == 0)
		return 0;
	if (d->n_icons > UNIX_DIAG_ICONS_MAX)
		return cr_error(err, 0, WHO_FMT ": unsupported: %u connections not accepted yet (cr takes %u)",
				WHO_ARGS(w), d->n_icons, UNIX_DIAG_ICONS_MAX);
	e->pending = arena_array(&ctx->arena, uint32_t, d->n_icons);
	for (uint32_t i = 0; i < d->n_icons; i++) {
		pid_t other;
		int r;

		if (d->icons[i] == 0)
			return cr_error(err, 0, WHO_FMT ": unsupported: a connection not accepted yet whose client is "
					"closed", WHO_ARGS(w));
		if ((r = held_in_dump(ctx, w->pid, d->icons[i], &other, err)) < 0)
			return -1;
		if (r == 0)
			return cr_error(err, 0, WHO_FMT ": unsupported: a connection not accepted yet from socket:[%u], "
					"%s%.0d", WHO_ARGS(w), d->icons[i], other ? "in pid " : "open in no process",
					other);
		e->pending[e->n_pending++] = d->icons[i];
	}
	return 0;
}

/* A datagram socket connected to a socket that is not connected back can
 * only be reconnected by the peer's name. */
static int check_dgram_peer(const struct who *w, const struct unix_diag *d, cr_error_t *err)
{
	struct unix_diag peer;
	int r;

	if (d->type != SOCK_DGRAM || !d->has_peer || d->peer == 0 || d->peer == d->ino)
		return 0;
	r = unix_diag_lookup(d->peer, &peer, err);
	if (r < 0)
		return -1;
	if (r == 0 || (peer.has_peer && peer.peer == d->ino) || peer.name_len > 0)
		return 0;
	return cr_error(err, 0, WHO_FMT ": unsupported: connected to socket:[%u], which has no name and is not "
			"connected back", WHO_ARGS(w), d->peer);
}

static int check_supported(struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d,
			   UnixSkEntry *e, cr_error_t *err)
{
	if (d->type != SOCK_STREAM && d->type != SOCK_DGRAM && d->type != SOCK_SEQPACKET)
		return cr_error(err, 0, WHO_FMT ": unsupported socket type %u", WHO_ARGS(w), d->type);
	if (d->state != USK_LISTEN && d->state != USK_ESTABLISHED && d->state != USK_CLOSE)
		return cr_error(err, 0, WHO_FMT ": unsupported socket state %u", WHO_ARGS(w), d->state);
	if (check_peer(ctx, w, d, e, err) < 0)
		return -1;
	return check_dgram_peer(w, d, err);
}

/* ------------------------------------------------------------- options */

static int get_int_opt(int fd, int opt, const char *name, int *out, cr_error_t *err)
{
	socklen_t len = sizeof(*out);

	if (getsockopt(fd, SOL_SOCKET, opt, out, &len) < 0)
		return cr_error(err, errno, "getsockopt %s", name);
	return 0;
}

static int read_options(int fd, UnixSkEntry *e, cr_error_t *err)
{
	int peek_off, sndbuf, rcvbuf, passcred;

	if (get_int_opt(fd, SO_PEEK_OFF, "SO_PEEK_OFF", &peek_off, err) < 0 ||
	    get_int_opt(fd, SO_SNDBUF, "SO_SNDBUF", &sndbuf, err) < 0 ||
	    get_int_opt(fd, SO_RCVBUF, "SO_RCVBUF", &rcvbuf, err) < 0 ||
	    get_int_opt(fd, SO_PASSCRED, "SO_PASSCRED", &passcred, err) < 0)
		return -1;
	e->peek_off = peek_off;
	e->sndbuf = (uint32_t)sndbuf;
	e->rcvbuf = (uint32_t)rcvbuf;
	e->passcred = passcred != 0;
	return 0;
}

/* ---------------------------------------------------- the receive queue */

/* SO_PEEK_OFF is the socket's own: peeking from 0 changes it, so it goes
 * back to what the process had when cr is done, whatever happens. */
struct peek_guard {
	int fd;
	int saved;
};

static void peek_guard_restore(struct peek_guard *g)
{
	if (g->fd >= 0 && setsockopt(g->fd, SOL_SOCKET, SO_PEEK_OFF, &g->saved, sizeof(g->saved)) < 0)
		pr_warn("could not put SO_PEEK_OFF of a dumped socket back to %d: %s", g->saved, strerror(errno));
}

static int peek_from_start(int fd, int saved, struct peek_guard *g, cr_error_t *err)
{
	int zero = 0;

	if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return cr_error(err, errno, "SO_PEEK_OFF");
	g->fd = fd;
	g->saved = saved;
	return 0;
}

/* What an fd in flight is, for the refusal: its link ("pipe:[N]", a path). */
static void name_passed(int fd, char *what, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, what, size - 1);
	what[n > 0 ? n : 0] = '\0';
}

/* What a peek brought along besides the bytes: the sender's credentials
 * (SO_PASSCRED) and cr's copies of the fds in flight (SCM_RIGHTS), open
 * until inflight_close. */
struct inflight {
	struct ucred cred;
	int fd[SCM_MAX_FD];
	size_t n;
};

static void inflight_close(struct inflight *f)
{
	for (size_t i = 0; i < f->n; i++)
		close(f->fd[i]);
	f->n = 0;
}

/* Keeps the fds in flight in *f, or closes them.  False, with what the
 * first one is in what, when there were fds in flight and no f to keep
 * them, or more than it takes. */
static bool drop_passed_fds(struct msghdr *mh, struct inflight *f, char *what, size_t size)
{
	bool ok = true;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);

		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS && f != NULL &&
		    c->cmsg_len >= CMSG_LEN(sizeof(f->cred)))
			memcpy(&f->cred, CMSG_DATA(c), sizeof(f->cred));
		if (c->cmsg_level != SOL_SOCKET || (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
			continue;
		for (size_t i = 0; i < n; i++) {
			if (c->cmsg_type == SCM_RIGHTS && f != NULL && f->n < SCM_MAX_FD) {
				f->fd[f->n++] = fds[i];
				continue;
			}
			if (c->cmsg_type == SCM_RIGHTS && ok) {
				name_passed(fds[i], what, size);
				ok = false;
			}
			close(fds[i]);
		}
	}
	return ok;
}

/* One MSG_PEEK, with the sender's address in *from (when given): the
 * bytes peeked, -2 when nothing is queued, -1 on error. */
static ssize_t peek(const struct who *w, int fd, void *buf, size_t len, int flags, struct sockaddr_un *from,
		    socklen_t *from_len, struct inflight *f, cr_error_t *err)
{
	struct sockaddr_un sun;
	char what[PATH_MAX] = "";
	union {
		struct cmsghdr align;
		char room[CMSG_ROOM];
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = {
		.msg_name = &sun, .msg_namelen = sizeof(sun), .msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = &control, .msg_controllen = sizeof(control),
	};
	ssize_t n = recvmsg(fd, &mh, flags | MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return errno == EAGAIN ? -2 : cr_error(err, errno, "peek the receive queue");
	if (!drop_passed_fds(&mh, f, what, sizeof(what)) || (mh.msg_flags & MSG_CTRUNC)) {
		if (f != NULL)
			inflight_close(f);
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds file descriptors in flight "
				"(SCM_RIGHTS%s%s), more than cr could peek", WHO_ARGS(w), what[0] ? ": " : "", what);
	}
	if (from != NULL) {
		*from = sun;
		*from_len = mh.msg_namelen;
	}
	return n;
}

/* The queued messages, grown as they are found. */
struct messages {
	ProtobufCBinaryData *data, *from;
	int32_t *pid;          /* the senders' credentials (SO_PASSCRED) */
	uint32_t *uid, *gid;
	uint32_t *scm_count;   /* how many sockets each carries in flight */
	uint32_t *scm_ino;     /* ... all of them, by inode (0: a file) */
	UnixScmFile **files;   /* the files in flight */
	size_t n, cap, bytes, n_scm, cap_scm, n_files, cap_files;
};

/* The first n items of old (of size each) in a new array of cap. */
static void *grown(struct dump_ctx *ctx, const void *old, size_t n, size_t cap, size_t size)
{
	void *v = arena_alloc(&ctx->arena, cap * size);

	if (n)
		memcpy(v, old, n * size);
	return v;
}

static int messages_add(struct dump_ctx *ctx, struct messages *m, const struct who *w, size_t len,
			cr_error_t *err)
{
	m->bytes += len;
	if (m->bytes > FDKIND_MAX_DATA || m->n == MAX_MESSAGES)
		return cr_error(err, 0, WHO_FMT ": more than %u MiB or %u messages queued; cr keeps at most that "
				"in the image", WHO_ARGS(w), FDKIND_MAX_DATA >> 20, MAX_MESSAGES);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;

		m->data = grown(ctx, m->data, m->n, cap, sizeof(*m->data));
		m->from = grown(ctx, m->from, m->n, cap, sizeof(*m->from));
		m->pid = grown(ctx, m->pid, m->n, cap, sizeof(*m->pid));
		m->uid = grown(ctx, m->uid, m->n, cap, sizeof(*m->uid));
		m->gid = grown(ctx, m->gid, m->n, cap, sizeof(*m->gid));
		m->scm_count = grown(ctx, m->scm_count, m->n, cap, sizeof(*m->scm_count));
		m->cap = cap;
	}
	return 0;
}

/* The sun_path of a sender's address: empty for an unnamed sender. */
static ProtobufCBinaryData sender_name(struct arena *a, const struct sockaddr_un *from, socklen_t len)
{
	size_t n = len > sizeof(sa_family_t) ? len - sizeof(sa_family_t) : 0;

	return (ProtobufCBinaryData){ .data = n ? arena_memdup(a, from->sun_path, n) : NULL, .len = n };
}

/* A file in flight, into m's files. */
static UnixScmFile *add_file(struct dump_ctx *ctx, struct messages *m, const char *link, int flags, off_t pos,
			     const struct stat *st)
{
	UnixScmFile *file = arena_new(&ctx->arena, UnixScmFile);

	unix_scm_file__init(file);
	file->path = arena_strdup(&ctx->arena, link);
	file->flags = (uint32_t)flags;
	file->pos = (uint64_t)pos;
	file->ino = st->st_ino;
	file->dev = st->st_dev;
	if (m->n_files == m->cap_files) {
		size_t cap = m->cap_files ? m->cap_files * 2 : 8;

		m->files = grown(ctx, m->files, m->n_files, cap, sizeof(*m->files));
		m->cap_files = cap;
	}
	m->files[m->n_files++] = file;
	return file;
}

/* A regular file in flight, by path, flags and offset: a description no
 * process holds (its offset would be shared), reached by that path now. */
static int keep_file(struct dump_ctx *ctx, const struct who *w, int fd, const struct stat *st, struct messages *m,
		     cr_error_t *err)
{
	char link[PATH_MAX] = "";
	struct stat there;
	pid_t pid;
	int holder_fd, r, flags = fcntl(fd, F_GETFL);
	off_t pos = lseek(fd, 0, SEEK_CUR);

	name_passed(fd, link, sizeof(link));
	if (link[0] != '/' || stat(link, &there) < 0 || there.st_ino != st->st_ino || there.st_dev != st->st_dev)
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds the file %s in flight (SCM_RIGHTS), "
				"which its path no longer leads to", WHO_ARGS(w), link);
	if ((r = fdshare_description_held(ctx, fd, link, &pid, &holder_fd, err)) != 0)
		return r < 0 ? -1 : cr_error(err, 0, WHO_FMT ": unsupported: its queue holds the file %s in flight "
					     "(SCM_RIGHTS), whose description pid %d holds too (fd %d)", WHO_ARGS(w),
					     link, pid, holder_fd);
	if (flags < 0 || pos < 0)
		return cr_error(err, errno, "the file %s in flight", link);
	add_file(ctx, m, link, flags, pos, st);
	return 0;
}

static bool is_pipe(const UnixScmFile *f)
{
	return f->pipe != NULL || f->has_file_id;
}

/* Whether a pipe in flight was found before in this dump (in m, or in a
 * socket recorded already): made again twice, it would be two pipes. */
static bool pipe_seen_before(const struct dump_ctx *ctx, const struct messages *m, uint64_t ino)
{
	for (size_t i = 0; i < m->n_files; i++)
		if (is_pipe(m->files[i]) && m->files[i]->ino == ino)
			return true;
	for (size_t i = 0; i < ctx->files.n; i++) {
		const UnixSkEntry *e = ctx->files.v[i]->unix_sk;

		for (size_t k = 0; e != NULL && k < e->n_scm_files; k++)
			if (is_pipe(e->scm_files[k]) && e->scm_files[k]->ino == ino)
				return true;
	}
	return false;
}

/* Whether pid holds w's socket or its peer: it then descends from the
 * process that makes their component at restore, and is made after it. */
static int holds_socket_or_peer(const struct dump_ctx *ctx, const struct who *w, pid_t pid, cr_error_t *err)
{
	uint32_t ino[2] = { w->ino, w->peer };
	char link[32];
	pid_t other;
	int r = 0;

	for (size_t i = 0; i < 2 && r == 0 && ino[i] != 0; i++) {
		snprintf(link, sizeof(link), "socket:[%u]", ino[i]);
		r = fdshare_held_by(ctx, link, pid, &other, err);
	}
	return r;
}

#define MAX_PIPE_HOLDERS 64

/* A pipe in flight that processes of the dump hold too (its write end,
 * say, that the sender goes on writing to): a pipe entry of files.img
 * that no fd refers to, handed out at restore from the pipe made for its
 * holders (fdshare.h: the pipe's anchor).  The component of the socket
 * asks for it, where it is made: every holder of the pipe must hold this
 * socket or its peer (holds_socket_or_peer), and the description in
 * flight must be its own (the restore makes a new one). */
static int keep_held_pipe(struct dump_ctx *ctx, const struct who *w, int fd, const struct stat *st,
			  struct messages *m, const char *link, cr_error_t *err)
{
	pid_t holders[MAX_PIPE_HOLDERS], pid;
	int flags = fcntl(fd, F_GETFL), hfd, r = 0;
	size_t n;
	FileEntry *fe;
	UnixScmFile *file;

	if (fdshare_holders(ctx, link, holders, MAX_PIPE_HOLDERS, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n && i < MAX_PIPE_HOLDERS; i++) {
		if (fdshare_in_dump(ctx, holders[i]) && (r = holds_socket_or_peer(ctx, w, holders[i], err)) == 1)
			continue;
		if (r < 0)
			return -1;
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds a pipe in flight (SCM_RIGHTS: %s) that "
				"pid %d holds too, %s; cr keeps one whose holders all hold this socket or its peer",
				WHO_ARGS(w), link, holders[i], fdshare_in_dump(ctx, holders[i]) ?
				"which holds neither this socket nor its peer" : "outside the dump");
	}
	if (n > MAX_PIPE_HOLDERS)
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds a pipe in flight (SCM_RIGHTS: %s) that "
				"%zu processes hold too (cr takes %d)", WHO_ARGS(w), link, n, MAX_PIPE_HOLDERS);
	if ((r = fdshare_description_held(ctx, fd, link, &pid, &hfd, err)) != 0)
		return r < 0 ? -1 : cr_error(err, 0, WHO_FMT ": unsupported: its queue holds a pipe in flight "
					     "(SCM_RIGHTS: %s) whose very description pid %d holds too (fd %d)",
					     WHO_ARGS(w), link, pid, hfd);
	if (flags < 0)
		return cr_error(err, errno, "the pipe %s in flight", link);
	if (pipe_seen_before(ctx, m, st->st_ino))
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds a pipe in flight (SCM_RIGHTS: %s) "
				"that is in flight more than once", WHO_ARGS(w), link);
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = FILE_KIND__FILE_PIPE;
	fe->path = arena_strdup(&ctx->arena, link);
	fe->flags = (uint32_t)flags & ~(uint32_t)O_CLOEXEC;
	if (pipe_record_held_flying(ctx, fd, fe, err) < 0)
		return cr_error_wrap(err, "the pipe %s in flight", link);
	file = add_file(ctx, m, link, flags, 0, st);
	file->has_file_id = true;
	file->file_id = file_table_add(ctx, fe);
	return 0;
}

/* A pipe in flight that nothing else holds: no process (of the dump or
 * not), and its other end closed everywhere (a reader sees POLLHUP, a
 * writer POLLERR), so that the restore makes it again whole, with its
 * data, from this end alone. */
static int keep_pipe(struct dump_ctx *ctx, const struct who *w, int fd, const struct stat *st, struct messages *m,
		     cr_error_t *err)
{
	char link[64] = "";
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };
	int flags = fcntl(fd, F_GETFL), r;
	pid_t other = 0;
	UnixScmFile *file;

	name_passed(fd, link, sizeof(link));
	if ((r = fdshare_held_by(ctx, link, w->pid, &other, err)) < 0)
		return -1;
	if (r == 1 || other != 0)
		return keep_held_pipe(ctx, w, fd, st, m, link, err);
	if (flags < 0 || poll(&pfd, 1, 0) < 0)
		return cr_error(err, errno, "the pipe %s in flight", link);
	if ((flags & O_ACCMODE) == O_RDWR || !(pfd.revents & ((flags & O_ACCMODE) == O_RDONLY ? POLLHUP : POLLERR)) ||
	    pipe_seen_before(ctx, m, st->st_ino))
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds a pipe in flight (SCM_RIGHTS: %s) "
				"whose other end, or another description of it, is open elsewhere (in flight, or "
				"read and written through one description); cr keeps a pipe in flight that only "
				"one message holds", WHO_ARGS(w), link);
	file = add_file(ctx, m, link, flags, 0, st);
	file->pipe = arena_new(&ctx->arena, PipeEntry);
	pipe_entry__init(file->pipe);
	if (pipe_record_flying(ctx, fd, file->pipe, err) < 0)
		return cr_error_wrap(err, "the pipe %s in flight", link);
	return 0;
}

static int unix_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		     cr_error_t *err);

/* How deep sockets in flight carry sockets in flight, while dumped. */
#define MAX_FLIGHT_DEPTH 4
static int flight_depth;

/* A unix socket in flight that no process holds: dumped from cr's copy
 * (fd) as a file entry no fd refers to, which joins the component of the
 * socket it is queued on at restore. */
static int keep_flying(struct dump_ctx *ctx, const struct who *w, int fd, uint32_t ino, cr_error_t *err)
{
	struct fd_probe p = { .pid = getpid(), .fd = fd };
	FileEntry *fe;
	int flags = fcntl(fd, F_GETFL), r;

	for (size_t i = 0; i < ctx->files.n; i++)
		if (ctx->files.v[i]->unix_sk != NULL && ctx->files.v[i]->unix_sk->ino == ino)
			return 0;   /* in flight twice */
	if (flight_depth >= MAX_FLIGHT_DEPTH || fstat(fd, &p.st) < 0 || flags < 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: socket:[%u] in flight (SCM_RIGHTS) carries sockets in "
				"flight %d deep, or in a cycle", WHO_ARGS(w), ino, MAX_FLIGHT_DEPTH);
	snprintf(p.link, sizeof(p.link), "socket:[%u]", ino);
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = FILE_KIND__FILE_UNIX_SOCKET;
	fe->path = arena_strdup(&ctx->arena, p.link);
	fe->flags = (uint32_t)flags & ~(uint32_t)O_CLOEXEC;
	flight_depth++;
	r = unix_dump(ctx, w->t, &p, fe, err);
	flight_depth--;
	if (r < 0)
		return cr_error_wrap(err, WHO_FMT ": socket:[%u] in flight (SCM_RIGHTS) in its queue", WHO_ARGS(w), ino);
	file_table_add(ctx, fe);
	return 0;
}

/* A unix socket in flight is held by a process of the dump (the restore
 * sends its description again: it joins the socket's component), or by
 * none (keep_flying). */
static int keep_socket(struct dump_ctx *ctx, const struct who *w, int fd, uint32_t ino, cr_error_t *err)
{
	struct unix_diag d;
	pid_t other;
	int r = unix_diag_lookup(ino, &d, err);

	if (r < 0)
		return -1;
	if (r == 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds socket:[%u] in flight "
				"(SCM_RIGHTS), which is not a unix socket", WHO_ARGS(w), ino);
	if ((r = held_in_dump(ctx, w->pid, ino, &other, err)) < 0)
		return -1;
	if (r == 0 && other == 0)
		return keep_flying(ctx, w, fd, ino, err);
	if (r == 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds the unix socket socket:[%u] in "
				"flight (SCM_RIGHTS), which is held outside the dump, by pid %d", WHO_ARGS(w), ino, other);
	return 0;
}

static int keep_one(struct dump_ctx *ctx, const struct who *w, int fd, struct messages *m, cr_error_t *err)
{
	char what[PATH_MAX] = "";
	struct stat st;
	uint32_t ino = 0;

	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "fstat an fd in flight");
	if (S_ISSOCK(st.st_mode) && keep_socket(ctx, w, fd, (uint32_t)st.st_ino, err) < 0)
		return -1;
	name_passed(fd, what, sizeof(what));
	if (S_ISSOCK(st.st_mode))
		ino = (uint32_t)st.st_ino;
	else if (S_ISFIFO(st.st_mode) && strncmp(what, "pipe:[", 6) == 0) {
		if (keep_pipe(ctx, w, fd, &st, m, err) < 0)
			return -1;
	} else if (!S_ISREG(st.st_mode)) {
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds file descriptors in flight "
				"(SCM_RIGHTS: %s); cr keeps unix sockets of the dump, regular files and pipes in flight",
				WHO_ARGS(w), what);
	} else if (keep_file(ctx, w, fd, &st, m, err) < 0)
		return -1;
	if (m->n_scm == m->cap_scm) {
		size_t cap = m->cap_scm ? m->cap_scm * 2 : 16;

		m->scm_ino = grown(ctx, m->scm_ino, m->n_scm, cap, sizeof(*m->scm_ino));
		m->cap_scm = cap;
	}
	m->scm_ino[m->n_scm++] = ino;   /* 0: the next file */
	return 0;
}

/* What the next message carries in flight, into m; closes cr's copies. */
static int keep_in_flight(struct dump_ctx *ctx, const struct who *w, struct inflight *f, struct messages *m,
			  cr_error_t *err)
{
	int r = 0;

	m->scm_count[m->n] = (uint32_t)f->n;
	for (size_t i = 0; i < f->n && r == 0; i++)
		r = keep_one(ctx, w, f->fd[i], m, err);
	inflight_close(f);
	return r;
}

/* The next message: its length first (MSG_TRUNC on an empty buffer moves
 * the peek offset by nothing), then its bytes.  1, or 0 at the end. */
static int peek_message(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
			struct messages *m, cr_error_t *err)
{
	struct sockaddr_un from;
	socklen_t from_len = 0;
	struct inflight f = { .cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 } }, again = { 0 };
	ssize_t len = peek(w, fd, NULL, 0, MSG_TRUNC, &from, &from_len, &f, err), n;
	uint8_t *buf;

	if (len == -2 || (len == 0 && d->type == SOCK_SEQPACKET && (d->shutdown & USK_RCV_SHUTDOWN) &&
			  m->bytes == d->rqueue)) {
		inflight_close(&f);
		return 0;   /* the end (a shut-down seqpacket socket reads 0 there) */
	}
	if (len < 0 || messages_add(ctx, m, w, (size_t)len, err) < 0) {
		inflight_close(&f);
		return -1;
	}
	buf = arena_alloc(&ctx->arena, (size_t)len);
	if (len > 0 && (n = peek(w, fd, buf, (size_t)len, 0, NULL, NULL, &again, err)) != len) {
		inflight_close(&f);
		inflight_close(&again);
		return n == -1 ? -1 : cr_error(err, 0, WHO_FMT ": a %zd-byte message peeked as %zd bytes",
					       WHO_ARGS(w), len, n);
	}
	inflight_close(&again);
	m->data[m->n] = (ProtobufCBinaryData){ .data = buf, .len = (size_t)len };
	m->from[m->n] = sender_name(&ctx->arena, &from, from_len);
	m->pid[m->n] = f.cred.pid;
	m->uid[m->n] = f.cred.uid;
	m->gid[m->n] = f.cred.gid;
	if (keep_in_flight(ctx, w, &f, m, err) < 0)
		return -1;
	m->n++;
	return 1;
}

/* The restore sends each message with its sender's credentials again
 * (SCM_CREDENTIALS; send_one). */
static int check_creds(const struct who *w, const struct messages *m, cr_error_t *err)
{
	if (m->n > 0 && !proc_shares_ns(w->pid, "pid"))
		return cr_error(err, 0, WHO_FMT ": unsupported: messages queued with their senders' credentials "
				"(SO_PASSCRED) in a pid namespace other than cr's", WHO_ARGS(w));
	for (size_t i = 0; i < m->n; i++)
		if (m->uid[i] == (uint32_t)-1 || m->pid[i] <= 0)
			return cr_error(err, 0, WHO_FMT ": unsupported: queued message %zu has no sender pid in its "
					"credentials, and SO_PASSCRED is on", WHO_ARGS(w), i + 1);
	return 0;
}

/* What m found, into e. */
static void store_messages(UnixSkEntry *e, const struct messages *m)
{
	e->queue = m->data;
	e->n_queue = m->n;
	if (m->n_scm > 0) {
		e->scm_count = m->scm_count;
		e->n_scm_count = m->n;
		e->scm_ino = m->scm_ino;
		e->n_scm_ino = m->n_scm;
		e->scm_files = m->files;
		e->n_scm_files = m->n_files;
	}
	if (e->passcred) {
		e->cred_pid = m->pid;
		e->cred_uid = m->uid;
		e->cred_gid = m->gid;
		e->n_cred_pid = e->n_cred_uid = e->n_cred_gid = m->n;
	}
	if (e->type == SOCK_DGRAM) {
		e->queue_from = m->from;
		e->n_queue_from = m->n;
	}
}

static int peek_messages(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
			 UnixSkEntry *e, cr_error_t *err)
{
	struct messages m = { 0 };
	int r;

	while ((r = peek_message(ctx, w, fd, d, &m, err)) == 1)
		;
	if (r < 0 || (e->passcred && check_creds(w, &m, err) < 0))
		return -1;
	store_messages(e, &m);
	return 0;
}

/* One stretch of a stream queue, with its senders' credentials and the
 * fds in flight that came with it (keep_in_flight closes cr's copies). */
static int add_chunk(struct dump_ctx *ctx, const struct who *w, struct messages *m, uint8_t *data, size_t len,
		     struct inflight *f, cr_error_t *err)
{
	if (messages_add(ctx, m, w, len, err) < 0) {
		inflight_close(f);
		return -1;
	}
	m->data[m->n] = (ProtobufCBinaryData){ .data = data, .len = len };
	m->from[m->n] = (ProtobufCBinaryData){ .data = NULL, .len = 0 };
	m->pid[m->n] = f->cred.pid;
	m->uid[m->n] = f->cred.uid;
	m->gid[m->n] = f->cred.gid;
	if (keep_in_flight(ctx, w, f, m, err) < 0)
		return -1;
	m->n++;
	return 0;
}

/* The next stretch of a stream queue: what one peek returns, which stops
 * where the senders' credentials change (SO_PASSCRED) and after the first
 * write that carries fds in flight (SCM_RIGHTS), which come with it.  Its
 * length, 0 at the end, -1 on error. */
static ssize_t peek_chunk(struct dump_ctx *ctx, const struct who *w, int fd, uint8_t *buf, size_t got, size_t want,
			  struct messages *m, cr_error_t *err)
{
	struct inflight f = { .cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 } };
	ssize_t n = peek(w, fd, buf + got, want - got, 0, NULL, NULL, &f, err);

	if (n <= 0) {
		inflight_close(&f);
		return n == -1 ? -1 : 0;
	}
	return add_chunk(ctx, w, m, buf + got, (size_t)n, &f, err) < 0 ? -1 : n;
}

/* What the kernel charges (the truesize of its skbs: SIOCOUTQ) for len
 * bytes written at once by a unix stream socket whose send buffer is that
 * of s[0]: written on the scratch pair s and read back, a piece at a time
 * when the buffer does not take them all (the kernel cuts a long write in
 * the same pieces either way). */
static int charged_for(const int s[2], const uint8_t *data, size_t len, uint64_t *sum, cr_error_t *err)
{
	static uint8_t sink[65536];
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(s[0], data + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
		int out = 0;

		if (n < 0 && errno != EAGAIN)
			return cr_error(err, errno, "write on a scratch socket pair");
		if (ioctl(s[0], SIOCOUTQ, &out) < 0)
			return cr_error(err, errno, "SIOCOUTQ of a scratch socket pair");
		if (n < 0 && out == 0)
			return cr_error(err, 0, "a scratch socket pair takes no write");
		*sum += (uint64_t)out;
		while (recv(s[1], sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		done += n > 0 ? (size_t)n : 0;
	}
	return 0;
}

/* The fds of a write on a stream socket go to the read that takes its
 * first byte; but a peek returns them with every byte queued before that
 * write, back to the previous write with fds (or other credentials), so
 * where the write starts is not seen.  The restore writes each stretch
 * peeked at once, its fds on its first byte: right only when each stretch
 * was one write.  The peer tells: what the kernel charges it for its
 * writes still queued (sk_wmem_alloc, one skb truesize each) is what the
 * stretches cost written again one by one, and more when any was several
 * writes (each costs an sk_buff more).  Not needed when each stretch with
 * fds is one byte (fds_on_single_bytes). */
static int check_writes(const struct who *w, const struct unix_diag *d, const struct messages *m, cr_error_t *err)
{
	cleanup_close int s0 = -1;
	cleanup_close int s1 = -1;
	struct unix_diag peer;
	uint64_t sum = 0;
	int s[2], half, r = d->has_peer && d->peer != 0 ? unix_diag_lookup(d->peer, &peer, err) : 0;

	if (r < 0)
		return -1;
	if (r == 0 || peer.sndbuf == 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: fds in flight (SCM_RIGHTS) queued on a stream socket "
				"whose peer is closed: cr needs the peer to tell where the writes that carried them "
				"start", WHO_ARGS(w));
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
		return cr_error(err, errno, "socketpair");
	s0 = s[0];
	s1 = s[1];
	half = (int)(peer.sndbuf / 2);
	if (setsockopt(s0, SOL_SOCKET, SO_SNDBUFFORCE, &half, sizeof(half)) < 0)
		return cr_error(err, errno, "SO_SNDBUFFORCE %d on a scratch socket pair", half);
	for (size_t i = 0; i < m->n; i++)
		if (charged_for(s, m->data[i].data, m->data[i].len, &sum, err) < 0)
			return -1;
	if (sum != peer.wqueue)
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds file descriptors in flight (SCM_RIGHTS) "
				"on a stream socket, among more writes than the %zu stretches a peek tells apart, so "
				"cr cannot tell where a write that carried fds starts (its peer socket:[%u] is "
				"charged %u bytes for the writes queued, %llu for %zu writes)", WHO_ARGS(w), m->n,
				d->peer, peer.wqueue, (unsigned long long)sum, m->n);
	return 0;
}

/* Whether every stretch with fds in flight is one byte: one write then
 * (a write queues at least a byte), as with the one-byte messages most
 * programs pass fds with (python's multiprocessing send_handle, say). */
static bool fds_on_single_bytes(const struct messages *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->scm_count[i] > 0 && m->data[i].len > 1)
			return false;
	return true;
}

/* Exactly the queued bytes: a peek past the end would take the socket's
 * pending error (sock_error()) on the way.  One item, or stretches with
 * their senders' credentials (SO_PASSCRED) or the fds in flight that the
 * read of their first byte takes (check_writes). */
static int peek_stream(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
		       UnixSkEntry *e, cr_error_t *err)
{
	size_t want = d->rqueue, got = 0;
	struct messages m = { 0 };
	uint8_t *buf;
	ssize_t n = 0;

	if (want == 0)
		return 0;
	if (want > FDKIND_MAX_DATA)
		return cr_error(err, 0, WHO_FMT ": %zu bytes queued; cr keeps at most %u MiB in the image",
				WHO_ARGS(w), want, FDKIND_MAX_DATA >> 20);
	buf = arena_alloc(&ctx->arena, want);
	while (got < want && (n = peek_chunk(ctx, w, fd, buf, got, want, &m, err)) > 0)
		got += (size_t)n;
	if (n == -1)
		return -1;
	if (got != want)
		return cr_error(err, 0, WHO_FMT ": peeked %zu of its %zu queued bytes (out-of-band data?)",
				WHO_ARGS(w), got, want);
	if ((m.n_scm > 0 && !fds_on_single_bytes(&m) && check_writes(w, d, &m, err) < 0) ||
	    (e->passcred && check_creds(w, &m, err) < 0))
		return -1;
	if (e->passcred || m.n_scm > 0) {
		store_messages(e, &m);
		return 0;
	}
	e->queue = arena_new(&ctx->arena, ProtobufCBinaryData);
	e->queue[0].data = buf;
	e->queue[0].len = got;
	e->n_queue = 1;
	return 0;
}

/* poll() tells, without taking anything, whether a socket has a pending
 * error (every receive would take it: it is refused) and whether its
 * queue holds anything. */
static int poll_socket(const struct who *w, int fd, short *revents, cr_error_t *err)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (poll(&pfd, 1, 0) < 0)
		return cr_error(err, errno, "poll");
	if (pfd.revents & POLLERR)
		return cr_error(err, 0, WHO_FMT ": unsupported: a pending socket error (SO_ERROR), which cr "
				"cannot read without taking it from the process", WHO_ARGS(w));
	*revents = pfd.revents;
	return 0;
}

static int read_queue(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
		      UnixSkEntry *e, cr_error_t *err)
{
	__attribute__((cleanup(peek_guard_restore))) struct peek_guard guard = { .fd = -1 };
	short revents = 0;

	if (poll_socket(w, fd, &revents, err) < 0)
		return -1;
	if (!(revents & POLLIN) || d->state == USK_LISTEN)
		return 0;
	if (peek_from_start(fd, e->peek_off, &guard, err) < 0)
		return -1;
	if (d->type == SOCK_STREAM)
		return peek_stream(ctx, w, fd, d, e, err);
	return peek_messages(ctx, w, fd, d, e, err);
}

/* ----------------------------------------------------------- bound name */

/* An absolute name resolves from the process's root: one other than cr's
 * (chroot) is recorded, and the restore enters it for the name. */
static int record_root(struct dump_ctx *ctx, pid_t pid, UnixSkEntry *e, cr_error_t *err)
{
	char path[64], root[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	n = readlink(path, root, sizeof(root) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink %s", path);
	root[n] = '\0';
	if (strcmp(root, "/") != 0)
		e->bind_root = arena_strdup(&ctx->arena, root);
	return 0;
}

/* A name whose socket file is gone is bound again at restore and its file
 * unlinked (unix_path.h): whatever holds the path now is moved aside for
 * that time, and missing directories made, below the nearest one there.
 * path is the name as the process reaches it (through /proc). */
static int check_name_free(const char *path, const char *name, const struct unix_diag *d, cr_error_t *err)
{
	cr_error_t why = NULL;

	if (unix_path_check_dirs(path, &why) == 0)
		return 0;
	cr_error(err, 0, "socket:[%u] is bound to %s, whose directory cannot be made again: %s (unsupported)",
		 d->ino, name, why->msg);
	cr_error_release(&why);
	return -1;
}

static void keep_file_attrs(UnixSkEntry *e, const struct stat *st)
{
	e->has_name_dev = e->has_name_mode = e->has_name_uid = e->has_name_gid = true;
	e->name_dev = st->st_dev;
	e->name_mode = st->st_mode & 07777;
	e->name_uid = st->st_uid;
	e->name_gid = st->st_gid;
}

/* The socket file of a name bound at path, gone from there, under another
 * name in the same directory (renamed since the bind): recorded with its
 * mode and owner, to be renamed there again at restore. */
static void find_renamed(struct dump_ctx *ctx, const char *path, const struct unix_diag *d, UnixSkEntry *e)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX + 64], other[PATH_MAX + 320];
	cleanup_closedir DIR *dh = NULL;
	struct dirent *de;
	struct stat st;

	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	dh = opendir(dir);
	while (dh != NULL && (de = readdir(dh)) != NULL) {
		if (de->d_ino != d->vfs_ino || (size_t)snprintf(other, sizeof(other), "%s/%s", dir, de->d_name) >=
		    sizeof(other))
			continue;
		if (lstat(other, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_ino != d->vfs_ino)
			continue;
		e->renamed_to = arena_strdup(&ctx->arena, de->d_name);
		keep_file_attrs(e, &st);
		pr_info("socket:[%u]: bound to %s, its file renamed to %s since: renamed there again at restore",
			d->ino, path, de->d_name);
		return;
	}
}

static bool same_dir(const char *a, const char *b)
{
	char da[PATH_MAX + 64], db[PATH_MAX + 64];
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	struct stat x, y;

	if (sa == NULL || sb == NULL)
		return false;
	snprintf(da, sizeof(da), "%.*s", sa == a ? 1 : (int)(sa - a), a);
	snprintf(db, sizeof(db), "%.*s", sb == b ? 1 : (int)(sb - b), b);
	return stat(da, &x) == 0 && stat(db, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}


/* The socket file of a name bound at path (through /proc), not there any
 * more: the kernel says where it is (SIOCUNIXFILE).  Unlinked: bound again
 * and unlinked at restore.  Renamed in the same directory: renamed_to.
 * Moved elsewhere, or its directory renamed: moved_to, from the root the
 * restore binds in.  A kernel that cannot tell: the directory is searched. */
static int find_moved(struct dump_ctx *ctx, pid_t pid, int sk, const char *path, const struct unix_diag *d,
		      UnixSkEntry *e, cr_error_t *err)
{
	char now[PATH_MAX];
	const char *rel = now, *base;
	size_t root_len = e->bind_root ? strlen(e->bind_root) : 0;
	struct stat st;
	int r = unix_path_now(sk, now, sizeof(now));

	if (r < 0) {
		pr_debug("socket:[%u]: SIOCUNIXFILE: %s; its directory is searched", d->ino, strerror(errno));
		find_renamed(ctx, path, d, e);
		return 0;
	}
	if (r == 0)
		return 0;   /* unlinked */
	if (!proc_shares_ns(pid, "mnt")) {   /* now is a path in cr's mounts */
		find_renamed(ctx, path, d, e);
		if (e->renamed_to != NULL)
			return 0;
		return cr_error(err, 0, "socket:[%u]: its file was moved to another directory since the bind (%s, as cr "
				"sees it), in a mount namespace other than cr's: unsupported", d->ino, now);
	}
	if (stat(now, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_ino != d->vfs_ino)
		return cr_error(err, 0, "socket:[%u]: its file moved to %s, which cr cannot reach: unsupported",
				d->ino, now);
	if (same_dir(now, path)) {
		base = strrchr(now, '/') + 1;
		e->renamed_to = arena_strdup(&ctx->arena, base);
		keep_file_attrs(e, &st);
		pr_info("socket:[%u]: its file renamed to %s since the bind: renamed there again at restore", d->ino, base);
		return 0;
	}
	if (root_len > 0) {
		if (strncmp(now, e->bind_root, root_len) != 0 || now[root_len] != '/')
			return cr_error(err, 0, "socket:[%u]: its file moved out of its root: unsupported (%s, root %s)",
					d->ino, now, e->bind_root);
		rel = now + root_len;
	}
	e->moved_to = arena_strdup(&ctx->arena, rel);
	keep_file_attrs(e, &st);
	pr_info("socket:[%u]: its file moved to %s since the bind: moved there again at restore", d->ino, rel);
	return 0;
}

/* The socket file of a path name, seen from the process: through its root
 * (absolute names) or its cwd (relative ones, whose cwd is recorded). */
static int name_on_disk(struct dump_ctx *ctx, pid_t pid, int sk, const char *name, const struct unix_diag *d,
			UnixSkEntry *e, cr_error_t *err)
{
	char path[PATH_MAX + 64], cwd[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (name[0] == '/') {
		if (record_root(ctx, pid, e, err) < 0)
			return -1;
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, name);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		n = readlink(path, cwd, sizeof(cwd) - 1);
		if (n < 0)
			return cr_error(err, errno, "readlink %s", path);
		cwd[n] = '\0';
		if (n > 10 && strcmp(cwd + n - 10, " (deleted)") == 0)
			return cr_error(err, 0, "socket:[%u] is bound to the relative name %s, and its process's cwd %s, "
					"where the restore would bind it, is deleted (unsupported)", d->ino, name, cwd);
		e->bind_dir = arena_strdup(&ctx->arena, cwd);
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", pid, name);
	}
	if (!d->has_vfs)
		return 0;   /* no socket file known */
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || st.st_ino != d->vfs_ino) {
		if (find_moved(ctx, pid, sk, path, d, e, err) < 0)
			return -1;
		return check_name_free(path, name, d, err);   /* unlinked, renamed or replaced since it was bound */
	}
	e->has_name_on_disk = e->name_on_disk = true;
	keep_file_attrs(e, &st);
	return 0;
}

static int record_name(struct dump_ctx *ctx, pid_t pid, int sk, const struct unix_diag *d, UnixSkEntry *e,
		       cr_error_t *err)
{
	char name[sizeof(d->name) + 1] = "";

	if (d->name_len == 0)
		return 0;
	e->has_name = true;
	e->name.data = arena_memdup(&ctx->arena, d->name, d->name_len);
	e->name.len = d->name_len;
	if (d->name[0] == '\0')
		return 0;   /* abstract */
	if (d->has_vfs) {
		e->has_name_ino = true;
		e->name_ino = d->vfs_ino;
	}
	memcpy(name, d->name, d->name_len);
	return name_on_disk(ctx, pid, sk, name, d, e, err);
}

/* ------------------------------------------------ peer credentials (dump) */

#define MAX_PEER_GROUPS 4096

static void keep_groups(struct dump_ctx *ctx, UnixPeerCred *c, const uint32_t *groups, size_t n)
{
	c->groups = arena_array(&ctx->arena, uint32_t, n + 1);
	memcpy(c->groups, groups, n * sizeof(*groups));
	c->n_groups = n;
}

/* SO_PEERCRED and SO_PEERGROUPS of fd, as the kernel recorded them when
 * the connection was made (or listen() was called). */
static int read_peer_cred(struct dump_ctx *ctx, int fd, UnixPeerCred *c, cr_error_t *err)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	cleanup_free uint32_t *groups = xcalloc(MAX_PEER_GROUPS, sizeof(*groups));

	unix_peer_cred__init(c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return cr_error(err, errno, "getsockopt SO_PEERCRED");
	c->pid = uc.pid;
	c->uid = uc.uid;
	c->gid = uc.gid;
	len = MAX_PEER_GROUPS * sizeof(uint32_t);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0 && errno != ENODATA)
		return cr_error(err, errno, "getsockopt SO_PEERGROUPS");
	else
		keep_groups(ctx, c, groups, len / sizeof(uint32_t));
	return 0;
}

/* The numbers of the line "key" of /proc/pid/status. */
static int status_ids(const char *key, FILE *f, uint32_t *out, size_t max, size_t *n)
{
	char line[4096];
	size_t klen = strlen(key);

	*n = 0;
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line + klen, *end;

		if (strncmp(line, key, klen) != 0)
			continue;
		for (unsigned long v = strtoul(p, &end, 10); end != p && *n < max; v = strtoul(p, &end, 10)) {
			out[(*n)++] = (uint32_t)v;
			p = end;
		}
		return 0;
	}
	return -1;
}

/* A client whose connection is not accepted yet: the accepted end will
 * report whoever called connect(), which the kernel shows to no one before
 * accept; cr takes the process that holds the client (its pid and
 * effective ids now). */
static int read_connector(struct dump_ctx *ctx, const struct who *w, UnixPeerCred *c, cr_error_t *err)
{
	char path[64];
	uint32_t ids[4];
	size_t n_uid, n_gid, n_groups;
	cleanup_fclose FILE *f = NULL;
	cleanup_free uint32_t *groups = xcalloc(MAX_PEER_GROUPS, sizeof(*groups));

	unix_peer_cred__init(c);
	snprintf(path, sizeof(path), "/proc/%d/status", w->pid);
	if ((f = fopen(path, "re")) == NULL)
		return cr_error(err, errno, "open %s", path);
	c->pid = w->pid;
	if (status_ids("Uid:", f, ids, 4, &n_uid) < 0 || n_uid < 2)
		return cr_error(err, 0, "%s: no Uid line", path);
	c->uid = ids[1];
	if (status_ids("Gid:", f, ids, 4, &n_gid) < 0 || n_gid < 2)
		return cr_error(err, 0, "%s: no Gid line", path);
	c->gid = ids[1];
	if (status_ids("Groups:", f, groups, MAX_PEER_GROUPS, &n_groups) < 0)
		return cr_error(err, 0, "%s: no Groups line", path);
	keep_groups(ctx, c, groups, n_groups);
	return 0;
}

/* Who made the connection (socketpair, connect, listen): the restore makes
 * it again with the same pid and credentials, so the peer reads the same
 * SO_PEERCRED. */
static int record_peer_cred(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
			    UnixSkEntry *e, cr_error_t *err)
{
	bool connected = d->state == USK_LISTEN || (d->state == USK_ESTABLISHED && d->type != SOCK_DGRAM) ||
			 (d->has_peer && d->peer != 0 && d->type == SOCK_DGRAM);
	UnixPeerCred *c;

	if (!connected || e->has_ext_peer)
		return 0;
	c = arena_new(&ctx->arena, UnixPeerCred);
	if (read_peer_cred(ctx, fd, c, err) < 0)
		return cr_error_wrap(err, WHO_FMT, WHO_ARGS(w));
	if (c->pid == 0 && d->type == SOCK_DGRAM && d->state != USK_LISTEN)
		return 0;   /* connect() on a datagram socket records no one */
	if (c->pid <= 0)
		return 0;
	e->peer_cred = c;
	if (!e->has_pending_on)
		return 0;
	e->connector = arena_new(&ctx->arena, UnixPeerCred);
	return read_connector(ctx, w, e->connector, err) < 0 ? cr_error_wrap(err, WHO_FMT, WHO_ARGS(w)) : 0;
}

/* ------------------------------------------------------------------ dump */

static void fill_from_diag(const struct unix_diag *d, UnixSkEntry *e)
{
	e->ino = d->ino;
	e->type = d->type;
	e->state = d->state;
	e->shutdown = d->shutdown;
	if (d->has_peer) {
		e->has_peer = true;
		e->peer = d->peer;
	}
	if (d->state == USK_LISTEN) {
		e->has_backlog = true;
		e->backlog = d->wqueue;
	}
}

static int unix_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		     cr_error_t *err)
{
	struct who w = { .pid = t->pid, .fd = p->fd, .ino = (uint32_t)p->st.st_ino, .t = t };
	UnixSkEntry *e = arena_new(&ctx->arena, UnixSkEntry);
	cleanup_close int dup = -1;
	struct unix_diag d;
	int r = unix_diag_lookup(w.ino, &d, err);

	if (r <= 0)
		return r < 0 ? -1 : cr_error(err, 0, WHO_FMT ": sock_diag no longer knows it", WHO_ARGS(&w));
	unix_sk_entry__init(e);
	fill_from_diag(&d, e);
	w.peer = d.has_peer ? d.peer : 0;
	if (check_supported(ctx, &w, &d, e, err) < 0 || fdshare_refuse_outside(ctx, t->pid, p, "unix socket", err) < 0 ||
	    record_pending(ctx, &w, &d, e, err) < 0)
		return -1;
	dup = fdkind_steal_fd(p->pid, p->fd, err);   /* cr itself, for a socket in flight */
	if (dup < 0 || read_options(dup, e, err) < 0 || record_peer_cred(ctx, &w, dup, &d, e, err) < 0)
		return -1;
	if (read_queue(ctx, &w, dup, &d, e, err) < 0)
		return -1;
	if (record_name(ctx, t->pid, dup, &d, e, err) < 0)
		return cr_error_wrap(err, WHO_FMT, WHO_ARGS(&w));
	fe->unix_sk = e;
	return 0;
}

/* ============================================================== restore */

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct usk {
	const FileEntry *fe;
	const UnixSkEntry *e;
	int fd;
	int stand_in;        /* plays a closed peer until the queue is written */
	struct usk *mate;    /* created connected to this one */
	/* Bound to a path whose file was gone at dump: its file is unlinked
	 * (and the path put back as it was) once nothing in the component
	 * connects or sends to it by name. */
	struct unix_path_undo undo;
	unsigned bound_seq;   /* the order of those binds: undone last first */
	/* Bound to a path on a mount the restore made again (a tmpfs of a
	 * mount namespace): its socket file there is a new inode. */
	bool remade;
};

struct component {
	struct usk *v;
	size_t n;
	struct restore_task *t;   /* the process that makes it */
	const struct restore_ctx *ctx;
};

static int drop_names(struct component *c, bool done, cr_error_t *err);
static void add_cmsg(struct msghdr *mh, struct cmsghdr **c, int type, const void *data, size_t len);

static void component_free(struct component *c)
{
	(void)drop_names(c, false, NULL);   /* a restore that failed half way */
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].fd >= 0)
			close(c->v[i].fd);
		if (c->v[i].stand_in >= 0)
			close(c->v[i].stand_in);
	}
	free(c->v);
}

/* ----------------------------------------------------------- validation */

static bool name_ok(const ProtobufCBinaryData *name)
{
	return name->len > 0 && name->len <= SUN_PATH_MAX;
}

static bool is_path(const ProtobufCBinaryData *name);
static const char *name_str(const ProtobufCBinaryData *name, char out[SUN_PATH_MAX + 2]);

/* The path a socket bound to, as its process saw it (absolute); false
 * for an abstract name or none. */
static bool path_as_seen(const UnixSkEntry *e, char *out, size_t size)
{
	char name[SUN_PATH_MAX + 2];

	if (!e->has_name || !is_path(&e->name) || (e->name.data[0] != '/' && e->bind_dir == NULL))
		return false;
	name_str(&e->name, name);
	if (name[0] == '/')
		snprintf(out, size, "%s%s", e->bind_root ? e->bind_root : "", name);
	else
		snprintf(out, size, "%s/%s", e->bind_dir, name);
	return true;
}

/* The path a renamed or moved socket file had at dump: renamed_to in the
 * directory of the name (path, as bound), or moved_to.  root: the root
 * moved_to is seen from (NULL: the current one). */
static void final_path(const UnixSkEntry *e, const char *path, const char *root, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');

	if (e->moved_to != NULL)
		snprintf(out, size, "%s%s", root ? root : "", e->moved_to);
	else
		snprintf(out, size, "%.*s%s", slash ? (int)(slash - path + 1) : 0, path, e->renamed_to);
}

static bool plain_name(const char *s, size_t len)
{
	return len > 0 && !(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.');
}

/* An absolute path of plain names: no ".", "..", or empty component. */
static bool plain_path(const char *p)
{
	if (p[0] != '/')
		return false;
	while (*p == '/') {
		size_t len = strcspn(p + 1, "/");

		if (!plain_name(p + 1, len))
			return false;
		p += 1 + len;
	}
	return *p == '\0';
}

static bool final_ok(const UnixSkEntry *e)
{
	if (!e->has_name_dev || !e->has_name_uid || !e->has_name_gid || (e->renamed_to != NULL && e->moved_to != NULL))
		return false;
	if (e->moved_to != NULL)
		return plain_path(e->moved_to);
	return strchr(e->renamed_to, '/') == NULL && plain_name(e->renamed_to, strlen(e->renamed_to));
}

/* Where a renamed or moved socket file goes back at the end of the
 * restore: nothing, or the dumped socket's own file (left by the dumped
 * process), in a directory that is there. */
static int check_renamed_there(const UnixSkEntry *e, const char *path, cr_error_t *err)
{
	char to[2 * PATH_MAX + SUN_PATH_MAX + 2], *slash;
	struct stat st;

	if (e->renamed_to == NULL && e->moved_to == NULL)
		return 0;
	if (!final_ok(e))
		return cr_error(err, 0, "socket:[%u]: a bad renamed or moved name", e->ino);
	final_path(e, path, e->bind_root, to, sizeof(to));
	if (lstat(to, &st) < 0) {
		if (errno != ENOENT)
			return cr_error(err, errno, "stat %s", to);
		/* The file goes into that directory as it was: one the restore
		 * made would keep root's owner and mode. */
		slash = strrchr(to, '/');
		if (slash == NULL || slash == to)
			return 0;
		*slash = '\0';
		if (stat(to, &st) < 0 || !S_ISDIR(st.st_mode))
			return cr_error(err, 0, "socket:[%u]: its file was %s within %s, which is gone; make that "
					"directory as it was to restore it", e->ino, e->moved_to ? "moved" : "renamed", to);
		return 0;
	}
	if (S_ISSOCK(st.st_mode) && st.st_ino == e->name_ino && st.st_dev == e->name_dev)
		return 0;
	return cr_error(err, 0, "socket:[%u]: %s exists and is not the socket file of the dump; remove it to restore "
			"the socket whose file was %s there", e->ino, to, e->moved_to ? "moved" : "renamed");
}

/* What bind_name will find at the path of a socket that bound it, before
 * any process exists: nothing but the dumped socket's own file, in a
 * directory.  In a mount namespace of the dump, where cr sees that path
 * (ns.h), unless it lies on a mount the restore makes. */
static int check_path_there(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const UnixSkEntry *e = fe->unix_sk;
	char name[SUN_PATH_MAX + 2], as_seen[PATH_MAX + SUN_PATH_MAX + 2], path[PATH_MAX + SUN_PATH_MAX + 2];
	struct stat st;

	if (!e->has_name_ino || !path_as_seen(e, as_seen, sizeof(as_seen)) ||
	    ns_path_view(ctx, fe->mnt_ns, as_seen, path, sizeof(path)) == 0)
		return 0;
	name_str(&e->name, name);
	if (!e->name_on_disk) {   /* moved aside, directories made: bind_name */
		if (unix_path_check_dirs(path, err) < 0)
			return cr_error_wrap(err, "socket:[%u] is bound to %s", e->ino, name);
		return check_renamed_there(e, path, err);
	}
	if (lstat(path, &st) == 0) {
		if (S_ISSOCK(st.st_mode) && st.st_ino == e->name_ino && st.st_dev == e->name_dev)
			return 0;
		return cr_error(err, 0, "socket:[%u]: %s exists and is not the socket file of the dump; remove it to "
				"restore the socket bound there", e->ino, path);
	}
	*strrchr(path, '/') = '\0';
	if (stat(path[0] ? path : "/", &st) < 0 || !S_ISDIR(st.st_mode))
		return cr_error(err, errno, "socket:[%u] is bound to %s, whose directory %s is gone", e->ino, name,
				path);
	return 0;
}

static bool scm_ok(const UnixSkEntry *e)
{
	size_t sum = 0, files = 0;

	for (size_t i = 0; i < e->n_scm_ino; i++)
		files += e->scm_ino[i] == 0;
	if (files != e->n_scm_files)
		return false;

	if (e->n_scm_count != e->n_queue)
		return false;
	for (size_t i = 0; i < e->n_scm_count; i++) {
		if (e->scm_count[i] > SCM_MAX_FD)
			return false;
		sum += e->scm_count[i];
	}
	return sum == e->n_scm_ino;
}

/* A pipe in flight that processes hold too names a pipe entry of the
 * same pipe, whose data fits it. */
static bool held_pipe_ok(const struct restore_ctx *ctx, const UnixScmFile *f)
{
	const FileEntry *fe = f->file_id != 0 ? restore_file(ctx, f->file_id) : NULL;

	return f->pipe == NULL && fe != NULL && fe->kind == FILE_KIND__FILE_PIPE && fe->pipe != NULL &&
	       fe->pipe->ino == f->ino && pipe_data_len(fe->pipe) <= fe->pipe->pipe_size;
}

static int validate_one(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const UnixSkEntry *e = fe->unix_sk;

	if (e == NULL)
		return cr_error(err, 0, "unix socket without its entry");
	if (e->type != SOCK_STREAM && e->type != SOCK_DGRAM && e->type != SOCK_SEQPACKET)
		return cr_error(err, 0, "socket:[%u] has type %u", e->ino, e->type);
	if (e->state != USK_LISTEN && e->state != USK_ESTABLISHED && e->state != USK_CLOSE)
		return cr_error(err, 0, "socket:[%u] has state %u", e->ino, e->state);
	if ((e->has_name && !name_ok(&e->name)) || (e->state == USK_LISTEN && !e->has_name))
		return cr_error(err, 0, "socket:[%u] has a bad name", e->ino);
	if ((e->type == SOCK_STREAM && e->n_queue > 1 && e->n_cred_pid != e->n_queue && e->n_scm_count != e->n_queue) ||
	    (e->n_queue_from && e->n_queue_from != e->n_queue))
		return cr_error(err, 0, "socket:[%u] has a malformed queue", e->ino);
	for (size_t i = 0; i < e->n_queue_from; i++)
		if (e->queue_from[i].len > SUN_PATH_MAX)
			return cr_error(err, 0, "socket:[%u]: a sender name is too long", e->ino);
	if (e->has_ext_peer && (!name_ok(&e->ext_peer) || (e->ext_peer.data[0] != '\0' && e->ext_peer.data[0] != '/') ||
				(e->type != SOCK_DGRAM && e->n_queue)))
		return cr_error(err, 0, "socket:[%u]: malformed peer outside the dump", e->ino);
	if (e->n_scm_ino && !scm_ok(e))
		return cr_error(err, 0, "socket:[%u]: malformed fds in flight", e->ino);
	for (size_t i = 0; i < e->n_scm_files; i++) {
		struct stat st;

		if (e->scm_files[i]->has_file_id) {
			if (held_pipe_ok(ctx, e->scm_files[i]))
				continue;
			return cr_error(err, 0, "socket:[%u]: a pipe in flight names no pipe of files.img", e->ino);
		}
		if (e->scm_files[i]->pipe != NULL) {
			if (pipe_data_len(e->scm_files[i]->pipe) <= e->scm_files[i]->pipe->pipe_size)
				continue;
			return cr_error(err, 0, "socket:[%u]: a pipe in flight holds more than its size", e->ino);
		}
		if (reopen_check_flags(e->scm_files[i]->path, e->scm_files[i]->flags, err) < 0 ||
		    reopen_look(e->scm_files[i]->path, &st, err) < 0)
			return cr_error_wrap(err, "socket:[%u]: a file in flight", e->ino);
	}
	if ((e->n_pending && e->state != USK_LISTEN) ||
	    (e->has_pending_on && (e->state == USK_LISTEN || e->type == SOCK_DGRAM || e->n_queue)))
		return cr_error(err, 0, "socket:[%u]: malformed connections not accepted yet", e->ino);
	return check_path_there(ctx, fe, err);
}

/* Sockets only in flight have no fd whose validation would reach them:
 * the first unix socket validated of a restore validates them all. */
static int unix_sk_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	static const struct restore_ctx *done;

	if (done != ctx) {
		for (size_t i = 0; i < ctx->n_files; i++)
			if (ctx->files[i]->kind == FILE_KIND__FILE_UNIX_SOCKET && validate_one(ctx, ctx->files[i], err) < 0)
				return cr_error_wrap(err, "files.img: file %u", ctx->files[i]->id);
		done = ctx;
	}
	return validate_one(ctx, fe, err);
}

/* ----------------------------------------------------------------- names */

static bool name_is(const UnixSkEntry *e, const ProtobufCBinaryData *name)
{
	if (name->len == 0)
		return !e->has_name;
	return e->has_name && e->name.len == name->len && memcmp(e->name.data, name->data, name->len) == 0;
}

static bool is_path(const ProtobufCBinaryData *name)
{
	return name->len > 0 && name->data[0] != '\0';
}

static socklen_t name_addr(const ProtobufCBinaryData *name, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, name->data, name->len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + name->len);
}

/* For messages and file calls: a path, or "@" and an abstract name. */
static const char *name_str(const ProtobufCBinaryData *name, char out[SUN_PATH_MAX + 2])
{
	size_t len = name->len;

	if (len == 0)
		return strcpy(out, "(unnamed)");
	if (name->data[0] == '\0') {
		out[0] = '@';
		memcpy(out + 1, name->data + 1, len - 1);
		out[len] = '\0';
		return out;
	}
	memcpy(out, name->data, len);
	out[len] = '\0';
	return out;
}

/* The restorer's root while enter_dir has entered a socket's (chroot):
 * enter_dir and leave_dir pair in one scope, never nested. */
static int saved_root = -1;

static void leave_dir(int *saved)
{
	if (saved_root >= 0) {
		if (fchdir(saved_root) < 0 || chroot(".") < 0)
			pr_warn("cannot go back to the restorer's root: %s", strerror(errno));
		close(saved_root);
		saved_root = -1;
	}
	if (*saved < 0)
		return;
	if (fchdir(*saved) < 0)
		pr_warn("cannot go back to the restorer's directory: %s", strerror(errno));
	close(*saved);
}
#define cleanup_dir __attribute__((cleanup(leave_dir)))

/* Relative names resolve from the directory recorded at dump, absolute
 * ones from the root recorded (chroot). */
static int enter_dir(const UnixSkEntry *e, int *saved, cr_error_t *err)
{
	bool in_root = e->bind_root != NULL && e->has_name && is_path(&e->name) && e->name.data[0] == '/';

	if (e->bind_dir == NULL && !in_root)
		return 0;
	*saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*saved < 0)
		return cr_error(err, errno, "open the current directory");
	if (in_root) {
		saved_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (saved_root < 0)
			return cr_error(err, errno, "open the root directory");
		if (chroot(e->bind_root) < 0 || chdir("/") < 0)
			return cr_error(err, errno, "enter the root %s of the process that bound the socket",
					e->bind_root);
		return 0;
	}
	if (chdir(e->bind_dir) < 0)
		return cr_error(err, errno, "chdir %s", e->bind_dir);
	return 0;
}

/* Makes room at the path: only the dumped socket's own file goes. */
static int clear_path(const struct usk *u, const char *path, cr_error_t *err)
{
	const UnixSkEntry *e = u->e;
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : cr_error(err, errno, "stat %s", path);
	if (!e->name_on_disk || !S_ISSOCK(st.st_mode) ||
	    (!u->remade && (st.st_ino != e->name_ino || st.st_dev != e->name_dev)))
		return cr_error(err, 0, "%s exists and is not the socket file of the dump; remove it to restore "
				"the socket bound there", path);
	if (unlink(path) < 0)
		return cr_error(err, errno, "remove the old socket file %s", path);
	return 0;
}

/* The socket file got its mode from the umask at bind (see bind_path):
 * no chmod by path, which would follow a link put there meanwhile. */
static int finish_path(const UnixSkEntry *e, const char *path, cr_error_t *err)
{
	if (fchownat(AT_FDCWD, path, e->name_uid, e->name_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return cr_error(err, errno, "chown %s", path);
	return 0;
}

/* bind creates the socket file with mode 0777 & ~umask: the umask is set
 * so that it is the dumped mode, and put back. */
static int bind_path(int fd, const struct sockaddr_un *sun, socklen_t len, const UnixSkEntry *e)
{
	mode_t old = umask(~(mode_t)(e->has_name_mode ? e->name_mode : 0777) & 0777);
	int r = bind(fd, (const struct sockaddr *)sun, len);
	int saved = errno;

	umask(old);
	errno = saved;
	return r;
}

/* The file of a name that was unlinked at dump, unlinked again (renamed
 * to where it was, once the restore is done), and the path put back as
 * it was.  A done restore fails if the file cannot go where it was at
 * dump, with its owner: the socket would be reachable by no name. */
static int drop_name(struct usk *u, bool done, cr_error_t *err)
{
	cleanup_dir int saved = -1;
	char to[SUN_PATH_MAX + PATH_MAX + 2];
	cr_error_t why = NULL;
	int ret = 0;

	if (u->undo.path == NULL)
		return 0;
	if (enter_dir(u->e, &saved, &why) < 0) {
		pr_warn("cannot put the path of socket:[%u] back as it was: %s", u->e->ino, why->msg);
		unix_path_forget(&u->undo);
		cr_error_release(&why);
		return 0;
	}
	if (done && (u->e->renamed_to != NULL || u->e->moved_to != NULL)) {
		final_path(u->e, u->undo.path, NULL, to, sizeof(to));   /* in the root of the bind (enter_dir) */
		if (unix_path_rename(&u->undo, to, u->e->name_ino, u->e->name_dev) < 0)
			ret = cr_error(err, 0, "socket:[%u]: its file cannot be renamed to %s, its path at dump",
				       u->e->ino, to);
		else if (fchownat(AT_FDCWD, to, u->e->name_uid, u->e->name_gid, AT_SYMLINK_NOFOLLOW) < 0)
			ret = cr_error(err, errno, "socket:[%u]: chown %s", u->e->ino, to);
	}
	unix_path_restore(&u->undo);
	return ret;
}

/* The paths of names whose files were gone, put back in the reverse order
 * of the binds: a second socket of the same name moved the first one's
 * file aside.  done: the restore of the component succeeded. */
static int drop_names(struct component *c, bool done, cr_error_t *err)
{
	int ret = 0;

	for (;;) {
		struct usk *last = NULL;

		for (size_t i = 0; i < c->n; i++)
			if (c->v[i].undo.path != NULL && (last == NULL || c->v[i].bound_seq > last->bound_seq))
				last = &c->v[i];
		if (last == NULL)
			return ret;
		if (drop_name(last, done, ret == 0 ? err : NULL) < 0)
			ret = -1;
	}
}

/* Binds a name whose file was gone at dump (unix_path.h). */
static int bind_gone_name(struct usk *u, int fd, const struct sockaddr_un *sun, socklen_t len, const char *path,
			  cr_error_t *err)
{
	static unsigned seq;

	u->bound_seq = ++seq;
	if (unix_path_prepare(path, &u->undo, err) < 0)
		return -1;
	if (bind_path(fd, sun, len, u->e) < 0) {
		int saved = errno;

		unix_path_restore(&u->undo);
		return cr_error(err, saved, "bind %s", path);
	}
	unix_path_bound(&u->undo);
	return 0;
}

static int bind_name(struct usk *u, int fd, cr_error_t *err)
{
	const UnixSkEntry *e = u->e;
	cleanup_dir int saved = -1;
	char path[SUN_PATH_MAX + 2];
	struct sockaddr_un sun;
	socklen_t len;

	if (!e->has_name)
		return 0;
	len = name_addr(&e->name, &sun);
	name_str(&e->name, path);
	if (!is_path(&e->name))
		return bind(fd, (struct sockaddr *)&sun, len) < 0 ? cr_error(err, errno, "bind %s", path) : 0;
	if (enter_dir(e, &saved, err) < 0)
		return -1;
	if (!e->name_on_disk)
		return bind_gone_name(u, fd, &sun, len, path, err);
	if (clear_path(u, path, err) < 0)
		return -1;
	if (bind_path(fd, &sun, len, e) < 0)
		return cr_error(err, errno, "bind %s", path);
	return finish_path(e, path, err);
}

static int connect_name(int fd, const struct usk *to, cr_error_t *err)
{
	cleanup_dir int saved = -1;
	char str[SUN_PATH_MAX + 2];
	struct sockaddr_un sun;
	socklen_t len = name_addr(&to->e->name, &sun);

	if (!to->e->has_name)
		return cr_error(err, 0, "socket:[%u] has no name to connect to", to->e->ino);
	if (enter_dir(to->e, &saved, err) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, len) < 0)
		return cr_error(err, errno, "connect to %s", name_str(&to->e->name, str));
	return 0;
}

/* ---------------------------------------------- peer credentials (restore)
 *
 * The kernel gives a connection the credentials and pid of the task that
 * makes it: socketpair() both ends the caller's, listen() the listener
 * (and every client connecting after) the caller's, connect() the accepted
 * end the caller's.  Each of these steps is taken with the dumped ones:
 * by the restoring process itself, its effective ids set for the while,
 * when the pid is its own; else by a short-lived process made with that
 * pid (gone before the tree runs: its number stays with the socket, as a
 * dead creator's does); a pid that is another live process stops the
 * restore. */

struct as_job {
	int (*fn)(struct as_job *j, cr_error_t *err);
	int fd;                   /* listen, connect */
	int backlog;
	const struct usk *to;     /* connect */
	uint32_t type;            /* socketpair */
	int sv[2];                /* socketpair: made, passed back */
};

static int job_listen(struct as_job *j, cr_error_t *err)
{
	return listen(j->fd, j->backlog) < 0 ? cr_error(err, errno, "listen") : 0;
}

static int job_connect(struct as_job *j, cr_error_t *err)
{
	return connect_name(j->fd, j->to, err);
}

static int job_socketpair(struct as_job *j, cr_error_t *err)
{
	if (socketpair(AF_UNIX, (int)j->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, j->sv) < 0)
		return cr_error(err, errno, "socketpair");
	return 0;
}

static bool same_cred(const UnixPeerCred *a, const UnixPeerCred *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->pid == b->pid && a->uid == b->uid && a->gid == b->gid && a->n_groups == b->n_groups &&
	       (a->n_groups == 0 || memcmp(a->groups, b->groups, a->n_groups * sizeof(*a->groups)) == 0);
}

/* Raw system calls: the ids of this thread alone. */
static int set_ids(uid_t ruid, uid_t euid, uid_t suid, gid_t rgid, gid_t egid, gid_t sgid, const gid_t *groups,
		   size_t n_groups)
{
	if (syscall(SYS_setgroups, n_groups, groups) < 0 || syscall(SYS_setresgid, rgid, egid, sgid) < 0 ||
	    syscall(SYS_setresuid, ruid, euid, suid) < 0)
		return -1;
	return 0;
}

/* The restoring process has the pid: its effective ids (what SO_PEERCRED
 * reports) and groups are the dumped ones for the while. */
static int run_here(const UnixPeerCred *c, struct as_job *j, cr_error_t *err)
{
	gid_t old_groups[MAX_PEER_GROUPS];
	int n_old = getgroups(MAX_PEER_GROUPS, old_groups);
	uid_t euid = geteuid();
	gid_t egid = getegid();
	int r, saved;

	if (n_old < 0)
		return cr_error(err, errno, "getgroups");
	if (set_ids((uid_t)-1, (uid_t)-1, (uid_t)-1, (gid_t)-1, c->gid, (gid_t)-1, (const gid_t *)c->groups, c->n_groups) < 0 ||
	    syscall(SYS_setresuid, (uid_t)-1, c->uid, (uid_t)-1) < 0)
		r = cr_error(err, errno, "take uid %u gid %u", c->uid, c->gid);
	else
		r = j->fn(j, err);
	saved = errno;
	if (syscall(SYS_setresuid, (uid_t)-1, euid, (uid_t)-1) < 0 ||
	    set_ids((uid_t)-1, (uid_t)-1, (uid_t)-1, (gid_t)-1, egid, (gid_t)-1, old_groups, (size_t)n_old) < 0) {
		cr_log(LOG_ERROR, "unix socket: cannot take back uid %u gid %u: %s", euid, egid, strerror(errno));
		_exit(127);   /* never go on with the wrong credentials */
	}
	errno = saved;
	return r;
}

static int send_fds_back(int ctl, const int *fds, size_t n)
{
	union {
		struct cmsghdr align;
		char room[CMSG_SPACE(2 * sizeof(int))];
	} control;
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c = NULL;

	memset(&control, 0, sizeof(control));
	mh.msg_control = &control;
	mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
	add_cmsg(&mh, &c, SCM_RIGHTS, fds, n * sizeof(int));
	return sendmsg(ctl, &mh, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fds_back(int ctl, int *fds, size_t n, cr_error_t *err)
{
	union {
		struct cmsghdr align;
		char room[CMSG_SPACE(2 * sizeof(int))];
	} control;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c;

	if (recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) != 1 || (c = CMSG_FIRSTHDR(&mh)) == NULL ||
	    c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(n * sizeof(int)))
		return cr_error(err, 0, "the socketpair made with the dumped credentials did not come back");
	memcpy(fds, CMSG_DATA(c), n * sizeof(int));
	return 0;
}

/* A process made with the dumped pid takes the step, then exits. */
static int run_as_pid(const UnixPeerCred *c, struct as_job *j, cr_error_t *err)
{
	int ctl[2] = { -1, -1 }, status, r = 0;
	pid_t child;

	if (j->fn == job_socketpair && socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, ctl) < 0)
		return cr_error(err, errno, "socketpair");
	child = pidsel_fork(PID_BACKEND_AUTO, (const uint32_t *)&c->pid, 1, 0, SIGCHLD, err);
	if (child == 0) {
		cr_error_t e2;

		if (set_ids(c->uid, c->uid, c->uid, c->gid, c->gid, c->gid, (const gid_t *)c->groups, c->n_groups) < 0 ||
		    j->fn(j, &e2) < 0 || (ctl[1] >= 0 && send_fds_back(ctl[1], j->sv, 2) < 0))
			_exit(1);
		_exit(0);
	}
	if (child < 0)
		r = cr_error_wrap(err, "make a process with pid %d", c->pid);
	else if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = cr_error(err, 0, "the process made with pid %d could not take the step", c->pid);
	else if (ctl[0] >= 0)
		r = recv_fds_back(ctl[0], j->sv, 2, err);
	if (ctl[0] >= 0) {
		close(ctl[0]);
		close(ctl[1]);
	}
	return r;
}

/* j, with credentials c (NULL: an image without them, as it comes). */
static int run_as(const UnixPeerCred *c, struct as_job *j, cr_error_t *err)
{
	if (c == NULL)
		return j->fn(j, err);
	if (c->pid == getpid())
		return run_here(c, j, err);
	if (kill(c->pid, 0) < 0 && errno == ESRCH)
		return run_as_pid(c, j, err);
	return cr_error(err, 0, "unsupported: pid %d, which made the connection (SO_PEERCRED), is another process "
			"that exists already", c->pid);
}

static int listen_as(const struct usk *l, const UnixPeerCred *c, cr_error_t *err)
{
	struct as_job j = { .fn = job_listen, .fd = l->fd, .backlog = (int)l->e->backlog };

	return run_as(c, &j, err);
}

static int connect_as(int fd, const struct usk *to, const UnixPeerCred *c, cr_error_t *err)
{
	struct as_job j = { .fn = job_connect, .fd = fd, .to = to };

	return run_as(c, &j, err);
}

static int socketpair_as(uint32_t type, int sv[2], const UnixPeerCred *c, cr_error_t *err)
{
	struct as_job j = { .fn = job_socketpair, .type = type, .sv = { -1, -1 } };

	if (run_as(c, &j, err) < 0)
		return -1;
	sv[0] = j.sv[0];
	sv[1] = j.sv[1];
	return 0;
}

/* Every client has connected: each listener reports its own creator again
 * (listen() took a client's credentials for it to copy). */
static int relisten_all(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e->state == USK_LISTEN && c->v[i].e->peer_cred != NULL &&
		    listen_as(&c->v[i], c->v[i].e->peer_cred, err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	return 0;
}

/* ------------------------------------------------------------- creation */

static int new_socket(uint32_t type, cr_error_t *err)
{
	int fd = socket(AF_UNIX, (int)type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	return fd < 0 ? cr_error(err, errno, "socket") : fd;
}

/* The socket u was accepted from, if it is in the component. */
static const struct usk *listener_of(const struct component *c, const struct usk *u)
{
	if (u == NULL || !u->e->has_name || u->e->state == USK_LISTEN)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		const UnixSkEntry *l = c->v[i].e;

		if (l->state == USK_LISTEN && l->type == u->e->type && name_is(l, &u->e->name) &&
		    l->has_name_ino == u->e->has_name_ino && l->name_ino == u->e->name_ino)
			return &c->v[i];
	}
	return NULL;
}

static struct usk *find_ino(struct component *c, uint32_t ino)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e->ino == ino)
			return &c->v[i];
	return NULL;
}

static int create_listener(struct usk *u, cr_error_t *err)
{
	u->fd = new_socket(u->e->type, err);
	if (u->fd < 0 || bind_name(u, u->fd, err) < 0)
		return -1;
	return listen_as(u, u->e->peer_cred, err);
}

/* client NULL: a stand-in connects and plays the closed peer. */
static int pair_through_listener(struct usk *server, struct usk *client, const struct usk *l, cr_error_t *err)
{
	int cfd = new_socket(l->e->type, err);

	if (cfd < 0)
		return -1;
	if (client != NULL)
		client->fd = cfd;
	else
		server->stand_in = cfd;
	if (client != NULL && (bind_name(client, cfd, err) < 0 ||
			       (client->e->peer_cred != NULL && listen_as(l, client->e->peer_cred, err) < 0)))
		return -1;
	if (connect_as(cfd, l, server->e->peer_cred, err) < 0)
		return -1;
	server->fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (server->fd < 0)
		return cr_error(err, errno, "accept the connection again");
	return 0;
}

static int pair_directly(struct usk *a, struct usk *b, cr_error_t *err)
{
	int sv[2];

	if (b != NULL && !same_cred(a->e->peer_cred, b->e->peer_cred))
		return cr_error(err, 0, "unsupported: its peer socket:[%u] has other credentials (SO_PEERCRED), "
				"and their listener is not in the image", b->e->ino);
	if (socketpair_as(a->e->type, sv, a->e->peer_cred, err) < 0)
		return -1;
	a->fd = sv[0];
	if (b != NULL)
		b->fd = sv[1];
	else
		a->stand_in = sv[1];
	if (bind_name(a, a->fd, err) < 0 || (b != NULL && bind_name(b, b->fd, err) < 0))
		return -1;
	return 0;
}

static int make_pair(const struct component *c, struct usk *a, struct usk *b, cr_error_t *err)
{
	const struct usk *l;

	a->mate = b;
	if (b != NULL)
		b->mate = a;
	if ((l = listener_of(c, a)) != NULL)
		return pair_through_listener(a, b, l, err);
	if ((l = listener_of(c, b)) != NULL)
		return pair_through_listener(b, a, l, err);
	return pair_directly(a, b, err);
}

/* Connected to each other, as a socketpair makes them. */
static bool mutual(const struct usk *u, const struct usk *peer)
{
	return peer != NULL && peer != u && peer->e->has_peer && peer->e->peer == u->e->ino;
}

/* --ext-unix-sk: the peer outside the dump, by its (absolute or abstract)
 * name. */
static int connect_ext(const struct usk *u, cr_error_t *err)
{
	char str[SUN_PATH_MAX + 2];
	struct sockaddr_un sun;
	socklen_t len = name_addr(&u->e->ext_peer, &sun);

	if (connect(u->fd, (struct sockaddr *)&sun, len) < 0)
		return cr_error(err, errno, "connect to %s, its peer outside the dump (--ext-unix-sk)",
				name_str(&u->e->ext_peer, str));
	return 0;
}

static int create_ext(struct usk *u, cr_error_t *err)
{
	u->fd = new_socket(u->e->type, err);
	if (u->fd < 0 || bind_name(u, u->fd, err) < 0)
		return -1;
	return u->e->type == SOCK_DGRAM ? 0 : connect_ext(u, err);   /* datagrams: once the queue is in */
}

static int create_one(struct component *c, struct usk *u, cr_error_t *err)
{
	struct usk *peer = NULL;

	if (u->e->has_ext_peer)
		return create_ext(u, err);
	if (u->e->has_peer && u->e->peer != 0 && (peer = find_ino(c, u->e->peer)) == NULL)
		return cr_error(err, 0, "its peer socket:[%u] is not in the image", u->e->peer);
	if (u->e->has_peer && (u->e->type != SOCK_DGRAM || u->e->peer == 0 || mutual(u, peer)))
		return make_pair(c, u, peer, err);
	u->fd = new_socket(u->e->type, err);
	if (u->fd < 0)
		return -1;
	return bind_name(u, u->fd, err);
}

/* The connections not accepted yet, queued again in their order, once
 * every connection that was accepted went through the listener. */
static int connect_pending(struct component *c, const struct usk *l, cr_error_t *err)
{
	for (size_t i = 0; i < l->e->n_pending; i++) {
		struct usk *u = find_ino(c, l->e->pending[i]);

		if (u == NULL || !u->e->has_pending_on || u->e->pending_on != l->e->ino || u->fd >= 0)
			return cr_error(err, 0, "its pending client socket:[%u] is not in the image", l->e->pending[i]);
		u->fd = new_socket(u->e->type, err);
		if (u->fd < 0 || bind_name(u, u->fd, err) < 0 ||
		    (u->e->peer_cred != NULL && listen_as(l, u->e->peer_cred, err) < 0) ||
		    connect_as(u->fd, l, u->e->connector, err) < 0)
			return cr_error_wrap(err, "its pending client socket:[%u]", u->e->ino);
	}
	return 0;
}

static int create_sockets(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e->state == USK_LISTEN && create_listener(&c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].fd < 0 && !c->v[i].e->has_pending_on && create_one(c, &c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e->n_pending && connect_pending(c, &c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	return relisten_all(c, err);
}

/* -------------------------------------------------------------- buffers */

/* getsockopt reports twice what setsockopt was given. */
static int set_buffer(int fd, int opt, int force_opt, uint32_t want, const char *name, cr_error_t *err)
{
	int have, half = (int)(want / 2);
	socklen_t len = sizeof(have);

	if (getsockopt(fd, SOL_SOCKET, opt, &have, &len) < 0)
		return cr_error(err, errno, "getsockopt %s", name);
	if ((uint32_t)have == want)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, force_opt, &half, sizeof(half)) < 0)
		return cr_error(err, errno, "set %s to %u", name, want);
	return 0;
}

static size_t queue_bytes(const UnixSkEntry *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->n_queue; i++)
		n += e->queue[i].len;
	return n;
}

static int set_buffers(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct usk *u = &c->v[i];
		uint32_t room = (uint32_t)(2 * queue_bytes(u->e) + 65536);

		if (set_buffer(u->fd, SO_SNDBUF, SO_SNDBUFFORCE, u->e->sndbuf, "SO_SNDBUF", err) < 0 ||
		    set_buffer(u->fd, SO_RCVBUF, SO_RCVBUFFORCE, u->e->rcvbuf, "SO_RCVBUF", err) < 0)
			return cr_error_wrap(err, "socket:[%u]", u->e->ino);
		if (u->stand_in >= 0 && room > u->e->sndbuf &&
		    set_buffer(u->stand_in, SO_SNDBUF, SO_SNDBUFFORCE, room, "SO_SNDBUF", err) < 0)
			return cr_error_wrap(err, "the stand-in peer of socket:[%u]", u->e->ino);
	}
	return 0;
}

/* ------------------------------------------------------------ the queues */

/* What a queued message carries besides its bytes. */
struct extras {
	const struct ucred *cred;   /* its sender's credentials, or NULL */
	const int *fds;             /* unix sockets in flight (SCM_RIGHTS) */
	size_t n_fds;
};

static void add_cmsg(struct msghdr *mh, struct cmsghdr **c, int type, const void *data, size_t len)
{
	*c = *c == NULL ? CMSG_FIRSTHDR(mh) : CMSG_NXTHDR(mh, *c);
	(*c)->cmsg_level = SOL_SOCKET;
	(*c)->cmsg_type = type;
	(*c)->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(*c), data, len);
}

/* One sendmsg, with what the message carries: the sockets in flight, and
 * the sender's credentials as they are when the pid exists (cr may name
 * any), else from a process made with that pid for the purpose, gone
 * before anyone reads the message (its number stays with the message, as
 * the dumped sender's did). */
static ssize_t send_one(int fd, const void *buf, size_t len, const struct sockaddr_un *to, socklen_t to_len,
			const struct extras *x, cr_error_t *err)
{
	union {
		struct cmsghdr align;
		char room[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(SCM_MAX_FD * sizeof(int))];
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = to ? to_len : 0, .msg_iov = &iov, .msg_iovlen = 1 };
	const struct ucred *cred = x ? x->cred : NULL;
	struct cmsghdr *c = NULL;
	pid_t sender;
	int status;

	memset(&control, 0, sizeof(control));
	mh.msg_control = &control;
	mh.msg_controllen = (cred ? CMSG_SPACE(sizeof(*cred)) : 0) + (x && x->n_fds ? CMSG_SPACE(x->n_fds * sizeof(int)) : 0);
	if (cred != NULL)
		add_cmsg(&mh, &c, SCM_CREDENTIALS, cred, sizeof(*cred));
	if (x != NULL && x->n_fds > 0)
		add_cmsg(&mh, &c, SCM_RIGHTS, x->fds, x->n_fds * sizeof(int));
	if (mh.msg_controllen == 0)
		mh.msg_control = NULL;
	if (cred == NULL || kill(cred->pid, 0) == 0 || errno != ESRCH)
		return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	sender = pidsel_fork(PID_BACKEND_AUTO, (const uint32_t *)&cred->pid, 1, 0, SIGCHLD, err);
	if (sender == 0)
		_exit(sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len ? 0 : 1);
	if (sender < 0)
		return cr_error_wrap(err, "make a sender with pid %d, whose credentials a queued message carries",
				     cred->pid);
	if (waitpid(sender, &status, 0) != sender || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cr_error(err, 0, "the sender with pid %d could not send a queued message", cred->pid);
	return (ssize_t)len;
}

static int send_all(int fd, const ProtobufCBinaryData *d, bool one_message, const struct extras *x,
		    cr_error_t *err)
{
	size_t done = 0;

	do {
		ssize_t n = send_one(fd, d->data + done, d->len - done, NULL, 0, done ? NULL : x, err);

		if (n < 0)
			return *err ? -1 : cr_error(err, errno, "write %zu queued bytes", d->len - done);
		if (one_message && (size_t)n != d->len)
			return cr_error(err, 0, "a %zu-byte message went out as %zd bytes", d->len, n);
		done += (size_t)n;
	} while (done < d->len);
	return 0;
}

static int send_to_name(int fd, const struct usk *to, const ProtobufCBinaryData *msg, const struct extras *x,
			cr_error_t *err)
{
	cleanup_dir int saved = -1;
	struct sockaddr_un sun;
	socklen_t len = name_addr(&to->e->name, &sun);
	ssize_t n;

	if (!to->e->has_name)
		return cr_error(err, 0, "no way to send it to an unnamed socket but from its peer");
	if (enter_dir(to->e, &saved, err) < 0)
		return -1;
	n = send_one(fd, msg->data, msg->len, &sun, len, x, err);
	if (n != (ssize_t)msg->len)
		return *err ? -1 : cr_error(err, n < 0 ? errno : 0, "send a %zu-byte datagram", msg->len);
	return 0;
}

/* The directories of name (relative), made below base one by one. */
static int make_dirs(const char *base, const char *name, cr_error_t *err)
{
	char path[PATH_MAX];

	for (const char *slash = strchr(name, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		if (slash == name)
			continue;
		snprintf(path, sizeof(path), "%s/%.*s", base, (int)(slash - name), name);
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return cr_error(err, errno, "mkdir %s", path);
	}
	return 0;
}

/* Removes below base the file name and the directories make_dirs made,
 * then base. */
static void remove_made(const char *base, const char *name)
{
	char path[PATH_MAX];
	char *cut;

	snprintf(path, sizeof(path), "%s/%s", base, name);
	unlink(path);
	while ((cut = strrchr(path, '/')) != NULL && (size_t)(cut - path) > strlen(base)) {
		*cut = '\0';
		rmdir(path);
	}
	rmdir(base);
}

static int enter_aside(const char *base, bool absolute)
{
	return (absolute && chroot(base) < 0) || chdir(absolute ? "/" : base) < 0 ? -1 : 0;
}

static int leave_aside(int root, int cwd, bool absolute)
{
	return (absolute && (fchdir(root) < 0 || chroot(".") < 0)) || fchdir(cwd) < 0 ? -1 : 0;
}

/* Binds fd to the path name sun holds, made in a scratch directory of its
 * own: through it as the root (chroot) for an absolute name, as the cwd
 * for a relative one, so that the name is free and its directories exist
 * whatever is at the real path now.  The receiver sees the very name. */
static int bind_aside(int fd, const struct sockaddr_un *sun, socklen_t len, const char *name, cr_error_t *err)
{
	char base[] = "/tmp/cr-sender.XXXXXX";
	cleanup_close int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	cleanup_close int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	bool absolute = name[0] == '/';
	const char *rel = name + absolute;
	int r, saved;

	if (root < 0 || cwd < 0 || mkdtemp(base) == NULL)
		return cr_error(err, errno, "make a scratch directory for a stand-in sender");
	if (make_dirs(base, rel, err) < 0) {
		remove_made(base, rel);
		return -1;
	}
	r = enter_aside(base, absolute) < 0 ? -1 : bind(fd, (const struct sockaddr *)sun, len);
	saved = errno;
	if (leave_aside(root, cwd, absolute) < 0)
		return cr_error(err, errno, "go back to the root and cwd of the restore");
	remove_made(base, rel);
	return r < 0 ? cr_error(err, saved, "bind a stand-in for its sender %s (in %s)", name, base) : 0;
}

/* A sender that no longer exists, bound to its name if it had one (the
 * receiver sees that name as the datagram's source). */
static int send_from_stand_in(const struct usk *to, const ProtobufCBinaryData *from,
			      const ProtobufCBinaryData *msg, const struct extras *x, cr_error_t *err)
{
	cleanup_close int fd = new_socket(SOCK_DGRAM, err);
	char str[SUN_PATH_MAX + 2];
	struct sockaddr_un sun;
	socklen_t len = name_addr(from, &sun);

	if (fd < 0)
		return -1;
	name_str(from, str);
	if (is_path(from) && bind_aside(fd, &sun, len, str, err) < 0)
		return -1;
	if (from->len > 0 && !is_path(from) && bind(fd, (struct sockaddr *)&sun, len) < 0)
		return cr_error(err, errno, "bind a stand-in for its sender %s", str);
	return send_to_name(fd, to, msg, x, err);
}

static int send_datagram(struct component *c, const struct usk *to, const ProtobufCBinaryData *from,
			 const ProtobufCBinaryData *msg, const struct extras *x, cr_error_t *err)
{
	if (to->mate != NULL && name_is(to->mate->e, from))
		return send_all(to->mate->fd, msg, true, x, err);
	if (to->stand_in >= 0 && from->len == 0)
		return send_all(to->stand_in, msg, true, x, err);
	for (size_t i = 0; i < c->n && from->len > 0; i++)
		if (c->v[i].e->type == SOCK_DGRAM && name_is(c->v[i].e, from))
			return send_to_name(c->v[i].fd, to, msg, x, err);
	return send_from_stand_in(to, from, msg, x, err);
}

/* The credentials message i was sent with, if they were recorded. */
static const struct ucred *cred_of(const UnixSkEntry *e, size_t i, struct ucred *cred)
{
	if (i >= e->n_cred_pid || i >= e->n_cred_uid || i >= e->n_cred_gid)
		return NULL;
	*cred = (struct ucred){ .pid = e->cred_pid[i], .uid = e->cred_uid[i], .gid = e->cred_gid[i] };
	return cred;
}

/* Where fds_of is in a socket's scm_ino and scm_files. */
struct scm_cursor {
	size_t ino, file;
};

/* A pipe in flight, made again with its data: the end it was, with its
 * flags; the other end closed, as it was everywhere. */
static int remake_pipe(const UnixScmFile *f, cr_error_t *err)
{
	int fds[2], end = (f->flags & O_ACCMODE) == O_WRONLY;

	if (pipe_make_filled(f->pipe, f->pipe->n_data > 1 || (f->flags & O_DIRECT), fds, err) < 0)
		return cr_error_wrap(err, "the pipe in flight %s", f->path);
	close(fds[!end]);
	if (fcntl(fds[end], F_SETFL, f->flags & (O_NONBLOCK | O_APPEND | O_ASYNC | O_DIRECT)) < 0) {
		close(fds[end]);
		return cr_error(err, errno, "the pipe in flight %s: set flags 0%o", f->path, f->flags);
	}
	return fds[end];
}

/* A pipe in flight that processes hold too: a description of the pipe
 * made for them (its anchor, which a holder or this component makes
 * first), as theirs are. */
static int open_held_pipe(const struct component *c, const UnixScmFile *f, cr_error_t *err)
{
	const FileEntry *fe = restore_file(c->ctx, f->file_id);
	int fd = fdkind_for_entry(fe)->open(c->ctx, c->t, fe, err);

	return fd < 0 ? cr_error_wrap(err, "the pipe in flight %s", f->path) : fd;
}

/* A file in flight, opened again as the process would, at its offset. */
static int reopen_in_flight(const struct component *c, const UnixScmFile *f, cr_error_t *err)
{
	bool as_cr = false;
	cleanup_close int fd = reopen_path(c->t, f->path, (int)(f->flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC)),
					   &as_cr, err);
	struct stat st;

	if (fd < 0)
		return cr_error_wrap(err, "the file %s in flight", f->path);
	if (fstat(fd, &st) < 0 || (as_cr && (st.st_ino != f->ino || st.st_dev != f->dev)))
		return cr_error(err, 0, "the file %s in flight is another file than at dump", f->path);
	if (lseek(fd, (off_t)f->pos, SEEK_SET) < 0)
		return cr_error(err, errno, "the file %s in flight: seek to %llu", f->path, (unsigned long long)f->pos);
	return steal_fd(&fd);
}

/* The fds message i carries in flight: the sockets of the component, and
 * files opened again (own[k] set: the caller closes them). */
static int fds_of(struct component *c, const UnixSkEntry *e, size_t i, struct scm_cursor *at, int *fds, bool *own,
		  size_t *n, cr_error_t *err)
{
	size_t want = i < e->n_scm_count ? e->scm_count[i] : 0;

	for (*n = 0; *n < want; (*n)++, at->ino++) {
		uint32_t ino = e->scm_ino[at->ino];
		const struct usk *s = ino ? find_ino(c, ino) : NULL;
		const UnixScmFile *f = ino == 0 ? e->scm_files[at->file++] : NULL;

		own[*n] = ino == 0;
		if (f != NULL && (fds[*n] = f->has_file_id ? open_held_pipe(c, f, err) :
					    f->pipe	     ? remake_pipe(f, err) :
								reopen_in_flight(c, f, err)) < 0)
			return -1;
		if (ino != 0 && (s == NULL || s->fd < 0))
			return cr_error(err, 0, "socket:[%u], in flight in it, is not in the image", ino);
		if (ino != 0)
			fds[*n] = s->fd;
	}
	return 0;
}

static void close_own(const int *fds, const bool *own, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (own[k])
			close(fds[k]);
}

static int fill_queue(struct component *c, const struct usk *u, cr_error_t *err)
{
	static const ProtobufCBinaryData unnamed = { 0, NULL };
	int sender = u->mate != NULL ? u->mate->fd : u->stand_in;
	struct scm_cursor at = { 0, 0 };

	for (size_t i = 0; i < u->e->n_queue; i++) {
		const ProtobufCBinaryData *msg = &u->e->queue[i];
		int fds[SCM_MAX_FD];
		bool own[SCM_MAX_FD];
		struct ucred buf;
		struct extras x = { .cred = cred_of(u->e, i, &buf), .fds = fds };
		int r;

		if (fds_of(c, u->e, i, &at, fds, own, &x.n_fds, err) < 0)
			r = -1;
		else if (u->e->type == SOCK_DGRAM)
			r = send_datagram(c, u, i < u->e->n_queue_from ? &u->e->queue_from[i] : &unnamed, msg, &x,
					  err);
		else if (sender < 0)
			r = cr_error(err, 0, "queued data, but no peer to send it");
		else
			r = send_all(sender, msg, u->e->type == SOCK_SEQPACKET, &x, err);
		close_own(fds, own, x.n_fds);
		if (r < 0)
			return cr_error_wrap(err, "socket:[%u]: queued message %zu of %zu", u->e->ino, i + 1,
					     u->e->n_queue);
	}
	return 0;
}

static int fill_queues(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++)
		if (fill_queue(c, &c->v[i], err) < 0)
			return -1;
	return 0;
}

/* ------------------------------------------------------- the last steps */

static int connect_one_way(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++) {
		struct usk *u = &c->v[i];

		if (u->e->type != SOCK_DGRAM || !u->e->has_peer || u->e->peer == 0 || u->mate != NULL)
			continue;
		if (u->e->has_ext_peer ? connect_ext(u, err) < 0 : connect_name(u->fd, find_ino(c, u->e->peer), err) < 0)
			return cr_error_wrap(err, "socket:[%u]", u->e->ino);
	}
	return 0;
}

static int set_int_opt(int fd, int opt, int value, const char *name, cr_error_t *err)
{
	if (setsockopt(fd, SOL_SOCKET, opt, &value, sizeof(value)) < 0)
		return cr_error(err, errno, "set %s to %d", name, value);
	return 0;
}

static int finish_one(struct usk *u, cr_error_t *err)
{
	static const int how[] = { -1, SHUT_RD, SHUT_WR, SHUT_RDWR };
	uint32_t bits = u->e->shutdown & (USK_RCV_SHUTDOWN | USK_SEND_SHUTDOWN);

	if (bits && shutdown(u->fd, how[bits]) < 0)
		return cr_error(err, errno, "shutdown");
	if (u->e->peek_off >= 0 && set_int_opt(u->fd, SO_PEEK_OFF, u->e->peek_off, "SO_PEEK_OFF", err) < 0)
		return -1;
	if (u->e->passcred && set_int_opt(u->fd, SO_PASSCRED, 1, "SO_PASSCRED", err) < 0)
		return -1;
	/* The description's flags, for one in flight that no fd hands out. */
	if (fcntl(u->fd, F_SETFL, u->fe->flags & (O_NONBLOCK | O_APPEND | O_ASYNC)) < 0)
		return cr_error(err, errno, "set flags 0%o", u->fe->flags);
	return 0;
}

static int finish(struct component *c, cr_error_t *err)
{
	if (drop_names(c, true, err) < 0)
		return -1;
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].stand_in >= 0) {
			close(c->v[i].stand_in);
			c->v[i].stand_in = -1;
		}
	}
	for (size_t i = 0; i < c->n; i++)
		if (finish_one(&c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	return 0;
}

static int stash_all(const struct restore_task *t, struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++) {
		int fds[2] = { c->v[i].fd, -1 };

		c->v[i].fd = -1;   /* the anchor owns it now, or has closed it */
		if (fd_anchor_add(t, c->v[i].fe->id, fds, err) == NULL)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ component */

static bool sent_to(const UnixSkEntry *from, const UnixSkEntry *to)
{
	if (!from->has_name)
		return false;
	for (size_t i = 0; i < to->n_queue_from; i++)
		if (name_is(from, &to->queue_from[i]))
			return true;
	return false;
}

static bool accepted_from(const UnixSkEntry *s, const UnixSkEntry *l)
{
	return l->state == USK_LISTEN && s->state != USK_LISTEN && s->type == l->type && s->has_name &&
	       name_is(l, &s->name);
}

static bool pending_in(const UnixSkEntry *client, const UnixSkEntry *l)
{
	return client->has_pending_on && client->pending_on == l->ino;
}

static bool carries(const UnixSkEntry *a, const UnixSkEntry *b)
{
	for (size_t i = 0; i < a->n_scm_ino; i++)
		if (a->scm_ino[i] == b->ino)
			return true;
	return false;
}

static bool related(const UnixSkEntry *a, const UnixSkEntry *b)
{
	return pending_in(a, b) || pending_in(b, a) || carries(a, b) || carries(b, a) || (a->has_peer && a->peer == b->ino) || (b->has_peer && b->peer == a->ino) || accepted_from(a, b) ||
	       accepted_from(b, a) || sent_to(a, b) || sent_to(b, a);
}

static bool in_component(const struct component *c, const FileEntry *fe)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].fe == fe)
			return true;
	return false;
}

static void add_member(struct component *c, const FileEntry *fe)
{
	c->v[c->n++] = (struct usk){ .fe = fe, .e = fe->unix_sk, .fd = -1, .stand_in = -1 };
}

/* The socket file of fe's path name is on a mount the restore made again. */
static bool on_remade_mount(const struct restore_ctx *ctx, const FileEntry *fe)
{
	char as_seen[PATH_MAX + SUN_PATH_MAX + 2], view[PATH_MAX];

	return path_as_seen(fe->unix_sk, as_seen, sizeof(as_seen)) &&
	       ns_path_view(ctx, fe->mnt_ns, as_seen, view, sizeof(view)) == 0;
}

static void collect(const struct restore_ctx *ctx, const FileEntry *fe, struct component *c)
{
	c->v = xcalloc(ctx->n_files + 1, sizeof(*c->v));
	add_member(c, fe);
	for (size_t i = 0; i < c->n; i++) {
		for (size_t j = 0; j < ctx->n_files; j++) {
			const FileEntry *other = ctx->files[j];

			if (other->kind == FILE_KIND__FILE_UNIX_SOCKET && other->unix_sk != NULL &&
			    !in_component(c, other) && fd_anchor_find(other->id) == NULL &&
			    related(c->v[i].e, other->unix_sk))
				add_member(c, other);
		}
	}
	for (size_t i = 0; i < c->n; i++)
		c->v[i].remade = on_remade_mount(ctx, c->v[i].fe);
}

/* Components by union-find over the unix socket entries: each entry's
 * root, the lowest id of its component, ends in ctx->file_first. */
static uint32_t root_of(uint32_t *up, uint32_t id)
{
	while (up[id] != id)
		id = up[id] = up[up[id]];
	return id;
}

static void find_components(const struct restore_ctx *ctx)
{
	cleanup_free uint32_t *up = xcalloc(ctx->n_files + 1, sizeof(*up));
	cleanup_free const FileEntry **v = xcalloc(ctx->n_files + 1, sizeof(*v));
	size_t n = 0;

	for (size_t i = 0; i < ctx->n_files; i++) {
		const FileEntry *fe = ctx->files[i];

		if (fe->kind == FILE_KIND__FILE_UNIX_SOCKET && fe->unix_sk != NULL)
			v[n++] = fe;
		up[fe->id] = fe->id;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			uint32_t a, b;

			if (!related(v[i]->unix_sk, v[j]->unix_sk))
				continue;
			a = root_of(up, v[i]->id);
			b = root_of(up, v[j]->id);
			if (a != b)
				up[a > b ? a : b] = a < b ? a : b;
		}
	}
	for (size_t i = 0; i < n; i++)
		ctx->file_first[v[i]->id] = root_of(up, v[i]->id);
}

/* The entry that stands for fe's component: every socket of a component
 * is created in one process, the common ancestor of all their holders. */
static const FileEntry *first_of_component(const struct restore_ctx *ctx, const FileEntry *fe)
{
	if (ctx->file_first[fe->id] == 0)
		find_components(ctx);
	return ctx->files[ctx->file_first[fe->id] - 1];
}

static int restore_component(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			     cr_error_t *err)
{
	__attribute__((cleanup(component_free))) struct component c = { .t = t, .ctx = ctx };

	collect(ctx, fe, &c);
	if (create_sockets(&c, err) < 0 || set_buffers(&c, err) < 0 || fill_queues(&c, err) < 0 ||
	    connect_one_way(&c, err) < 0 || finish(&c, err) < 0)
		return -1;
	return stash_all(t, &c, err);
}

static int unix_sk_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	struct fd_anchor *a = fd_anchor_find(fe->id);

	if (a == NULL && restore_component(ctx, t, fe, err) < 0)
		return cr_error_wrap(err, "unix socket socket:[%u]", fe->unix_sk->ino);
	a = fd_anchor_find(fe->id);
	if (a == NULL)
		return cr_error(err, 0, "unix socket socket:[%u] was not created", fe->unix_sk->ino);
	return fd_anchor_open(a, 0, fe, err);
}

/* ------------------------------------------------------- the whole dump */

static const UnixSkEntry *entry_of_ino(const struct dump_ctx *ctx, uint32_t ino)
{
	for (size_t i = 0; i < ctx->files.n; i++)
		if (ctx->files.v[i]->unix_sk != NULL && ctx->files.v[i]->unix_sk->ino == ino)
			return ctx->files.v[i]->unix_sk;
	return NULL;
}

/* The first fd of file id, or NULL: a socket in flight has none. */
static const struct fd_seen *holder_of(const struct dump_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->n_seen; i++)
		if (ctx->seen[i].file_id == id)
			return &ctx->seen[i];
	return NULL;
}

static void where_of(const struct dump_ctx *ctx, const FileEntry *fe, char *where, size_t size)
{
	const struct fd_seen *h = holder_of(ctx, fe->id);

	if (h != NULL)
		snprintf(where, size, "pid %d fd %d", h->pid, h->fd);
	else
		snprintf(where, size, "in flight in the dump of pid %d", ctx->tasks[0].pid);
}

/* ------------------------------------------- peer credentials (whole dump) */

static const FileEntry *file_of_ino(const struct dump_ctx *ctx, uint32_t ino)
{
	for (size_t i = 0; i < ctx->files.n; i++)
		if (ctx->files.v[i]->unix_sk != NULL && ctx->files.v[i]->unix_sk->ino == ino)
			return ctx->files.v[i];
	return NULL;
}

static const struct dump_task *task_of(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

/* pid is from, or a process of the tree below it. */
static bool descends(const struct dump_ctx *ctx, pid_t pid, pid_t from)
{
	for (const struct dump_task *t = task_of(ctx, pid); t != NULL; t = task_of(ctx, t->ppid))
		if (t->pid == from)
			return true;
	return false;
}

/* The lowest process of the tree above (or at) every holder of fe, folded
 * into acc (0: none yet). */
static pid_t holders_above(const struct dump_ctx *ctx, const FileEntry *fe, pid_t acc)
{
	for (size_t i = 0; fe != NULL && i < ctx->n_seen; i++) {
		pid_t h = ctx->seen[i].pid;

		if (ctx->seen[i].file_id != fe->id)
			continue;
		if (acc == 0) {
			acc = h;
			continue;
		}
		while (acc != 0 && !descends(ctx, h, acc)) {
			const struct dump_task *t = task_of(ctx, acc);

			acc = t != NULL ? t->ppid : 0;
		}
	}
	return acc;
}

/* A listener of the dump that e (an end of a connection) was accepted from,
 * as the restore finds it (listener_of). */
static bool has_listener(const struct dump_ctx *ctx, const UnixSkEntry *e)
{
	for (size_t i = 0; e != NULL && e->has_name && i < ctx->files.n; i++) {
		const UnixSkEntry *l = ctx->files.v[i]->unix_sk;

		if (l != NULL && l != e && l->state == USK_LISTEN && l->type == e->type && name_is(l, &e->name) &&
		    l->has_name_ino == e->has_name_ino && l->name_ino == e->name_ino)
			return true;
	}
	return false;
}

/* The restore makes each connection again with the pid that made it
 * (SO_PEERCRED): in the process that creates the socket (the common
 * ancestor of its holders) when it is that pid, else in a process made
 * with that pid, which must be free then; and a pair made directly
 * (socketpair) gives both ends the same credentials. */
static int check_peer_cred(const struct dump_ctx *ctx, const FileEntry *fe, const char *where, cr_error_t *err)
{
	const UnixSkEntry *e = fe->unix_sk, *peer = NULL;
	const UnixPeerCred *c = e->peer_cred;
	const FileEntry *pfe = NULL;
	pid_t maker;

	if (c == NULL)
		return 0;
	if (e->has_peer && e->peer != 0 && (pfe = file_of_ino(ctx, e->peer)) != NULL)
		peer = pfe->unix_sk;
	if (peer != NULL && peer->has_peer && peer->peer == e->ino && e->state != USK_LISTEN &&
	    !has_listener(ctx, e) && !has_listener(ctx, peer) && !same_cred(c, peer->peer_cred))
		return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: connected to socket:[%u] by "
				"pid %d uid %u while that end reports pid %d uid %u (SO_PEERCRED), through a "
				"listener no longer open", where, e->ino, peer->ino, peer->peer_cred ? peer->peer_cred->pid : 0,
				peer->peer_cred ? peer->peer_cred->uid : 0, c->pid, c->uid);
	maker = holders_above(ctx, fe, 0);
	maker = holders_above(ctx, pfe, maker);
	if (e->has_pending_on)
		maker = holders_above(ctx, file_of_ino(ctx, e->pending_on), maker);
	if (task_of(ctx, c->pid) != NULL) {
		/* Below the holders, it does not exist yet when they make the
		 * socket; above them, it makes it itself (unix_made_by). */
		if (maker != 0 && !descends(ctx, c->pid, maker) && !descends(ctx, maker, c->pid))
			return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: its connection was made by "
					"pid %d (SO_PEERCRED), a process the restore creates before pid %d makes the "
					"socket", where, e->ino, c->pid, maker);
		return 0;
	}
	if (kill(c->pid, 0) == 0 || errno != ESRCH)
		return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: its connection was made by pid %d "
				"(SO_PEERCRED), outside the dump and running", where, e->ino, c->pid);
	return 0;
}

/* The pid namespace of pid b, `up` levels up, is the one of pid a. */
static bool ns_above_is(pid_t b, int up, pid_t a)
{
	char path[64];
	struct stat want, got;
	cleanup_close int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", a);
	if (stat(path, &want) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < up; i++) {
		int parent = ioctl(fd, NS_GET_PARENT);

		close(fd);
		fd = parent;
	}
	return fd >= 0 && fstat(fd, &got) == 0 && got.st_ino == want.st_ino && got.st_dev == want.st_dev;
}

/* *pid, a live process cr sees: the pid it has in the pid namespace of
 * `in`, a process of the dump. */
static int pid_seen_in(pid_t in, int32_t *pid, const char *what, cr_error_t *err)
{
	struct proc_status a, b;
	int r = 0;

	if (proc_read_status(in, 0, &a, err) < 0)
		return -1;
	if (proc_read_status(*pid, 0, &b, err) < 0) {
		proc_status_free(&a);
		return cr_error_wrap(err, "%s, pid %d", what, *pid);
	}
	if (b.n_levels < a.n_levels || a.n_levels < 1 || !ns_above_is(*pid, b.n_levels - a.n_levels, in))
		r = cr_error(err, 0, "unsupported: %s, pid %d, has no pid in the pid namespace of pid %d", what, *pid,
			     in);
	else
		*pid = b.ns_pid[a.n_levels - 1];
	proc_status_free(&a);
	proc_status_free(&b);
	return r;
}

/* The restore makes a connection again in the process that creates the
 * socket, in that process's pid namespace: a tree in a pid namespace of its
 * own gets the maker's pid there, and a maker that is gone has none cr can
 * read (only in cr's own namespace is a dead maker's pid the one the
 * restore can take again). */
static int peer_pids_for_restore(const struct dump_ctx *ctx, FileEntry *fe, const char *where, cr_error_t *err)
{
	UnixSkEntry *e = fe->unix_sk;
	pid_t maker = holders_above(ctx, fe, 0);

	if (e->peer_cred == NULL || maker == 0 || proc_shares_ns(maker, "pid"))
		return 0;
	if (task_of(ctx, e->peer_cred->pid) == NULL)
		return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: its connection was made by pid %d "
				"(SO_PEERCRED), which is gone, in a tree with a pid namespace of its own (the "
				"restore has no pid of that namespace to make it with)", where, e->ino,
				e->peer_cred->pid);
	if (pid_seen_in(maker, &e->peer_cred->pid, "the maker of its connection", err) < 0 ||
	    (e->connector != NULL && pid_seen_in(maker, &e->connector->pid, "the connector", err) < 0))
		return cr_error_wrap(err, "%s (unix socket): socket:[%u]", where, e->ino);
	return 0;
}

static size_t usk_root(size_t *up, size_t i)
{
	while (up[i] != i)
		i = up[i] = up[up[i]];
	return i;
}

/* Two sockets of one group (made together at restore) bound to the same
 * path, one whose file was gone at dump and one whose file was not: the
 * restore puts the gone one's file at the path for the while the group is
 * made, where the other must be bound and reached too. */
static int check_same_path(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free const FileEntry **v = xcalloc(ctx->files.n + 1, sizeof(*v));
	cleanup_free size_t *up = NULL;
	size_t n = 0;

	/* The unix sockets alone: a process may hold thousands of files. */
	for (size_t i = 0; i < ctx->files.n; i++)
		if (ctx->files.v[i]->kind == FILE_KIND__FILE_UNIX_SOCKET && ctx->files.v[i]->unix_sk != NULL)
			v[n++] = ctx->files.v[i];
	up = xcalloc(n + 1, sizeof(*up));
	for (size_t i = 0; i < n; i++)
		up[i] = i;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (related(v[i]->unix_sk, v[j]->unix_sk))
				up[usk_root(up, i)] = usk_root(up, j);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			const UnixSkEntry *a = v[i]->unix_sk, *b = v[j]->unix_sk;
			char where[64], path[SUN_PATH_MAX + 2];

			if (i == j || !a->has_name || !is_path(&a->name) || a->name_on_disk || !b->name_on_disk ||
			    !name_is(b, &a->name) || usk_root(up, i) != usk_root(up, j))
				continue;
			where_of(ctx, v[i], where, sizeof(where));
			return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: bound to %s, whose file is "
					"gone, while socket:[%u] of its group is bound there too, at the file now at "
					"that path", where, a->ino, name_str(&a->name, path), b->ino);
		}
	return 0;
}

/* A peer that no process held when its socket was dumped must have been
 * in flight in a queue of the dump, recorded since. */
static int unix_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->files.n; i++) {
		const FileEntry *fe = ctx->files.v[i];
		const UnixSkEntry *e = fe->unix_sk;
		char where[64];

		if (fe->kind != FILE_KIND__FILE_UNIX_SOCKET || e == NULL)
			continue;
		where_of(ctx, fe, where, sizeof(where));
		if (check_peer_cred(ctx, fe, where, err) < 0)
			return -1;
		if (!e->has_peer || e->peer == 0 ||
		    e->peer == e->ino || e->has_ext_peer || entry_of_ino(ctx, e->peer) != NULL)
			continue;
		return cr_error(err, 0, "%s (unix socket): socket:[%u]: unsupported: its peer socket:[%u] is open in no "
				"process (held by the kernel, or in flight outside the dump's queues)", where, e->ino,
				e->peer);
	}
	if (check_same_path(ctx, err) < 0)
		return -1;
	/* Once every check has compared the pids cr sees. */
	for (size_t i = 0; i < ctx->files.n; i++) {
		char where[64];

		if (ctx->files.v[i]->kind != FILE_KIND__FILE_UNIX_SOCKET || ctx->files.v[i]->unix_sk == NULL)
			continue;
		where_of(ctx, ctx->files.v[i], where, sizeof(where));
		if (peer_pids_for_restore(ctx, ctx->files.v[i], where, err) < 0)
			return -1;
	}
	return 0;
}

/* The process that made the connection (socketpair, listen, connect):
 * when it is an ancestor of the holders, it makes the component itself. */
static pid_t unix_made_by(const FileEntry *fe)
{
	const UnixSkEntry *e = fe->unix_sk;

	return e != NULL && e->peer_cred != NULL ? e->peer_cred->pid : 0;
}

const struct fd_kind fdkind_unix = {
	.kind = FILE_KIND__FILE_UNIX_SOCKET,
	.shareable = true,
	.aside = 1,
	.first = first_of_component,
	.made_by = unix_made_by,
	.prepare = unix_prepare,
	.check_tree = unix_check_tree,
	.name = "unix socket", .match = unix_match, .dump = unix_dump, .validate = unix_sk_validate,
	.open = unix_sk_open,
};
