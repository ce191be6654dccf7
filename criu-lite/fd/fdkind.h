/* Kinds of file descriptions.  Each kind lives in its own file and owns
 * both directions; files.c finds the kind of every fd through this table.
 *
 * Dump: for each fd, files.c probes it (struct fd_probe) and asks each
 * kind's match() in table order; the first that matches fills the
 * FileEntry (fe->kind, fe->path, fe->flags and fe->pos are preset from
 * the probe and may be overwritten, including fe->path).
 *
 * Restore, in the child process that holds the fd (cr's code, before the
 * transplant): open() creates the description and returns an fd of any
 * number; files.c then moves it to its dumped number. Kinds are opened in
 * ascending phase order, so a kind whose description refers to other fds
 * (epoll) sees every fd of lower phases at its final number. */
#ifndef CR_FDKIND_H
#define CR_FDKIND_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"

struct fd_probe {
	int fd;
	char link[PATH_MAX];      /* readlink of /proc/PID/fd/N */
	struct stat st;           /* stat of /proc/PID/fd/N (the open file) */
	struct proc_fdinfo info;  /* pos, flags, mnt_id, ino */
	char *fdinfo;             /* the whole fdinfo text, for kind-specific lines */
};

struct fd_kind {
	const char *name;
	int phase;
	bool (*match)(const struct fd_probe *p);
	int (*dump)(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err);
	/* Optional: checks the kind-specific fields before anything is created. */
	int (*validate)(const FileEntry *fe, cr_error_t *err);
	int (*open)(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err);
	/* Optional: the first entry of the kernel object fe is a description
	 * of (a pipe's two ends, a memfd opened twice).  All descriptions of
	 * one object are opened in one process, the lowest common ancestor of
	 * all their holders, and inherited from there. */
	const FileEntry *(*first)(const struct restore_ctx *ctx, const FileEntry *fe);
};

/* The kind that handles fe->kind at restore, or NULL. */
const struct fd_kind *fdkind_for_entry(const FileEntry *fe);
/* The kind that handles a probed fd at dump, or NULL. */
const struct fd_kind *fdkind_for_probe(const struct fd_probe *p);
/* The highest phase of any kind. */
int fdkind_max_phase(void);

/* A duplicate, in cr, of fd of pid (pidfd_getfd): for kinds whose state is
 * read through the description itself (timerfd_gettime, tee, ...). */
int fdkind_steal_fd(pid_t pid, int fd, cr_error_t *err);

#endif
