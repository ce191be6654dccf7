/* Namespaces open as fds (open("/proc/PID/ns/net"), the fds setns takes).
 *
 * Dump: an fd on a namespace the process itself is in (its own net, uts,
 * ipc, ... namespace) is recorded by its type; one on any other namespace
 * (another process's, or one nobody is in any more) is refused, since
 * the restore would have nothing to open it from.
 *
 * Restore: the process, in its restored namespaces (state/ns.c comes
 * before the files), opens /proc/self/ns/TYPE. */
#include "fd/fdkind.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const types[] = { "net", "uts", "ipc", "pid", "mnt", "cgroup", "user", "time" };

/* The type of a link "TYPE:[INODE]", or NULL. */
static const char *ns_type(const char *link)
{
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		size_t n = strlen(types[i]);

		if (strncmp(link, types[i], n) == 0 && strncmp(link + n, ":[", 2) == 0)
			return types[i];
	}
	return NULL;
}

static bool nsfs_match(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && ns_type(p->link) != NULL;
}

static int nsfs_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		     cr_error_t *err)
{
	const char *type = ns_type(p->link);
	char path[64];
	struct stat own;

	(void)ctx, (void)fe;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", t->pid, type);
	if (stat(path, &own) < 0)
		return cr_error(err, errno, "stat %s", path);
	if (own.st_ino != p->st.st_ino || own.st_dev != p->st.st_dev)
		return cr_error(err, 0, "namespace %s is not the process's own %s namespace: an fd on the namespace of "
				"another process, or of none, has nothing to reopen it from (unsupported)", p->link,
				type);
	return 0;
}

static int nsfs_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx;
	if (ns_type(fe->path) == NULL || (fe->flags & ~(uint32_t)(O_ACCMODE | 0100000)) != 0)
		return cr_error(err, 0, "namespace fd '%.40s' with flags 0%o", fe->path, fe->flags);
	return 0;
}

static int nsfs_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	char path[64];
	int fd;

	(void)ctx, (void)t;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_type(fe->path));
	fd = open(path, (int)(fe->flags & O_ACCMODE) | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open %s", path);
	return fd;
}

const struct fd_kind fdkind_nsfs = {
	.name = "namespace", .kind = FILE_KIND__FILE_NSFS, .shareable = false,
	.match = nsfs_match, .dump = nsfs_dump, .validate = nsfs_validate, .open = nsfs_open,
};
