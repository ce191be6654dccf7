/* Stopped processes (stop.c): what restore does once every process is
 * transplanted, before it lets any go. */
#ifndef CR_STOP_H
#define CR_STOP_H

#include "os/error.h"
#include "state/task.h"

/* Every process that was stopped enters its group stop again, by the same
 * signal, and each parent sees the stop as it had at dump. */
int stop_restored_tree(struct restore_ctx *ctx, cr_error_t *err);

#endif
