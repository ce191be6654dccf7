#include "net/netns_bridge.h"
#include "os/util.h"

#include <linux/if_link.h>

/* The settings a port can be given, with their size and the value a new
 * port has (the cost, which the kernel derives from the speed, is always
 * kept). */
static const struct port_attr {
	int type;
	int bytes;
	uint32_t fresh;
} attrs[] = {
	{ IFLA_BRPORT_PRIORITY, 2, 32 },
	{ IFLA_BRPORT_COST, 4, UINT32_MAX },
	{ IFLA_BRPORT_MODE, 1, 0 },
	{ IFLA_BRPORT_GUARD, 1, 0 },
	{ IFLA_BRPORT_PROTECT, 1, 0 },
	{ IFLA_BRPORT_FAST_LEAVE, 1, 0 },
	{ IFLA_BRPORT_LEARNING, 1, 1 },
	{ IFLA_BRPORT_UNICAST_FLOOD, 1, 1 },
	{ IFLA_BRPORT_PROXYARP, 1, 0 },
	{ IFLA_BRPORT_PROXYARP_WIFI, 1, 0 },
	{ IFLA_BRPORT_MULTICAST_ROUTER, 1, 1 },
	{ IFLA_BRPORT_MCAST_FLOOD, 1, 1 },
	{ IFLA_BRPORT_MCAST_TO_UCAST, 1, 0 },
	{ IFLA_BRPORT_BCAST_FLOOD, 1, 1 },
	{ IFLA_BRPORT_NEIGH_SUPPRESS, 1, 0 },
	{ IFLA_BRPORT_ISOLATED, 1, 0 },
};

static const struct port_attr *attr_of(uint32_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++)
		if ((uint32_t)attrs[i].type == type)
			return &attrs[i];
	return NULL;
}

void bridge_port_dump(struct arena *a, NetLink *l, struct nlattr *data)
{
	struct nlattr *tb[IFLA_BRPORT_MAX + 1];

	if (data == NULL || nla_parse_nested(tb, IFLA_BRPORT_MAX, data, NULL) < 0)
		return;
	l->port = arena_array(a, uint32_t, 2 * ARRAY_SIZE(attrs));
	for (size_t i = 0; i < ARRAY_SIZE(attrs); i++) {
		struct nlattr *x = tb[attrs[i].type];
		uint32_t v;

		if (x == NULL)
			continue;
		v = attrs[i].bytes == 1 ? nla_get_u8(x) : attrs[i].bytes == 2 ? nla_get_u16(x) : nla_get_u32(x);
		if (v == attrs[i].fresh)
			continue;
		l->port[l->n_port++] = (uint32_t)attrs[i].type;
		l->port[l->n_port++] = v;
	}
}

void bridge_port_put(struct nl_msg *m, const NetLink *l)
{
	struct nlattr *info = nla_nest_start(m, IFLA_LINKINFO), *data;

	nla_put_string(m, IFLA_INFO_SLAVE_KIND, "bridge");
	data = nla_nest_start(m, IFLA_INFO_SLAVE_DATA);
	for (size_t i = 0; i + 1 < l->n_port; i += 2) {
		const struct port_attr *p = attr_of(l->port[i]);

		if (p->bytes == 1)
			nla_put_u8(m, p->type, (uint8_t)l->port[i + 1]);
		else if (p->bytes == 2)
			nla_put_u16(m, p->type, (uint16_t)l->port[i + 1]);
		else
			nla_put_u32(m, p->type, l->port[i + 1]);
	}
	nla_nest_end(m, data);
	nla_nest_end(m, info);
}

bool bridge_port_valid(const NetLink *l)
{
	if (l->n_port % 2 || (l->n_port && (!l->has_master || l->master == 0)))
		return false;
	for (size_t i = 0; i < l->n_port; i += 2)
		if (attr_of(l->port[i]) == NULL)
			return false;
	return true;
}
