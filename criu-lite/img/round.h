/* The rounds of a pre-copy chain (cr pre-dump, then cr dump
 * --prev-images-dir) as image directories hold them, and the checks a
 * reader makes of each: cr restore (restore/chain.c), cr show --verify
 * and cr page-server --verify use these, so that each checks a round the
 * same way.
 *
 * A dump or round whose inventory names prev_images_dir was made after
 * the round in that directory (relative to its own): that round must be a
 * pre-dump of this format and page size whose dump id is the one the
 * later inventory names (prev_dump_id), in a directory that is private
 * and not reached through a symlink at its end; under --verify, signed
 * with the key given, and each of its image files as its signed
 * inventory lists it. */
#ifndef CR_IMG_ROUND_H
#define CR_IMG_ROUND_H

#include "img/keys.h"
#include "img/msgs.h"
#include "os/arena.h"
#include "os/error.h"
#include "inventory.pb-c.h"

#define IMG_CHAIN_MAX 64   /* rounds before a dump at most */

struct img_round {
	int dirfd;                  /* -1 until opened */
	char *name;                 /* DIR/REL/..., for messages */
	const InventoryEntry *inv;  /* its inventory, once loaded */
};

/* Opens the round before the dump or round in dirfd (named name) whose
 * inventory is inv, and checks it as above (key NULL: no signature
 * check); its inventory goes to *m (in arena a, or none: img_msgs_free)
 * and its dump id is bound to its directory.  *r holds what was opened
 * also after a failure: img_round_close it. */
int img_round_open(int dirfd, const char *name, const InventoryEntry *inv, const struct cr_public_key *key,
		   struct arena *a, struct img_msgs *m, struct img_round *r, cr_error_t *err);
void img_round_close(struct img_round *r);

/* A signed dump or round (inv, its inventory, whose signature was
 * checked): every image file it lists has its hash, and every image file
 * it holds is listed (a pre-dump round holds page data only). */
int img_round_digests(int dirfd, const InventoryEntry *inv, cr_error_t *err);

/* --verify of a whole chain: each round before the dump in dirfd (named
 * name, inventory inv), in order, opened and checked as above with key,
 * and its images against their signed hashes.  The first that fails is
 * named. */
int img_chain_verify(int dirfd, const char *name, const InventoryEntry *inv, const struct cr_public_key *key,
		     cr_error_t *err);

#endif
