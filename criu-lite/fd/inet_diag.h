/* What sock_diag (NETLINK_SOCK_DIAG) says about one inet or netlink
 * socket, found by inode in the network namespace of the process that
 * holds it.  The conversation is plain netlink into buffers of its own,
 * on a socket made in that namespace (net/netlink.h: netns_socket_pid). */
#ifndef CR_INET_DIAG_H
#define CR_INET_DIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "os/error.h"

struct inet_diag_sk {
	uint32_t ino;
	uint8_t family;       /* AF_INET, AF_INET6 */
	uint8_t protocol;     /* IPPROTO_TCP, IPPROTO_UDP */
	uint8_t state;        /* TCP_LISTEN, TCP_CLOSE, ... (a connected UDP socket: TCP_ESTABLISHED) */
	uint8_t src[16], dst[16];   /* network order; IPv4 in the first 4 bytes */
	uint16_t sport, dport;      /* host order */
	uint32_t ifindex;     /* SO_BINDTODEVICE's device, 0 for none */
	uint32_t rqueue;      /* listening: connections not accepted; else bytes queued */
	uint32_t wqueue;      /* listening: the backlog; else bytes not yet sent */
	uint32_t half_open;   /* listening: connections being made to it (SYN_RECV), up to 256 counted */
	bool md5;             /* has TCP MD5 signature keys (TCP_MD5SIG) */
};

/* The socket of family (AF_INET, AF_INET6) and protocol (IPPROTO_TCP,
 * IPPROTO_UDP) with inode ino in the network namespace of pid: 1 and
 * *out, or 0 when there is none.  The sockets of a namespace are read
 * once (a dump's tree is frozen), until forgotten. */
int inet_diag_lookup(pid_t pid, uint32_t ino, int family, int protocol, struct inet_diag_sk *out, cr_error_t *err);
void inet_diag_forget(void);
/* The IPv4 TCP sockets of pid's namespace read by a thread of their own
 * from now (each read walks the kernel's whole table: ms), for the
 * lookups. */
void inet_diag_prefetch(pid_t pid);

#define NETLINK_DIAG_GROUP_WORDS 32   /* 1024 groups */

struct netlink_diag_sk {
	uint32_t ino;
	uint8_t protocol;     /* NETLINK_ROUTE, ... */
	uint8_t type;         /* SOCK_RAW, SOCK_DGRAM */
	uint8_t state;        /* 0 unconnected, 1 connected */
	uint32_t flags;       /* NDIAG_FLAG_* (a dump running, ...) */
	uint32_t portid;      /* 0: not bound */
	uint32_t dst_portid, dst_group;
	uint32_t groups[NETLINK_DIAG_GROUP_WORDS];   /* bit g-1 of the bitmap: group g */
	uint32_t rmem;        /* bytes held by queued messages */
};

/* The netlink socket with inode ino in the network namespace of pid: 1
 * and *out, or 0 when there is none. */
int netlink_diag_lookup(pid_t pid, uint32_t ino, struct netlink_diag_sk *out, cr_error_t *err);

#endif
