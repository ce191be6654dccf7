/* membarrier(2) registrations, which the kernel keeps per address space:
 * a process that registered for the expedited commands may issue them;
 * without the registration they fail with EPERM.  Read by injection
 * (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3) and made again by
 * injection once the memory is in place. */
#include "os/log.h"
#include "state/state.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>

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

static int membarrier_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	long mask = (long)inject_batch_ret(&t->asked, first);

	(void)ctx;
	if (mask == -EINVAL)
		return cr_error(err, 0, "pid %d: this kernel does not tell its membarrier registrations (Linux 6.3 "
				"does): a restore could lose them", t->pid);
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
