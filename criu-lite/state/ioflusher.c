/* PR_SET_IO_FLUSHER: a thread that writes out other processes' I/O (a
 * FUSE or NBD server, a userspace block driver) marks itself so that its
 * allocations never wait on I/O, which could deadlock it.  Setting it
 * needs CAP_SYS_RESOURCE, and so does PR_GET_IO_FLUSHER; the task flags
 * in /proc/PID/task/TID/stat show it to anyone.  cr does not restore it
 * (a restored server would deadlock under memory pressure where the
 * dumped one did not): refused at dump, naming the thread. */
#include "os/proc.h"
#include "state/state.h"

static int check_flags(const struct dump_task *t, pid_t tid, const struct proc_stat *st, cr_error_t *err)
{
	if (proc_stat_io_flusher(st))
		return cr_error(err, 0, "pid %d thread %d: PR_SET_IO_FLUSHER (its task flags 0x%x): unsupported (cr "
				"does not restore it)", t->pid, tid, st->flags);
	return 0;
}

/* The main thread's flags came with the process's stat; the others' are
 * read one by one. */
static int ioflusher_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	(void)ctx;
	if (check_flags(t, t->pid, &t->stat, err) < 0)
		return -1;
	for (size_t i = 1; i < t->n_threads; i++) {
		struct proc_stat st;

		if (proc_read_task_stat(t->pid, t->threads[i].tid, &st, err) < 0)
			return cr_error_wrap(err, "pid %d thread %d", t->pid, t->threads[i].tid);
		if (check_flags(t, t->threads[i].tid, &st, err) < 0)
			return -1;
	}
	return 0;
}

const struct state_kind state_ioflusher = {
	.name = "I/O flusher",
	.collect = ioflusher_collect,
};
