/* Namespaces (a kind of state, state_ns): what other kinds need of them. */
#ifndef CR_NS_H
#define CR_NS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "state/task.h"

/* Restore: how far t's time namespace sets clock ahead of cr's (negative:
 * behind), as dumped: CLOCK_MONOTONIC and CLOCK_BOOTTIME(_ALARM) move,
 * other clocks do not; 0 for a process in cr's own.  An absolute expiry
 * dumped on cr's clock is that much later on the process's. */
int64_t ns_clock_offset(const struct restore_ctx *ctx, const struct restore_task *t, clockid_t clock);

/* The ns.img entry of a process's mount namespace (refs of its core), 0
 * for cr's own. */
uint32_t ns_mnt_ref(const NsRefs *refs);
/* Its network namespace's entry, 0 for cr's own. */
uint32_t ns_net_ref(const NsRefs *refs);

/* Restore, before any process exists: where the restorer can look at
 * path, a path of a process in mount namespace mnt (ns_mnt_ref): 1 with
 * it in buf (path itself in cr's own), 0 if it lies on a mount the
 * restore makes, which only the restored process can see. */
int ns_path_view(const struct restore_ctx *ctx, uint32_t mnt, const char *path, char *buf, size_t size);

#endif
