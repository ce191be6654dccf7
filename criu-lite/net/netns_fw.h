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

#include "os/arena.h"
#include "os/error.h"

enum fw_kind { FW_NFT, FW_IPTABLES, FW_IP6TABLES };

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
