/* Process attributes kept by the kernel outside the address space: umask,
 * cwd, root, personality, resource limits, credentials. */
#ifndef CR_ATTRS_H
#define CR_ATTRS_H

#include "os/error.h"
#include "state/task.h"

int attrs_dump(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err);
/* Dump, with an active injector and t->scratch: the parent-death signal. */
int attrs_dump_injected(struct dump_task *t, cr_error_t *err);
/* Restore: queues putting back the dumped parent-death signal (restore
 * children run with SIGKILL, so that a killed restorer takes them along)
 * into t->batch, which the next batch run executes. */
void attrs_queue_pdeath(struct restore_task *t);
/* In the child, before it forks: a process that led its session or group
 * leads a new one; any other stays in its parent's (the restorer joins
 * non-leaders to their groups later). */
int attrs_restore_session(const struct restore_task *t, cr_error_t *err);
/* A zombie, just before it dies, joins a group it did not lead, if that
 * group exists by then (a live process joins later, by injection). */
void attrs_join_group_early(const struct restore_task *t);
/* In the child, before it stops: umask, cwd, root, personality. */
int attrs_restore_child(const struct restore_task *t, cr_error_t *err);
/* In the child, last of all (limits may forbid what came before). */
int attrs_restore_rlimits(const struct restore_task *t, cr_error_t *err);
/* Queues into t->batch, last before the registers: credentials differing
 * from the restorer's.  Credentials are per thread: the batch must run in
 * each thread, and after every call that needs the restorer's privileges. */
int attrs_queue_creds(struct restore_task *t, cr_error_t *err);

#endif
