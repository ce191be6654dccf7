/* Unix sockets, dump side, and their fd kind.
 *
 * What is refused (the dump fails naming pid, fd and kind): a socket or
 * peer also open outside the dumped process, a listening socket with
 * connections not yet accepted, file descriptors in flight (SCM_RIGHTS) in
 * a queue, a datagram socket connected one way to an unnamed socket, and a
 * queue larger than FDKIND_MAX_DATA. */
#include "fd/unix_sk.h"
#include "fd/fdshare.h"
#include "os/log.h"
#include "fd/unix_diag.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

#define MAX_MESSAGES (1u << 20)
#define CMSG_ROOM    4096

/* What every message names. */
struct who {
	pid_t pid;
	int fd;
	uint32_t ino;
};

#define WHO_FMT "pid %d fd %d: unix socket socket:[%u]"
#define WHO_ARGS(w) (w)->pid, (w)->fd, (w)->ino

/* ------------------------------------------------------------- matching */

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

static int check_peer(const struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d, cr_error_t *err)
{
	char link[32];
	pid_t other;
	int r;

	if (!d->has_peer || d->peer == 0 || d->peer == d->ino)
		return 0;
	snprintf(link, sizeof(link), "socket:[%u]", d->peer);
	r = fdshare_held_by(ctx, link, w->pid, &other, err);
	if (r < 0)
		return -1;
	if (r == 1)
		return 0;
	if (other != 0 && fdshare_in_dump(ctx, other))
		return cr_error(err, 0, WHO_FMT ": unsupported: its peer %s is in pid %d; connections between "
				"processes are not supported yet", WHO_ARGS(w), link, other);
	if (other != 0)
		return cr_error(err, 0, WHO_FMT ": unsupported: its peer %s is in pid %d, outside the dump",
				WHO_ARGS(w), link, other);
	return cr_error(err, 0, WHO_FMT ": unsupported: its peer %s is open in no process (in flight, or held "
			"by the kernel)", WHO_ARGS(w), link);
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

static int check_supported(const struct dump_ctx *ctx, const struct who *w, const struct unix_diag *d,
			   cr_error_t *err)
{
	if (d->type != SOCK_STREAM && d->type != SOCK_DGRAM && d->type != SOCK_SEQPACKET)
		return cr_error(err, 0, WHO_FMT ": unsupported socket type %u", WHO_ARGS(w), d->type);
	if (d->state != USK_LISTEN && d->state != USK_ESTABLISHED && d->state != USK_CLOSE)
		return cr_error(err, 0, WHO_FMT ": unsupported socket state %u", WHO_ARGS(w), d->state);
	if (d->state == USK_LISTEN && (d->n_icons > 0 || d->rqueue > 0))
		return cr_error(err, 0, WHO_FMT ": unsupported: listening with %u connections not accepted yet",
				WHO_ARGS(w), d->n_icons > d->rqueue ? d->n_icons : d->rqueue);
	if (check_peer(ctx, w, d, err) < 0)
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

/* Closes any file descriptor the peek brought along; true if there were. */
static bool drop_passed_fds(struct msghdr *mh)
{
	bool had = false;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);

		if (c->cmsg_level != SOL_SOCKET || (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
			continue;
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		had |= c->cmsg_type == SCM_RIGHTS;
	}
	return had;
}

/* One MSG_PEEK, with the sender's address in *from (when given): the
 * bytes peeked, -2 when nothing is queued, -1 on error. */
static ssize_t peek(const struct who *w, int fd, void *buf, size_t len, int flags, struct sockaddr_un *from,
		    socklen_t *from_len, cr_error_t *err)
{
	struct sockaddr_un sun;
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
	if (drop_passed_fds(&mh) || (mh.msg_flags & MSG_CTRUNC))
		return cr_error(err, 0, WHO_FMT ": unsupported: its queue holds file descriptors in flight "
				"(SCM_RIGHTS)", WHO_ARGS(w));
	if (from != NULL) {
		*from = sun;
		*from_len = mh.msg_namelen;
	}
	return n;
}

/* Exactly the queued bytes: a peek past the end would take the socket's
 * pending error (sock_error()) on the way. */
static int peek_stream(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
		       UnixSkEntry *e, cr_error_t *err)
{
	size_t want = d->rqueue, got = 0;
	uint8_t *buf;
	ssize_t n = 0;

	if (want == 0)
		return 0;
	if (want > FDKIND_MAX_DATA)
		return cr_error(err, 0, WHO_FMT ": %zu bytes queued; cr keeps at most %u MiB in the image",
				WHO_ARGS(w), want, FDKIND_MAX_DATA >> 20);
	buf = arena_alloc(&ctx->arena, want);
	while (got < want && (n = peek(w, fd, buf + got, want - got, 0, NULL, NULL, err)) > 0)
		got += (size_t)n;
	if (n == -1)
		return -1;
	if (got != want)
		return cr_error(err, 0, WHO_FMT ": peeked %zu of its %zu queued bytes (out-of-band data?)",
				WHO_ARGS(w), got, want);
	e->queue = arena_new(&ctx->arena, ProtobufCBinaryData);
	e->queue[0].data = buf;
	e->queue[0].len = got;
	e->n_queue = 1;
	return 0;
}

/* The queued messages, grown as they are found. */
struct messages {
	ProtobufCBinaryData *data, *from;
	size_t n, cap, bytes;
};

static int messages_add(struct dump_ctx *ctx, struct messages *m, const struct who *w, size_t len,
			cr_error_t *err)
{
	m->bytes += len;
	if (m->bytes > FDKIND_MAX_DATA || m->n == MAX_MESSAGES)
		return cr_error(err, 0, WHO_FMT ": more than %u MiB or %u messages queued; cr keeps at most that "
				"in the image", WHO_ARGS(w), FDKIND_MAX_DATA >> 20, MAX_MESSAGES);
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		ProtobufCBinaryData *data = arena_array(&ctx->arena, ProtobufCBinaryData, cap);
		ProtobufCBinaryData *from = arena_array(&ctx->arena, ProtobufCBinaryData, cap);

		if (m->n) {
			memcpy(data, m->data, m->n * sizeof(*data));
			memcpy(from, m->from, m->n * sizeof(*from));
		}
		m->data = data;
		m->from = from;
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

/* The next message: its length first (MSG_TRUNC on an empty buffer moves
 * the peek offset by nothing), then its bytes.  1, or 0 at the end. */
static int peek_message(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
			struct messages *m, cr_error_t *err)
{
	struct sockaddr_un from;
	socklen_t from_len = 0;
	ssize_t len = peek(w, fd, NULL, 0, MSG_TRUNC, &from, &from_len, err), n;
	uint8_t *buf;

	if (len == -2 || (len == 0 && d->type == SOCK_SEQPACKET && (d->shutdown & USK_RCV_SHUTDOWN) &&
			  m->bytes == d->rqueue))
		return 0;   /* the end (a shut-down seqpacket socket reads 0 there) */
	if (len < 0 || messages_add(ctx, m, w, (size_t)len, err) < 0)
		return -1;
	buf = arena_alloc(&ctx->arena, (size_t)len);
	if (len > 0 && (n = peek(w, fd, buf, (size_t)len, 0, NULL, NULL, err)) != len)
		return n == -1 ? -1 : cr_error(err, 0, WHO_FMT ": a %zd-byte message peeked as %zd bytes",
					       WHO_ARGS(w), len, n);
	m->data[m->n] = (ProtobufCBinaryData){ .data = buf, .len = (size_t)len };
	m->from[m->n] = sender_name(&ctx->arena, &from, from_len);
	m->n++;
	return 1;
}

static int peek_messages(struct dump_ctx *ctx, const struct who *w, int fd, const struct unix_diag *d,
			 UnixSkEntry *e, cr_error_t *err)
{
	struct messages m = { 0 };
	int r;

	while ((r = peek_message(ctx, w, fd, d, &m, err)) == 1)
		;
	if (r < 0)
		return -1;
	e->queue = m.data;
	e->n_queue = m.n;
	if (d->type == SOCK_DGRAM) {
		e->queue_from = m.from;
		e->n_queue_from = m.n;
	}
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

/* The socket file of a path name, seen from the process: through its root
 * (absolute names) or its cwd (relative ones, whose cwd is recorded). */
static int name_on_disk(struct dump_ctx *ctx, pid_t pid, const char *name, const struct unix_diag *d,
			UnixSkEntry *e, cr_error_t *err)
{
	char path[PATH_MAX + 64], cwd[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (name[0] == '/') {
		snprintf(path, sizeof(path), "/proc/%d/root%s", pid, name);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
		n = readlink(path, cwd, sizeof(cwd) - 1);
		if (n < 0)
			return cr_error(err, errno, "readlink %s", path);
		cwd[n] = '\0';
		e->bind_dir = arena_strdup(&ctx->arena, cwd);
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", pid, name);
	}
	if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode) || !d->has_vfs || st.st_ino != d->vfs_ino)
		return 0;   /* unlinked or replaced since it was bound */
	e->has_name_on_disk = e->name_on_disk = true;
	e->has_name_dev = e->has_name_mode = e->has_name_uid = e->has_name_gid = true;
	e->name_dev = st.st_dev;
	e->name_mode = st.st_mode & 07777;
	e->name_uid = st.st_uid;
	e->name_gid = st.st_gid;
	return 0;
}

static int record_name(struct dump_ctx *ctx, pid_t pid, const struct unix_diag *d, UnixSkEntry *e,
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
	return name_on_disk(ctx, pid, name, d, e, err);
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
	struct who w = { .pid = t->pid, .fd = p->fd, .ino = (uint32_t)p->st.st_ino };
	UnixSkEntry *e = arena_new(&ctx->arena, UnixSkEntry);
	cleanup_close int dup = -1;
	struct unix_diag d;
	int r = unix_diag_lookup(w.ino, &d, err);

	if (r <= 0)
		return r < 0 ? -1 : cr_error(err, 0, WHO_FMT ": sock_diag no longer knows it", WHO_ARGS(&w));
	if (check_supported(ctx, &w, &d, err) < 0 || fdshare_refuse_shared(ctx, t->pid, p, "unix socket", err) < 0)
		return -1;
	unix_sk_entry__init(e);
	fill_from_diag(&d, e);
	dup = fdkind_steal_fd(t->pid, p->fd, err);
	if (dup < 0 || read_options(dup, e, err) < 0)
		return -1;
	if (read_queue(ctx, &w, dup, &d, e, err) < 0)
		return -1;
	if (record_name(ctx, t->pid, &d, e, err) < 0)
		return cr_error_wrap(err, WHO_FMT, WHO_ARGS(&w));
	fe->kind = FILE_KIND__FILE_UNIX_SOCKET;
	fe->unix_sk = e;
	return 0;
}

const struct fd_kind fdkind_unix = {
	.name = "unix socket", .match = unix_match, .dump = unix_dump, .validate = unix_sk_validate,
	.open = unix_sk_open,
};
