/* What a restore accepts of netns.img (net/netns_restore.c): a namespace
 * that makes sense passes; damaged links, addresses, routes, rules,
 * neighbours and sysctls are refused by name before anything is made; an
 * external veth needs its --external veth:NAME=HOSTNAME. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"

#include <stdlib.h>
#include <string.h>
#include <linux/fib_rules.h>
#include <sys/socket.h>

#include "net/netns.h"
#include "net/netns_fw.h"

struct model {
	NetNs ns;
	NetLink lo, va, vb, br, *links[4];
	NetBridge bridge;
	NetAddr a4, *addrs[1];
	NetRoute r, *routes[1];
	NetNexthop nh, *nhs[1];
	NetRule rule, *rules[1];
	NetSysctl sc, *sysctls[1];
	NetNeigh nb, *neighs[1];
	uint8_t mac[6], ip[4], gw[4];
	struct fib_rule_hdr frh;
};

static void link_init(NetLink *l, uint32_t ifindex, const char *name, NetLinkKind kind)
{
	net_link__init(l);
	l->ifindex = ifindex;
	l->name = (char *)name;
	l->kind = kind;
	l->mtu = 1500;
}

static int setup(void **state)
{
	struct model *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -1;
	net_ns__init(&m->ns);
	m->ns.id = 1;
	link_init(&m->lo, 1, "lo", NET_LINK_KIND__LINK_LOOPBACK);
	link_init(&m->va, 2, "va", NET_LINK_KIND__LINK_VETH);
	link_init(&m->vb, 3, "vb", NET_LINK_KIND__LINK_VETH);
	link_init(&m->br, 4, "br0", NET_LINK_KIND__LINK_BRIDGE);
	m->va.has_peer = m->vb.has_peer = true;
	m->va.peer = 3, m->vb.peer = 2;
	m->vb.has_master = true, m->vb.master = 4;
	m->va.has_address = true, m->va.address = (ProtobufCBinaryData){ 6, m->mac };
	net_bridge__init(&m->bridge);
	m->br.bridge = &m->bridge;
	m->links[0] = &m->lo, m->links[1] = &m->va, m->links[2] = &m->vb, m->links[3] = &m->br;
	m->ns.links = m->links, m->ns.n_links = 4;
	net_addr__init(&m->a4);
	m->a4.ifindex = 2, m->a4.family = AF_INET, m->a4.prefixlen = 24;
	m->a4.local = (ProtobufCBinaryData){ 4, m->ip };
	m->addrs[0] = &m->a4;
	m->ns.addrs = m->addrs, m->ns.n_addrs = 1;
	net_route__init(&m->r);
	net_nexthop__init(&m->nh);
	m->nh.ifindex = 2, m->nh.has_gateway = true, m->nh.gateway = (ProtobufCBinaryData){ 4, m->gw };
	m->nhs[0] = &m->nh;
	m->r.family = AF_INET, m->r.table = 254, m->r.dst_len = 0, m->r.nexthops = m->nhs, m->r.n_nexthops = 1;
	m->routes[0] = &m->r;
	m->ns.routes = m->routes, m->ns.n_routes = 1;
	net_rule__init(&m->rule);
	m->rule.raw = (ProtobufCBinaryData){ sizeof(m->frh), (uint8_t *)&m->frh };
	m->rules[0] = &m->rule;
	m->ns.rules = m->rules, m->ns.n_rules = 1;
	net_sysctl__init(&m->sc);
	m->sc.name = "net/ipv4/ip_forward", m->sc.value = "1";
	m->sysctls[0] = &m->sc;
	m->ns.sysctls = m->sysctls, m->ns.n_sysctls = 1;
	net_neigh__init(&m->nb);
	m->nb.family = AF_INET, m->nb.ifindex = 2, m->nb.state = 0x80;
	m->nb.has_dst = true, m->nb.dst = (ProtobufCBinaryData){ 4, m->gw };
	m->neighs[0] = &m->nb;
	m->ns.neighs = m->neighs, m->ns.n_neighs = 1;
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void refused(struct model *m, const char *words)
{
	cr_error_t err = NULL;

	assert_int_equal(netns_validate(&m->ns, &err), -1);
	assert_err_has(&err, words, NULL);
}

static void test_control(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;

	assert_ok(netns_validate(&m->ns, &err), &err);
}

static void test_links_refused(void **state)
{
	struct model *m = *state;

	m->vb.peer = 4;
	refused(m, "veth va: its peer 3 is no veth whose peer it is");
	m->vb.peer = 2, m->vb.master = 3;
	refused(m, "link vb: its master 3 is no bridge");
	m->vb.master = 4, m->br.bridge = NULL;
	refused(m, "link br0 does not hold what its kind needs");
	m->br.bridge = &m->bridge, m->va.ifindex = 1;
	refused(m, "two links with ifindex 1");
	m->va.ifindex = 2, m->va.name = "a/b";
	refused(m, "a link with ifindex 2 and name 'a/b'");
	m->va.name = "va", m->lo.ifindex = 5;
	refused(m, "a loopback link lo with ifindex 5");
	m->lo.ifindex = 1, m->va.address.len = 33;
	refused(m, "link va: an address of more than 32 bytes");
}

static void test_values_refused(void **state)
{
	struct model *m = *state;

	m->a4.prefixlen = 33;
	refused(m, "a malformed address on ifindex 2");
	m->a4.prefixlen = 24, m->a4.ifindex = 9;
	refused(m, "a malformed address on ifindex 9");
	m->a4.ifindex = 2, m->nh.ifindex = 7;
	refused(m, "a route through ifindex 7");
	m->nh.ifindex = 2, m->r.dst_len = 40;
	refused(m, "a malformed route");
	m->r.dst_len = 0, m->rule.raw.len = 3;
	refused(m, "a rule of 3 bytes");
	m->rule.raw.len = sizeof(m->frh), m->sc.name = "net/ipv4/../../kernel/core_pattern";
	refused(m, "a sysctl named 'net/ipv4/../../kernel/core_pattern'");
	m->sc.name = "kernel/hostname";
	refused(m, "a sysctl named 'kernel/hostname'");
	m->sc.name = "net/ipv4/ip_forward", m->nb.dst.len = 16;
	refused(m, "a malformed neighbour on ifindex 2");
	m->nb.dst.len = 4, m->nb.ifindex = 8;
	refused(m, "a malformed neighbour on ifindex 8");
}

static void test_external(void **state)
{
	struct model *m = *state;
	const char *given[] = { "va=host-va" }, *bad[] = { "va=" };
	struct netns_external ext = { given, 1 }, none = { NULL, 0 }, empty = { bad, 1 };
	cr_error_t err = NULL;

	m->va.peer = 0, m->va.external = "va", m->vb.has_master = false;
	m->ns.n_links = 2;   /* lo and va: vb was its peer, outside */
	assert_ok(netns_validate(&m->ns, &err), &err);
	assert_true(netns_has_external(&m->ns));
	assert_int_equal(netns_check_external(&m->ns, &none, &err), -1);
	assert_err_has(&err, "restore with --external veth:va=HOSTNAME", NULL);
	assert_int_equal(netns_check_external(&m->ns, &empty, &err), -1);
	assert_err_has(&err, "--external veth:va=: not a link name", NULL);
	assert_ok(netns_check_external(&m->ns, &ext, &err), &err);
	m->va.external = NULL;
	refused(m, "veth va: no peer and no external name");
}

/* The ruleset a dump records leaves out cr's own lock tables (inet
 * cr_tcp_N), their chains and rules, and nothing else: a user's table, a
 * rule whose comment looks like one, an ip table of that name stay. */
static void test_lock_tables_left_out(void **state)
{
	static const char in[] =
		"{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"json_schema_version\": 1}}, "
		"{\"table\": {\"family\": \"inet\", \"name\": \"cr_tcp_5\", \"handle\": 1}}, "
		"{\"chain\": {\"family\": \"inet\", \"table\": \"cr_tcp_5\", \"name\": \"out\", \"prio\": -150}}, "
		"{\"rule\": {\"family\": \"inet\", \"table\": \"cr_tcp_5\", \"chain\": \"out\", \"expr\": "
		"[{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"}}, "
		"\"right\": \"1.2.3.4\"}}, {\"drop\": null}]}}, "
		"{\"table\": {\"family\": \"inet\", \"name\": \"keep\", \"handle\": 2}}, "
		"{\"rule\": {\"family\": \"inet\", \"table\": \"keep\", \"chain\": \"c\", \"comment\": \"cr_tcp_9 \\\"x\\\"\", "
		"\"expr\": [{\"accept\": null}]}}, "
		"{\"table\": {\"family\": \"ip\", \"name\": \"cr_tcp_7\", \"handle\": 3}}, "
		"{\"table\": {\"family\": \"inet\", \"name\": \"cr_tcp_x\", \"handle\": 4}}]}";
	static const char want[] =
		"{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"json_schema_version\": 1}}, "
		"{\"table\": {\"family\": \"inet\", \"name\": \"keep\", \"handle\": 2}}, "
		"{\"rule\": {\"family\": \"inet\", \"table\": \"keep\", \"chain\": \"c\", \"comment\": \"cr_tcp_9 \\\"x\\\"\", "
		"\"expr\": [{\"accept\": null}]}}, "
		"{\"table\": {\"family\": \"ip\", \"name\": \"cr_tcp_7\", \"handle\": 3}}, "
		"{\"table\": {\"family\": \"inet\", \"name\": \"cr_tcp_x\", \"handle\": 4}}]}";
	static const char only_lock[] = "{\"nftables\": [{\"table\": {\"family\": \"inet\", \"name\": \"cr_tcp_1\"}}]}";
	static const char broken[] = "{\"nftables\": [{\"table\": {\"family\": \"inet\", \"name\": \"cr_tcp_1";
	char *out;

	(void)state;
	out = fw_without_lock_tables(in);
	assert_string_equal(out, want);
	free(out);
	out = fw_without_lock_tables(only_lock);
	assert_string_equal(out, "{\"nftables\": []}");
	free(out);
	out = fw_without_lock_tables(broken);   /* kept as it was: nft refuses it later */
	assert_string_equal(out, broken);
	free(out);
	assert_true(fw_is_lock_table("cr_tcp_123", 10));
	assert_false(fw_is_lock_table("cr_tcp_", 7));
	assert_false(fw_is_lock_table("cr_tcp_12a", 10));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_control, setup, teardown),
		cmocka_unit_test(test_lock_tables_left_out),
		cmocka_unit_test_setup_teardown(test_links_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_values_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_external, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
