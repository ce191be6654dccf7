/* Kernel objects that several file descriptions can refer to: a pipe (its
 * two ends, and any reopened through /proc), a FIFO, a memfd, a deleted
 * file.  Used by pipes.c, unix_sk.c, memfd.c and deleted.c.
 *
 * Dump: an object must not be open in a process outside the dump (cr could
 * not reconnect it), nor through a second description in another process
 * of the dump (not supported yet: each process would get its own copy).
 *
 * Restore: the first description of an object asked for creates it and
 * keeps one stashed fd per end, its "anchor", keyed by the id of the
 * object's first file entry.  Every description is handed out from the
 * anchor: the anchor's own description once, when its flags fit, and
 * descriptions reopened through /proc/self/fd after that.  The restorer
 * closes the stash, and with it the anchors, before the process runs. */
#ifndef CR_FDSHARE_H
#define CR_FDSHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/error.h"
#include "fd/fdkind.h"
#include "state/task.h"

/* The contents of memfds and deleted files, the data of a pipe, and the
 * queue of a socket, stored in the image, are refused beyond this: an image
 * frame holds at most CR_IMG_MAX_MSG (64 MiB). */
#define FDKIND_MAX_DATA (32u << 20)

/* A kind's key of the object behind a file entry: two entries of one
 * FileKind with equal keys are descriptions of one object.  False when fe
 * has none (it is then an object of its own). */
struct fdshare_key {
	uint64_t ino, dev;
	const char *path;   /* NULL when the path does not tell objects apart */
};
typedef bool (*fdshare_key_fn)(const FileEntry *fe, struct fdshare_key *k);

/* ---- dump */

/* Whether the dump recorded an entry of fe's object already (that first
 * description holds the object's contents); fe counts as recorded from
 * now on.  Objects are kept in a tree by key, not found by a scan of the
 * file table. */
bool fdshare_recorded(struct dump_ctx *ctx, const FileEntry *fe, fdshare_key_fn key);
void fdshare_release_dump(struct dump_ctx *ctx);

/* The tree is frozen: the table of every process's fds (which the checks
 * below read) is read from now on by a thread of its own, while the
 * collection goes on (a dump whose collection never asks pays nothing in
 * frozen time). */
void fdshare_prefetch(const struct dump_ctx *ctx);

/* Waits for that thread (before a fork: the child gets no half-done
 * work of it). */
void fdshare_prefetch_wait(void);

/* Every process's network namespace (cr's too), read with that table:
 * valid until the dump ends. */
struct fdshare_netns {
	pid_t pid;
	uint64_t ino;
};
int fdshare_netns_all(const struct dump_ctx *ctx, const struct fdshare_netns **v, size_t *n, cr_error_t *err);

/* Refuses, naming pid, fd and what, when the object behind fd p->fd of pid
 * (p->link, same inode) is open in another process, unless that process is
 * in the dump and holds only descriptions that pid holds too (inherited
 * fds: files.c opens each once, in an ancestor of all its holders). */
int fdshare_refuse_shared(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			  cr_error_t *err);

/* The same, but descriptions held by other processes of the dump are fine:
 * for kinds whose descriptions are all opened in one process at restore
 * (struct fd_kind's first hook). */
int fdshare_refuse_outside(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			   cr_error_t *err);

/* Where the object with /proc link `link` (e.g. "socket:[123]") is held:
 * 1 when pid holds it, else 0 with *other set to a process that does (0 if
 * none does). */
int fdshare_held_by(const struct dump_ctx *ctx, const char *link, pid_t pid, pid_t *other, cr_error_t *err);

/* The processes that hold the object with /proc link `link`: how many
 * (*n), the first max of them into pids. */
int fdshare_holders(const struct dump_ctx *ctx, const char *link, pid_t *pids, size_t max, size_t *n,
		    cr_error_t *err);

/* Whether some process holds the very description that cr's fd own is
 * (kcmp), found among the fds whose /proc link is link: 1 and which, or 0. */
int fdshare_description_held(const struct dump_ctx *ctx, int own, const char *link, pid_t *pid, int *fd,
			     cr_error_t *err);

/* Is pid one of the processes being dumped? */
bool fdshare_in_dump(const struct dump_ctx *ctx, pid_t pid);

/* A description of cr's own, read-only, on the file behind fd of pid
 * (opened through /proc/PID/fd): reading and seeking it leave the
 * process's offset alone. */
int fdshare_reopen(pid_t pid, int fd, cr_error_t *err);

/* ---- restore */

/* The first file entry of fe's object (fe itself when there is none
 * before it): the entry its anchor is keyed by.  The first call for a
 * FileKind finds the first entries of all its objects at once, in a tree
 * by key, and keeps them in ctx->file_first (files.c's plan makes it). */
const FileEntry *fdshare_first(const struct restore_ctx *ctx, const FileEntry *fe, fdshare_key_fn key);

struct fd_anchor {
	uint32_t file_id;   /* the object's first file entry */
	int fd[2];          /* stashed; pipes: read and write end, others: [0] */
	bool taken[2];      /* the anchor's own description was handed out */
};

/* The anchor of file_id, from a table indexed by file id. */
struct fd_anchor *fd_anchor_find(uint32_t file_id);

/* Stashes fds (fds[1] may be -1) as the anchor of file_id; closes them on
 * failure. */
struct fd_anchor *fd_anchor_add(const struct restore_task *t, uint32_t file_id, const int fds[2], cr_error_t *err);

/* A new fd for fe on the object of anchor end `end`, with fe's flags. */
int fd_anchor_open(struct fd_anchor *a, int end, const FileEntry *fe, cr_error_t *err);

/* The same for a file with an offset: also seeks to fe->pos. */
int fd_anchor_open_at(struct fd_anchor *a, const FileEntry *fe, cr_error_t *err);

#endif
