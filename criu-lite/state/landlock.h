/* Landlock domains (state/landlock.c): the probe made ahead of the freeze. */
#ifndef CR_LANDLOCK_H
#define CR_LANDLOCK_H

#include <sys/types.h>

/* Forks the probe for the real uid and gid of pid, in its pid namespace,
 * before the tree is frozen (the collection starts the probes of other
 * credentials, and says why one failed).  Reaped with the dump's state. */
void landlock_probe_ahead(pid_t pid);

#endif
