/* The datagrams queued unread on a UDP socket (fd/inet_sk.c).
 *
 * Dump: each is peeked in turn (SO_PEEK_OFF, put back as it was), with its
 * sender's address: nothing is consumed.  Restore: each is sent again to
 * the restored socket, oldest first, from its sender's address and port,
 * through a raw socket that writes the IP header itself (IP_HDRINCL, or
 * IPPROTO_RAW over IPv6), so the sender need not exist or may hold its
 * port.  The program sees the same bytes from the same address.
 *
 * What a datagram sent again would not keep makes the dump drop them with
 * a warning saying how many, as before: a socket that asks for each
 * datagram's destination, TTL, TOS, hop limit, traffic class or arrival
 * time (IP_PKTINFO, IP_RECVTTL, SO_TIMESTAMP, ...), a queue larger than
 * FDKIND_MAX_DATA. */
#ifndef CR_UDP_QUEUE_H
#define CR_UDP_QUEUE_H

#include "fd/inet_diag.h"
#include "fd/sk_opts.h"
#include "os/error.h"
#include "state/task.h"

/* Dump: e->queue from cr's duplicate fd (opts: the socket's options, as
 * dumped), or e->dropped with a warning naming me. */
int udp_queue_dump(struct dump_ctx *ctx, int fd, const struct inet_diag_sk *d, const struct sk_opts *opts,
		   const char *me, InetSkEntry *e, cr_error_t *err);

/* Restore validation of e->queue. */
int udp_queue_validate(const InetSkEntry *e, cr_error_t *err);

/* Restore: e->queue sent again to fd, bound (and connected) as dumped;
 * returns once every datagram is in its queue. */
int udp_queue_restore(int fd, const InetSkEntry *e, cr_error_t *err);

#endif
