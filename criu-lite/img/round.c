/* See round.h. */
#include "img/round.h"
#include "img/dir.h"
#include "img/dumpid.h"
#include "img/image.h"
#include "img/kinds.h"
#include "img/sign.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void img_round_close(struct img_round *r)
{
	if (r->dirfd >= 0) {
		img_dir_unbind_id(r->dirfd);
		close(r->dirfd);
	}
	free(r->name);
	*r = (struct img_round){ .dirfd = -1 };
}

/* The round's inventory is that of the pre-dump inv names. */
static int check_inventory(const struct img_round *r, const char *name, const InventoryEntry *inv, cr_error_t *err)
{
	struct cr_dump_id want, got;

	if (cr_dump_id_from(inv->has_prev_dump_id ? inv->prev_dump_id.data : NULL, inv->prev_dump_id.len, &want,
			    "prev_dump_id", err) < 0)
		return cr_error_wrap(err, "%s", name);
	if (cr_dump_id_from(r->inv->has_dump_id ? r->inv->dump_id.data : NULL, r->inv->dump_id.len, &got, "dump_id",
			    err) < 0)
		return cr_error_wrap(err, "%s", r->name);
	if (!cr_dump_id_equal(&want, &got))
		return cr_error(err, 0, "%s is not the round %s was made after (another dump id)", r->name, name);
	if (!(r->inv->has_pre_dump && r->inv->pre_dump) || r->inv->format_version != CR_FORMAT_VERSION ||
	    r->inv->page_size != PAGE_SIZE_CR)
		return cr_error(err, 0, "%s: not a pre-dump of this format and page size", r->name);
	return img_dir_bind_id(r->dirfd, &got, err);
}

int img_round_open(int dirfd, const char *name, const InventoryEntry *inv, const struct cr_public_key *key,
		   struct arena *a, struct img_msgs *m, struct img_round *r, cr_error_t *err)
{
	*r = (struct img_round){ .dirfd = -1 };
	if (inv->prev_images_dir == NULL || inv->prev_images_dir[0] == '\0')
		return cr_error(err, 0, "%s: pages are marked as the round before's, but it names no round before",
				name);
	r->name = xasprintf("%s/%s", name, inv->prev_images_dir);
	/* Not through a symlink at its end, and private, as the dump's own
	 * directory must be (img/dir.h). */
	r->dirfd = openat(dirfd, inv->prev_images_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r->dirfd < 0)
		return cr_error(err, errno, "the round before, %s", r->name);
	if (img_dir_check_private(r->dirfd, r->name, err) < 0)
		return -1;
	if (key != NULL && img_sign_check(r->dirfd, r->name, key, err) < 0)
		return cr_error_wrap(err, "the round %s", r->name);
	if (img_load(r->dirfd, CR_IMG_INVENTORY, 0, a, m, err) < 0)
		return cr_error_wrap(err, "%s holds no complete round", r->name);
	r->inv = (const InventoryEntry *)m->v[0];
	return check_inventory(r, name, inv, err);
}

/* ---------------------------------------------------------------- digests */

struct listed_walk {
	int dirfd;
	const InventoryEntry *inv;
	cr_error_t *err;
};

static bool listed(const InventoryEntry *inv, const char *name)
{
	for (size_t i = 0; i < inv->n_images; i++)
		if (strcmp(inv->images[i]->name, name) == 0)
			return true;
	return false;
}

/* An image file the directory holds must be listed (its hash is checked
 * with the others). */
static int must_be_listed(void *arg, const struct img_kind *k, const char *name)
{
	struct listed_walk *w = arg;

	(void)k;
	if (listed(w->inv, name) ||
	    (faccessat(w->dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT))
		return 0;
	return cr_error(w->err, 0, "%s: not covered by the signature (the signed inventory lists no hash for it)",
			name);
}

int img_round_digests(int dirfd, const InventoryEntry *inv, cr_error_t *err)
{
	struct listed_walk w = { dirfd, inv, err };
	size_t hint = 0;

	for (size_t i = 0; i < inv->n_images; i++)
		if (img_digest_check(dirfd, inv->images[i]->name, inv, &hint, err) < 0)
			return -1;
	return img_each_file(inv->task_pids, inv->n_task_pids, must_be_listed, &w);
}

/* ------------------------------------------------------------------ chain */

int img_chain_verify(int dirfd, const char *name, const InventoryEntry *inv, const struct cr_public_key *key,
		     cr_error_t *err)
{
	struct img_round prev = { .dirfd = -1 }, cur;
	struct img_msgs m[2] = { { 0 } };
	int ret = 0;

	for (size_t k = 1; ret == 0 && inv->prev_images_dir != NULL; k++) {
		struct img_msgs *mk = &m[k % 2];

		if (k > IMG_CHAIN_MAX) {
			ret = cr_error(err, 0, "%s: more than %d rounds before it", name, IMG_CHAIN_MAX);
			break;
		}
		img_msgs_free(mk);
		ret = img_round_open(dirfd, name, inv, key, NULL, mk, &cur, err);
		if (ret == 0 && img_round_digests(cur.dirfd, cur.inv, err) < 0)
			ret = cr_error_wrap(err, "the round %s", cur.name);
		/* The round before the one just opened is no longer needed. */
		img_round_close(&prev);
		prev = cur;
		dirfd = cur.dirfd;
		name = cur.name;
		inv = cur.inv;
	}
	img_round_close(&prev);
	img_msgs_free(&m[0]);
	img_msgs_free(&m[1]);
	return ret;
}
