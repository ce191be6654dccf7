/* Established TCP connections (cr dump --tcp-established), through
 * TCP_REPAIR, for fd/inet_sk.c.
 *
 * Dump: the connection's traffic is dropped first, by an nftables table of
 * its own (both directions, input and output), then the socket is put in
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
 * restore that fails keeps them, for the next try. */
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
/* For a guardian (dump/guardian.c) of a dump that died: fd of pid out of
 * repair mode, SO_REUSEADDR as it was; the table deleted. */
void tcp_stream_unrepair(pid_t pid, int fd, int reuse);
void tcp_stream_unlock(const char *table);

/* Restore validation of e->tcp. */
int tcp_stream_validate(const InetSkEntry *e, cr_error_t *err);
/* Before the bind: repair mode, sequence numbers, timestamp clock. */
int tcp_stream_prepare(int fd, const InetSkEntry *e, cr_error_t *err);
/* After the connect: options, windows, queues, out of repair mode. */
int tcp_stream_finish(int fd, const InetSkEntry *e, cr_error_t *err);
/* The restorer, once every process runs: the tables are deleted. */
void tcp_stream_unblock(const struct restore_ctx *ctx);

#endif
