/* General-purpose registers, xstate, and what a syscall interrupted by the
 * freeze must do when the task runs again. */
#ifndef CR_REGS_H
#define CR_REGS_H

#include <stdint.h>
#include <sys/user.h>

#include "core.pb-c.h"
#include "os/arena.h"
#include "os/error.h"

/* What a syscall interrupted by the freeze does when its thread runs again.
 *
 * RESTART_RESTORED: what the kernel does on return to user space after a
 * signal without a handler: -ERESTARTSYS, -ERESTARTNOINTR and
 * -ERESTARTNOHAND re-execute the call; -ERESTART_RESTARTBLOCK cannot (the
 * kernel's restart block does not survive a restore) and becomes -EINTR,
 * which is what the program would see had a handled signal interrupted it;
 * but poll and ppoll without a timeout are made again, as their restart
 * block would (their arguments are intact).
 *
 * RESTART_UNSIGNALLED: what the kernel does when no signal is delivered:
 * every restart code re-executes the call, -ERESTART_RESTARTBLOCK through
 * restart_syscall and the thread's restart block (nanosleep's, poll's: the
 * time left), which is intact in a live thread.  For a task that goes on
 * running after a dump (--leave-running, or a dump that failed): its calls
 * go on as if it had never been stopped. */
enum restart_mode { RESTART_RESTORED, RESTART_UNSIGNALLED };

void regs_fixup_restart(struct user_regs_struct *regs, enum restart_mode mode);

GpRegs *regs_to_proto(struct arena *a, const struct user_regs_struct *regs);
void regs_from_proto(const GpRegs *p, struct user_regs_struct *regs);

/* The end of user space on this machine (TASK_SIZE_MAX): 47 bits less a
 * page, or 56 with five-level page tables.  fs and gs bases must be below. */
uint64_t regs_user_limit(void);

/* XCR0 of this CPU: the xstate features the kernel enables. */
uint64_t regs_host_xfeatures(void);
/* The xstate_bv field of an XSAVE image (0 if the image is too short). */
uint64_t regs_xstate_bv(const uint8_t *xstate, size_t len);

#endif
