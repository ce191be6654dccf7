/* Dump of a network namespace: see netns.h. */
#include "net/netlink.h"
#include "net/netns.h"
#include "net/netns_bridge.h"
#include "net/netns_fw.h"
#include "net/netns_sysctl.h"
#include "os/job.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>

#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/nexthop.h>
#include <linux/pkt_sched.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>

struct ndump {
	struct arena *a;
	NetNs *n;
	const struct netns_external *ext;
	cr_error_t *err;
	size_t cap_links, cap_addrs, cap_routes, cap_rules, cap_neighs;
	char table[64];   /* an nftables table of the namespace ("" if none) */
	struct nl_sock *rt;   /* its route netlink socket */
	int32_t cr_nsid;      /* the id it gives cr's namespace (with --external veth only) */
};

/* What cr reads from inside the namespace: its sockets there, its
 * legacy iptables tables (its sysctls: a reader of their own, below). */
struct inside {
	struct nl_sock *rt, *nf, *xfrm;
	char xt[3][64];   /* a legacy iptables, ip6tables and arptables table, or "" */
};

/* Appends to an arena array, which doubles when full. */
#define PUSH(d, field, item)                                                                          \
	do {                                                                                          \
		if ((d)->n->n_##field == (d)->cap_##field) {                                          \
			size_t cap_ = (d)->cap_##field ? (d)->cap_##field * 2 : 8;                     \
			__typeof__((d)->n->field) v_ = arena_array((d)->a, __typeof__(*(d)->n->field), cap_); \
			if ((d)->n->n_##field)                                                        \
				memcpy(v_, (d)->n->field, (d)->n->n_##field * sizeof(*v_));           \
			(d)->n->field = v_;                                                           \
			(d)->cap_##field = cap_;                                                      \
		}                                                                                     \
		(d)->n->field[(d)->n->n_##field++] = (item);                                          \
	} while (0)

static bool external(const struct netns_external *ext, const char *name)
{
	for (size_t i = 0; ext && i < ext->n; i++)
		if (strcmp(ext->names[i], name) == 0)
			return true;
	return false;
}

static ProtobufCBinaryData bytes_of(struct arena *a, const void *p, size_t len)
{
	return (ProtobufCBinaryData){ .len = len, .data = arena_memdup(a, p, len) };
}

static uint32_t u32_or(struct nlattr *a, uint32_t dflt)
{
	return a ? nla_get_u32(a) : dflt;
}

static uint32_t u8_or(struct nlattr *a, uint32_t dflt)
{
	return a ? nla_get_u8(a) : dflt;
}

/* ---------------------------------------------------------------- links */

/* An fd attached: the queues of a multi-queue device, the carrier of
 * another (a tun has one while an fd is attached). */
static int tun_of(struct ndump *d, NetLink *l, struct nlattr *data, bool carrier)
{
	struct nlattr *tb[IFLA_TUN_MAX + 1];
	NetTun *t;

	if (data == NULL || nla_parse_nested(tb, IFLA_TUN_MAX, data, NULL) < 0)
		return cr_error(d->err, 0, "tun %s: the kernel does not describe it", l->name);
	if (!u8_or(tb[IFLA_TUN_PERSIST], 0))
		return cr_error(d->err, 0, "tun %s is not persistent: unsupported (it lives as long as an fd on it)",
				l->name);
	if (u32_or(tb[IFLA_TUN_NUM_QUEUES], 0) + u32_or(tb[IFLA_TUN_NUM_DISABLED_QUEUES], 0) > 0 || carrier)
		return cr_error(d->err, 0, "tun %s has an fd attached: unsupported (a tun fd is not restored)",
				l->name);
	t = arena_new(d->a, NetTun);
	net_tun__init(t);
	t->flags = u8_or(tb[IFLA_TUN_TYPE], IFF_TUN) == IFF_TAP ? IFF_TAP : IFF_TUN;
	if (!u8_or(tb[IFLA_TUN_PI], 0))
		t->flags |= IFF_NO_PI;
	if (u8_or(tb[IFLA_TUN_VNET_HDR], 0))
		t->flags |= IFF_VNET_HDR;
	if (u8_or(tb[IFLA_TUN_MULTI_QUEUE], 0))
		t->flags |= IFF_MULTI_QUEUE;
	if ((t->has_owner = tb[IFLA_TUN_OWNER] != NULL))
		t->owner = nla_get_u32(tb[IFLA_TUN_OWNER]);
	if ((t->has_group = tb[IFLA_TUN_GROUP] != NULL))
		t->group = nla_get_u32(tb[IFLA_TUN_GROUP]);
	l->tun = t;
	return 0;
}

static int bridge_of(struct ndump *d, NetLink *l, struct nlattr *data)
{
	struct nlattr *tb[IFLA_BR_MAX + 1];
	NetBridge *b;

	if (data == NULL || nla_parse_nested(tb, IFLA_BR_MAX, data, NULL) < 0)
		return cr_error(d->err, 0, "bridge %s: the kernel does not describe it", l->name);
	b = arena_new(d->a, NetBridge);
	net_bridge__init(b);
	b->stp_state = u32_or(tb[IFLA_BR_STP_STATE], 0);
	b->forward_delay = u32_or(tb[IFLA_BR_FORWARD_DELAY], 1500);
	b->hello_time = u32_or(tb[IFLA_BR_HELLO_TIME], 200);
	b->max_age = u32_or(tb[IFLA_BR_MAX_AGE], 2000);
	b->ageing_time = u32_or(tb[IFLA_BR_AGEING_TIME], 30000);
	b->priority = tb[IFLA_BR_PRIORITY] ? nla_get_u16(tb[IFLA_BR_PRIORITY]) : 32768;
	b->vlan_filtering = u8_or(tb[IFLA_BR_VLAN_FILTERING], 0);
	if (b->vlan_filtering)
		return cr_error(d->err, 0, "bridge %s filters vlans: unsupported (its vlans are not restored)", l->name);
	l->bridge = b;
	return 0;
}

static int on_nsid(struct nlmsghdr *h, void *arg)
{
	struct nlattr *tb[NETNSA_MAX + 1];

	if (nlmsg_parse(h, sizeof(struct rtgenmsg), tb, NETNSA_MAX, NULL) == 0 && tb[NETNSA_NSID])
		*(int32_t *)arg = (int32_t)nla_get_u32(tb[NETNSA_NSID]);
	return 0;
}

/* The id the namespace gives cr's (RTM_GETNSID), the one its links name
 * a peer there by; NETNSA_NSID_NOT_ASSIGNED if it gave none. */
static int cr_nsid(struct ndump *d, int32_t *nsid)
{
	struct rtgenmsg g = { .rtgen_family = AF_UNSPEC };
	cleanup_close int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST);
	int kerr, r;

	if (m == NULL || nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0)
		xalloc_failed_in("nlmsg_alloc_simple");
	*nsid = NETNSA_NSID_NOT_ASSIGNED;
	if (fd < 0) {
		nlmsg_free(m);
		return cr_error(d->err, errno, "open /proc/thread-self/ns/net");
	}
	nla_put_u32(m, NETNSA_FD, (uint32_t)fd);
	r = crnl_ask(d->rt, m, on_nsid, nsid, &kerr, d->err);
	nlmsg_free(m);
	if (r < 0 || kerr < 0)
		return r < 0 ? cr_error_wrap(d->err, "the id of cr's network namespace in the dumped one") :
			       cr_error(d->err, -kerr, "the id of cr's network namespace in the dumped one");
	return 0;
}

/* A peer outside is made in cr's namespace by the restore: it must be
 * there now. */
static int veth_of(struct ndump *d, NetLink *l, struct nlattr **tb)
{
	l->has_peer = true;
	if (tb[IFLA_LINK_NETNSID] == NULL && tb[IFLA_LINK] != NULL) {
		l->peer = nla_get_u32(tb[IFLA_LINK]);
		return 0;
	}
	if (!external(d->ext, l->name))
		return cr_error(d->err, 0, "veth %s has its peer in another network namespace: unsupported without "
				"--external veth:%s (the restore then puts the peer in cr's namespace)", l->name, l->name);
	if (tb[IFLA_LINK_NETNSID] == NULL || d->cr_nsid == NETNSA_NSID_NOT_ASSIGNED ||
	    (int32_t)nla_get_u32(tb[IFLA_LINK_NETNSID]) != d->cr_nsid)
		return cr_error(d->err, 0, "veth %s: unsupported, its peer is in a network namespace other than cr's, "
				"where --external veth:%s would make it", l->name, l->name);
	l->peer = 0;
	l->external = l->name;
	return 0;
}

static int kind_of(struct ndump *d, NetLink *l, struct nlattr **tb, struct ifinfomsg *ifi)
{
	struct nlattr *li[IFLA_INFO_MAX + 1] = { 0 };
	const char *kind = NULL;

	if (tb[IFLA_LINKINFO] && nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) == 0 &&
	    li[IFLA_INFO_KIND])
		kind = nla_get_string(li[IFLA_INFO_KIND]);
	if (li[IFLA_INFO_SLAVE_KIND] && strcmp(nla_get_string(li[IFLA_INFO_SLAVE_KIND]), "bridge") == 0)
		bridge_port_dump(d->a, l, li[IFLA_INFO_SLAVE_DATA]);
	if (ifi->ifi_flags & IFF_LOOPBACK) {
		l->kind = NET_LINK_KIND__LINK_LOOPBACK;
		return strcmp(l->name, "lo") == 0 ? 0 :
		       cr_error(d->err, 0, "loopback link %s not named lo: unsupported", l->name);
	}
	if (kind == NULL)
		return cr_error(d->err, 0, "link %s (ifindex %d): unsupported, of no kind netlink names (a physical "
				"device?)", l->name, ifi->ifi_index);
	if (strcmp(kind, "veth") == 0) {
		l->kind = NET_LINK_KIND__LINK_VETH;
		return veth_of(d, l, tb);
	}
	if (strcmp(kind, "bridge") == 0) {
		l->kind = NET_LINK_KIND__LINK_BRIDGE;
		return bridge_of(d, l, li[IFLA_INFO_DATA]);
	}
	if (strcmp(kind, "tun") == 0) {
		l->kind = NET_LINK_KIND__LINK_TUN;
		return tun_of(d, l, li[IFLA_INFO_DATA], tb[IFLA_CARRIER] && nla_get_u8(tb[IFLA_CARRIER]));
	}
	return cr_error(d->err, 0, "link %s of kind %s: unsupported (cr restores loopback, veth, bridge and "
			"tun/tap links)", l->name, kind);
}

static int on_link(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1];
	NetLink *l;

	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0 || tb[IFLA_IFNAME] == NULL)
		return cr_error(d->err, 0, "a malformed link message");
	l = arena_new(d->a, NetLink);
	net_link__init(l);
	l->ifindex = (uint32_t)ifi->ifi_index;
	l->name = arena_strdup(d->a, nla_get_string(tb[IFLA_IFNAME]));
	l->flags = ifi->ifi_flags;
	l->mtu = u32_or(tb[IFLA_MTU], 0);
	if ((l->has_address = tb[IFLA_ADDRESS] != NULL))
		l->address = bytes_of(d->a, nla_data(tb[IFLA_ADDRESS]), (size_t)nla_len(tb[IFLA_ADDRESS]));
	if ((l->has_broadcast = tb[IFLA_BROADCAST] != NULL))
		l->broadcast = bytes_of(d->a, nla_data(tb[IFLA_BROADCAST]), (size_t)nla_len(tb[IFLA_BROADCAST]));
	if ((l->has_master = tb[IFLA_MASTER] != NULL))
		l->master = nla_get_u32(tb[IFLA_MASTER]);
	if ((l->has_txqlen = tb[IFLA_TXQLEN] != NULL))
		l->txqlen = nla_get_u32(tb[IFLA_TXQLEN]);
	if (tb[IFLA_IFALIAS] && nla_len(tb[IFLA_IFALIAS]) > 1)
		l->alias = arena_strdup(d->a, nla_get_string(tb[IFLA_IFALIAS]));
	if (kind_of(d, l, tb, ifi) < 0)
		return -1;
	PUSH(d, links, l);
	return 0;
}

static const NetLink *link_by_index(const NetNs *n, uint32_t ifindex)
{
	for (size_t i = 0; i < n->n_links; i++)
		if (n->links[i]->ifindex == ifindex)
			return n->links[i];
	return NULL;
}

/* A port's bridge is in the namespace; it is a bridge. */
static int check_masters(struct ndump *d)
{
	for (size_t i = 0; i < d->n->n_links; i++) {
		const NetLink *l = d->n->links[i], *m;

		if (!l->has_master || l->master == 0)
			continue;
		m = link_by_index(d->n, l->master);
		if (m == NULL || m->kind != NET_LINK_KIND__LINK_BRIDGE)
			return cr_error(d->err, 0, "link %s: unsupported master (ifindex %u), no bridge of the "
					"namespace", l->name, l->master);
	}
	return 0;
}

/* ------------------------------------------------------------ addresses */

#define ADDR_KEPT_FLAGS (IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE | \
			 IFA_F_MCAUTOJOIN)

static ProtobufCBinaryData nl_bytes(struct arena *a, struct nl_addr *x)
{
	return bytes_of(a, nl_addr_get_binary_addr(x), nl_addr_get_len(x));
}

static int dump_addrs(struct ndump *d, struct nl_sock *sk)
{
	struct nl_cache *cache;
	int r = rtnl_addr_alloc_cache(sk, &cache);

	if (r < 0)
		return cr_error(d->err, 0, "read the addresses: %s", nl_geterror(r));
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *x = (struct rtnl_addr *)o;
		NetAddr *e;

		if (rtnl_addr_get_local(x) == NULL)
			continue;
		if (rtnl_addr_get_family(x) == AF_INET6 && (rtnl_addr_get_flags(x) & IFA_F_TEMPORARY))
			continue;   /* a privacy address: the kernel makes new ones */
		e = arena_new(d->a, NetAddr);
		net_addr__init(e);
		e->ifindex = (uint32_t)rtnl_addr_get_ifindex(x);
		e->family = (uint32_t)rtnl_addr_get_family(x);
		e->prefixlen = (uint32_t)rtnl_addr_get_prefixlen(x);
		e->local = nl_bytes(d->a, rtnl_addr_get_local(x));
		if ((e->has_peer = rtnl_addr_get_peer(x) != NULL))
			e->peer = nl_bytes(d->a, rtnl_addr_get_peer(x));
		if ((e->has_broadcast = rtnl_addr_get_broadcast(x) != NULL))
			e->broadcast = nl_bytes(d->a, rtnl_addr_get_broadcast(x));
		if (rtnl_addr_get_label(x) && e->family == AF_INET)
			e->label = arena_strdup(d->a, rtnl_addr_get_label(x));
		e->scope = (uint32_t)rtnl_addr_get_scope(x);
		e->flags = rtnl_addr_get_flags(x) & ADDR_KEPT_FLAGS;
		e->valid_lft = rtnl_addr_get_valid_lifetime(x);
		e->preferred_lft = rtnl_addr_get_preferred_lifetime(x);
		PUSH(d, addrs, e);
	}
	nl_cache_free(cache);
	return 0;
}

/* --------------------------------------------------------------- routes */

static int nexthop_of(struct ndump *d, NetRoute *e, struct rtnl_nexthop *nh)
{
	NetNexthop *x = arena_new(d->a, NetNexthop);

	if (rtnl_route_nh_get_via(nh) || rtnl_route_nh_get_newdst(nh) || rtnl_route_nh_get_encap_mpls_dst(nh))
		return cr_error(d->err, 0, "a route with an unsupported nexthop (RTA_VIA, RTA_NEWDST or an "
				"encapsulation)");
	net_nexthop__init(x);
	x->ifindex = (uint32_t)rtnl_route_nh_get_ifindex(nh);
	if ((x->has_gateway = rtnl_route_nh_get_gateway(nh) != NULL))
		x->gateway = nl_bytes(d->a, rtnl_route_nh_get_gateway(nh));
	x->flags = rtnl_route_nh_get_flags(nh);
	x->weight = rtnl_route_nh_get_weight(nh);
	e->nexthops[e->n_nexthops++] = x;
	return 0;
}

static int route_of(struct ndump *d, struct rtnl_route *r)
{
	NetRoute *e = arena_new(d->a, NetRoute);
	int nn = rtnl_route_get_nnexthops(r);
	uint32_t metric, *m;

	net_route__init(e);
	e->family = rtnl_route_get_family(r);
	e->table = rtnl_route_get_table(r);
	e->protocol = rtnl_route_get_protocol(r);
	e->scope = rtnl_route_get_scope(r);
	e->type = rtnl_route_get_type(r);
	e->tos = rtnl_route_get_tos(r);
	e->flags = rtnl_route_get_flags(r);
	if (rtnl_route_get_dst(r) && nl_addr_get_prefixlen(rtnl_route_get_dst(r)) > 0) {
		e->has_dst = true;
		e->dst = nl_bytes(d->a, rtnl_route_get_dst(r));
		e->dst_len = nl_addr_get_prefixlen(rtnl_route_get_dst(r));
	}
	if (rtnl_route_get_src(r) && nl_addr_get_prefixlen(rtnl_route_get_src(r)) > 0) {
		e->has_src = true;
		e->src = nl_bytes(d->a, rtnl_route_get_src(r));
		e->src_len = nl_addr_get_prefixlen(rtnl_route_get_src(r));
	}
	if ((e->has_prefsrc = rtnl_route_get_pref_src(r) != NULL))
		e->prefsrc = nl_bytes(d->a, rtnl_route_get_pref_src(r));
	e->has_priority = true;
	e->priority = rtnl_route_get_priority(r);
	e->nexthops = arena_array(d->a, NetNexthop *, nn > 0 ? nn : 1);
	for (int i = 0; i < nn; i++)
		if (nexthop_of(d, e, rtnl_route_nexthop_n(r, i)) < 0)
			return -1;
	m = e->metrics = arena_array(d->a, uint32_t, 2 * RTAX_MAX);
	for (int i = 1; i <= RTAX_MAX; i++)
		if (rtnl_route_get_metric(r, i, &metric) == 0) {
			m[e->n_metrics++] = (uint32_t)i;
			m[e->n_metrics++] = metric;
		}
	PUSH(d, routes, e);
	return 0;
}

/* The routes the kernel does not make itself (for addresses and links:
 * protocol kernel). */
static int dump_routes(struct ndump *d, struct nl_sock *sk)
{
	struct nl_cache *cache;
	int r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &cache);

	if (r < 0)
		return cr_error(d->err, 0, "read the routes: %s", nl_geterror(r));
	r = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o && r == 0; o = nl_cache_get_next(o)) {
		struct rtnl_route *rt = (struct rtnl_route *)o;

		if (rtnl_route_get_protocol(rt) == RTPROT_KERNEL || (rtnl_route_get_flags(rt) & RTM_F_CLONED))
			continue;
		if (rtnl_route_get_family(rt) != AF_INET && rtnl_route_get_family(rt) != AF_INET6)
			r = cr_error(d->err, 0, "a route of family %d: unsupported", rtnl_route_get_family(rt));
		else
			r = route_of(d, rt);
	}
	nl_cache_free(cache);
	return r;
}

/* ---------------------------------------------------------------- rules */

static int on_rule(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct fib_rule_hdr *frh = nlmsg_data(h);
	struct nlattr *tb[FRA_MAX + 1];
	NetRule *e;

	if (nlmsg_parse(h, sizeof(*frh), tb, FRA_MAX, NULL) < 0)
		return cr_error(d->err, 0, "a malformed rule message");
	e = arena_new(d->a, NetRule);
	net_rule__init(e);
	e->family = frh->family;
	e->priority = u32_or(tb[FRA_PRIORITY], 0);
	e->table = u32_or(tb[FRA_TABLE], frh->table);
	e->raw = bytes_of(d->a, nlmsg_data(h), (size_t)nlmsg_datalen(h));
	PUSH(d, rules, e);
	return 0;
}

/* ------------------------------------------- what cannot come back */

/* What a user made: a permanent neighbour, a static or permanent entry
 * of a bridge's forwarding database (NDA_MASTER names the bridge) but the
 * one of each port's own address; not the caches, nor a device's own
 * lists (NTF_SELF). */
static bool user_made(const NetNs *n, const struct ndmsg *nd, struct nlattr **tb)
{
	struct nlattr *lladdr = tb[NDA_LLADDR];
	const NetLink *l;

	if (nd->ndm_family != AF_BRIDGE)
		return (nd->ndm_state & NUD_PERMANENT) != 0;
	if (tb[NDA_MASTER] == NULL || (nd->ndm_flags & NTF_SELF) || !(nd->ndm_state & (NUD_PERMANENT | NUD_NOARP)))
		return false;
	l = link_by_index(n, (uint32_t)nd->ndm_ifindex);
	return !(nd->ndm_state & NUD_PERMANENT) || lladdr == NULL || l == NULL || !l->has_address ||
	       l->address.len != (size_t)nla_len(lladdr) || memcmp(l->address.data, nla_data(lladdr), l->address.len);
}

static int on_neigh(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct ndmsg *nd = nlmsg_data(h);
	struct nlattr *tb[NDA_MAX + 1];
	NetNeigh *e;

	if (nlmsg_parse(h, sizeof(*nd), tb, NDA_MAX, NULL) < 0)
		return cr_error(d->err, 0, "a malformed neighbour message");
	if (!user_made(d->n, nd, tb))
		return 0;
	e = arena_new(d->a, NetNeigh);
	net_neigh__init(e);
	e->family = nd->ndm_family;
	e->ifindex = (uint32_t)nd->ndm_ifindex;
	e->state = nd->ndm_state;
	e->flags = nd->ndm_flags | (nd->ndm_family == AF_BRIDGE ? NTF_MASTER : 0);   /* sent to the bridge */
	if ((e->has_dst = tb[NDA_DST] != NULL))
		e->dst = bytes_of(d->a, nla_data(tb[NDA_DST]), (size_t)nla_len(tb[NDA_DST]));
	if ((e->has_lladdr = tb[NDA_LLADDR] != NULL))
		e->lladdr = bytes_of(d->a, nla_data(tb[NDA_LLADDR]), (size_t)nla_len(tb[NDA_LLADDR]));
	if ((e->has_vlan = tb[NDA_VLAN] != NULL))
		e->vlan = nla_get_u16(tb[NDA_VLAN]);
	PUSH(d, neighs, e);
	return 0;
}

/* Queueing disciplines the kernel gives a link have no handle. */
static int on_qdisc(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct tcmsg *tc = nlmsg_data(h);
	struct nlattr *tb[TCA_MAX + 1];
	const NetLink *l;

	if (tc->tcm_handle == 0)
		return 0;
	l = link_by_index(d->n, (uint32_t)tc->tcm_ifindex);
	if (nlmsg_parse(h, sizeof(*tc), tb, TCA_MAX, NULL) < 0 || tb[TCA_KIND] == NULL)
		return cr_error(d->err, 0, "a malformed qdisc message");
	return cr_error(d->err, 0, "link %s: unsupported %s queueing discipline (handle %x:; traffic control is not "
			"restored)", l ? l->name : "?", nla_get_string(tb[TCA_KIND]), tc->tcm_handle >> 16);
}

static int on_nexthop(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct nlattr *tb[NHA_MAX + 1];

	if (nlmsg_parse(h, sizeof(struct nhmsg), tb, NHA_MAX, NULL) < 0 || tb[NHA_ID] == NULL)
		return cr_error(d->err, 0, "a malformed nexthop message");
	return cr_error(d->err, 0, "nexthop object %u: unsupported (ip nexthop objects are not restored)",
			nla_get_u32(tb[NHA_ID]));
}

static int on_xfrm(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;

	return cr_error(d->err, 0, "an IPsec %s: unsupported (xfrm states and policies are not restored)",
			h->nlmsg_type == XFRM_MSG_NEWSA ? "state (SA)" : "policy");
}

/* IPsec: the states and policies of the namespace (ip xfrm). */
static int check_xfrm(struct ndump *d, struct nl_sock *xfrm)
{
	if (xfrm == NULL)
		return 0;
	if (crnl_dump(xfrm, XFRM_MSG_GETSA, NULL, 0, on_xfrm, d, d->err) < 0)
		return -1;
	return crnl_dump(xfrm, XFRM_MSG_GETPOLICY, NULL, 0, on_xfrm, d, d->err);
}

static int on_table(struct nlmsghdr *h, void *arg)
{
	struct ndump *d = arg;
	struct nlattr *tb[NFTA_TABLE_MAX + 1];
	const char *name;

	if (nlmsg_parse(h, sizeof(struct nfgenmsg), tb, NFTA_TABLE_MAX, NULL) < 0 || tb[NFTA_TABLE_NAME] == NULL)
		return cr_error(d->err, 0, "a malformed nftables message");
	name = nla_get_string(tb[NFTA_TABLE_NAME]);
	if (d->table[0] == '\0' && !fw_is_lock_table(name, strlen(name)))   /* cr's own lock: not dumped */
		snprintf(d->table, sizeof(d->table), "%s", name);
	return 0;
}

/* The firewall rules of a namespace, by the programs that own them
 * (netns_fw.h): nftables, legacy iptables and ip6tables; legacy arptables
 * are refused. */
static int dump_firewall(struct ndump *d, const struct inside *in, pid_t pid)
{
	struct nfgenmsg g = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 };
	cleanup_close int fd = -1;
	char path[64];

	if (in->xt[2][0])
		return cr_error(d->err, 0, "legacy arptables table %s: unsupported (arptables rules are not restored)",
				in->xt[2]);
	if (in->nf && crnl_dump(in->nf, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, &g, sizeof(g), on_table, d,
				d->err) < 0)
		return -1;
	if (d->table[0] == '\0' && in->xt[0][0] == '\0' && in->xt[1][0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return cr_error(d->err, errno, "open %s", path);
	if (d->table[0] && fw_dump(d->a, FW_NFT, fd, d->table, &d->n->nftables, d->err) < 0)
		return -1;
	if (in->xt[0][0] && fw_dump(d->a, FW_IPTABLES, fd, in->xt[0], &d->n->iptables, d->err) < 0)
		return -1;
	return in->xt[1][0] ? fw_dump(d->a, FW_IP6TABLES, fd, in->xt[1], &d->n->ip6tables, d->err) : 0;
}

/* Inside the namespace: a legacy table's name from /proc/net/FILE (which
 * shows the reader's namespace) into table, "" if it has none. */
static void xtables_table(const char *file, char table[64])
{
	char path[96];
	cleanup_close int fd = -1;
	ssize_t r = 0;

	snprintf(path, sizeof(path), "/proc/thread-self/net/%s", file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0)   /* none: not built in, no table */
		r = read(fd, table, 63);
	table[r > 0 ? r : 0] = '\0';
	table[strcspn(table, "\n")] = '\0';
}

/* ------------------------------------------------------------ the dump */

static void inside_free(struct inside *in)
{
	crnl_sock_freep(&in->rt);
	crnl_sock_freep(&in->nf);
	crnl_sock_freep(&in->xfrm);
}

/* In the namespace of pid: its sockets, its legacy tables. */
static int look_inside(pid_t pid, struct inside *in, cr_error_t *err)
{
	int back, r;

	if (netns_enter_pid(pid, &back, err) < 0)
		return -1;
	r = crnl_open(NETLINK_ROUTE, &in->rt, err);
	if (r == 0 && crnl_open(NETLINK_NETFILTER, &in->nf, err) < 0) {
		pr_debug("no nfnetlink (%s): no nftables to look at", (*err)->msg);
		cr_error_release(err);
	}
	if (r == 0 && crnl_open(NETLINK_XFRM, &in->xfrm, err) < 0) {
		pr_debug("no xfrm netlink (%s): no IPsec to look at", (*err)->msg);
		cr_error_release(err);
	}
	xtables_table("ip_tables_names", in->xt[0]);
	xtables_table("ip6_tables_names", in->xt[1]);
	xtables_table("arp_tables_names", in->xt[2]);
	netns_leave(&back);
	return r;
}

/* The sysctls of a fresh namespace: the kernel's defaults, the same for
 * the whole run, read (once) before the tree is frozen when it is known
 * to need them (netns_prefetch_defaults).  The namespace is kept (fresh):
 * a value that differs is tried in it, never in cr's own. */
static struct sysctl_set defaults;
static int fresh = -1;

static int read_defaults(cr_error_t *err)
{
	int back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC), r;

	if (fresh >= 0)
		return 0;
	if (back < 0)
		return cr_error(err, errno, "open /proc/thread-self/ns/net");
	if (unshare(CLONE_NEWNET) < 0) {
		close(back);
		return cr_error(err, errno, "unshare a fresh network namespace (for its defaults)");
	}
	r = sysctls_read(&defaults, err);
	if (r == 0 && (fresh = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		r = cr_error(err, errno, "open /proc/thread-self/ns/net");
	if (r < 0)
		sysctls_free(&defaults);
	netns_leave(&back);
	return r;
}

int netns_prefetch_defaults(cr_error_t *err)
{
	return read_defaults(err);
}

/* The sysctls that differ from a fresh namespace's, tried in one. */
static int record_sysctls(struct arena *a, NetNs *n, const struct sysctl_set *cur, cr_error_t *err)
{
	int back, r;

	if (read_defaults(err) < 0 || netns_enter_fd(fresh, &back, err) < 0)
		return -1;
	r = sysctls_record(a, cur, &defaults, n, err);
	netns_leave(&back);
	return r;
}

/* The sysctls of a namespace of the dump are ~700 files of /proc/sys/net
 * (several ms): a thread of their own reads them, in the namespace,
 * while the dump goes on; netns_dump_finish waits for it. */
struct sysctl_job {
	struct sysctl_job *next;
	pthread_t thread;
	int nsfd;
	uint64_t ino;          /* the namespace's */
	pid_t pid;
	NetNs *n;              /* NULL: started ahead, not taken (yet) */
	struct sysctl_set set;
	cr_error_t err;
	int r;
};

static struct sysctl_job *jobs;

static void *read_sysctls(void *arg)
{
	struct sysctl_job *j = arg;

	/* This thread alone enters the namespace, and ends in it. */
	if (setns(j->nsfd, CLONE_NEWNET) < 0)
		j->r = cr_error(&j->err, errno, "enter the network namespace (for its sysctls)");
	else
		j->r = sysctls_read(&j->set, &j->err);
	return NULL;
}

static int start_sysctls(pid_t pid, NetNs *n, cr_error_t *err)
{
	struct sysctl_job *j = xcalloc(1, sizeof(*j));
	char path[64];
	struct stat st;
	int e;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	j->pid = pid;
	j->n = n;
	j->nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (j->nsfd < 0 || fstat(j->nsfd, &st) < 0) {
		e = errno;
		if (j->nsfd >= 0)
			close(j->nsfd);
		free(j);
		return cr_error(err, e, "open %s", path);
	}
	j->ino = (uint64_t)st.st_ino;
	e = cr_thread_create(&j->thread, read_sysctls, j);
	if (e != 0) {
		close(j->nsfd);
		free(j);
		return cr_error(err, e, "start a thread to read the sysctls");
	}
	j->next = jobs;
	jobs = j;
	return 0;
}

/* Waits for the job, records its sysctls in its entry (record) or not. */
static int end_job(struct sysctl_job *j, struct arena *a, bool record, cr_error_t *err)
{
	int r;

	pthread_join(j->thread, NULL);
	close(j->nsfd);
	if (j->n == NULL)   /* read ahead for a namespace not recorded: dropped */
		record = false, j->r = 0;
	if (j->r < 0 && record) {
		*err = j->err;
		j->err = NULL;
	}
	r = j->r < 0 ? -1 : record ? record_sysctls(a, j->n, &j->set, err) : 0;
	if (r < 0 && record)
		cr_error_wrap(err, "pid %d: its network namespace", j->pid);
	else if (record)
		pr_debug("pid %d: network namespace: %zu of %zu sysctls differ from a fresh one's", j->pid,
			 j->n->n_sysctls, j->set.n);
	cr_error_release(&j->err);
	sysctls_free(&j->set);
	free(j);
	return r;
}

int netns_dump_finish(struct arena *a, cr_error_t *err)
{
	int r = 0;

	while (jobs != NULL) {
		struct sysctl_job *j = jobs;

		jobs = j->next;
		if (end_job(j, a, r == 0, err) < 0)
			r = -1;
	}
	return r;
}

void netns_sysctls_prefetch(pid_t pid)
{
	cr_error_t err = NULL;

	if (start_sysctls(pid, NULL, &err) < 0) {
		pr_debug("the sysctls of pid %d's network namespace are not read ahead: %s", pid, err->msg);
		cr_error_release(&err);
	}
}

/* The job read ahead for pid's namespace becomes n's; false if none. */
static bool take_ahead(pid_t pid, NetNs *n)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &st) < 0)
		return false;
	for (struct sysctl_job *j = jobs; j != NULL; j = j->next)
		if (j->n == NULL && j->ino == (uint64_t)st.st_ino) {
			j->n = n;
			j->pid = pid;
			return true;
		}
	return false;
}

void netns_dump_abandon(void)
{
	while (jobs != NULL) {
		struct sysctl_job *j = jobs;

		jobs = j->next;
		end_job(j, NULL, false, NULL);
	}
}

static int dump_all(struct ndump *d, struct inside *in, pid_t pid)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct fib_rule_hdr frh = { .family = AF_UNSPEC };
	struct ndmsg nd4 = { .ndm_family = AF_INET }, nd6 = { .ndm_family = AF_INET6 }, ndb = { .ndm_family = AF_BRIDGE };
	struct tcmsg tc = { .tcm_family = AF_UNSPEC };
	struct nhmsg nh = { .nh_family = AF_UNSPEC };

	d->cr_nsid = NETNSA_NSID_NOT_ASSIGNED;
	if (d->ext && d->ext->n && cr_nsid(d, &d->cr_nsid) < 0)   /* not from a callback of the link dump */
		return -1;
	if (crnl_dump(in->rt, RTM_GETLINK, &ifi, sizeof(ifi), on_link, d, d->err) < 0 || check_masters(d) < 0 ||
	    dump_firewall(d, in, pid) < 0 || check_xfrm(d, in->xfrm) < 0 ||
	    crnl_dump(in->rt, RTM_GETNEIGH, &nd4, sizeof(nd4), on_neigh, d, d->err) < 0 ||
	    crnl_dump(in->rt, RTM_GETNEIGH, &nd6, sizeof(nd6), on_neigh, d, d->err) < 0 ||
	    crnl_dump(in->rt, RTM_GETNEIGH, &ndb, sizeof(ndb), on_neigh, d, d->err) < 0 ||
	    crnl_dump(in->rt, RTM_GETQDISC, &tc, sizeof(tc), on_qdisc, d, d->err) < 0 ||
	    crnl_dump(in->rt, RTM_GETNEXTHOP, &nh, sizeof(nh), on_nexthop, d, d->err) < 0 ||
	    dump_addrs(d, in->rt) < 0 || dump_routes(d, in->rt) < 0 ||
	    crnl_dump(in->rt, RTM_GETRULE, &frh, sizeof(frh), on_rule, d, d->err) < 0)
		return -1;
	return 0;
}

int netns_dump(struct arena *a, pid_t pid, uint32_t id, const struct netns_external *ext, NetNs **out,
	       cr_error_t *err)
{
	struct inside in = { 0 };
	struct ndump d = { .a = a, .ext = ext, .err = err };
	int r;

	d.n = arena_new(a, NetNs);
	net_ns__init(d.n);
	d.n->id = id;
	if (!take_ahead(pid, d.n) && start_sysctls(pid, d.n, err) < 0)
		return -1;
	r = look_inside(pid, &in, err);
	d.rt = in.rt;
	if (r == 0)
		r = dump_all(&d, &in, pid);
	inside_free(&in);
	if (r < 0)
		return -1;
	pr_debug("pid %d: network namespace: %zu links, %zu addresses, %zu routes, %zu rules", pid, d.n->n_links,
		 d.n->n_addrs, d.n->n_routes, d.n->n_rules);
	*out = d.n;
	return 0;
}
