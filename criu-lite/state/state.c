#include "state/state.h"

/* Every kind, each defined in a file of its own (state/NAME.c). */
extern const struct state_kind state_sessions, state_files, state_memory, state_shmem, state_mmlayout, state_attrs,
	state_threads, state_signals, state_itimers, state_posix_timers, state_rlimits, state_creds,
	state_pdeath;

/* The order of every hook (see state.h for the rules it carries). */
static const struct state_kind *const kinds[] = {
	&state_sessions,      /* session and process group */
	&state_files,         /* the fd table */
	&state_memory,        /* mappings and their pages */
	&state_shmem,         /* shared anonymous memory, one object for all its holders */
	&state_mmlayout,      /* brk, arguments, auxv, exe */
	&state_attrs,         /* umask, root, cwd, personality */
	&state_threads,       /* registers and per-thread kernel state */
	&state_signals,       /* dispositions and pending signals */
	&state_itimers,       /* setitimer */
	&state_posix_timers,  /* timer_create */
	&state_rlimits,       /* last in the child: limits may forbid what came before */
	&state_creds,         /* drops the restorer's privileges */
	&state_pdeath,        /* after creds, which clear it */
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

int state_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	WALK(collect, ctx, t, err);
}

int state_collect_injected(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	WALK(collect_injected, ctx, t, err);
}

int state_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	WALK(check_tree, ctx, err);
}

int state_write(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	WALK(write, ctx, t, err);
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
	WALK(setup, ctx, t, err);
}

int state_apply(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		if (kinds[i]->apply && kinds[i]->apply(ctx, t, err) < 0)
			return -1;
		if (kinds[i]->apply_thread && kinds[i]->apply_thread(ctx, t, &t->threads[0], err) < 0)
			return -1;
	}
	return 0;
}

int state_apply_thread(struct restore_ctx *ctx, struct restore_task *t, struct restore_thread *th,
		       cr_error_t *err)
{
	WALK(apply_thread, ctx, t, th, err);
}

void state_release_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (kinds[i]->release_restore)
			kinds[i]->release_restore(ctx);
}
