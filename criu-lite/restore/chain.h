/* The rounds before a dump (cr pre-dump, then cr dump --prev-images-dir):
 * the pages a dump marks in_prev are in the round its inventory names
 * (prev_images_dir, relative to its directory), or in the round before
 * that one, and so on.
 *
 * Loaded before any process exists: each round needed is opened, must
 * be a pre-dump whose dump id is the one the round after it names, and
 * its pagemap and pages images of each process are verified (checksums,
 * framing, the page data total).  Then, for each process and round, the
 * runs whose bytes come from that round: every page marked in_prev must
 * be found in some round, or the restore is refused.  With --verify,
 * every round must be signed with the key given, and each image read
 * from it must have the hash its signed inventory lists; with --decrypt,
 * every round must be encrypted with the key given (img/crypt.h: one key
 * reads every image of the restore). */
#ifndef CR_RESTORE_CHAIN_H
#define CR_RESTORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "img/round.h"
#include "os/error.h"
#include "state/task.h"

#define CHAIN_MAX IMG_CHAIN_MAX   /* rounds at most */

/* What one process takes from one round. */
struct chain_part {
	PagemapEntry **pm;             /* the round's pagemap of the process */
	size_t n_pm;
	uint64_t (*want)[2];           /* [start, end) runs, by address, whose bytes are this round's */
	size_t n_want;
};

struct chain {
	size_t n;                      /* rounds loaded (1 is the one before the dump) */
	int dirfd[CHAIN_MAX + 1];
	char *name[CHAIN_MAX + 1];     /* DIR/REL/..., for messages */
	const InventoryEntry *inv[CHAIN_MAX + 1];   /* each round's, loaded */
	struct chain_part *part;       /* [task index * (n + 1) + round], round 1..n */
	size_t part_rounds;            /* the rounds part has room for (n, or n - 1 while round n opens) */
};

/* Loads and checks the rounds ctx's dump needs (none: ctx->chain stays
 * NULL). */
int chain_load(struct restore_ctx *ctx, cr_error_t *err);
void chain_free(struct restore_ctx *ctx);
/* What t takes from round k (1..ctx->chain->n), or NULL. */
const struct chain_part *chain_part_of(const struct restore_ctx *ctx, const struct restore_task *t, size_t k);

#endif
