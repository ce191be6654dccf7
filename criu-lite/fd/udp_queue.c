#include "fd/udp_queue.h"
#include "fd/fdshare.h"
#include "os/log.h"
#include "os/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DGRAM_MAX   65535
#define QUEUE_MAX   100000   /* datagrams */
#define ARRIVE_MS   2000

/* Options that show each datagram's own headers or arrival time to the
 * program: a datagram sent again would not keep them. */
static const char *const per_datagram[] = {
	"IP_PKTINFO", "IP_RECVTOS", "IP_RECVTTL", "IP_RECVORIGDSTADDR", "SO_TIMESTAMP", "SO_TIMESTAMPNS",
	"IPV6_RECVPKTINFO", "IPV6_RECVTCLASS", "IPV6_RECVHOPLIMIT",
};

/* Peeks the queue from its start, one datagram after the other:
 * SO_PEEK_OFF set to 0 for the time of it (each peek moves it past the
 * datagram it read), then put back.  Calls fn for each until it returns
 * non-zero; the number peeked, or -1 when the socket cannot peek. */
typedef int (*dgram_fn)(void *arg, const void *data, size_t len, const struct sockaddr_storage *from);

static long peek_all(int fd, dgram_fn fn, void *arg)
{
	static char buf[DGRAM_MAX];
	socklen_t len = sizeof(int);
	int saved, zero = 0;
	long n = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &saved, &len) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) < 0)
		return -1;
	for (; n < QUEUE_MAX; n++) {
		struct sockaddr_storage from = { 0 };
		socklen_t flen = sizeof(from);
		ssize_t got = recvfrom(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

		if (got < 0 || (fn != NULL && fn(arg, buf, (size_t)got, &from) != 0))
			break;
	}
	setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &saved, sizeof(saved));
	return n;
}

/* ------------------------------------------------------------------ dump */

struct keep {
	struct dump_ctx *ctx;
	UdpDgram **v;
	size_t n, bytes;
	bool full;
};

static int keep_one(void *arg, const void *data, size_t len, const struct sockaddr_storage *from)
{
	struct keep *k = arg;
	char addr[INET6_ADDRSTRLEN];
	UdpDgram *g;
	unsigned port;

	if (k->n == QUEUE_MAX || k->bytes + len > FDKIND_MAX_DATA) {
		k->full = true;
		return 1;
	}
	if (from->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)from)->sin_addr, addr, sizeof(addr));
		port = ntohs(((const struct sockaddr_in *)from)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)from)->sin6_addr, addr, sizeof(addr));
		port = ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
	}
	g = arena_new(&k->ctx->arena, UdpDgram);
	udp_dgram__init(g);
	g->from_addr = arena_strdup(&k->ctx->arena, addr);
	g->from_port = port;
	g->data.len = len;
	g->data.data = arena_memdup(&k->ctx->arena, data, len + 1);
	k->v[k->n++] = g;
	k->bytes += len;
	return 0;
}

static void drop(int fd, const struct inet_diag_sk *d, const char *me, const char *why, InetSkEntry *e)
{
	long n = peek_all(fd, NULL, NULL);

	if (n < 0)
		pr_warn("UDP %s: the datagrams queued for it (%u bytes with overhead) are dropped: %s", me, d->rqueue, why);
	else
		pr_warn("UDP %s: %ld datagram(s) queued for it are dropped: %s", me, n, why);
	e->has_dropped = true;
	e->dropped = n < 0 ? 1 : (uint32_t)n;
}

int udp_queue_dump(struct dump_ctx *ctx, int fd, const struct inet_diag_sk *d, const struct sk_opts *opts,
		   const char *me, InetSkEntry *e, cr_error_t *err)
{
	struct keep k = { .ctx = ctx };
	char why[128];

	(void)err;
	if (d->rqueue == 0)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(per_datagram); i++) {
		if (sk_opts_value(opts->v, opts->n, per_datagram[i], 0) != 0) {
			snprintf(why, sizeof(why), "the socket asks for each one's %s, which a datagram sent again "
				 "would not keep", per_datagram[i]);
			drop(fd, d, me, why, e);
			return 0;
		}
	}
	k.v = arena_array(&ctx->arena, UdpDgram *, QUEUE_MAX);
	if (peek_all(fd, keep_one, &k) < 0 || k.full) {
		drop(fd, d, me, k.full ? "more than cr keeps" : "the socket cannot be peeked", e);
		return 0;
	}
	e->queue = k.v;
	e->n_queue = k.n;
	return 0;
}

/* --------------------------------------------------------------- restore */

int udp_queue_validate(const InetSkEntry *e, cr_error_t *err)
{
	struct in6_addr a6;

	for (size_t i = 0; i < e->n_queue; i++) {
		const UdpDgram *g = e->queue[i];

		if (g->from_port == 0 || g->from_port > 65535 || g->data.len > DGRAM_MAX - 8 - 40 ||
		    inet_pton((int)e->family, g->from_addr, &a6) != 1)
			return cr_error(err, 0, "queued datagram %zu: sender %s port %u, %zu bytes", i, g->from_addr,
					g->from_port, g->data.len);
	}
	return 0;
}

/* The one's-complement sum of len bytes (RFC 1071), folded into sum. */
static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	sum = ~sum & 0xffff;
	return htons(sum ? (uint16_t)sum : 0xffff);
}

struct endpoint {
	int family;   /* of the packet: AF_INET or AF_INET6 */
	struct in_addr a4;
	struct in6_addr a6;
	uint16_t port;
};

/* An address of the socket's family as what travels (an IPv4-mapped one
 * as IPv4). */
static void endpoint_of(const struct in6_addr *a6, const struct in_addr *a4, int family, uint16_t port,
			struct endpoint *e)
{
	e->port = port;
	if (family == AF_INET || IN6_IS_ADDR_V4MAPPED(a6)) {
		e->family = AF_INET;
		if (family == AF_INET)
			e->a4 = *a4;
		else
			memcpy(&e->a4, &a6->s6_addr[12], 4);
	} else {
		e->family = AF_INET6;
		e->a6 = *a6;
	}
}

/* The packet: IP header, UDP header, data; its length. */
static size_t build(const struct endpoint *src, const struct endpoint *dst, const ProtobufCBinaryData *d,
		    uint8_t *pkt)
{
	size_t ip_len = src->family == AF_INET ? sizeof(struct iphdr) : sizeof(struct ip6_hdr);
	struct udphdr *u = (struct udphdr *)(pkt + ip_len);
	uint16_t ulen = (uint16_t)(sizeof(*u) + d->len);

	*u = (struct udphdr){ .source = htons(src->port), .dest = htons(dst->port), .len = htons(ulen) };
	memcpy(u + 1, d->data, d->len);
	if (src->family == AF_INET) {
		struct iphdr *h = (struct iphdr *)pkt;

		*h = (struct iphdr){ .ihl = 5, .version = 4, .ttl = 64, .protocol = IPPROTO_UDP,
				     .tot_len = htons((uint16_t)(ip_len + ulen)), .saddr = src->a4.s_addr,
				     .daddr = dst->a4.s_addr };
		return ip_len + ulen;   /* UDP over IPv4 may go without a checksum */
	}
	struct ip6_hdr *h6 = (struct ip6_hdr *)pkt;
	uint32_t sum = 0, plen = htonl(ulen), nxt = htonl(IPPROTO_UDP);

	memset(h6, 0, sizeof(*h6));
	h6->ip6_flow = htonl(6u << 28);
	h6->ip6_plen = htons(ulen);
	h6->ip6_nxt = IPPROTO_UDP;
	h6->ip6_hlim = 64;
	h6->ip6_src = src->a6;
	h6->ip6_dst = dst->a6;
	sum = csum_add(sum, &src->a6, 16);
	sum = csum_add(sum, &dst->a6, 16);
	sum = csum_add(sum, &plen, 4);
	sum = csum_add(sum, &nxt, 4);
	sum = csum_add(sum, u, ulen);
	u->check = csum_fold(sum);
	return ip_len + ulen;
}

/* Where the socket receives: its address, or the loopback of the
 * packet's family when it is bound to any. */
static int local_endpoint(int fd, int src_family, struct endpoint *dst, cr_error_t *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return cr_error(err, errno, "getsockname");
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		endpoint_of(NULL, &a->sin_addr, AF_INET, ntohs(a->sin_port), dst);
		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			dst->a4.s_addr = htonl(INADDR_LOOPBACK);
		return 0;
	}
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;

	endpoint_of(&a6->sin6_addr, NULL, AF_INET6, ntohs(a6->sin6_port), dst);
	if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr)) {
		dst->family = src_family;   /* a dual-stack socket takes IPv4 too */
		dst->a4.s_addr = htonl(INADDR_LOOPBACK);
		dst->a6 = in6addr_loopback;
	}
	return 0;
}

static int send_one(int raw[2], int fd, int sk_family, const UdpDgram *g, cr_error_t *err)
{
	static uint8_t pkt[DGRAM_MAX + 64];
	struct sockaddr_storage to = { 0 };
	struct endpoint src = { 0 }, dst = { 0 };
	struct in6_addr a6 = IN6ADDR_ANY_INIT;
	struct in_addr a4 = { 0 };
	int i;
	size_t len;

	if (sk_family == AF_INET)
		inet_pton(AF_INET, g->from_addr, &a4);
	else
		inet_pton(AF_INET6, g->from_addr, &a6);
	endpoint_of(&a6, &a4, sk_family, (uint16_t)g->from_port, &src);
	if (local_endpoint(fd, src.family, &dst, err) < 0)
		return -1;
	if (dst.family != src.family)
		return cr_error(err, 0, "a datagram from %s to an IPv%d socket", g->from_addr, dst.family == AF_INET ? 4 : 6);
	i = src.family == AF_INET ? 0 : 1;
	if (raw[i] < 0 && (raw[i] = socket(src.family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)) < 0)
		return cr_error(err, errno, "a raw socket to send the queued datagrams again (needs CAP_NET_RAW)");
	len = build(&src, &dst, &g->data, pkt);
	to.ss_family = (sa_family_t)src.family;
	if (src.family == AF_INET)
		((struct sockaddr_in *)&to)->sin_addr = dst.a4;
	else
		((struct sockaddr_in6 *)&to)->sin6_addr = dst.a6;
	if (sendto(raw[i], pkt, len, 0, (struct sockaddr *)&to, src.family == AF_INET ? sizeof(struct sockaddr_in)
										   : sizeof(struct sockaddr_in6)) < 0)
		return cr_error(err, errno, "send the datagram from %s port %u again", g->from_addr, g->from_port);
	return 0;
}

int udp_queue_restore(int fd, const InetSkEntry *e, cr_error_t *err)
{
	const struct timespec ms = { .tv_nsec = 1000000 };
	int raw[2] = { -1, -1 }, r = 0;
	long n = 0;

	for (size_t i = 0; i < e->n_queue && r == 0; i++)
		r = send_one(raw, fd, (int)e->family, e->queue[i], err);
	for (size_t i = 0; i < 2; i++)
		if (raw[i] >= 0)
			close(raw[i]);
	if (r < 0 || e->n_queue == 0)
		return r;
	for (int t = 0; t < ARRIVE_MS && (n = peek_all(fd, NULL, NULL)) < (long)e->n_queue; t++)
		nanosleep(&ms, NULL);
	if (n != (long)e->n_queue)
		return cr_error(err, 0, "%ld of %zu queued datagrams arrived again", n, e->n_queue);
	return 0;
}
