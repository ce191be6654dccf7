/* membarrier(2) registrations, which the kernel keeps per address space:
 * a process that registered for the private expedited commands may issue
 * them (without the registration they fail with EPERM); one registered
 * for the global one receives its barriers.  Read by injection
 * (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3) and made again by
 * injection once the memory is in place.
 *
 * A kernel before 6.3 does not tell them.  The private ones are found by
 * issuing each command in the process (a barrier, or EPERM); the global
 * one cannot be found, so it is recorded as made: the restored process
 * then receives global expedited barriers it may not have asked for,
 * which costs time and never takes a barrier away. */
#include "os/log.h"
#include "state/state.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

/* The registration commands, in the order they are made again. */
static const unsigned registrations[] = {
	MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
	MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ,
};

static unsigned known(void)
{
	unsigned all = 0;

	for (size_t i = 0; i < sizeof(registrations) / sizeof(registrations[0]); i++)
		all |= registrations[i];
	return all;
}

static void membarrier_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	inject_batch_try(&t->asked, "read membarrier registrations", SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS,
			 0, 0, 0, 0, 0);
}

/* Before Linux 6.3: each private expedited command answers 0 in a process
 * registered for it, and EPERM (or EINVAL, where the kernel lacks it) in
 * any other. */
static int probe_registrations(struct dump_task *t, long *mask, cr_error_t *err)
{
	static const struct {
		int cmd;
		unsigned registration;
	} probes[] = {
		{ MEMBARRIER_CMD_PRIVATE_EXPEDITED, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED },
		{ MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE },
		{ MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ },
	};
	size_t n = sizeof(probes) / sizeof(probes[0]);

	for (size_t i = 0; i < n; i++)
		inject_batch_try(&t->batch, "issue a membarrier", SYS_membarrier, (uint64_t)probes[i].cmd, 0, 0, 0, 0,
				 0);
	if (dump_batch_run(t, t->inj, err) < 0)
		return -1;
	*mask = MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
	for (size_t i = 0; i < n; i++)
		if (inject_batch_ret(&t->batch, i) == 0)
			*mask |= probes[i].registration;
	return 0;
}

static int membarrier_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	long mask = (long)inject_batch_ret(&t->asked, first);

	(void)ctx;
	if (mask == -ENOSYS)
		mask = 0;   /* a kernel without membarrier (CONFIG_MEMBARRIER): none can be registered */
	if (mask == -EINVAL && probe_registrations(t, &mask, err) < 0)
		return cr_error_wrap(err, "pid %d: find its membarrier registrations", t->pid);
	if (mask < 0)
		return cr_error(err, (int)-mask, "pid %d: read membarrier registrations", t->pid);
	if ((unsigned long)mask & ~(unsigned long)known())
		return cr_error(err, 0, "pid %d: membarrier registrations 0x%lx that cr does not know", t->pid,
				mask);
	t->core->has_membarrier = true;
	t->core->membarrier = (uint32_t)mask;
	return 0;
}

static int membarrier_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (t->core->membarrier & ~known())
		return cr_error(err, 0, "core-%d.img: membarrier registrations 0x%x", t->pid, t->core->membarrier);
	if (t->core->membarrier && syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0)
		return cr_error(err, errno, "pid %d was registered for membarrier; this kernel has none", t->pid);
	return 0;
}

static int membarrier_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx, (void)err;
	for (size_t i = 0; i < sizeof(registrations) / sizeof(registrations[0]); i++)
		if (t->core->membarrier & registrations[i])
			inject_batch_add(&t->batch, "register for membarrier", SYS_membarrier, registrations[i], 0, 0,
					 0, 0, 0);
	return 0;
}

const struct state_kind state_membarrier = {
	.name = "membarrier registrations",
	.ask = membarrier_ask,
	.answered = membarrier_answered,
	.validate = membarrier_validate,
	.apply = membarrier_apply,
};
