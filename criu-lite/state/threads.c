/* Threads, as a kind of state: registers and xstate, the blocked signal
 * mask, rseq, robust futex list, clear_child_tid, the alternate signal
 * stack, the thread's name, and what the thread set on itself (the TSC
 * mode, the machine-check kill policy, cpuid faulting), for every thread;
 * and the restore's last step, which puts the registers back. */
#include "state/threads.h"
#include "os/ptrace.h"
#include "os/regs.h"
#include "os/util.h"
#include "state/state.h"

#include <errno.h>
#include <sys/mman.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <asm/prctl.h>

struct kstack {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

/* ------------------------------------------------------------------ dump */

static int dump_rseq(struct dump_ctx *ctx, struct dump_thread *th, cr_error_t *err)
{
	struct ptrace_rseq_configuration conf;
	bool has;

	if (ptrace_get_rseq(th->tid, &conf, &has, err) < 0)
		return -1;
	if (!has)
		return 0;
	th->core->rseq = arena_new(&ctx->arena, RseqEntry);
	rseq_entry__init(th->core->rseq);
	th->core->rseq->addr = conf.rseq_abi_pointer;
	th->core->rseq->len = conf.rseq_abi_size;
	th->core->rseq->sig = conf.signature;
	return 0;
}

/* The alternate stack and clear_child_tid are only told to the thread
 * itself: ask by injection, answers land in the scratch page.  The main
 * thread's calls go with every kind's (threads_ask), each other thread's
 * with every kind's calls for it (threads_ask_thread). */
static void ask_thread(struct dump_task *t, struct inject_batch *b)
{
	inject_batch_add(b, "read alternate stack", SYS_sigaltstack, 0, t->scratch + SCRATCH_ALTSTACK, 0, 0, 0, 0);
	inject_batch_add(b, "read clear_child_tid", SYS_prctl, PR_GET_TID_ADDRESS, t->scratch + SCRATCH_TID_ADDRESS,
			 0, 0, 0, 0);
	inject_batch_add(b, "read the TSC mode", SYS_prctl, PR_GET_TSC, t->scratch + SCRATCH_TSC, 0, 0, 0, 0);
	inject_batch_add(b, "read the machine-check kill policy", SYS_prctl, PR_MCE_KILL_GET, 0, 0, 0, 0, 0);
	inject_batch_add(b, "read whether cpuid faults", SYS_arch_prctl, ARCH_GET_CPUID, 0, 0, 0, 0, 0);
}

/* Where ask_thread's PR_MCE_KILL_GET and ARCH_GET_CPUID are among its calls. */
#define ASKED_MCE_KILL 3
#define ASKED_CPUID    4

/* rdtsc made to fault (PR_TSC_SIGSEGV) is kept; a thread allows it by
 * default. */
static int read_tsc_mode(const struct dump_task *t, ThreadCore *tc, cr_error_t *err)
{
	int32_t mode = PR_TSC_ENABLE;

	if (remote_read(t->pid, t->scratch + SCRATCH_TSC, &mode, sizeof(mode), err) < 0)
		return -1;
	if (mode != PR_TSC_ENABLE && mode != PR_TSC_SIGSEGV)
		return cr_error(err, 0, "TSC mode %d: unsupported", mode);
	tc->has_tsc_mode = mode == PR_TSC_SIGSEGV;
	tc->tsc_mode = (uint32_t)mode;
	return 0;
}

/* The machine-check kill policy a thread set (PR_MCE_KILL_SET: early or
 * late, as qemu does for its vCPU threads) is kept; by default a thread
 * follows vm.memory_failure_early_kill. */
static int read_mce_kill(const struct inject_batch *b, size_t at, ThreadCore *tc, cr_error_t *err)
{
	int64_t policy = inject_batch_ret(b, at + ASKED_MCE_KILL);

	if (policy != PR_MCE_KILL_EARLY && policy != PR_MCE_KILL_LATE && policy != PR_MCE_KILL_DEFAULT)
		return cr_error(err, 0, "machine-check kill policy %lld: unsupported", (long long)policy);
	tc->has_mce_kill = policy != PR_MCE_KILL_DEFAULT;
	tc->mce_kill = (uint32_t)policy;
	return 0;
}

/* cpuid made to fault (ARCH_SET_CPUID 0, as rr does to its tracees) is
 * kept; a thread runs cpuid by default. */
static int read_cpuid(const struct inject_batch *b, size_t at, ThreadCore *tc, cr_error_t *err)
{
	int64_t enabled = inject_batch_ret(b, at + ASKED_CPUID);

	if (enabled != 0 && enabled != 1)
		return cr_error(err, 0, "ARCH_GET_CPUID %lld: unsupported", (long long)enabled);
	tc->has_cpuid_faults = enabled == 0;
	tc->cpuid_faults = enabled == 0;
	return 0;
}

static int read_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th, const struct inject_batch *b,
		       size_t at, cr_error_t *err)
{
	ThreadCore *tc = th->core;
	struct kstack ss;
	uint64_t tid_addr;

	th->core->sigmask = th->inj.orig_sigmask;
	if (remote_read(t->pid, t->scratch + SCRATCH_ALTSTACK, &ss, sizeof(ss), err) < 0 ||
	    remote_read(t->pid, t->scratch + SCRATCH_TID_ADDRESS, &tid_addr, sizeof(tid_addr), err) < 0 ||
	    read_tsc_mode(t, tc, err) < 0 || read_mce_kill(b, at, tc, err) < 0 ||
	    read_cpuid(b, at, tc, err) < 0)
		return -1;
	tc->clear_child_tid = tid_addr;
	tc->altstack = arena_new(&ctx->arena, SigaltstackEntry);
	sigaltstack_entry__init(tc->altstack);
	tc->altstack->sp = ss.sp;
	tc->altstack->flags = (uint32_t)ss.flags;
	tc->altstack->size = ss.size;
	return 0;
}

/* Registers (read by the driver as it froze the thread), xstate, robust
 * list, name and rseq: all from outside.  A restored process sees a call
 * the freeze interrupted end as after a signal (regs_fixup_restart). */
static int collect_thread(struct dump_ctx *ctx, struct dump_thread *th, cr_error_t *err)
{
	struct user_regs_struct regs = th->regs;
	ThreadCore *tc = th->core;
	void *xstate = NULL;
	size_t xlen = 0;
	uint64_t head = 0, len = 0;

	tc->tid = (uint32_t)th->tid;
	regs_fixup_restart(&regs, RESTART_RESTORED);
	tc->regs = regs_to_proto(&ctx->arena, &regs);
	if (ptrace_get_xstate(th->tid, &xstate, &xlen, err) < 0)
		return -1;
	tc->xstate.data = arena_memdup(&ctx->arena, xstate, xlen);
	tc->xstate.len = xlen;
	free(xstate);
	if (syscall(SYS_get_robust_list, th->tid, &head, &len) < 0)
		return cr_error(err, errno, "task %d: read robust futex list", th->tid);
	tc->robust_list = head;
	tc->robust_list_len = len;
	tc->comm = arena_strdup(&ctx->arena, th->status.name);
	return dump_rseq(ctx, th, err);
}

static int threads_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (collect_thread(ctx, &t->threads[i], err) < 0)
			return cr_error_wrap(err, "thread %d", t->threads[i].tid);
	return 0;
}

/* The blocked mask (as injection found it) and what only the thread itself
 * can tell. */
static void threads_ask(struct dump_ctx *ctx, struct dump_task *t)
{
	(void)ctx;
	ask_thread(t, &t->asked);
}

static int threads_answered(struct dump_ctx *ctx, struct dump_task *t, size_t first, cr_error_t *err)
{
	if (read_thread(ctx, t, &t->threads[0], &t->asked, first, err) < 0)
		return cr_error_wrap(err, "thread %d", t->pid);
	return 0;
}

static void threads_ask_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
			       struct inject_batch *b)
{
	(void)ctx;
	(void)th;
	ask_thread(t, b);
}

static int threads_answered_thread(struct dump_ctx *ctx, struct dump_task *t, struct dump_thread *th,
				   const struct inject_batch *b, size_t first, cr_error_t *err)
{
	if (read_thread(ctx, t, th, b, first, err) < 0)
		return cr_error_wrap(err, "thread %d", th->tid);
	return 0;
}

/* --------------------------------------------------------------- restore */

#define COMM_MAX 16
#define ROBUST_HEAD_LEN 24          /* sizeof(struct robust_list_head): set_robust_list wants exactly it */
#define RSEQ_MIN_LEN    32          /* ORIG_RSEQ_SIZE, also the area's alignment */
#define RSEQ_MAX_LEN    4096
#define SEL_RPL_USER    3           /* a user selector's requested privilege level */

/* What PTRACE_SETREGS refuses with EIO (arch/x86/kernel/ptrace.c):
 * selectors that are not user ones (cs and ss must be), and fs/gs bases
 * beyond user space. */
static bool bad_selector(uint64_t v, bool may_be_null)
{
	return v > 0xffff || (v == 0 ? !may_be_null : (v & 3) != SEL_RPL_USER);
}

#define VSYSCALL_PAGE UINT64_C(0xffffffffff600000)

/* A thread stopped where it can run: in an executable mapping (the vdso
 * is one), or in the vsyscall page. */
static bool rip_runs(const struct restore_task *t, uint64_t rip)
{
	if (rip >= VSYSCALL_PAGE && rip < VSYSCALL_PAGE + 4096)
		return true;
	for (size_t k = 0; t->mm != NULL && k < t->mm->n_vmas; k++) {
		const VmaEntry *v = t->mm->vmas[k];

		if (rip >= v->start && rip < v->end)
			return (v->prot & PROT_EXEC) != 0;
	}
	return false;
}

static int check_regs(const struct restore_task *t, size_t i, const GpRegs *r, cr_error_t *err)
{
	if (!rip_runs(t, r->rip))
		return cr_error(err, 0, "core-%d.img: thread %zu stopped at 0x%llx, in no executable mapping", t->pid,
				i, (unsigned long long)r->rip);
	if (bad_selector(r->cs, false) || bad_selector(r->ss, false) || bad_selector(r->ds, true) ||
	    bad_selector(r->es, true) || bad_selector(r->fs, true) || bad_selector(r->gs, true))
		return cr_error(err, 0, "core-%d.img: thread %zu: segment selectors cs 0x%llx ss 0x%llx ds 0x%llx "
				"es 0x%llx fs 0x%llx gs 0x%llx are not all user selectors", t->pid, i,
				(unsigned long long)r->cs, (unsigned long long)r->ss, (unsigned long long)r->ds,
				(unsigned long long)r->es, (unsigned long long)r->fs, (unsigned long long)r->gs);
	if (r->rsp >= regs_user_limit())
		return cr_error(err, 0, "core-%d.img: thread %zu: stack pointer 0x%llx is beyond user space", t->pid, i,
				(unsigned long long)r->rsp);
	if (r->fs_base >= regs_user_limit() || r->gs_base >= regs_user_limit())
		return cr_error(err, 0, "core-%d.img: thread %zu: fs base 0x%llx or gs base 0x%llx is beyond user "
				"space", t->pid, i, (unsigned long long)r->fs_base, (unsigned long long)r->gs_base);
	return 0;
}

/* Whether [addr, addr + len) lies in one writable mapping of the process. */
static bool in_writable_vma(const struct restore_task *t, uint64_t addr, uint64_t len)
{
	for (size_t k = 0; t->mm != NULL && k < t->mm->n_vmas; k++) {
		const VmaEntry *v = t->mm->vmas[k];

		if (addr >= v->start && addr < v->end)
			return (v->prot & PROT_WRITE) && len <= v->end - addr;
	}
	return false;
}

/* What rseq() and set_robust_list() would refuse, after the process
 * exists. */
static int check_registrations(const struct restore_task *t, size_t i, const ThreadCore *th, cr_error_t *err)
{
	const RseqEntry *rs = th->rseq;

	if (th->robust_list_len != ROBUST_HEAD_LEN)
		return cr_error(err, 0, "core-%d.img: thread %zu: robust futex list of %llu bytes, not %d", t->pid, i,
				(unsigned long long)th->robust_list_len, ROBUST_HEAD_LEN);
	if (th->altstack != NULL && !(th->altstack->flags & SS_DISABLE) &&
	    (th->altstack->size < (uint64_t)MINSIGSTKSZ || th->altstack->sp >= regs_user_limit() ||
	     th->altstack->size > regs_user_limit() - th->altstack->sp))
		return cr_error(err, 0, "core-%d.img: thread %zu: an alternate signal stack of %llu bytes at 0x%llx",
				t->pid, i, (unsigned long long)th->altstack->size, (unsigned long long)th->altstack->sp);
	if (rs != NULL && (rs->len < RSEQ_MIN_LEN || rs->len > RSEQ_MAX_LEN || rs->addr % RSEQ_MIN_LEN != 0 ||
			   !in_writable_vma(t, rs->addr, rs->len)))
		return cr_error(err, 0, "core-%d.img: thread %zu: an rseq area of %u bytes at 0x%llx, not an aligned "
				"area of a writable mapping", t->pid, i, rs->len, (unsigned long long)rs->addr);
	return 0;
}

/* Whether this machine can make cpuid fault: tried once, in a child (cr's
 * own cpuid must keep running). */
static bool cpuid_faulting_here(void)
{
	static int known = -1;
	int status;
	pid_t pid;

	if (known >= 0)
		return known;
	pid = fork();
	if (pid == 0)
		_exit(syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) == 0 ? 0 : 1);
	known = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	return known;
}

static int threads_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	uint32_t xstate_size = ctx->inv->xstate_size;
	uint64_t xfeatures = ctx->inv->xfeatures, host = regs_host_xfeatures();

	if (t->core->n_threads == 0 || t->core->n_threads != t->pstree->n_threads)
		return cr_error(err, 0, "core-%d.img: %zu threads, pstree.img says %zu", t->pid, t->core->n_threads,
				t->pstree->n_threads);
	if (xfeatures & ~host)
		return cr_error(err, 0, "the dump uses CPU state features 0x%llx but this CPU offers 0x%llx; "
				"restore on a CPU with the same features", (unsigned long long)xfeatures,
				(unsigned long long)host);
	for (size_t i = 0; i < t->core->n_threads; i++) {
		const ThreadCore *th = t->core->threads[i];

		if (th->tid != t->pstree->threads[i]->ns_tid[0] || strlen(th->comm) >= COMM_MAX)
			return cr_error(err, 0, "core-%d.img: thread %zu disagrees with pstree.img or has a bad name",
					t->pid, i);
		if (th->regs == NULL || th->xstate.len != xstate_size)
			return cr_error(err, 0, "core-%d.img: thread %zu: register state is incomplete", t->pid, i);
		if (regs_xstate_bv(th->xstate.data, th->xstate.len) & ~xfeatures)
			return cr_error(err, 0, "core-%d.img: thread %zu: xstate holds features outside the "
					"dump's set", t->pid, i);
		if (t->pstree->threads[i]->n_ns_tid != t->pstree->n_ns_pid)
			return cr_error(err, 0, "pstree.img: pid %d thread %zu has %zu tid levels, not %zu",
					t->pid, i, t->pstree->threads[i]->n_ns_tid, t->pstree->n_ns_pid);
		if (th->has_tsc_mode && th->tsc_mode != PR_TSC_SIGSEGV)
			return cr_error(err, 0, "core-%d.img: thread %zu: TSC mode %u", t->pid, i, th->tsc_mode);
		if (th->has_cpuid_faults && th->cpuid_faults && !cpuid_faulting_here())
			return cr_error(err, 0, "pid %d thread %zu made cpuid fault (ARCH_SET_CPUID); this machine cannot",
					t->pid, i);
		if (th->has_mce_kill && th->mce_kill != PR_MCE_KILL_EARLY && th->mce_kill != PR_MCE_KILL_LATE)
			return cr_error(err, 0, "core-%d.img: thread %zu: machine-check kill policy %u", t->pid, i,
					th->mce_kill);
		if (check_regs(t, i, th->regs, err) < 0 || check_registrations(t, i, th, err) < 0)
			return -1;
	}
	return 0;
}


/* clone3 for a thread that parks at once: the child side runs only the
 * instructions below, never returning into C (it shares cr's stack). */
static long clone_parked_thread(struct clone_args *args)
{
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "2: mov %[pause], %%eax\n\t"
			 "syscall\n\t"
			 "jmp 2b\n\t"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof(*args)), [pause] "i"(SYS_pause)
			 : "rcx", "r11", "memory");
	return ret;
}

/* In the child: the main thread's name, then the other threads, each with
 * its tids, parked in a pause() loop that touches no memory until the
 * restorer takes it over. */
static int threads_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	(void)ctx;
	if (prctl(PR_SET_NAME, t->core->threads[0]->comm, 0, 0, 0) < 0)
		return cr_error(err, errno, "set thread name");
	for (size_t i = 1; i < t->pstree->n_threads; i++) {
		const ThreadIds *ids = t->pstree->threads[i];
		pid_t set_tid[64];
		struct clone_args args;
		long r;

		for (size_t l = t->level_base; l < ids->n_ns_tid; l++)
			set_tid[ids->n_ns_tid - 1 - l] = (pid_t)ids->ns_tid[l];
		memset(&args, 0, sizeof(args));
		args.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
		args.set_tid = (uint64_t)(uintptr_t)set_tid;
		args.set_tid_size = ids->n_ns_tid - t->level_base;
		r = clone_parked_thread(&args);
		if (r < 0)
			return cr_error(err, (int)-r, "create thread %u", ids->ns_tid[ids->n_ns_tid - 1]);
	}
	return 0;
}

/* Everything a thread's kernel state needs; the batch must be run by the
 * thread itself: these calls act on the calling thread.  They share the
 * trampoline's slots with the other threads': each thread's batch runs
 * before the next thread's is queued. */
static int threads_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
				cr_error_t *err)
{
	const ThreadCore *tc = th->core;
	const SigaltstackEntry *a = tc->altstack;
	char comm[16] = { 0 };

	(void)ctx;
	strncpy(comm, tc->comm, sizeof(comm) - 1);
	if (remote_write(t->host_pid, t->tramp + TRAMP_COMM, comm, sizeof(comm), err) < 0)
		return -1;
	if (tc->rseq)
		inject_batch_add(&t->batch, "register rseq", SYS_rseq, tc->rseq->addr, tc->rseq->len, 0,
				 tc->rseq->sig, 0, 0);
	inject_batch_add(&t->batch, "set robust futex list", SYS_set_robust_list, tc->robust_list,
			 tc->robust_list_len, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "set clear_child_tid", SYS_set_tid_address, tc->clear_child_tid, 0, 0, 0, 0, 0);
	inject_batch_add(&t->batch, "set thread name", SYS_prctl, PR_SET_NAME, t->tramp + TRAMP_COMM, 0, 0, 0, 0);
	if (a && !(a->flags & SS_DISABLE)) {
		struct kstack ss = { .sp = a->sp, .flags = (int32_t)(a->flags & ~(uint32_t)SS_ONSTACK),
				     .size = a->size };

		if (remote_write(t->host_pid, t->tramp + TRAMP_ALTSTACK, &ss, sizeof(ss), err) < 0)
			return -1;
		inject_batch_add(&t->batch, "set alternate signal stack", SYS_sigaltstack,
				 t->tramp + TRAMP_ALTSTACK, 0, 0, 0, 0, 0);
	}
	if (tc->has_tsc_mode)
		inject_batch_add(&t->batch, "make rdtsc fault", SYS_prctl, PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0, 0);
	if (tc->has_mce_kill)
		inject_batch_add(&t->batch, "set the machine-check kill policy", SYS_prctl, PR_MCE_KILL,
				 PR_MCE_KILL_SET, tc->mce_kill, 0, 0, 0);
	if (tc->has_cpuid_faults && tc->cpuid_faults)
		inject_batch_add(&t->batch, "make cpuid fault", SYS_arch_prctl, ARCH_SET_CPUID, 0, 0, 0, 0, 0);
	return 0;
}

static int set_thread_state(struct restore_thread *th, cr_error_t *err)
{
	struct user_regs_struct regs;

	regs_from_proto(th->core->regs, &regs);
	if (ptrace_set_sigmask(th->tid, th->core->sigmask, err) < 0 ||
	    ptrace_set_xstate(th->tid, th->core->xstate.data, th->core->xstate.len, err) < 0)
		return -1;
	th->inj.active = 0;
	return ptrace_set_regs(th->tid, &regs, err);
}

int thread_restore_final(struct restore_task *t, cr_error_t *err)
{
	struct restore_thread *main_th = &t->threads[0];
	long r;

	for (size_t i = 1; i < t->n_threads; i++)
		if (set_thread_state(&t->threads[i], err) < 0)
			return -1;
	/* The dumped mask goes in only at the exit stop: set before, a pending
	 * signal it unblocks would be delivered instead of the syscall. */
	if (inject_syscall(&main_th->inj, SYS_munmap, t->tramp, t->tramp_size, 0, 0, 0, 0, &r, err) < 0)
		return -1;
	if (r != 0)
		return cr_error(err, (int)-r, "pid %d: unmap the trampoline", t->pid);
	return set_thread_state(main_th, err);
}

const struct state_kind state_threads = {
	.name = "threads",
	.collect = threads_collect,
	.ask = threads_ask,
	.answered = threads_answered,
	.ask_thread = threads_ask_thread,
	.answered_thread = threads_answered_thread,
	.validate = threads_validate,
	.setup = threads_setup,
	.apply_thread = threads_apply_thread,
};
