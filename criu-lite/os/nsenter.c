#include "os/nsenter.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* The head of the shared memory; the answer follows it. */
struct verdict {
	int done;                  /* fn returned 0 */
	int errnum;
	char what[96];
};

static __attribute__((noreturn)) void helper_main(int nsfd, nsenter_fn fn, void *arg, struct verdict *v,
						  size_t size)
{
	const char *what = "setns";

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (setns(nsfd, 0) == 0 && fn(arg, v + 1, size, &what) == 0) {
		v->done = 1;
		_exit(0);
	}
	v->errnum = errno;
	strncpy(v->what, what, sizeof(v->what) - 1);
	_exit(1);
}

static int await_helper(pid_t child, const char *path, cr_error_t *err)
{
	int status;

	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return cr_error(err, errno, "wait for the helper in %s", path);
	if (WIFSIGNALED(status))
		return cr_error(err, 0, "the helper in %s was killed by signal %d", path, WTERMSIG(status));
	return 0;
}

int nsenter_run(pid_t pid, const char *name, nsenter_fn fn, void *arg, void *out, size_t size, cr_error_t *err)
{
	char path[64];
	cleanup_close int nsfd = -1;
	struct verdict *v;
	size_t len = sizeof(*v) + size;
	pid_t child;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, name);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return cr_error(err, errno, "open %s", path);
	v = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (v == MAP_FAILED)
		return cr_error(err, errno, "map memory to share with a helper");
	child = fork();
	if (child == 0)
		helper_main(nsfd, fn, arg, v, size);
	if (child < 0)
		ret = cr_error(err, errno, "fork a helper to enter %s", path);
	else if (await_helper(child, path, err) < 0)
		ret = -1;
	else if (!v->done)
		ret = cr_error(err, v->errnum, "in %s: %s", path, v->what[0] ? v->what : "the helper failed");
	else
		memcpy(out, v + 1, size);
	munmap(v, len);
	return ret;
}

int nsenter_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n = 1;

	if (fd < 0)
		return -1;
	while (len + 1 < size && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return n < 0 ? -1 : 0;
}
