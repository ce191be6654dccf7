#include "os/regs.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>

/* Kernel-internal restart codes (include/linux/errno.h). */
#define ERESTARTSYS           512
#define ERESTARTNOINTR        513
#define ERESTARTNOHAND        514
#define ERESTART_RESTARTBLOCK 516

#define SYSCALL_INSN_LEN 2
#define XSAVE_HDR_OFFSET 512

#define NR_RESTART_SYSCALL    219   /* x86_64 */
#define NR_POLL               7
#define NR_PPOLL              271

/* A wait without a timeout, which the kernel resumes through its restart
 * block although nothing of the block is needed: the call's own arguments,
 * still in their registers, make it again exactly (poll with a negative
 * timeout, ppoll with none).  Programs such as util-linux's script take
 * EINTR from poll for an error and quit. */
static bool endless_wait(const struct user_regs_struct *regs)
{
	return (regs->orig_rax == NR_POLL && (int)regs->rdx < 0) || (regs->orig_rax == NR_PPOLL && regs->rdx == 0);
}

/* The call is re-executed: its number back in rax, rip on its syscall. */
static void reenter(struct user_regs_struct *regs, uint64_t nr)
{
	regs->rax = nr;
	regs->rip -= SYSCALL_INSN_LEN;
}

void regs_fixup_restart(struct user_regs_struct *regs, enum restart_mode mode)
{
	if ((long)regs->orig_rax < 0)
		return;
	switch ((long)(int)regs->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		reenter(regs, regs->orig_rax);
		break;
	case -ERESTART_RESTARTBLOCK:
		if (mode == RESTART_UNSIGNALLED)
			reenter(regs, NR_RESTART_SYSCALL);
		else if (endless_wait(regs))
			reenter(regs, regs->orig_rax);
		else
			regs->rax = (uint64_t)-EINTR;
		break;
	default:
		break;
	}
}

#define FIELDS(X) \
	X(r15) X(r14) X(r13) X(r12) X(rbp) X(rbx) X(r11) X(r10) X(r9) X(r8) \
	X(rax) X(rcx) X(rdx) X(rsi) X(rdi) X(orig_rax) X(rip) X(cs) X(eflags) \
	X(rsp) X(ss) X(fs_base) X(gs_base) X(ds) X(es) X(fs) X(gs)

GpRegs *regs_to_proto(struct arena *a, const struct user_regs_struct *regs)
{
	GpRegs *p = arena_new(a, GpRegs);

	gp_regs__init(p);
#define TO(f) p->f = regs->f;
	FIELDS(TO)
#undef TO
	return p;
}

void regs_from_proto(const GpRegs *p, struct user_regs_struct *regs)
{
	memset(regs, 0, sizeof(*regs));
#define FROM(f) regs->f = p->f;
	FIELDS(FROM)
#undef FROM
}

uint64_t regs_host_xfeatures(void)
{
	uint32_t lo, hi;

	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

uint64_t regs_xstate_bv(const uint8_t *xstate, size_t len)
{
	uint64_t bv;

	if (len < XSAVE_HDR_OFFSET + sizeof(bv))
		return 0;
	memcpy(&bv, xstate + XSAVE_HDR_OFFSET, sizeof(bv));
	return bv;
}

/* Five-level page tables are in use when a page can be mapped above
 * 47 bits (only when asked for by address). */
uint64_t regs_user_limit(void)
{
	static uint64_t limit;
	void *high = (void *)(UINT64_C(1) << 52), *p;

	if (limit != 0)
		return limit;
	p = mmap(high, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == high) {
		munmap(p, 4096);
		limit = (UINT64_C(1) << 56) - 4096;
	} else {
		if (p != MAP_FAILED)
			munmap(p, 4096);
		limit = (UINT64_C(1) << 47) - 4096;
	}
	return limit;
}
