/* The root directory (chroot), the last thing a restored process sets up
 * in cr's code: every path opened before it (its files, its cgroups,
 * /proc/self) is one as cr sees it, from cr's root, and so is the working
 * directory, which attrs.c sets before, by its path as cr saw it at dump;
 * chroot leaves the working directory where it is.  Dumped and checked by
 * attrs.c (core->root). */
#include "state/state.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int chroot_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (strcmp(t->core->root, "/") != 0 && chroot(t->core->root) < 0)
		return cr_error(err, errno, "chroot %s", t->core->root);
	return 0;
}

const struct state_kind state_chroot = {
	.name = "root directory",
	.setup = chroot_setup,
};
