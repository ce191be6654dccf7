/* The fd table of a process, as a kind of state: every fd with its number
 * and close-on-exec flag, and the file description behind it (files.img,
 * shared by the whole dump), whose own kind (fd/fdkind.h) dumps and opens
 * it.
 *
 * Descriptions held by several processes (inherited fds, found with kcmp)
 * are one entry of files.img.  At restore each kernel object is opened
 * once, by the lowest common ancestor of the processes that hold it,
 * before it forks, and inherited from there (plan and before_fork). */
#include "state/files.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "state/fdroom.h"
#include "state/fown.h"
#include "state/ns.h"
#include "fd/reg.h"
#include "fd/reopen.h"
#include "fd/sk_opts.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/sharing.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <search.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_FD_NUMBER (1 << 20)

/* ------------------------------------------------------ the file table */

uint32_t file_table_add(struct dump_ctx *ctx, FileEntry *fe)
{
	struct file_table *ft = &ctx->files;

	if (ft->n == ft->cap) {
		size_t cap = ft->cap ? ft->cap * 2 : 64;
		FileEntry **v = arena_array(&ctx->arena, FileEntry *, cap);

		if (ft->n)
			memcpy(v, ft->v, ft->n * sizeof(*v));
		ft->v = v;
		ft->cap = cap;
	}
	fe->id = (uint32_t)ft->n + 1;
	ft->v[ft->n++] = fe;
	return fe->id;
}

static int cmp_mapped(const void *pa, const void *pb)
{
	const FileEntry *a = pa, *b = pb;

	if (a->flags != b->flags)
		return a->flags < b->flags ? -1 : 1;
	if (a->mnt_ns != b->mnt_ns)
		return a->mnt_ns < b->mnt_ns ? -1 : 1;
	return strcmp(a->path, b->path);
}

/* One entry per mapped path and flags, found in a tree (a tree needs no
 * scan of the whole file table per mapping). */
uint32_t files_add_mapped(struct dump_ctx *ctx, const struct dump_task *t, const char *path, uint32_t flags,
			  const struct stat *st)
{
	uint32_t mnt = ns_mnt_ref(t->core->ns);
	FileEntry key = { .path = (char *)path, .flags = flags, .mnt_ns = mnt }, **found, *fe;

	found = tfind(&key, &ctx->mapped, cmp_mapped);
	if (found != NULL)
		return (*found)->id;
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = FILE_KIND__FILE_REG;
	fe->path = arena_strdup(&ctx->arena, path);
	fe->flags = flags;
	fe->has_mnt_ns = mnt != 0;
	fe->mnt_ns = mnt;
	fe->has_size = fe->has_mtime_ns = true;
	fe->size = (uint64_t)st->st_size;
	fe->mtime_ns = timespec_ns(&st->st_mtim);
	reg_identity(fe, st);
	if (tsearch(fe, &ctx->mapped, cmp_mapped) == NULL)
		xalloc_failed_in("tsearch");
	return file_table_add(ctx, fe);
}

/* ------------------------------------------------------------------ dump */

/* What to call an fd no kind accepts, for the error message (buf holds
 * a socket's protocol name: "socket (RAW)"). */
static const char *unsupported_name(const struct fd_probe *p, char *buf, size_t size)
{
	char proto[32];

	if (strncmp(p->link, "anon_inode:", 11) == 0)
		return p->link + 11;
	if (strncmp(p->link, "/memfd:", 7) == 0)
		return "memfd";
	if (proc_kernel_memory_file(p->link) != NULL)
		return proc_kernel_memory_file(p->link);
	if (proc_link_deleted(p->link, NULL))
		return "deleted file";
	switch (p->st.st_mode & S_IFMT) {
	case S_IFIFO: return strncmp(p->link, "pipe:", 5) == 0 ? "pipe" : "fifo";
	case S_IFSOCK:
		sk_proto_name(p, proto, sizeof(proto));
		snprintf(buf, size, proto[0] ? "socket (%s)" : "socket", proto);
		return buf;
	case S_IFBLK: return "block device";
	case S_IFCHR: return "character device";
	case S_IFREG: return "file not reachable by its path";
	default: return "unknown";
	}
}

/* /proc/PID/fd and /proc/PID/fdinfo, opened once for all the fds of a
 * process. */
struct fd_dirs {
	int fd, fdinfo;
};

static void close_fd_dirs(struct fd_dirs *d)
{
	if (d->fd >= 0)
		close(d->fd);
	if (d->fdinfo >= 0)
		close(d->fdinfo);
}

static int open_fd_dirs(pid_t pid, struct fd_dirs *d, cr_error_t *err)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d->fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
	d->fdinfo = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0 || d->fdinfo < 0)
		return cr_error(err, errno, "open %s", path);
	return 0;
}

static int probe_fd(const struct fd_dirs *d, pid_t pid, int fd, struct fd_probe *p, cr_error_t *err)
{
	char name[16];
	ssize_t n;

	p->pid = pid;
	p->fd = fd;
	snprintf(name, sizeof(name), "%d", fd);
	n = readlinkat(d->fd, name, p->link, sizeof(p->link) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink");
	p->link[n] = '\0';
	if (fstatat(d->fd, name, &p->st, 0) < 0)
		return cr_error(err, errno, "%s: stat", p->link);
	return proc_read_fdinfo_at(d->fdinfo, pid, fd, &p->info, &p->fdinfo, err);
}

/* Every description of the dump so far, in a tree ordered by inode,
 * offset and flags (which fds of one description share), then by kcmp's
 * order of the kernel's file pointers: whether an fd's description was
 * seen before, in this process or another, takes a few kcmp calls at
 * most, not one for every fd seen with the same inode. */
struct desc_key {
	pid_t pid;
	int fd;
	dev_t dev;
	ino_t ino;
	uint64_t pos;
	uint32_t flags;                /* without O_CLOEXEC, which is the fd's */
	uint32_t file_id;              /* 0 until the description is recorded */
	int *kcmp_errno;               /* where a failed kcmp is noted */
};

static int cmp_desc(const void *pa, const void *pb)
{
	const struct desc_key *a = pa, *b = pb;
	long r;

	if (a->dev != b->dev || a->ino != b->ino)
		return a->dev != b->dev ? (a->dev < b->dev ? -1 : 1) : (a->ino < b->ino ? -1 : 1);
	if (a->pos != b->pos || a->flags != b->flags)
		return a->pos != b->pos ? (a->pos < b->pos ? -1 : 1) : (a->flags < b->flags ? -1 : 1);
	r = syscall(SYS_kcmp, a->pid, b->pid, KCMP_FILE, a->fd, b->fd);
	if (r == 0 || r == 1 || r == 2)
		return r == 0 ? 0 : (r == 1 ? -1 : 1);
	*a->kcmp_errno = r < 0 ? errno : EINVAL;
	return a->pid != b->pid ? (a->pid < b->pid ? -1 : 1) : (a->fd < b->fd ? -1 : 1);
}

/* The entry of p's description: one recorded earlier, or a new one with
 * file_id 0 for the caller to fill in. */
static struct desc_key *find_desc(struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, cr_error_t *err)
{
	struct desc_key *k = arena_new(&ctx->arena, struct desc_key), **found;

	*k = (struct desc_key){ .pid = pid, .fd = p->fd, .dev = p->st.st_dev, .ino = p->st.st_ino,
				.pos = p->info.pos, .flags = p->info.flags & ~(uint32_t)O_CLOEXEC,
				.kcmp_errno = &ctx->kcmp_errno };
	found = tsearch(k, &ctx->descs, cmp_desc);
	if (found == NULL)
		xalloc_failed_in("tsearch");
	if (ctx->kcmp_errno != 0)
		return cr_error(err, ctx->kcmp_errno, "kcmp"), NULL;
	return *found;
}

static void remember_fd(struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, uint32_t id)
{
	if (ctx->n_seen == ctx->cap_seen) {
		ctx->cap_seen = ctx->cap_seen ? ctx->cap_seen * 2 : 256;
		ctx->seen = xreallocarray(ctx->seen, ctx->cap_seen, sizeof(*ctx->seen));
	}
	ctx->seen[ctx->n_seen++] = (struct fd_seen){
		.pid = pid, .fd = p->fd, .dev = p->st.st_dev, .ino = p->st.st_ino, .file_id = id,
	};
}

static int describe_fd(struct dump_ctx *ctx, struct dump_task *t, const struct fd_kind *kind,
		       const struct fd_probe *p, uint32_t *id, cr_error_t *err)
{
	FileEntry *fe;
	char name[64];

	if (kind == NULL)
		return cr_error(err, 0, "unsupported kind: %s (%s)", unsupported_name(p, name, sizeof(name)), p->link);
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = kind->kind;
	fe->path = arena_strdup(&ctx->arena, p->link);
	fe->flags = p->info.flags & ~(uint32_t)O_CLOEXEC;
	fe->pos = p->info.pos;
	fe->mnt_ns = ns_mnt_ref(t->core->ns);
	fe->has_mnt_ns = fe->mnt_ns != 0;
	if (fown_dump(ctx, t, p, fe, err) < 0 || kind->dump(ctx, t, p, fe, err) < 0)
		return -1;
	*id = file_table_add(ctx, fe);
	return 0;
}

/* Every error about the fd is named here, once: "pid N fd M (kind)". */
static int dump_one_fd(struct dump_ctx *ctx, struct dump_task *t, const struct fd_dirs *d, int fd, FdEntry *fde,
		       cr_error_t *err)
{
	struct fd_probe p = { 0 };
	const struct fd_kind *kind = NULL;
	struct desc_key *desc = NULL;
	uint32_t id = 0;
	int r = probe_fd(d, t->pid, fd, &p, err);

	if (r == 0 && (desc = find_desc(ctx, t->pid, &p, err)) == NULL)
		r = -1;
	if (r == 0 && (id = desc->file_id) == 0) {
		kind = fdkind_for_probe(&p);
		r = describe_fd(ctx, t, kind, &p, &id, err);
		desc->file_id = id;
	}
	free(p.fdinfo);
	if (r < 0 && kind != NULL)
		return cr_error_wrap(err, "pid %d fd %d (%s)", t->pid, fd, kind->name);
	if (r < 0)
		return cr_error_wrap(err, "pid %d fd %d", t->pid, fd);
	fd_entry__init(fde);
	fde->fd = (uint32_t)fd;
	fde->cloexec = (p.info.flags & O_CLOEXEC) != 0;
	fde->file_id = id;
	remember_fd(ctx, t->pid, &p, id);
	return 0;
}

static int files_collect(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	struct img_msgs *out = &t->img[CR_IMG_FDINFO];
	cleanup_free int *fds = NULL;
	struct fd_dirs d = { -1, -1 };
	size_t n = 0;
	int ret = 0;

	if (proc_list_fds(t->pid, &fds, &n, err) < 0 || open_fd_dirs(t->pid, &d, err) < 0) {
		close_fd_dirs(&d);
		return cr_error_wrap(err, "pid %d", t->pid);
	}
	out->v = arena_array(&ctx->arena, ProtobufCMessage *, n + 1);
	for (size_t i = 0; i < n && ret == 0; i++) {
		FdEntry *fde = arena_new(&ctx->arena, FdEntry);

		if ((ret = dump_one_fd(ctx, t, &d, fds[i], fde, err)) == 0)
			out->v[out->n++] = &fde->base;
	}
	close_fd_dirs(&d);
	return ret;
}

/* A description of a kind that is not shareable, held by two processes. */
static int refuse_shared(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free size_t *first = xcalloc(ctx->files.n + 1, sizeof(*first));   /* index in seen, + 1 */

	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *b = &ctx->seen[i], *a;
		const struct fd_kind *kind = fdkind_for_entry(ctx->files.v[b->file_id - 1]);

		if (kind == NULL || kind->shareable)
			continue;
		if (first[b->file_id] == 0)
			first[b->file_id] = i + 1;
		a = &ctx->seen[first[b->file_id] - 1];
		if (a->pid != b->pid)
			return cr_error(err, 0, "pid %d fd %d and pid %d fd %d share one %s: unsupported kind "
					"(a %s shared between processes)", a->pid, a->fd, b->pid, b->fd, kind->name,
					kind->name);
	}
	return 0;
}

/* How many files the mappings of t need open at restore (one slot each). */
static int mapped_files(const struct dump_task *t)
{
	cleanup_free uint32_t *ids = NULL;
	size_t n = 0;

	if (t->mm == NULL)
		return 0;
	ids = xcalloc(t->mm->n_vmas + 1, sizeof(*ids));
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->kind == VMA_KIND__VMA_FILE)
			ids[n++] = t->mm->vmas[i]->file_id;
	return (int)fd_room_sort_unique(ids, n);
}

/* Bounds of what the restore will plan (files_plan, restore_plan): its
 * block holds the reserved slots, one slot per mapped file of the process
 * that maps most, and the stash, which holds a description when processes
 * share it (or its object: a pipe's ends) and the shared memory; kinds
 * keep fds aside per object, namespaces one each and some of the
 * restorer's. */
static void room_needed(const struct dump_ctx *ctx, int *block, int *aside)
{
	cleanup_free pid_t *holder = xcalloc(ctx->files.n + 1, sizeof(*holder));
	cleanup_free bool *shared = xcalloc(ctx->files.n + 1, sizeof(*shared));
	int mapped = 0, stash = 0;

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct dump_task *t = &ctx->tasks[i];
		int m = mapped_files(t);

		mapped = m > mapped ? m : mapped;
		stash += t->mm ? (int)t->mm->n_shmem : 0;
	}
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *s = &ctx->seen[i];

		shared[s->file_id] |= holder[s->file_id] != 0 && holder[s->file_id] != s->pid;
		holder[s->file_id] = s->pid;
	}
	*aside = ctx->img[CR_IMG_NS].n ? (int)ctx->img[CR_IMG_NS].n + CR_ROOM_HOST_NS : 0;
	for (uint32_t id = 1; id <= ctx->files.n; id++) {
		const struct fd_kind *kind = fdkind_for_entry(ctx->files.v[id - 1]);

		/* A unix socket only in flight is made with its component; a
		 * pipe in flight is planned with the pipe its holders have. */
		if (kind != NULL && holder[id] == 0 &&
		    (ctx->files.v[id - 1]->unix_sk != NULL || ctx->files.v[id - 1]->pipe != NULL))
			*aside += kind->aside;
		if (kind == NULL || holder[id] == 0)
			continue;
		stash += shared[id] || kind->first != NULL;
		*aside += kind->aside;
	}
	*block = RESERVED_MAPS + mapped + stash;
}

/* The process with the highest fd. */
static const struct fd_seen *highest_fd(const struct dump_ctx *ctx)
{
	const struct fd_seen *top = &ctx->seen[0];

	for (size_t i = 1; i < ctx->n_seen; i++)
		if (ctx->seen[i].fd > top->fd)
			top = &ctx->seen[i];
	return top;
}

/* A restore must find room for its own fds below the hard RLIMIT_NOFILE
 * (fdroom.h); one that would not is refused now, while the tree runs. */
static int check_room(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free uint32_t *used = NULL;
	const struct fd_seen *top;
	struct fd_room room;
	size_t n;
	int block, aside;

	if (ctx->n_seen == 0)
		return 0;
	used = xcalloc(ctx->n_seen, sizeof(*used));
	for (size_t i = 0; i < ctx->n_seen; i++)
		used[i] = (uint32_t)ctx->seen[i].fd;
	n = fd_room_sort_unique(used, ctx->n_seen);
	room_needed(ctx, &block, &aside);
	if (fd_room_find(used, n, block, aside, fd_room_limit(), &room) == 0)
		return 0;
	top = highest_fd(ctx);
	return cr_error(err, EMFILE, "pid %d has fd %d, and %zu fd numbers are taken in the tree: a restore needs "
			"%d more fds in one free range and %d above fd %d, all below the hard RLIMIT_NOFILE of "
			"%llu it runs with, and there is no such room (close fds, or give them lower numbers)",
			top->pid, top->fd, n, block, aside, top->fd, (unsigned long long)fd_room_limit());
}

/* ------------------------------------- processes a description refers to */

static const struct dump_task *task_of(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return &ctx->tasks[i];
	return NULL;
}

/* Is a the process of, or an ancestor of it, in the dump? */
static bool self_or_ancestor(const struct dump_ctx *ctx, pid_t a, pid_t of)
{
	for (const struct dump_task *t = task_of(ctx, of); t != NULL; t = t->ppid ? task_of(ctx, t->ppid) : NULL)
		if (t->pid == a)
			return true;
	return false;
}

static pid_t lowest_common(const struct dump_ctx *ctx, pid_t a, pid_t b)
{
	for (const struct dump_task *t = task_of(ctx, a); t != NULL; t = t->ppid ? task_of(ctx, t->ppid) : NULL)
		if (self_or_ancestor(ctx, t->pid, b))
			return t->pid;
	return 0;
}

/* A description that refers to a process of the dump (a file of its
 * /proc, a pidfd) must find it at restore when it is opened.  A process
 * opens its own fds once its children exist, and waits for any other
 * process of the tree it refers to (install_one).  A description several
 * processes hold is opened by the lowest common ancestor of them all
 * before it forks (files_before_fork), when only it and its ancestors
 * exist: one that refers to another process is refused. */
static int refuse_unborn_one(const struct dump_ctx *ctx, const struct fd_seen *s, pid_t opener, cr_error_t *err)
{
	const FileEntry *fe = ctx->files.v[s->file_id - 1];
	const struct fd_kind *kind = fdkind_for_entry(fe);
	pid_t target = kind->refers_to(fe);

	if (target == 0 || self_or_ancestor(ctx, target, opener))
		return 0;
	return cr_error(err, 0, "pid %d fd %d (%s %s) refers to pid %d and is shared with other processes: a restore "
			"opens it in pid %d, before pid %d exists (unsupported: a shared %s of a process other than "
			"the holders' common ancestor or its ancestors)", s->pid, s->fd, kind->name, fe->path, target,
			opener, target, kind->name);
}

static int refuse_unborn(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_free pid_t *opener = xcalloc(ctx->files.n + 1, sizeof(*opener));
	cleanup_free bool *shared = xcalloc(ctx->files.n + 1, sizeof(*shared));

	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *s = &ctx->seen[i];
		pid_t had = opener[s->file_id];

		shared[s->file_id] |= had != 0 && had != s->pid;
		opener[s->file_id] = had ? lowest_common(ctx, had, s->pid) : s->pid;
	}
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *s = &ctx->seen[i];
		const struct fd_kind *kind = fdkind_for_entry(ctx->files.v[s->file_id - 1]);

		if (kind != NULL && kind->refers_to != NULL && shared[s->file_id] &&
		    refuse_unborn_one(ctx, s, opener[s->file_id], err) < 0)
			return -1;
	}
	return 0;
}

/* Descriptions that are not shareable must be held by one process, each
 * process must have an fd table of its own, descriptions must find the
 * processes they refer to, and a restore must have room for its own fds. */
static int files_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	if (sharing_refuse(ctx, KCMP_FILES, "fd table", err) < 0 || refuse_shared(ctx, err) < 0 ||
	    refuse_unborn(ctx, err) < 0 || fdkind_check_tree(ctx, err) < 0)
		return -1;
	return check_room(ctx, err);
}

static void no_free(void *p)
{
	(void)p;   /* the keys live in the arena */
}

static void files_release_dump(struct dump_ctx *ctx)
{
	fdkind_release_dump(ctx);
	free(steal_pointer(&ctx->seen));
	ctx->n_seen = ctx->cap_seen = 0;
	tdestroy(steal_pointer(&ctx->descs), no_free);
	tdestroy(steal_pointer(&ctx->mapped), no_free);
	fdshare_release_dump(ctx);
	ctx->kcmp_errno = 0;
}

/* --------------------------------------------------------------- restore */

const FileEntry *restore_file(const struct restore_ctx *ctx, uint32_t id)
{
	if (id == 0 || id > ctx->n_files)
		return NULL;
	return ctx->files[id - 1];
}

/* What every description must be, then what its kind says. */
static int validate_file(const struct restore_ctx *ctx, const struct fd_kind *kind, const FileEntry *fe,
			 cr_error_t *err)
{
	if (fe->pos > INT64_MAX)
		return cr_error(err, 0, "offset %llu", (unsigned long long)fe->pos);
	if (reopen_check_flags(fe->path, fe->flags & ~kind->extra_flags, err) < 0)
		return -1;
	return kind->validate ? kind->validate(ctx, fe, err) : 0;
}

static int validate_fd(const struct restore_ctx *ctx, const struct restore_task *t, size_t i, cr_error_t *err)
{
	const FdEntry *f = t->fds[i];
	const FileEntry *fe = restore_file(ctx, f->file_id);
	const struct fd_kind *kind;

	if (f->fd >= MAX_FD_NUMBER || (i > 0 && f->fd <= t->fds[i - 1]->fd))
		return cr_error(err, 0, "fdinfo-%d.img: fd %u is out of range or out of order", t->pid, f->fd);
	if (fe == NULL)
		return cr_error(err, 0, "fdinfo-%d.img: fd %u names file %u, which files.img lacks", t->pid, f->fd,
				f->file_id);
	kind = fdkind_for_entry(fe);
	if (kind == NULL)
		return cr_error(err, 0, "files.img: file %u (fd %u of pid %d) is of kind %d, which this cr cannot "
				"restore", fe->id, f->fd, t->pid, fe->kind);
	if (validate_file(ctx, kind, fe, err) < 0)
		return cr_error_wrap(err, "files.img: file %u (pid %d fd %u, %s)", fe->id, t->pid, f->fd, kind->name);
	return 0;
}

static int files_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if (validate_fd(ctx, t, i, err) < 0)
			return -1;
	return 0;
}

struct restore_task *restore_common_ancestor(struct restore_task *a, struct restore_task *b)
{
	for (struct restore_task *x = a; x != NULL; x = x->parent)
		for (struct restore_task *y = b; y != NULL; y = y->parent)
			if (x == y)
				return x;
	return NULL;
}

/* The id that stands for fe's kernel object: its first description. */
static uint32_t object_of(const struct restore_ctx *ctx, const FileEntry *fe)
{
	const struct fd_kind *kind = fdkind_for_entry(fe);

	return kind && kind->first ? kind->first(ctx, fe)->id : fe->id;
}

/* Each kernel object is opened once, with all its descriptions, by the
 * lowest common ancestor of the processes holding any of them; when that
 * is more than one process, before it forks, into a slot of the stash.
 * shared: per object, whether more than one process holds it. */
static void find_openers(struct restore_ctx *ctx, bool *shared)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; j < t->n_fds; j++) {
			uint32_t id = object_of(ctx, restore_file(ctx, t->fds[j]->file_id));
			struct restore_task *had = ctx->file_lca[id];

			shared[id] |= had != NULL && had != t;
			ctx->file_lca[id] = had ? restore_common_ancestor(had, t) : t;
		}
	}
}

/* The ancestor of t (not t) whose own pid, in t's pid namespace, is pid;
 * NULL when there is none. */
static struct restore_task *ancestor_with_pid(struct restore_task *t, pid_t pid)
{
	for (struct restore_task *x = t->parent; x != NULL && x->pstree->pidns == t->pstree->pidns; x = x->parent)
		if ((pid_t)x->pstree->ns_pid[x->pstree->n_ns_pid - 1] == pid)
			return x;
	return NULL;
}

/* An object whose maker is an ancestor of its holders is opened by the
 * maker (the kind's made_by), which still holds it before it forks. */
static void raise_to_makers(struct restore_ctx *ctx, bool *shared)
{
	for (uint32_t id = 1; id <= ctx->n_files; id++) {
		const FileEntry *fe = restore_file(ctx, id);
		const struct fd_kind *kind = fdkind_for_entry(fe);
		uint32_t obj = object_of(ctx, fe);
		struct restore_task *maker;
		pid_t pid;

		if (kind == NULL || kind->made_by == NULL || ctx->file_lca[obj] == NULL || (pid = kind->made_by(fe)) == 0)
			continue;
		maker = ancestor_with_pid(ctx->file_lca[obj], pid);
		if (maker != NULL) {
			ctx->file_lca[obj] = maker;
			shared[obj] = true;
		}
	}
}

/* Stash slots for the descriptions of shared objects, and the fds kinds
 * may keep aside for each entry (a unix socket component keeps one per
 * socket). */
static void plan_stash(struct restore_ctx *ctx, const bool *shared)
{
	int n = 0;

	for (uint32_t id = 1; id <= ctx->n_files; id++) {
		const FileEntry *fe = restore_file(ctx, id);
		const struct fd_kind *kind = fdkind_for_entry(fe);
		uint32_t obj = object_of(ctx, fe);

		ctx->file_lca[id] = ctx->file_lca[obj];
		ctx->file_slot[id] = -1;
		if (ctx->file_lca[id] == NULL)
			continue;
		if (kind->shareable && shared[obj])
			ctx->file_slot[id] = n++;
		ctx->n_aside += kind->aside;   /* per entry, as the dump checked (room_needed) */
	}
	ctx->files_slot0 = restore_stash_reserve(ctx, n);
}

/* Each process's files to open before it forks, so that it need not
 * look at every file of the tree. */
static void index_openers(struct restore_ctx *ctx)
{
	size_t *first = xcalloc(ctx->n_tasks + 1, sizeof(*first));
	cleanup_free size_t *next = NULL;

	for (size_t id = 1; id <= ctx->n_files; id++)
		if (ctx->file_lca[id] != NULL && ctx->file_slot[id] >= 0)
			first[ctx->file_lca[id] - ctx->tasks + 1]++;
	for (size_t i = 0; i < ctx->n_tasks; i++)
		first[i + 1] += first[i];
	next = xmalloc((ctx->n_tasks + 1) * sizeof(*next));
	memcpy(next, first, (ctx->n_tasks + 1) * sizeof(*next));
	ctx->opener_ids = xmalloc((first[ctx->n_tasks] + 1) * sizeof(*ctx->opener_ids));
	for (size_t id = 1; id <= ctx->n_files; id++)
		if (ctx->file_lca[id] != NULL && ctx->file_slot[id] >= 0)
			ctx->opener_ids[next[ctx->file_lca[id] - ctx->tasks]++] = (uint32_t)id;
	ctx->opener_first = first;
}

static int files_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	cleanup_free bool *shared = xcalloc(ctx->n_files + 1, sizeof(*shared));

	(void)err;
	ctx->file_lca = xcalloc(ctx->n_files + 1, sizeof(*ctx->file_lca));
	ctx->file_slot = xmalloc((ctx->n_files + 1) * sizeof(*ctx->file_slot));
	ctx->opened = xmalloc((ctx->n_files + 1) * sizeof(*ctx->opened));
	ctx->file_first = xcalloc(ctx->n_files + 1, sizeof(*ctx->file_first));
	for (size_t id = 0; id <= ctx->n_files; id++)
		ctx->opened[id] = -1;
	find_openers(ctx, shared);
	raise_to_makers(ctx, shared);
	plan_stash(ctx, shared);
	index_openers(ctx);
	return 0;
}

/* Puts fd at number want, with the close-on-exec flag as dumped. */
static int place_fd(int fd, int want, bool cloexec, cr_error_t *err)
{
	if (fd != want) {
		if (dup3(fd, want, cloexec ? O_CLOEXEC : 0) < 0)
			return cr_error(err, errno, "dup to fd %d", want);
		close(fd);
		return 0;
	}
	if (fcntl(want, F_SETFD, cloexec ? FD_CLOEXEC : 0) < 0)
		return cr_error(err, errno, "set flags of fd %d", want);
	return 0;
}

/* Every description of a shared object this process is the lowest common
 * ancestor of the holders of, into the stash, where the holders inherit
 * it. */
static int files_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	size_t me = (size_t)(t - ctx->tasks);

	for (size_t k = ctx->opener_first[me]; k < ctx->opener_first[me + 1]; k++) {
		uint32_t id = ctx->opener_ids[k];
		const FileEntry *fe = restore_file(ctx, id);
		const struct fd_kind *kind = fdkind_for_entry(fe);
		int fd, slot = ctx->stash_base + ctx->files_slot0 + ctx->file_slot[id];

		fd = kind->open(ctx, t, fe, err);
		if (fd < 0)
			return cr_error_wrap(err, "file %u (%s %s)", id, kind->name, fe->path);
		if (place_fd(fd, slot, true, err) < 0)
			return -1;
		ctx->opened[id] = slot;
	}
	return 0;
}

static int install_one(const struct restore_ctx *ctx, struct restore_task *t, size_t i, cr_error_t *err)
{
	const FdEntry *f = t->fds[i];
	const FileEntry *fe = restore_file(ctx, f->file_id);
	int fd = -1;

	if (ctx->opened[f->file_id] >= 0 && (fd = fcntl(ctx->opened[f->file_id], F_DUPFD_CLOEXEC, 0)) < 0)
		return cr_error(err, errno, "dup fd %d", ctx->opened[f->file_id]);
	if (fd < 0 && fdkind_await_process(ctx, t, fe, err) == 0)
		fd = fdkind_for_entry(fe)->open(ctx, t, fe, err);
	if (fd < 0 || place_fd(fd, (int)f->fd, f->cloexec, err) < 0)
		return -1;
	if (ctx->opened[f->file_id] < 0)
		ctx->opened[f->file_id] = (int)f->fd;   /* this process's copy: its next fd of it dups this */
	return 0;
}

/* Every dumped fd at its number: from the stash, or opened here; kinds
 * that refer to other fds last. */
static int files_setup(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (int order = FD_OPEN_FIRST; order <= FD_OPEN_LAST; order++) {
		for (size_t i = 0; i < t->n_fds; i++) {
			const struct fd_kind *kind = fdkind_for_entry(restore_file(ctx, t->fds[i]->file_id));

			if ((int)kind->order == order && install_one(ctx, t, i, err) < 0)
				return cr_error_wrap(err, "fd %u (%s)", t->fds[i]->fd, kind->name);
		}
	}
	return 0;
}

static void files_release_restore(struct restore_ctx *ctx)
{
	free(steal_pointer(&ctx->file_lca));
	free(steal_pointer(&ctx->file_slot));
	free(steal_pointer(&ctx->opened));
	free(steal_pointer(&ctx->file_first));
	free(steal_pointer(&ctx->opener_first));
	free(steal_pointer(&ctx->opener_ids));
}

int files_stash_fd(const struct restore_task *t, int fd, cr_error_t *err)
{
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, t->stash_top);

	if (moved < 0)
		return cr_error(err, errno, "keep fd %d aside (at fd %d or above)", fd, t->stash_top);
	close(fd);
	return moved;
}

int files_open_mapped(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe, int slot,
		      cr_error_t *err)
{
	int fd = reg_open(ctx, t, fe, !(fe->flags & O_ACCMODE), err);

	if (fd < 0)
		return -1;
	if (fe->has_mapped_flock && fe->mapped_flock != 1 && fe->mapped_flock != 2) {
		close(fd);
		return cr_error(err, 0, "%s: a flock of unknown type %u", fe->path, fe->mapped_flock);
	}
	/* The flock the process held through its mapping (state/locks.c). */
	if (fe->has_mapped_flock && flock(fd, (fe->mapped_flock == 2 ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
		int saved = errno;

		close(fd);
		return cr_error(err, saved, "%s: the %s flock the process held through its mapping%s", fe->path,
				fe->mapped_flock == 2 ? "write" : "read",
				saved == EWOULDBLOCK ? " is held by another process now" : "");
	}
	return place_fd(fd, slot, true, err);
}

const struct state_kind state_files = {
	.name = "fd table",
	.collect = files_collect,
	.check_tree = files_check_tree,
	.release_dump = files_release_dump,
	.validate = files_validate,
	.plan = files_plan,
	.before_fork = files_before_fork,
	.setup = files_setup,
	.release_restore = files_release_restore,
};
