/* Forking a process's many children on two CPUs (split.c). */
#ifndef CR_RESTORE_SPLIT_H
#define CR_RESTORE_SPLIT_H

#include "restore/run.h"

#include <stdbool.h>
#include <sys/types.h>

typedef void (*split_child_fn)(struct restore_run *run, struct restore_task *c);

/* t has enough children a plain fork makes, and there are two CPUs. */
bool split_fork_wanted(const struct restore_run *run, const struct restore_task *t);
/* Child i of t is the helper's to fork. */
bool split_fork_helper_takes(const struct restore_task *t, size_t i);
/* Forks the helper, which forks its children (each runs child) and exits;
 * an error of the helper goes to the sync fd as a child's would. */
int split_fork_start(struct restore_run *run, struct restore_task *t, split_child_fn child, int sync,
		     pid_t *helper, cr_error_t *err);
/* Reaps the helper; an error if it failed. */
int split_fork_finish(pid_t helper, cr_error_t *err);

#endif
