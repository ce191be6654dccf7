/* Namespaces (a kind of state, state_ns): what other kinds need of them. */
#ifndef CR_NS_H
#define CR_NS_H

#include <stdint.h>
#include <time.h>

#include "state/task.h"

/* Restore: how far t's time namespace sets clock ahead of cr's (negative:
 * behind), as dumped: CLOCK_MONOTONIC and CLOCK_BOOTTIME(_ALARM) move,
 * other clocks do not; 0 for a process in cr's own.  An absolute expiry
 * dumped on cr's clock is that much later on the process's. */
int64_t ns_clock_offset(const struct restore_ctx *ctx, const struct restore_task *t, clockid_t clock);

#endif
