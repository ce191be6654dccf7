#include "thread.h"
#include "ptrace.h"
#include "regs.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define RSEQ_FLAG_UNREGISTER 1

struct kstack {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

static int read_scratch(const struct dump_task *t, uint64_t off, void *buf, size_t len, cr_error_t *err)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)(t->scratch + off), .iov_len = len };

	if (process_vm_readv(t->pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return cr_error(err, errno, "pid %d: read injected results", t->pid);
	return 0;
}

static int dump_rseq(struct dump_ctx *ctx, struct dump_task *t, ThreadCore *th, cr_error_t *err)
{
	struct ptrace_rseq_configuration conf;
	bool has;

	if (ptrace_get_rseq(t->pid, &conf, &has, err) < 0)
		return -1;
	if (!has)
		return 0;
	th->rseq = arena_new(&ctx->arena, RseqEntry);
	rseq_entry__init(th->rseq);
	th->rseq->addr = conf.rseq_abi_pointer;
	th->rseq->len = conf.rseq_abi_size;
	th->rseq->sig = conf.signature;
	return 0;
}

static int dump_injected(struct dump_ctx *ctx, struct dump_task *t, ThreadCore *th, cr_error_t *err)
{
	struct kstack ss;
	uint64_t tid_addr;

	if (inject_call(&t->inj, "read alternate stack", SYS_sigaltstack, 0, t->scratch + SCRATCH_ALTSTACK, 0, 0,
			0, 0, NULL, err) < 0 ||
	    inject_call(&t->inj, "read clear_child_tid", SYS_prctl, PR_GET_TID_ADDRESS,
			t->scratch + SCRATCH_TID_ADDRESS, 0, 0, 0, 0, NULL, err) < 0)
		return -1;
	if (read_scratch(t, SCRATCH_ALTSTACK, &ss, sizeof(ss), err) < 0 ||
	    read_scratch(t, SCRATCH_TID_ADDRESS, &tid_addr, sizeof(tid_addr), err) < 0)
		return -1;
	th->clear_child_tid = tid_addr;
	th->altstack = arena_new(&ctx->arena, SigaltstackEntry);
	sigaltstack_entry__init(th->altstack);
	th->altstack->sp = ss.sp;
	th->altstack->flags = (uint32_t)ss.flags;
	th->altstack->size = ss.size;
	return 0;
}

int thread_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	ThreadCore *th = t->core->threads[0];
	void *xstate = NULL;
	size_t xlen = 0;
	uint64_t head = 0, len = 0;

	th->tid = (uint32_t)t->pid;
	th->regs = regs_to_proto(&ctx->arena, &t->regs);
	if (ptrace_get_xstate(t->pid, &xstate, &xlen, err) < 0)
		return -1;
	th->xstate.data = arena_memdup(&ctx->arena, xstate, xlen);
	th->xstate.len = xlen;
	free(xstate);
	if (syscall(SYS_get_robust_list, t->pid, &head, &len) < 0)
		return cr_error(err, errno, "task %d: read robust futex list", t->pid);
	th->robust_list = head;
	th->robust_list_len = len;
	th->comm = arena_strdup(&ctx->arena, t->status.name);
	if (dump_rseq(ctx, t, th, err) < 0)
		return -1;
	return dump_injected(ctx, t, th, err);
}

int thread_validate(const struct restore_task *t, uint32_t xstate_size, uint64_t xfeatures, cr_error_t *err)
{
	const ThreadCore *th;
	uint64_t host = regs_host_xfeatures();

	if (t->core->n_threads != 1)
		return cr_error(err, 0, "core-%d.img: %zu threads; this version restores single-threaded "
				"processes", t->pid, t->core->n_threads);
	th = t->core->threads[0];
	if (th->regs == NULL || th->xstate.len != xstate_size)
		return cr_error(err, 0, "core-%d.img: register state is incomplete", t->pid);
	if (xfeatures & ~host)
		return cr_error(err, 0, "the dump uses CPU state features 0x%llx but this CPU offers 0x%llx; "
				"restore on a CPU with the same features", (unsigned long long)xfeatures,
				(unsigned long long)host);
	if (regs_xstate_bv(th->xstate.data, th->xstate.len) & ~xfeatures)
		return cr_error(err, 0, "core-%d.img: xstate holds features outside the dump's set", t->pid);
	return 0;
}

int thread_restore_child(const struct restore_task *t, cr_error_t *err)
{
	if (prctl(PR_SET_NAME, t->core->threads[0]->comm, 0, 0, 0) < 0)
		return cr_error(err, errno, "set thread name");
	return 0;
}

int thread_forget_cr_rseq(struct restore_task *t, cr_error_t *err)
{
	struct ptrace_rseq_configuration conf;
	bool has;

	if (ptrace_get_rseq(t->pid, &conf, &has, err) < 0)
		return -1;
	if (!has)
		return 0;
	return inject_call(&t->inj, "unregister cr's rseq", SYS_rseq, conf.rseq_abi_pointer, conf.rseq_abi_size,
			   RSEQ_FLAG_UNREGISTER, conf.signature, 0, 0, NULL, err);
}

static int restore_altstack(struct restore_task *t, const SigaltstackEntry *a, cr_error_t *err)
{
	struct kstack ss = { .sp = a->sp, .flags = (int32_t)(a->flags & ~(uint32_t)SS_ONSTACK), .size = a->size };
	struct iovec local = { .iov_base = &ss, .iov_len = sizeof(ss) };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)(t->tramp + TRAMP_ALTSTACK), .iov_len = sizeof(ss) };

	if (a->flags & SS_DISABLE)
		return 0;
	if (process_vm_writev(t->pid, &local, 1, &remote, 1, 0) != sizeof(ss))
		return cr_error(err, errno, "pid %d: write altstack", t->pid);
	return inject_call(&t->inj, "set alternate signal stack", SYS_sigaltstack, t->tramp + TRAMP_ALTSTACK, 0,
			   0, 0, 0, 0, NULL, err);
}

int thread_restore_injected(struct restore_task *t, cr_error_t *err)
{
	const ThreadCore *th = t->core->threads[0];

	if (th->rseq && inject_call(&t->inj, "register rseq", SYS_rseq, th->rseq->addr, th->rseq->len, 0,
				    th->rseq->sig, 0, 0, NULL, err) < 0)
		return -1;
	if (inject_call(&t->inj, "set robust futex list", SYS_set_robust_list, th->robust_list,
			th->robust_list_len, 0, 0, 0, 0, NULL, err) < 0 ||
	    inject_call(&t->inj, "set clear_child_tid", SYS_set_tid_address, th->clear_child_tid, 0, 0, 0, 0, 0,
			NULL, err) < 0)
		return -1;
	if (th->altstack && restore_altstack(t, th->altstack, err) < 0)
		return -1;
	return 0;
}

int thread_restore_final(struct restore_task *t, cr_error_t *err)
{
	const ThreadCore *th = t->core->threads[0];
	struct user_regs_struct regs;
	long r;

	if (ptrace_set_sigmask(t->pid, th->sigmask, err) < 0)
		return -1;
	if (inject_syscall(&t->inj, SYS_munmap, t->tramp, t->tramp_size, 0, 0, 0, 0, &r, err) < 0)
		return -1;
	if (r != 0)
		return cr_error(err, (int)-r, "pid %d: unmap the trampoline", t->pid);
	t->inj.active = 0;   /* the trampoline is gone: nothing more to inject */
	regs_from_proto(th->regs, &regs);
	if (ptrace_set_xstate(t->pid, th->xstate.data, th->xstate.len, err) < 0)
		return -1;
	return ptrace_set_regs(t->pid, &regs, err);
}
