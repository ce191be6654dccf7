/* eventfd: its counter and EFD_SEMAPHORE, both read from fdinfo (which
 * shows the counter without consuming it).  Restore creates the eventfd
 * empty and writes the counter, which may exceed the 32 bits eventfd()
 * takes. */
#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

#define EVENTFD_MAX UINT64_C(0xfffffffffffffffe)

static bool eventfd_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[eventfd]") == 0;
}

static int eventfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	uint64_t count, sem;
	EventfdEntry *e;

	(void)t;
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "eventfd with flags 0%o: unsupported kind (only O_NONBLOCK is kept)",
				fe->flags);
	if (proc_fdinfo_u64(p->fdinfo, "eventfd-count", 16, &count) < 0 ||
	    proc_fdinfo_u64(p->fdinfo, "eventfd-semaphore", 10, &sem) < 0)
		return cr_error(err, 0, "fdinfo lacks eventfd-count or eventfd-semaphore (this kernel is too "
				"old to dump an eventfd)");
	e = arena_new(&ctx->arena, EventfdEntry);
	eventfd_entry__init(e);
	e->count = count;
	e->semaphore = sem != 0;
	fe->eventfd = e;
	return 0;
}

static int eventfd_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx;
	if (fe->eventfd == NULL)
		return cr_error(err, 0, "eventfd without its counter");
	if (fe->eventfd->count > EVENTFD_MAX)
		return cr_error(err, 0, "eventfd counter %" PRIu64 " is out of range", fe->eventfd->count);
	return 0;
}

static int eventfd_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const EventfdEntry *e = fe->eventfd;
	int flags = EFD_CLOEXEC | ((fe->flags & O_NONBLOCK) ? EFD_NONBLOCK : 0) | (e->semaphore ? EFD_SEMAPHORE : 0);
	cleanup_close int fd = eventfd(0, flags);

	(void)ctx, (void)t;
	if (fd < 0)
		return cr_error(err, errno, "eventfd");
	if (e->count != 0 && write(fd, &e->count, sizeof(e->count)) != (ssize_t)sizeof(e->count))
		return cr_error(err, errno, "set eventfd counter to %" PRIu64, e->count);
	return steal_fd(&fd);
}

const struct fd_kind fdkind_eventfd = {
	.kind = FILE_KIND__FILE_EVENTFD,
	.shareable = true,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.validate = eventfd_validate,
	.open = eventfd_open,
};
