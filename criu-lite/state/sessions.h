/* Sessions and process groups (a kind of state, state_sessions): the
 * tree's builder (restore/child.c) calls these as it forks. */
#ifndef CR_SESSIONS_H
#define CR_SESSIONS_H

#include "os/error.h"
#include "state/task.h"

/* In the child, before it forks: a process that led its session or group
 * leads a new one; any other stays in its parent's (the restorer joins
 * non-leaders to their groups later). */
int session_setup(const struct restore_task *t, cr_error_t *err);
/* A zombie, just before it dies, joins a group it did not lead, if that
 * group exists by then (a live process joins later, by injection). */
void session_join_group_early(const struct restore_task *t);

#endif
