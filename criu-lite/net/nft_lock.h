/* cr's network lock of an established TCP connection (fd/tcp_stream.c):
 * an nftables table inet NAME with chains "out" (hook output) and "in"
 * (hook input), priority -150, policy accept, each dropping the
 * connection's packets both ways.  Made, looked for and deleted through
 * nf_tables' netlink interface, in one batch, from cr itself: no nft
 * process to start inside the freeze.  The rules are those nft makes of
 *   ip saddr A ip daddr B tcp sport P tcp dport Q drop
 * (an IPv4-mapped IPv6 pair as IPv4, which is what travels), so that nft
 * lists the table as it would have made it. */
#ifndef CR_NET_NFT_LOCK_H
#define CR_NET_NFT_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "os/error.h"

/* The two ends of a connection (addresses in network order). */
struct nft_lock_ends {
	int family;   /* AF_INET, AF_INET6 */
	uint8_t src[16], dst[16];
	unsigned sport, dport;
};

/* Makes the table in the network namespace of netns (-1: the caller's).
 * create: fails (EEXIST) if it is there; else it is added to. */
int nft_lock_add(int netns, const char *table, const struct nft_lock_ends *l, bool create, cr_error_t *err);
/* Deletes it; an error with status ENOENT if there is none. */
int nft_lock_delete(int netns, const char *table, cr_error_t *err);
/* Lets the traffic through without deleting the table: an "accept" rule
 * first in each of its chains.  Adding a rule takes half a millisecond;
 * deleting a table or a rule waits for an RCU grace period (8 to 16 ms
 * measured here), which a restore would spend with its tree stopped. */
int nft_lock_open(int netns, const char *table, cr_error_t *err);
/* Drops the connection's traffic again, an opened table's drop rules put
 * first in its chains (ahead of the accept rules): a restore that fails
 * after it opened the lock leaves it locked for the next try. */
int nft_lock_close(int netns, const char *table, const struct nft_lock_ends *l, cr_error_t *err);
/* Whether it is there: 1, 0, or -1. */
int nft_lock_exists(int netns, const char *table, cr_error_t *err);
/* The kernel has nf_tables (a lock can be made). */
bool nft_lock_available(void);

#endif
