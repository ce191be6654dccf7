/* The path of a unix socket whose socket file was gone at dump (unlinked,
 * replaced by another file, or its directory removed), bound again at
 * restore.  The kernel keeps the name given to bind(), so the restore binds
 * at the dumped path itself, for as long as the socket's component needs
 * it (connections and datagrams by name), and then puts the path back as
 * it found it: whatever was there is moved aside in the same directory
 * (rename) and back, missing directories are made (mode 0700, so nobody
 * else uses them meanwhile) and removed.  A restore that fails midway
 * undoes the same way. */
#ifndef CR_FD_UNIX_PATH_H
#define CR_FD_UNIX_PATH_H

#include <stdbool.h>
#include <sys/types.h>

#include "os/error.h"

struct unix_path_undo {
	char *path;      /* the name bound (relative names: from the cwd of the bind) */
	char *aside;     /* where what held the path waits; NULL: nothing was there */
	char *made;      /* the topmost directory made; NULL: none */
	ino_t sock_ino;  /* the socket file the bind made; 0: not bound yet */
	dev_t sock_dev;
};

/* Dump and validation: the nearest directory of path that exists is a
 * directory (what is below it can be made again). */
int unix_path_check_dirs(const char *path, cr_error_t *err);

/* Dump: where the socket file of sk (a socket bound to a path) is now, as
 * cr's root sees it, in out.  1: found; 0: unlinked; -1: the kernel cannot
 * tell (no SIOCUNIXFILE, or not allowed), errno set. */
int unix_path_now(int sk, char *out, size_t size);

/* Before the bind: makes the missing directories and moves aside what is
 * at path.  On failure, what it did is undone. */
int unix_path_prepare(const char *path, struct unix_path_undo *u, cr_error_t *err);

/* After a successful bind: records the socket file made at the path. */
void unix_path_bound(struct unix_path_undo *u);

/* Renames the socket file the bind made (only that one) to to, over
 * nothing but the dumped socket's old file there (old_ino, old_dev); it is
 * then no longer unlinked.  -1 (with a warning) if it could not. */
int unix_path_rename(struct unix_path_undo *u, const char *to, ino_t old_ino, dev_t old_dev);

/* Unlinks the socket file (only the one the bind made), moves back what
 * was aside and removes the directories made; frees u's strings.  Does
 * nothing for a u never prepared. */
void unix_path_restore(struct unix_path_undo *u);

/* When the path cannot be reached any more: says where things were left,
 * and frees u's strings. */
void unix_path_forget(struct unix_path_undo *u);

#endif
