/* Process attributes of the file system and execution domain: umask, root,
 * cwd and personality; and the audit login uid.  Set by the child itself,
 * after its fds are open (they are opened by path from cr's root) and
 * before anything that resolves a path relative to the process; the root
 * only at the end of the child's own set-up (chroot.c), after everything
 * that opens a path as cr sees it. */
#include "fd/reopen.h"
#include "fd/deleted.h"
#include "os/util.h"
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
 * and removed once the process is in it (fd/deleted.h).  Each process in
 * it gets a directory of its own. */
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

static int attrs_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const CoreEntry *core = t->core;

	(void)ctx;
	umask((mode_t)core->umask);
	if (core->has_cwd_removed_mode) {
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
	.setup = attrs_setup,
};
