/* Shared anonymous memory, as a kind of state: the objects behind
 * MAP_SHARED|MAP_ANONYMOUS mappings ("/dev/zero (deleted)" in maps, each
 * a shmem inode), which fork shares between parent and child.  Restored
 * as one object for all the processes that map it, with every page.
 *
 * Dump: the memory kind finds each mapping (mem.c); an object is known by
 * its inode (the same inode in several processes, or twice in one, is one
 * object).  Its contents are read once, from the object itself through
 * /proc/PID/map_files of one holder, with SEEK_DATA/SEEK_HOLE: a page
 * written by a process that has exited since is in the object, not in any
 * survivor's page tables.  The object (id, size, runs of pages with data)
 * goes in the mm of the lowest common ancestor of its holders, its bytes
 * in shmem-pages.img; its mappings name it (shmem_id) and have no page
 * data of their own.  An object that a process outside the dump maps too
 * is refused: its sharing with that process could not come back.
 *
 * Restore: that ancestor creates each of its objects before it forks
 * (mmap MAP_SHARED|MAP_ANONYMOUS of its size, an fd through
 * /proc/self/map_files, unmapped again) and keeps the fd in the stash,
 * where its descendants inherit it.  Before the first transplant maps
 * anything (mem.c calls shmem_fill), the restorer fills every object, in one pass over shmem-pages.img, through
 * a duplicate of its creator's fd (pidfd_getfd); each holder's mapping is
 * then the fd mapped at its offset (mem.c), so the object is one again
 * and maps still says "/dev/zero (deleted)".
 *
 * Other sources of objects, kept the same way (a mapping may then be
 * private too: its written pages are its own page data):
 *   - a memfd (name, seals, mode, owner), made with memfd_create; sealed
 *     by the restorer once filled;
 *   - a deleted regular file (a binary deleted while it runs, an unlinked
 *     /dev/shm file), made again at its former path and unlinked (fd/
 *     deleted.c); refused if still linked elsewhere.  A process whose
 *     executable it is gets it as exe (PR_SET_MM_MAP, which wants no
 *     writer: that object's fd is read-only, the restorer fills it through
 *     a description of its own);
 *   - a System V segment: if it still exists, it is attached again by id
 *     (shmat, mem.c) with its contents as they are, like a file; if it was
 *     removed, the restorer makes a new one with the contents before any
 *     process exists, and removes it again once every holder attached it.
 * An fd on a memfd or deleted file that is mapped (fd/memfd.c, deleted.c)
 * is a description of the object: its holders count among the processes
 * whose common ancestor makes the object.  An object a process outside
 * the dump maps or holds an fd on is refused (a System V segment that
 * stays is not: it is shared as before). */
#include "state/shmem.h"
#include "fd/deleted.h"
#include "fd/fdkind.h"
#include "state/files.h"
#include "state/task.h"
#include "img/pages.h"
#include "os/progress.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/state.h"
#include "state/vmflags.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/shm.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#define COPY_CHUNK  (1u << 20)
#define MAX_SIZE    (1ULL << 47)           /* no object is larger than user space */
#define MAX_RUN     (UINT32_MAX / 2)       /* pages per run, well inside nr_pages */

/* ------------------------------------------------------------------ dump */

struct shmem_obj {
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	int source;                /* a ShmemSource, 0 for shared anonymous memory */
	char *path;                /* the mapping's path in maps (memfd name, former path) */
	bool shared_mw;            /* a shared mapping of it may write (VmFlags "mw") */
	bool huge;                 /* hugetlb (VmFlags "ht") */
	pid_t pid;                 /* a holder, and one of its mappings, where */
	uint64_t start, end;       /* /proc/PID/map_files finds the object */
	pid_t lca;                 /* the lowest common ancestor of its holders */
	int fd;                    /* cr's, from check_tree to write_tree */
	ShmemObject *msg;
};

struct shmem_dump {
	struct shmem_obj *v;       /* [id - 1] */
	size_t n, cap;
};

static bool same_object(const struct shmem_obj *o, const struct proc_vma *v)
{
	return o->ino == v->ino && o->dev_major == v->dev_major && o->dev_minor == v->dev_minor;
}

static struct shmem_obj *find_object(const struct shmem_dump *sd, const struct proc_vma *v)
{
	for (size_t i = 0; sd != NULL && i < sd->n; i++)
		if (same_object(&sd->v[i], v))
			return &sd->v[i];
	return NULL;
}

static const struct dump_task *find_task(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

static pid_t parent_of(const struct dump_ctx *ctx, pid_t pid)
{
	const struct dump_task *t = find_task(ctx, pid);

	return t != NULL ? t->ppid : 0;
}

/* The lowest process of the tree that is (or is an ancestor of) both. */
static pid_t common_ancestor(const struct dump_ctx *ctx, pid_t a, pid_t b)
{
	for (pid_t x = a; x != 0; x = parent_of(ctx, x))
		for (pid_t y = b; y != 0; y = parent_of(ctx, y))
			if (x == y)
				return x;
	return ctx->tasks[0].pid;
}

void shmem_dump_vma(struct dump_ctx *ctx, const struct dump_task *t, const struct proc_vma *v, VmaEntry *e,
		    int source)
{
	struct shmem_dump *sd = ctx->shmem;
	struct shmem_obj *o = find_object(sd, v);

	if (sd == NULL)
		sd = ctx->shmem = xcalloc(1, sizeof(*sd));
	if (o != NULL) {
		o->lca = common_ancestor(ctx, o->lca, t->pid);
	} else {
		if (sd->n == sd->cap) {
			sd->cap = sd->cap ? sd->cap * 2 : 8;
			sd->v = xreallocarray(sd->v, sd->cap, sizeof(*sd->v));
		}
		o = &sd->v[sd->n++];
		*o = (struct shmem_obj){ .dev_major = v->dev_major, .dev_minor = v->dev_minor, .ino = v->ino,
					 .source = source, .path = xstrdup(v->path), .pid = t->pid, .start = v->start,
					 .end = v->end, .lca = t->pid, .fd = -1 };
	}
	o->shared_mw |= v->shared && (v->vmflags & PROC_VMF(MW));
	o->huge |= (v->vmflags & PROC_VMF(HT)) != 0;
	e->has_shmem_id = true;
	e->shmem_id = (uint32_t)(o - sd->v) + 1;
}

static bool in_dump(const struct dump_ctx *ctx, pid_t pid)
{
	return find_task(ctx, pid) != NULL;
}

static const char *source_name(const struct shmem_obj *o)
{
	switch (o->source) {
	case SHMEM_SOURCE__SHMEM_MEMFD: return "a memfd mapping";
	case SHMEM_SOURCE__SHMEM_DELETED: return "a mapping of a deleted file";
	case SHMEM_SOURCE__SHMEM_SYSV:
	case SHMEM_SOURCE__SHMEM_SYSV_REMOVED: return "System V shared memory";
	default: return "shared memory";
	}
}

/* An fd on a memfd or deleted file that is mapped, in a process outside
 * the dump. */
static int refuse_if_fd_holder(const struct shmem_dump *sd, pid_t pid, cr_error_t *err)
{
	char path[64];
	cleanup_closedir DIR *d = NULL;
	struct dirent *de;
	bool files = false;

	for (size_t i = 0; i < sd->n; i++)
		files |= sd->v[i].source == SHMEM_SOURCE__SHMEM_MEMFD || sd->v[i].source == SHMEM_SOURCE__SHMEM_DELETED;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!files || (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		for (size_t i = 0; i < sd->n; i++) {
			const struct shmem_obj *o = &sd->v[i];

			if (o->source && o->source != SHMEM_SOURCE__SHMEM_SYSV && o->ino == st.st_ino &&
			    major(st.st_dev) == o->dev_major && minor(st.st_dev) == o->dev_minor)
				return cr_error(err, 0, "pid %d: %s at 0x%lx-0x%lx (%s) is open in pid %d (fd %s), outside "
						"the dump: unsupported (the sharing could not be restored)", o->pid,
						source_name(o), (unsigned long)o->start, (unsigned long)o->end,
						o->path, pid, de->d_name);
		}
	}
	return 0;
}

/* A process outside the dump that maps one of the objects, or holds an fd
 * on one: restored, the dump's processes would share it with each other
 * but no longer with it. */
static int refuse_if_holder(const struct shmem_dump *sd, pid_t pid, cr_error_t *err)
{
	char path[64];
	cleanup_free char *text = NULL;
	struct proc_vma_list l = { 0 };
	cr_error_t ignored = NULL;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &ignored) < 0 ||
	    strstr(text, " (deleted)") == NULL || proc_parse_maps(text, &l, &ignored) < 0) {
		cr_error_release(&ignored);   /* gone since, a kernel thread, or it maps none: its fds may hold one */
		return refuse_if_fd_holder(sd, pid, err);
	}
	for (size_t i = 0; i < l.n && ret == 0; i++) {
		const struct shmem_obj *o = find_object(sd, &l.v[i]);

		if (o != NULL && l.v[i].deleted && o->source != SHMEM_SOURCE__SHMEM_SYSV)
			ret = cr_error(err, 0, "pid %d: %s at 0x%lx-0x%lx is shared with pid %d, outside the dump: "
				       "unsupported (the sharing could not be restored)", o->pid, source_name(o),
				       (unsigned long)o->start, (unsigned long)o->end, pid);
	}
	proc_vma_list_free(&l);
	return ret == 0 ? refuse_if_fd_holder(sd, pid, err) : ret;
}

static int refuse_outside_holders(const struct dump_ctx *ctx, const struct shmem_dump *sd, cr_error_t *err)
{
	cleanup_closedir DIR *d = opendir("/proc");
	struct dirent *de;

	if (d == NULL)
		return cr_error(err, errno, "open /proc");
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end != '\0' || pid <= 0 || in_dump(ctx, (pid_t)pid))
			continue;
		if (refuse_if_holder(sd, (pid_t)pid, err) < 0)
			return -1;
	}
	return 0;
}

bool shmem_mapped_in_dump(const struct dump_ctx *ctx, uint64_t ino, uint64_t dev)
{
	bool found = false;

	for (size_t i = 0; i < ctx->n_tasks && !found; i++) {
		char path[64];
		cleanup_free char *text = NULL;
		struct proc_vma_list l = { 0 };
		cr_error_t ignored = NULL;

		snprintf(path, sizeof(path), "/proc/%d/maps", ctx->tasks[i].pid);
		if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &ignored) < 0 ||
		    strstr(text, " (deleted)") == NULL || proc_parse_maps(text, &l, &ignored) < 0) {
			cr_error_release(&ignored);   /* a zombie maps nothing */
			continue;
		}
		for (size_t j = 0; j < l.n && !found; j++)
			found = l.v[j].deleted && l.v[j].ino == ino &&
				makedev(l.v[j].dev_major, l.v[j].dev_minor) == dev;
		proc_vma_list_free(&l);
	}
	return found;
}

/* The runs of pages that hold data, in order, from SEEK_DATA/SEEK_HOLE. */
static int find_data(struct dump_ctx *ctx, int fd, ShmemObject *m, cr_error_t *err)
{
	cleanup_free PageRun *runs = NULL;
	size_t n = 0, cap = 0;
	uint64_t pos = 0;

	while (pos < m->size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 || (hole = lseek(fd, data, SEEK_HOLE)) < 0)
			return cr_error(err, errno, "SEEK_DATA/SEEK_HOLE at %llu", (unsigned long long)pos);
		pos = (uint64_t)data / PAGE_SIZE_CR * PAGE_SIZE_CR;
		if (pos >= m->size)
			break;
		if ((uint64_t)hole > m->size)
			hole = (off_t)m->size;
		while (pos < (uint64_t)hole) {
			uint64_t pages = ((uint64_t)hole - pos + PAGE_SIZE_CR - 1) / PAGE_SIZE_CR;

			if (pages > MAX_RUN)
				pages = MAX_RUN;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				runs = xreallocarray(runs, cap, sizeof(*runs));
			}
			page_run__init(&runs[n]);
			runs[n].offset = pos;
			runs[n++].nr_pages = (uint32_t)pages;
			pos += pages * PAGE_SIZE_CR;
		}
	}
	m->n_data = n;
	m->data = arena_array(&ctx->arena, PageRun *, n);
	for (size_t i = 0; i < n; i++)
		m->data[i] = arena_memdup(&ctx->arena, &runs[i], sizeof(runs[i]));
	return 0;
}

/* A memfd: its name, seals, mode and owner. */
static int describe_memfd(struct dump_ctx *ctx, struct shmem_obj *o, const struct stat *st, cr_error_t *err)
{
	struct statfs sfs;
	int seals = fcntl(o->fd, F_GET_SEALS);

	if (fstatfs(o->fd, &sfs) < 0 || seals < 0)
		return cr_error(err, errno, "memfd %s", o->path);
	if ((sfs.f_type == HUGETLBFS_MAGIC) != o->huge)
		return cr_error(err, 0, "%s: a hugetlb memfd whose mappings are not, or the reverse", o->path);
	if ((seals & F_SEAL_FUTURE_WRITE) && o->shared_mw)
		return cr_error(err, 0, "%s: sealed F_SEAL_FUTURE_WRITE and mapped writable before: unsupported "
				"(the seal forbids mapping it so again)", o->path);
	o->msg->name = arena_strdup(&ctx->arena, o->path + strlen("/memfd:"));
	o->msg->has_seals = true;
	o->msg->seals = (uint32_t)seals;
	(void)st;
	return 0;
}

/* A deleted regular file, made again at its former path at restore. */
static int describe_deleted(struct dump_ctx *ctx, struct shmem_obj *o, const struct stat *st, cr_error_t *err)
{
	if (!S_ISREG(st->st_mode))
		return cr_error(err, 0, "%s (deleted): not a regular file: unsupported", o->path);
	if (st->st_nlink > 0)
		return cr_error(err, 0, "%s (deleted) is still linked under another name: unsupported (a copy "
				"would no longer be that file)", o->path);
	if (deleted_check_dir("deleted file", o->path, o->pid, NULL, 0, err) < 0)
		return -1;
	o->msg->name = arena_strdup(&ctx->arena, o->path);
	return 0;
}

static bool same_ns(pid_t pid, const char *ns)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	if (stat(path, &a) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	return stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

/* A System V segment (its id is the inode's number): attached again by id
 * if it exists, else made anew with its contents. */
static int describe_sysv(struct shmem_obj *o, cr_error_t *err)
{
	struct shmid_ds ds;
	cleanup_free char *forced = NULL;
	cr_error_t ignored = NULL;
	int id = (int)o->ino;

	if (!same_ns(o->pid, "ipc"))
		return cr_error(err, 0, "System V shared memory of another ipc namespace (%s): unsupported", o->path);
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "shmctl(IPC_STAT) of segment %d", id);
	if (ds.shm_perm.mode & SHM_DEST) {
		o->source = SHMEM_SOURCE__SHMEM_SYSV_REMOVED;
		if (ds.shm_perm.mode & SHM_LOCKED)
			return cr_error(err, 0, "System V segment %d: removed and locked (SHM_LOCK): unsupported", id);
	} else {
		if (read_whole_file_at(AT_FDCWD, "/proc/sys/kernel/shm_rmid_forced", &forced, NULL, &ignored) < 0)
			cr_error_release(&ignored);
		if (forced != NULL && forced[0] == '1')
			return cr_error(err, 0, "System V segment %d: kernel.shm_rmid_forced is 1, so the segment would "
					"go with the dumped processes: unsupported", id);
	}
	o->msg->source = (ShmemSource)o->source;
	o->msg->has_sysv_id = o->msg->has_sysv_key = true;
	o->msg->sysv_id = id;
	o->msg->sysv_key = (uint32_t)ds.shm_perm.__key;
	o->msg->mode = ds.shm_perm.mode & 0777;
	o->msg->uid = ds.shm_perm.uid;
	o->msg->gid = ds.shm_perm.gid;
	return 0;
}

/* Opens the object through a holder's mapping and records its size, what
 * its source needs, and the runs of pages that hold data. */
static int describe(struct dump_ctx *ctx, struct shmem_obj *o, uint32_t id, cr_error_t *err)
{
	char path[96];
	struct stat st;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", o->pid, (unsigned long)o->start,
		 (unsigned long)o->end);
	o->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (o->fd < 0)
		return cr_error(err, errno, "open %s", path);
	if (fstat(o->fd, &st) < 0)
		return cr_error(err, errno, "stat %s", path);
	if (st.st_ino != o->ino || major(st.st_dev) != o->dev_major || minor(st.st_dev) != o->dev_minor)
		return cr_error(err, 0, "%s is not the inode maps shows (%llu)", path, (unsigned long long)o->ino);
	if (st.st_size < 0 || (uint64_t)st.st_size > MAX_SIZE ||
	    (o->source == 0 && (st.st_size == 0 || st.st_size % PAGE_SIZE_CR)))
		return cr_error(err, 0, "%s: size %lld cr cannot restore", path, (long long)st.st_size);
	o->msg = arena_new(&ctx->arena, ShmemObject);
	shmem_object__init(o->msg);
	o->msg->id = id;
	o->msg->size = (uint64_t)st.st_size;
	if (o->source != 0) {
		o->msg->has_source = o->msg->has_ino = o->msg->has_dev = true;
		o->msg->source = (ShmemSource)o->source;
		o->msg->ino = o->ino;
		o->msg->dev = makedev(o->dev_major, o->dev_minor);
		o->msg->has_mode = o->msg->has_uid = o->msg->has_gid = true;
		o->msg->mode = st.st_mode & 07777;
		o->msg->uid = st.st_uid;
		o->msg->gid = st.st_gid;
	}
	if (o->source == SHMEM_SOURCE__SHMEM_MEMFD)
		r = describe_memfd(ctx, o, &st, err);
	else if (o->source == SHMEM_SOURCE__SHMEM_DELETED)
		r = describe_deleted(ctx, o, &st, err);
	else if (o->source == SHMEM_SOURCE__SHMEM_SYSV)
		r = describe_sysv(o, err);
	if (r < 0)
		return -1;
	if (o->source == SHMEM_SOURCE__SHMEM_SYSV)
		return 0;   /* its contents stay in the segment */
	return find_data(ctx, o->fd, o->msg, err);
}

/* Each object goes in the mm of the process that creates it at restore. */
static void give_to_creators(struct dump_ctx *ctx, const struct shmem_dump *sd)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		size_t n = 0;

		if (t->zombie)
			continue;
		for (size_t j = 0; j < sd->n; j++)
			n += sd->v[j].lca == t->pid;
		if (n == 0)
			continue;
		t->mm->shmem = arena_array(&ctx->arena, ShmemObject *, n);
		for (size_t j = 0; j < sd->n; j++)
			if (sd->v[j].lca == t->pid)
				t->mm->shmem[t->mm->n_shmem++] = sd->v[j].msg;
	}
}

/* A process of the dump that holds an fd on a memfd or deleted file that
 * is mapped opens it from the object at restore: the object is made by an
 * ancestor of it too. */
static void holders_of_fds(struct dump_ctx *ctx, struct shmem_dump *sd)
{
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *f = &ctx->seen[i];

		for (size_t j = 0; j < sd->n; j++) {
			struct shmem_obj *o = &sd->v[j];

			if ((o->source == SHMEM_SOURCE__SHMEM_MEMFD || o->source == SHMEM_SOURCE__SHMEM_DELETED) &&
			    o->ino == f->ino && major(f->dev) == o->dev_major && minor(f->dev) == o->dev_minor)
				o->lca = common_ancestor(ctx, o->lca, f->pid);
		}
	}
}

/* A process whose executable was deleted (mmlayout.c left it no file):
 * it is the deleted file the process maps, one of the objects. */
static int find_deleted_exes(struct dump_ctx *ctx, const struct shmem_dump *sd, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct dump_task *t = &ctx->tasks[i];
		char path[64];
		struct stat st;
		size_t j;

		if (t->zombie || t->mm->exe_file_id != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", t->pid);
		if (stat(path, &st) < 0)
			return cr_error(err, errno, "pid %d: stat %s", t->pid, path);
		for (j = 0; sd != NULL && j < sd->n; j++)
			if (sd->v[j].source == SHMEM_SOURCE__SHMEM_DELETED && sd->v[j].ino == st.st_ino &&
			    major(st.st_dev) == sd->v[j].dev_major && minor(st.st_dev) == sd->v[j].dev_minor)
				break;
		if (sd == NULL || j == sd->n)
			return cr_error(err, 0, "pid %d: its executable was deleted and the process does not map it: "
					"unsupported", t->pid);
		t->mm->has_exe_shmem_id = true;
		t->mm->exe_shmem_id = (uint32_t)j + 1;
	}
	return 0;
}

static int shmem_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	struct shmem_dump *sd = ctx->shmem;

	if (sd == NULL)
		return find_deleted_exes(ctx, sd, err);
	holders_of_fds(ctx, sd);
	if (refuse_outside_holders(ctx, sd, err) < 0)
		return -1;
	for (size_t i = 0; i < sd->n; i++)
		if (describe(ctx, &sd->v[i], (uint32_t)i + 1, err) < 0)
			return cr_error_wrap(err, "pid %d: shared memory at 0x%lx-0x%lx", sd->v[i].pid,
					     (unsigned long)sd->v[i].start, (unsigned long)sd->v[i].end);
	give_to_creators(ctx, sd);
	return find_deleted_exes(ctx, sd, err);
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off, cr_error_t *err)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			memset((char *)buf + got, 0, len - got);   /* the last page of a file, beyond its end */
			break;
		}
		if (n < 0)
			return cr_error(err, errno, "read %zu bytes at offset %llu", len - got,
					(unsigned long long)(off + got));
		got += (size_t)n;
	}
	return 0;
}

static int write_object(struct cr_pages_writer *w, const struct shmem_obj *o, char *buf, cr_error_t *err)
{
	for (size_t i = 0; i < o->msg->n_data; i++) {
		uint64_t off = o->msg->data[i]->offset;
		uint64_t left = (uint64_t)o->msg->data[i]->nr_pages * PAGE_SIZE_CR;

		while (left > 0) {
			size_t n = left < COPY_CHUNK ? (size_t)left : COPY_CHUNK;

			if (pread_full(o->fd, buf, n, off, err) < 0 || cr_pages_write(w, buf, n, err) < 0)
				return -1;
			progress_add(n);
			off += n;
			left -= n;
		}
	}
	return 0;
}

/* shmem-pages.img: every object's data, object after object by id; a dump
 * without shared memory has it too, empty. */
static int shmem_write_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	const struct shmem_dump *sd = ctx->shmem;
	struct cr_pages_writer *w = NULL;
	cleanup_free char *buf = NULL;
	char name[IMG_NAME_MAX];

	if (cr_pages_writer_open_as(ctx->dirfd, img_name(name, CR_IMG_SHMEM_PAGES, 0), CR_IMG_SHMEM_PAGES,
				    ctx->opts->compress, &w, err) < 0)
		return -1;
	buf = xmalloc(COPY_CHUNK);
	for (size_t i = 0; sd != NULL && i < sd->n; i++) {
		if (write_object(w, &sd->v[i], buf, err) < 0) {
			cr_pages_writer_abort(w);
			return cr_error_wrap(err, "pid %d: shared memory at 0x%lx-0x%lx", sd->v[i].pid,
					     (unsigned long)sd->v[i].start, (unsigned long)sd->v[i].end);
		}
	}
	return cr_pages_writer_finish(w, err);
}

static void shmem_release_dump(struct dump_ctx *ctx)
{
	struct shmem_dump *sd = steal_pointer(&ctx->shmem);

	if (sd == NULL)
		return;
	for (size_t i = 0; i < sd->n; i++) {
		if (sd->v[i].fd >= 0)
			close(sd->v[i].fd);
		free(sd->v[i].path);
	}
	free(sd->v);
	free(sd);
}

/* --------------------------------------------------------------- restore */

struct shmem_ref {
	struct restore_task *creator;
	const ShmemObject *obj;
	bool noreserve;            /* its mappings were MAP_NORESERVE */
	int sysv_id;               /* a System V segment's id now; -1 for others */
	uint32_t huge_kb;          /* hugetlb: the page size its mappings have (kB); 0 if not */
	bool made;                 /* a removed segment made anew, removed again at the end */
	bool exe;                  /* a process's executable: no description of it may write */
};

struct shmem_restore {
	struct shmem_ref *by_id;   /* [id - 1] */
	size_t n;
	int slot0;                 /* the stash slot of object 1 */
	bool filled;
};

/* 0: shared anonymous memory. */
static int source_of(const ShmemObject *o)
{
	return o->has_source ? (int)o->source : 0;
}

static bool is_sysv(const ShmemObject *o)
{
	return source_of(o) == SHMEM_SOURCE__SHMEM_SYSV || source_of(o) == SHMEM_SOURCE__SHMEM_SYSV_REMOVED;
}

static uint64_t page_round(uint64_t n)
{
	return (n + PAGE_SIZE_CR - 1) / PAGE_SIZE_CR * PAGE_SIZE_CR;
}

/* What each source needs: a name, a segment id, no data in a segment that
 * keeps its own. */
static int validate_source(const struct restore_task *t, const ShmemObject *o, cr_error_t *err)
{
	switch (source_of(o)) {
	case 0:
		return 0;
	case SHMEM_SOURCE__SHMEM_MEMFD:
	case SHMEM_SOURCE__SHMEM_DELETED:
		if (o->name == NULL || !o->has_ino || (source_of(o) == SHMEM_SOURCE__SHMEM_DELETED && o->name[0] != '/'))
			return cr_error(err, 0, "mm-%d.img: object %u names no file, or a relative one", t->pid, o->id);
		if (strlen(o->name) > (source_of(o) == SHMEM_SOURCE__SHMEM_MEMFD ? 249 : PATH_MAX - 1))
			return cr_error(err, 0, "mm-%d.img: object %u: name of %zu bytes", t->pid, o->id, strlen(o->name));
		return source_of(o) == SHMEM_SOURCE__SHMEM_DELETED ? deleted_check_dir("deleted file", o->name, 0, NULL, 0, err) : 0;
	case SHMEM_SOURCE__SHMEM_SYSV:
	case SHMEM_SOURCE__SHMEM_SYSV_REMOVED:
		if (!o->has_sysv_id || o->sysv_id < 0 || (source_of(o) == SHMEM_SOURCE__SHMEM_SYSV && o->n_data))
			return cr_error(err, 0, "mm-%d.img: System V object %u has no id, or data", t->pid, o->id);
		return 0;
	default:
		return cr_error(err, 0, "mm-%d.img: object %u has source %d, which cr does not know", t->pid, o->id,
				source_of(o));
	}
}

static int validate_object(const struct restore_task *t, const ShmemObject *o, cr_error_t *err)
{
	uint64_t prev_end = 0, size = page_round(o->size);

	if (o->id == 0 || o->size > MAX_SIZE || (source_of(o) == 0 && (o->size == 0 || o->size % PAGE_SIZE_CR)))
		return cr_error(err, 0, "mm-%d.img: shmem object %u has a bad id or size (%llu bytes)", t->pid, o->id,
				(unsigned long long)o->size);
	if (validate_source(t, o, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_data; i++) {
		const PageRun *r = o->data[i];

		if (r->nr_pages == 0 || r->offset % PAGE_SIZE_CR || r->offset < prev_end || r->offset >= size ||
		    (uint64_t)r->nr_pages * PAGE_SIZE_CR > size - r->offset)
			return cr_error(err, 0, "mm-%d.img: shmem object %u: run %zu (offset %llu, %u pages) is out "
					"of order or beyond the object's %llu bytes", t->pid, o->id, i,
					(unsigned long long)r->offset, r->nr_pages, (unsigned long long)o->size);
		prev_end = r->offset + (uint64_t)r->nr_pages * PAGE_SIZE_CR;
	}
	return 0;
}

/* The process whose mm lists object id, or NULL. */
static const struct restore_task *creator_of(const struct restore_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *c = &ctx->tasks[i];

		for (size_t j = 0; !c->zombie && c->mm != NULL && j < c->mm->n_shmem; j++)
			if (c->mm->shmem[j]->id == id)
				return c;
	}
	return NULL;
}

static bool is_ancestor(const struct restore_task *a, const struct restore_task *t)
{
	for (const struct restore_task *x = t; x != NULL; x = x->parent)
		if (x == a)
			return true;
	return false;
}

/* A mapping of an object must be a shared anonymous one, of an object
 * that it or an ancestor creates (it inherits the fd from there). */
static int validate_holder(const struct restore_ctx *ctx, const struct restore_task *t, size_t i, cr_error_t *err)
{
	const VmaEntry *e = t->mm->vmas[i];
	const struct restore_task *c;

	if (e->kind != VMA_KIND__VMA_ANON || e->growsdown)
		return cr_error(err, 0, "mm-%d.img: VMA %zu maps shmem object %u but is no mapping of an object",
				t->pid, i, e->shmem_id);
	c = creator_of(ctx, e->shmem_id);
	if (c == NULL)
		return cr_error(err, 0, "mm-%d.img: VMA %zu maps shmem object %u, which no process creates", t->pid,
				i, e->shmem_id);
	if (!is_ancestor(c, t))
		return cr_error(err, 0, "mm-%d.img: VMA %zu maps shmem object %u, which pid %d creates, not an "
				"ancestor", t->pid, i, e->shmem_id, c->pid);
	for (size_t j = 0; j < c->mm->n_shmem; j++) {
		const ShmemObject *o = c->mm->shmem[j];

		if (o->id != e->shmem_id)
			continue;
		if (is_sysv(o) && (!e->shared || e->pgoff != 0 || e->end - e->start != page_round(o->size)))
			return cr_error(err, 0, "mm-%d.img: VMA %zu maps System V object %u other than whole and "
					"shared", t->pid, i, e->shmem_id);
		if (e->read_only_attach && (!is_sysv(o) || (e->prot & PROT_WRITE)))
			return cr_error(err, 0, "mm-%d.img: VMA %zu is a read-only attach, but writable or of no "
					"System V segment", t->pid, i);
	}
	return 0;
}

/* A deleted executable is one of the objects, a deleted file, made by
 * the process or an ancestor. */
static int validate_exe(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	const struct restore_task *c = creator_of(ctx, t->mm->exe_shmem_id);

	for (size_t j = 0; c != NULL && j < c->mm->n_shmem; j++)
		if (c->mm->shmem[j]->id == t->mm->exe_shmem_id &&
		    source_of(c->mm->shmem[j]) == SHMEM_SOURCE__SHMEM_DELETED && is_ancestor(c, t))
			return 0;
	return cr_error(err, 0, "mm-%d.img: its executable is object %u, which is no deleted file an ancestor "
			"makes", t->pid, t->mm->exe_shmem_id);
}

/* The whole dump's objects: each sane, ids 1..n, each once, and
 * shmem-pages.img holds exactly their data. */
static int validate_dump(const struct restore_ctx *ctx, cr_error_t *err)
{
	size_t n = 0;
	uint64_t bytes = 0, have;
	cleanup_free uint8_t *seen = NULL;
	char name[IMG_NAME_MAX];

	for (size_t i = 0; i < ctx->n_tasks; i++)
		n += ctx->tasks[i].zombie ? 0 : ctx->tasks[i].mm->n_shmem;
	seen = xcalloc(n + 1, 1);
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_shmem; j++) {
			const ShmemObject *o = t->mm->shmem[j];

			if (validate_object(t, o, err) < 0)
				return -1;
			if (o->id > n || seen[o->id])
				return cr_error(err, 0, "mm-%d.img: shmem object id %u is beyond the %zu objects of the "
						"dump or taken twice", t->pid, o->id, n);
			seen[o->id] = 1;
			for (size_t k = 0; k < o->n_data; k++)
				bytes += (uint64_t)o->data[k]->nr_pages * PAGE_SIZE_CR;
		}
	}
	img_name(name, CR_IMG_SHMEM_PAGES, 0);
	if (cr_pages_scan(ctx->dirfd, name, &have, err) < 0)
		return -1;
	if (have != bytes)
		return cr_error(err, 0, "%s holds %llu bytes of pages, the shmem objects of the mm images list %llu",
				name, (unsigned long long)have, (unsigned long long)bytes);
	return 0;
}

static int shmem_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->has_shmem_id && validate_holder(ctx, t, i, err) < 0)
			return -1;
	if (t->mm->has_exe_shmem_id && validate_exe(ctx, t, err) < 0)
		return -1;
	/* What concerns the dump as a whole, once: with the root's images. */
	return t == &ctx->tasks[0] ? validate_dump(ctx, err) : 0;
}

static bool maps_noreserve(const struct restore_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_vmas; j++) {
			const VmaEntry *e = t->mm->vmas[j];

			if (e->has_shmem_id && e->shmem_id == id && (e->flags & VMA_FLAG__VMA_FLAG_NORESERVE))
				return true;
		}
	}
	return false;
}

/* The huge pages of page_kb kB the restore takes: every private hugetlb
 * VMA reserves its own at mmap (but MAP_NORESERVE ones), every hugetlb
 * object its size, once. */
static uint64_t huge_pages_wanted(const struct restore_ctx *ctx, const struct shmem_restore *sr, uint32_t page_kb)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_vmas; j++) {
			const VmaEntry *e = t->mm->vmas[j];

			if (e->has_huge_page_kb && e->huge_page_kb == page_kb && !e->has_shmem_id &&
			    !(e->flags & VMA_FLAG__VMA_FLAG_NORESERVE))
				bytes += e->end - e->start;
		}
	}
	for (size_t i = 0; i < sr->n; i++)
		if (sr->by_id[i].huge_kb == page_kb && source_of(sr->by_id[i].obj) != SHMEM_SOURCE__SHMEM_SYSV)
			bytes += sr->by_id[i].obj->size;
	return bytes / ((uint64_t)page_kb << 10);
}

static uint64_t read_count(const char *path)
{
	cleanup_free char *text = NULL;
	cr_error_t ignored = NULL;

	if (read_whole_file_at(AT_FDCWD, path, &text, NULL, &ignored) < 0) {
		cr_error_release(&ignored);
		return 0;
	}
	return strtoull(text, NULL, 10);
}

/* A restore that would run out of huge pages halfway fails now, before
 * any process exists, saying how many it needs. */
static int check_huge_pages(const struct restore_ctx *ctx, const struct shmem_restore *sr, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_vmas; j++) {
			uint32_t kb = t->mm->vmas[j]->huge_page_kb;
			char path[128];
			uint64_t want, free_now;

			if (!t->mm->vmas[j]->has_huge_page_kb)
				continue;
			want = huge_pages_wanted(ctx, sr, kb);
			snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%ukB/free_hugepages", kb);
			free_now = read_count(path);
			snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%ukB/resv_hugepages", kb);
			free_now -= read_count(path) < free_now ? read_count(path) : free_now;
			if (want > free_now)
				return cr_error(err, 0, "the dump's hugetlb memory needs %llu huge pages of %u kB, and %llu "
						"are free (vm.nr_hugepages)", (unsigned long long)want, kb,
						(unsigned long long)free_now);
		}
	}
	return 0;
}

/* A segment that exists is the dumped one (its key and size) still; a
 * removed one is made anew, by the restorer, with its mode and owner, to
 * be filled, attached, and removed again once the processes run. */
static int plan_segment(struct shmem_ref *ref, cr_error_t *err)
{
	const ShmemObject *o = ref->obj;
	struct shmid_ds ds;

	if (source_of(o) == SHMEM_SOURCE__SHMEM_SYSV) {
		if (shmctl(o->sysv_id, IPC_STAT, &ds) < 0)
			return cr_error(err, errno, "the segment the processes had attached is gone");
		if ((uint32_t)ds.shm_perm.__key != o->sysv_key || ds.shm_segsz != o->size ||
		    (ds.shm_perm.mode & SHM_DEST))
			return cr_error(err, 0, "segment %d is no longer the one the processes had attached (key 0x%08x, "
					"%zu bytes%s)", o->sysv_id, (unsigned)ds.shm_perm.__key, (size_t)ds.shm_segsz,
					ds.shm_perm.mode & SHM_DEST ? ", removed" : "");
		ref->sysv_id = o->sysv_id;
		return 0;
	}
	ref->sysv_id = shmget(IPC_PRIVATE, o->size, IPC_CREAT | IPC_EXCL | 0600 |
			      (ref->huge_kb ? (int)vmflags_hugetlb_bits(ref->huge_kb, SHM_HUGETLB) : 0));
	if (ref->sysv_id < 0)
		return cr_error(err, errno, "shmget of %llu bytes", (unsigned long long)o->size);
	ref->made = true;
	if (shmctl(ref->sysv_id, IPC_STAT, &ds) < 0)
		return cr_error(err, errno, "shmctl(IPC_STAT) of the new segment %d", ref->sysv_id);
	ds.shm_perm.uid = o->uid;
	ds.shm_perm.gid = o->gid;
	ds.shm_perm.mode = o->mode & 0777;
	if (shmctl(ref->sysv_id, IPC_SET, &ds) < 0)
		return cr_error(err, errno, "shmctl(IPC_SET) of the new segment %d", ref->sysv_id);
	return 0;
}

/* The huge page size of the mappings of object id (validate: all the
 * same), 0 if they are not hugetlb. */
static uint32_t huge_kb_of(const struct restore_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_vmas; j++) {
			const VmaEntry *e = t->mm->vmas[j];

			if (e->has_shmem_id && e->shmem_id == id)
				return e->has_huge_page_kb ? e->huge_page_kb : 0;
		}
	}
	return 0;
}

/* Every object by id (validated: ids 1..n, once each), and a stash slot
 * for each. */
static int shmem_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	struct shmem_restore *sr = ctx->shmem = xcalloc(1, sizeof(*sr));

	(void)err;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		sr->n += ctx->tasks[i].zombie ? 0 : ctx->tasks[i].mm->n_shmem;
	sr->by_id = xcalloc(sr->n + 1, sizeof(*sr->by_id));
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_shmem; j++) {
			const ShmemObject *o = t->mm->shmem[j];

			sr->by_id[o->id - 1] = (struct shmem_ref){ .creator = t, .obj = o,
								   .noreserve = maps_noreserve(ctx, o->id), .sysv_id = -1,
								   .huge_kb = huge_kb_of(ctx, o->id) };
		}
	}
	sr->slot0 = restore_stash_reserve(ctx, (int)sr->n);
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (!ctx->tasks[i].zombie && ctx->tasks[i].mm->has_exe_shmem_id)
			sr->by_id[ctx->tasks[i].mm->exe_shmem_id - 1].exe = true;
	if (check_huge_pages(ctx, sr, err) < 0)
		return -1;
	for (size_t i = 0; i < sr->n; i++)
		if (is_sysv(sr->by_id[i].obj) && plan_segment(&sr->by_id[i], err) < 0)
			return cr_error_wrap(err, "System V segment %d (key 0x%08x)", sr->by_id[i].obj->sysv_id,
					     sr->by_id[i].obj->sysv_key);
	return 0;
}

int shmem_sysv_id(const struct restore_ctx *ctx, uint32_t id)
{
	return ctx->shmem->by_id[id - 1].sysv_id;
}

int shmem_fd(const struct restore_ctx *ctx, uint32_t id)
{
	return ctx->stash_base + ctx->shmem->slot0 + (int)id - 1;
}

uint64_t shmem_bytes(const struct restore_ctx *ctx)
{
	uint64_t total = 0;

	for (size_t i = 0; ctx->shmem != NULL && i < ctx->shmem->n; i++)
		for (size_t k = 0; k < ctx->shmem->by_id[i].obj->n_data; k++)
			total += (uint64_t)ctx->shmem->by_id[i].obj->data[k]->nr_pages * PAGE_SIZE_CR;
	return total;
}

/* A memfd or deleted file made again, with its size, owner and mode. */
static int create_file(const struct restore_task *t, const struct shmem_ref *ref, cr_error_t *err)
{
	const ShmemObject *o = ref->obj;
	unsigned huge = ref->huge_kb ? (unsigned)vmflags_hugetlb_bits(ref->huge_kb, MFD_HUGETLB) : 0;
	cleanup_close int fd = source_of(o) == SHMEM_SOURCE__SHMEM_MEMFD ? memfd_make(o->name, huge, err) :
				deleted_make(t, o->name, err);

	if (fd < 0)
		return cr_error_wrap(err, "object %u (%s)", o->id, o->name);
	if (ftruncate(fd, (off_t)o->size) < 0)
		return cr_error(err, errno, "object %u (%s): size %llu", o->id, o->name, (unsigned long long)o->size);
	if (fchown(fd, o->uid, o->gid) < 0 || fchmod(fd, o->mode & 07777) < 0)
		return cr_error(err, errno, "object %u (%s): owner %u:%u, mode 0%o", o->id, o->name, o->uid, o->gid,
				o->mode);
	return steal_fd(&fd);
}

/* Shared anonymous memory of ref's size, as a new fd. */
static int create_anon(const struct shmem_ref *ref, cr_error_t *err)
{
	uint64_t size = ref->obj->size;
	int flags = MAP_SHARED | MAP_ANONYMOUS | (ref->noreserve ? MAP_NORESERVE : 0) |
		    (ref->huge_kb ? (int)vmflags_hugetlb_bits(ref->huge_kb, MAP_HUGETLB) : 0);
	void *p = mmap(NULL, size, PROT_NONE, flags, -1, 0);
	char path[96];
	int fd;

	if (p == MAP_FAILED)
		return cr_error(err, errno, "create shmem object %u (%llu bytes)", ref->obj->id,
				(unsigned long long)size);
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p, (unsigned long)p + size);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_error(err, errno, "shmem object %u: open %s", ref->obj->id, path);
	munmap(p, size);
	return fd;
}

/* PR_SET_MM_MAP takes as executable only a file no description may write
 * to (as exec does): the executable object is kept read-only, and the
 * restorer fills it through a description of its own (fill_object). */
static int read_only(int fd, cr_error_t *err)
{
	char path[64];
	int ro;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		cr_error(err, errno, "reopen the executable read-only");
	close(fd);
	return ro;
}

/* In the creator: a new object of ref's size, as an fd at slot (a System
 * V segment is the restorer's, and has no fd); nothing when a description
 * of it made it already (shmem_file_fd). */
static int create_object(const struct restore_task *t, const struct shmem_ref *ref, int slot, cr_error_t *err)
{
	int fd;

	if (is_sysv(ref->obj) || fcntl(slot, F_GETFD) >= 0)
		return 0;
	fd = source_of(ref->obj) != 0 ? create_file(t, ref, err) : create_anon(ref, err);
	if (fd >= 0 && ref->exe)
		fd = read_only(fd, err);
	if (fd < 0)
		return -1;
	if (fd != slot && dup3(fd, slot, O_CLOEXEC) < 0) {
		cr_error(err, errno, "shmem object %u: dup to fd %d", ref->obj->id, slot);
		close(fd);
		return -1;
	}
	if (fd != slot)
		close(fd);
	return 0;
}

/* The objects this process is the lowest common ancestor of the holders
 * of, into the stash, where its descendants inherit them. */
static int shmem_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const struct shmem_restore *sr = ctx->shmem;

	for (size_t i = 0; i < t->mm->n_shmem; i++) {
		uint32_t id = t->mm->shmem[i]->id;

		if (create_object(t, &sr->by_id[id - 1], shmem_fd(ctx, id), err) < 0)
			return -1;
	}
	return 0;
}

/* Object o is the memfd (by inode) or deleted file (inode and device) asked for. */
static bool is_file_object(const ShmemObject *o, bool memfd, uint64_t ino, uint64_t dev)
{
	if (memfd)
		return source_of(o) == SHMEM_SOURCE__SHMEM_MEMFD && o->ino == ino;
	return source_of(o) == SHMEM_SOURCE__SHMEM_DELETED && o->ino == ino && o->dev == dev;
}

bool shmem_has_file_object(const struct restore_ctx *ctx, bool memfd, uint64_t ino, uint64_t dev)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->mm->n_shmem; j++) {
			if (is_file_object(t->mm->shmem[j], memfd, ino, dev))
				return true;
		}
	}
	return false;
}

int shmem_file_fd(const struct restore_ctx *ctx, const struct restore_task *t, bool memfd, uint64_t ino,
		  uint64_t dev, bool *none, cr_error_t *err)
{
	const struct shmem_restore *sr = ctx->shmem;

	*none = true;
	for (size_t i = 0; sr != NULL && i < sr->n; i++) {
		const struct shmem_ref *ref = &sr->by_id[i];
		const ShmemObject *o = ref->obj;
		int slot = shmem_fd(ctx, o->id), fd;

		if (!is_file_object(o, memfd, ino, dev))
			continue;
		*none = false;
		if (ref->creator == t && create_object(t, ref, slot, err) < 0)
			return -1;
		fd = fcntl(slot, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return cr_error(err, errno, "object %u (%s), which pid %d makes, is not here", o->id, o->name,
					ref->creator->pid);
		return fd;
	}
	return -1;
}

/* In the restorer: object ref's data, the next in r, through a duplicate
 * of its creator's fd. */
static int reopen_rw(pid_t pid, int fd, cr_error_t *err)
{
	char path[64];
	int rw;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	rw = open(path, O_RDWR | O_CLOEXEC);
	if (rw < 0)
		return cr_error(err, errno, "open %s for writing", path);
	return rw;
}

/* A deleted file object that is open too: the fd's entry has its mtime,
 * set once the contents are written. */
static const DeletedEntry *deleted_fd_entry(const struct restore_ctx *ctx, const ShmemObject *o)
{
	if (source_of(o) != SHMEM_SOURCE__SHMEM_DELETED)
		return NULL;
	for (size_t id = 1; id <= ctx->n_files; id++) {
		const FileEntry *fe = restore_file(ctx, (uint32_t)id);

		if (fe != NULL && fe->kind == FILE_KIND__FILE_DELETED_REG && fe->deleted != NULL &&
		    fe->deleted->in_object && fe->deleted->ino == o->ino && fe->deleted->dev == o->dev)
			return fe->deleted;
	}
	return NULL;
}

static int fill_object(const struct restore_ctx *ctx, const struct shmem_ref *ref, struct cr_pages_reader *r,
		       cr_error_t *err)
{
	const ShmemObject *o = ref->obj;
	bool seals = source_of(o) == SHMEM_SOURCE__SHMEM_MEMFD && o->seals;
	const DeletedEntry *dated = deleted_fd_entry(ctx, o);
	uint64_t size = page_round(o->size);
	cleanup_close int fd = -1;
	char *p;
	int ret = 0;

	if (o->n_data == 0 && !seals && dated == NULL)
		return 0;
	if (is_sysv(o)) {
		p = shmat(ref->sysv_id, NULL, 0);
		if (p == (void *)-1)
			return cr_error(err, errno, "shmat of segment %d", ref->sysv_id);
	} else {
		fd = ref->exe ? reopen_rw(ref->creator->host_pid, shmem_fd(ctx, o->id), err) :
				fdkind_steal_fd(ref->creator->host_pid, shmem_fd(ctx, o->id), err);
		if (fd < 0)
			return cr_error_wrap(err, "shmem object %u of pid %d", o->id, ref->creator->pid);
		p = o->n_data == 0 ? NULL : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return cr_error(err, errno, "map shmem object %u (%llu bytes)", o->id,
					(unsigned long long)o->size);
	}
	for (size_t i = 0; i < o->n_data && ret == 0; i++) {
		size_t len = (size_t)o->data[i]->nr_pages * PAGE_SIZE_CR;

		ret = cr_pages_read(r, p + o->data[i]->offset, len, err);
		if (ret == 0)
			progress_add(len);
	}
	if (is_sysv(o))
		shmdt(p);
	else if (p != NULL)
		munmap(p, size);
	if (ret == 0 && seals && fcntl(fd, F_ADD_SEALS, o->seals) < 0)
		return cr_error(err, errno, "memfd %s: add seals 0x%x", o->name, o->seals);
	if (ret == 0 && dated != NULL) {
		struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, ns_timespec(dated->mtime_ns) };

		if (futimens(fd, times) < 0)
			return cr_error(err, errno, "deleted file %s: set mtime", o->name);
	}
	return ret;
}

static int fill_all(const struct restore_ctx *ctx, const struct shmem_restore *sr, cr_error_t *err)
{
	struct cr_pages_reader *r = NULL;
	char name[IMG_NAME_MAX];
	int ret = -1;

	if (cr_pages_reader_open_as(ctx->dirfd, img_name(name, CR_IMG_SHMEM_PAGES, 0), CR_IMG_SHMEM_PAGES, &r,
				    err) < 0)
		return -1;
	cr_img_hash_checked(cr_pages_reader_img(r));   /* restore_load verified every image */
	for (size_t i = 0; i < sr->n; i++)
		if (fill_object(ctx, &sr->by_id[i], r, err) < 0)
			goto out;
	ret = cr_pages_reader_check_end(r, err);
out:
	cr_pages_reader_close(r);
	return ret;
}

/* Every object is filled before the first transplant goes beyond memory
 * (the creators hold them, waiting; nothing runs yet). */
int shmem_fill(struct restore_ctx *ctx, cr_error_t *err)
{
	struct shmem_restore *sr = ctx->shmem;

	if (sr == NULL || sr->filled)
		return 0;
	sr->filled = true;
	return fill_all(ctx, sr, err);
}

void shmem_transplanted(struct restore_ctx *ctx)
{
	struct shmem_restore *sr = ctx->shmem;

	for (size_t i = 0; sr != NULL && i < sr->n; i++) {
		if (sr->by_id[i].made)
			shmctl(sr->by_id[i].sysv_id, IPC_RMID, NULL);   /* removed as it was; attached, it lives on */
		sr->by_id[i].made = false;
	}
}

static void shmem_release_restore(struct restore_ctx *ctx)
{
	struct shmem_restore *sr;

	shmem_transplanted(ctx);   /* a failed restore leaves no segment behind */
	sr = steal_pointer(&ctx->shmem);
	if (sr == NULL)
		return;
	free(sr->by_id);
	free(sr);
}

const struct state_kind state_shmem = {
	.name = "shared memory",
	.check_tree = shmem_check_tree,
	.write_tree = shmem_write_tree,
	.release_dump = shmem_release_dump,
	.validate = shmem_validate,
	.plan = shmem_plan,
	.before_fork = shmem_before_fork,
	.release_restore = shmem_release_restore,
};
