/* Opening a file as a restored process would: the calling thread takes
 * the file-system credentials of that process (fsuid, fsgid,
 * supplementary groups, and no effective capability it lacked) for the
 * open, and gets its own back after.  Only this thread changes (raw
 * syscalls, not glibc's process-wide setgroups). */
#ifndef CR_FSCREDS_H
#define CR_FSCREDS_H

#include <linux/capability.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "os/error.h"

struct fscreds_saved {
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;
	int n_groups;
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];
};

/* Takes fsuid, fsgid, groups[n_groups] and effective caps & cap_eff.  On
 * failure the thread's credentials are as they were. */
int fscreds_enter(uid_t fsuid, gid_t fsgid, const gid_t *groups, size_t n_groups, uint64_t cap_eff,
		  struct fscreds_saved *saved, cr_error_t *err);

/* Whether the calling thread already opens files exactly so: the same
 * fsuid, fsgid and groups, and no effective capability cap_eff lacks.  Its
 * own credentials are read once per process and kept: cr does not change
 * them between opens. */
bool fscreds_already(uid_t fsuid, gid_t fsgid, const gid_t *groups, size_t n_groups, uint64_t cap_eff);

/* Puts back what fscreds_enter saved; a failure here aborts: cr must not
 * go on with another process's credentials. */
void fscreds_leave(struct fscreds_saved *saved);

#endif
