#include "state/attrs.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

static const char *rlimit_names[RLIM_NLIMITS] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static int read_link(pid_t pid, const char *name, struct arena *a, char **out, cr_error_t *err)
{
	char path[64], buf[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink %s", path);
	buf[n] = '\0';
	if (n > 10 && strcmp(buf + n - 10, " (deleted)") == 0)
		return cr_error(err, 0, "pid %d: %s %s was deleted", pid, name, buf);
	*out = arena_strdup(a, buf);
	return 0;
}

static int read_personality(pid_t pid, uint32_t *out, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;

	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return -1;
	*out = (uint32_t)strtoul(text, NULL, 16);
	return 0;
}

static int dump_rlimits(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct rlimit lim[RLIM_NLIMITS];
	CoreEntry *core = t->core;

	if (proc_read_limits(t->pid, lim, err) < 0)
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

static void dump_creds(struct dump_ctx *ctx, struct dump_task *t)
{
	CredsEntry *c = arena_new(&ctx->arena, CredsEntry);

	creds_entry__init(c);
	c->n_uid = c->n_gid = 4;
	c->uid = arena_memdup(&ctx->arena, t->status.uid, sizeof(t->status.uid));
	c->gid = arena_memdup(&ctx->arena, t->status.gid, sizeof(t->status.gid));
	c->n_groups = (size_t)t->status.n_groups;
	c->groups = arena_memdup(&ctx->arena, t->status.groups, sizeof(uint32_t) * c->n_groups);
	t->core->creds = c;
}

int attrs_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	CoreEntry *core = t->core;

	core->umask = t->status.umask;
	if (read_link(t->pid, "cwd", &ctx->arena, &core->cwd, err) < 0 ||
	    read_link(t->pid, "root", &ctx->arena, &core->root, err) < 0 ||
	    read_personality(t->pid, &core->personality, err) < 0 || dump_rlimits(ctx, t, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	dump_creds(ctx, t);
	return 0;
}

int attrs_restore_session(const struct restore_task *t, cr_error_t *err)
{
	uint32_t pid = t->pstree->ns_pid[0];

	if (t->pstree->ns_sid[0] == pid) {
		if (setsid() < 0)
			return cr_error(err, errno, "setsid");
	} else if (t->pstree->ns_pgid[0] == pid) {
		if (setpgid(0, 0) < 0)
			return cr_error(err, errno, "setpgid");
	}
	return 0;
}

/* The group's leader may be made by another branch of the tree at this
 * very moment; live processes never wait for zombies, so it appears soon. */
#define JOIN_TRIES 2000
#define JOIN_PAUSE_NS 1000000

void attrs_join_group_early(const struct restore_task *t)
{
	const PstreeEntry *p = t->pstree;
	uint32_t pgid = p->ns_pgid[p->n_ns_pgid - 1];
	struct timespec pause = { .tv_nsec = JOIN_PAUSE_NS };

	if (p->ns_pgid[0] == p->ns_pid[0] || p->ns_sid[0] == p->ns_pid[0] || pgid == 0 ||
	    (t->parent != NULL && p->ns_pgid[0] == t->parent->pstree->ns_pgid[0]))
		return;
	for (int i = 0; i < JOIN_TRIES && setpgid(0, (pid_t)pgid) < 0; i++)
		nanosleep(&pause, NULL);
}

int attrs_dump_injected(struct dump_task *t, cr_error_t *err)
{
	int32_t sig = 0;

	inject_batch_add(&t->batch, "read the parent-death signal", SYS_prctl, PR_GET_PDEATHSIG,
			 t->scratch + SCRATCH_PDEATHSIG, 0, 0, 0, 0);
	if (dump_batch_run(t, t->inj, err) < 0)
		return -1;
	if (remote_read(t->pid, t->scratch + SCRATCH_PDEATHSIG, &sig, sizeof(sig), err) < 0)
		return cr_error_wrap(err, "read the parent-death signal");
	t->core->has_pdeath_signal = true;
	t->core->pdeath_signal = (uint32_t)sig;
	return 0;
}

void attrs_queue_pdeath(struct restore_task *t)
{
	inject_batch_add(&t->batch, "set the parent-death signal", SYS_prctl, PR_SET_PDEATHSIG,
			 t->core->pdeath_signal, 0, 0, 0, 0);
}

int attrs_restore_child(const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	umask((mode_t)core->umask);
	if (strcmp(core->root, "/") != 0 && chroot(core->root) < 0)
		return cr_error(err, errno, "chroot %s", core->root);
	if (chdir(core->cwd) < 0)
		return cr_error(err, errno, "chdir %s", core->cwd);
	if (personality(core->personality) < 0)
		return cr_error(err, errno, "personality 0x%x", core->personality);
	return 0;
}

int attrs_restore_rlimits(const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->core->n_rlimits; i++) {
		const RlimitEntry *r = t->core->rlimits[i];
		struct rlimit want = { .rlim_cur = r->cur, .rlim_max = r->max }, now;

		if (r->resource >= RLIM_NLIMITS)
			return cr_error(err, 0, "core-%d.img: unknown resource limit %u", t->pid, r->resource);
		if (getrlimit((int)r->resource, &now) == 0 && now.rlim_cur == want.rlim_cur &&
		    now.rlim_max == want.rlim_max)
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

int attrs_queue_creds(struct restore_task *t, cr_error_t *err)
{
	const CredsEntry *c = t->core->creds;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (c->n_uid != 4 || c->n_gid != 4)
		return cr_error(err, 0, "core-%d.img: malformed credentials", t->pid);
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
