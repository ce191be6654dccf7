/* The steps of a dump, each in a file of its own:
 *   freeze.c   seize every thread of the tree; let it go again, or kill it
 *   collect.c  what each process holds, through the table of state kinds
 *   images.c   the image directory and everything written into it */
#ifndef CR_DUMP_STEPS_H
#define CR_DUMP_STEPS_H

#include "os/error.h"
#include "state/task.h"

struct tracker;

/* Refuses a pid that is not there, or is cr itself. */
int dump_check_root(pid_t pid, cr_error_t *err);
/* Frees what a dump (or pre-dump) held. */
void dump_free_ctx(struct dump_ctx *ctx);
/* Before anything is frozen: pid is there, the image directory opened, the
 * page server connected (--page-server: *sock), the guardian started, and
 * the write tracking of earlier rounds taken (dump_track_begin). */
int dump_prepare(struct dump_ctx *ctx, pid_t pid, int *sock, struct tracker *tr, cr_error_t *err);
/* --page-server: the finished image directory goes to the server while the
 * tree is still held (a transfer that fails leaves it running). */
int dump_send_images(struct dump_ctx *ctx, int sock, cr_error_t *err);
/* Before the freeze: the write tracking of the tree of root from a round
 * before, if a keeper holds it (ctx->track = tr); with --prev-images-dir,
 * the pages unchanged since are left to that round (predump.c). */
int dump_track_begin(struct dump_ctx *ctx, pid_t root, struct tracker *tr, cr_error_t *err);

/* Seizes every thread of every process of the tree rooted at root (which
 * becomes ctx->tasks[0]), again and again until a whole pass finds nothing
 * new: a frozen task cannot fork any more.  threads[0] is each process's
 * main thread. */
int freeze_tree(struct dump_ctx *ctx, pid_t root, cr_error_t *err);
/* Puts every task back as it was: registers, signal mask, running (or
 * stopped, if it was). */
void release_tree(struct dump_ctx *ctx);
/* Kills the tree and waits until its pids are free again. */
void kill_tree(struct dump_ctx *ctx, uint64_t *frozen_ns /* NULL: not wanted */);
/* Nanoseconds since the tree's first interrupt (freeze_tree). */
uint64_t dump_frozen_ns(const struct dump_ctx *ctx);
/* Whether a SIGSTOP is pending for thread i of t: its own, or (for the
 * main thread, which cr lets take it) the process's. */
int dump_sigstop_pending(const struct dump_task *t, size_t i, bool *pending, cr_error_t *err);
/* The process of the tree with that pid, or NULL. */
struct dump_task *dump_find_task(struct dump_ctx *ctx, pid_t pid);

/* Collects the state of every process, then checks the whole tree. */
int collect_tree(struct dump_ctx *ctx, cr_error_t *err);
/* Pre-dump: only each process's layout, and its write tracking armed. */
int collect_tree_layout(struct dump_ctx *ctx, cr_error_t *err);
/* Takes out of the parent's queue the SIGCHLD that cr's stop of its child
 * sent it, before the tree is let go (release_tree). */
void collect_drop_hold_sigchld(struct dump_ctx *ctx, struct dump_task *t);

/* Creates (0700) or opens the image directory, which must hold no dump
 * and must not be a symlink (img/dir.h), into ctx->dirfd; binds a fresh
 * dump id to it (img/dumpid.h) and loads the --sign key, if any. */
int open_image_dir(struct dump_ctx *ctx, cr_error_t *err);
/* Undoes open_image_dir. */
void close_image_dir(struct dump_ctx *ctx);
/* Resident memory of pid from /proc/PID/statm (anon_only: its anonymous
 * part, what its page image will roughly hold), 0 if unreadable. */
uint64_t dump_resident_bytes(pid_t pid, bool anon_only);
/* Writes every image, the inventory last and everything durable. */
int write_images(struct dump_ctx *ctx, cr_error_t *err);
/* Pre-dump: each process's page data, then the inventory. */
int write_predump_images(struct dump_ctx *ctx, cr_error_t *err);

#endif
