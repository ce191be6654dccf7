/* signalfd: the set of signals it reads, from fdinfo.  The signals it will
 * read are the process's pending ones, which the signal state carries. */
#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>

static bool signalfd_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[signalfd]") == 0;
}

static int signalfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			 cr_error_t *err)
{
	uint64_t mask;
	SignalfdEntry *e;

	(void)t;
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "signalfd with flags 0%o: unsupported kind (only O_NONBLOCK is kept)",
				fe->flags);
	if (proc_fdinfo_u64(p->fdinfo, "sigmask", 16, &mask) < 0)
		return cr_error(err, 0, "fdinfo lacks sigmask");
	e = arena_new(&ctx->arena, SignalfdEntry);
	signalfd_entry__init(e);
	e->sigmask = mask;
	fe->signalfd = e;
	return 0;
}

static int signalfd_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx;
	if (fe->signalfd == NULL)
		return cr_error(err, 0, "signalfd without its signal mask");
	return 0;
}

static int signalfd_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe,
			 cr_error_t *err)
{
	uint64_t mask = fe->signalfd->sigmask;
	int flags = SFD_CLOEXEC | ((fe->flags & O_NONBLOCK) ? SFD_NONBLOCK : 0);
	int fd;

	(void)ctx, (void)t;
	/* The raw call takes the kernel's 64-bit mask as dumped. */
	fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask), flags);
	if (fd < 0)
		return cr_error(err, errno, "signalfd(mask %016llx)", (unsigned long long)mask);
	return fd;
}

const struct fd_kind fdkind_signalfd = {
	.kind = FILE_KIND__FILE_SIGNALFD,
	.shareable = true,
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
	.validate = signalfd_validate,
	.open = signalfd_open,
};
