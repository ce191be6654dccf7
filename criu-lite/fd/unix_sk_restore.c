/* Unix sockets, restore side.
 *
 * The first socket asked for is created together with its component: the
 * sockets of the image it is connected to, was accepted from, or received
 * datagrams from, and so on.  In this order:
 *   1. listening sockets: socket, bind, listen with the dumped backlog;
 *   2. connected stream and seqpacket sockets: through their listener when
 *      one end was accepted from a listening socket of the component
 *      (connect + accept, which gives the accepted end its name), otherwise
 *      socketpair and a bind of each named end; a closed peer is played by
 *      a stand-in, closed at step 6;
 *   3. datagram sockets: a socketpair for two connected to each other, a
 *      stand-in for a closed peer, else a socket of their own, bound;
 *   4. buffer sizes, then every receive queue, written again by its
 *      sender: the peer, the socket bound to the sender's name, or a
 *      temporary socket bound to that name;
 *   5. datagram sockets connected one way, by the peer's name: only now,
 *      as a connected socket takes datagrams from its peer alone;
 *   6. stand-ins closed; shutdown state, SO_PEEK_OFF, SO_PASSCRED.
 * Each socket is then stashed as the anchor of its file entry.
 *
 * Path names: a socket file left behind by the dumped socket (the inode
 * recorded at dump) is unlinked and bound again, with the dumped mode and
 * owner; any other file at that path stops the restore.  A name whose file
 * was already unlinked at dump is bound and unlinked again. */
#include "fd/unix_sk.h"
#include "fd/fdshare.h"
#include "os/log.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

struct usk {
	const FileEntry *fe;
	const UnixSkEntry *e;
	int fd;
	int stand_in;        /* plays a closed peer until the queue is written */
	struct usk *mate;    /* created connected to this one */
};

struct component {
	struct usk *v;
	size_t n;
};

static void component_free(struct component *c)
{
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

int unix_sk_validate(const FileEntry *fe, cr_error_t *err)
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
	if ((e->type == SOCK_STREAM && e->n_queue > 1) || (e->n_queue_from && e->n_queue_from != e->n_queue))
		return cr_error(err, 0, "socket:[%u] has a malformed queue", e->ino);
	for (size_t i = 0; i < e->n_queue_from; i++)
		if (e->queue_from[i].len > SUN_PATH_MAX)
			return cr_error(err, 0, "socket:[%u]: a sender name is too long", e->ino);
	return 0;
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

static void leave_dir(int *saved)
{
	if (*saved < 0)
		return;
	if (fchdir(*saved) < 0)
		pr_warn("cannot go back to the restorer's directory: %s", strerror(errno));
	close(*saved);
}
#define cleanup_dir __attribute__((cleanup(leave_dir)))

/* Relative names resolve from the directory recorded at dump. */
static int enter_dir(const UnixSkEntry *e, int *saved, cr_error_t *err)
{
	if (e->bind_dir == NULL)
		return 0;
	*saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*saved < 0)
		return cr_error(err, errno, "open the current directory");
	if (chdir(e->bind_dir) < 0)
		return cr_error(err, errno, "chdir %s", e->bind_dir);
	return 0;
}

/* Makes room at the path: only the dumped socket's own file goes. */
static int clear_path(const UnixSkEntry *e, const char *path, cr_error_t *err)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : cr_error(err, errno, "stat %s", path);
	if (!e->name_on_disk || !S_ISSOCK(st.st_mode) || st.st_ino != e->name_ino || st.st_dev != e->name_dev)
		return cr_error(err, 0, "%s exists and is not the socket file of the dump; remove it to restore "
				"the socket bound there", path);
	if (unlink(path) < 0)
		return cr_error(err, errno, "remove the old socket file %s", path);
	return 0;
}

static int finish_path(const UnixSkEntry *e, const char *path, cr_error_t *err)
{
	if (!e->name_on_disk)
		return unlink(path) < 0 ? cr_error(err, errno, "unlink %s (it was unlinked at dump)", path) : 0;
	if (fchownat(AT_FDCWD, path, e->name_uid, e->name_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return cr_error(err, errno, "chown %s", path);
	if (fchmodat(AT_FDCWD, path, e->name_mode, 0) < 0)
		return cr_error(err, errno, "chmod %s", path);
	return 0;
}

static int bind_name(const struct usk *u, int fd, cr_error_t *err)
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
	if (enter_dir(e, &saved, err) < 0 || clear_path(e, path, err) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sun, len) < 0)
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
	if (listen(u->fd, (int)u->e->backlog) < 0)
		return cr_error(err, errno, "listen");
	return 0;
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
	if ((client != NULL && bind_name(client, cfd, err) < 0) || connect_name(cfd, l, err) < 0)
		return -1;
	server->fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (server->fd < 0)
		return cr_error(err, errno, "accept the connection again");
	return 0;
}

static int pair_directly(struct usk *a, struct usk *b, cr_error_t *err)
{
	int sv[2];

	if (socketpair(AF_UNIX, (int)a->e->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return cr_error(err, errno, "socketpair");
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

static int create_one(struct component *c, struct usk *u, cr_error_t *err)
{
	struct usk *peer = NULL;

	if (u->e->has_peer && u->e->peer != 0 && (peer = find_ino(c, u->e->peer)) == NULL)
		return cr_error(err, 0, "its peer socket:[%u] is not in the image", u->e->peer);
	if (u->e->has_peer && (u->e->type != SOCK_DGRAM || u->e->peer == 0 || mutual(u, peer)))
		return make_pair(c, u, peer, err);
	u->fd = new_socket(u->e->type, err);
	if (u->fd < 0)
		return -1;
	return bind_name(u, u->fd, err);
}

static int create_sockets(struct component *c, cr_error_t *err)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].e->state == USK_LISTEN && create_listener(&c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].fd < 0 && create_one(c, &c->v[i], err) < 0)
			return cr_error_wrap(err, "socket:[%u]", c->v[i].e->ino);
	return 0;
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

static int send_all(int fd, const ProtobufCBinaryData *d, bool one_message, cr_error_t *err)
{
	size_t done = 0;

	do {
		ssize_t n = send(fd, d->data + done, d->len - done, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return cr_error(err, errno, "write %zu queued bytes", d->len - done);
		if (one_message && (size_t)n != d->len)
			return cr_error(err, 0, "a %zu-byte message went out as %zd bytes", d->len, n);
		done += (size_t)n;
	} while (done < d->len);
	return 0;
}

static int send_to_name(int fd, const struct usk *to, const ProtobufCBinaryData *msg, cr_error_t *err)
{
	cleanup_dir int saved = -1;
	struct sockaddr_un sun;
	socklen_t len = name_addr(&to->e->name, &sun);
	ssize_t n;

	if (!to->e->has_name)
		return cr_error(err, 0, "no way to send it to an unnamed socket but from its peer");
	if (enter_dir(to->e, &saved, err) < 0)
		return -1;
	n = sendto(fd, msg->data, msg->len, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sun, len);
	if (n != (ssize_t)msg->len)
		return cr_error(err, n < 0 ? errno : 0, "send a %zu-byte datagram", msg->len);
	return 0;
}

/* A sender that no longer exists, bound to its name if it had one (the
 * receiver sees that name as the datagram's source). */
static int send_from_stand_in(const struct usk *to, const ProtobufCBinaryData *from,
			      const ProtobufCBinaryData *msg, cr_error_t *err)
{
	cleanup_close int fd = new_socket(SOCK_DGRAM, err);
	char str[SUN_PATH_MAX + 2];
	struct sockaddr_un sun;
	socklen_t len = name_addr(from, &sun);
	int r;

	if (fd < 0)
		return -1;
	name_str(from, str);
	if (from->len > 0 && is_path(from) && from->data[0] != '/')
		return cr_error(err, 0, "its sender %s (a relative name, gone) cannot be recreated", str);
	if (from->len > 0 && bind(fd, (struct sockaddr *)&sun, len) < 0)
		return cr_error(err, errno, "bind a stand-in for its sender %s", str);
	r = send_to_name(fd, to, msg, err);
	if (is_path(from) && unlink(str) < 0)
		pr_warn("cannot remove %s, bound for a moment to resend a datagram: %s", str, strerror(errno));
	return r;
}

static int send_datagram(struct component *c, const struct usk *to, const ProtobufCBinaryData *from,
			 const ProtobufCBinaryData *msg, cr_error_t *err)
{
	if (to->mate != NULL && name_is(to->mate->e, from))
		return send_all(to->mate->fd, msg, true, err);
	if (to->stand_in >= 0 && from->len == 0)
		return send_all(to->stand_in, msg, true, err);
	for (size_t i = 0; i < c->n && from->len > 0; i++)
		if (c->v[i].e->type == SOCK_DGRAM && name_is(c->v[i].e, from))
			return send_to_name(c->v[i].fd, to, msg, err);
	return send_from_stand_in(to, from, msg, err);
}

static int fill_queue(struct component *c, const struct usk *u, cr_error_t *err)
{
	static const ProtobufCBinaryData unnamed = { 0, NULL };
	int sender = u->mate != NULL ? u->mate->fd : u->stand_in;

	for (size_t i = 0; i < u->e->n_queue; i++) {
		const ProtobufCBinaryData *msg = &u->e->queue[i];
		int r;

		if (u->e->type == SOCK_DGRAM)
			r = send_datagram(c, u, i < u->e->n_queue_from ? &u->e->queue_from[i] : &unnamed, msg, err);
		else if (sender < 0)
			r = cr_error(err, 0, "queued data, but no peer to send it");
		else
			r = send_all(sender, msg, u->e->type == SOCK_SEQPACKET, err);
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
		if (connect_name(u->fd, find_ino(c, u->e->peer), err) < 0)
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
	return 0;
}

static int finish(struct component *c, cr_error_t *err)
{
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

static bool related(const UnixSkEntry *a, const UnixSkEntry *b)
{
	return (a->has_peer && a->peer == b->ino) || (b->has_peer && b->peer == a->ino) || accepted_from(a, b) ||
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

static int collect(const struct restore_ctx *ctx, const FileEntry *fe, struct component *c, cr_error_t *err)
{
	c->v = calloc(ctx->n_files + 1, sizeof(*c->v));
	if (c->v == NULL)
		return cr_error(err, ENOMEM, "unix sockets");
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
	return 0;
}

static int restore_component(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			     cr_error_t *err)
{
	__attribute__((cleanup(component_free))) struct component c = { 0 };

	if (collect(ctx, fe, &c, err) < 0 || create_sockets(&c, err) < 0 || set_buffers(&c, err) < 0 ||
	    fill_queues(&c, err) < 0 || connect_one_way(&c, err) < 0 || finish(&c, err) < 0)
		return -1;
	return stash_all(t, &c, err);
}

int unix_sk_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	struct fd_anchor *a = fd_anchor_find(fe->id);

	if (a == NULL && restore_component(ctx, t, fe, err) < 0)
		return cr_error_wrap(err, "unix socket socket:[%u]", fe->unix_sk->ino);
	a = fd_anchor_find(fe->id);
	if (a == NULL)
		return cr_error(err, 0, "unix socket socket:[%u] was not created", fe->unix_sk->ino);
	return fd_anchor_open(a, 0, fe, err);
}
