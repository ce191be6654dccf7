/* Process attributes of the file system and execution domain: umask, root,
 * cwd and personality; and the audit login uid.  Set by the child itself,
 * after its fds are open (they are opened by path from cr's root) and
 * before anything that resolves a path relative to the process; the root
 * only at the end of the child's own set-up (chroot.c), after everything
 * that opens a path as cr sees it. */
#include "fd/reopen.h"
#include "fd/deleted.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/files.h"
#include "state/ns.h"
#include "state/sharing.h"
#include "state/state.h"

#include <linux/kcmp.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>

static int read_link(pid_t pid, const char *name, struct arena *a, char **out, cr_error_t *err)
{
	char buf[PATH_MAX];

	if (proc_read_link(pid, name, buf, sizeof(buf), err) < 0)
		return -1;
	if (proc_link_deleted(buf, NULL))
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

/* The login uid of a process that never set one, and of every process of
 * a kernel without audit (CONFIG_AUDIT), which has no loginuid file. */
#define LOGINUID_UNSET UINT32_MAX

/* pid 0: the caller's own. */
static int read_loginuid(pid_t pid, uint32_t *out, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/loginuid");
	else
		snprintf(path, sizeof(path), "/proc/%d/loginuid", pid);
	if (access(path, F_OK) < 0 && errno == ENOENT && access("/proc/self/loginuid", F_OK) < 0) {
		*out = LOGINUID_UNSET;
		return 0;
	}
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, err) < 0)
		return -1;
	*out = (uint32_t)strtoul(text, NULL, 10);
	return 0;
}

/* A working directory removed while the process was in it is made again
 * at its former path, empty as rmdir left it, with its mode and owner,
 * and removed once the process is in it (fd/deleted.h).  Processes in one
 * (by device and inode) are put in one again (attrs_plan). */
static int read_cwd(struct arena *a, pid_t pid, CoreEntry *core, cr_error_t *err)
{
	char buf[PATH_MAX], path[64];
	size_t stem = 0;
	struct stat st;

	if (proc_read_link(pid, "cwd", buf, sizeof(buf), err) < 0)
		return -1;
	if (!proc_link_deleted(buf, &stem)) {
		core->cwd = arena_strdup(a, buf);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	if (buf[0] != '/' || stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_nlink != 0)
		return cr_error(err, 0, "pid %d: cwd %s was deleted, and is no removed directory (unsupported)", pid,
				buf);
	buf[stem] = '\0';
	core->cwd = arena_strdup(a, buf);
	core->has_cwd_removed_mode = core->has_cwd_removed_uid = core->has_cwd_removed_gid = true;
	core->cwd_removed_mode = st.st_mode;
	core->cwd_removed_uid = st.st_uid;
	core->cwd_removed_gid = st.st_gid;
	core->has_cwd_removed_dev = core->has_cwd_removed_ino = true;
	core->cwd_removed_dev = st.st_dev;
	core->cwd_removed_ino = st.st_ino;
	return deleted_check_dir("removed working directory", core->cwd, pid, NULL, 0, err);
}

static int attrs_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	CoreEntry *core = t->core;

	core->umask = t->status.umask;
	if (read_cwd(&ctx->arena, t->pid, core, err) < 0 ||
	    read_link(t->pid, "root", &ctx->arena, &core->root, err) < 0 ||
	    read_personality(t->pid, &core->personality, err) < 0 || read_loginuid(t->pid, &core->loginuid, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	return 0;
}

/* cr's own login uid, read once in validate, before the restored
 * processes are forked: each starts with it. */
static uint32_t own_loginuid;
static bool own_loginuid_known;

/* The root and the working directory exist, reached without a link, and
 * are directories, before any process exists. */
static int check_dir(const struct restore_ctx *ctx, const struct restore_task *t, const char *what,
		     const char *path, cr_error_t *err)
{
	char view[PATH_MAX];
	struct stat st;

	if (ns_path_view(ctx, ns_mnt_ref(t->core->ns), path, view, sizeof(view)) == 0)
		return 0;   /* on a mount the restore makes: chdir tells */
	if (reopen_look(view, &st, err) < 0)
		return cr_error_wrap(err, "core-%d.img: its %s", t->pid, what);
	if (!S_ISDIR(st.st_mode))
		return cr_error(err, 0, "core-%d.img: its %s %s is not a directory", t->pid, what, path);
	return 0;
}

/* The working directory is there, or was removed and its directory is. */
static int check_cwd(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	if (!core->has_cwd_removed_mode)
		return check_dir(ctx, t, "working directory", core->cwd, err);
	if (!S_ISDIR(core->cwd_removed_mode) || !core->has_cwd_removed_uid || !core->has_cwd_removed_gid)
		return cr_error(err, 0, "core-%d.img: its removed working directory %s without its mode and owner",
				t->pid, core->cwd);
	if (deleted_check_dir("removed working directory", core->cwd, 0, ctx, ns_mnt_ref(core->ns), err) < 0)
		return cr_error_wrap(err, "core-%d.img", t->pid);
	return 0;
}

static int attrs_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	if (t->core->umask > 0777)
		return cr_error(err, 0, "core-%d.img: umask %o out of range", t->pid, t->core->umask);
	if (check_dir(ctx, t, "root", t->core->root, err) < 0 || check_cwd(ctx, t, err) < 0)
		return -1;
	if (!own_loginuid_known && read_loginuid(0, &own_loginuid, err) < 0)
		return cr_error_wrap(err, "cr's own login uid");
	own_loginuid_known = true;
	if (t->core->loginuid != LOGINUID_UNSET && access("/proc/self/loginuid", F_OK) < 0)
		return cr_error(err, 0, "pid %d had the audit login uid %u; this kernel has no audit (CONFIG_AUDIT) to "
				"give it back", t->pid, t->core->loginuid);
	return 0;
}

/* Written by the process itself, where it differs from the one inherited
 * from the restorer (writing it needs CAP_AUDIT_CONTROL, which cr has). */
static int set_loginuid(uint32_t uid, cr_error_t *err)
{
	char text[16];
	cleanup_close int fd = -1;
	int len;

	if (!own_loginuid_known && read_loginuid(0, &own_loginuid, err) < 0)
		return -1;
	own_loginuid_known = true;
	if (uid == own_loginuid)
		return 0;
	fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
	len = snprintf(text, sizeof(text), "%u", uid);
	if (fd < 0 || write(fd, text, (size_t)len) != len)
		return cr_error(err, errno, "set the audit login uid to %u", uid);
	return 0;
}

/* ---------------------------------------- removed working directories shared */

/* Processes in one removed directory: its lowest common ancestor makes it
 * again before it forks, into a stash slot, where each of them finds it.
 * Only when every one of them and that ancestor are in one mount
 * namespace (the path is resolved as the ancestor sees it). */
struct cwd_group {
	struct restore_task *maker;   /* the lowest common ancestor */
	const CoreEntry *core;        /* a member's: path, mode, owner */
	int slot;
};

struct cwd_plan {
	int *slot;                    /* per task: its group's slot, -1 for none */
	struct cwd_group *groups;
	size_t n;
};

static bool removed_cwd(const struct restore_task *t)
{
	return !t->zombie && t->core->has_cwd_removed_mode && t->core->has_cwd_removed_dev &&
	       t->core->has_cwd_removed_ino;
}

static bool same_removed_cwd(const struct restore_task *a, const struct restore_task *b)
{
	return removed_cwd(b) && a->core->cwd_removed_dev == b->core->cwd_removed_dev &&
	       a->core->cwd_removed_ino == b->core->cwd_removed_ino;
}

/* The group of task i (a removed cwd no earlier task shares): its members'
 * slot is set when it has more than one. */
static void plan_group(struct restore_ctx *ctx, struct cwd_plan *p, size_t i)
{
	struct restore_task *t = &ctx->tasks[i], *maker = t;
	uint32_t mnt = ns_mnt_ref(t->core->ns);
	bool one_ns = true;
	size_t n = 1;

	for (size_t j = i + 1; j < ctx->n_tasks; j++) {
		if (!same_removed_cwd(t, &ctx->tasks[j]))
			continue;
		maker = restore_common_ancestor(maker, &ctx->tasks[j]);
		one_ns &= ns_mnt_ref(ctx->tasks[j].core->ns) == mnt;
		n++;
	}
	if (n < 2 || maker == NULL || !one_ns || ns_mnt_ref(maker->core->ns) != mnt)
		return;
	p->groups[p->n] = (struct cwd_group){ maker, t->core, restore_stash_reserve(ctx, 1) };
	for (size_t j = i; j < ctx->n_tasks; j++)
		if (j == i || same_removed_cwd(t, &ctx->tasks[j]))
			p->slot[j] = p->groups[p->n].slot;
	p->n++;
}

static int attrs_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	struct cwd_plan *p = xcalloc(1, sizeof(*p));

	(void)err;
	p->slot = xmalloc((ctx->n_tasks + 1) * sizeof(*p->slot));
	p->groups = xcalloc(ctx->n_tasks + 1, sizeof(*p->groups));
	for (size_t i = 0; i < ctx->n_tasks; i++)
		p->slot[i] = -1;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (removed_cwd(&ctx->tasks[i]) && p->slot[i] < 0)
			plan_group(ctx, p, i);
	ctx->cwd = p;
	return 0;
}

/* The groups t makes the directory of, into their slots. */
static int attrs_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t g = 0; g < ctx->cwd->n; g++) {
		const struct cwd_group *c = &ctx->cwd->groups[g];
		int fd;

		if (c->maker != t)
			continue;
		fd = deleted_remake_node(t, c->core->cwd, c->core->cwd_removed_mode, c->core->cwd_removed_uid,
					 c->core->cwd_removed_gid, O_RDONLY | O_DIRECTORY | O_CLOEXEC, err);
		if (fd < 0)
			return cr_error_wrap(err, "the removed working directory %s", c->core->cwd);
		if (dup3(fd, ctx->stash_base + c->slot, O_CLOEXEC) < 0) {
			close(fd);
			return cr_error(err, errno, "keep the removed working directory %s", c->core->cwd);
		}
		close(fd);
	}
	return 0;
}

static void attrs_release_restore(struct restore_ctx *ctx)
{
	if (ctx->cwd == NULL)
		return;
	free(ctx->cwd->slot);
	free(ctx->cwd->groups);
	free(ctx->cwd);
	ctx->cwd = NULL;
}

static int attrs_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;
	int slot = ctx->cwd->slot[t - ctx->tasks];

	umask((mode_t)core->umask);
	if (slot >= 0) {
		if (fchdir(ctx->stash_base + slot) < 0)
			return cr_error(err, errno, "chdir into the removed %s", core->cwd);
	} else if (core->has_cwd_removed_mode) {
		cleanup_close int fd = deleted_remake_node(t, core->cwd, core->cwd_removed_mode, core->cwd_removed_uid,
							   core->cwd_removed_gid, O_RDONLY | O_DIRECTORY, err);

		if (fd < 0 || fchdir(fd) < 0)
			return fd < 0 ? -1 : cr_error(err, errno, "chdir into the removed %s", core->cwd);
	} else if (chdir(core->cwd) < 0) {   /* as cr sees it: the root comes later (chroot.c) */
		return cr_error(err, errno, "chdir %s", core->cwd);
	}
	if (personality(core->personality) < 0)
		return cr_error(err, errno, "personality 0x%x", core->personality);
	return set_loginuid(core->loginuid, err);
}

/* umask, root and cwd live in the fs state, which CLONE_FS shares. */
static int attrs_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	return sharing_refuse(ctx, KCMP_FS, "fs state (root, cwd, umask)", err);
}

const struct state_kind state_attrs = {
	.name = "umask, root, cwd, personality",
	.collect = attrs_collect,
	.check_tree = attrs_check_tree,
	.validate = attrs_validate,
	.plan = attrs_plan,
	.before_fork = attrs_before_fork,
	.setup = attrs_setup,
	.release_restore = attrs_release_restore,
};
