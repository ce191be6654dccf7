/* Kinds of file descriptions.  Each kind lives in its own file in fd/ and
 * owns both directions; fdkind.c lists them all, and state/files.c (the fd
 * table of a process) finds the kind of every fd through that list.
 *
 * Dump: for each fd, files.c probes it (struct fd_probe) and asks each
 * kind's match() in the list's order; the first that matches fills the
 * FileEntry (fe->kind, fe->path, fe->flags and fe->pos are preset from the
 * kind and the probe, and dump may overwrite fe->path).  Errors need not
 * name the process or the fd: files.c adds "pid N fd M (kind)".
 *
 * Restore, in the child process that holds the fd (cr's code, before the
 * transplant): open() creates the description and returns an fd of any
 * number; files.c then moves it to its dumped number.  Kinds of order
 * FD_OPEN_LAST refer to other fds of the process (epoll) and are opened
 * once every other fd is at its number. */
#ifndef CR_FDKIND_H
#define CR_FDKIND_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"

struct fd_probe {
	pid_t pid;                /* the process that holds it */
	int fd;
	char link[PATH_MAX];      /* readlink of /proc/PID/fd/N */
	struct stat st;           /* stat of /proc/PID/fd/N (the open file) */
	struct proc_fdinfo info;  /* pos, flags, mnt_id, ino */
	char *fdinfo;             /* the whole fdinfo text, for kind-specific lines */
};

enum fd_open_order {
	FD_OPEN_FIRST = 0,     /* refers to no other fd */
	FD_OPEN_LAST,          /* refers to other fds of its process: opened after them */
};

struct fd_kind {
	const char *name;
	FileKind kind;             /* what its FileEntry is stored as */
	/* Descriptions held by several processes are opened once, by their
	 * lowest common ancestor before it forks, and inherited.  A kind
	 * that cannot be (its object needs the children, or it refers to
	 * other fds) is refused at dump when processes share it. */
	bool shareable;
	/* How many fds its open may keep aside (files_stash_fd) for one
	 * kernel object, until the process runs: room the restore plans. */
	int aside;
	enum fd_open_order order;
	/* Open flags its descriptions may have beyond those of a file opened
	 * by path (reopen_check_flags): O_TMPFILE's, for deleted files. */
	uint32_t extra_flags;
	bool (*match)(const struct fd_probe *p);
	int (*dump)(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err);
	/* Optional: once the tree is frozen, before any of its fds is probed. */
	int (*prepare)(struct dump_ctx *ctx, cr_error_t *err);
	/* Optional: a check of the whole dump once every fd is recorded (what
	 * one fd's dump could not know yet). */
	int (*check_tree)(struct dump_ctx *ctx, cr_error_t *err);
	/* Optional: checks the kind-specific fields before anything is created. */
	int (*validate)(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err);
	int (*open)(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err);
	/* Optional: a process of the dump that fe refers to (a file of its
	 * /proc, a pidfd of it), which must exist when fe is opened at
	 * restore (state/files.c waits for it, and refuses at dump what
	 * cannot wait); 0 for none. */
	pid_t (*refers_to)(const FileEntry *fe);
	/* Optional: the first entry of the kernel object fe is a description
	 * of (a pipe's two ends, a memfd opened twice).  All descriptions of
	 * one object are opened in one process, the lowest common ancestor of
	 * all their holders, and inherited from there. */
	const FileEntry *(*first)(const struct restore_ctx *ctx, const FileEntry *fe);
	/* Optional: the pid, as its holders see pids, of a process that takes
	 * a step in making fe's object (the maker of a unix connection, which
	 * SO_PEERCRED reports); 0 for none.  When that process is an ancestor
	 * of the holders, it opens the object itself, before it forks. */
	pid_t (*made_by)(const FileEntry *fe);
	/* Optional: the dump ends (ctx->killed: the tree is gone), whether
	 * it succeeded or not: what the kind holds is let go. */
	void (*release_dump)(struct dump_ctx *ctx);
	/* Optional: by the restorer, once every process is restored and
	 * stopped, before any runs again. */
	int (*ready)(const struct restore_ctx *ctx, cr_error_t *err);
	/* Optional: by the restorer, once the restored tree runs: what can
	 * wait until then (no error: the restore is done). */
	void (*released)(const struct restore_ctx *ctx);
};

/* The kind that handles fe->kind at restore, or NULL. */
const struct fd_kind *fdkind_for_entry(const FileEntry *fe);
/* Every kind's prepare hook, in the kinds' order. */
int fdkind_prepare(struct dump_ctx *ctx, cr_error_t *err);
/* Every kind's check_tree hook, in the kinds' order. */
int fdkind_check_tree(struct dump_ctx *ctx, cr_error_t *err);
/* Every kind's release_dump hook, every ready hook, every released hook. */
void fdkind_release_dump(struct dump_ctx *ctx);
int fdkind_ready(const struct restore_ctx *ctx, cr_error_t *err);
void fdkind_released(const struct restore_ctx *ctx);
/* The kind that handles a probed fd at dump, or NULL. */
const struct fd_kind *fdkind_for_probe(const struct fd_probe *p);
/* Restore: when fe refers to another process of the restore (refers_to),
 * waits until it exists: a process opens its fds once its own children
 * exist, while its parent may still be forking its siblings.  Every
 * process forks its children before it opens its own fds, so what is
 * awaited never waits in turn; 0, or -1 after 10 s. */
int fdkind_await_process(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe,
			 cr_error_t *err);
/* A duplicate, in cr, of fd of pid (pidfd_getfd): for kinds whose state is
 * read through the description itself (timerfd_gettime, tee, ...). */
int fdkind_steal_fd(pid_t pid, int fd, cr_error_t *err);

/* For memory objects (state/shmem.c) that are files of these kinds too: */
/* A new memfd named name (sealable, executable where the kernel allows),
 * with flags more (MFD_HUGETLB). */
int memfd_make(const char *name, unsigned flags, cr_error_t *err);
/* Restore: a deleted file made again at its former path (or an unnamed
 * file beside it) as t reaches it, and unlinked. */
int deleted_make(const struct restore_task *t, const char *path, cr_error_t *err);
/* Dump: whether a process of the dump maps the inode: the memory object
 * that mapping is holds its contents (shmem.c). */
bool shmem_mapped_in_dump(const struct dump_ctx *ctx, uint64_t ino, uint64_t dev);
/* Restore validation: whether the dump has a memfd object (memfd: by
 * inode) or a deleted file object (by inode and device) of that inode. */
bool shmem_has_file_object(const struct restore_ctx *ctx, bool memfd, uint64_t ino, uint64_t dev);
/* Restore, in the process that opens a memfd's or a deleted file's
 * descriptions: when a memory object of that kind was dumped with that
 * inode (as shmem_has_file_object finds it; it is mapped too), a new fd on
 * it (made now if this process makes it and has not yet), or -1 on error;
 * *none when there is no object. */
int shmem_file_fd(const struct restore_ctx *ctx, const struct restore_task *t, bool memfd, uint64_t ino,
		  uint64_t dev, bool *none, cr_error_t *err);

#endif
