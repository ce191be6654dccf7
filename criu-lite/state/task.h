/* The per-process state shared by the dump and restore drivers and the
 * files that own each kind of state. */
#ifndef CR_TASK_H
#define CR_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>
#include <time.h>

#include "img/dumpid.h"
#include "img/kinds.h"
#include "img/msgs.h"
#include "os/arena.h"
#include "core.pb-c.h"
#include "files.pb-c.h"
#include "inventory.pb-c.h"
#include "os/inject.h"
#include "mm.pb-c.h"
#include "os/proc.h"
#include "pstree.pb-c.h"

struct dump_opts {
	const char *dir;
	bool leave_running;
	bool compress;
	bool shell_job;
	bool ext_unix_sk;              /* --ext-unix-sk: peers outside the tree are connected again by name */
	bool skip_in_flight;           /* --skip-in-flight: unaccepted connections, unread events dropped */
	bool tcp_established;          /* --tcp-established: established TCP connections are dumped (TCP_REPAIR) */
	bool network_lock_skip;        /* --network-lock skip: their traffic is not dropped while dumped */
	const char **ext_veth;         /* --external veth:NAME: NAME of each (net/netns.h) */
	size_t n_ext_veth;
	const char *sign_key;          /* --sign: the secret key file, or NULL */
	const char *encrypt_key;       /* --encrypt: the image key file, or NULL */
	bool page_server;              /* --page-server: the images go to address:port too */
	const char *ps_address;
	int ps_port;
	bool pre_dump;                 /* cr pre-dump: page data only, the tree runs on */
	const char *prev_dir;          /* --prev-images-dir: the round before, relative to dir */
};

/* The file descriptions of a dump, shared by all its processes. */
struct file_table {
	FileEntry **v;
	size_t n, cap;
};

struct dump_thread {
	pid_t tid;
	bool seized;
	struct injector inj;
	struct user_regs_struct regs;  /* as the freeze found them */
	struct proc_status status;
	ThreadCore *core;
};

struct dump_task {
	pid_t pid;
	pid_t ppid;                    /* parent in the tree, 0 for the root */
	bool zombie;
	bool vanished;                 /* exited and reaped during the freeze: left out */
	bool gone;                     /* pre-dump: exited (or exec'd) while its pages were copied: left out */
	bool was_stopped;              /* in a group stop when seized (or about to be: a SIGSTOP pending) */
	int stop_sig;                  /* the signal that stopped it, if was_stopped */
	bool stop_asked;               /* its parent (in the tree) was asked about the stop (stop.c) */
	bool stop_reported;            /* ... and had taken its report already */
	bool held;                     /* cr sent it SIGSTOP: SIGCONT on release */
	struct proc_status status;
	struct proc_stat stat;
	CttyEntry *ctty;               /* ctty.c: its terminal as it was before cr stopped it, or NULL */
	struct proc_vma_list vmas;
	uint64_t pidns, pidns_for_children;
	struct dump_thread *threads;   /* [0] is the main thread */
	size_t n_threads;
	struct injector *inj;          /* the main thread's */
	uint64_t scratch;              /* pages cr mapped in the task, 0 if none */
	uint64_t pages_copied;         /* pagedata.c: pages with bytes in its images */
	struct inject_batch batch;     /* syscalls waiting for one round trip */
	struct inject_batch asked;     /* the kinds' ask hooks: one round trip for all */
	/* The messages of each per-process image, written by the driver;
	 * core and mm are the single messages of CR_IMG_CORE and CR_IMG_MM. */
	struct img_msgs img[CR_IMG_N];
	CoreEntry *core;
	MmEntry *mm;
	/* cow.c: the pages, by address, the process still shares with its
	 * parent, copy-on-write: [start, end) runs, each in one VMA of each. */
	uint64_t (*in_parent)[2];
	size_t n_in_parent;
	/* track.c (pre-copy): [start, end) runs whose pages the round before
	 * holds unless they were written since, and those written since (or
	 * zero pages): they need bytes.  Both by address; malloc'd. */
	uint64_t (*tracked)[2];
	size_t n_tracked;
	uint64_t (*dirty)[2];
	size_t n_dirty;
};

/* An fd already recorded, for finding descriptions shared between
 * processes (kcmp). */
struct fd_seen {
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
	uint32_t file_id;
};

/* mem.c's page data buffers, kept across the processes of one run. */
struct page_bufs;
/* ns.c's plan: which process creates each namespace, and its fd. */
struct ns_plan;
/* shmem.c's objects, found in every process of the dump. */
struct shmem_dump;
struct shmem_restore;
/* locks.c's plan: the flock and OFD locks each process takes for others. */
struct locks_plan;
/* ctty.c's: what the restorer changed on its terminal. */
struct ctty_plan;
/* cow.c's plan for one process. */
struct cow_plan;
/* restore/chain.h */
struct chain;

struct cr_secret_key;

struct dump_ctx {
	const struct dump_opts *opts;
	int dirfd;
	struct cr_dump_id id;          /* in every image's header and the inventory */
	struct cr_secret_key *sign_key;   /* --sign, or NULL */
	struct arena arena;            /* every message of the images */
	struct timespec frozen_at;     /* CLOCK_MONOTONIC at the first interrupt of the tree */
	uint64_t frozen_ns;            /* pre-dump: how long the tree was frozen (0: it still is) */
	struct dump_task *tasks;       /* [0] is the root, parents before children */
	size_t n_tasks;
	/* The message images of the whole dump (pstree, files, ns, ...), written
	 * by the driver; kinds add their messages to theirs. */
	struct img_msgs img[CR_IMG_N];
	/* The kinds' own, kept across the processes of the tree. */
	struct file_table files;       /* files.img */
	struct fd_seen *seen;          /* files.c: every fd recorded so far */
	size_t n_seen, cap_seen;
	void *descs;                   /* files.c: every description, a tsearch tree */
	void *mapped;                  /* files.c: the entries of mapped files, a tsearch tree by path and flags */
	void *objects;                 /* fdshare.c: pipes, memfds, deleted files recorded, a tsearch tree */
	int kcmp_errno;                /* files.c: a kcmp that failed while searching it */
	struct page_bufs *page_bufs;   /* mem.c */
	struct shmem_dump *shmem;      /* shmem.c */
	struct tcp_repair *tcp_repair; /* inet_sk.c: connections held in repair mode until the dump ends */
	struct tracker *track;         /* track.c: write tracking of pre-copy rounds, or NULL */
	uint64_t pages_copied;         /* pagedata.c: pages with bytes in this round's images */
	uint64_t pages_in_prev;        /* ... and pages left to the round before */
	bool killed;                   /* the images are complete and the tree was killed */
	/* dump/guard.c: the records a guardian puts the tree back from. */
	struct dump_guard {
		int dirfd;             /* -1: none */
		char path[64];
		int pipe_wr;           /* its end closes when the dump ends, or dies */
		pid_t guardian;
		bool detached;         /* the guardian is not cr's child (guard_dir_open) */
	} guard;
};

struct restore_opts {
	const char *dir;
	bool detach;
	bool shell_job;
	bool new_pidns;                /* restore inside a fresh pid namespace */
	const char *cgroup_root;       /* cgroups go below this (--cgroup-root), or NULL */
	const char *verify_key;        /* --verify: the public key file, or NULL */
	const char *decrypt_key;       /* --decrypt: the image key file, or NULL */
	const char **ext_veth;         /* --external veth:NAME=HOSTNAME: NAME=HOSTNAME of each */
	size_t n_ext_veth;
	const char *join_net;          /* --join-ns net:PATH: the tree goes into that namespace, or NULL */
	bool tcp_close;                /* --tcp-close: established TCP comes back closed */
	bool lock_only;                /* cr unlock: the dump's own images only, not the pre-copy
	                                  rounds before it (a dump sent to a page server, kept
	                                  here without them) */
};

struct restore_thread {
	pid_t tid;                     /* as the restorer sees it */
	const ThreadCore *core;
	struct injector inj;
};

struct restore_task {
	pid_t pid;                     /* in the dump (outermost level): names its images */
	pid_t host_pid;                /* as the restorer sees it, once known */
	const PstreeEntry *pstree;
	size_t level_base;             /* pid levels above this one are not restored */
	struct restore_task *parent;
	struct restore_task **children;
	size_t n_children;
	bool zombie;
	bool tty_session;              /* ctty.c: joins cr's session, the terminal's, instead of leading one */
	bool seized;                   /* its main thread was seized (and interrupted) when it reported ready */
	uint8_t transplanter;          /* 0: the restorer's, 1: the second transplanter's (restore/second.c) */
	/* Every per-process image, loaded and verified; the fields below are
	 * typed views of the ones the kinds share. */
	struct img_msgs img[CR_IMG_N];
	CoreEntry *core;
	MmEntry *mm;
	PagemapEntry **pagemap;
	size_t n_pagemap;
	FdEntry **fds;
	size_t n_fds;
	struct restore_thread *threads;   /* [0] is the main thread */
	size_t n_threads;
	struct injector *inj;          /* the main thread's */
	/* fds the child keeps for the restorer, in a block no dumped fd of
	 * the tree uses (the same in every process, fdroom.h): + RESERVED_SYNC,
	 * + RESERVED_TTY, + RESERVED_DIR, + RESERVED_EXE, then one per file that a VMA maps
	 * (vma_fd), then the stash, up to reserved_end. */
	int reserved_base;
	int reserved_end;
	int n_reserved;
	int *vma_fd;                   /* per VMA: its slot (fd - reserved_base), -1 if none */
	uint64_t tramp;                /* the trampoline page in the child */
	uint64_t tramp_size;
	uint64_t tramp_filters;        /* offset of its seccomp filter area (tramp.c) */
	uint64_t tramp_locks;          /* offset of its struct flocks (locks.c), before the filters */
	uint8_t *vma_has_pages;        /* per VMA: pages come from the image */
	int stash_top;                 /* kinds keep extra fds at or above this, above every dumped fd */
	struct inject_batch batch;     /* syscalls waiting for one round trip */
	struct cow_plan *cow;          /* cow.c: where its cow VMAs are built, NULL if it has none */
};

#define RESERVED_SYNC 0
#define RESERVED_TTY  1
#define RESERVED_DIR  2   /* the image directory, for what a process reads itself */
#define RESERVED_EXE  3
#define RESERVED_MAPS 4

/* Whether fd is one of cr's in a restored process: its block or aside. */
static inline bool restore_fd_is_crs(const struct restore_task *t, int fd)
{
	return (fd >= t->reserved_base && fd < t->reserved_end) || fd >= t->stash_top;
}

struct restore_ctx {
	const struct restore_opts *opts;
	int dirfd;
	struct page_bufs *page_bufs;
	/* The images of the whole dump, loaded and verified (inventory,
	 * pstree, files); files is a typed view of CR_IMG_FILES. */
	struct img_msgs img[CR_IMG_N];
	/* Every loaded message, the whole dump's and each process's: shared
	 * and read-only (os/arena.h), so that a fork copies none of it. */
	struct arena images;
	const InventoryEntry *inv;
	bool same_boot;                /* the dump was made on this boot (inventory's boot_id) */
	FileEntry **files;             /* indexed by id (ids are 1..n_files) */
	size_t n_files;
	struct restore_task *tasks;    /* parents before children; [0] is the root */
	size_t n_tasks;
	struct proc_vma_list cr_layout;   /* the restorer's mappings, inherited by every process it creates */
	pid_t restorer_pgid;
	int reserved_base;             /* where cr's block of fds starts (fdroom.h) */
	int stash_base;                /* descriptions opened for inheritance sit here */
	int n_stash;                   /* stash slots the kinds reserved in their plan */
	int n_aside;                   /* fds the kinds may keep aside at most (files_stash_fd) */
	int files_slot0;               /* files.c's first stash slot */
	struct restore_task **file_lca;   /* per file id: the process that opens it */
	int *file_slot;                /* per file id: its stash slot, -1 if it is opened by its holder */
	int *opened;                   /* per file id: its fd in the stash (or, in its holder, at its number), -1 if none */
	uint32_t *file_first;          /* per file id: the first entry of its object, 0 until asked (fdshare.c) */
	/* Per process (by index), the ids of the files it opens into the
	 * stash: opener_ids[opener_first[i] .. opener_first[i + 1]). */
	size_t *opener_first;
	uint32_t *opener_ids;
	struct ns_plan *ns;            /* ns.c */
	struct shmem_restore *shmem;   /* shmem.c */
	struct locks_plan *locks;      /* locks.c */
	struct ctty_plan *ctty;        /* ctty.c */
	struct cwd_plan *cwd;          /* attrs.c: removed working directories several processes share */
	/* cow.c: the two address ranges, held PROT_NONE in every process of
	 * the tree, where processes at even and odd depths build their cow
	 * VMAs; len 0 when no process has one. */
	uint64_t cow_window[2][2];
	struct chain *chain;           /* restore/chain.h: the rounds before the dump, or NULL */
};

/* In a kind's plan: n more slots of the stash, where what a process opens
 * or creates for its descendants to inherit is kept; returns the first,
 * whose fd is then ctx->stash_base + that (stash_base is known once every
 * kind has planned). */
static inline int restore_stash_reserve(struct restore_ctx *ctx, int n)
{
	int first = ctx->n_stash;

	ctx->n_stash += n;
	return first;
}

/* Where injected syscalls of the dump put their results, in the scratch
 * page cr maps in the task (and unmaps before it lets go). */
#define SCRATCH_SIZE        20480
#define SCRATCH_BATCH       16384  /* the batch loop (inject.h), on a page of its own */
#define SCRATCH_PROG        8192   /* batch calls */
#define SCRATCH_PROG_SIZE   8192
#define SCRATCH_SIGACTIONS  0      /* 65 x 32 bytes */
#define SCRATCH_ALTSTACK    4096
#define SCRATCH_ITIMERS     4160   /* 3 x struct itimerval */
#define SCRATCH_TID_ADDRESS 4352
#define SCRATCH_PDEATHSIG   4608
#define SCRATCH_SUBREAPER   4672   /* PR_GET_CHILD_SUBREAPER's int */
#define SCRATCH_STOP_REPORT 4736   /* waitid's siginfo (stop.c) */
#define SCRATCH_TSC         4864   /* PR_GET_TSC's int */
#define SCRATCH_MEMPOLICY   4928   /* get_mempolicy's mode of a thread (mempolicy.c) */
#define SCRATCH_MEMPOLICY_VMAS 5120 /* one mode per mapping, up to SCRATCH_PROG */

/* The restore trampoline: code first, then argument space. */
#define TRAMP_CODE      0
#define TRAMP_MM_MAP    64
#define TRAMP_AUXV      256
#define TRAMP_AUXV_MAX  1024
#define TRAMP_SCHED_ATTR 1280  /* a struct sched_attr (56 bytes) */
#define TRAMP_AFFINITY  1344   /* a CPU mask, CR_CPUS_MAX bits */
#define TRAMP_ALTSTACK  1536
#define TRAMP_TTY_PGRP  1568   /* a pid_t: the foreground group TIOCSPGRP sets (ctty.c) */
#define TRAMP_ITIMER    1600   /* one struct itimerval (32 bytes) per timer, 3 */
#define TRAMP_NOFILE    1696   /* a struct rlimit (16 bytes) */
#define TRAMP_COMM      1728   /* a thread's name, 16 bytes */
#define TRAMP_BATCH     1792   /* the batch loop (inject.h) */
#define TRAMP_CAPS      2048   /* capset's header and two data sets, 56 bytes */
#define TRAMP_GROUPS    2112   /* then, from t->tramp_filters, seccomp filters */
#define TRAMP_PROG_SIZE 16384  /* batch calls, at the end of the trampoline */

/* Runs t->batch in the task through inj (any of its threads). */
static inline int restore_batch_run(struct restore_task *t, struct injector *inj, cr_error_t *err)
{
	return inject_batch_run(inj, t->tramp + TRAMP_BATCH, t->tramp + t->tramp_size - TRAMP_PROG_SIZE,
				TRAMP_PROG_SIZE, &t->batch, err);
}

/* Runs the kinds' asked calls in the dumped task's main thread; their
 * answers stay in t->asked until the next is asked. */
static inline int dump_asked_run(struct dump_task *t, cr_error_t *err)
{
	return inject_batch_run(t->inj, t->scratch + SCRATCH_BATCH, t->scratch + SCRATCH_PROG, SCRATCH_PROG_SIZE,
				&t->asked, err);
}

/* Runs t->batch in the dumped task through inj (any of its threads). */
static inline int dump_batch_run(struct dump_task *t, struct injector *inj, cr_error_t *err)
{
	return inject_batch_run(inj, t->scratch + SCRATCH_BATCH, t->scratch + SCRATCH_PROG, SCRATCH_PROG_SIZE,
				&t->batch, err);
}

#endif
