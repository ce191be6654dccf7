#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>

int write_all(int fd, const void *buf, size_t len, cr_error_t *err)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_error(err, errno, "write");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int write_proc_text(const char *path, const char *text, cr_error_t *err)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : write(fd, text, len);
	int saved = errno;

	if (fd >= 0)
		close(fd);
	if (n != (ssize_t)len)
		return cr_error(err, n < 0 ? saved : EIO, "write '%s' to %s", text, path);
	return 0;
}

int read_exact(int fd, void *buf, size_t len, const char *what, cr_error_t *err)
{
	char *p = buf;
	size_t want = len;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_error(err, errno, "read %s", what);
		if (n == 0)
			return cr_error(err, 0, "%s is truncated: wanted %zu bytes, got %zu",
					what, want, want - len);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_whole_file_at(int dirfd, const char *path, char **out, size_t *len, cr_error_t *err)
{
	cleanup_close int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t cap = 4096, used = 0;
	cleanup_free char *buf = NULL;

	if (fd < 0)
		return cr_error(err, errno, "open %s", path);
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (used + 1 >= cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_error(err, errno, "read %s", path);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	if (len != NULL)
		*len = used;
	*out = steal_pointer(&buf);
	return 0;
}

int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len, cr_error_t *err)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return cr_error(err, errno, "pid %d: read %zu bytes at 0x%lx", pid, len, (unsigned long)addr);
	return 0;
}

int remote_write(pid_t pid, uint64_t addr, const void *buf, size_t len, cr_error_t *err)
{
	struct iovec local = { .iov_base = (void *)buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return cr_error(err, errno, "pid %d: write %zu bytes at 0x%lx", pid, len, (unsigned long)addr);
	return 0;
}

#define FREE_SEARCH_START (1ULL << 32)
#define FREE_SEARCH_END   0x7ff000000000ULL

uint64_t find_free_range(const uint64_t (*busy)[2], size_t n, uint64_t len)
{
	uint64_t cand = FREE_SEARCH_START;
	bool moved = true;

	/* A page of space on each side keeps the kernel from merging the new
	 * mapping with a neighbour. */
	while (moved) {
		moved = false;
		for (size_t i = 0; i < n; i++) {
			if (cand < busy[i][1] + PAGE_SIZE_CR && busy[i][0] < cand + len + PAGE_SIZE_CR) {
				cand = ((busy[i][1] + PAGE_SIZE_CR - 1) & ~(PAGE_SIZE_CR - 1)) + PAGE_SIZE_CR;
				moved = true;
			}
		}
		if (cand + len > FREE_SEARCH_END)
			return 0;
	}
	return cand;
}

int cr_priority_raise(void)
{
	int old;

	errno = 0;
	old = getpriority(PRIO_PROCESS, 0);   /* this thread's, on Linux */
	if (errno != 0 || old <= CR_URGENT_NICE || setpriority(PRIO_PROCESS, 0, CR_URGENT_NICE) < 0)
		return INT_MIN;
	return old;
}

void cr_priority_restore(int old)
{
	if (old != INT_MIN)
		(void)setpriority(PRIO_PROCESS, 0, old);
}
