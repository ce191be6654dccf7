/* What an ipc namespace holds: SysV shared memory segments, semaphore
 * sets and message queues, and POSIX message queues, read from inside the
 * namespace by a helper (os/nsenter.h). */
#ifndef CR_IPCNS_H
#define CR_IPCNS_H

#include <stddef.h>
#include <sys/types.h>

#include "os/error.h"

struct ipcns_contents {
	size_t n_shm, n_sem, n_msg, n_mq;
	char list[1024];           /* "1 SysV shared memory segment (key 0x... id 0), ..." */
};

/* What the ipc namespace of pid holds. */
int ipcns_read(pid_t pid, struct ipcns_contents *out, cr_error_t *err);

static inline size_t ipcns_objects(const struct ipcns_contents *c)
{
	return c->n_shm + c->n_sem + c->n_msg + c->n_mq;
}

#endif
