/* See chain.h. */
#include "restore/chain.h"
#include "img/dir.h"
#include "img/dumpid.h"
#include "img/image.h"
#include "img/msgs.h"
#include "img/pages.h"
#include "img/round.h"
#include "img/sign.h"
#include "os/log.h"
#include "os/runs.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool is_prev(const PagemapEntry *p)
{
	return p->has_in_prev && p->in_prev;
}

static uint64_t entry_end(const PagemapEntry *p)
{
	return p->vaddr + (uint64_t)p->nr_pages * PAGE_SIZE_CR;
}

const struct chain_part *chain_part_of(const struct restore_ctx *ctx, const struct restore_task *t, size_t k)
{
	const struct chain *c = ctx->chain;

	if (c == NULL || k == 0 || k > c->n)
		return NULL;
	return &c->part[(size_t)(t - ctx->tasks) * (c->n + 1) + k];
}

void chain_free(struct restore_ctx *ctx)
{
	struct chain *c = ctx->chain;

	if (c == NULL)
		return;
	for (size_t k = 1; k <= c->n; k++) {
		img_dir_unbind_id(c->dirfd[k]);
		close(c->dirfd[k]);
		free(c->name[k]);
	}
	for (size_t i = 0; c->part != NULL && i < ctx->n_tasks * (c->part_rounds + 1); i++)
		free(c->part[i].want);
	free(c->part);
	free(c);
	ctx->chain = NULL;
}

/* ----------------------------------------------------------- a round */

/* --verify: the image name of round k has the hash its signed inventory
 * lists. */
static int check_digest(const struct restore_ctx *ctx, size_t k, const char *name, cr_error_t *err)
{
	size_t hint = 0;

	if (ctx->opts->verify_key == NULL)
		return 0;
	return img_digest_check(ctx->chain->dirfd[k], name, ctx->chain->inv[k], &hint, err);
}

/* Opens round k, named by the inventory of round k - 1 (inv), and checks
 * that it is the pre-dump that inventory means (img/round.h); *next: its
 * inventory. */
static int open_round(struct restore_ctx *ctx, size_t k, const InventoryEntry *inv, const InventoryEntry **next,
		      cr_error_t *err)
{
	struct chain *c = ctx->chain;
	struct cr_public_key key;
	struct img_msgs m = { 0 };
	struct img_round r;
	int ret;

	if (k > CHAIN_MAX)
		return cr_error(err, 0, "%s: more than %d rounds before it", c->name[k - 1], CHAIN_MAX);
	if (ctx->opts->verify_key != NULL && cr_key_load_public(ctx->opts->verify_key, &key, err) < 0)
		return cr_error_wrap(err, "--verify");
	ret = img_round_open(c->dirfd[k - 1], c->name[k - 1], inv, ctx->opts->verify_key != NULL ? &key : NULL,
			     &ctx->images, &m, &r, err);
	if (r.name != NULL) {   /* chain_free closes it */
		c->dirfd[k] = steal_fd(&r.dirfd);
		c->name[k] = steal_pointer(&r.name);
		c->n = k;
	}
	if (ret < 0)
		return -1;
	*next = c->inv[k] = r.inv;
	return 0;
}

/* The round's pagemap of t, verified, in order, and matching its page data. */
static int load_pagemap(struct restore_ctx *ctx, size_t k, const struct restore_task *t, struct chain_part *p,
			cr_error_t *err)
{
	struct chain *c = ctx->chain;
	char name[IMG_NAME_MAX], pages[IMG_NAME_MAX];
	struct img_msgs m = { 0 };
	uint64_t prev_end = 0, want = 0, have;

	img_name(pages, CR_IMG_PAGES, t->pid);
	img_name(name, CR_IMG_PAGEMAP, t->pid);
	if (check_digest(ctx, k, name, err) < 0 || check_digest(ctx, k, pages, err) < 0 ||
	    cr_img_verify(c->dirfd[k], name, CR_IMG_PAGEMAP, err) < 0 ||
	    cr_img_verify(c->dirfd[k], pages, CR_IMG_PAGES, err) < 0 ||
	    img_load(c->dirfd[k], CR_IMG_PAGEMAP, t->pid, &ctx->images, &m, err) < 0)
		return cr_error_wrap(err, "%s", c->name[k]);
	p->pm = (PagemapEntry **)m.v;
	p->n_pm = m.n;
	for (size_t i = 0; i < p->n_pm; i++) {
		const PagemapEntry *e = p->pm[i];

		if (e->nr_pages == 0 || e->vaddr % PAGE_SIZE_CR || e->vaddr < prev_end ||
		    entry_end(e) > USER_ADDR_MAX || entry_end(e) < e->vaddr || (e->has_in_parent && e->in_parent))
			return cr_error(err, 0, "%s/%s: entry %zu (0x%llx, %u pages) is out of order or malformed",
					c->name[k], name, i, (unsigned long long)e->vaddr, e->nr_pages);
		prev_end = entry_end(e);
		if (!is_prev(e))
			want += (uint64_t)e->nr_pages * PAGE_SIZE_CR;
	}
	if (cr_pages_scan(c->dirfd[k], pages, &have, err) < 0)
		return cr_error_wrap(err, "%s", c->name[k]);
	if (have != want)
		return cr_error(err, 0, "%s/%s holds %llu bytes of pages, its pagemap lists %llu", c->name[k], pages,
				(unsigned long long)have, (unsigned long long)want);
	return 0;
}

/* need: the runs t wants from round k on.  Those the round has bytes
 * for go to p->want, those it leaves to the round before to *next; a page
 * it does not list at all is an error. */
static int split_need(const struct chain *c, size_t k, const struct restore_task *t, const struct runs *need,
		      struct chain_part *p, struct runs *next, cr_error_t *err)
{
	struct runs want = { 0 };
	size_t e = 0;

	for (size_t i = 0; i < need->n; i++) {
		uint64_t at = need->v[i][0], end = need->v[i][1];

		while (at < end) {
			const PagemapEntry *pe;
			uint64_t stop;

			while (e < p->n_pm && entry_end(p->pm[e]) <= at)
				e++;
			if (e == p->n_pm || p->pm[e]->vaddr > at) {
				free(want.v);
				return cr_error(err, 0, "pid %d: page 0x%llx is marked as an earlier round's, and %s does "
						"not hold it", t->pid, (unsigned long long)at, c->name[k]);
			}
			pe = p->pm[e];
			stop = entry_end(pe) < end ? entry_end(pe) : end;
			runs_add(is_prev(pe) ? next : &want, at, stop);
			at = stop;
		}
	}
	p->want = want.v;
	p->n_want = want.n;
	return 0;
}

/* ------------------------------------------------------------ the chain */

/* The runs of the dump's own pagemap of t that are the rounds' before. */
static void first_need(const struct restore_task *t, struct runs *need)
{
	for (size_t i = 0; i < t->n_pagemap; i++)
		if (is_prev(t->pagemap[i]))
			runs_add(need, t->pagemap[i]->vaddr, entry_end(t->pagemap[i]));
}

/* Room for round k in every process's parts (stride k + 1 from now on). */
static void grow_parts(struct chain *c, size_t n_tasks, size_t k)
{
	struct chain_part *part = xcalloc(n_tasks * (k + 1), sizeof(*part));

	for (size_t i = 0; c->part != NULL && i < n_tasks; i++)
		for (size_t j = 1; j < k; j++)
			part[i * (k + 1) + j] = c->part[i * k + j];
	free(c->part);
	c->part = part;
	c->part_rounds = k;
}

static int load_rounds(struct restore_ctx *ctx, struct runs *need, cr_error_t *err)
{
	struct chain *c = ctx->chain;
	const InventoryEntry *inv = ctx->inv;

	for (size_t k = 1;; k++) {
		struct runs *next = xcalloc(ctx->n_tasks, sizeof(*next));
		size_t left = 0;
		int ret = 0;

		if (open_round(ctx, k, inv, &inv, err) < 0) {
			free(next);
			return -1;
		}
		grow_parts(c, ctx->n_tasks, k);
		for (size_t i = 0; i < ctx->n_tasks && ret == 0; i++) {
			struct chain_part *p = &c->part[i * (k + 1) + k];

			if (need[i].n == 0)
				continue;
			ret = load_pagemap(ctx, k, &ctx->tasks[i], p, err);
			if (ret == 0)
				ret = split_need(c, k, &ctx->tasks[i], &need[i], p, &next[i], err);
			left += next[i].n;
		}
		for (size_t i = 0; i < ctx->n_tasks; i++) {
			free(need[i].v);
			need[i] = next[i];
		}
		free(next);
		if (ret < 0 || left == 0)
			return ret;
	}
}

int chain_load(struct restore_ctx *ctx, cr_error_t *err)
{
	struct runs *need;
	size_t total = 0;
	int ret;

	need = xcalloc(ctx->n_tasks, sizeof(*need));
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (!ctx->tasks[i].zombie)
			first_need(&ctx->tasks[i], &need[i]);
		total += need[i].n;
	}
	if (total == 0) {
		free(need);
		return 0;
	}
	ctx->chain = xcalloc(1, sizeof(*ctx->chain));
	ctx->chain->dirfd[0] = ctx->dirfd;
	ctx->chain->name[0] = xstrdup(ctx->opts->dir);
	ret = load_rounds(ctx, need, err);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		free(need[i].v);
	free(need);
	free(steal_pointer(&ctx->chain->name[0]));
	if (ret == 0)
		pr_debug("%zu rounds before the dump hold some of its pages", ctx->chain->n);
	return ret;
}
