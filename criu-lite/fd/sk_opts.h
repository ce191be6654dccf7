/* Socket options of inet and netlink sockets (fd/inet_sk.c,
 * fd/netlink_sk.c): one table of the options cr reads at dump (getsockopt
 * on cr's duplicate of the dumped socket, pidfd_getfd) and sets again at
 * restore.  An option is kept when its value differs from that of a new
 * socket of the same family, type and protocol: what the program (or the
 * kernel's later work) changed. */
#ifndef CR_SK_OPTS_H
#define CR_SK_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fd/fdkind.h"
#include "os/arena.h"
#include "os/error.h"
#include "inet.pb-c.h"

struct sk_opts {
	SkOpt **v;
	size_t n;
};

/* The options of fd (a socket of family, type, protocol) that differ from
 * a new one's, into *out (arena memory); connected: without those the
 * kernel sets on a connection (the MSS, the window clamp). */
int sk_opts_dump(struct arena *a, int fd, int family, int type, int protocol, bool connected, struct sk_opts *out,
		 cr_error_t *err);

/* Restore validation: every option is one of the table's, by name, level
 * and number. */
int sk_opts_validate(SkOpt *const *opts, size_t n, cr_error_t *err);

/* Sets each option on fd, in the table's order, except skip (NULL: none). */
int sk_opts_apply(int fd, SkOpt *const *opts, size_t n, const char *skip, cr_error_t *err);

/* The value of option name among opts, or dflt when it is not there. */
int64_t sk_opts_value(SkOpt *const *opts, size_t n, const char *name, int64_t dflt);

/* Refuses (naming what) a socket with a BPF filter (SO_ATTACH_FILTER,
 * SO_ATTACH_BPF): cr cannot read an eBPF one back, nor is it kept. */
int sk_opts_check_filter(int fd, cr_error_t *err);

/* Dump: refuses (naming me) a socket fd (cr's duplicate) of another
 * network namespace than that of pid, which holds it: the restore makes a
 * socket in its process's namespace, and what cr reads of a socket's
 * namespace (sock_diag, /proc/PID/net) is read in the process's. */
int sk_check_netns(pid_t pid, int fd, const char *me, cr_error_t *err);

/* Dump: refuses (naming me) a socket whose description has open flags
 * other than O_NONBLOCK (O_APPEND, ... set with F_SETFL). */
int sk_check_flags(const FileEntry *fe, const char *me, cr_error_t *err);

/* The protocol name the kernel gives the socket of a probed fd ("TCP",
 * "UDPv6", "NETLINK", "RAW", ...: the xattr system.sockprotoname), or ""
 * when it does not say. */
void sk_proto_name(const struct fd_probe *p, char *out, size_t size);
/* Whether p is a socket of one of names (NULL-terminated). */
bool sk_proto_is(const struct fd_probe *p, const char *const *names);

#endif
