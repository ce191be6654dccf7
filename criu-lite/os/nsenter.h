/* Looking into another process's namespace from a short-lived child of
 * cr: the child enters the namespace (setns on /proc/PID/ns/NAME) and
 * runs a function there, which answers through memory shared with cr.
 * Some things are shown only to a process inside a namespace (its
 * hostname, the SysV objects of an ipc namespace, ...); a helper child
 * reads them while cr keeps its own namespaces and the dumped process is
 * not touched. */
#ifndef CR_NSENTER_H
#define CR_NSENTER_H

#include <stddef.h>
#include <sys/types.h>

#include "os/error.h"

/* Runs in the helper, inside the namespace, and must not allocate (cr
 * may have threads): writes its answer into out (size bytes, zeroed) and
 * returns 0, or returns -1 with errno set and *what naming the step. */
typedef int (*nsenter_fn)(void *arg, void *out, size_t size, const char **what);

/* Runs fn in a helper that entered /proc/PID/ns/NAME; its answer is copied
 * to out.  An error names the namespace file and the step that failed. */
int nsenter_run(pid_t pid, const char *name, nsenter_fn fn, void *arg, void *out, size_t size, cr_error_t *err);

/* For fns: reads a small file (a /proc file) into buf, NUL-terminated,
 * without allocating.  0 or -1 with errno set. */
int nsenter_read_file(const char *path, char *buf, size_t size);

#endif
