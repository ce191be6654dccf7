/* The multicast state of an inet socket (fd/inet_sk.c): the groups it
 * joined, each with its device and source filter, and the interface it
 * sends multicast from (IP_MULTICAST_IF, IPV6_MULTICAST_IF).  The other
 * multicast options (TTL, hops, loop, IP_MULTICAST_ALL and
 * IPV6_MULTICAST_ALL) are plain options of fd/sk_opts.c.
 *
 * Dump: no kernel interface lists the groups of a socket.  The candidates
 * are the groups joined on the devices of its network namespace
 * (/proc/PID/net/igmp and igmp6, which hold every socket's joins and the
 * kernel's own); getsockopt(MCAST_MSFILTER) on cr's duplicate answers
 * EADDRNOTAVAIL for a group and device this socket did not join, and
 * otherwise gives the filter mode and the sources (ip_mc_gsfget,
 * ip6_mc_msfget).  An IPv6 socket may hold IPv4 groups too (at SOL_IP).
 * Devices are kept by name: the restore joins on the device of that name
 * in the restored network namespace, and fails naming it when there is
 * none.
 *
 * Refused: a group in INCLUDE mode with no source (only a source join
 * whose first source found no memory leaves one; no setsockopt makes
 * one), an IPV6_MULTICAST_IF device cr cannot name (deleted since), an
 * IP_MULTICAST_IF address no device has any more (it is set again by
 * address).
 *
 * Not seen: IP_MULTICAST_IF given by interface index alone (struct ip_mreqn
 * with no address): getsockopt shows only the address, so such a socket
 * comes back sending multicast by its routes. */
#ifndef CR_INET_MCAST_H
#define CR_INET_MCAST_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "os/arena.h"
#include "os/error.h"
#include "inet.pb-c.h"

/* Dump: e->mcast, e->mcast_if_addr, e->mcast_if6 of cr's duplicate fd of
 * a socket of family held by pid (stream: TCP), or a refusal naming me. */
int inet_mcast_dump(struct arena *a, pid_t pid, int fd, int family, bool stream, const char *me, InetSkEntry *e,
		    cr_error_t *err);

/* What the /proc files of a network namespace say (the parsers are
 * public for the unit tests): a group joined on a device, or only a
 * device (family 0), for naming an ifindex. */
struct mc_seen {
	int family;          /* AF_INET, AF_INET6, or 0 */
	uint8_t group[16];   /* network order; IPv4 in the first 4 bytes */
	int ifindex;
	char ifname[IFNAMSIZ];
};

struct mc_list {
	struct mc_seen *v;   /* malloc'd */
	size_t n;
};

/* Each adds what the file f (NULL: none) says to l. */
void mcast_parse_igmp(FILE *f, struct mc_list *l);      /* /proc/net/igmp */
void mcast_parse_igmp6(FILE *f, struct mc_list *l);     /* /proc/net/igmp6 */
void mcast_parse_if_inet6(FILE *f, struct mc_list *l);  /* /proc/net/if_inet6 */
/* The name of device ifindex that l knows, or NULL. */
const char *mcast_ifname_of(const struct mc_list *l, int ifindex);
/* Whether /proc/net/fib_trie f has a LOCAL route covering a (what the
 * kernel's ip_dev_find looks for). */
bool mcast_is_local4(FILE *f, struct in_addr a);

/* Restore validation of that state. */
int inet_mcast_validate(const InetSkEntry *e, cr_error_t *err);

/* Restore: fd joins its groups again, on the devices of their names in the
 * network namespace the caller is in, and gets its multicast interface. */
int inet_mcast_restore(int fd, const InetSkEntry *e, const char *me, cr_error_t *err);

#endif
