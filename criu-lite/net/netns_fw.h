/* The firewall rules of a network namespace, through the programs that
 * own their text form: the nftables ruleset (nft -j, nftables' JSON; the
 * library has no stable C interface to rules) and the legacy iptables and
 * ip6tables tables (iptables-legacy-save -c, with the counters).  Read at
 * dump, tried at once in a fresh namespace (what the program cannot load
 * back is refused there, while the tree runs), loaded at restore in the
 * new one. */
#ifndef CR_NET_NETNS_FW_H
#define CR_NET_NETNS_FW_H

#include <stdbool.h>
#include <stddef.h>

#include "os/arena.h"
#include "os/error.h"

enum fw_kind { FW_NFT, FW_IPTABLES, FW_IP6TABLES };

/* The tables cr makes to drop the traffic of an established connection
 * while it is dumped (fd/tcp_stream.c, net/nft_lock.h): inet cr_tcp_INODE.  They are cr's,
 * never the namespace's: a dump leaves them out of the ruleset. */
#define FW_LOCK_PREFIX "cr_tcp_"
/* name (len bytes, not NUL-terminated) is one of them. */
bool fw_is_lock_table(const char *name, size_t len);
/* The JSON of `nft -j list ruleset` without the tables of cr's locks, their
 * chains and rules (malloc'd). */
char *fw_without_lock_tables(const char *json);

/* "nftables", "iptables", "ip6tables". */
const char *fw_name(enum fw_kind k);
/* The rules of kind of the namespace of netns_fd (which holds table), tried
 * in a fresh namespace; *out in a. */
int fw_dump(struct arena *a, enum fw_kind k, int netns_fd, const char *table, char **out, cr_error_t *err);
/* The program that loads rules of kind is there (a restore checks it
 * before it makes anything). */
bool fw_available(enum fw_kind k);
/* Loads rules of kind into the caller's network namespace. */
int fw_restore(enum fw_kind k, const char *rules, cr_error_t *err);

#endif
