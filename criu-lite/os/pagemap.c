/* See pagemap.h. */
#include "os/pagemap.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int pagemap_open(pid_t pid, int *fd, cr_error_t *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return cr_error(err, errno, "open %s", path);
	return 0;
}

int pagemap_read(int fd, pid_t pid, uint64_t *buf, uint64_t addr, size_t n, cr_error_t *err)
{
	ssize_t got = pread(fd, buf, n * 8, (off_t)(addr / PAGE_SIZE_CR * 8));

	if (got != (ssize_t)(n * 8))
		return cr_error(err, got < 0 ? errno : EIO, "pid %d: read pagemap at 0x%lx", (int)pid,
				(unsigned long)addr);
	return 0;
}
