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

static long scan(int fd, struct pm_scan_arg *arg, uint64_t *walk_end)
{
	long r = ioctl(fd, PAGEMAP_SCAN_IOC, arg);

	if (walk_end != NULL)
		*walk_end = arg->walk_end;
	return r;
}

long pagemap_scan(int fd, uint64_t start, uint64_t end, uint64_t flags, uint64_t all, uint64_t anyof, uint64_t ret,
		  struct pm_region *vec, size_t n, uint64_t *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .flags = flags, .start = start, .end = end,
		.vec = (uint64_t)(uintptr_t)vec, .vec_len = n,
		.category_mask = all, .category_anyof_mask = anyof, .return_mask = ret,
	};

	return scan(fd, &arg, walk_end);
}

long pagemap_scan_without(int fd, uint64_t start, uint64_t end, uint64_t none, uint64_t anyof, struct pm_region *vec,
			  size_t n, uint64_t *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = start, .end = end, .vec = (uint64_t)(uintptr_t)vec, .vec_len = n,
		.category_inverted = none, .category_mask = none, .category_anyof_mask = anyof,
		.return_mask = anyof,
	};

	return scan(fd, &arg, walk_end);
}
