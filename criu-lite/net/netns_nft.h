/* The nftables ruleset of a network namespace, through the nft program
 * (nftables' own JSON, which `nft -j -f` loads back: libnftables has no
 * stable C interface to rules): read at dump, tried at once in a fresh
 * namespace (a ruleset nft cannot load back is refused there, while the
 * tree runs), loaded at restore in the new one. */
#ifndef CR_NET_NETNS_NFT_H
#define CR_NET_NETNS_NFT_H

#include <stdbool.h>

#include "os/arena.h"
#include "os/error.h"

/* The ruleset of the namespace of netns_fd, tried in a fresh one; *out in a. */
int nft_dump(struct arena *a, int netns_fd, const char *table, char **out, cr_error_t *err);
/* nft is there (a restore checks it before it makes anything). */
bool nft_available(void);
/* Loads ruleset into the caller's network namespace. */
int nft_restore(const char *ruleset, cr_error_t *err);

#endif
