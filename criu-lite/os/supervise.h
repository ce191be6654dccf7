/* Running a dump so that killing `cr dump` cannot hurt the process.
 *
 * A tracer that dies mid-injection leaves its tracee running with the
 * injected registers.  So the work runs in a worker child: the `cr dump`
 * the user sees only waits for it.  If that supervisor is killed (even with
 * SIGKILL) the worker gets SIGTERM (PR_SET_PDEATHSIG); SIGINT, SIGTERM and
 * SIGHUP to the supervisor are passed on.  In the worker those signals set
 * cr_interrupted, and the next wait for a tracee fails with "interrupted",
 * so the dump takes its normal failure path and releases every task. */
#ifndef CR_SUPERVISE_H
#define CR_SUPERVISE_H

#include <signal.h>
#include <stdbool.h>

extern volatile sig_atomic_t cr_interrupted;
/* Whether an interrupt aborts waits now (off while tasks are released). */
extern volatile sig_atomic_t cr_interrupt_armed;

static inline bool cr_should_stop(void)
{
	return cr_interrupted && cr_interrupt_armed;
}

/* Runs work(arg) in a supervised worker; returns its exit status. */
int supervise(int (*work)(void *), void *arg);

#endif
