/* The keeper: a small process that holds the userfaultfds of write
 * tracking (state/track.h) from one pre-copy round to the next, since
 * closing them would end the tracking.
 *
 * It listens on an abstract unix socket named after the tree's root (pid
 * and start time), answers only a root peer, and hands every fd over to
 * the next round (cr pre-dump or cr dump of the same tree), then exits.
 * It also exits, closing the fds (the tracked processes run on, without
 * tracking), once every tracked process has exited, or after KEEPER_IDLE_S
 * seconds without a next round, or on SIGTERM.  Its name is "cr-keeper". */
#ifndef CR_KEEPER_H
#define CR_KEEPER_H

#include <sys/types.h>

#include "img/dumpid.h"
#include "os/error.h"
#include "state/track.h"

#define KEEPER_IDLE_S 3600

/* Takes what the keeper of root's tree holds, if one runs (tr->have_prev,
 * tr->prev_id and the fds); 0 as well when there is none. */
int keeper_fetch(struct tracker *tr, pid_t root, uint64_t root_start, cr_error_t *err);
/* Starts a keeper for tr's userfaultfds (of the round with dump id id);
 * *pid: its pid, 0 if there was nothing to keep. */
int keeper_start(struct tracker *tr, pid_t root, uint64_t root_start, const struct cr_dump_id *id, pid_t *pid,
		 cr_error_t *err);

#endif
