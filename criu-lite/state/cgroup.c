/* Control-group membership: every hierarchy (cgroup v2's, and each v1
 * hierarchy with its controllers) in which a process's cgroup differs from
 * cr's own, with the limits of that cgroup (memory.max, cpu.max, pids.max
 * and their v1 counterparts, where they exist).
 *
 * Restore: each process moves itself into its cgroups, under --cgroup-root
 * if given, creating a missing one with its dumped limits (a cgroup that
 * exists keeps its own: it may hold other processes).  Threads in a cgroup
 * other than their process's (v2 threaded mode, v1 per-thread tasks) are
 * refused at dump. */
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_LIMIT_TEXT 128

/* The limits recorded where the dumped cgroup has them. */
static const char *const limit_files[] = {
	"memory.max", "cpu.max", "pids.max", "memory.limit_in_bytes", "cpu.cfs_period_us", "cpu.cfs_quota_us",
};

/* ------------------------------------------------------ /proc/PID/cgroup */

/* Each "ID:CONTROLLERS:PATH" line of /proc/PID/cgroup (task TID if
 * non-zero), NUL-separated fields; *n lines. */
static bool kernel_has_cgroups(void)
{
	return access("/proc/self/cgroup", F_OK) == 0;
}

/* A kernel without cgroups (CONFIG_CGROUPS) has no cgroup file: nothing
 * to keep, an empty text. */
static int read_cgroups(pid_t pid, pid_t tid, char **text, cr_error_t *err)
{
	char path[96];

	if (!kernel_has_cgroups()) {
		*text = xstrdup("");
		return 0;
	}
	if (tid != 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	else if (pid != 0)
		snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/cgroup");
	return read_whole_file_at(AT_FDCWD, path, text, NULL, err);
}

/* The line of text for the hierarchy named "ID:CONTROLLERS", or NULL; its
 * length in *len. */
static const char *find_line(const char *text, const char *hier, size_t hlen, size_t *len)
{
	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end = strchrnul(l, '\n');

		if ((size_t)(end - l) > hlen && strncmp(l, hier, hlen) == 0 && l[hlen] == ':') {
			*len = (size_t)(end - l);
			return l;
		}
	}
	return NULL;
}

/* ----------------------------------------------------- mounts and limits */

/* Where the hierarchy of controllers ("" for cgroup v2) is mounted, in
 * cr's mount namespace. */
static int hierarchy_mount(const char *controllers, char out[PATH_MAX], cr_error_t *err)
{
	cleanup_free char *info = NULL;

	if (read_whole_file_at(AT_FDCWD, "/proc/self/mountinfo", &info, NULL, err) < 0)
		return -1;
	for (char *l = strtok(info, "\n"); l != NULL; l = strtok(NULL, "\n")) {
		char mnt[PATH_MAX], fstype[32], opts[512];
		const char *sep = strstr(l, " - ");
		bool all = true;

		if (sep == NULL || sscanf(l, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (*controllers == '\0') {
			if (strcmp(fstype, "cgroup2") == 0)
				return snprintf(out, PATH_MAX, "%s", mnt) >= PATH_MAX ? -1 : 0;
			continue;
		}
		if (strcmp(fstype, "cgroup") != 0)
			continue;
		cleanup_free char *want = xstrdup(controllers);
		for (char *save = NULL, *c = strtok_r(want, ",", &save); c != NULL; c = strtok_r(NULL, ",", &save)) {
			char *hit = strstr(opts, c);
			size_t n = strlen(c);

			all &= hit != NULL && (hit == opts || hit[-1] == ',') && (hit[n] == ',' || hit[n] == '\0');
		}
		if (all)
			return snprintf(out, PATH_MAX, "%s", mnt) >= PATH_MAX ? -1 : 0;
	}
	return cr_error(err, 0, "no cgroup hierarchy '%s' is mounted here", *controllers ? controllers : "v2");
}

static void read_limits(struct dump_ctx *ctx, const char *dir, CgroupEntry *e)
{
	e->limits = arena_array(&ctx->arena, CgroupLimit *, ARRAY_SIZE(limit_files));
	for (size_t i = 0; i < ARRAY_SIZE(limit_files); i++) {
		char path[PATH_MAX * 2 + 64];
		cleanup_free char *text = NULL;
		cr_error_t err = NULL;
		CgroupLimit *l;

		snprintf(path, sizeof(path), "%s/%s", dir, limit_files[i]);
		if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &err) < 0) {
			cr_error_release(&err);   /* not a limit this cgroup has */
			continue;
		}
		text[strcspn(text, "\n")] = '\0';
		l = arena_new(&ctx->arena, CgroupLimit);
		cgroup_limit__init(l);
		l->file = (char *)limit_files[i];
		l->value = arena_strdup(&ctx->arena, text);
		e->limits[e->n_limits++] = l;
	}
}

/* ------------------------------------------------------------------ dump */

static int record_line(struct dump_ctx *ctx, struct dump_task *t, const char *line, size_t len, cr_error_t *err)
{
	const char *c1 = memchr(line, ':', len), *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
	char mnt[PATH_MAX], dir[PATH_MAX * 2];
	CgroupEntry *e;

	if (c1 == NULL || c2 == NULL)
		return cr_error(err, 0, "pid %d: cgroup line '%.*s'", t->pid, (int)len, line);
	e = arena_new(&ctx->arena, CgroupEntry);
	cgroup_entry__init(e);
	e->controllers = arena_memdup(&ctx->arena, c1 + 1, (size_t)(c2 - c1));
	e->controllers[c2 - c1 - 1] = '\0';
	e->path = arena_memdup(&ctx->arena, c2 + 1, (size_t)(line + len - c2));
	e->path[line + len - c2 - 1] = '\0';
	if (hierarchy_mount(e->controllers, mnt, err) < 0)
		return cr_error_wrap(err, "pid %d is in cgroup %s", t->pid, e->path);
	snprintf(dir, sizeof(dir), "%s%s", mnt, e->path);
	read_limits(ctx, dir, e);
	t->core->cgroups[t->core->n_cgroups++] = e;
	return 0;
}

static int check_threads(struct dump_task *t, const char *own, cr_error_t *err)
{
	for (size_t i = 1; i < t->n_threads; i++) {
		cleanup_free char *text = NULL;

		if (read_cgroups(t->pid, t->threads[i].tid, &text, err) < 0)
			return -1;
		if (strcmp(text, own) != 0)
			return cr_error(err, 0, "pid %d thread %d is in cgroups of its own (threaded cgroup): "
					"unsupported", t->pid, t->threads[i].tid);
	}
	return 0;
}

static int cgroup_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	cleanup_free char *mine = NULL, *theirs = NULL;
	size_t lines = 1;

	if (read_cgroups(0, 0, &mine, err) < 0 || read_cgroups(t->pid, 0, &theirs, err) < 0 ||
	    check_threads(t, theirs, err) < 0)
		return -1;
	for (const char *p = theirs; *p; p++)
		lines += *p == '\n';
	t->core->cgroups = arena_array(&ctx->arena, CgroupEntry *, lines);
	for (const char *l = theirs; l != NULL && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t len = (size_t)(strchrnul(l, '\n') - l), mlen = 0;
		const char *c1 = memchr(l, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - l)) : NULL;
		const char *same;

		if (c2 == NULL)
			continue;
		same = find_line(mine, l, (size_t)(c2 - l), &mlen);
		if (same != NULL && mlen == len && strncmp(same, l, len) == 0)
			continue;   /* cr's own cgroup: the restored process inherits the restorer's */
		if (record_line(ctx, t, l, len, err) < 0)
			return -1;
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

static bool path_ok(const char *p)
{
	return p[0] == '/' && strstr(p, "/..") == NULL && strlen(p) < PATH_MAX / 2;
}

static int cgroup_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (t->core->n_cgroups > 0 && !kernel_has_cgroups())
		return cr_error(err, 0, "pid %d was in cgroups of its own; this kernel has no cgroups (CONFIG_CGROUPS)",
				t->pid);
	for (size_t i = 0; i < t->core->n_cgroups; i++) {
		const CgroupEntry *e = t->core->cgroups[i];

		if (!path_ok(e->path) || strchr(e->controllers, '/') != NULL)
			return cr_error(err, 0, "core-%d.img: cgroup '%s' of '%s'", t->pid, e->path, e->controllers);
		for (size_t k = 0; k < e->n_limits; k++) {
			bool known = false;

			for (size_t f = 0; f < ARRAY_SIZE(limit_files); f++)
				known |= strcmp(e->limits[k]->file, limit_files[f]) == 0;
			if (!known || strlen(e->limits[k]->value) >= MAX_LIMIT_TEXT)
				return cr_error(err, 0, "core-%d.img: cgroup limit %s", t->pid, e->limits[k]->file);
		}
	}
	return 0;
}

static int write_text(const char *dir, const char *file, const char *text, cr_error_t *err)
{
	char path[PATH_MAX * 2];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return write_proc_text(path, text, err);
}

/* Whether the space-separated list text names word. */
static bool lists_word(const char *text, const char *word)
{
	size_t n = strlen(word);

	for (const char *hit = strstr(text, word); hit != NULL; hit = strstr(hit + 1, word))
		if ((hit == text || hit[-1] == ' ') && strchr(" \n", hit[n]) != NULL)
			return true;
	return false;
}

/* cgroup v2 shows a controller's files (memory.max of "memory") in a cgroup
 * only when its parent lists the controller in cgroup.subtree_control:
 * dir (a parent) gets it there if it has not yet; a warning says so when dir
 * existed before the restore. */
static int enable_controller(const char *dir, bool existed, const char *file, cr_error_t *err)
{
	char path[PATH_MAX * 2 + 32], ctrl[MAX_LIMIT_TEXT];
	cleanup_free char *text = NULL;

	snprintf(ctrl, sizeof(ctrl), "+%.*s", (int)strcspn(file, "."), file);
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return cr_error_wrap(err, "cgroup limit %s", file);
	if (lists_word(text, ctrl + 1))
		return 0;
	if (write_text(dir, "cgroup.subtree_control", ctrl, err) < 0)
		return cr_error_wrap(err, "enable the controller of %s", file);
	if (existed)
		pr_warn("enabled the %s controller in the cgroup.subtree_control of %s, for a restored %s",
			ctrl + 1, dir, file);
	return 0;
}

/* cgroup v2: the controllers of e's limits, enabled top-down in every level
 * from the mount (dir's first base bytes) to dir's parent; the levels shorter
 * than made bytes existed before. */
static int enable_controllers(char *dir, size_t base, size_t made, const CgroupEntry *e, cr_error_t *err)
{
	char *leaf = strrchr(dir, '/');

	for (char *s = dir + base; s != NULL && s <= leaf; s = strchr(s + 1, '/')) {
		int rc = 0;

		*s = '\0';
		for (size_t k = 0; k < e->n_limits && rc == 0; k++)
			rc = enable_controller(dir, (size_t)(s - dir) < made, e->limits[k]->file, err);
		*s = '/';
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Creates what of dir below its first base bytes (the hierarchy's mount)
 * is missing, the last level with the dumped limits. */
static int make_cgroup(char *dir, size_t base, const CgroupEntry *e, cr_error_t *err)
{
	size_t made = strlen(dir);   /* the first level this call creates */

	for (char *s = strchr(dir + base + 1, '/');; s = strchr(s + 1, '/')) {
		if (s != NULL)
			*s = '\0';
		if (mkdir(dir, 0755) == 0)
			made = made < strlen(dir) ? made : strlen(dir);
		else if (errno != EEXIST)
			return cr_error(err, errno, "create cgroup %s", dir);
		if (s == NULL)
			break;
		*s = '/';
	}
	if (*e->controllers == '\0' && enable_controllers(dir, base, made, e, err) < 0)
		return cr_error_wrap(err, "create cgroup %s", dir);
	for (size_t k = 0; k < e->n_limits; k++)
		if (write_text(dir, e->limits[k]->file, e->limits[k]->value, err) < 0)
			return -1;
	return 0;
}

/* In the child: into each of its cgroups, itself ("0" names the writer). */
static int cgroup_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const char *root = ctx->opts->cgroup_root ? ctx->opts->cgroup_root : "";

	for (size_t i = 0; i < t->core->n_cgroups; i++) {
		const CgroupEntry *e = t->core->cgroups[i];
		char mnt[PATH_MAX], dir[PATH_MAX * 2];
		struct stat st;
		size_t base;

		if (hierarchy_mount(e->controllers, mnt, err) < 0)
			return -1;
		base = strlen(mnt);
		snprintf(dir, sizeof(dir), "%s%s%s", mnt, root, e->path);
		if (stat(dir, &st) < 0 && make_cgroup(dir, base, e, err) < 0)
			return -1;
		if (write_text(dir, "cgroup.procs", "0", err) < 0)
			return cr_error_wrap(err, "join cgroup %s", dir);
	}
	return 0;
}

const struct state_kind state_cgroup = {
	.name = "cgroups",
	.collect = cgroup_collect,
	.validate = cgroup_validate,
	.setup = cgroup_setup,
};
