/* /proc/sysvipc/{shm,sem,msg} list the SysV objects of the reader's ipc
 * namespace, one line each under a header, key and id first.  POSIX
 * message queues are the files of an mqueue file system, which belongs
 * to the ipc namespace of whoever creates it: the helper creates one
 * with fsopen/fsmount, detached, so that no mount namespace changes, and
 * lists it. */
#include "os/ipcns.h"
#include "os/nsenter.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#define LIST_MAX 5   /* objects named in the list, per kind */

/* What the helper copies out of the namespace, as text. */
struct ipc_raw {
	char shm[16384];
	char sem[8192];
	char msg[8192];
	char mq[4096];             /* queue names, one a line */
};

/* ------------------------------------------------ in the helper */

/* The entries of the directory fd, one a line, into buf. */
static int list_dir(int fd, char *buf, size_t size)
{
	char dents[4096];
	size_t len = 0;
	long n;

	while ((n = syscall(SYS_getdents64, fd, dents, sizeof(dents))) > 0) {
		for (long off = 0; off < n;) {
			const char *name = dents + off + 19;   /* struct linux_dirent64's d_name */
			unsigned short reclen;
			size_t l = strlen(name);

			memcpy(&reclen, dents + off + 16, sizeof(reclen));
			off += reclen;
			if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || len + l + 2 > size)
				continue;
			memcpy(buf + len, name, l);
			len += l;
			buf[len++] = '\n';
		}
	}
	buf[len] = '\0';
	return n < 0 ? -1 : 0;
}

static int list_mqueues(char *buf, size_t size, const char **what)
{
	int fs, mnt, dir, ret;

	*what = "fsopen(mqueue)";
	fs = (int)syscall(SYS_fsopen, "mqueue", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	*what = "create an mqueue file system";
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
	    (mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
		close(fs);
		return -1;
	}
	close(fs);
	*what = "list the POSIX message queues";
	dir = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(mnt);
	if (dir < 0)
		return -1;
	ret = list_dir(dir, buf, size);
	close(dir);
	return ret;
}

static int read_inside(void *arg, void *out, size_t size, const char **what)
{
	struct ipc_raw *raw = out;

	(void)arg, (void)size;
	*what = "read /proc/sysvipc";
	if (nsenter_read_file("/proc/sysvipc/shm", raw->shm, sizeof(raw->shm)) < 0 ||
	    nsenter_read_file("/proc/sysvipc/sem", raw->sem, sizeof(raw->sem)) < 0 ||
	    nsenter_read_file("/proc/sysvipc/msg", raw->msg, sizeof(raw->msg)) < 0)
		return -1;
	return list_mqueues(raw->mq, sizeof(raw->mq), what);
}

/* ------------------------------------------------------- in cr */

static void append(char *list, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void append(char *list, size_t size, const char *fmt, ...)
{
	size_t len = strlen(list);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(list + len, size - len, fmt, ap);
	va_end(ap);
}

/* The lines after the header: "key id ..." each. */
static size_t list_sysv(const char *text, const char *one, const char *many, char *list, size_t size)
{
	const char *line = strchr(text, '\n');
	size_t n = 0;

	for (const char *p = line; p != NULL && p[1] != '\0'; p = strchr(p + 1, '\n'))
		n++;
	if (n == 0)
		return 0;
	append(list, size, "%s%zu %s (", list[0] ? ", " : "", n, n == 1 ? one : many);
	for (size_t i = 0; line != NULL && line[1] != '\0' && i < LIST_MAX; i++, line = strchr(line + 1, '\n')) {
		long key = 0, id = 0;

		if (sscanf(line + 1, "%ld %ld", &key, &id) == 2)
			append(list, size, "%skey 0x%08x id %ld", i ? ", " : "", (unsigned)key, id);
	}
	append(list, size, "%s)", n > LIST_MAX ? ", ..." : "");
	return n;
}

static size_t list_mq(const char *names, char *list, size_t size)
{
	size_t n = 0, i;

	for (const char *p = names; *p != '\0'; p = strchr(p, '\n') + 1)
		n++;
	if (n == 0)
		return 0;
	append(list, size, "%s%zu POSIX message queue%s (", list[0] ? ", " : "", n, n == 1 ? "" : "s");
	i = 0;
	for (const char *p = names; *p != '\0' && i < LIST_MAX; p = strchr(p, '\n') + 1, i++)
		append(list, size, "%s/%.*s", i ? ", " : "", (int)(strchr(p, '\n') - p), p);
	append(list, size, "%s)", n > LIST_MAX ? ", ..." : "");
	return n;
}

int ipcns_read(pid_t pid, struct ipcns_contents *out, cr_error_t *err)
{
	cleanup_free struct ipc_raw *raw = xcalloc(1, sizeof(*raw));

	memset(out, 0, sizeof(*out));
	if (nsenter_run(pid, "ipc", read_inside, NULL, raw, sizeof(*raw), err) < 0)
		return -1;
	out->n_shm = list_sysv(raw->shm, "SysV shared memory segment", "SysV shared memory segments", out->list,
			       sizeof(out->list));
	out->n_sem = list_sysv(raw->sem, "SysV semaphore set", "SysV semaphore sets", out->list, sizeof(out->list));
	out->n_msg = list_sysv(raw->msg, "SysV message queue", "SysV message queues", out->list, sizeof(out->list));
	out->n_mq = list_mq(raw->mq, out->list, sizeof(out->list));
	return 0;
}
