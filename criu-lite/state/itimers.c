/* Interval timers (setitimer): each armed one with its time left and
 * interval, read and set again by injection. */
#include "state/state.h"
#include "os/util.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define N_ITIMERS 3

static uint64_t tv_us(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000000ULL + (uint64_t)tv->tv_usec;
}

static struct timeval us_tv(uint64_t us)
{
	struct timeval tv = { .tv_sec = (time_t)(us / 1000000ULL), .tv_usec = (suseconds_t)(us % 1000000ULL) };

	return tv;
}

static void itimers_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	for (int which = 0; which < N_ITIMERS; which++)
		inject_batch_add(&t->asked, "read an interval timer", SYS_getitimer, (uint64_t)which,
				 t->scratch + SCRATCH_ITIMERS + (uint64_t)which * sizeof(struct itimerval), 0, 0, 0, 0);
}

static int itimers_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	struct itimerval it[N_ITIMERS];
	CoreEntry *core = t->core;

	(void)first;
	if (remote_read(t->pid, t->scratch + SCRATCH_ITIMERS, it, sizeof(it), err) < 0)
		return cr_error_wrap(err, "read interval timers");
	core->itimers = arena_array(&ctx->arena, ItimerEntry *, N_ITIMERS);
	for (int which = 0; which < N_ITIMERS; which++) {
		ItimerEntry *e;

		if (tv_us(&it[which].it_value) == 0)
			continue;   /* disarmed */
		e = arena_new(&ctx->arena, ItimerEntry);
		itimer_entry__init(e);
		e->which = (uint32_t)which;
		e->interval_us = tv_us(&it[which].it_interval);
		e->value_us = tv_us(&it[which].it_value);
		core->itimers[core->n_itimers++] = e;
	}
	return 0;
}

_Static_assert(TRAMP_ITIMER + N_ITIMERS * sizeof(struct itimerval) <= TRAMP_COMM,
	       "the trampoline holds every interval timer");

static int itimers_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->core->n_itimers; i++)
		if (t->core->itimers[i]->which >= N_ITIMERS)
			return cr_error(err, 0, "core-%d.img: unknown interval timer %u", t->pid,
					t->core->itimers[i]->which);
	return 0;
}

/* Each armed timer gets its remaining time; the values wait in the
 * trampoline. */
static int itimers_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	for (size_t i = 0; i < t->core->n_itimers; i++) {
		const ItimerEntry *e = t->core->itimers[i];
		struct itimerval it = { .it_interval = us_tv(e->interval_us), .it_value = us_tv(e->value_us) };
		uint64_t slot;

		slot = t->tramp + TRAMP_ITIMER + e->which * sizeof(it);
		if (remote_write(t->host_pid, slot, &it, sizeof(it), err) < 0)
			return cr_error_wrap(err, "write interval timer");
		inject_batch_add(&t->batch, "set interval timer", SYS_setitimer, e->which, slot, 0, 0, 0, 0);
	}
	return 0;
}

const struct state_kind state_itimers = {
	.name = "interval timers",
	.ask = itimers_ask,
	.answered = itimers_answered,
	.validate = itimers_validate,
	.apply = itimers_apply,
};
