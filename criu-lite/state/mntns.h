/* Mount namespaces: what a private mount namespace of a dumped tree holds
 * (its mount table and the files of its tmpfs mounts), and making it
 * again at restore.  state/ns.c owns the namespace itself (who makes it,
 * who enters it); this file owns what is in it. */
#ifndef CR_MNTNS_H
#define CR_MNTNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ns.pb-c.h"
#include "os/arena.h"
#include "os/error.h"

/* The most file data cr keeps of one tmpfs; a larger one is refused. */
#define MNTNS_TMPFS_MAX (16u << 20)

/* Propagation of a mount (mount_entry.propagation). */
enum mntns_prop {
	MNTNS_PRIVATE = 0,
	MNTNS_SHARED = 1,          /* a peer group of its own */
	MNTNS_SHARED_HOST = 2,     /* a peer of the restorer's mount it is a copy of */
	MNTNS_SLAVE_HOST = 3,      /* a slave of the restorer's mount */
	MNTNS_UNBINDABLE = 4,
};

/* Dump: the mount table of pid's mount namespace, compared with cr's, and
 * the files of its tmpfs mounts; anything restore could not make again
 * is refused, naming the mount. */
int mntns_dump(struct arena *a, pid_t pid, MntNs **out, cr_error_t *err);

/* Dump: the pid namespace (inode) each proc mount of m shows, seen from
 * pid's root: every one must be maker_pidns, the pid namespace of the
 * process that makes the mount namespace at restore. */
int mntns_check_proc(const MntNs *m, pid_t pid, uint64_t maker_pidns, cr_error_t *err);

/* Restore, before any process exists: every entry makes sense, the
 * mounts it inherits are the restorer's, and the sources of its bind
 * mounts are the dumped files. */
int mntns_validate(const MntNs *m, cr_error_t *err);

/* Restore, in the process that made the namespace (unshare(CLONE_NEWNS)),
 * right after: turns the copy of the restorer's mounts into the dumped
 * table. */
int mntns_restore(const MntNs *m, cr_error_t *err);

/* Restore: where path (a path of a process in m) can be looked at by the
 * restorer before the namespace exists: 1 with the path in buf, 0 if it
 * lies on a mount the restore makes (tmpfs, proc, sysfs). */
int mntns_host_view(const MntNs *m, const char *path, char *buf, size_t size);

/* Dump: the path through which cr reaches path as pid sees it: path
 * itself if pid shares cr's mount namespace, else through /proc/PID/root
 * (pid's root is the namespace's: ns.c refuses a chroot inside one). */
const char *mntns_dump_view(pid_t pid, const char *path, char *buf, size_t size);

#endif
