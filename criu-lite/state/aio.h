/* aio rings (io_setup), part of the memory kind (mem.c): an aio context's
 * ring is a mapping ("/[aio] (deleted)"), and its address is the
 * aio_context_t the process holds.
 *
 * Dump: the ring's header is checked (magic, no incompat features, its
 * size that of the mapping) and its head, tail and the completions not
 * yet reaped go into the VMA's entry, with the io_setup argument that
 * makes a ring of the same size again (the kernel doubles what it is
 * asked, plus 2, rounded up to whole pages).
 *
 * Restore: the process, still in cr's code, calls io_setup; completions
 * of zero-byte reads of /dev/null bring the kernel's own tail (which
 * nothing can set) to the dumped head, reaped, then to the dumped tail,
 * not reaped, whose events are overwritten with the dumped ones.  Once
 * cr's memory is gone the ring is moved (mremap, which the kernel follows
 * for the context) to its dumped address.
 *
 * Assumed: no request was in flight at dump (submitted, not completed:
 * O_DIRECT I/O under way, IOCB_CMD_POLL waiting, an fsync); the kernel
 * has no interface listing them, so such a request is not brought back. */
#ifndef CR_AIO_H
#define CR_AIO_H

#include "os/error.h"
#include "os/proc.h"
#include "state/task.h"

/* Dump: e as the aio ring v maps, or a refusal naming it. */
int aio_dump_vma(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		 cr_error_t *err);

/* Dump, injected: each ring t maps is a context of its own, or a refusal. */
int aio_check_owned(struct dump_task *t, cr_error_t *err);

/* Restore: VMA i of t is an aio ring whose fields make sense. */
bool aio_is_ring(const VmaEntry *e);
int aio_validate(const struct restore_task *t, size_t i, cr_error_t *err);

/* In the child: makes its rings again, with their state, where the kernel
 * puts them. */
int aio_setup_rings(const struct restore_task *t, cr_error_t *err);

/* In the restorer: where the child's rings are now, one per aio VMA of
 * its mm in order ((*at)[k] for the k-th), *n of them. */
int aio_find_rings(const struct restore_task *t, uint64_t **at, size_t *n, cr_error_t *err);

#endif
