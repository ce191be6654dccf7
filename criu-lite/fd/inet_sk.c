/* Inet sockets: TCP and UDP, over IPv4 and IPv6 (dual-stack IPv6 too).
 *
 * Dump: sock_diag (fd/inet_diag.h) finds the socket by inode in the
 * network namespace of its process and gives its state, addresses and
 * queues; its options are read with getsockopt on cr's duplicate of it
 * (pidfd_getfd, fd/sk_opts.h).  What comes back:
 *   - a listening TCP socket: bound to its address and port, listening
 *     with its backlog; connections not accepted yet are refused (their
 *     data and handshake cannot be rebuilt), or with --skip-in-flight
 *     dropped with a warning;
 *   - a TCP socket not connected (CLOSE): bound if it was;
 *   - a UDP socket, bound and connected as it was, with the datagrams
 *     queued for it (fd/udp_queue.h; dropped with a warning when they
 *     cannot come back as they were);
 *   - an established TCP connection, with cr dump --tcp-established
 *     (fd/tcp_stream.h: TCP_REPAIR, its traffic blocked meanwhile);
 * every one with its options, its multicast groups (fd/inet_mcast.h) and
 * O_NONBLOCK.  Every other TCP state (a
 * connection without that option, or one being made or closed) is refused
 * naming it.
 *
 * Restore: the socket is made by the process that holds it (or, shared
 * by a pool of workers, by their common ancestor before it forks: files.c)
 * in the network namespace it is in by then.  A TCP socket binds with
 * SO_REUSEADDR forced on (connections of the dumped one left in TIME_WAIT
 * would hold its port), put back as dumped once it listens.  An address
 * in use on this host fails the restore naming the socket and the port.
 *
 * Every other socket (raw, packet, SCTP, ...) is refused by files.c as an
 * unsupported kind, named by its protocol (sk_proto_name). */
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/inet_diag.h"
#include "fd/inet_mcast.h"
#include "fd/sk_opts.h"
#include "fd/tcp_stream.h"
#include "fd/tcp_timewait.h"
#include "fd/udp_queue.h"
#include "os/log.h"
#include "os/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* sk_state values (include/net/tcp_states.h). */
static const char *const tcp_states[] = {
	[1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1", [5] = "FIN_WAIT2",
	[6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT", [9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING",
	[12] = "NEW_SYN_RECV",
};
#define SK_ESTABLISHED 1
#define SK_CLOSE       7
#define SK_LISTEN      10
#define SK_BOUND_INACTIVE 13   /* sock_diag: bound, neither listening nor connected */


static const char *state_name(unsigned s)
{
	return s < ARRAY_SIZE(tcp_states) && tcp_states[s] ? tcp_states[s] : "unknown state";
}

static bool inet_match(const struct fd_probe *p)
{
	static const char *const names[] = { "TCP", "TCPv6", "UDP", "UDPv6", NULL };

	return sk_proto_is(p, names);
}

/* ------------------------------------------------------------------ dump */

/* "127.0.0.1:80" or "[::1]:80", for messages. */
static void endpoint(int family, const uint8_t *addr, unsigned port, char *out, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(out, size, family == AF_INET6 ? "[%s]:%u" : "%s:%u", a, port);
}

static char *addr_text(struct dump_ctx *ctx, int family, const uint8_t *addr)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	return arena_strdup(&ctx->arena, a);
}

static int check_tcp(struct dump_ctx *ctx, const struct inet_diag_sk *d, const char *me, InetSkEntry *e,
		     cr_error_t *err)
{
	char peer[INET6_ADDRSTRLEN + 8];

	endpoint(d->family, d->dst, d->dport, peer, sizeof(peer));
	if (d->state == SK_ESTABLISHED && ctx->opts->tcp_established)
		return 0;   /* tcp_stream_dump */
	if (d->state != SK_LISTEN && d->state != SK_CLOSE)
		return cr_error(err, 0, "TCP %s: unsupported: a TCP connection to %s (state %s); only listening and "
				"unconnected TCP sockets are restored%s", me, peer, state_name(d->state),
				d->state == SK_ESTABLISHED ? ", and established ones with --tcp-established" : "");
	if (d->state == SK_CLOSE && d->dport != 0)
		return cr_error(err, 0, "TCP %s: unsupported: a TCP connection that has ended (state CLOSE, its peer "
				"was %s)", me, peer);
	if (d->state != SK_LISTEN)
		return 0;
	e->has_backlog = true;
	e->backlog = d->wqueue;
	if (d->rqueue + d->half_open == 0)
		return 0;
	/* Those being made (SYN_RECV, or held by TCP_DEFER_ACCEPT until their
	 * client writes) would meet a listener that does not know them. */
	if (!ctx->opts->skip_in_flight)
		return cr_error(err, 0, "TCP %s: unsupported: %u connection(s) to this listening socket not accepted "
				"yet, %u of them being made (--skip-in-flight drops them)", me, d->rqueue + d->half_open,
				d->half_open);
	pr_warn("TCP %s: %u connection(s) not accepted yet are dropped (--skip-in-flight): their clients will see "
		"a reset", me, d->rqueue + d->half_open);
	e->has_dropped = true;
	e->dropped = d->rqueue + d->half_open;
	return 0;
}

static void fill(struct dump_ctx *ctx, const struct inet_diag_sk *d, InetSkEntry *e)
{
	e->ino = d->ino;
	e->family = d->family;
	e->proto = d->protocol;
	e->state = d->state;
	e->src_addr = addr_text(ctx, d->family, d->src);
	e->src_port = d->sport;
	if (d->dport != 0) {
		e->dst_addr = addr_text(ctx, d->family, d->dst);
		e->has_dst_port = true;
		e->dst_port = d->dport;
	}
	e->has_rqueue = e->has_wqueue = true;
	e->rqueue = d->rqueue;
	e->wqueue = d->wqueue;
}

/* The socket's family and protocol, from cr's duplicate. */
static int family_of(int fd, int *family, int *protocol, const char *link, cr_error_t *err)
{
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, family, &len) < 0)
		return cr_error(err, errno, "%s: SO_DOMAIN", link);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, protocol, &len) < 0)
		return cr_error(err, errno, "%s: SO_PROTOCOL", link);
	return 0;
}

/* A socket sock_diag does not list is in none of the kernel's tables: a
 * UDP socket never bound, a TCP socket never bound or whose connection
 * ended.  What it is comes from cr's duplicate. */
static int describe_unhashed(int fd, int family, int protocol, struct inet_diag_sk *d, bool *ended,
			     const char *link, cr_error_t *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct tcp_info ti;

	memset(d, 0, sizeof(*d));
	d->family = (uint8_t)family;
	d->protocol = (uint8_t)protocol;
	d->state = SK_CLOSE;
	len = sizeof(ti);
	if (d->protocol == IPPROTO_TCP && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
		d->state = ti.tcpi_state;
		*ended = ti.tcpi_segs_out != 0 || ti.tcpi_segs_in != 0;   /* it sent or got a segment once */
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return cr_error(err, errno, "%s: getsockname", link);
	if (ss.ss_family == AF_INET) {
		memcpy(d->src, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		d->sport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	} else {
		memcpy(d->src, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		d->sport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return 0;
}

#ifndef TCP_AO_INFO
#define TCP_AO_INFO 40   /* Linux 6.7 */
#endif

/* What no getsockopt gives back: TCP MD5 signature keys, TCP-AO keys
 * (TCP_AO_INFO answers ENOENT where there are none), an upper layer
 * protocol on the connection (kernel TLS and the like), and an urgent
 * byte not read yet (poll says POLLPRI): TCP_REPAIR reads the queue
 * without its urgent mark, so it would come back as an ordinary byte. */
static int check_keys(int fd, const struct inet_diag_sk *d, const char *me, cr_error_t *err)
{
	struct pollfd urg = { .fd = fd, .events = POLLPRI };
	uint64_t ao[16] = { 0 };
	char ulp[32] = "";
	socklen_t len = sizeof(ulp) - 1, ao_len = sizeof(ao);

	if (d->protocol == IPPROTO_TCP && getsockopt(fd, IPPROTO_TCP, TCP_AO_INFO, ao, &ao_len) == 0)
		return cr_error(err, 0, "TCP %s: unsupported: TCP-AO authentication keys, which cannot be read back", me);
	if (d->md5)
		return cr_error(err, 0, "TCP %s: unsupported: TCP MD5 signature keys (TCP_MD5SIG), which cannot be read "
				"back", me);
	if (d->protocol == IPPROTO_TCP && getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &len) == 0 && ulp[0] != '\0')
		return cr_error(err, 0, "TCP %s: unsupported: an upper layer protocol on the connection (TCP_ULP %s)", me,
				ulp);
	if (d->protocol == IPPROTO_TCP && poll(&urg, 1, 0) == 1 && (urg.revents & POLLPRI))
		return cr_error(err, 0, "TCP %s: unsupported: urgent data (MSG_OOB) not read yet, which would come back "
				"as an ordinary byte", me);
	return 0;
}

static int inet_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		     cr_error_t *err)
{
	InetSkEntry *e = arena_new(&ctx->arena, InetSkEntry);
	cleanup_close int dup = fdkind_steal_fd(p->pid, p->fd, err);
	struct inet_diag_sk d;
	struct sk_opts opts;
	char me[INET6_ADDRSTRLEN + 24];
	bool ended = false;
	int family = 0, protocol = 0, r;

	if (dup < 0 || sk_check_netns(p->pid, dup, p->link, err) < 0 || family_of(dup, &family, &protocol, p->link, err) < 0)
		return -1;
	r = inet_diag_lookup(t->pid, (uint32_t)p->st.st_ino, family, protocol, &d, err);
	if (r < 0 || (r == 0 && describe_unhashed(dup, family, protocol, &d, &ended, p->link, err) < 0))
		return -1;
	d.ino = (uint32_t)p->st.st_ino;
	endpoint(d.family, d.src, d.sport, me, sizeof(me));
	snprintf(me + strlen(me), sizeof(me) - strlen(me), " (socket:[%lu])", (unsigned long)p->st.st_ino);
	if (d.state == SK_BOUND_INACTIVE)
		d.state = SK_CLOSE;
	if (ended && d.state == SK_CLOSE)
		return cr_error(err, 0, "TCP %s: unsupported: a TCP connection that has ended (state CLOSE)", me);
	if (sk_check_flags(fe, me, err) < 0)
		return -1;
	inet_sk_entry__init(e);
	if (fdshare_refuse_outside(ctx, t->pid, p, "inet socket", err) < 0)
		return -1;
	if (d.protocol == IPPROTO_TCP && check_tcp(ctx, &d, me, e, err) < 0)
		return -1;
	if (sk_opts_check_filter(dup, err) < 0 || check_keys(dup, &d, me, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (sk_opts_dump(&ctx->arena, dup, d.family, d.protocol == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM, d.protocol,
			 d.state == SK_ESTABLISHED, &opts, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (inet_mcast_dump(&ctx->arena, p->pid, dup, d.family, d.protocol == IPPROTO_TCP, me, e, err) < 0)
		return -1;
	if (d.protocol == IPPROTO_UDP && udp_queue_dump(ctx, dup, &d, &opts, me, e, err) < 0)
		return -1;
	if (d.protocol == IPPROTO_TCP && d.state == SK_ESTABLISHED && tcp_stream_dump(ctx, t, p->fd, dup, &d, e, err) < 0)
		return cr_error_wrap(err, "%s", me);
	fill(ctx, &d, e);
	e->opts = opts.v;
	e->n_opts = opts.n;
	fe->inet_sk = e;
	return 0;
}

/* --------------------------------------------------------------- restore */

union inet_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/* The address text and port as a sockaddr of family; 0 or -1. */
static int make_addr(int family, const char *text, uint32_t port, union inet_addr *a, socklen_t *len)
{
	memset(a, 0, sizeof(*a));
	if (text == NULL || port > 65535)
		return -1;
	if (family == AF_INET) {
		a->v4.sin_family = AF_INET;
		a->v4.sin_port = htons((uint16_t)port);
		*len = sizeof(a->v4);
		return inet_pton(AF_INET, text, &a->v4.sin_addr) == 1 ? 0 : -1;
	}
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_port = htons((uint16_t)port);
	*len = sizeof(a->v6);
	return inet_pton(AF_INET6, text, &a->v6.sin6_addr) == 1 ? 0 : -1;
}

static bool is_any(const union inet_addr *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	return a->sa.sa_family == AF_INET ? a->v4.sin_addr.s_addr == htonl(INADDR_ANY)
					  : memcmp(&a->v6.sin6_addr, &any6, sizeof(any6)) == 0;
}

static int proto_of(const InetSkEntry *e)
{
	return (int)e->proto;
}

static int inet_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const InetSkEntry *e = fe->inet_sk;
	union inet_addr a;
	socklen_t len;

	(void)ctx;
	if (e == NULL)
		return cr_error(err, 0, "inet socket without its state");
	if ((e->family != AF_INET && e->family != AF_INET6) || (proto_of(e) != IPPROTO_TCP && proto_of(e) != IPPROTO_UDP))
		return cr_error(err, 0, "inet socket of family %d protocol %d", e->family, e->proto);
	if (e->state != SK_ESTABLISHED && e->state != SK_CLOSE && (proto_of(e) != IPPROTO_TCP || e->state != SK_LISTEN))
		return cr_error(err, 0, "inet socket in state %d", e->state);
	if (proto_of(e) == IPPROTO_TCP && e->state == SK_ESTABLISHED && tcp_stream_validate(e, err) < 0)
		return -1;
	if (e->state == SK_LISTEN && !e->has_backlog)
		return cr_error(err, 0, "listening socket without its backlog");
	if (make_addr(e->family, e->src_addr, e->src_port, &a, &len) < 0)
		return cr_error(err, 0, "inet socket with address %s port %u", e->src_addr, e->src_port);
	if (e->state == SK_ESTABLISHED && make_addr(e->family, e->dst_addr, e->dst_port, &a, &len) < 0)
		return cr_error(err, 0, "connected socket without its peer's address");
	if (e->n_queue > 0 && (proto_of(e) != IPPROTO_UDP || udp_queue_validate(e, err) < 0))
		return e->n_queue > 0 && proto_of(e) != IPPROTO_UDP ? cr_error(err, 0, "queued datagrams on TCP") : -1;
	if (inet_mcast_validate(e, err) < 0)
		return -1;
	return sk_opts_validate(e->opts, e->n_opts, err);
}

/* A TCP port that only TIME_WAIT connections hold (tcp_timewait.h): ended,
 * and the bind tried again. */
static int bind_after_timewait(int fd, const InetSkEntry *e, const union inet_addr *a, socklen_t len, const char *me,
			       cr_error_t *err)
{
	size_t n = 0;

	if (proto_of(e) != IPPROTO_TCP || e->tcp != NULL || tcp_timewait_clear((uint16_t)e->src_port, &n, err) < 0)
		return -1;
	if (n == 0) {
		errno = EADDRINUSE;
		return -1;
	}
	pr_warn("%s: the port was held by %zu connection(s) in TIME_WAIT, the dumped process's own: ended", me, n);
	return bind(fd, &a->sa, len);
}

static int bind_to(int fd, const InetSkEntry *e, const char *me, cr_error_t *err)
{
	union inet_addr a;
	socklen_t len;

	make_addr(e->family, e->src_addr, e->src_port, &a, &len);
	if (e->src_port == 0 && is_any(&a))
		return 0;   /* never bound */
	if (bind(fd, &a.sa, len) == 0)
		return 0;
	if (errno == EADDRINUSE && bind_after_timewait(fd, e, &a, len, me, err) == 0)
		return 0;
	if (*err != NULL)
		return cr_error_wrap(err, "%s", me);
	if (errno == EADDRINUSE)
		return cr_error(err, errno, "%s: port %u is in use on this host", me, e->src_port);
	return cr_error(err, errno, "%s: bind", me);
}

static int inet_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const InetSkEntry *e = fe->inet_sk;
	bool tcp = proto_of(e) == IPPROTO_TCP;
	int type = (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | ((fe->flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
	int one = 1, reuse = (int)sk_opts_value(e->opts, e->n_opts, "SO_REUSEADDR", 0);
	cleanup_close int fd = socket(e->family, type, e->proto);
	char me[INET6_ADDRSTRLEN + 32];
	union inet_addr a;
	socklen_t len;

	(void)t;
	snprintf(me, sizeof(me), e->family == AF_INET6 ? "%s [%s]:%u" : "%s %s:%u", tcp ? "TCP" : "UDP", e->src_addr,
		 e->src_port);
	if (fd < 0)
		return cr_error(err, errno, "%s: socket", me);
	if (sk_opts_apply(fd, e->opts, e->n_opts, NULL, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (inet_mcast_restore(fd, e, me, err) < 0)
		return -1;
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return cr_error(err, errno, "%s: SO_REUSEADDR", me);
	if (e->tcp != NULL && ctx->opts->tcp_close) {   /* --tcp-close: the connection is over */
		pr_info("%s: the connection to %s port %u comes back closed (--tcp-close)", me, e->dst_addr, e->dst_port);
		return steal_fd(&fd);
	}
	if (e->tcp != NULL && tcp_stream_prepare(fd, e, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (bind_to(fd, e, me, err) < 0)
		return -1;
	if (e->state == SK_LISTEN && listen(fd, (int)e->backlog) < 0)
		return cr_error(err, errno, "%s: listen", me);
	/* Before a UDP socket connects: datagrams queued before its connect
	 * may come from others than its peer. */
	if (udp_queue_restore(fd, e, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (e->state == SK_ESTABLISHED) {   /* TCP: in repair mode, no handshake */
		make_addr(e->family, e->dst_addr, e->dst_port, &a, &len);
		if (connect(fd, &a.sa, len) < 0)
			return cr_error(err, errno, "%s: connect to %s port %u", me, e->dst_addr, e->dst_port);
	}
	if (e->tcp != NULL && tcp_stream_finish(fd, e, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (e->tcp != NULL)
		return steal_fd(&fd);   /* repair mode and SO_REUSEADDR end with the tree's (tcp_stream_ready) */
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) < 0)
		return cr_error(err, errno, "%s: SO_REUSEADDR", me);
	return steal_fd(&fd);
}

static void inet_release_dump(struct dump_ctx *ctx)
{
	tcp_stream_release(ctx);
	inet_diag_forget();
}

const struct fd_kind fdkind_inet = {
	.kind = FILE_KIND__FILE_INET,
	.shareable = true,
	.name = "inet socket",
	.match = inet_match,
	.dump = inet_dump,
	.validate = inet_validate,
	.open = inet_open,
	.release_dump = inet_release_dump,
	.ready = tcp_stream_ready,
	.released = tcp_stream_released,
};
