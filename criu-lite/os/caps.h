/* The capabilities dump and restore need, checked before anything is
 * touched, so a user without them is told which are missing. */
#ifndef CR_CAPS_H
#define CR_CAPS_H

#include <stdbool.h>

#include "os/error.h"

/* Needs CAP_SYS_PTRACE, and CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN, in the
 * effective set; what names the command for the message. */
int caps_require(const char *what, cr_error_t *err);

/* Whether cap (CAP_*) is in this process's effective set. */
bool caps_have(int cap);
/* Empties every capability set of the caller (capset): -1 and errno on failure. */
int caps_drop_all(void);

#endif
