/* Collecting what each process of the frozen tree holds.
 *
 * The driver reads what the machinery itself needs (status, stat, pid
 * namespaces, the mappings with their flags from smaps, each thread's
 * registers with the restart fixup); then
 * every kind of state collects from outside, then, with every thread in
 * injection and a scratch page mapped in the process, by injected
 * syscalls.  Injection leaves no trace: the scratch page is unmapped and
 * every register and signal mask put back, here or by release_tree. */
#include "dump/guard.h"
#include "dump/steps.h"
#include "fd/fdkind.h"
#include "fd/inet_diag.h"
#include "os/log.h"
#include "os/supervise.h"
#include "os/ptrace.h"
#include "os/regs.h"
#include "os/util.h"
#include "state/state.h"
#include "state/pagedata.h"
#include "state/track.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The process's messages, which the kinds fill in: core-PID.img and
 * mm-PID.img hold one each. */
static void init_task_protos(struct dump_ctx *ctx, struct dump_task *t)
{
	t->core = arena_new(&ctx->arena, CoreEntry);
	core_entry__init(t->core);
	t->core->pid = (uint32_t)t->pid;
	t->core->threads = arena_array(&ctx->arena, ThreadCore *, t->n_threads);
	t->core->n_threads = t->n_threads;
	for (size_t i = 0; i < t->n_threads; i++) {
		ThreadCore *tc = arena_new(&ctx->arena, ThreadCore);

		thread_core__init(tc);
		t->threads[i].core = tc;
		t->core->threads[i] = tc;
	}
	t->mm = arena_new(&ctx->arena, MmEntry);
	mm_entry__init(t->mm);
	t->img[CR_IMG_CORE] = (struct img_msgs){ .v = arena_memdup(&ctx->arena, &t->core, sizeof(t->core)), .n = 1 };
	t->img[CR_IMG_MM] = (struct img_msgs){ .v = arena_memdup(&ctx->arena, &t->mm, sizeof(t->mm)), .n = 1 };
}

/* ------------------------------------------------------------ injection */

/* What injection must put back, read (and recorded by the caller) before
 * anything changes. */
static int prepare_injection(struct dump_task *t, uint64_t ip, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct dump_thread *th = &t->threads[i];

		if (inject_prepare(&th->inj, th->tid, ip, err) < 0)
			return -1;
		/* Released, the task goes on as if never stopped; the image
		 * gets the restore's fixup instead (threads.c). */
		th->inj.orig = th->regs;
		regs_fixup_restart(&th->inj.orig, RESTART_UNSIGNALLED);
	}
	return 0;
}

/* A SIGSTOP sent to a process that is stopped already stays pending until
 * the SIGCONT that ends the stop discards it: it can change nothing (and
 * is left out of the images: state/signals.c).  But the first thing a
 * thread does when cr resumes it is to take it, where cr expects its own
 * stops: so each thread takes it now, every other signal blocked by the
 * injection (whose record already holds the mask to put back), and cr
 * drops it. */
static int drop_pending_sigstop(struct dump_task *t, size_t i, cr_error_t *err)
{
	pid_t tid = t->threads[i].tid;
	int status;

	for (int tries = 0; tries < 8; tries++) {
		bool pending;

		if (dump_sigstop_pending(t, i, &pending, err) < 0)
			return -1;
		if (!pending)
			return 0;
		if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
			return cr_error(err, errno, "resume task %d to take its pending SIGSTOP", tid);
		if (ptrace_wait_stop(tid, &status, err) < 0)
			return -1;
		if (status >> 16 == 0 && WSTOPSIG(status) != SIGSTOP)
			return cr_error(err, 0, "task %d took signal %d, not its pending SIGSTOP", tid,
					WSTOPSIG(status));
		pr_debug("task %d: stopped, dropped a pending SIGSTOP (stop %d, event %d)", tid, WSTOPSIG(status),
			 status >> 16);
	}
	return cr_error(err, 0, "task %d: its pending SIGSTOP stays pending", tid);
}

static int start_injection(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (inject_start(&t->threads[i].inj, err) < 0 ||
		    (t->was_stopped && drop_pending_sigstop(t, i, err) < 0))
			return -1;
	return 0;
}

/* Where the scratch pages go: chosen (and recorded) before they are
 * mapped, so that a guardian knows what to unmap whatever moment the dump
 * dies at.  The highest hole in user space with a free page on each side. */
#define USER_SPACE_TOP 0x7ffffffff000ULL

static int scratch_hole(const struct dump_task *t, uint64_t *at, cr_error_t *err)
{
	uint64_t need = SCRATCH_SIZE + 2 * PAGE_SIZE_CR, top = USER_SPACE_TOP;

	for (size_t i = t->vmas.n; i-- > 0;) {
		const struct proc_vma *v = &t->vmas.v[i];

		if (v->start >= USER_SPACE_TOP)
			continue;   /* [vsyscall] */
		if (top > v->end && top - v->end >= need) {
			*at = top - PAGE_SIZE_CR - SCRATCH_SIZE;
			return 0;
		}
		if (v->start < top)
			top = v->start;
	}
	if (top >= need + (1ULL << 20)) {
		*at = top - PAGE_SIZE_CR - SCRATCH_SIZE;
		return 0;
	}
	return cr_error(err, 0, "pid %d: no hole of %d bytes for cr's scratch pages", t->pid, (int)need);
}

static int end_injection(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++)
		if (inject_end(&t->threads[i].inj, err) < 0)
			return -1;
	return 0;
}

/* Writes through /proc/PID/mem, which (as a debugger's breakpoints do)
 * may write where the process itself may not. */
static int write_forced(pid_t pid, uint64_t addr, const void *buf, size_t len, cr_error_t *err)
{
	char path[64];
	cleanup_close int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, buf, len, (off_t)addr) != (ssize_t)len)
		return cr_error(err, errno, "write %zu bytes at 0x%llx through %s", len, (unsigned long long)addr, path);
	return 0;
}

/* Memory-deny-write-execute (PR_SET_MDWE) refuses a mapping that is both
 * writable and executable, and refuses to make one executable: the batch
 * loop's page is then mapped read-execute on its own, over the end of a
 * read-write scratch area, and the loop written into it by force. */
static int map_scratch_mdwe(struct dump_task *t, uint64_t at, cr_error_t *err)
{
	long addr;

	if (inject_call(t->inj, "map scratch pages", SYS_mmap, at, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &addr, err) < 0)
		return -1;
	t->scratch = (uint64_t)addr;
	if (t->scratch != at)
		return cr_error(err, 0, "task %d: scratch pages mapped at 0x%lx, not 0x%llx", t->pid, addr,
				(unsigned long long)at);
	if (inject_call(t->inj, "map the batch loop's page", SYS_mmap, t->scratch + SCRATCH_BATCH,
			SCRATCH_SIZE - SCRATCH_BATCH, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			(uint64_t)-1, 0, &addr, err) < 0)
		return -1;
	if (write_forced(t->pid, t->scratch + SCRATCH_BATCH, inject_batch_code, INJECT_BATCH_CODE_SIZE, err) < 0)
		return cr_error_wrap(err, "write the batch loop");
	return 0;
}

_Static_assert(SCRATCH_BATCH % PAGE_SIZE_CR == 0 && SCRATCH_PROG + SCRATCH_PROG_SIZE <= SCRATCH_BATCH &&
		       SCRATCH_BATCH + PAGE_SIZE_CR == SCRATCH_SIZE,
	       "the batch loop has the scratch area's last page to itself");

/* Every thread in injection, the scratch page mapped with the batch loop
 * in it; what a guardian needs to undo this is recorded first. */
static int map_scratch(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	uint64_t ip, at = 0;
	long addr;

	if (inject_find_syscall(t->pid, &t->vmas, &ip, err) < 0 || scratch_hole(t, &at, err) < 0 || prepare_injection(t, ip, err) < 0)
		return -1;
	if (guard_note_injection(ctx, t, at, err) < 0 || start_injection(t, err) < 0)
		return -1;
	if (inject_syscall(t->inj, SYS_mmap, at, SCRATCH_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0, &addr, err) < 0)
		return cr_error_wrap(err, "map scratch pages");
	if (addr == -EACCES)
		return map_scratch_mdwe(t, at, err);
	if (addr < 0 && addr > -4096)
		return cr_error(err, (int)-addr, "task %d: map scratch pages at 0x%llx", t->inj->tid,
				(unsigned long long)at);
	t->scratch = (uint64_t)addr;
	if (t->scratch != at)
		return cr_error(err, 0, "task %d: scratch pages mapped at 0x%lx, not 0x%llx", t->pid, addr,
				(unsigned long long)at);
	if (remote_write(t->pid, t->scratch + SCRATCH_BATCH, inject_batch_code, INJECT_BATCH_CODE_SIZE, err) < 0)
		return cr_error_wrap(err, "write the batch loop");
	return 0;
}

static int unmap_scratch(struct dump_task *t, cr_error_t *err)
{
	if (inject_call(t->inj, "unmap scratch page", SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0, 0, 0, NULL,
			err) < 0)
		return -1;
	t->scratch = 0;
	return end_injection(t, err);
}

/* ------------------------------------------------------------ a process */

/* Where the kernel's mode is "seccomp", installing a filter forces the
 * mitigation (arch_seccomp_spec_mitigate), and cr installs the thread's
 * filters again without SECCOMP_FILTER_FLAG_SPEC_ALLOW: the forced state
 * of a filtered thread comes back with them. */
static bool seccomp_forces(const struct dump_thread *th, const char *what)
{
	const char *file = strncmp(what, "speculative store bypass", 24) == 0 ?
				   "/sys/devices/system/cpu/vulnerabilities/spec_store_bypass" :
				   "/sys/devices/system/cpu/vulnerabilities/spectre_v2";
	cleanup_free char *text = NULL;
	cr_error_t ignored = NULL;
	size_t len;
	bool forces;

	if (th->status.seccomp != 2 || strstr(what, "force") == NULL)
		return false;
	forces = read_whole_file_at(AT_FDCWD, file, &text, &len, &ignored) == 0 && strstr(text, "seccomp") != NULL;
	cr_error_release(&ignored);
	return forces;
}

/* A mitigation the thread chose (PR_SET_SPECULATION_CTRL) would be lost:
 * a restored thread has the system's default.  (PR_SPEC_DISABLE_NOEXEC
 * shows in /proc as "vulnerable", and the L1D flush not at all: those are
 * not seen.) */
static int check_speculation(const struct dump_thread *th, cr_error_t *err)
{
	char what[96];

	if (proc_status_spec_chosen(&th->status, what, sizeof(what)) == NULL || seccomp_forces(th, what))
		return 0;
	return cr_error(err, 0, "thread %d: unsupported: a speculation mitigation it chose (PR_SET_SPECULATION_CTRL, "
			"%s), which cr does not restore", th->tid, what);
}

static int collect_threads(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_threads; i++) {
		struct dump_thread *th = &t->threads[i];

		if (proc_read_status(t->pid, th->tid, &th->status, err) < 0 || check_speculation(th, err) < 0 ||
		    ptrace_get_regs(th->tid, &th->regs, err) < 0)
			return -1;
	}
	return 0;
}

/* A zombie has no namespaces left to show: it lived in its parent's
 * namespace for children, unless it was that namespace's init. */
static void zombie_pidns(struct dump_ctx *ctx, struct dump_task *t)
{
	const struct dump_task *parent = dump_find_task(ctx, t->ppid);

	t->pidns = parent ? parent->pidns_for_children : 0;
	if (t->status.n_levels > 0 && t->status.ns_pid[t->status.n_levels - 1] == 1)
		t->pidns ^= (uint64_t)t->pid << 32;   /* an init of its own, dead namespace */
	t->pidns_for_children = t->pidns;
}

/* What the machinery needs: the tree's shape, the layout, the registers. */
static int collect_basics(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	if (proc_read_status(t->pid, 0, &t->status, err) < 0 || proc_read_stat(t->pid, &t->stat, err) < 0)
		return -1;
	if (t->zombie) {
		zombie_pidns(ctx, t);
		return 0;
	}
	if (proc_read_ns(t->pid, "pid", &t->pidns, err) < 0 ||
	    proc_read_ns(t->pid, "pid_for_children", &t->pidns_for_children, err) < 0 ||
	    proc_read_smaps(t->pid, &t->vmas, err) < 0 || collect_threads(t, err) < 0)
		return -1;
	init_task_protos(ctx, t);
	t->core->exit_signal = t->stat.exit_signal;
	t->core->has_stopped = true;
	t->core->stopped = t->was_stopped;
	t->core->has_stop_signo = t->was_stopped;
	t->core->stop_signo = (uint32_t)t->stop_sig;
	t->core->has_stop_reported = t->stop_asked;
	t->core->stop_reported = t->stop_reported;
	return 0;
}

/* -v: how long a step of the frozen window took, from *t0 (then now). */
static void log_step(const struct dump_task *t, const char *what, uint64_t *t0)
{
	uint64_t now = mono_ns();

	pr_debug("pid %d: %s: %.2f ms", t->pid, what, (double)(now - *t0) / 1e6);
	*t0 = now;
}

static int collect_task(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	uint64_t t0 = mono_ns();

	if (collect_basics(ctx, t, err) < 0)
		return -1;
	if (t->zombie)
		return 0;
	log_step(t, "status, mappings, registers", &t0);
	/* Before the mappings are read: cr's own registrations are no refusal. */
	if (ctx->track != NULL) {
		if (track_task(ctx->track, t, false, err) < 0)
			return -1;
		log_step(t, "written pages", &t0);
	}
	if (state_collect(ctx, t, err) < 0 || map_scratch(ctx, t, err) < 0)
		return -1;
	t0 = mono_ns();
	if (state_collect_injected(ctx, t, err) < 0)
		return -1;
	log_step(t, "what injection asks", &t0);
	return unmap_scratch(t, err);
}

/* Pre-dump: the layout, and write tracking armed (a userfaultfd made by
 * injection where the process has none of cr's yet). */
static int collect_layout(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	uint64_t ip;

	if (collect_basics(ctx, t, err) < 0)
		return -1;
	if (t->zombie)
		return 0;
	pagedata_layout(ctx, t);
	if (inject_find_syscall(t->pid, &t->vmas, &ip, err) < 0 || prepare_injection(t, ip, err) < 0 ||
	    guard_note_injection(ctx, t, 0, err) < 0 || start_injection(t, err) < 0 ||
	    track_task(ctx->track, t, true, err) < 0)
		return -1;
	return end_injection(t, err);
}

int collect_tree_layout(struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (cr_should_stop())
			return cr_error(err, EINTR, "interrupted");
		if (collect_layout(ctx, &ctx->tasks[i], err) < 0)
			return cr_error_wrap(err, "pid %d", ctx->tasks[i].pid);
	}
	return 0;
}

int collect_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	if (ctx->opts->tcp_established)   /* the tree's connections: looked up by the fds */
		inet_diag_prefetch(ctx->tasks[0].pid);
	if (fdkind_prepare(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		if (cr_should_stop())
			return cr_error(err, EINTR, "interrupted");
		if (collect_task(ctx, &ctx->tasks[i], err) < 0)
			return -1;
	}
	return state_check_tree(ctx, err);
}

/* ------------------------------------------- cr's SIGCHLD, when let go
 *
 * Holding a child in a group stop sends its parent a SIGCHLD (CLD_STOPPED),
 * which the images leave out (state/signals.c).  A tree that is let go (a
 * refused dump, --leave-running) would still have it queued: a parent
 * that handles SIGCHLD or reads it from a signalfd would take it for a
 * stop of its child that cr made — script(1) then stops itself, for good.
 * So it is taken out of the queue, by an rt_sigtimedwait injected in the
 * main thread (its set and timeout written below the red zone of its
 * stack, and the bytes there put back).  A parent for which a SIGCHLD is
 * ignored (not handled, not blocked) loses it anyway. */

#define RED_ZONE 128

static bool sigchld_seen(pid_t pid)
{
	struct proc_status st;
	cr_error_t err = NULL;
	bool seen;

	if (proc_read_status(pid, 0, &st, &err) < 0) {
		cr_error_release(&err);
		return true;
	}
	seen = ((st.sig_cgt | st.sig_blk) >> (SIGCHLD - 1)) & 1;
	proc_status_free(&st);
	return seen;
}

static int take_sigchld(struct dump_task *t, struct injector *ij, cr_error_t *err)
{
	struct {
		uint64_t set;
		struct timespec ts;
	} arg = { .set = UINT64_C(1) << (SIGCHLD - 1) }, saved;
	uint64_t at = ((uint64_t)ij->orig.rsp - RED_ZONE - sizeof(arg)) & ~UINT64_C(15);
	long r = 0;

	if (remote_read(t->pid, at, &saved, sizeof(saved), err) < 0 || remote_write(t->pid, at, &arg, sizeof(arg), err) < 0)
		return cr_error_wrap(err, "below the stack");
	if (inject_syscall(ij, SYS_rt_sigtimedwait, at, 0, at + offsetof(typeof(arg), ts), 8, 0, 0, &r, err) < 0) {
		cr_error_t back = NULL;

		if (remote_write(t->pid, at, &saved, sizeof(saved), &back) < 0)
			cr_error_release(&back);
		return -1;
	}
	if (remote_write(t->pid, at, &saved, sizeof(saved), err) < 0)
		return -1;
	return r == SIGCHLD ? 0 : cr_error(err, r < 0 ? (int)-r : 0, "rt_sigtimedwait returned %ld", r);
}

/* In a fresh injection of the main thread, put back as collect does. */
static int take_sigchld_injected(struct dump_task *t, cr_error_t *err)
{
	struct dump_thread *th = &t->threads[0];
	struct proc_vma_list own = { 0 };
	uint64_t ip;
	int rc;

	if (t->vmas.n == 0 && proc_read_smaps(t->pid, &own, err) < 0)
		return -1;
	rc = inject_find_syscall(t->pid, t->vmas.n ? &t->vmas : &own, &ip, err);
	proc_vma_list_free(&own);
	if (rc < 0 || ptrace_get_regs(th->tid, &th->regs, err) < 0 || inject_prepare(&th->inj, th->tid, ip, err) < 0)
		return -1;
	th->inj.orig = th->regs;
	regs_fixup_restart(&th->inj.orig, RESTART_UNSIGNALLED);
	if (inject_start(&th->inj, err) < 0)
		return -1;
	rc = take_sigchld(t, &th->inj, err);
	if (rc < 0) {
		cr_error_t back = NULL;

		if (inject_end(&th->inj, &back) < 0)
			cr_error_wrap(err, "and ending the injection failed too (%s)", back->msg);
		cr_error_release(&back);
		return -1;
	}
	return inject_end(&th->inj, err);
}

static int drop_hold_sigchld(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct dump_thread *th = &t->threads[0];
	int shared, own;

	if (signals_hold_sigchld_queued(ctx, th->tid, true, &shared, err) < 0 ||
	    signals_hold_sigchld_queued(ctx, th->tid, false, &own, err) < 0)
		return -1;
	/* rt_sigtimedwait would take the thread's own SIGCHLD first. */
	if (shared != 1 || own != 0 || !sigchld_seen(t->pid))
		return 0;
	return th->inj.active ? take_sigchld(t, &th->inj, err) : take_sigchld_injected(t, err);
}

void collect_drop_hold_sigchld(struct dump_ctx *ctx, struct dump_task *t)
{
	cr_error_t err = NULL;

	if (t->zombie || t->n_threads == 0 || !t->threads[0].seized)
		return;
	if (drop_hold_sigchld(ctx, t, &err) < 0) {
		pr_warn("pid %d: the SIGCHLD of cr's stop of its child stays queued: %s", t->pid, err->msg);
		cr_error_release(&err);
	}
}
