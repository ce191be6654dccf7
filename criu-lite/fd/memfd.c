/* memfd as an fd: name, size, contents, seals, mode and owner (mappings of
 * a memfd belong to mem.c and shmem.c; a memfd that is mapped is made by
 * shmem.c, and its descriptions are opened from that object).
 *
 * Dump: through a description of cr's own (the memfd reopened through
 * /proc/PID/fd), so that reading it never moves the process's offset:
 * fstat, F_GET_SEALS, and the data extents.  Every description records the
 * memfd's inode; the first one of each memfd also holds the contents.
 * Hugetlb memfds are refused.
 *
 * Restore: memfd_create with the same name (MFD_ALLOW_SEALING, and
 * MFD_EXEC so that any mode can be set), then owner, mode, size, contents,
 * and last the seals.  The memfd is the anchor of its descriptions
 * (fdshare.h), each handed out at its own offset. */
#include "fd/contents.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define MEMFD_PREFIX "/memfd:"
#define MEMFD_NAME_MAX 249

/* ------------------------------------------------------------------ dump */

static bool memfd_match(const struct fd_probe *p)
{
	return S_ISREG(p->st.st_mode) && strncmp(p->link, MEMFD_PREFIX, strlen(MEMFD_PREFIX)) == 0 &&
	       proc_link_deleted(p->link, NULL);
}

/* Descriptions of one memfd: its inode. */
static bool memfd_key(const FileEntry *fe, struct fdshare_key *k)
{
	if (fe->kind != FILE_KIND__FILE_MEMFD || fe->memfd == NULL)
		return false;
	*k = (struct fdshare_key){ .ino = fe->memfd->ino };
	return true;
}

static char *memfd_name(struct arena *a, const char *link)
{
	size_t stem = 0, skip = strlen(MEMFD_PREFIX);
	char *name;

	proc_link_deleted(link, &stem);
	name = arena_alloc(a, stem - skip + 1);
	memcpy(name, link + skip, stem - skip);
	name[stem - skip] = '\0';
	return name;
}

static int describe(int fd, const struct fd_probe *p, MemfdEntry *me, cr_error_t *err)
{
	struct statfs sfs;
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || fstatfs(fd, &sfs) < 0)
		return cr_error(err, errno, "stat %s", p->link);
	if (sfs.f_type == HUGETLBFS_MAGIC)
		return cr_error(err, 0, "unsupported kind: hugetlb memfd (%s)", p->link);
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return cr_error(err, errno, "F_GET_SEALS on %s", p->link);
	me->ino = st.st_ino;
	me->size = (uint64_t)st.st_size;
	me->seals = (uint32_t)seals;
	me->mode = st.st_mode & 07777;
	me->uid = st.st_uid;
	me->gid = st.st_gid;
	return 0;
}

static int memfd_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		      cr_error_t *err)
{
	MemfdEntry *me = arena_new(&ctx->arena, MemfdEntry);
	cleanup_close int fd = -1;
	struct contents c;

	memfd_entry__init(me);
	if (fdshare_refuse_outside(ctx, t->pid, p, "memfd", err) < 0)
		return -1;
	fd = fdshare_reopen(t->pid, p->fd, err);
	if (fd < 0 || describe(fd, p, me, err) < 0)
		return -1;
	me->name = memfd_name(&ctx->arena, p->link);
	fe->memfd = me;
	if (fdshare_recorded(ctx, fe, memfd_key))
		return 0;   /* its first description holds the contents */
	if (shmem_mapped_in_dump(ctx, me->ino, p->st.st_dev)) {
		me->has_in_object = me->in_object = true;   /* its contents are the mapped object's */
		return 0;
	}
	if (contents_dump(&ctx->arena, fd, me->size, &c, err) < 0)
		return cr_error_wrap(err, "memfd %s", me->name);
	me->n_data_off = me->n_data = c.n;
	me->data_off = c.off;
	me->data = c.data;
	return 0;
}

/* --------------------------------------------------------------- restore */

static int memfd_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const MemfdEntry *me = fe->memfd;

	if (me == NULL)
		return cr_error(err, 0, "memfd without its memfd entry");
	if (strlen(me->name) > MEMFD_NAME_MAX)
		return cr_error(err, 0, "memfd name of %zu bytes", strlen(me->name));
	if (me->in_object && (me->n_data || !shmem_has_file_object(ctx, true, me->ino, 0)))
		return cr_error(err, 0, "memfd %s: its contents are in a memory object the dump lacks", me->name);
	return contents_validate(me->size, me->n_data_off, me->data_off, me->n_data, me->data, err);
}

static const FileEntry *first_of_memfd(const struct restore_ctx *ctx, const FileEntry *fe)
{
	return fdshare_first(ctx, fe, memfd_key);
}

int memfd_make(const char *name, unsigned flags, cr_error_t *err)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC | flags);

	if (fd < 0 && (errno == EINVAL || errno == EACCES))   /* before 6.3, or vm.memfd_noexec=2 */
		fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | flags);
	if (fd < 0)
		return cr_error(err, errno, "memfd_create");
	return fd;
}

static int create_memfd(const MemfdEntry *me, cr_error_t *err)
{
	cleanup_close int fd = memfd_make(me->name, 0, err);

	if (fd < 0)
		return -1;
	if (fchown(fd, me->uid, me->gid) < 0)
		return cr_error(err, errno, "chown to %u:%u", me->uid, me->gid);
	if (fchmod(fd, me->mode) < 0)
		return cr_error(err, errno, "chmod 0%o", me->mode);
	if (contents_restore(fd, me->size, me->n_data, me->data_off, me->data, err) < 0)
		return -1;
	if (me->seals && fcntl(fd, F_ADD_SEALS, me->seals) < 0)
		return cr_error(err, errno, "add seals 0x%x", me->seals);
	return steal_fd(&fd);
}

static int memfd_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const FileEntry *first = first_of_memfd(ctx, fe);
	struct fd_anchor *a = fd_anchor_find(first->id);

	if (a == NULL) {
		bool none;
		int obj = shmem_file_fd(ctx, t, true, first->memfd->ino, 0, &none, err);
		int fds[2] = { none ? create_memfd(first->memfd, err) : obj, -1 };

		if (fds[0] < 0 || (a = fd_anchor_add(t, first->id, fds, err)) == NULL)
			return cr_error_wrap(err, "memfd %s", first->memfd->name);
	}
	return fd_anchor_open_at(a, fe, err);
}

const struct fd_kind fdkind_memfd = {
	.kind = FILE_KIND__FILE_MEMFD,
	.shareable = true,
	.first = first_of_memfd,
	.aside = 1,
	.name = "memfd", .match = memfd_match, .dump = memfd_dump, .validate = memfd_validate, .open = memfd_open,
};
