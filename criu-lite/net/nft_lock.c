/* cr's network lock through nf_tables' netlink interface: see nft_lock.h.
 * The messages are built with libnl (attributes, nests); the few
 * nf_tables expressions of a rule are put as nf_tables defines them.
 * libnftnl, which knows them, cannot be linked into cr (a static-pie
 * binary): its static archive needs libmnl's, which Debian does not ship. */
#include "net/nft_lock.h"
#include "net/netlink.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NFT_PRIORITY (-150)
#define NFT_TIMEOUT_S 5   /* the kernel answers at once; a silent one has failed */

/* ------------------------------------------------------ the messages */

/* A batch: messages built with libnl one after the other, then sent in one
 * piece (nf_tables applies a batch whole, from one send). */
struct batch {
	char data[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	size_t len;
	struct nl_msg *m;       /* the one being built */
	uint32_t seq;           /* of the last one */
	bool overflow;
};

/* The message being built goes into the batch. */
static void flush(struct batch *b)
{
	struct nlmsghdr *h;

	if (b->m == NULL)
		return;
	h = nlmsg_hdr(b->m);
	if (b->len + NLMSG_ALIGN(h->nlmsg_len) > sizeof(b->data))
		b->overflow = true;
	else
		memcpy(b->data + b->len, h, h->nlmsg_len);
	b->len += NLMSG_ALIGN(h->nlmsg_len);
	nlmsg_free(b->m);
	b->m = NULL;
}

static void empty(struct batch *b)
{
	if (b->m != NULL)
		nlmsg_free(b->m);
	b->m = NULL;
	b->len = 0;
	b->seq = 0;
	b->overflow = false;
}

/* A message of type (NFT_MSG_*, or a batch's begin and end) for family. */
static void msg(struct batch *b, uint16_t type, uint16_t flags, uint8_t family)
{
	struct nfgenmsg *g;
	struct nlmsghdr *h;

	flush(b);
	b->m = nlmsg_alloc();
	if (b->m == NULL)
		xalloc_failed_in("nlmsg_alloc");
	h = nlmsg_put(b->m, 0, ++b->seq, type, sizeof(*g), NLM_F_REQUEST | flags);
	if (h == NULL) {
		b->overflow = true;
		return;
	}
	g = nlmsg_data(h);
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = type == NFNL_MSG_BATCH_BEGIN || type == NFNL_MSG_BATCH_END ? htons(NFNL_SUBSYS_NFTABLES) : 0;
}

static uint16_t nft_type(int t)
{
	return (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | t);
}

/* libnl keeps a failed attribute out of the message: the batch is then
 * refused whole. */
static void put(struct batch *b, int r)
{
	if (r < 0)
		b->overflow = true;
}

static void attr(struct batch *b, uint16_t type, const void *data, size_t len)
{
	put(b, nla_put(b->m, type, (int)len, data));
}

static void attr_str(struct batch *b, uint16_t type, const char *s)
{
	put(b, nla_put_string(b->m, type, s));
}

static void attr_be32(struct batch *b, uint16_t type, uint32_t v)
{
	put(b, nla_put_u32(b->m, type, htonl(v)));
}

/* Attributes put until nest_end belong to the nest (NLA_F_NESTED, as
 * nf_tables' own tools mark them). */
static struct nlattr *nest(struct batch *b, uint16_t type)
{
	struct nlattr *n = nla_nest_start(b->m, type | NLA_F_NESTED);

	if (n == NULL)
		b->overflow = true;
	return n;
}

static void nest_end(struct batch *b, struct nlattr *n)
{
	if (n != NULL)
		put(b, nla_nest_end(b->m, n));
}

/* ---------------------------------------------------------- the rules */

/* One expression of a rule: its name, and its data from the caller. */
static struct nlattr *expr(struct batch *b, const char *name, struct nlattr **data)
{
	struct nlattr *elem = nest(b, NFTA_LIST_ELEM);

	attr_str(b, NFTA_EXPR_NAME, name);
	*data = nest(b, NFTA_EXPR_DATA);
	return elem;
}

static void expr_end(struct batch *b, struct nlattr *elem, struct nlattr *data)
{
	nest_end(b, data);
	nest_end(b, elem);
}

static void meta(struct batch *b, uint32_t key)
{
	struct nlattr *d, *e = expr(b, "meta", &d);

	attr_be32(b, NFTA_META_DREG, NFT_REG_1);
	attr_be32(b, NFTA_META_KEY, key);
	expr_end(b, e, d);
}

static void payload(struct batch *b, uint32_t base, uint32_t offset, uint32_t len)
{
	struct nlattr *d, *e = expr(b, "payload", &d);

	attr_be32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
	attr_be32(b, NFTA_PAYLOAD_BASE, base);
	attr_be32(b, NFTA_PAYLOAD_OFFSET, offset);
	attr_be32(b, NFTA_PAYLOAD_LEN, len);
	expr_end(b, e, d);
}

/* Register 1 equals the len bytes at value. */
static void cmp_eq(struct batch *b, const void *value, size_t len)
{
	struct nlattr *d, *e = expr(b, "cmp", &d), *v;

	attr_be32(b, NFTA_CMP_SREG, NFT_REG_1);
	attr_be32(b, NFTA_CMP_OP, NFT_CMP_EQ);
	v = nest(b, NFTA_CMP_DATA);
	attr(b, NFTA_DATA_VALUE, value, len);
	nest_end(b, v);
	expr_end(b, e, d);
}

/* The packet's verdict: NF_DROP, NF_ACCEPT. */
static void verdict(struct batch *b, uint32_t code)
{
	struct nlattr *d, *e = expr(b, "immediate", &d), *data, *v;

	attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	data = nest(b, NFTA_IMMEDIATE_DATA);
	v = nest(b, NFTA_DATA_VERDICT);
	attr_be32(b, NFTA_VERDICT_CODE, code);
	nest_end(b, v);
	nest_end(b, data);
	expr_end(b, e, d);
}

/* "ip saddr S ip daddr D tcp sport SP tcp dport DP drop" in chain, as nft
 * makes it (the two ports in one 4-byte load). */
static void rule(struct batch *b, const char *table, const char *chain, int family, const uint8_t *s,
		 const uint8_t *d, unsigned sport, unsigned dport, bool first)
{
	uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6, tcp = IPPROTO_TCP;
	uint32_t alen = family == AF_INET ? 4 : 16, at = family == AF_INET ? 12 : 8;
	uint16_t ports[2] = { htons((uint16_t)sport), htons((uint16_t)dport) };
	struct nlattr *list;

	msg(b, nft_type(NFT_MSG_NEWRULE), NLM_F_CREATE | (first ? 0 : NLM_F_APPEND) | NLM_F_ACK, NFPROTO_INET);
	attr_str(b, NFTA_RULE_TABLE, table);
	attr_str(b, NFTA_RULE_CHAIN, chain);
	list = nest(b, NFTA_RULE_EXPRESSIONS);
	meta(b, NFT_META_NFPROTO);
	cmp_eq(b, &proto, 1);
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, at, alen);
	cmp_eq(b, s, alen);
	payload(b, NFT_PAYLOAD_NETWORK_HEADER, at + alen, alen);
	cmp_eq(b, d, alen);
	meta(b, NFT_META_L4PROTO);
	cmp_eq(b, &tcp, 1);
	payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 0, sizeof(ports));
	cmp_eq(b, ports, sizeof(ports));
	verdict(b, NF_DROP);
	nest_end(b, list);
}

static void chain(struct batch *b, const char *table, const char *name, uint32_t hook)
{
	struct nlattr *h;

	msg(b, nft_type(NFT_MSG_NEWCHAIN), NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);
	attr_str(b, NFTA_CHAIN_TABLE, table);
	attr_str(b, NFTA_CHAIN_NAME, name);
	h = nest(b, NFTA_CHAIN_HOOK);
	attr_be32(b, NFTA_HOOK_HOOKNUM, hook);
	attr_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)NFT_PRIORITY);
	nest_end(b, h);
	attr_be32(b, NFTA_CHAIN_POLICY, NF_ACCEPT);
	attr_str(b, NFTA_CHAIN_TYPE, "filter");
}

/* --------------------------------------------------------- the talk */

/* Every answer up to the ack of the last message: 0, or -1 with errno the
 * kernel's error. */
static int answers(int sk, uint32_t last)
{
	char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));

	for (;;) {
		ssize_t n = recv(sk, buf, sizeof(buf), 0);
		int len = (int)n;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? (errno = EPROTO, -1) : -1;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)len); h = NLMSG_NEXT(h, len)) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (e->error != 0) {
				errno = -e->error;
				return -1;
			}
			if (h->nlmsg_seq == last)
				return 0;
		}
	}
}

/* Sends what b holds on a netfilter netlink socket of the namespace of
 * netns (-1: the caller's) and waits for the ack of its last message. */
static int talk(int netns, const struct batch *b, uint32_t last, const char *what, cr_error_t *err)
{
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = NFT_TIMEOUT_S };
	cleanup_close int sk = -1;

	if (b->overflow)
		return cr_error(err, ENOBUFS, "%s: the netlink messages do not fit", what);
	sk = netns_socket_fd(netns, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER, err);
	if (sk < 0)
		return cr_error_wrap(err, "%s", what);
	if (setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    sendto(sk, b->data, b->len, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)b->len || answers(sk, last) < 0)
		return cr_error(err, errno, "%s (nf_tables)", what);
	return 0;
}

/* ---------------------------------------------------------------- API */

/* The four drop rules of the connection l, after (or, first, before) what
 * the chains hold. */
static void drop_rules(struct batch *b, const char *table, const struct nft_lock_ends *l, bool first)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *src = l->src, *dst = l->dst;
	int family = l->family;

	if (family == AF_INET6 && memcmp(src, mapped, 12) == 0 && memcmp(dst, mapped, 12) == 0) {
		src += 12, dst += 12;
		family = AF_INET;
	}
	rule(b, table, "out", family, src, dst, l->sport, l->dport, first);
	rule(b, table, "out", family, dst, src, l->dport, l->sport, first);
	rule(b, table, "in", family, src, dst, l->sport, l->dport, first);
	rule(b, table, "in", family, dst, src, l->dport, l->sport, first);
}

int nft_lock_add(int netns, const char *table, const struct nft_lock_ends *l, bool create, cr_error_t *err)
{
	static struct batch b;   /* large: not on the stack */
	uint32_t last;

	empty(&b);
	msg(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	msg(&b, nft_type(NFT_MSG_NEWTABLE), NLM_F_CREATE | NLM_F_ACK | (create ? NLM_F_EXCL : 0), NFPROTO_INET);
	attr_str(&b, NFTA_TABLE_NAME, table);
	chain(&b, table, "out", NF_INET_LOCAL_OUT);
	chain(&b, table, "in", NF_INET_LOCAL_IN);
	drop_rules(&b, table, l, false);
	last = b.seq;
	msg(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	flush(&b);
	return talk(netns, &b, last, create ? "create the table" : "add the table", err);
}

int nft_lock_close(int netns, const char *table, const struct nft_lock_ends *l, cr_error_t *err)
{
	static struct batch b;
	uint32_t last;

	empty(&b);
	msg(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	drop_rules(&b, table, l, true);
	last = b.seq;
	msg(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	flush(&b);
	return talk(netns, &b, last, "close the table again (its drop rules first)", err);
}

/* One message about the table (NFT_MSG_DELTABLE in a batch, or
 * NFT_MSG_GETTABLE alone). */
static int about_table(int netns, int type, const char *table, const char *what, cr_error_t *err)
{
	static struct batch b;
	bool batch = type == NFT_MSG_DELTABLE;
	uint32_t last;

	empty(&b);
	if (batch)
		msg(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	msg(&b, nft_type(type), NLM_F_ACK, NFPROTO_INET);
	attr_str(&b, NFTA_TABLE_NAME, table);
	last = b.seq;
	if (batch)
		msg(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	flush(&b);
	return talk(netns, &b, last, what, err);
}

/* An "accept" rule at the head of one of the table's chains. */
static void accept_first(struct batch *b, const char *table, const char *chain)
{
	struct nlattr *list;

	msg(b, nft_type(NFT_MSG_NEWRULE), NLM_F_CREATE | NLM_F_ACK, NFPROTO_INET);   /* no APPEND: first */
	attr_str(b, NFTA_RULE_TABLE, table);
	attr_str(b, NFTA_RULE_CHAIN, chain);
	list = nest(b, NFTA_RULE_EXPRESSIONS);
	verdict(b, NF_ACCEPT);
	nest_end(b, list);
}

int nft_lock_open(int netns, const char *table, cr_error_t *err)
{
	static struct batch b;
	uint32_t last;

	empty(&b);
	msg(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC);
	accept_first(&b, table, "out");
	accept_first(&b, table, "in");
	last = b.seq;
	msg(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC);
	flush(&b);
	return talk(netns, &b, last, "open the table (an accept rule first in its chains)", err);
}

int nft_lock_delete(int netns, const char *table, cr_error_t *err)
{
	return about_table(netns, NFT_MSG_DELTABLE, table, "delete the table", err);
}

int nft_lock_exists(int netns, const char *table, cr_error_t *err)
{
	if (about_table(netns, NFT_MSG_GETTABLE, table, "look for the table", err) == 0)
		return 1;
	if ((*err)->status != ENOENT)
		return -1;
	cr_error_release(err);
	return 0;
}

bool nft_lock_available(void)
{
	cr_error_t err = NULL;
	int r = nft_lock_exists(-1, "cr_tcp_0", &err);

	cr_error_release(&err);
	return r >= 0;
}
