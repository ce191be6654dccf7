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
#include "state/fown.h"
#include "fd/reg.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/sharing.h"
#include "state/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

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

uint32_t files_add_mapped(struct dump_ctx *ctx, const char *path, uint32_t flags, const struct stat *st)
{
	FileEntry *fe;

	for (size_t i = 0; i < ctx->files.n; i++) {
		fe = ctx->files.v[i];
		if (fe->kind == FILE_KIND__FILE_REG && fe->flags == flags && fe->has_mtime_ns &&
		    strcmp(fe->path, path) == 0)
			return fe->id;
	}
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = FILE_KIND__FILE_REG;
	fe->path = arena_strdup(&ctx->arena, path);
	fe->flags = flags;
	fe->has_size = fe->has_mtime_ns = true;
	fe->size = (uint64_t)st->st_size;
	fe->mtime_ns = timespec_ns(&st->st_mtim);
	reg_identity(fe, st);
	return file_table_add(ctx, fe);
}

/* ------------------------------------------------------------------ dump */

/* What to call an fd no kind accepts, for the error message. */
static const char *unsupported_name(const struct fd_probe *p)
{
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
	case S_IFSOCK: return "socket";
	case S_IFBLK: return "block device";
	case S_IFCHR: return "character device";
	case S_IFREG: return "file not reachable by its path";
	default: return "unknown";
	}
}

static int probe_fd(pid_t pid, int fd, struct fd_probe *p, cr_error_t *err)
{
	char path[64];
	ssize_t n;

	p->pid = pid;
	p->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, p->link, sizeof(p->link) - 1);
	if (n < 0)
		return cr_error(err, errno, "readlink");
	p->link[n] = '\0';
	if (stat(path, &p->st) < 0)
		return cr_error(err, errno, "%s: stat", p->link);
	return proc_read_fdinfo(pid, fd, &p->info, &p->fdinfo, err);
}

/* An fd recorded earlier, in this process or another, that refers to the
 * same description. */
static uint32_t shared_with(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p)
{
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *s = &ctx->seen[i];

		if (s->ino != p->st.st_ino || s->dev != p->st.st_dev)
			continue;
		if (syscall(SYS_kcmp, s->pid, pid, KCMP_FILE, s->fd, p->fd) == 0)
			return s->file_id;
	}
	return 0;
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

	if (kind == NULL)
		return cr_error(err, 0, "unsupported kind: %s (%s)", unsupported_name(p), p->link);
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->kind = kind->kind;
	fe->path = arena_strdup(&ctx->arena, p->link);
	fe->flags = p->info.flags & ~(uint32_t)O_CLOEXEC;
	fe->pos = p->info.pos;
	if (fown_dump(ctx, t, p, fe, err) < 0 || kind->dump(ctx, t, p, fe, err) < 0)
		return -1;
	*id = file_table_add(ctx, fe);
	return 0;
}

/* Every error about the fd is named here, once: "pid N fd M (kind)". */
static int dump_one_fd(struct dump_ctx *ctx, struct dump_task *t, int fd, FdEntry *fde, cr_error_t *err)
{
	struct fd_probe p = { 0 };
	const struct fd_kind *kind = NULL;
	uint32_t id = 0;
	int r = probe_fd(t->pid, fd, &p, err);

	if (r == 0 && (id = shared_with(ctx, t->pid, &p)) == 0) {
		kind = fdkind_for_probe(&p);
		r = describe_fd(ctx, t, kind, &p, &id, err);
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
	size_t n = 0;

	if (proc_list_fds(t->pid, &fds, &n, err) < 0)
		return cr_error_wrap(err, "pid %d", t->pid);
	out->v = arena_array(&ctx->arena, ProtobufCMessage *, n + 1);
	for (size_t i = 0; i < n; i++) {
		FdEntry *fde = arena_new(&ctx->arena, FdEntry);

		if (dump_one_fd(ctx, t, fds[i], fde, err) < 0)
			return -1;
		out->v[out->n++] = &fde->base;
	}
	return 0;
}

/* Descriptions that are not shareable must be held by one process, and
 * each process must have an fd table of its own. */
static int files_check_tree(struct dump_ctx *ctx, cr_error_t *err)
{
	if (sharing_refuse(ctx, KCMP_FILES, "fd table", err) < 0)
		return -1;
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *a = &ctx->seen[i];
		const struct fd_kind *kind = fdkind_for_entry(ctx->files.v[a->file_id - 1]);

		if (kind == NULL || kind->shareable)
			continue;
		for (size_t j = i + 1; j < ctx->n_seen; j++)
			if (ctx->seen[j].file_id == a->file_id && ctx->seen[j].pid != a->pid)
				return cr_error(err, 0, "pid %d fd %d and pid %d fd %d share one %s: unsupported kind "
						"(a %s shared between processes)", a->pid, a->fd, ctx->seen[j].pid,
						ctx->seen[j].fd, kind->name, kind->name);
	}
	return 0;
}

static void files_release_dump(struct dump_ctx *ctx)
{
	free(steal_pointer(&ctx->seen));
	ctx->n_seen = ctx->cap_seen = 0;
}

/* --------------------------------------------------------------- restore */

const FileEntry *restore_file(const struct restore_ctx *ctx, uint32_t id)
{
	if (id == 0 || id > ctx->n_files)
		return NULL;
	return ctx->files[id - 1];
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
	if (kind->validate && kind->validate(ctx, fe, err) < 0)
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

/* The lowest process that is an ancestor of (or is) both a and b. */
static struct restore_task *common_ancestor(struct restore_task *a, struct restore_task *b)
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
 * lowest common ancestor of the processes holding any of them. */
static int files_plan(struct restore_ctx *ctx, cr_error_t *err)
{
	(void)err;
	ctx->file_lca = xcalloc(ctx->n_files + 1, sizeof(*ctx->file_lca));
	ctx->opened = xmalloc((ctx->n_files + 1) * sizeof(*ctx->opened));
	for (size_t id = 0; id <= ctx->n_files; id++)
		ctx->opened[id] = -1;
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; j < t->n_fds; j++) {
			uint32_t id = object_of(ctx, restore_file(ctx, t->fds[j]->file_id));

			ctx->file_lca[id] = ctx->file_lca[id] ? common_ancestor(ctx->file_lca[id], t) : t;
		}
	}
	for (uint32_t id = 1; id <= ctx->n_files; id++)
		ctx->file_lca[id] = ctx->file_lca[object_of(ctx, restore_file(ctx, id))];
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

/* Every description this process is the lowest common ancestor of the
 * holders of, into the stash, where the holders inherit it. */
static int files_before_fork(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t id = 1; id <= ctx->n_files; id++) {
		const FileEntry *fe = restore_file(ctx, (uint32_t)id);
		const struct fd_kind *kind = fdkind_for_entry(fe);
		int fd, slot = ctx->stash_base + (int)id;

		if (ctx->file_lca[id] != t || !kind->shareable)
			continue;
		fd = kind->open(ctx, t, fe, err);
		if (fd < 0)
			return cr_error_wrap(err, "file %zu (%s %s)", id, kind->name, fe->path);
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

	if (ctx->opened[f->file_id] >= 0)
		fd = fcntl(ctx->opened[f->file_id], F_DUPFD_CLOEXEC, 0);
	for (size_t j = 0; j < i && fd < 0; j++)
		if (t->fds[j]->file_id == f->file_id)
			fd = fcntl((int)t->fds[j]->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		fd = fdkind_for_entry(fe)->open(ctx, t, fe, err);
	if (fd < 0)
		return -1;
	return place_fd(fd, (int)f->fd, f->cloexec, err);
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
	free(steal_pointer(&ctx->opened));
}

int files_stash_fd(const struct restore_task *t, int fd, cr_error_t *err)
{
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, t->stash_top);

	if (moved < 0)
		return cr_error(err, errno, "keep fd %d aside", fd);
	close(fd);
	return moved;
}

int files_open_mapped(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe, int slot,
		      cr_error_t *err)
{
	int fd = reg_open(ctx, t, fe, !(fe->flags & O_ACCMODE), err);

	if (fd < 0)
		return -1;
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
