/* Restore of a network namespace, and its checks: see netns.h. */
#include "net/netlink.h"
#include "net/netns.h"
#include "net/netns_bridge.h"
#include "net/netns_fw.h"
#include "net/netns_sysctl.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>

#define FOREVER 0xffffffffu
/* The link flags one sets (ip link set ... up, arp off, promisc on, ...). */
#define LINK_FLAGS (IFF_UP | IFF_NOARP | IFF_PROMISC | IFF_ALLMULTI | IFF_MULTICAST)

static const NetLink *link_of(const NetNs *n, uint32_t ifindex)
{
	for (size_t i = 0; i < n->n_links; i++)
		if (n->links[i]->ifindex == ifindex)
			return n->links[i];
	return NULL;
}

/* ----------------------------------------------------------- validation */

static size_t addr_len(uint32_t family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static bool bytes_ok(protobuf_c_boolean has, ProtobufCBinaryData b, uint32_t family)
{
	return !has || b.len == addr_len(family);
}

static int validate_link(const NetNs *n, const NetLink *l, cr_error_t *err)
{
	const NetLink *p;

	if (l->ifindex == 0 || l->name[0] == '\0' || strlen(l->name) >= IFNAMSIZ || strchr(l->name, '/'))
		return cr_error(err, 0, "a link with ifindex %u and name '%s'", l->ifindex, l->name);
	if (link_of(n, l->ifindex) != l)
		return cr_error(err, 0, "two links with ifindex %u", l->ifindex);
	if ((l->has_address && l->address.len > 32) || (l->has_broadcast && l->broadcast.len > 32))
		return cr_error(err, 0, "link %s: an address of more than 32 bytes", l->name);
	if (!bridge_port_valid(l))
		return cr_error(err, 0, "link %s: malformed bridge port settings", l->name);
	if (l->has_master && l->master && (!(p = link_of(n, l->master)) || p->kind != NET_LINK_KIND__LINK_BRIDGE))
		return cr_error(err, 0, "link %s: its master %u is no bridge", l->name, l->master);
	if ((l->kind == NET_LINK_KIND__LINK_TUN) != (l->tun != NULL) ||
	    (l->kind == NET_LINK_KIND__LINK_BRIDGE) != (l->bridge != NULL))
		return cr_error(err, 0, "link %s does not hold what its kind needs", l->name);
	if (l->kind == NET_LINK_KIND__LINK_LOOPBACK && (l->ifindex != 1 || strcmp(l->name, "lo") != 0))
		return cr_error(err, 0, "a loopback link %s with ifindex %u", l->name, l->ifindex);
	if (l->kind != NET_LINK_KIND__LINK_VETH)
		return 0;
	if (l->peer == 0)
		return l->external ? 0 : cr_error(err, 0, "veth %s: no peer and no external name", l->name);
	p = link_of(n, l->peer);
	if (p == NULL || p->kind != NET_LINK_KIND__LINK_VETH || p->peer != l->ifindex || p == l)
		return cr_error(err, 0, "veth %s: its peer %u is no veth whose peer it is", l->name, l->peer);
	return 0;
}

static int validate_route(const NetNs *n, const NetRoute *r, cr_error_t *err)
{
	size_t bits = addr_len(r->family) * 8;

	if (bits == 0 || !bytes_ok(r->has_dst, r->dst, r->family) || !bytes_ok(r->has_src, r->src, r->family) ||
	    !bytes_ok(r->has_prefsrc, r->prefsrc, r->family) || r->dst_len > bits || r->src_len > bits ||
	    r->n_metrics % 2)
		return cr_error(err, 0, "a malformed route");
	for (size_t i = 0; i < r->n_nexthops; i++) {
		const NetNexthop *h = r->nexthops[i];

		if ((h->ifindex && !link_of(n, h->ifindex)) ||
		    (h->has_gateway && h->gateway.len != 4 && h->gateway.len != 16))
			return cr_error(err, 0, "a route through ifindex %u, which the namespace has not", h->ifindex);
	}
	return 0;
}

int netns_validate(const NetNs *n, cr_error_t *err)
{
	for (size_t i = 0; i < n->n_links; i++)
		if (validate_link(n, n->links[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->n_addrs; i++) {
		const NetAddr *a = n->addrs[i];

		if (!link_of(n, a->ifindex) || addr_len(a->family) == 0 || a->local.len != addr_len(a->family) ||
		    !bytes_ok(a->has_peer, a->peer, a->family) || !bytes_ok(a->has_broadcast, a->broadcast, a->family) ||
		    a->prefixlen > addr_len(a->family) * 8 || (a->label && strlen(a->label) >= IFNAMSIZ))
			return cr_error(err, 0, "a malformed address on ifindex %u", a->ifindex);
	}
	for (size_t i = 0; i < n->n_routes; i++)
		if (validate_route(n, n->routes[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->n_rules; i++)
		if (n->rules[i]->raw.len < sizeof(struct fib_rule_hdr))
			return cr_error(err, 0, "a rule of %zu bytes", n->rules[i]->raw.len);
	for (size_t i = 0; i < n->n_neighs; i++) {
		const NetNeigh *e = n->neighs[i];

		if (!link_of(n, e->ifindex) || (e->family != AF_BRIDGE && !bytes_ok(true, e->dst, e->family)) ||
		    (e->has_lladdr && e->lladdr.len > 32) || e->state > UINT16_MAX || e->flags > UINT8_MAX)
			return cr_error(err, 0, "a malformed neighbour on ifindex %u", e->ifindex);
	}
	for (size_t i = 0; i < n->n_sysctls; i++)
		if (!sysctl_name_ok(n->sysctls[i]->name) || strchr(n->sysctls[i]->value, '\n'))
			return cr_error(err, 0, "a sysctl named '%s'", n->sysctls[i]->name);
	for (size_t i = 0; i < n->n_fresh_conf; i++)
		if (!sysctl_name_ok(n->fresh_conf[i]->name) || !sysctl_host_given(n->fresh_conf[i]->name) ||
		    strchr(n->fresh_conf[i]->value, '\n'))
			return cr_error(err, 0, "a fresh namespace's sysctl named '%s'", n->fresh_conf[i]->name);
	return 0;
}

/* HOSTNAME of --external veth:NAME=HOSTNAME, or NULL. */
static const char *host_name(const struct netns_external *ext, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; ext && i < ext->n; i++)
		if (strncmp(ext->names[i], name, len) == 0 && ext->names[i][len] == '=')
			return ext->names[i] + len + 1;
	return NULL;
}

bool netns_has_external(const NetNs *n)
{
	for (size_t i = 0; i < n->n_links; i++)
		if (n->links[i]->external)
			return true;
	return false;
}

int netns_check_external(const NetNs *n, const struct netns_external *ext, cr_error_t *err)
{
	const char *rules[] = { [FW_NFT] = n->nftables, [FW_IPTABLES] = n->iptables, [FW_IP6TABLES] = n->ip6tables };

	for (size_t k = 0; k < ARRAY_SIZE(rules); k++)
		if (rules[k] && !fw_available(k))
			return cr_error(err, ENOENT, "network namespace %u holds %s rules, and the program that loads "
					"them is not installed", n->id, fw_name(k));
	for (size_t i = 0; i < n->n_links; i++) {
		const char *ext_name = n->links[i]->external, *host;

		if (ext_name == NULL)
			continue;
		host = host_name(ext, ext_name);
		if (host == NULL)
			return cr_error(err, 0, "veth %s had its peer outside the namespace: restore with --external "
					"veth:%s=HOSTNAME (the name of the peer in cr's namespace)", ext_name, ext_name);
		if (host[0] == '\0' || strlen(host) >= IFNAMSIZ || strchr(host, '/'))
			return cr_error(err, 0, "--external veth:%s=%s: not a link name", ext_name, host);
	}
	return 0;
}

/* --------------------------------------------------------------- links */

static struct nl_msg *link_msg(int flags, uint32_t ifindex, uint32_t set, uint32_t change)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)ifindex, .ifi_flags = set,
				 .ifi_change = change };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWLINK, flags);

	if (m == NULL || nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
		xalloc_failed_in("nlmsg_alloc_simple");
	return m;
}

/* Sends m (and frees it); what failed is named by what. */
static int send_msg(struct nl_sock *sk, struct nl_msg *m, const char *what, const char *name, cr_error_t *err)
{
	int kerr, r = crnl_request(sk, m, &kerr, err);

	nlmsg_free(m);
	if (r < 0)
		return cr_error_wrap(err, "%s %s", what, name);
	if (kerr < 0)
		return cr_error(err, -kerr, "%s %s", what, name);
	return 0;
}

static void put_bytes(struct nl_msg *m, int type, protobuf_c_boolean has, ProtobufCBinaryData b)
{
	if (has && b.len)
		nla_put(m, type, (int)b.len, b.data);
}

/* A veth pair, both ends in the namespace, or one with its peer named
 * host in cr's namespace (host_net). */
static int make_veth(struct nl_sock *sk, const NetLink *l, const NetLink *peer, const char *host, int host_net,
		     cr_error_t *err)
{
	struct nl_msg *m = link_msg(NLM_F_CREATE | NLM_F_EXCL, l->ifindex, 0, 0);
	struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC, .ifi_index = peer ? (int)peer->ifindex : 0 };
	struct nlattr *info, *data, *p;

	nla_put_string(m, IFLA_IFNAME, l->name);
	put_bytes(m, IFLA_ADDRESS, l->has_address, l->address);
	info = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "veth");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	p = nla_nest_start(m, VETH_INFO_PEER);
	nlmsg_append(m, &pifi, sizeof(pifi), NLMSG_ALIGNTO);
	nla_put_string(m, IFLA_IFNAME, peer ? peer->name : host);
	nla_put_u32(m, IFLA_MTU, peer ? peer->mtu : l->mtu);
	if (peer)
		put_bytes(m, IFLA_ADDRESS, peer->has_address, peer->address);
	else
		nla_put_u32(m, IFLA_NET_NS_FD, (uint32_t)host_net);
	nla_nest_end(m, p);
	nla_nest_end(m, data);
	nla_nest_end(m, info);
	return send_msg(sk, m, "make veth", l->name, err);
}

/* A bridge takes the smallest address of its ports until it is given
 * one: an address that is a port's is left to it, and follows the ports
 * as it did. */
static bool port_address(const NetNs *n, const NetLink *br)
{
	for (size_t i = 0; i < n->n_links; i++) {
		const NetLink *p = n->links[i];

		if (p->has_master && p->master == br->ifindex && p->has_address && br->has_address &&
		    p->address.len == br->address.len && memcmp(p->address.data, br->address.data, p->address.len) == 0)
			return true;
	}
	return false;
}

/* Likewise its MTU is its ports' smallest (1500 without ports) until it
 * is given one. */
static bool give_mtu(const NetNs *n, const NetLink *l)
{
	uint32_t mtu = 0;

	if (l->kind != NET_LINK_KIND__LINK_BRIDGE)
		return true;
	for (size_t i = 0; i < n->n_links; i++) {
		const NetLink *p = n->links[i];

		if (p->has_master && p->master == l->ifindex && (mtu == 0 || p->mtu < mtu))
			mtu = p->mtu;
	}
	return l->mtu != (mtu ? mtu : 1500);
}

static bool give_address(const NetNs *n, const NetLink *l)
{
	return l->has_address && l->kind != NET_LINK_KIND__LINK_LOOPBACK &&
	       !(l->kind == NET_LINK_KIND__LINK_BRIDGE && port_address(n, l));
}

static int make_bridge(struct nl_sock *sk, const NetNs *n, const NetLink *l, cr_error_t *err)
{
	struct nl_msg *m = link_msg(NLM_F_CREATE | NLM_F_EXCL, l->ifindex, 0, 0);
	const NetBridge *b = l->bridge;
	struct nlattr *info, *data;

	nla_put_string(m, IFLA_IFNAME, l->name);
	put_bytes(m, IFLA_ADDRESS, give_address(n, l), l->address);
	info = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "bridge");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	nla_put_u32(m, IFLA_BR_FORWARD_DELAY, b->forward_delay);
	nla_put_u32(m, IFLA_BR_HELLO_TIME, b->hello_time);
	nla_put_u32(m, IFLA_BR_MAX_AGE, b->max_age);
	nla_put_u32(m, IFLA_BR_AGEING_TIME, b->ageing_time);
	nla_put_u32(m, IFLA_BR_STP_STATE, b->stp_state);
	nla_put_u16(m, IFLA_BR_PRIORITY, (uint16_t)b->priority);
	if (b->vlan_filtering)   /* EOPNOTSUPP without CONFIG_BRIDGE_VLAN_FILTERING, even to say 0 */
		nla_put_u8(m, IFLA_BR_VLAN_FILTERING, (uint8_t)b->vlan_filtering);
	nla_nest_end(m, data);
	nla_nest_end(m, info);
	return send_msg(sk, m, "make bridge", l->name, err);
}

/* A persistent tun or tap, at its index, with its owner. */
static int make_tun(const NetLink *l, cr_error_t *err)
{
	cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	struct ifreq ifr = { .ifr_flags = (short)l->tun->flags };
	unsigned int ifindex = l->ifindex;

	if (fd < 0)
		return cr_error(err, errno, "tun %s: open /dev/net/tun", l->name);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", l->name);
	if (ioctl(fd, TUNSETIFINDEX, &ifindex) < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    (l->tun->has_owner && ioctl(fd, TUNSETOWNER, (unsigned long)l->tun->owner) < 0) ||
	    (l->tun->has_group && ioctl(fd, TUNSETGROUP, (unsigned long)l->tun->group) < 0) ||
	    ioctl(fd, TUNSETPERSIST, 1UL) < 0)
		return cr_error(err, errno, "make tun %s", l->name);
	return 0;
}

static int make_links(struct nl_sock *sk, const NetNs *n, const struct netns_external *ext, int host_net,
		      cr_error_t *err)
{
	for (size_t i = 0; i < n->n_links; i++) {
		const NetLink *l = n->links[i];
		int r = 0;

		switch (l->kind) {
		case NET_LINK_KIND__LINK_TUN: r = make_tun(l, err); break;
		case NET_LINK_KIND__LINK_BRIDGE: r = make_bridge(sk, n, l, err); break;
		case NET_LINK_KIND__LINK_VETH:
			if (l->peer == 0)
				r = make_veth(sk, l, NULL, host_name(ext, l->external), host_net, err);
			else if (l->ifindex < l->peer)
				r = make_veth(sk, l, link_of(n, l->peer), NULL, -1, err);
			break;
		default: break;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

/* What creation did not set: MTU, MAC, queue length, alias, bridge. */
static int set_link(struct nl_sock *sk, const NetNs *n, const NetLink *l, cr_error_t *err)
{
	struct nl_msg *m = link_msg(0, l->ifindex, 0, 0);

	if (give_mtu(n, l))
		nla_put_u32(m, IFLA_MTU, l->mtu);
	put_bytes(m, IFLA_ADDRESS, give_address(n, l), l->address);
	if (l->has_txqlen)
		nla_put_u32(m, IFLA_TXQLEN, l->txqlen);
	if (l->alias)
		nla_put_string(m, IFLA_IFALIAS, l->alias);
	if (l->has_master && l->master)
		nla_put_u32(m, IFLA_MASTER, l->master);
	return send_msg(sk, m, "set up link", l->name, err);
}

/* A bridge port's settings, once it is a port. */
static int set_port(struct nl_sock *sk, const NetLink *l, cr_error_t *err)
{
	struct nl_msg *m;

	if (l->n_port == 0)
		return 0;
	m = link_msg(0, l->ifindex, 0, 0);
	bridge_port_put(m, l);
	return send_msg(sk, m, "set the bridge port settings of", l->name, err);
}

static int set_flags(struct nl_sock *sk, const NetLink *l, cr_error_t *err)
{
	uint32_t change = l->kind == NET_LINK_KIND__LINK_LOOPBACK ? IFF_UP : LINK_FLAGS;

	return send_msg(sk, link_msg(0, l->ifindex, l->flags & change, change), "set the flags of", l->name, err);
}

/* ----------------------------------------------------- addresses, routes */

static struct nl_addr *nl_addr_of(uint32_t family, ProtobufCBinaryData b, uint32_t prefixlen)
{
	static const uint8_t zero[16];
	struct nl_addr *a = nl_addr_build((int)family, b.len ? b.data : zero, addr_len(family));

	if (a == NULL)
		xalloc_failed_in("nl_addr_build");
	nl_addr_set_prefixlen(a, (int)prefixlen);
	return a;
}

static const char *addr_text(const NetAddr *e, char *buf, size_t size)
{
	if (inet_ntop((int)e->family, e->local.data, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
	return buf;
}

/* lo's 127.0.0.1/8 and ::1/128 come back with lo up, as the kernel makes them. */
static bool made_by_kernel(const NetNs *n, const NetAddr *e)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 }, v6[16] = { [15] = 1 };
	const NetLink *l = link_of(n, e->ifindex);

	if (l->kind != NET_LINK_KIND__LINK_LOOPBACK || !(l->flags & IFF_UP))
		return false;
	return (e->family == AF_INET && e->prefixlen == 8 && memcmp(e->local.data, v4, 4) == 0) ||
	       (e->family == AF_INET6 && e->prefixlen == 128 && memcmp(e->local.data, v6, 16) == 0);
}

static int add_addr(struct nl_sock *sk, const NetNs *n, const NetAddr *e, cr_error_t *err)
{
	struct rtnl_addr *x = rtnl_addr_alloc();
	struct nl_addr *local = nl_addr_of(e->family, e->local, e->prefixlen), *p = NULL, *b = NULL;
	char text[INET6_ADDRSTRLEN];
	int r;

	if (x == NULL)
		xalloc_failed_in("rtnl_addr_alloc");
	rtnl_addr_set_ifindex(x, (int)e->ifindex);
	rtnl_addr_set_family(x, (int)e->family);
	rtnl_addr_set_local(x, local);
	if (e->has_peer)
		rtnl_addr_set_peer(x, p = nl_addr_of(e->family, e->peer, e->prefixlen));
	if (e->has_broadcast)
		rtnl_addr_set_broadcast(x, b = nl_addr_of(e->family, e->broadcast, addr_len(e->family) * 8));
	rtnl_addr_set_prefixlen(x, (int)e->prefixlen);
	if (e->label)
		rtnl_addr_set_label(x, e->label);
	rtnl_addr_set_scope(x, (int)e->scope);
	/* usable at once: no duplicate address detection */
	rtnl_addr_set_flags(x, e->flags | (e->family == AF_INET6 ? IFA_F_NODAD : 0));
	if (e->valid_lft != FOREVER || e->preferred_lft != FOREVER) {
		rtnl_addr_set_valid_lifetime(x, e->valid_lft);
		rtnl_addr_set_preferred_lifetime(x, e->preferred_lft);
	}
	r = rtnl_addr_add(sk, x, 0);
	nl_addr_put(local);
	nl_addr_put(p);
	nl_addr_put(b);
	rtnl_addr_put(x);
	if (r < 0 && r != -NLE_EXIST)   /* lo's, and link-local ones the kernel made first */
		return cr_error(err, 0, "add address %s/%u to %s: %s", addr_text(e, text, sizeof(text)), e->prefixlen,
				link_of(n, e->ifindex)->name, nl_geterror(r));
	return 0;
}

static struct rtnl_route *route_obj(const NetRoute *e)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct nl_addr *a;

	if (r == NULL)
		xalloc_failed_in("rtnl_route_alloc");
	rtnl_route_set_family(r, (uint8_t)e->family);
	rtnl_route_set_table(r, e->table);
	rtnl_route_set_protocol(r, (uint8_t)e->protocol);
	rtnl_route_set_scope(r, (uint8_t)e->scope);
	rtnl_route_set_type(r, (uint8_t)e->type);
	rtnl_route_set_tos(r, (uint8_t)e->tos);
	rtnl_route_set_flags(r, e->flags & RTNH_F_ONLINK);
	rtnl_route_set_dst(r, a = nl_addr_of(e->family, e->dst, e->dst_len));
	nl_addr_put(a);
	if (e->has_src) {
		rtnl_route_set_src(r, a = nl_addr_of(e->family, e->src, e->src_len));
		nl_addr_put(a);
	}
	if (e->has_prefsrc) {
		rtnl_route_set_pref_src(r, a = nl_addr_of(e->family, e->prefsrc, addr_len(e->family) * 8));
		nl_addr_put(a);
	}
	if (e->has_priority)
		rtnl_route_set_priority(r, e->priority);
	for (size_t i = 0; i + 1 < e->n_metrics; i += 2)
		rtnl_route_set_metric(r, (int)e->metrics[i], e->metrics[i + 1]);
	for (size_t i = 0; i < e->n_nexthops; i++) {
		const NetNexthop *h = e->nexthops[i];
		struct rtnl_nexthop *nh = rtnl_route_nh_alloc();

		if (nh == NULL)
			xalloc_failed_in("rtnl_route_nh_alloc");
		if (h->ifindex)
			rtnl_route_nh_set_ifindex(nh, (int)h->ifindex);
		if (h->has_gateway) {
			a = nl_addr_build(h->gateway.len == 4 ? AF_INET : AF_INET6, h->gateway.data, h->gateway.len);
			rtnl_route_nh_set_gateway(nh, a);
			nl_addr_put(a);
		}
		rtnl_route_nh_set_flags(nh, h->flags & RTNH_F_ONLINK);
		rtnl_route_nh_set_weight(nh, (uint8_t)h->weight);
		rtnl_route_add_nexthop(r, nh);
	}
	return r;
}

/* In rounds: a route through a gateway needs the route to the gateway. */
static int add_routes(struct nl_sock *sk, const NetNs *n, cr_error_t *err)
{
	cleanup_free bool *done = xcalloc(n->n_routes + 1, sizeof(*done));
	size_t left = n->n_routes, before;
	int last = 0;
	size_t failed = 0;

	do {
		before = left;
		for (size_t i = 0; i < n->n_routes; i++) {
			struct rtnl_route *r;
			int ret;

			if (done[i])
				continue;
			r = route_obj(n->routes[i]);
			ret = rtnl_route_add(sk, r, NLM_F_EXCL);
			rtnl_route_put(r);
			if (ret == 0 || ret == -NLE_EXIST) {
				done[i] = true;
				left--;
			} else {
				last = ret;
				failed = i;
			}
		}
	} while (left > 0 && left < before);
	if (left > 0) {
		const NetRoute *e = n->routes[failed];
		char dst[INET6_ADDRSTRLEN] = "default";

		if (e->has_dst)
			inet_ntop((int)e->family, e->dst.data, dst, sizeof(dst));
		return cr_error(err, 0, "add the route to %s/%u (table %u): %s", dst, e->dst_len, e->table,
				nl_geterror(last));
	}
	return 0;
}

/* ---------------------------------------------------------------- rules */

struct rules_now {
	ProtobufCBinaryData *v;
	size_t n;
};

static int on_rule_now(struct nlmsghdr *h, void *arg)
{
	struct rules_now *now = arg;

	now->v = xrealloc(now->v, (now->n + 1) * sizeof(*now->v));
	now->v[now->n].len = (size_t)nlmsg_datalen(h);
	now->v[now->n].data = xmalloc((size_t)nlmsg_datalen(h));
	memcpy(now->v[now->n++].data, nlmsg_data(h), (size_t)nlmsg_datalen(h));
	return 0;
}

static bool has_rule(const ProtobufCBinaryData *v, size_t n, const void *data, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].len == len && memcmp(v[i].data, data, len) == 0)
			return true;
	return false;
}

static int rule_msg(struct nl_sock *sk, int type, int flags, const void *data, size_t len, cr_error_t *err)
{
	struct nl_msg *m = nlmsg_alloc_simple(type, flags);
	char what[64];

	if (m == NULL || nlmsg_append(m, (void *)data, len, NLMSG_ALIGNTO) < 0)
		xalloc_failed_in("nlmsg_alloc_simple");
	snprintf(what, sizeof(what), "(family %u)", ((const struct fib_rule_hdr *)data)->family);
	return send_msg(sk, m, type == RTM_NEWRULE ? "add a rule" : "remove a default rule", what, err);
}

/* The rules of the new namespace become the dumped ones: defaults the
 * dump had not are removed, the others added. */
static int set_rules(struct nl_sock *sk, const NetNs *n, cr_error_t *err)
{
	struct fib_rule_hdr frh = { .family = AF_UNSPEC };
	struct rules_now now = { 0 };
	ProtobufCBinaryData *want = xcalloc(n->n_rules + 1, sizeof(*want));
	int r;

	for (size_t i = 0; i < n->n_rules; i++)
		want[i] = n->rules[i]->raw;
	r = crnl_dump(sk, RTM_GETRULE, &frh, sizeof(frh), on_rule_now, &now, err);
	for (size_t i = 0; r == 0 && i < now.n; i++)
		if (!has_rule(want, n->n_rules, now.v[i].data, now.v[i].len))
			r = rule_msg(sk, RTM_DELRULE, 0, now.v[i].data, now.v[i].len, err);
	for (size_t i = 0; r == 0 && i < n->n_rules; i++)
		if (!has_rule(now.v, now.n, want[i].data, want[i].len))
			r = rule_msg(sk, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, want[i].data, want[i].len, err);
	for (size_t i = 0; i < now.n; i++)
		free(now.v[i].data);
	free(now.v);
	free(want);
	return r;
}

/* ----------------------------------------------------------- neighbours */

static int add_neigh(struct nl_sock *sk, const NetNs *n, const NetNeigh *e, cr_error_t *err)
{
	struct ndmsg nd = { .ndm_family = (uint8_t)e->family, .ndm_ifindex = (int)e->ifindex,
			    .ndm_state = (uint16_t)e->state, .ndm_flags = (uint8_t)e->flags };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);

	if (m == NULL || nlmsg_append(m, &nd, sizeof(nd), NLMSG_ALIGNTO) < 0)
		xalloc_failed_in("nlmsg_alloc_simple");
	put_bytes(m, NDA_DST, e->has_dst, e->dst);
	put_bytes(m, NDA_LLADDR, e->has_lladdr, e->lladdr);
	if (e->has_vlan)
		nla_put_u16(m, NDA_VLAN, (uint16_t)e->vlan);
	return send_msg(sk, m, e->family == AF_BRIDGE ? "add a bridge fdb entry on" : "add a neighbour on",
			link_of(n, e->ifindex)->name, err);
}

/* ------------------------------------------------------------ restore */

/* The peers of external veths, in cr's namespace, come up. */
static int hosts_up(const NetNs *n, const struct netns_external *ext, int host_net, cr_error_t *err)
{
	cleanup_nl_sock struct nl_sock *sk = NULL;
	int back, r = 0;

	if (!netns_has_external(n))
		return 0;
	if (netns_enter_fd(host_net, &back, err) < 0)
		return -1;
	r = crnl_open(NETLINK_ROUTE, &sk, err);
	netns_leave(&back);
	for (size_t i = 0; r == 0 && i < n->n_links; i++) {
		const NetLink *l = n->links[i];
		struct nl_msg *m;

		if (l->external == NULL)
			continue;
		m = link_msg(0, 0, IFF_UP, IFF_UP);
		nla_put_string(m, IFLA_IFNAME, host_name(ext, l->external));
		r = send_msg(sk, m, "bring up the peer in cr's namespace of veth", l->name, err);
	}
	return r;
}

int netns_restore(const NetNs *n, const struct netns_external *ext, int host_net, cr_error_t *err)
{
	cleanup_nl_sock struct nl_sock *sk = NULL;

	if (crnl_open(NETLINK_ROUTE, &sk, err) < 0 || make_links(sk, n, ext, host_net, err) < 0)
		return -1;
	for (size_t i = 0; i < n->n_links; i++)
		if (set_link(sk, n, n->links[i], err) < 0 || set_port(sk, n->links[i], err) < 0)
			return -1;
	if (sysctls_apply(n, err) < 0)
		return -1;
	for (size_t i = 0; i < n->n_addrs; i++)
		if (!made_by_kernel(n, n->addrs[i]) && add_addr(sk, n, n->addrs[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->n_links; i++)
		if (set_flags(sk, n->links[i], err) < 0)
			return -1;
	for (size_t i = 0; i < n->n_neighs; i++)
		if (add_neigh(sk, n, n->neighs[i], err) < 0)
			return -1;
	if (add_routes(sk, n, err) < 0 || set_rules(sk, n, err) < 0 ||
	    (n->nftables && fw_restore(FW_NFT, n->nftables, err) < 0) ||
	    (n->iptables && fw_restore(FW_IPTABLES, n->iptables, err) < 0) ||
	    (n->ip6tables && fw_restore(FW_IP6TABLES, n->ip6tables, err) < 0) || hosts_up(n, ext, host_net, err) < 0)
		return -1;
	pr_debug("network namespace %u: %zu links, %zu addresses, %zu routes, %zu rules, %zu sysctls", n->id,
		 n->n_links, n->n_addrs, n->n_routes, n->n_rules, n->n_sysctls);
	return 0;
}

/* ----------------------------------------------------------- cr show */

static const char *kind_name(NetLinkKind k)
{
	switch (k) {
	case NET_LINK_KIND__LINK_LOOPBACK: return "loopback";
	case NET_LINK_KIND__LINK_VETH: return "veth";
	case NET_LINK_KIND__LINK_BRIDGE: return "bridge";
	case NET_LINK_KIND__LINK_TUN: return "tun";
	default: return "?";
	}
}

static void print_link(FILE *out, const NetNs *n, const NetLink *l)
{
	fprintf(out, "        %u: %s %s mtu %u%s", l->ifindex, l->name, kind_name(l->kind), l->mtu,
		(l->flags & IFF_UP) ? " up" : " down");
	if (l->has_address && l->address.len == 6)
		fprintf(out, " %02x:%02x:%02x:%02x:%02x:%02x", l->address.data[0], l->address.data[1],
			l->address.data[2], l->address.data[3], l->address.data[4], l->address.data[5]);
	if (l->has_master && l->master && link_of(n, l->master))
		fprintf(out, " master %s", link_of(n, l->master)->name);
	if (l->peer && link_of(n, l->peer))
		fprintf(out, " peer %s", link_of(n, l->peer)->name);
	if (l->external)
		fprintf(out, " peer outside (--external veth:%s)", l->external);
	if (l->tun)
		fprintf(out, " %s", (l->tun->flags & IFF_TAP) ? "tap" : "tun");
	fputc('\n', out);
}

void netns_print(FILE *out, const NetNs *n)
{
	char text[INET6_ADDRSTRLEN];

	fprintf(out, "%zu links, %zu addresses, %zu routes, %zu rules, %zu sysctls\n", n->n_links, n->n_addrs,
		n->n_routes, n->n_rules, n->n_sysctls);
	for (size_t i = 0; i < n->n_links; i++)
		print_link(out, n, n->links[i]);
	for (size_t i = 0; i < n->n_addrs; i++) {
		const NetAddr *a = n->addrs[i];
		const NetLink *l = link_of(n, a->ifindex);

		fprintf(out, "        %s %s/%u on %s\n", a->family == AF_INET ? "inet" : "inet6",
			a->local.len == addr_len(a->family) ? addr_text(a, text, sizeof(text)) : "?", a->prefixlen,
			l ? l->name : "?");
	}
	for (size_t i = 0; i < n->n_sysctls; i++)
		fprintf(out, "        sysctl %s = %s\n", n->sysctls[i]->name, n->sysctls[i]->value);
	if (n->nftables)
		fprintf(out, "        nftables ruleset (nft -j), %zu bytes\n", strlen(n->nftables));
	if (n->iptables)
		fprintf(out, "        iptables (legacy) tables, %zu bytes\n", strlen(n->iptables));
	if (n->ip6tables)
		fprintf(out, "        ip6tables (legacy) tables, %zu bytes\n", strlen(n->ip6tables));
}
