/* aio rings: see aio.h. */
#include "state/aio.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The kernel's ring header (fs/aio.c), at the start of the mapping, the
 * io_events right after it. */
struct aio_ring_hdr {
	uint32_t id;                 /* the context's index in the mm's table */
	uint32_t nr;                 /* io_event slots */
	uint32_t head;
	uint32_t tail;
	uint32_t magic;
	uint32_t compat_features;
	uint32_t incompat_features;
	uint32_t header_length;
};

#define AIO_RING_MAGIC 0xa10a10a1U
#define EV_SIZE sizeof(struct io_event)

_Static_assert(sizeof(struct aio_ring_hdr) == 32 && sizeof(struct io_event) == 32, "the kernel's aio ABI");

/* The slots a ring of len bytes has. */
static uint64_t ring_slots(uint64_t len)
{
	return (len - sizeof(struct aio_ring_hdr)) / EV_SIZE;
}

/* ------------------------------------------------------------------ dump */

static int refuse(const struct dump_task *t, const struct proc_vma *v, const char *why, cr_error_t *err)
{
	return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx is an aio ring (io_setup) %s", t->pid,
			(unsigned long)v->start, (unsigned long)v->end, why);
}

int aio_dump_vma(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		 cr_error_t *err)
{
	struct aio_ring_hdr h;
	uint64_t len = v->end - v->start, nr, k;
	uint8_t *ev;

	if (!v->shared || v->pgoff != 0 || len < PAGE_SIZE_CR)
		return refuse(t, v, "mapped in part or privately: unsupported", err);
	if (v->prot != (PROT_READ | PROT_WRITE))
		return refuse(t, v, "with a protection changed since io_setup: unsupported", err);
	if (remote_read(t->pid, v->start, &h, sizeof(h), err) < 0)
		return cr_error_wrap(err, "pid %d: aio ring at 0x%lx", t->pid, (unsigned long)v->start);
	nr = ring_slots(len);
	if (h.magic != AIO_RING_MAGIC || h.incompat_features != 0 || h.header_length != sizeof(h))
		return refuse(t, v, "whose header cr does not know (magic, features, length): unsupported", err);
	if (h.nr != nr || h.head >= nr || h.tail >= nr || nr < 4)
		return refuse(t, v, "whose header does not fit its size (a mapping of part of a ring): unsupported",
			      err);
	k = (h.tail + nr - h.head) % nr;
	ev = arena_alloc(&ctx->arena, k * EV_SIZE + 1);
	for (uint64_t i = 0; i < k; i++)
		if (remote_read(t->pid, v->start + sizeof(h) + ((h.head + i) % nr) * EV_SIZE, ev + i * EV_SIZE,
				EV_SIZE, err) < 0)
			return cr_error_wrap(err, "pid %d: aio ring at 0x%lx", t->pid, (unsigned long)v->start);
	e->kind = VMA_KIND__VMA_ANON;
	e->has_aio_nr_req = e->has_aio_head = e->has_aio_tail = e->has_aio_events = true;
	e->aio_nr_req = (uint32_t)((nr - 2) / 2);   /* doubled, plus 2: nr (at most a page's rounding more) */
	e->aio_head = h.head;
	e->aio_tail = h.tail;
	e->aio_events = (ProtobufCBinaryData){ k * EV_SIZE, ev };
	return 0;
}

/* --------------------------------------------------------------- restore */

bool aio_is_ring(const VmaEntry *e)
{
	return e->has_aio_nr_req;
}

int aio_validate(const struct restore_task *t, size_t i, cr_error_t *err)
{
	const VmaEntry *e = t->mm->vmas[i];
	uint64_t nr = ring_slots(e->end - e->start);

	if (!e->has_aio_nr_req) {
		if (e->has_aio_head || e->has_aio_tail || e->has_aio_events)
			return cr_error(err, 0, "mm-%d.img: VMA %zu has aio ring fields but is none", t->pid, i);
		return 0;
	}
	if (e->kind != VMA_KIND__VMA_ANON || !e->shared || e->has_shmem_id || e->pgoff != 0 ||
	    e->prot != (PROT_READ | PROT_WRITE) || e->n_guards != 0 || e->growsdown ||
	    (e->has_cow && e->cow))
		return cr_error(err, 0, "mm-%d.img: aio ring VMA %zu is not a plain shared mapping", t->pid, i);
	if (nr < 4 || e->aio_nr_req == 0 || e->aio_nr_req > nr || e->aio_head >= nr || e->aio_tail >= nr ||
	    e->aio_events.len != (e->aio_tail + nr - e->aio_head) % nr * EV_SIZE)
		return cr_error(err, 0, "mm-%d.img: aio ring VMA %zu (%llu slots): bad request count, head, tail "
				"or events", t->pid, i, (unsigned long long)nr);
	return 0;
}

static long io_setup(unsigned nr, aio_context_t *ctx)
{
	return syscall(SYS_io_setup, nr, ctx);
}

/* n zero-byte reads of fd, each completing at once. */
static int submit_noops(aio_context_t ctx, int fd, uint64_t n, cr_error_t *err)
{
	struct iocb cb[64], *cbp[64];

	for (size_t i = 0; i < 64; i++) {
		memset(&cb[i], 0, sizeof(cb[i]));
		cb[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cb[i].aio_fildes = (uint32_t)fd;
		cbp[i] = &cb[i];
	}
	while (n > 0) {
		long m = (long)(n < 64 ? n : 64), r = syscall(SYS_io_submit, ctx, m, cbp);

		if (r <= 0)
			return cr_error(err, r < 0 ? errno : 0, "io_submit to bring an aio ring's tail back");
		n -= (uint64_t)r;
	}
	return 0;
}

static int reap(aio_context_t ctx, uint64_t n, cr_error_t *err)
{
	struct io_event ev[64];

	while (n > 0) {
		long m = (long)(n < 64 ? n : 64), r = syscall(SYS_io_getevents, ctx, m, m, ev, NULL);

		if (r != m)
			return cr_error(err, r < 0 ? errno : 0, "io_getevents to bring an aio ring's head back");
		n -= (uint64_t)m;
	}
	return 0;
}

/* The kernel's tail to head (every completion reaped, in steps the ring
 * takes), then to tail (not reaped), and the dumped events in place. */
static int refill(const VmaEntry *e, aio_context_t ctx, int fd, cr_error_t *err)
{
	volatile struct aio_ring_hdr *h = (void *)(uintptr_t)ctx;
	uint64_t nr = h->nr, step = e->aio_nr_req;

	for (uint64_t done = 0; done < e->aio_head; done += step) {
		if (step > e->aio_head - done)
			step = e->aio_head - done;
		if (submit_noops(ctx, fd, step, err) < 0 || reap(ctx, step, err) < 0)
			return -1;
	}
	if (submit_noops(ctx, fd, (e->aio_tail + nr - e->aio_head) % nr, err) < 0)
		return -1;
	if (h->head != e->aio_head || h->tail != e->aio_tail)
		return cr_error(err, 0, "aio ring: head %u tail %u, wanted %u %u", h->head, h->tail, e->aio_head,
				e->aio_tail);
	for (uint64_t i = 0; i * EV_SIZE < e->aio_events.len; i++)
		memcpy((uint8_t *)(uintptr_t)ctx + sizeof(*h) + ((e->aio_head + i) % nr) * EV_SIZE,
		       e->aio_events.data + i * EV_SIZE, EV_SIZE);
	return 0;
}

int aio_setup_rings(const struct restore_task *t, cr_error_t *err)
{
	int fd = -1, rc = 0;

	for (size_t i = 0; i < t->mm->n_vmas && rc == 0; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		aio_context_t ctx = 0;

		if (!aio_is_ring(e))
			continue;
		if (fd < 0 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
			return cr_error(err, errno, "open /dev/null for the aio rings");
		if (io_setup(e->aio_nr_req, &ctx) < 0)
			rc = cr_error(err, errno, "io_setup(%u)", e->aio_nr_req);
		else if (((struct aio_ring_hdr *)(uintptr_t)ctx)->nr != ring_slots(e->end - e->start))
			rc = cr_error(err, 0, "io_setup(%u) made a ring of %u events, the dump's had %llu (another "
				      "number of CPUs?)", e->aio_nr_req, ((struct aio_ring_hdr *)(uintptr_t)ctx)->nr,
				      (unsigned long long)ring_slots(e->end - e->start));
		else
			rc = refill(e, ctx, fd, err);
		if (rc < 0)
			rc = cr_error_wrap(err, "aio ring 0x%lx-0x%lx", (unsigned long)e->start, (unsigned long)e->end);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int aio_find_rings(const struct restore_task *t, uint64_t **at, size_t *n, cr_error_t *err)
{
	struct proc_vma_list l = { 0 };
	size_t want = 0;

	for (size_t i = 0; i < t->mm->n_vmas; i++)
		want += aio_is_ring(t->mm->vmas[i]);
	*at = xcalloc(want + 1, sizeof(**at));
	*n = want;
	if (want == 0)
		return 0;
	if (proc_read_maps(t->host_pid, &l, err) < 0)
		return -1;
	for (size_t i = 0; i < l.n; i++) {
		const struct proc_vma *v = &l.v[i];
		uint32_t id;

		if (v->path == NULL || !v->deleted || strcmp(v->path, "/[aio]") != 0)
			continue;
		if (remote_read(t->host_pid, v->start, &id, sizeof(id), err) < 0) {
			proc_vma_list_free(&l);
			return -1;
		}
		if (id < want)
			(*at)[id] = v->start;   /* made in the order of the VMAs, in a table that was empty */
	}
	proc_vma_list_free(&l);
	for (size_t k = 0; k < want; k++)
		if ((*at)[k] == 0)
			return cr_error(err, 0, "pid %d: aio ring %zu not found after io_setup", t->pid, k);
	return 0;
}

/* ------------------------------------------------------- dump, injected */

/* A child forked after io_setup has the ring mapped but not the context
 * (the kernel keeps contexts per mm): io_getevents on it, asking for
 * nothing, is EINVAL there.  Made again by io_setup it would be a context
 * the process never had, no longer sharing the parent's ring. */
int aio_check_owned(struct dump_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];
		long r;

		if (!aio_is_ring(e))
			continue;
		if (inject_syscall(t->inj, SYS_io_getevents, e->start, 0, 0, 0, 0, 0, &r, err) < 0)
			return cr_error_wrap(err, "pid %d: io_getevents on the aio ring at 0x%lx", t->pid,
					     (unsigned long)e->start);
		if (r == -EINVAL)
			return cr_error(err, 0, "pid %d: mapping 0x%lx-0x%lx is an aio ring (io_setup) of another "
					"process's context (inherited across fork): unsupported", t->pid,
					(unsigned long)e->start, (unsigned long)e->end);
		if (r != 0)
			return cr_error(err, (int)-r, "pid %d: io_getevents on the aio ring at 0x%lx", t->pid,
					(unsigned long)e->start);
	}
	return 0;
}
