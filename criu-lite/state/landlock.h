/* Landlock domains (state/landlock.c): the probe made ahead of the freeze. */
#ifndef CR_LANDLOCK_H
#define CR_LANDLOCK_H

#include <sys/types.h>

/* Forks the probe for the real uid and gid of pid, in its pid namespace,
 * before the tree is frozen (the collection starts the probes of other
 * credentials, and says why one failed).  Reaped with the dump's state. */
void landlock_probe_ahead(pid_t pid);

/* A probe is cr executed again (so that no memory of cr's goes with it)
 * as "cr LANDLOCK_PROBE_ARG UID GID PID PARENT" (landlock.c says what
 * PID and PARENT are), the ready pipe as fd 3: main hands
 * it to landlock_probe_main, which takes the ids, says its pid on fd 3 and
 * waits for its kill.  Not a command (it starts with dashes). */
#define LANDLOCK_PROBE_ARG "--landlock-probe"
int landlock_probe_main(int argc, char **argv);

#endif
