/* Unix sockets: unix_sk.c dumps them, unix_sk_restore.c brings them back.
 *
 * A socket is described by sock_diag (unix_diag.h): type, state, bound
 * name, peer (by inode), shutdown state; its receive queue is peeked
 * through a pidfd_getfd duplicate with SO_PEEK_OFF (never consumed), with
 * message boundaries and, for datagrams, each sender's name. */
#ifndef CR_UNIX_SK_H
#define CR_UNIX_SK_H

#include "os/error.h"
#include "fd/fdkind.h"

/* sk_state values as sock_diag reports them (include/net/tcp_states.h). */
#define USK_ESTABLISHED 1
#define USK_CLOSE       7
#define USK_LISTEN      10

/* sk_shutdown bits. */
#define USK_RCV_SHUTDOWN  1
#define USK_SEND_SHUTDOWN 2

/* Restore, in the child: the socket of fe, created together with every
 * socket it is connected to or exchanged data with. */
int unix_sk_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err);

/* Restore validation of one entry. */
int unix_sk_validate(const FileEntry *fe, cr_error_t *err);

#endif
