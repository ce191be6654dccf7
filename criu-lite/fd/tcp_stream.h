/* Established TCP connections (cr dump --tcp-established), through
 * TCP_REPAIR, for fd/inet_sk.c.
 *
 * Dump: the connection's traffic is dropped first, by an nftables table of
 * its own (both directions, input and output) in the network namespace of
 * its process (cr's, or the tree's own, where its packets go; the ruleset
 * a dump records of that namespace leaves it out), then the socket is put in
 * repair mode on cr's duplicate, which freezes it: sequence numbers, the
 * data received and not read, the data sent and not acknowledged, the
 * options agreed at the handshake (MSS, window scales, SACK, timestamps),
 * the timestamp clock and the windows are read.  When the dump ends the
 * duplicate is closed: a killed tree's socket, still in repair mode, goes
 * without a FIN or a reset, and the table stays, so the peer's packets
 * meet no closed port; a tree that runs on (--leave-running, a failed
 * dump) gets its socket out of repair mode and the table is deleted.
 *
 * Restore: the socket is made in repair mode, given its sequence numbers,
 * bound, connected (no handshake in repair mode), given its options,
 * windows and queues, and let out of repair mode; once every process runs
 * the tables are deleted (restored hook) and traffic flows again.  A
 * namespace the restore makes or joins gets the tables first, from before
 * it can take a packet of theirs.  A restore that fails keeps the dump's,
 * for the next try, and deletes those it made in a joined namespace. */
#ifndef CR_TCP_STREAM_H
#define CR_TCP_STREAM_H

#include "fd/inet_diag.h"
#include "os/error.h"
#include "state/task.h"

/* Dump: e->tcp and e->nft_table of the established connection d, whose
 * socket cr's fd dup is (kept open in ctx until the dump ends). */
int tcp_stream_dump(struct dump_ctx *ctx, const struct dump_task *t, int fd, int dup, const struct inet_diag_sk *d,
		    InetSkEntry *e, cr_error_t *err);
void tcp_stream_release(struct dump_ctx *ctx);
/* For a guardian (dump/guardian.c) of a dump or restore that died: fd of
 * pid out of repair mode, SO_REUSEADDR as it was; the table deleted in the
 * network namespace of inode netns_ino (at path if it is there, else cr's,
 * pid's, one bound by name anywhere, or one a process is in). */
void tcp_stream_unrepair(pid_t pid, int fd, int reuse);
void tcp_stream_unlock(pid_t pid, uint64_t netns_ino, const char *path, const char *table);

/* cr unlock: the dump's tables deleted, in cr's namespace or in the dumped
 * one if it is still there (bound by name anywhere, or a process's, on this
 * boot); *deleted says
 * how many were there. */
int tcp_stream_unlock_dump(const struct restore_ctx *ctx, size_t *deleted, cr_error_t *err);

/* Restore validation of e->tcp. */
int tcp_stream_validate(const InetSkEntry *e, cr_error_t *err);
/* Before the bind: repair mode, sequence numbers, timestamp clock. */
int tcp_stream_prepare(int fd, const InetSkEntry *e, cr_error_t *err);
/* After the connect: options, windows, queues; still in repair mode. */
int tcp_stream_finish(int fd, const InetSkEntry *e, cr_error_t *err);
/* The connections of network namespace net (ns.img id) locked in the
 * namespace of netns (-1: the caller's), from before it can take their
 * packets: a namespace the restore makes (before its links), or one it
 * joins (--join-ns; by the restorer, which deletes them if the restore
 * fails: tcp_stream_lock_forget, or its guardian if cr dies).  In a joined namespace the dump's table
 * may be there already (a restore where the dump was): it is kept. */
int tcp_stream_lock_ns(const struct restore_ctx *ctx, uint32_t net, int netns, bool joined, cr_error_t *err);
void tcp_stream_lock_forget(const struct restore_ctx *ctx);
/* The restorer, once every process is restored and none runs: the
 * tables are deleted, each in its connection's namespace (cr's, the
 * restored or the joined one), and in the dumped namespace too if it is
 * still there (bound by name, or a process's); then every connection leaves repair
 * mode, so that the window probe the kernel sends then reaches the peer
 * (whose retransmissions the lock dropped: without it, the peer waits
 * out its backoff, seconds after a long freeze). */
int tcp_stream_ready(const struct restore_ctx *ctx, cr_error_t *err);
/* Once the restored tree runs: the locks' tables deleted (that takes an
 * RCU grace period each), where the connections are now and, on the same
 * boot, where they were dumped. */
void tcp_stream_released(const struct restore_ctx *ctx);
/* A restore that fails after tcp_stream_ready: the opened locks closed
 * again (before the restored processes are killed), for the next try. */
void tcp_stream_relock(void);

#endif
