/* A bridge port's settings (IFLA_BRPORT_*: priority, cost, hairpin,
 * learning, flooding, ...), which netlink shows and sets as the port's
 * "slave data". */
#ifndef CR_NET_NETNS_BRIDGE_H
#define CR_NET_NETNS_BRIDGE_H

#include <stdint.h>

#include <netlink/msg.h>

#include "netns.pb-c.h"
#include "os/arena.h"

/* The settings in data (IFLA_INFO_SLAVE_DATA) into l->port. */
void bridge_port_dump(struct arena *a, NetLink *l, struct nlattr *data);
/* Puts l->port into m as IFLA_LINKINFO. */
void bridge_port_put(struct nl_msg *m, const NetLink *l);
/* The pairs name settings cr knows. */
bool bridge_port_valid(const NetLink *l);

#endif
