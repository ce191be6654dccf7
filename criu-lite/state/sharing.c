#include "state/sharing.h"
#include "os/kcmp.h"
#include "os/util.h"
#include "os/xalloc.h"

int sharing_refuse(const struct dump_ctx *ctx, int type, const char *what, cr_error_t *err)
{
	cleanup_free pid_t *pids = xcalloc(ctx->n_tasks, sizeof(*pids));
	size_t n = 0;
	pid_t a, b;
	int r;

	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie)
			pids[n++] = ctx->tasks[i].pid;
	r = kcmp_find_shared(pids, n, type, &a, &b, err);
	if (r < 0)
		return cr_error_wrap(err, "compare the %ss of the tree", what);
	if (r > 0)
		return cr_error(err, 0, "pid %d and pid %d share one %s (made with clone and no exec since): "
				"unsupported, each would come back with a copy of its own", a, b, what);
	return 0;
}
