/* Network namespaces: what one holds, recorded at dump in netns.img and
 * made again at restore in a new namespace (state/ns.c makes the
 * namespace and calls these in it).
 *
 * Dump (netns_dump.c): cr enters the namespace with one thread, makes its
 * netlink sockets there and reads /proc/sys/net, and goes back; then it
 * reads the links (netlink, raw: libnl-route's link objects keep neither
 * a tun's nor a bridge's settings), the addresses and routes (libnl-route)
 * and the rules (raw messages, replayed as they are).  What the restore
 * could not make again is refused here, naming it: links of other kinds,
 * a veth whose peer is in another namespace (unless --external
 * veth:NAME), a tun some fd is attached to, firewall rules their program
 * cannot load back (netns_fw.h), legacy arptables tables, queueing
 * disciplines a user added, nexthop objects, IPsec states and policies, a
 * bridge filtering vlans, a sysctl a new namespace does not take.
 *
 * Restore (netns_restore.c), in the new namespace: links with their
 * indexes (routes and rules name them), down; the sysctls; the addresses
 * (IPv6 ones without duplicate address detection, usable at once); the
 * links' flags (up); permanent neighbours and bridge fdb entries; the
 * routes the kernel does not make itself; the rules; the firewall rules. */
#ifndef CR_NET_NETNS_H
#define CR_NET_NETNS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "netns.pb-c.h"
#include "os/arena.h"
#include "os/error.h"

/* --external veth:NAME at dump: veths whose peer is outside are allowed. */
struct netns_external {
	const char *const *names;      /* dump: NAME; restore: NAME=HOSTNAME */
	size_t n;
};

/* Records the network namespace of pid as entry id, or refuses it. */
/* Reads the sysctl defaults of a fresh namespace now (the dump calls it
 * before the freeze, for a tree in a network namespace of its own), so
 * that netns_dump need not while the tree is frozen. */
int netns_prefetch_defaults(cr_error_t *err);
int netns_dump(struct arena *a, pid_t pid, uint32_t id, const struct netns_external *ext, NetNs **out,
	       cr_error_t *err);
/* The sysctls of every namespace netns_dump recorded are read by a thread
 * of their own while the dump goes on: finish waits for them and puts
 * them in their entries (refusing what a fresh namespace does not take);
 * abandon, on a dump that fails, only waits. */
int netns_dump_finish(struct arena *a, cr_error_t *err);
void netns_dump_abandon(void);
/* The tree is frozen: the sysctls of pid's network namespace start being
 * read now (a thread of their own), for netns_dump to take if it records
 * that namespace (else finish or abandon drops them). */
void netns_sysctls_prefetch(pid_t pid);

/* netns.img makes sense (names, indexes, lengths). */
int netns_validate(const NetNs *n, cr_error_t *err);
/* Whatever the restore needs from outside is there: the host name of
 * every veth whose peer was outside, nft for an nftables ruleset. */
int netns_check_external(const NetNs *n, const struct netns_external *ext, cr_error_t *err);
bool netns_has_external(const NetNs *n);

/* In the new namespace: makes everything n holds; host_net is an fd of
 * cr's network namespace (for the peers of external veths), -1 if none. */
int netns_restore(const NetNs *n, const struct netns_external *ext, int host_net, cr_error_t *err);

/* cr show: its links and addresses. */
void netns_print(FILE *out, const NetNs *n);

#endif
