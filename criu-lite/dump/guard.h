/* What a dump must leave behind so that a killed dump costs nothing.
 *
 * The tracer can die at any moment (SIGKILL of `cr dump`'s process group,
 * or of its worker).  So every process of the tree is held in a group stop
 * (SIGSTOP) before cr changes anything in it: the kernel keeps a tracee in
 * a group stop stopped when its tracer dies.  And before any injection,
 * what it would have to put back is written to a record, one file per
 * process in a directory of /run/cr/guard (0700, files 0600):
 *
 *   - the pid and its start time (a pid reused since is left alone);
 *   - whether cr stopped it (then it is continued) or it was stopped;
 *   - once injection begins: each thread's registers and signal mask as
 *     they were, the syscall instruction cr uses and the address of the
 *     scratch pages (chosen before they are mapped).
 *
 * A guardian process, started in a session of its own (a process-group
 * kill misses it), waits for the dump's end; when the dump died with
 * records left, it puts each held process back from its record
 * (dump/guardian.c).  A dump that ends normally removes each record once
 * its process is released or killed, and the directory last. */
#ifndef CR_DUMP_GUARD_H
#define CR_DUMP_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "os/error.h"
#include "state/task.h"

#define GUARD_ROOT "/run/cr/guard"
#define GUARD_MAGIC 0x64726167u   /* "gard" */
#define GUARD_VERSION 3u

enum {
	GUARD_CONTINUE = 1u << 0, /* cr stopped it: SIGCONT when put back */
	GUARD_INJECTED = 1u << 1, /* registers, masks, scratch recorded */
};

struct guard_head {
	uint32_t magic, version;
	int32_t pid;
	uint32_t flags;
	uint64_t start_time;      /* /proc/PID/stat field 22 */
	uint64_t syscall_ip;      /* a `syscall` instruction in the process */
	uint64_t scratch;         /* cr's scratch pages (SCRATCH_SIZE), 0 if none */
	uint32_t n_threads;
	uint32_t pad;
};

struct guard_thread {
	int32_t tid;
	uint32_t pad;
	uint64_t sigmask;
	struct user_regs_struct regs;
};

/* Creates the record directory and starts the guardian. */
int guard_open(struct dump_ctx *ctx, cr_error_t *err);
/* Removes the (empty) directory and lets the guardian go. */
void guard_close(struct dump_ctx *ctx);
/* The same for what (a directory GUARD_ROOT/WHAT-PID.XXXXXX): "dump", or
 * "restore" (the tables a restore makes in a namespace it joins, whose
 * guardian is not the restorer's child: processes forked since may hold
 * its pipe until they end, and it then finds no records). */
int guard_dir_open(struct dump_guard *g, const char *what, cr_error_t *err);
void guard_dir_close(struct dump_guard *g);

/* The process is about to be held (t->held: cr stops it, so continue it
 * when putting it back).  t->stat.start_time must be read. */
int guard_note_held(struct dump_ctx *ctx, const struct dump_task *t, cr_error_t *err);
/* Injection is about to begin: each thread's injector is prepared
 * (inject_prepare), scratch is where the pages will go. */
int guard_note_injection(struct dump_ctx *ctx, const struct dump_task *t, uint64_t scratch, cr_error_t *err);
/* Registers and memory are back: only the continue is left. */
int guard_note_released(struct dump_ctx *ctx, const struct dump_task *t, cr_error_t *err);
/* Nothing is left to do for the process. */
void guard_forget(struct dump_ctx *ctx, const struct dump_task *t);

/* A connection cr is about to lock (fd/tcp_stream.c): its traffic dropped
 * by the nftables table inet TABLE, then its socket (fd FD of the process)
 * in repair mode.  A record "tcp-INODE" says so before either happens; a
 * guardian of a dump that died before it was complete takes the socket
 * out of repair mode (SO_REUSEADDR as it was) and deletes the table; of a
 * complete one it leaves both, for the restore.  The table is in the
 * connection's network namespace (the process's, inode NETNS_INO), found
 * through the process, or under /run/netns if it went; gone with it if
 * nothing holds that namespace any more. */
#define GUARD_TCP_PREFIX "tcp-"
struct guard_tcp {
	uint32_t magic, version;
	int32_t pid, fd;
	uint64_t start_time;
	int32_t reuse;
	uint32_t ino;
	char table[32];
	uint64_t netns_ino;   /* the network namespace the table is in (the process's) */
	char netns_path[128]; /* a path to it, tried first ("": none; a restore's joined namespace) */
};
int guard_note_tcp_lock(struct dump_ctx *ctx, const struct guard_tcp *rec, cr_error_t *err);
/* The connection is out of cr's hands (unlocked, or its tree killed). */
void guard_forget_tcp(struct dump_ctx *ctx, uint32_t ino);
/* The same in the records of g (pid 0: no socket, only the table). */
int guard_dir_note_tcp(struct dump_guard *g, const struct guard_tcp *rec, cr_error_t *err);
void guard_dir_forget_tcp(struct dump_guard *g, uint32_t ino);

/* The images are complete and the tree is about to be killed: from now on
 * a guardian finishes the kill instead of putting processes back. */
#define GUARD_COMPLETE "complete"
void guard_note_complete(struct dump_ctx *ctx);

/* Forks the guardian (dump/guardian.c) of the records at path, in a
 * session of its own; it waits until *pipe_wr, which only the caller
 * holds, is closed (by the end of the dump or its death).  detach: it is
 * not the caller's child (a restore, which waits for its children). */
pid_t guardian_spawn(const char *path, int *pipe_wr, bool detach, cr_error_t *err);

/* Puts back every process recorded in the directory at path, then
 * removes the records and the directory; -1 if another holds it (and
 * wait is false).  One at a time: the directory is locked (flock). */
int guard_recover(const char *path, bool wait);
/* Recovers what dumps that died with their guardian left (the next
 * `cr dump` calls this). */
void guard_recover_stale(void);

#endif
