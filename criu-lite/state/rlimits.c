/* Resource limits, read from /proc/PID/limits (prlimit on another user's
 * process needs CAP_SYS_RESOURCE, which these hosts lack) and set by the
 * child itself, last of all: a limit may forbid what came before (open
 * files, threads).  Raising a hard limit needs CAP_SYS_RESOURCE, which
 * these hosts do not give: a dumped hard limit above cr's own is refused
 * at dump (the restore, which inherits cr's, could not set it), and again
 * by the restore if it runs with lower ones.
 *
 * RLIMIT_NOFILE comes last of all, by injection once cr's code is done in
 * the process: until then cr's own fds sit beside the dumped ones, maybe
 * above a limit that the dumped fds alone respect (fdroom.h). */
#include "os/util.h"
#include "os/caps.h"
#include "state/state.h"

#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <sys/resource.h>

static const char *rlimit_names[RLIM_NLIMITS] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

/* cr's own hard limit of resource, read once a run (RLIM_INFINITY if
 * the kernel will not tell). */
static rlim_t own_hard(int resource)
{
	static rlim_t own[RLIM_NLIMITS];
	static bool known;

	if (!known) {
		for (int i = 0; i < RLIM_NLIMITS; i++) {
			struct rlimit r;

			own[i] = getrlimit(i, &r) == 0 ? r.rlim_max : RLIM_INFINITY;
		}
		known = true;
	}
	return own[resource];
}

/* A hard limit above cr's own that cr could not raise to. */
static int check_hard(pid_t pid, int resource, rlim_t want, cr_error_t *err)
{
	rlim_t own = own_hard(resource);

	if (want <= own || caps_have(CAP_SYS_RESOURCE))
		return 0;
	return cr_error(err, EPERM, "pid %d has a hard %s of %llu, above cr's own %llu: restoring it needs "
			"CAP_SYS_RESOURCE, which this host does not give", pid, rlimit_names[resource],
			(unsigned long long)want, (unsigned long long)own);
}

static int rlimits_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct rlimit lim[RLIM_NLIMITS];
	CoreEntry *core = t->core;

	if (proc_read_limits(t->pid, lim, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	for (int i = 0; i < RLIM_NLIMITS; i++)
		if (check_hard(t->pid, i, lim[i].rlim_max, err) < 0)
			return -1;
	core->rlimits = arena_array(&ctx->arena, RlimitEntry *, RLIM_NLIMITS);
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		RlimitEntry *r = arena_new(&ctx->arena, RlimitEntry);

		rlimit_entry__init(r);
		r->resource = (uint32_t)i;
		r->cur = lim[i].rlim_cur;
		r->max = lim[i].rlim_max;
		core->rlimits[core->n_rlimits++] = r;
	}
	return 0;
}

/* The kernel arms RLIMIT_CPU as seconds * NSEC_PER_SEC: a finite value
 * beyond what that holds would expire at once and kill the process (no
 * process could have set it and lived). */
static bool cpu_overflows(const RlimitEntry *r)
{
	uint64_t most = UINT64_MAX / NSEC_PER_SEC;

	return r->resource == RLIMIT_CPU && ((r->cur != RLIM_INFINITY && r->cur > most) ||
					     (r->max != RLIM_INFINITY && r->max > most));
}

static int rlimits_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *c = t->core;

	(void)ctx;
	for (size_t i = 0; i < c->n_rlimits; i++) {
		if (c->rlimits[i]->resource >= RLIM_NLIMITS || c->rlimits[i]->cur > c->rlimits[i]->max ||
		    cpu_overflows(c->rlimits[i]))
			return cr_error(err, 0, "core-%d.img: resource limit %u is malformed", t->pid,
					c->rlimits[i]->resource);
		if (check_hard(t->pid, (int)c->rlimits[i]->resource, c->rlimits[i]->max, err) < 0)
			return -1;
	}
	return 0;
}

/* The limits every process of the tree has when it sets up its own: the
 * root's, read before it forks (a parent sets its own only after it forked
 * its children, so each inherits these unchanged). */
static struct {
	bool known[RLIM_NLIMITS];
	struct rlimit v[RLIM_NLIMITS];
} crs;

static int rlimits_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	(void)err;
	if (t->parent != NULL)
		return 0;
	for (int i = 0; i < RLIM_NLIMITS; i++)
		crs.known[i] = getrlimit(i, &crs.v[i]) == 0;
	return 0;
}

static int rlimits_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->core->n_rlimits; i++) {
		const RlimitEntry *r = t->core->rlimits[i];
		struct rlimit want = { .rlim_cur = r->cur, .rlim_max = r->max }, now;
		int res = (int)r->resource;

		if (res == RLIMIT_NOFILE)
			continue;   /* rlimits_apply */
		if (crs.known[res])
			now = crs.v[res];
		else if (getrlimit(res, &now) < 0)
			now = (struct rlimit){ 0, 0 };
		if (now.rlim_cur == want.rlim_cur && now.rlim_max == want.rlim_max)
			continue;
		if (setrlimit((int)r->resource, &want) < 0) {
			if (errno == EPERM && want.rlim_max > now.rlim_max)
				return cr_error(err, EPERM, "raise the hard %s to %llu (it is %llu here): that "
						"needs CAP_SYS_RESOURCE, which this host does not give",
						rlimit_names[r->resource], (unsigned long long)want.rlim_max,
						(unsigned long long)now.rlim_max);
			return cr_error(err, errno, "set %s", rlimit_names[r->resource]);
		}
	}
	return 0;
}

/* RLIMIT_NOFILE, in the batch that closes cr's fds: nothing of cr's opens
 * an fd in the process after it.  Its hard limit is not above the one the
 * process inherited from the restorer (rlimits_validate). */
static int rlimits_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->core->n_rlimits; i++) {
		const RlimitEntry *r = t->core->rlimits[i];
		struct rlimit want = { .rlim_cur = r->cur, .rlim_max = r->max };

		if (r->resource != RLIMIT_NOFILE)
			continue;
		if (remote_write(t->host_pid, t->tramp + TRAMP_NOFILE, &want, sizeof(want), err) < 0)
			return cr_error_wrap(err, "write RLIMIT_NOFILE");
		inject_batch_add(&t->batch, "set RLIMIT_NOFILE", SYS_prlimit64, 0, RLIMIT_NOFILE, t->tramp + TRAMP_NOFILE,
				 0, 0, 0);
	}
	return 0;
}

const struct state_kind state_rlimits = {
	.name = "resource limits",
	.collect = rlimits_collect,
	.validate = rlimits_validate,
	.before_fork = rlimits_before_fork,
	.setup = rlimits_setup,
	.apply = rlimits_apply,
};
