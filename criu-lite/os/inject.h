/* Running syscalls inside a stopped tracee.
 *
 * The tracee's registers are pointed at a `syscall` instruction in its own
 * address space (dump: one found in its vdso; restore: cr's trampoline
 * page) and it is run from syscall-entry stop to syscall-exit stop with
 * PTRACE_SYSCALL, so nothing after the instruction ever executes.  All
 * signals are blocked while injecting, and inject_end puts back the
 * registers and the signal mask the task had, leaving no trace. */
#ifndef CR_INJECT_H
#define CR_INJECT_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "os/error.h"
#include "os/proc.h"

struct injector {
	pid_t tid;
	uint64_t syscall_ip;
	struct user_regs_struct orig;  /* registers when injection began */
	uint64_t orig_sigmask;
	int active;
};

int inject_begin(struct injector *ij, pid_t tid, uint64_t syscall_ip, cr_error_t *err);
/* inject_begin in two halves: prepare only reads what end puts back
 * (registers, signal mask), so it can be recorded before start changes
 * anything (dump/guard.h). */
int inject_prepare(struct injector *ij, pid_t tid, uint64_t syscall_ip, cr_error_t *err);
int inject_start(struct injector *ij, cr_error_t *err);
/* Runs one syscall; *ret is the raw kernel return (-errno on failure). */
int inject_syscall(struct injector *ij, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret, cr_error_t *err);
/* As inject_syscall, but a negative return is an error naming what. */
int inject_call(struct injector *ij, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, uint64_t a6, long *ret, cr_error_t *err);
/* Restores the original registers and signal mask. */
int inject_end(struct injector *ij, cr_error_t *err);

/* Batches: many syscalls for one ptrace round trip.  A small loop, copied
 * into the task (inject_batch_code), runs a list of calls written into the
 * task's memory, stops at the first that fails (unless it may), and then stops the task
 * with SIGSTOP (not a breakpoint: a blocked SIGTRAP would reset the
 * process's SIGTRAP disposition).  It needs no stack. */
struct batch_call {                 /* the layout the loop reads: 64 bytes */
	uint64_t nr;
	uint64_t arg[6];
	int64_t ret;
};

struct inject_batch {
	struct batch_call *calls;
	const char **what;
	size_t n, cap;
};

extern const unsigned char inject_batch_code[], inject_batch_code_end[];
#define INJECT_BATCH_CODE_SIZE ((size_t)(inject_batch_code_end - inject_batch_code))

/* Appends a call; what names it in errors.  Aborts on out-of-memory. */
void inject_batch_add(struct inject_batch *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, uint64_t a5, uint64_t a6);
/* Appends a call whose failure is an answer, not an error: the calls after
 * it run, and inject_batch_ret gives its -errno. */
void inject_batch_try(struct inject_batch *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, uint64_t a5, uint64_t a6);
/* Runs every call added (in pieces that fit area_size bytes at area), with
 * the loop at code; empties the batch.  A failing call is an error naming
 * it; the calls after it do not run. */
int inject_batch_run(struct injector *ij, uint64_t code, uint64_t area, size_t area_size, struct inject_batch *b,
		     cr_error_t *err);
void inject_batch_free(struct inject_batch *b);
/* What call i returned in the batch that ran last (calls are numbered in
 * the order they were added, from 0 after the previous run): for calls
 * that answer in their return value.  Valid until the next add. */
static inline int64_t inject_batch_ret(const struct inject_batch *b, size_t i)
{
	return b->calls[i].ret;
}

/* Finds a `syscall` instruction (0f 05) in the task's memory: in its vdso,
 * or, when it has none (it unmapped it), in its executable mappings. */
int inject_find_syscall(pid_t pid, const struct proc_vma_list *vmas, uint64_t *ip, cr_error_t *err);

#endif
