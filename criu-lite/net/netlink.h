/* Netlink in another network namespace, for net/netns_*.c.
 *
 * A netlink socket belongs to the namespace it was created in, whatever
 * namespace its user moves to: cr enters a namespace (with this thread
 * only: setns of a network namespace is per thread), makes the sockets it
 * needs, reads what only a process inside can read (/proc/sys/net), and
 * goes back at once. */
#ifndef CR_NET_NETLINK_H
#define CR_NET_NETLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "os/error.h"

void crnl_sock_freep(struct nl_sock **sk);
#define cleanup_nl_sock __attribute__((cleanup(crnl_sock_freep)))

/* This thread into the network namespace of fd (or of /proc/PID/ns/net with
 * pid > 0); *back keeps the one it was in, for netns_leave. */
int netns_enter_fd(int fd, int *back, cr_error_t *err);
int netns_enter_pid(pid_t pid, int *back, cr_error_t *err);
/* Back to *back, which it closes.  A failure would leave cr in the wrong
 * namespace: it is reported, and cr aborts. */
void netns_leave(int *back);
/* A socket (socket(2)'s arguments) made in the network namespace of
 * netns_fd (-1: cr's own) or of pid (> 0): it stays in that namespace. */
int netns_socket_fd(int netns_fd, int domain, int type, int protocol, cr_error_t *err);
int netns_socket_pid(pid_t pid, int domain, int type, int protocol, cr_error_t *err);

/* A connected netlink socket of protocol (NETLINK_ROUTE, ...) in the
 * current namespace, acks on. */
int crnl_open(int protocol, struct nl_sock **out, cr_error_t *err);

typedef int (*crnl_each_fn)(struct nlmsghdr *h, void *arg);

/* Sends msg (a request: NLM_F_ACK is added) and waits for its ack; the
 * kernel's error is returned as a negative errno in *kerr (0: done). */
int crnl_request(struct nl_sock *sk, struct nl_msg *msg, int *kerr, cr_error_t *err);

/* The same, fn getting each answer before the ack (RTM_GETNSID, ...). */
int crnl_ask(struct nl_sock *sk, struct nl_msg *msg, crnl_each_fn fn, void *arg, int *kerr, cr_error_t *err);

/* A dump request of type with the header hdr (len bytes); fn gets every
 * message of the answer, and returns 0, or -1 with the error (its
 * own: fn holds the cr_error_t) that ends the dump. */
int crnl_dump(struct nl_sock *sk, int type, const void *hdr, size_t len, crnl_each_fn fn, void *arg, cr_error_t *err);

#endif
