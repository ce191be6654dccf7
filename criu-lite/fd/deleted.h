/* Things deleted while open, made again at restore where they were: the
 * regular files (deleted.c), FIFOs (pipes.c), directories, and the
 * working directory (state/attrs.c). */
#ifndef CR_FD_DELETED_H
#define CR_FD_DELETED_H

#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"

/* Dump, and validation at restore: the directory of path, where the
 * restore makes the thing again, exists and is reached without a
 * symbolic link.  what names the thing for the message.  In a mount
 * namespace of the dump: at dump (pid, the holder) through /proc/PID/root,
 * at restore (pid 0, ctx, mnt the file's namespace) on the host path of
 * its mount, or not before the restore makes that mount. */
int deleted_check_dir(const char *what, const char *path, pid_t pid, const struct restore_ctx *ctx, uint32_t mnt,
		      cr_error_t *err);

/* Restore: a new node of mode's type (S_IFDIR or S_IFIFO) and permission
 * bits, owned by uid:gid, at path (in its directory as process t reaches
 * it: fd/reopen.h), opened with flags and removed at once.  When path is
 * taken, a name beside it stands in (with a warning): the fd then shows
 * that name.  Returns the fd. */
int deleted_remake_node(const struct restore_task *t, const char *path, mode_t mode, uid_t uid, gid_t gid,
			int flags, cr_error_t *err);

#endif
