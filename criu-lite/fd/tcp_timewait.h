/* A restored TCP listener's port held by nothing but connections in
 * TIME_WAIT: the dumped server closed them itself, and a socket without
 * SO_REUSEADDR leaves TIME_WAIT entries that refuse every later bind of
 * that port, SO_REUSEADDR or not, for a minute.  They are the dumped
 * process's own past connections: the restore ends them (sock_diag
 * SOCK_DESTROY, as `ss -K` does) so that the server can have its port
 * again, and only when no socket in another state uses the port. */
#ifndef CR_FD_TCP_TIMEWAIT_H
#define CR_FD_TCP_TIMEWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "os/error.h"

/* In the caller's network namespace: the TIME_WAIT connections of local
 * port `port` (IPv4 and IPv6) ended, their number in *n; *n is 0, and
 * nothing is ended, when a socket in any other state uses the port. */
int tcp_timewait_clear(uint16_t port, size_t *n, cr_error_t *err);

#endif
