/* Which mappings a core dump of the process writes: its coredump_filter
 * (core(5)), one bit per kind of mapping, kept with the process's memory
 * and inherited across fork and exec, so a launcher sets it for the
 * program it starts (systemd's CoredumpFilter=, a shell's
 * `echo 0x7f > /proc/self/coredump_filter`).
 *
 * Dump: read from /proc/PID/coredump_filter.  Restore: written by the
 * process itself while it still runs cr's code, where it differs from the
 * one inherited from cr: the transplant keeps the memory's flags. */
#include "os/proc.h"
#include "os/util.h"
#include "state/sched.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The kernel's MMF_DUMP_FILTER_BITS: nine kinds of mapping. */
#define COREDUMP_FILTER_MAX 0x1ffu
/* Its default (MMF_DUMP_FILTER_DEFAULT): what a kernel without core dumps
 * (no coredump_filter file: CONFIG_COREDUMP off) is recorded as having. */
#define COREDUMP_FILTER_DEFAULT 0x33u

/* 0, 1 where the kernel has no such file (no core dumps to filter), or -1. */
static int read_filter(pid_t pid, uint32_t *out, cr_error_t *err)
{
	cleanup_free char *text = NULL;
	char *end;
	unsigned long v;
	int r = proc_read_file(pid, "coredump_filter", &text, err);

	*out = COREDUMP_FILTER_DEFAULT;
	if (r != 0)
		return r;
	v = strtoul(text, &end, 16);
	if (end == text || v > COREDUMP_FILTER_MAX)
		return cr_error(err, 0, "pid %d: coredump_filter: unexpected '%.20s'", (int)pid, text);
	*out = (uint32_t)v;
	return 0;
}

static int coredump_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	if (read_filter(t->pid, &sched_process(ctx, t)->coredump_filter, err) < 0)
		return cr_error_wrap(err, "pid %d: coredump_filter", t->pid);
	return 0;
}

static int coredump_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (t->core->sched == NULL)
		return cr_error(err, 0, "core-%d.img: no process attributes", t->pid);
	if (t->core->sched->coredump_filter > COREDUMP_FILTER_MAX)
		return cr_error(err, 0, "core-%d.img: coredump_filter 0x%x out of range", t->pid,
				t->core->sched->coredump_filter);
	return 0;
}

static int coredump_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	uint32_t want = t->core->sched->coredump_filter, now;
	char text[16];
	int r = read_filter(0, &now, err);

	(void)ctx;
	if (r < 0)
		return -1;
	if (r > 0 || now == want)
		return 0;   /* no core dumps here: nothing to filter */
	snprintf(text, sizeof(text), "0x%x", want);
	if (write_proc_text("/proc/self/coredump_filter", text, err) < 0)
		return cr_error_wrap(err, "set coredump_filter (from 0x%x)", now);
	return 0;
}

const struct state_kind state_coredump = {
	.name = "core dump filter",
	.collect = coredump_collect,
	.validate = coredump_validate,
	.setup = coredump_setup,
};
