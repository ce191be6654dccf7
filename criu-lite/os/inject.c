#include "os/inject.h"
#include "os/ptrace.h"
#include "os/xalloc.h"
#include "os/supervise.h"
#include "os/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define SYSCALL_STOP (SIGTRAP | 0x80)

int inject_prepare(struct injector *ij, pid_t tid, uint64_t syscall_ip, cr_error_t *err)
{
	memset(ij, 0, sizeof(*ij));
	ij->tid = tid;
	ij->syscall_ip = syscall_ip;
	if (ptrace_get_regs(tid, &ij->orig, err) < 0)
		return -1;
	return ptrace_get_sigmask(tid, &ij->orig_sigmask, err);
}

int inject_start(struct injector *ij, cr_error_t *err)
{
	if (ptrace_set_sigmask(ij->tid, ~0ULL, err) < 0)
		return -1;
	ij->active = 1;
	return 0;
}

int inject_begin(struct injector *ij, pid_t tid, uint64_t syscall_ip, cr_error_t *err)
{
	if (inject_prepare(ij, tid, syscall_ip, err) < 0)
		return -1;
	return inject_start(ij, err);
}

/* Resumes tid with request (PTRACE_SYSCALL, PTRACE_CONT) and waits for its
 * next stop.  A task seized in a group stop reports that stop
 * (PTRACE_EVENT_STOP) once more when first resumed; it runs when resumed
 * again.  to says what it was resumed for. */
static int resume_to_stop(pid_t tid, enum __ptrace_request request, const char *to, int *status,
			  cr_error_t *err)
{
	for (int tries = 0; tries < 4; tries++) {
		if (ptrace(request, tid, NULL, NULL) < 0)
			return cr_error(err, errno, "resume task %d to %s", tid, to);
		if (ptrace_wait_stop(tid, status, err) < 0)
			return -1;
		if (*status >> 16 != PTRACE_EVENT_STOP)
			break;
	}
	return 0;
}

static int step_to_syscall_stop(pid_t tid, const char *which, cr_error_t *err)
{
	char to[64];
	int status;

	snprintf(to, sizeof(to), "syscall %s", which);
	if (resume_to_stop(tid, PTRACE_SYSCALL, to, &status, err) < 0)
		return -1;
	if (WSTOPSIG(status) != SYSCALL_STOP)
		return cr_error(err, 0, "task %d: expected syscall %s stop, got stop signal %d (event %d)",
				tid, which, WSTOPSIG(status), status >> 16);
	return 0;
}

int inject_syscall(struct injector *ij, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret, cr_error_t *err)
{
	struct user_regs_struct regs = ij->orig;

	/* Only here, with the task stopped, may an interrupted dump give up. */
	if (cr_should_stop())
		return cr_error(err, EINTR, "interrupted");
	regs.rax = (uint64_t)nr;
	regs.orig_rax = (uint64_t)-1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	regs.rip = ij->syscall_ip;
	if (ptrace_set_regs(ij->tid, &regs, err) < 0)
		return -1;
	if (step_to_syscall_stop(ij->tid, "entry", err) < 0)
		return -1;
	if (step_to_syscall_stop(ij->tid, "exit", err) < 0)
		return -1;
	if (ptrace_get_regs(ij->tid, &regs, err) < 0)
		return -1;
	*ret = (long)regs.rax;
	return 0;
}

int inject_call(struct injector *ij, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, uint64_t a6, long *ret, cr_error_t *err)
{
	long r;

	if (inject_syscall(ij, nr, a1, a2, a3, a4, a5, a6, &r, err) < 0)
		return cr_error_wrap(err, "%s", what);
	if (r < 0 && r > -4096)
		return cr_error(err, (int)-r, "task %d: %s", ij->tid, what);
	if (ret != NULL)
		*ret = r;
	return 0;
}

int inject_end(struct injector *ij, cr_error_t *err)
{
	if (!ij->active)
		return 0;
	ij->active = 0;
	if (ptrace_set_regs(ij->tid, &ij->orig, err) < 0)
		return -1;
	return ptrace_set_sigmask(ij->tid, ij->orig_sigmask, err);
}

/* The batch loop: r12 walks the calls, r13 counts them down; r14 is 1
 * for a call that may fail (BATCH_MAY_FAIL in its number). */
__asm__(".pushsection .rodata\n"
	".globl inject_batch_code\n"
	"inject_batch_code:\n"
	"	mov %rdi, %r12\n"
	"	mov %rsi, %r13\n"
	"1:	test %r13, %r13\n"
	"	jz 3f\n"
	"	mov (%r12), %rax\n"
	"	xor %r14d, %r14d\n"
	"	btr $63, %rax\n"
	"	adc $0, %r14\n"
	"	mov 8(%r12), %rdi\n"
	"	mov 16(%r12), %rsi\n"
	"	mov 24(%r12), %rdx\n"
	"	mov 32(%r12), %r10\n"
	"	mov 40(%r12), %r8\n"
	"	mov 48(%r12), %r9\n"
	"	syscall\n"
	"	mov %rax, 56(%r12)\n"
	"	test %r14, %r14\n"
	"	jnz 2f\n"
	"	cmp $-4095, %rax\n"
	"	jae 3f\n"
	"2:	add $64, %r12\n"
	"	dec %r13\n"
	"	jmp 1b\n"
	"3:	mov $39, %eax\n"      /* getpid */
	"	syscall\n"
	"	mov %rax, %rdi\n"
	"	mov $186, %eax\n"     /* gettid */
	"	syscall\n"
	"	mov %rax, %rsi\n"
	"	mov $19, %edx\n"      /* SIGSTOP */
	"	mov $234, %eax\n"     /* tgkill */
	"	syscall\n"
	"4:	jmp 4b\n"
	".globl inject_batch_code_end\n"
	"inject_batch_code_end:\n"
	".popsection\n");

_Static_assert(sizeof(struct batch_call) == 64, "the batch loop reads 64-byte calls");

#define BATCH_MAY_FAIL (UINT64_C(1) << 63)

static void add_call(struct inject_batch *b, const char *what, uint64_t nr, const uint64_t a[6])
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		b->calls = xreallocarray(b->calls, cap, sizeof(*b->calls));
		b->what = xreallocarray(b->what, cap, sizeof(*b->what));
		b->cap = cap;
	}
	b->calls[b->n] = (struct batch_call){ .nr = nr, .arg = { a[0], a[1], a[2], a[3], a[4], a[5] } };
	b->what[b->n++] = what;
}

void inject_batch_add(struct inject_batch *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, uint64_t a5, uint64_t a6)
{
	add_call(b, what, (uint64_t)nr, (const uint64_t[6]){ a1, a2, a3, a4, a5, a6 });
}

void inject_batch_try(struct inject_batch *b, const char *what, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		      uint64_t a4, uint64_t a5, uint64_t a6)
{
	add_call(b, what, (uint64_t)nr | BATCH_MAY_FAIL, (const uint64_t[6]){ a1, a2, a3, a4, a5, a6 });
}

void inject_batch_free(struct inject_batch *b)
{
	free(b->calls);
	free(b->what);
	memset(b, 0, sizeof(*b));
}

static int wait_batch_stop(pid_t tid, cr_error_t *err)
{
	int status;

	if (resume_to_stop(tid, PTRACE_CONT, "run a batch", &status, err) < 0)
		return -1;
	if (WSTOPSIG(status) != SIGSTOP || (status >> 16) != 0)
		return cr_error(err, 0, "task %d: a batch of syscalls ended with stop signal %d (event %d)", tid,
				WSTOPSIG(status), status >> 16);
	return 0;
}

static int run_piece(struct injector *ij, uint64_t code, uint64_t area, struct batch_call *calls,
		     const char **what, size_t n, cr_error_t *err)
{
	struct user_regs_struct regs = ij->orig;
	size_t len = n * sizeof(*calls);
	struct iovec local = { .iov_base = calls, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)area, .iov_len = len };

	if (cr_should_stop())
		return cr_error(err, EINTR, "interrupted");
	if (process_vm_writev(ij->tid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return cr_error(err, errno, "task %d: write a batch of %zu syscalls", ij->tid, n);
	regs.rip = code;
	regs.rdi = area;
	regs.rsi = n;
	regs.orig_rax = (uint64_t)-1;
	if (ptrace_set_regs(ij->tid, &regs, err) < 0 || wait_batch_stop(ij->tid, err) < 0)
		return -1;
	if (process_vm_readv(ij->tid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return cr_error(err, errno, "task %d: read a batch's results", ij->tid);
	for (size_t i = 0; i < n; i++)
		if (calls[i].ret < 0 && calls[i].ret > -4096 && !(calls[i].nr & BATCH_MAY_FAIL))
			return cr_error(err, (int)-calls[i].ret, "task %d: %s", ij->tid, what[i]);
	return 0;
}

int inject_batch_run(struct injector *ij, uint64_t code, uint64_t area, size_t area_size, struct inject_batch *b,
		     cr_error_t *err)
{
	size_t per = area_size / sizeof(struct batch_call);
	int ret = 0;

	for (size_t i = 0; i < b->n && ret == 0; i += per)
		ret = run_piece(ij, code, area, b->calls + i, b->what + i, b->n - i < per ? b->n - i : per, err);
	b->n = 0;
	return ret;
}

/* The first `syscall` instruction in [start, end), read in chunks; 1 if
 * found, 0 if not, -1 if the memory cannot be read. */
static int scan_for_syscall(pid_t pid, uint64_t start, uint64_t end, uint64_t *ip)
{
	enum { CHUNK = 64 << 10 };
	cleanup_free unsigned char *buf = xmalloc(CHUNK + 1);

	for (uint64_t at = start; at + 1 < end; at += CHUNK) {
		size_t len = end - at > CHUNK + 1 ? CHUNK + 1 : (size_t)(end - at);   /* one byte of overlap */
		struct iovec local = { .iov_base = buf, .iov_len = len };
		struct iovec remote = { .iov_base = (void *)at, .iov_len = len };

		if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
			return -1;
		for (size_t i = 0; i + 1 < len; i++) {
			if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
				*ip = at + i;
				return 1;
			}
		}
	}
	return 0;
}

int inject_find_syscall(pid_t pid, const struct proc_vma_list *vmas, uint64_t *ip, cr_error_t *err)
{
	int r;

	for (size_t i = 0; i < vmas->n; i++) {
		const struct proc_vma *v = &vmas->v[i];

		if (v->special != VMA_SPECIAL_VDSO)
			continue;
		r = scan_for_syscall(pid, v->start, v->end, ip);
		if (r < 0)
			return cr_error(err, errno, "read the vdso of %d at 0x%lx", pid, (unsigned long)v->start);
		if (r > 0)
			return 0;
	}
	/* No vdso (the process unmapped it): its own code, as it is now. */
	for (size_t i = 0; i < vmas->n; i++) {
		const struct proc_vma *v = &vmas->v[i];

		if ((v->prot & PROT_EXEC) && v->special != VMA_SPECIAL_VSYSCALL &&
		    scan_for_syscall(pid, v->start, v->end, ip) > 0)
			return 0;
	}
	return cr_error(err, 0, "pid %d: no syscall instruction in its vdso nor in its executable memory, where "
			"cr needs one to run syscalls in the process", pid);
}
