#include "os/kcmp.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* kcmp orders the kernel's objects: 0 the same, 1 less, 2 greater. */
static int kcmp_type;
static int kcmp_errno;

static int by_object(const void *x, const void *y)
{
	pid_t a = *(const pid_t *)x, b = *(const pid_t *)y;
	long r;

	if (a == b)
		return 0;
	r = syscall(SYS_kcmp, a, b, kcmp_type, 0, 0);
	if (r < 0) {
		kcmp_errno = errno;
		return a < b ? -1 : 1;
	}
	return r == 0 ? 0 : r == 1 ? -1 : 1;
}

int kcmp_find_shared(pid_t *pids, size_t n, int type, pid_t *a, pid_t *b, cr_error_t *err)
{
	kcmp_type = type;
	kcmp_errno = 0;
	if (n > 1)
		qsort(pids, n, sizeof(*pids), by_object);
	if (kcmp_errno != 0)
		return cr_error(err, kcmp_errno, "kcmp");
	for (size_t i = 1; i < n; i++) {
		if (syscall(SYS_kcmp, pids[i - 1], pids[i], type, 0, 0) == 0) {
			*a = pids[i - 1];
			*b = pids[i];
			return 1;
		}
	}
	return 0;
}
