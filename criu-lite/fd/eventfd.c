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

static const char *field(const char *text, const char *key)
{
	const char *p = strstr(text, key);

	return p ? p + strlen(key) : NULL;
}

static bool eventfd_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[eventfd]") == 0;
}

static int eventfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	const char *count = field(p->fdinfo, "\neventfd-count:");
	const char *sem = field(p->fdinfo, "\neventfd-semaphore:");
	EventfdEntry *e;

	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "pid %d fd %d: eventfd with flags 0%o: unsupported kind (only O_NONBLOCK "
				"is kept)", t->pid, p->fd, fe->flags);
	if (count == NULL || sem == NULL)
		return cr_error(err, 0, "pid %d fd %d: fdinfo lacks eventfd-count or eventfd-semaphore (this "
				"kernel is too old to dump an eventfd)", t->pid, p->fd);
	e = arena_new(&ctx->arena, EventfdEntry);
	eventfd_entry__init(e);
	e->count = strtoull(count, NULL, 16);
	e->semaphore = strtoul(sem, NULL, 10) != 0;
	fe->kind = FILE_KIND__FILE_EVENTFD;
	fe->eventfd = e;
	return 0;
}

static int eventfd_validate(const FileEntry *fe, cr_error_t *err)
{
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
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
	.validate = eventfd_validate,
	.open = eventfd_open,
};
