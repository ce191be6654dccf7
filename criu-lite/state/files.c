#include "state/files.h"
#include "fd/fdkind.h"
#include "os/log.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#define MAX_FD_NUMBER (1 << 20)

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

uint32_t file_table_find(const struct dump_ctx *ctx, const char *path, uint32_t flags)
{
	for (size_t i = 0; i < ctx->files.n; i++) {
		const FileEntry *fe = ctx->files.v[i];

		if (fe->kind == FILE_KIND__FILE_REG && fe->flags == flags && fe->has_mtime_ns &&
		    strcmp(fe->path, path) == 0)
			return fe->id;
	}
	return 0;
}

/* ------------------------------------------------------------------ dump */

static bool is_tty_rdev(dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);

	return (maj >= 136 && maj <= 143) || maj == 4 || (maj == 5 && (min == 0 || min == 1));
}

static bool ends_deleted(const char *link)
{
	size_t len = strlen(link);

	return len > 10 && strcmp(link + len - 10, " (deleted)") == 0;
}

/* What to call an fd no kind accepts, for the error message. */
static const char *unsupported_name(const struct fd_probe *p)
{
	if (strncmp(p->link, "anon_inode:", 11) == 0)
		return p->link + 11;
	if (strncmp(p->link, "/memfd:", 7) == 0)
		return "memfd";
	if (ends_deleted(p->link))
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

	p->fd = fd;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, p->link, sizeof(p->link) - 1);
	if (n < 0)
		return cr_error(err, errno, "pid %d fd %d: readlink", pid, fd);
	p->link[n] = '\0';
	if (stat(path, &p->st) < 0)
		return cr_error(err, errno, "pid %d fd %d (%s): stat", pid, fd, p->link);
	return proc_read_fdinfo(pid, fd, &p->info, &p->fdinfo, err);
}

/* --- regular files, character devices, terminals ---------------------- */

static bool reg_match(const struct fd_probe *p)
{
	mode_t type = p->st.st_mode & S_IFMT;
	struct stat now;

	if (type != S_IFREG && type != S_IFDIR)
		return false;
	if (p->link[0] != '/' || ends_deleted(p->link) || strncmp(p->link, "/memfd:", 7) == 0)
		return false;
	/* The path must still lead to the same file. */
	return stat(p->link, &now) == 0 && now.st_ino == p->st.st_ino && now.st_dev == p->st.st_dev;
}

static int reg_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	(void)ctx, (void)t, (void)err;
	fe->kind = FILE_KIND__FILE_REG;
	fe->has_size = fe->has_mode = true;
	fe->size = S_ISREG(p->st.st_mode) ? (uint64_t)p->st.st_size : 0;
	fe->mode = p->st.st_mode;
	return 0;
}

static bool tty_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && is_tty_rdev(p->st.st_rdev);
}

static int tty_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	if (!ctx->opts->shell_job)
		return cr_error(err, 0, "pid %d fd %d: terminal %s; dump with --shell-job to let the "
				"restored process use the restoring terminal", t->pid, p->fd, p->link);
	fe->kind = FILE_KIND__FILE_TTY;
	return 0;
}

static bool chr_match(const struct fd_probe *p)
{
	return S_ISCHR(p->st.st_mode) && p->link[0] == '/' && strcmp(p->link, "/dev/ptmx") != 0 &&
	       strncmp(p->link, "/dev/pts/", 9) != 0;
}

static int chr_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		    cr_error_t *err)
{
	(void)ctx, (void)t, (void)err;
	fe->kind = FILE_KIND__FILE_CHR;
	fe->has_rdev = true;
	fe->rdev = (uint32_t)p->st.st_rdev;
	return 0;
}

/* --- the fd table of a process ---------------------------------------- */

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

static int remember_fd(struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, uint32_t id, cr_error_t *err)
{
	if (ctx->n_seen == ctx->cap_seen) {
		size_t cap = ctx->cap_seen ? ctx->cap_seen * 2 : 256;
		struct fd_seen *bigger = realloc(ctx->seen, cap * sizeof(*bigger));

		if (bigger == NULL)
			return cr_error(err, ENOMEM, "fd table");
		ctx->seen = bigger;
		ctx->cap_seen = cap;
	}
	ctx->seen[ctx->n_seen++] = (struct fd_seen){
		.pid = pid, .fd = p->fd, .dev = p->st.st_dev, .ino = p->st.st_ino, .file_id = id,
	};
	return 0;
}

int files_check_sharing(const struct dump_ctx *ctx, cr_error_t *err)
{
	for (size_t i = 0; i < ctx->n_seen; i++) {
		const struct fd_seen *a = &ctx->seen[i];
		const struct fd_kind *kind = fdkind_for_entry(ctx->files.v[a->file_id - 1]);

		if (kind == NULL || kind->phase == 0)
			continue;
		for (size_t j = i + 1; j < ctx->n_seen; j++)
			if (ctx->seen[j].file_id == a->file_id && ctx->seen[j].pid != a->pid)
				return cr_error(err, 0, "pid %d fd %d and pid %d fd %d share one %s: unsupported kind "
						"(a %s shared between processes)", a->pid, a->fd, ctx->seen[j].pid,
						ctx->seen[j].fd, kind->name, kind->name);
	}
	return 0;
}

static int describe_fd(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, uint32_t *id,
		       cr_error_t *err)
{
	const struct fd_kind *kind = fdkind_for_probe(p);
	FileEntry *fe;

	if (kind == NULL)
		return cr_error(err, 0, "pid %d fd %d: unsupported kind: %s (%s)", t->pid, p->fd,
				unsupported_name(p), p->link);
	fe = arena_new(&ctx->arena, FileEntry);
	file_entry__init(fe);
	fe->path = arena_strdup(&ctx->arena, p->link);
	fe->flags = p->info.flags & ~(uint32_t)O_CLOEXEC;
	fe->pos = p->info.pos;
	if (kind->dump(ctx, t, p, fe, err) < 0)
		return cr_error_wrap(err, "%s", kind->name);
	*id = file_table_add(ctx, fe);
	return 0;
}

static int dump_one_fd(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, cr_error_t *err)
{
	FdEntry *fde = arena_new(&ctx->arena, FdEntry);
	uint32_t id = shared_with(ctx, t->pid, p);

	fd_entry__init(fde);
	fde->fd = (uint32_t)p->fd;
	fde->cloexec = (p->info.flags & O_CLOEXEC) != 0;
	if (id == 0 && describe_fd(ctx, t, p, &id, err) < 0)
		return -1;
	fde->file_id = id;
	t->fds[t->n_fds++] = fde;
	return remember_fd(ctx, t->pid, p, id, err);
}

int files_dump_fds(struct dump_ctx *ctx, struct dump_task *t, cr_error_t *err)
{
	cleanup_free int *fds = NULL;
	size_t n = 0;

	if (proc_list_fds(t->pid, &fds, &n, err) < 0)
		return -1;
	t->fds = arena_array(&ctx->arena, FdEntry *, n + 1);
	t->n_fds = 0;
	for (size_t i = 0; i < n; i++) {
		struct fd_probe p = { 0 };
		int r = probe_fd(t->pid, fds[i], &p, err);

		if (r == 0)
			r = dump_one_fd(ctx, t, &p, err);
		free(p.fdinfo);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* --------------------------------------------------------------- restore */

int files_validate(const struct restore_ctx *ctx, const struct restore_task *t, cr_error_t *err)
{
	for (size_t i = 0; i < t->n_fds; i++) {
		const FdEntry *f = t->fds[i];

		if (f->fd >= MAX_FD_NUMBER || (i > 0 && f->fd <= t->fds[i - 1]->fd))
			return cr_error(err, 0, "fdinfo-%d.img: fd %u is out of range or out of order", t->pid,
					f->fd);
		const FileEntry *fe = restore_file(ctx, f->file_id);

		if (fe == NULL)
			return cr_error(err, 0, "fdinfo-%d.img: fd %u names file %u, which files.img lacks",
					t->pid, f->fd, f->file_id);
		if (fe->kind == FILE_KIND__FILE_TTY && !ctx->opts->shell_job)
			return cr_error(err, 0, "pid %d fd %u is a terminal (%s): restore with --shell-job",
					t->pid, f->fd, fe->path);
		if (fdkind_for_entry(fe) == NULL)
			return cr_error(err, 0, "files.img: file %u (fd %u of pid %d) is of kind %d, which this "
					"cr cannot restore", fe->id, f->fd, t->pid, fe->kind);
		if (fdkind_for_entry(fe)->validate && fdkind_for_entry(fe)->validate(fe, err) < 0)
			return cr_error_wrap(err, "files.img: file %u", fe->id);
	}
	return 0;
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000ULL + (uint64_t)st->st_mtim.tv_nsec;
}

int files_open_reg(const FileEntry *fe, bool strict, cr_error_t *err)
{
	int flags = (int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	cleanup_close int fd = open(fe->path, flags | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return cr_error(err, errno, "open %s", fe->path);
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", fe->path);
	if (strict && ((uint64_t)st.st_size != fe->size || (fe->has_mtime_ns && mtime_ns(&st) != fe->mtime_ns)))
		return cr_error(err, 0, "%s changed since the dump (size %lld, was %llu); restore needs "
				"the same file", fe->path, (long long)st.st_size, (unsigned long long)fe->size);
	if (!strict && S_ISREG(st.st_mode) && (uint64_t)st.st_size != fe->size)
		pr_warn("%s: size is %lld, was %llu at dump", fe->path, (long long)st.st_size,
			(unsigned long long)fe->size);
	if (fe->pos && lseek(fd, (off_t)fe->pos, SEEK_SET) < 0)
		return cr_error(err, errno, "seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	return steal_fd(&fd);
}

static int open_chr(const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = open(fe->path, ((int)fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC |
				    O_NOCTTY);
	struct stat st;

	if (fd < 0)
		return cr_error(err, errno, "open %s", fe->path);
	if (fstat(fd, &st) < 0)
		return cr_error(err, errno, "stat %s", fe->path);
	if (!S_ISCHR(st.st_mode) || (fe->has_rdev && st.st_rdev != fe->rdev))
		return cr_error(err, 0, "%s is not the character device it was at dump (%u:%u)", fe->path,
				major(fe->rdev), minor(fe->rdev));
	return steal_fd(&fd);
}

static int reg_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx, (void)t;
	return files_open_reg(fe, false, err);
}

static int chr_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx, (void)t;
	return open_chr(fe, err);
}

static int tty_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	int fd = fcntl(t->reserved_base + RESERVED_TTY, F_DUPFD_CLOEXEC, 0);

	(void)ctx;
	if (fd < 0)
		return cr_error(err, errno, "terminal %s: restore with --shell-job from a terminal", fe->path);
	return fd;
}

const struct fd_kind fdkind_reg = {
	.name = "regular file", .match = reg_match, .dump = reg_dump, .open = reg_open,
};
const struct fd_kind fdkind_chr = {
	.name = "character device", .match = chr_match, .dump = chr_dump, .open = chr_open,
};
const struct fd_kind fdkind_tty = {
	.name = "terminal", .match = tty_match, .dump = tty_dump, .open = tty_open,
};

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
		return cr_error_wrap(err, "fd %u (%s)", f->fd, fdkind_for_entry(fe)->name);
	return place_fd(fd, (int)f->fd, f->cloexec, err);
}

/* Phase by phase, so that kinds referring to other fds find them. */
static int install_fds(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (int phase = 0; phase <= fdkind_max_phase(); phase++) {
		for (size_t i = 0; i < t->n_fds; i++) {
			if (fdkind_for_entry(restore_file(ctx, t->fds[i]->file_id))->phase != phase)
				continue;
			if (install_one(ctx, t, i, err) < 0)
				return -1;
		}
	}
	return 0;
}

int files_stash_fd(const struct restore_task *t, int fd, cr_error_t *err)
{
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, t->stash_top);

	if (moved < 0)
		return cr_error(err, errno, "keep fd %d aside", fd);
	close(fd);
	return moved;
}

int files_open_shared(struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	for (size_t id = 1; id <= ctx->n_files; id++) {
		const FileEntry *fe = restore_file(ctx, (uint32_t)id);
		const struct fd_kind *kind = fdkind_for_entry(fe);
		int fd, slot = ctx->stash_base + (int)id;

		if (ctx->file_lca[id] != t || kind == NULL || kind->phase != 0)
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

static int open_reserved(int slot_fd, const FileEntry *fe, cr_error_t *err)
{
	int fd = files_open_reg(fe, !(fe->flags & O_ACCMODE), err);

	if (fd < 0)
		return -1;
	return place_fd(fd, slot_fd, true, err);
}

static int open_mapped_files(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	const FileEntry *exe = restore_file(ctx, t->mm->exe_file_id);

	if (exe != NULL && open_reserved(t->reserved_base + RESERVED_EXE, exe, err) < 0)
		return cr_error_wrap(err, "executable");
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const VmaEntry *e = t->mm->vmas[i];

		if (t->vma_fd[i] < 0 || fcntl(t->vma_fd[i], F_GETFD) >= 0)
			continue;   /* none, or already open for an earlier VMA */
		if (open_reserved(t->vma_fd[i], restore_file(ctx, e->file_id), err) < 0)
			return cr_error_wrap(err, "mapping 0x%lx-0x%lx", (unsigned long)e->start,
					     (unsigned long)e->end);
	}
	return 0;
}

int files_setup_root(const struct restore_ctx *ctx, int sync_fd, cr_error_t *err)
{
	int base = ctx->reserved_base;
	int tty = -1;

	for (int i = 0; i < 3 && tty < 0; i++)
		if (isatty(i))
			tty = i;
	if (sync_fd != base + RESERVED_SYNC && dup3(sync_fd, base + RESERVED_SYNC, O_CLOEXEC) < 0)
		return cr_error(err, errno, "move sync fd");
	if (tty >= 0 && dup3(tty, base + RESERVED_TTY, O_CLOEXEC) < 0)
		return cr_error(err, errno, "keep terminal fd");
	if (syscall(SYS_close_range, 0, base - 1, 0) < 0 ||
	    syscall(SYS_close_range, base + RESERVED_EXE, ~0U, 0) < 0)
		return cr_error(err, errno, "close cr's fds");
	return 0;
}

int files_restore_child(const struct restore_ctx *ctx, struct restore_task *t, cr_error_t *err)
{
	if (install_fds(ctx, t, err) < 0)
		return -1;
	return open_mapped_files(ctx, t, err);
}
