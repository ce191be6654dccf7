/* Credentials, per thread as the kernel keeps them: real, effective, saved
 * and fs uids and gids, supplementary groups, the five capability sets
 * (inheritable, permitted, effective, bounding, ambient), securebits
 * (keep-caps among them) and no_new_privs.
 *
 * A restored process never holds a privilege its dump did not record: the
 * restorer is root with every capability cr has, and each thread gives up,
 * by injection, everything its dump did not hold.  The order matters, and
 * each step needs what the one after it takes away:
 *   1. the bounding set is cut (PR_CAPBSET_DROP needs CAP_SETPCAP);
 *   2. SECBIT_NO_SETUID_FIXUP, so that changing uids keeps the
 *      capabilities the next steps need;
 *   3. groups, gids, uids, then fs uid and gid (setres*id reset them);
 *   4. the dumped sets plus CAP_SETPCAP, then the ambient set (which must
 *      lie in the permitted and inheritable ones);
 *   5. the dumped securebits (needs CAP_SETPCAP);
 *   6. the dumped sets exactly;
 *   7. no_new_privs, which cannot be undone.
 * Capabilities cr itself lacks cannot be given back: such a dump is refused
 * (at dump, and again at restore on another host), as is a thread without
 * no_new_privs when cr runs with it. */
#include "os/proc.h"
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define MAX_GROUPS 65536
#define SECBITS_KNOWN 0xffu
#define CAP_WORDS 2

/* ------------------------------------------------------------------ dump */

static int collect_thread(struct dump_ctx *ctx, struct dump_thread *th)
{
	const struct proc_status *st = &th->status;
	CredsEntry *c = arena_new(&ctx->arena, CredsEntry);

	creds_entry__init(c);
	c->n_uid = c->n_gid = 4;
	c->uid = arena_memdup(&ctx->arena, st->uid, sizeof(st->uid));
	c->gid = arena_memdup(&ctx->arena, st->gid, sizeof(st->gid));
	c->n_groups = (size_t)st->n_groups;
	c->groups = arena_memdup(&ctx->arena, st->groups, sizeof(uint32_t) * c->n_groups);
	c->cap_inh = st->cap_inh;
	c->cap_prm = st->cap_prm;
	c->cap_eff = st->cap_eff;
	c->cap_bnd = st->cap_bnd;
	c->cap_amb = st->cap_amb;
	c->no_new_privs = st->no_new_privs != 0;
	th->core->creds = c;
	return 0;
}

/* The capabilities cr can hand out: its own permitted and bounding sets. */
struct own_caps {
	uint64_t prm, bnd;
	bool nnp;
};

static int own_caps(struct own_caps *own, cr_error_t *err)
{
	struct proc_status st;

	if (proc_read_status(0, 0, &st, err) < 0)
		return cr_error_wrap(err, "cr's own capabilities");
	*own = (struct own_caps){ .prm = st.cap_prm, .bnd = st.cap_bnd, .nnp = st.no_new_privs != 0 };
	proc_status_free(&st);
	return 0;
}

static int lowest_bit(uint64_t v)
{
	return __builtin_ctzll(v);
}

/* What a restore run by this cr could not give c back, or NULL. */
static const char *beyond(const CredsEntry *c, const struct own_caps *own, int *cap)
{
	uint64_t held = c->cap_inh | c->cap_prm | c->cap_eff | c->cap_amb;

	if (held & ~own->prm) {
		*cap = lowest_bit(held & ~own->prm);
		return "capability";
	}
	if (c->cap_bnd & ~own->bnd) {
		*cap = lowest_bit(c->cap_bnd & ~own->bnd);
		return "bounding-set capability";
	}
	return NULL;
}

static int creds_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct own_caps own;

	if (own_caps(&own, err) < 0)
		return -1;
	for (size_t i = 0; i < t->n_threads; i++) {
		const char *what;
		int cap;

		collect_thread(ctx, &t->threads[i]);
		what = beyond(t->threads[i].core->creds, &own, &cap);
		if (what != NULL)
			return cr_error(err, 0, "pid %d thread %d holds %s %d, which cr itself lacks here: a restore "
					"could not give it back", t->pid, t->threads[i].tid, what, cap);
	}
	return 0;
}

/* Securebits are told only to the thread itself: each thread's are asked
 * with every kind's calls for it. */
static void creds_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_add(&t->asked, "read securebits", SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
}

static int creds_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	(void)ctx;
	(void)err;
	t->threads[0].core->creds->securebits = (uint32_t)inject_batch_ret(&t->asked, first);
	return 0;
}

static void creds_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
			     struct inject_batch *b)
{
	(void)ctx;
	(void)t;
	(void)th;
	inject_batch_add(b, "read securebits", SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
}

static int creds_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				 const struct inject_batch *b, size_t first, cr_error_t *err)
{
	(void)ctx;
	(void)t;
	(void)err;
	th->core->creds->securebits = (uint32_t)inject_batch_ret(b, first);
	return 0;
}

/* --------------------------------------------------------------- restore */

static int last_cap(void)
{
	static int last = -1;
	cleanup_free char *text = NULL;
	cr_error_t err = NULL;

	if (last >= 0)
		return last;
	last = CAP_LAST_CAP;
	if (read_whole_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &text, NULL, &err) == 0)
		last = (int)strtol(text, NULL, 10);
	cr_error_release(&err);
	return last;
}

/* (uid_t)-1 means "unchanged" to every set*id call: no process has it. */
static bool has_invalid_id(const CredsEntry *c)
{
	for (size_t k = 0; k < 4; k++)
		if (c->uid[k] == (uint32_t)-1 || c->gid[k] == (uint32_t)-1)
			return true;
	for (size_t k = 0; k < c->n_groups; k++)
		if (c->groups[k] == (uint32_t)-1)
			return true;
	return false;
}

static int validate_thread(const struct restore_task *t, size_t i, const CredsEntry *c, const struct own_caps *own,
			   cr_error_t *err)
{
	uint64_t valid = last_cap() >= 63 ? ~0ULL : (1ULL << (last_cap() + 1)) - 1;
	uint64_t all = c->cap_inh | c->cap_prm | c->cap_eff | c->cap_bnd | c->cap_amb;
	const char *what;
	int cap;

	if (c->n_uid != 4 || c->n_gid != 4 || c->n_groups > MAX_GROUPS)
		return cr_error(err, 0, "core-%d.img: thread %zu: incomplete or malformed credentials", t->pid, i);
	if (has_invalid_id(c))
		return cr_error(err, 0, "core-%d.img: thread %zu: a uid or gid of -1, which no process has", t->pid, i);
	if ((all & ~valid) || (c->cap_eff & ~c->cap_prm) || (c->cap_amb & ~(c->cap_prm & c->cap_inh)) ||
	    (c->securebits & ~SECBITS_KNOWN))
		return cr_error(err, 0, "core-%d.img: thread %zu: capability sets or securebits this kernel does not "
				"allow", t->pid, i);
	what = beyond(c, own, &cap);
	if (what != NULL)
		return cr_error(err, 0, "pid %d thread %zu held %s %d, which cr lacks here: it cannot be given back",
				t->pid, i, what, cap);
	if (own->nnp && !c->no_new_privs)
		return cr_error(err, 0, "pid %d thread %zu did not have no_new_privs, which this cr runs with and "
				"cannot take away", t->pid, i);
	return 0;
}

static int creds_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	struct own_caps own;

	(void)ctx;
	if (own_caps(&own, err) < 0)
		return -1;
	for (size_t i = 0; i < t->core->n_threads; i++) {
		if (t->core->threads[i]->creds == NULL)
			return cr_error(err, 0, "core-%d.img: thread %zu has no credentials", t->pid, i);
		if (validate_thread(t, i, t->core->threads[i]->creds, &own, err) < 0)
			return -1;
	}
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

/* 1: the bounding set, one capability at a time. */
static void queue_bounding(struct restore_task *t, const CredsEntry *c)
{
	for (int cap = 0; cap <= last_cap(); cap++)
		if (!(c->cap_bnd & (1ULL << cap)))
			inject_batch_add(&t->batch, "drop a bounding-set capability", SYS_prctl, PR_CAPBSET_DROP,
					 (uint64_t)cap, 0, 0, 0, 0);
}

/* 3: ids, where they differ from the restorer's. */
static int queue_ids(struct restore_task *t, const CredsEntry *c, cr_error_t *err)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

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
	/* setfs*id answers with the old id, never an error code. */
	inject_batch_add(&t->batch, "setfsgid", SYS_setfsgid, c->gid[3], 0, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "setfsuid", SYS_setfsuid, c->uid[3], 0, 0, 0, 0, 0);
	return 0;
}

/* capset's arguments in the trampoline: the header, then the sets with
 * CAP_SETPCAP kept (step 4), then the dumped ones (step 6). */
struct caps_args {
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct keep[CAP_WORDS];
	struct __user_cap_data_struct exact[CAP_WORDS];
};

_Static_assert(TRAMP_CAPS + sizeof(struct caps_args) <= TRAMP_GROUPS, "capset fits its trampoline slot");

static void cap_data(struct __user_cap_data_struct d[CAP_WORDS], uint64_t eff, uint64_t prm, uint64_t inh)
{
	for (int w = 0; w < CAP_WORDS; w++)
		d[w] = (struct __user_cap_data_struct){
			.effective = (uint32_t)(eff >> (32 * w)),
			.permitted = (uint32_t)(prm >> (32 * w)),
			.inheritable = (uint32_t)(inh >> (32 * w)),
		};
}

static int write_caps(struct restore_task *t, const CredsEntry *c, cr_error_t *err)
{
	uint64_t setpcap = 1ULL << CAP_SETPCAP;
	struct caps_args a = { .hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 } };

	cap_data(a.keep, c->cap_eff | setpcap, c->cap_prm | setpcap, c->cap_inh);
	cap_data(a.exact, c->cap_eff, c->cap_prm, c->cap_inh);
	return remote_write(t->host_pid, t->tramp + TRAMP_CAPS, &a, sizeof(a), err);
}

/* 4 to 7. */
static void queue_caps(struct restore_task *t, const CredsEntry *c)
{
	uint64_t args = t->tramp + TRAMP_CAPS;

	inject_batch_add(&t->batch, "set capabilities", SYS_capset, args, args + offsetof(struct caps_args, keep), 0,
			 0, 0, 0);
	inject_batch_add(&t->batch, "clear ambient capabilities", SYS_prctl, PR_CAP_AMBIENT,
			 PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0);
	for (int cap = 0; cap < 64; cap++)
		if (c->cap_amb & (1ULL << cap))
			inject_batch_add(&t->batch, "raise an ambient capability", SYS_prctl, PR_CAP_AMBIENT,
					 PR_CAP_AMBIENT_RAISE, (uint64_t)cap, 0, 0, 0);
	inject_batch_add(&t->batch, "set securebits", SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "set capabilities", SYS_capset, args, args + offsetof(struct caps_args, exact), 0,
			 0, 0, 0);
	if (c->no_new_privs)
		inject_batch_add(&t->batch, "set no_new_privs", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);
}

static int creds_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
			      cr_error_t *err)
{
	const CredsEntry *c = th->core->creds;

	(void)ctx;
	queue_bounding(t, c);
	inject_batch_add(&t->batch, "keep capabilities across setuid", SYS_prctl, PR_SET_SECUREBITS,
			 SECBIT_NO_SETUID_FIXUP, 0, 0, 0, 0);
	if (queue_ids(t, c, err) < 0 || write_caps(t, c, err) < 0)
		return -1;
	queue_caps(t, c);
	return 0;
}

const struct state_kind state_creds = {
	.name = "credentials",
	.collect = creds_collect,
	.ask = creds_ask,
	.answered = creds_answered,
	.ask_thread = creds_ask_thread,
	.answered_thread = creds_answered_thread,
	.validate = creds_validate,
	.apply_thread = creds_apply_thread,
};
