#include "fd/unix_diag.h"
#include "net/netlink.h"
#include "os/proc.h"
#include "os/xalloc.h"

#include <errno.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <string.h>
#include <sys/socket.h>

/* UDIAG_SHOW_UID and later flags are not needed. */
#define SHOW_ALL (UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN | \
		  UDIAG_SHOW_MEMINFO)

struct reply {
	uint32_t ino;
	struct unix_diag *out;
	bool found;
	uint32_t client;   /* a dump of listeners: the one whose queue holds its connection */
};


/* Copies attribute a of at least size bytes into dst; false if short. */
static bool attr_copy(const struct nlattr *a, void *dst, size_t size)
{
	if (a == NULL || (size_t)nla_len(a) < size)
		return false;
	memcpy(dst, nla_data(a), size);
	return true;
}

static void parse_attrs(struct nlattr **tb, struct unix_diag *d)
{
	struct unix_diag_vfs vfs;
	struct unix_diag_rqlen rq;
	uint32_t mem[SK_MEMINFO_VARS];

	if (tb[UNIX_DIAG_NAME] != NULL) {
		d->name_len = (size_t)nla_len(tb[UNIX_DIAG_NAME]);
		if (d->name_len > sizeof(d->name))
			d->name_len = sizeof(d->name);
		memcpy(d->name, nla_data(tb[UNIX_DIAG_NAME]), d->name_len);
	}
	d->has_vfs = attr_copy(tb[UNIX_DIAG_VFS], &vfs, sizeof(vfs));
	if (d->has_vfs)
		d->vfs_ino = vfs.udiag_vfs_ino;
	d->has_peer = attr_copy(tb[UNIX_DIAG_PEER], &d->peer, sizeof(d->peer));
	if (attr_copy(tb[UNIX_DIAG_RQLEN], &rq, sizeof(rq))) {
		d->rqueue = rq.udiag_rqueue;
		d->wqueue = rq.udiag_wqueue;
	}
	attr_copy(tb[UNIX_DIAG_SHUTDOWN], &d->shutdown, sizeof(d->shutdown));
	if (attr_copy(tb[UNIX_DIAG_MEMINFO], mem, sizeof(mem)))
		d->sndbuf = mem[SK_MEMINFO_SNDBUF];
	if (tb[UNIX_DIAG_ICONS] != NULL) {
		d->n_icons = (uint32_t)nla_len(tb[UNIX_DIAG_ICONS]) / sizeof(uint32_t);
		memcpy(d->icons, nla_data(tb[UNIX_DIAG_ICONS]),
		       (d->n_icons < UNIX_DIAG_ICONS_MAX ? d->n_icons : UNIX_DIAG_ICONS_MAX) * sizeof(uint32_t));
	}
}

static int on_listener(struct reply *r, const struct unix_diag_msg *m, struct nlattr **tb)
{
	const uint32_t *icons;
	size_t n;

	if (tb[UNIX_DIAG_ICONS] == NULL)
		return NL_OK;
	icons = nla_data(tb[UNIX_DIAG_ICONS]);
	n = (size_t)nla_len(tb[UNIX_DIAG_ICONS]) / sizeof(*icons);
	for (size_t i = 0; i < n; i++) {
		if (icons[i] == r->client) {
			r->ino = m->udiag_ino;
			r->found = true;
		}
	}
	return NL_OK;
}

static int on_reply(struct nl_msg *msg, void *arg)
{
	struct reply *r = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[UNIX_DIAG_MAX + 1];
	const struct unix_diag_msg *m;

	if (nlmsg_datalen(h) < (int)sizeof(*m) || nlmsg_parse(h, sizeof(*m), tb, UNIX_DIAG_MAX, NULL) < 0)
		return NL_SKIP;
	m = nlmsg_data(h);
	if (m->udiag_family != AF_UNIX || (r->client == 0 && m->udiag_ino != r->ino))
		return NL_SKIP;
	if (r->client != 0)
		return r->found ? NL_OK : on_listener(r, m, tb);
	memset(r->out, 0, sizeof(*r->out));
	r->out->ino = m->udiag_ino;
	r->out->type = m->udiag_type;
	r->out->state = m->udiag_state;
	parse_attrs(tb, r->out);
	r->found = true;
	return NL_OK;
}

/* ino 0: every listening socket. */
static int ask(struct nl_sock *sk, uint32_t ino, cr_error_t *err)
{
	struct unix_diag_req req = {
		.sdiag_family = AF_UNIX,
		.udiag_states = ino ? ~0u : 1u << 10,   /* TCP_LISTEN */
		.udiag_ino = ino,
		.udiag_show = ino ? SHOW_ALL : UDIAG_SHOW_ICONS,
		.udiag_cookie = { ~0u, ~0u },   /* INET_DIAG_NOCOOKIE: any socket with this inode */
	};
	int r = nl_send_simple(sk, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | (ino ? 0 : NLM_F_DUMP), &req, sizeof(req));

	if (r < 0)
		return cr_error(err, 0, "sock_diag: send: %s", nl_geterror(r));
	return 0;
}

/* The network namespaces a lookup searches, each with its sock_diag
 * socket (which stays in the namespace it was made in): cr's own first,
 * then each one unix_diag_add_ns was given a process of.  A unix socket's
 * inode is unique across namespaces, but sock_diag shows a namespace's
 * sockets only to a socket of that namespace. */
struct space {
	uint64_t ino;                  /* of the namespace */
	struct nl_sock *sk;
};

static struct {
	struct space *v;
	size_t n;
} spaces;

/* A sock_diag socket in the namespace this thread is in. */
static struct nl_sock *connect_here(cr_error_t *err)
{
	struct nl_sock *sk = NULL;

	if (crnl_open(NETLINK_SOCK_DIAG, &sk, err) < 0)
		return NULL;
	nl_socket_disable_auto_ack(sk);
	return sk;
}

/* The namespace of pid (0: cr's own) among those searched. */
static int add_space(pid_t pid, cr_error_t *err)
{
	struct nl_sock *sk;
	uint64_t ino = 0;
	int back = -1;

	if (proc_read_ns(pid, "net", &ino, err) < 0)
		return -1;
	for (size_t i = 0; i < spaces.n; i++)
		if (spaces.v[i].ino == ino)
			return 0;
	if (pid > 0 && netns_enter_pid(pid, &back, err) < 0)
		return cr_error_wrap(err, "the network namespace of pid %d", pid);
	sk = connect_here(err);
	if (back >= 0)
		netns_leave(&back);
	if (sk == NULL)
		return -1;
	spaces.v = xreallocarray(spaces.v, spaces.n + 1, sizeof(*spaces.v));
	spaces.v[spaces.n++] = (struct space){ ino, sk };
	return 0;
}

int unix_diag_add_ns(pid_t pid, cr_error_t *err)
{
	return add_space(0, err) < 0 ? -1 : add_space(pid, err);
}

/* One namespace's answer: 1 found, 0 not there, -1 an error. */
static int converse_in(struct nl_sock *sk, struct reply *reply, cr_error_t *err)
{
	int r;

	if (ask(sk, reply->client ? 0 : reply->ino, err) < 0)
		return -1;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_reply, reply);
	r = nl_recvmsgs_default(sk);
	if (r == -NLE_OBJ_NOTFOUND)
		return 0;   /* the kernel's ENOENT: no unix socket with that inode */
	if (r < 0)
		return cr_error(err, 0, "sock_diag: socket:[%u]: %s", reply->client ? reply->client : reply->ino,
				nl_geterror(r));
	return reply->found ? 1 : 0;
}

static int converse(struct reply *reply, cr_error_t *err)
{
	if (add_space(0, err) < 0)
		return -1;
	for (size_t i = 0; i < spaces.n; i++) {
		int r = converse_in(spaces.v[i].sk, reply, err);

		if (r != 0)
			return r;
	}
	return 0;
}

int unix_diag_lookup(uint32_t ino, struct unix_diag *out, cr_error_t *err)
{
	struct reply reply = { .ino = ino, .out = out };

	return converse(&reply, err);
}

int unix_diag_listener_of(uint32_t client, uint32_t *listener, cr_error_t *err)
{
	struct reply reply = { .client = client };
	int r = converse(&reply, err);

	if (r == 1)
		*listener = reply.ino;
	return r;
}
