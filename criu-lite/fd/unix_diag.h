/* The netlink conversation with sock_diag (NETLINK_SOCK_DIAG, unix_diag)
 * that describes a unix socket, through libnl. */
#ifndef CR_UNIX_DIAG_H
#define CR_UNIX_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include "os/error.h"

/* Connections not accepted yet that one lookup reports by inode. */
#define UNIX_DIAG_ICONS_MAX 256

struct unix_diag {
	uint32_t ino;
	uint8_t type;                  /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state;                 /* TCP_ESTABLISHED, TCP_CLOSE, TCP_LISTEN */
	uint8_t name[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t name_len;               /* 0: not bound */
	bool has_vfs;
	uint32_t vfs_ino;              /* the socket file of a path name */
	bool has_peer;
	uint32_t peer;                 /* 0: the peer was closed */
	uint32_t rqueue;               /* listening: connections not accepted; else bytes queued */
	uint32_t wqueue;               /* listening: the backlog; else what the kernel charges for the
					* writes not read yet (sk_wmem_alloc: each one's skb truesize) */
	uint32_t sndbuf;               /* SO_SNDBUF (0: not reported) */
	uint8_t shutdown;              /* RCV_SHUTDOWN 1 | SEND_SHUTDOWN 2 */
	uint32_t n_icons;              /* listening: connections not accepted */
	uint32_t icons[UNIX_DIAG_ICONS_MAX];   /* their clients' inodes (0: closed), in accept order */
};

/* From now on lookups search the network namespace of pid too (cr's own
 * always, first). */
int unix_diag_add_ns(pid_t pid, cr_error_t *err);

/* Asks for the unix socket with inode ino in the namespaces searched: 1
 * and *out when there is one, 0 when ino is not a unix socket there. */
int unix_diag_lookup(uint32_t ino, struct unix_diag *out, cr_error_t *err);

/* The listening socket in the namespaces searched whose queue holds a
 * connection of client not accepted yet: 1 and *listener, or 0.  (Such a
 * client's peer is the kernel's socket in that queue, which has no inode:
 * sock_diag reports peer 0, as for a closed peer.) */
int unix_diag_listener_of(uint32_t client, uint32_t *listener, cr_error_t *err);

#endif
