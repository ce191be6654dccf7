#include "state/state.h"

/* Every kind, each defined in a file of its own (state/NAME.c) as
 * state_NAME, in the order of every hook (see state.h for the rules it
 * carries): adding a kind is one line here. */
#define STATE_KINDS(X)                                                                   \
	X(sessions)      /* session and process group */                               \
	X(pidns)         /* pid namespaces: a shape the restore can make */            \
	X(ns)            /* uts, ipc, time namespaces: before files, opened in them */  \
	X(files)         /* the fd table */                                             \
	X(locks)         /* file locks: taken on the fds in place */                    \
	X(ctty)          /* the controlling terminal: on the fds in place, every group made */ \
	X(memory)        /* mappings and their pages */                                 \
	X(cow)           /* pages shared with the parent: built before the fork */     \
	X(shmem)         /* memory objects (shared, memfd, SysV, deleted files), one for all holders */ \
	X(mmlayout)      /* brk, arguments, auxv, exe */                                \
	X(membarrier)    /* registrations of the address space, once it is in place */ \
	X(mmdefaults)    /* mlockall(MCL_FUTURE), KSM merge-any: for mappings made from now on */ \
	X(mempolicy)     /* refused at dump: NUMA memory policies */                    \
	X(ioflusher)     /* refused at dump: PR_SET_IO_FLUSHER */                       \
	X(coredump)      /* coredump_filter, by the process itself before the chroot */ \
	X(autogroup)     /* the session's autogroup nice, by its leader before the chroot */ \
	X(attrs)         /* umask, root, cwd, personality, login uid */                 \
	X(threads)       /* registers and per-thread kernel state */                    \
	X(fown)          /* SIGIO owners: once the owning threads exist */              \
	X(signals)       /* dispositions and pending signals */                         \
	X(stop)          /* a group stop: its signal, whether the parent saw it */      \
	X(itimers)       /* setitimer */                                                \
	X(posix_timers)  /* timer_create */                                             \
	X(rlimits)       /* limits may forbid what came before */                       \
	X(cgroup)        /* last in the child: a cgroup's limits too */                 \
	X(chroot)        /* after every path cr opens in the child; cwd came before */ \
	X(notify_drain)  /* after chroot: the events of cr's own opens read away */     \
	X(sched)         /* before creds: RT policies, I/O class, low nice need CAP_SYS_NICE */ \
	X(seccomp)       /* before creds: a filter needs the CAP_SYS_ADMIN they drop */ \
	X(keyrings)      /* refused at dump: keyrings of the process's own */          \
	X(landlock)      /* refused at dump: a Landlock domain */                       \
	X(creds)         /* drops the restorer's privileges */                          \
	X(pdeath)        /* after creds, which clear it */                              \
	X(prctl)         /* after creds, which reset dumpable; MDWE last */

#define DECLARE(name) extern const struct state_kind state_##name;
STATE_KINDS(DECLARE)
#undef DECLARE

static const struct state_kind *const kinds[] = {
#define ENTRY(name) &state_##name,
	STATE_KINDS(ENTRY)
#undef ENTRY
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Calls hook `h` of every kind that has it, with the arguments after it. */
#define WALK(h, ...)                                                  \
	do {                                                          \
		for (size_t i_ = 0; i_ < N_KINDS; i_++)               \
			if (kinds[i_]->h && kinds[i_]->h(__VA_ARGS__) < 0) \
				return -1;                            \
		return 0;                                             \
	} while (0)

#include "os/log.h"
#include "os/util.h"
#include <time.h>

/* Hook h of every kind, each kind's time logged (-vvv) when it is long. */
#define WALK_TIMED(h, what, ...)                                                               \
	do {                                                                                   \
		for (size_t i_ = 0; i_ < N_KINDS; i_++) {                                      \
			uint64_t t0_ = mono_ns();                                              \
			if (kinds[i_]->h && kinds[i_]->h(__VA_ARGS__) < 0)                     \
				return -1;                                                     \
			if (mono_ns() - t0_ >= STEP_LOG_NS)                                    \
				pr_debug("%s: %s %.2f ms", kinds[i_]->name, what, (double)(mono_ns() - t0_) / 1e6); \
		}                                                                              \
		return 0;                                                                      \
	} while (0)
#define STEP_LOG_NS 100000

int state_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	WALK_TIMED(collect, "collect", ctx, t, err);
}

/* One round trip per thread after the main one, for every kind's calls. */
static int collect_other_threads(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	size_t first[N_KINDS];

	for (size_t n = 1; n < t->n_threads; n++) {
		struct dump_thread *th = &t->threads[n];

		for (size_t i = 0; i < N_KINDS; i++) {
			first[i] = t->batch.n;
			if (kinds[i]->ask_thread)
				kinds[i]->ask_thread(ctx, t, th, &t->batch);
		}
		if (t->batch.n && dump_batch_run(t, &th->inj, err) < 0)
			return cr_error_wrap(err, "pid %d thread %d", t->pid, th->tid);
		for (size_t i = 0; i < N_KINDS; i++)
			if (kinds[i]->answered_thread &&
			    kinds[i]->answered_thread(ctx, t, th, &t->batch, first[i], err) < 0)
				return -1;   /* each kind names the thread */
	}
	return 0;
}

/* The main thread's answers, then the other threads', then what needs
 * injection of its own. */
int state_collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	size_t first[N_KINDS];

	for (size_t i = 0; i < N_KINDS; i++) {
		first[i] = t->asked.n;
		if (kinds[i]->ask)
			kinds[i]->ask(ctx, t);
	}
	if (t->asked.n && dump_asked_run(t, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->answered && kinds[i]->answered(ctx, t, first[i], err) < 0)
			return -1;
	if (collect_other_threads(ctx, t, err) < 0)
		return -1;
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->collect_injected && kinds[i]->collect_injected(ctx, t, err) < 0)
			return -1;
	return 0;
}

int state_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	WALK_TIMED(check_tree, "check", ctx, err);
}

int state_write(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	WALK_TIMED(write, "write", ctx, t, err);
}

int state_write_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	WALK(write_tree, ctx, err);
}

void state_release_dump(struct dump_ctx *ctx)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->release_dump)
			kinds[i]->release_dump(ctx);
}

int state_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->validate && (!t->zombie || kinds[i]->zombies) && kinds[i]->validate(ctx, t, err) < 0)
			return -1;
	return 0;
}

int state_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	WALK(plan, ctx, err);
}

int state_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	WALK(before_fork, ctx, t, err);
}

int state_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	WALK_TIMED(setup, "setup", ctx, t, err);
}

int state_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		uint64_t t0 = mono_ns();

		if (kinds[i]->apply && kinds[i]->apply(ctx, t, err) < 0)
			return -1;
		if (kinds[i]->apply_thread && kinds[i]->apply_thread(ctx, t, &t->threads[0], err) < 0)
			return -1;
		if (mono_ns() - t0 >= STEP_LOG_NS)
			pr_debug("%s: apply %.2f ms", kinds[i]->name, (double)(mono_ns() - t0) / 1e6);
	}
	return 0;
}

int state_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
		       cr_error_t *err)
{
	WALK(apply_thread, ctx, t, th, err);
}

int state_after_close(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	WALK(after_close, ctx, t, err);
}

void state_release_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->release_restore)
			kinds[i]->release_restore(ctx);
}
