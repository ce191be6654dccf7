#include "fd/inet_diag.h"
#include "os/job.h"
#include "os/proc.h"
#include "net/netlink.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* One request: a dump of every socket of a family (and protocol), scanned
 * for one inode (netlink), or kept whole (inet: see struct table). */
#define HALF_OPEN_MAX 256

struct query {
	uint32_t ino;
	bool netlink;
	uint8_t proto;   /* of the dump being read */
	/* inet: every socket the dumps listed */
	struct inet_diag_sk *all;
	size_t n_all, cap_all;
	/* Connections being made (SYN_RECV): their local addresses, for the
	 * listener they will be queued on. */
	struct half_open {
		uint8_t addr[16];
		uint16_t port;
	} half_open[HALF_OPEN_MAX];
	uint32_t n_half_open;
	union {
		struct inet_diag_sk inet;
		struct netlink_diag_sk nl;
	} out;
	bool found;
};

#define RECV_BUF 32768

/* sk_state values (include/net/tcp_states.h). */
#define TCP_SYN_RECV_STATE     3
#define TCP_LISTEN_STATE       10
#define TCP_NEW_SYN_RECV_STATE 12

static void take_inet(struct query *q, const struct nlmsghdr *h)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	struct inet_diag_sk *o;
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return;
	if ((m->idiag_state == TCP_SYN_RECV_STATE || m->idiag_state == TCP_NEW_SYN_RECV_STATE) &&
	    q->n_half_open < HALF_OPEN_MAX) {
		struct half_open *ho = &q->half_open[q->n_half_open++];

		memcpy(ho->addr, m->id.idiag_src, sizeof(ho->addr));
		ho->port = ntohs(m->id.idiag_sport);
	}
	if (m->idiag_inode == 0)
		return;   /* a connection being made, or in TIME_WAIT: no socket of a process */
	if (q->n_all == q->cap_all) {
		q->cap_all = q->cap_all ? 2 * q->cap_all : 64;
		q->all = xrealloc(q->all, q->cap_all * sizeof(*q->all));
	}
	o = &q->all[q->n_all++];
	memset(o, 0, sizeof(*o));
	o->protocol = q->proto;
	len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
		o->md5 |= a->rta_type == INET_DIAG_MD5SIG && RTA_PAYLOAD(a) > 0;   /* listed to CAP_NET_ADMIN */
	o->ino = m->idiag_inode;
	o->family = m->idiag_family;
	o->state = m->idiag_state;
	memcpy(o->src, m->id.idiag_src, sizeof(o->src));
	memcpy(o->dst, m->id.idiag_dst, sizeof(o->dst));
	o->sport = ntohs(m->id.idiag_sport);
	o->dport = ntohs(m->id.idiag_dport);
	o->ifindex = m->id.idiag_if;
	o->rqueue = m->idiag_rqueue;
	o->wqueue = m->idiag_wqueue;
}

static void take_netlink(struct query *q, const struct nlmsghdr *h)
{
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	struct netlink_diag_sk *o = &q->out.nl;
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->ndiag_ino != q->ino)
		return;
	memset(o, 0, sizeof(*o));
	o->ino = m->ndiag_ino;
	o->protocol = m->ndiag_protocol;
	o->type = m->ndiag_type;
	o->state = m->ndiag_state;
	o->portid = m->ndiag_portid;
	o->dst_portid = m->ndiag_dst_portid;
	o->dst_group = m->ndiag_dst_group;
	len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t n = RTA_PAYLOAD(a);

		if (a->rta_type == NETLINK_DIAG_GROUPS)
			memcpy(o->groups, RTA_DATA(a), n < sizeof(o->groups) ? n : sizeof(o->groups));
		else if (a->rta_type == NETLINK_DIAG_FLAGS && n >= sizeof(uint32_t))
			memcpy(&o->flags, RTA_DATA(a), sizeof(uint32_t));
		else if (a->rta_type == NETLINK_DIAG_MEMINFO && n >= (SK_MEMINFO_RMEM_ALLOC + 1) * sizeof(uint32_t))
			o->rmem = ((const uint32_t *)RTA_DATA(a))[SK_MEMINFO_RMEM_ALLOC];
	}
	q->found = true;
}

/* Reads replies until NLMSG_DONE; -1 with errno on error. */
static int scan_replies(int sk, struct query *q)
{
	char buf[RECV_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(sk, buf, sizeof(buf), 0);
		struct nlmsghdr *h;
		int len = (int)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? (errno = EPROTO, -1) : -1;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				errno = e->error ? -e->error : EPROTO;
				return e->error == -ENOENT ? 0 : -1;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			if (q->netlink && !q->found)
				take_netlink(q, h);
			else if (q->netlink)
				continue;
			else
				take_inet(q, h);
		}
	}
}

static int ask(int sk, const void *req, size_t len)
{
	struct {
		struct nlmsghdr h;
		char body[64];
	} msg = { .h = { .nlmsg_len = (uint32_t)NLMSG_LENGTH(len), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			  .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 } };
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };

	memcpy(NLMSG_DATA(&msg.h), req, len);
	return sendto(sk, &msg, msg.h.nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0 ? -1 : 0;
}

static int ask_inet(int sk, uint8_t family, uint8_t protocol)
{
	struct inet_diag_req_v2 req = {
		.sdiag_family = family,
		.sdiag_protocol = protocol,
		.idiag_states = ~0u,
		/* With INET_DIAG_INFO the kernel adds what only CAP_NET_ADMIN
		 * sees: TCP MD5 keys (INET_DIAG_MD5SIG). */
		.idiag_ext = 1 << (INET_DIAG_INFO - 1),
	};

	return ask(sk, &req, sizeof(req));
}

static int ask_netlink(int sk)
{
	struct netlink_diag_req req = {
		.sdiag_family = AF_NETLINK,
		.sdiag_protocol = NDIAG_PROTO_ALL,
		.ndiag_show = NDIAG_SHOW_GROUPS | NDIAG_SHOW_MEMINFO | NDIAG_SHOW_FLAGS,
	};

	return ask(sk, &req, sizeof(req));
}

/* A sock_diag socket keeps the network namespace it was made in: made in
 * pid's (this thread enters it for the socket(2) alone, even when it is
 * cr's: which namespace cr's main thread is in is not this thread's to
 * know, /proc/self being the main thread), it answers about that
 * namespace's sockets, with no helper process to start. */
static int diag_socket(pid_t pid, cr_error_t *err)
{
	int sk = netns_socket_pid(pid, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG, err);

	if (sk < 0)
		return cr_error_wrap(err, "sock_diag in the network namespace of pid %d", (int)pid);
	return sk;
}

/* The inet sockets of one network namespace, by protocol and family, each
 * dump read once for the whole dump: each is a walk of the kernel's whole hash
 * table (every namespace's buckets, ms), whatever the namespace has.  The
 * tree is frozen: its sockets stay where they are (a state the peer
 * changes meanwhile is seen again where it matters: tcp_stream.c). */
static struct table {
	uint64_t netns;
	bool read[2][2];  /* [TCP, UDP][AF_INET, AF_INET6] */
	struct query q;   /* n_half_open: the TCP dumps read */
} table;

static bool *was_read(uint8_t family, uint8_t protocol)
{
	return &table.read[protocol == IPPROTO_UDP][family == AF_INET6];
}

/* The dump of family and protocol into the table, unless it is there. */
static int read_dump(pid_t pid, uint8_t family, uint8_t protocol, cr_error_t *err)
{
	cleanup_close int sk = -1;

	if (*was_read(family, protocol))
		return 0;
	if ((sk = diag_socket(pid, err)) < 0)
		return -1;
	table.q.proto = protocol;
	if (ask_inet(sk, family, protocol) < 0 || scan_replies(sk, &table.q) < 0)
		return cr_error(err, errno, "sock_diag in the network namespace of pid %d", (int)pid);
	*was_read(family, protocol) = true;
	return 0;
}

static const struct inet_diag_sk *in_table(uint32_t ino)
{
	for (size_t i = 0; i < table.q.n_all; i++)
		if (table.q.all[i].ino == ino)
			return &table.q.all[i];
	return NULL;
}

/* The IPv4 TCP dump, read by a thread of their own from the start of a
 * dump's collection (inet_diag_prefetch) while the rest goes on. */
static struct cr_job ahead;
static pid_t ahead_pid;

static int read_ahead(void *arg, cr_error_t *err)
{
	(void)arg;
	return read_dump(ahead_pid, AF_INET, IPPROTO_TCP, err);
}

void inet_diag_prefetch(pid_t pid)
{
	cr_error_t err = NULL;

	inet_diag_forget();
	if (proc_read_ns(pid, "net", &table.netns, &err) < 0) {
		cr_error_release(&err);   /* the lookups will say it */
		return;
	}
	ahead_pid = pid;
	cr_job_start(&ahead, read_ahead, NULL);
}

/* The dump read ahead is in the table (or its error in *err). */
static int ahead_done(cr_error_t *err)
{
	return cr_job_wait(&ahead, err);
}

void inet_diag_forget(void)
{
	cr_error_t err = NULL;

	if (ahead_done(&err) < 0)
		cr_error_release(&err);
	free(table.q.all);
	memset(&table, 0, sizeof(table));
}

/* The netlink query on a socket of pid's namespace. */
static int lookup_netlink(pid_t pid, struct query *q, cr_error_t *err)
{
	cleanup_close int sk = diag_socket(pid, err);

	if (sk < 0)
		return -1;
	if (ask_netlink(sk) < 0 || scan_replies(sk, q) < 0)
		return cr_error(err, errno, "sock_diag in the network namespace of pid %d", (int)pid);
	return q->found ? 1 : 0;
}

/* The connections being made to the listener o. */
static uint32_t half_open_to(const struct query *q, const struct inet_diag_sk *o)
{
	static const uint8_t any[16];
	bool any_addr = memcmp(o->src, any, o->family == AF_INET ? 4 : 16) == 0;
	uint32_t n = 0;

	for (uint32_t i = 0; i < q->n_half_open; i++)
		if (q->half_open[i].port == o->sport &&
		    (any_addr || memcmp(q->half_open[i].addr, o->src, o->family == AF_INET ? 4 : 16) == 0))
			n++;
	return n;
}

int inet_diag_lookup(pid_t pid, uint32_t ino, int family, int protocol, struct inet_diag_sk *out, cr_error_t *err)
{
	const struct inet_diag_sk *found;
	uint64_t netns;

	if (ahead_done(err) < 0 || proc_read_ns(pid, "net", &netns, err) < 0)
		return -1;
	if (netns != table.netns)
		inet_diag_forget();
	table.netns = netns;
	if (read_dump(pid, (uint8_t)family, (uint8_t)protocol, err) < 0)
		return -1;
	found = in_table(ino);
	if (found == NULL)
		return 0;
	*out = *found;
	out->half_open = 0;
	if (out->protocol != IPPROTO_TCP || out->state != TCP_LISTEN_STATE)
		return 1;
	/* An IPv6 listener takes IPv4 connections too, whose requests are
	 * listed with IPv4's sockets. */
	if (family == AF_INET6 && read_dump(pid, AF_INET, IPPROTO_TCP, err) < 0)
		return -1;
	out->half_open = half_open_to(&table.q, out);
	return 1;
}

int netlink_diag_lookup(pid_t pid, uint32_t ino, struct netlink_diag_sk *out, cr_error_t *err)
{
	struct query q = { .ino = ino, .netlink = true };
	int r = lookup_netlink(pid, &q, err);

	if (r == 1)
		*out = q.out.nl;
	return r;
}
