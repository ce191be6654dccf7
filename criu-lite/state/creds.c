/* Credentials: real, effective, saved and fs uids and gids, and the
 * supplementary groups, from /proc/PID/status.  Applied by injection, per
 * thread (the kernel keeps credentials per thread), after every call that
 * needs the restorer's privileges, and only where they differ from the
 * restorer's. */
#include "os/util.h"
#include "state/state.h"

#include <grp.h>
#include <sys/syscall.h>

#define MAX_GROUPS 65536

static int creds_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	CredsEntry *c = arena_new(&ctx->arena, CredsEntry);

	(void)err;
	creds_entry__init(c);
	c->n_uid = c->n_gid = 4;
	c->uid = arena_memdup(&ctx->arena, t->status.uid, sizeof(t->status.uid));
	c->gid = arena_memdup(&ctx->arena, t->status.gid, sizeof(t->status.gid));
	c->n_groups = (size_t)t->status.n_groups;
	c->groups = arena_memdup(&ctx->arena, t->status.groups, sizeof(uint32_t) * c->n_groups);
	t->core->creds = c;
	return 0;
}

static int creds_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CredsEntry *c = t->core->creds;

	(void)ctx;
	if (c == NULL || c->n_uid != 4 || c->n_gid != 4 || c->n_groups > MAX_GROUPS)
		return cr_error(err, 0, "core-%d.img: incomplete or malformed credentials", t->pid);
	return 0;
}

static bool same_groups(const CredsEntry *c)
{
	gid_t mine[256];
	int n = getgroups(256, mine);

	if (n < 0 || (size_t)n != c->n_groups)
		return false;
	for (int i = 0; i < n; i++)
		if (mine[i] != c->groups[i])
			return false;
	return true;
}

static int creds_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
			      cr_error_t *err)
{
	const CredsEntry *c = t->core->creds;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	(void)ctx, (void)th;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	if (!same_groups(c)) {
		if (remote_write(t->host_pid, t->tramp + TRAMP_GROUPS, c->groups, c->n_groups * sizeof(uint32_t),
				 err) < 0)
			return -1;
		inject_batch_add(&t->batch, "setgroups", SYS_setgroups, c->n_groups, t->tramp + TRAMP_GROUPS, 0, 0,
				 0, 0);
	}
	if (c->gid[0] != rg || c->gid[1] != eg || c->gid[2] != sg)
		inject_batch_add(&t->batch, "setresgid", SYS_setresgid, c->gid[0], c->gid[1], c->gid[2], 0, 0, 0);
	if (c->uid[0] != ru || c->uid[1] != eu || c->uid[2] != su)
		inject_batch_add(&t->batch, "setresuid", SYS_setresuid, c->uid[0], c->uid[1], c->uid[2], 0, 0, 0);
	return 0;
}

const struct state_kind state_creds = {
	.name = "credentials",
	.collect = creds_collect,
	.validate = creds_validate,
	.apply_thread = creds_apply_thread,
};
