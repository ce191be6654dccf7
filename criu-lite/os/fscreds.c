/* See fscreds.h.  Changing fsuid away from 0 drops the file-system
 * capabilities from the effective set, and back to 0 raises them again
 * from the permitted set (capabilities(7)); the saved sets are put back
 * last anyway. */
#include "os/fscreds.h"
#include "os/xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cap_get(struct __user_cap_data_struct *data)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return (int)syscall(SYS_capget, &hdr, data);
}

static int cap_set(const struct __user_cap_data_struct *data)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return (int)syscall(SYS_capset, &hdr, data);
}

static int save(struct fscreds_saved *s, cr_error_t *err)
{
	int n = (int)syscall(SYS_getgroups, 0, NULL);

	s->fsuid = (uid_t)setfsuid((uid_t)-1);
	s->fsgid = (gid_t)setfsgid((gid_t)-1);
	if (n < 0)
		return cr_error(err, errno, "getgroups");
	s->groups = xcalloc((size_t)n + 1, sizeof(*s->groups));
	s->n_groups = (int)syscall(SYS_getgroups, n, s->groups);
	if (s->n_groups < 0 || cap_get(s->caps) < 0)
		return cr_error(err, errno, "read cr's own credentials");
	return 0;
}

static struct fscreds_saved mine;
static pid_t mine_of;   /* the process mine was read in (cr forks) */

bool fscreds_already(uid_t fsuid, gid_t fsgid, const gid_t *groups, size_t n_groups, uint64_t cap_eff)
{
	uint64_t eff;

	if (mine_of != getpid()) {
		cr_error_t err = NULL;

		free(mine.groups);
		memset(&mine, 0, sizeof(mine));
		if (save(&mine, &err) < 0) {
			cr_error_release(&err);
			return false;
		}
		mine_of = getpid();
	}
	eff = mine.caps[0].effective | (uint64_t)mine.caps[1].effective << 32;
	if (fsuid != mine.fsuid || fsgid != mine.fsgid || n_groups != (size_t)mine.n_groups || (eff & ~cap_eff) != 0)
		return false;
	for (size_t i = 0; i < n_groups; i++)
		if (groups[i] != mine.groups[i])
			return false;
	return true;
}

int fscreds_enter(uid_t fsuid, gid_t fsgid, const gid_t *groups, size_t n_groups, uint64_t cap_eff,
		  struct fscreds_saved *s, cr_error_t *err)
{
	struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

	memset(s, 0, sizeof(*s));
	if (save(s, err) < 0) {
		free(s->groups);
		s->groups = NULL;
		return -1;
	}
	if (syscall(SYS_setgroups, n_groups, groups) < 0) {
		fscreds_leave(s);
		return cr_error(err, errno, "take the process's %zu groups", n_groups);
	}
	setfsgid(fsgid);
	setfsuid(fsuid);
	if ((gid_t)setfsgid((gid_t)-1) != fsgid || (uid_t)setfsuid((uid_t)-1) != fsuid) {
		fscreds_leave(s);
		return cr_error(err, EPERM, "take fsuid %u fsgid %u", fsuid, fsgid);
	}
	memcpy(caps, s->caps, sizeof(caps));
	cap_get(caps);   /* as setfsuid left them */
	caps[0].effective &= (uint32_t)cap_eff;
	caps[1].effective &= (uint32_t)(cap_eff >> 32);
	if (cap_set(caps) < 0) {
		fscreds_leave(s);
		return cr_error(err, errno, "narrow the effective capabilities");
	}
	return 0;
}

/* The capabilities first: setgroups needs CAP_SETGID back; and last
 * again, as setfsuid raised or dropped some. */
void fscreds_leave(struct fscreds_saved *s)
{
	int ok = cap_set(s->caps) == 0;

	setfsuid(s->fsuid);
	setfsgid(s->fsgid);
	if (!ok || (uid_t)setfsuid((uid_t)-1) != s->fsuid || (gid_t)setfsgid((gid_t)-1) != s->fsgid ||
	    syscall(SYS_setgroups, s->n_groups, s->groups) < 0 || cap_set(s->caps) < 0) {
		fprintf(stderr, "cr: cannot take its own credentials back: %s\n", strerror(errno));
		abort();
	}
	free(s->groups);
	s->groups = NULL;
}
