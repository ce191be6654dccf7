/* The guard records of a dump (dump/guard.h): one small file per held
 * process, each replaced whole (written aside, then renamed over). */
#include "dump/guard.h"
#include "os/log.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int mkdir_private(const char *path, cr_error_t *err)
{
	struct stat st;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return cr_error(err, errno, "create %s", path);
	if (lstat(path, &st) < 0)
		return cr_error(err, errno, "stat %s", path);
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077))
		return cr_error(err, 0, "%s is not a directory only %d may use", path, (int)geteuid());
	return 0;
}

int guard_open(struct dump_ctx *ctx, cr_error_t *err)
{
	return guard_dir_open(&ctx->guard, "dump", err);
}

void guard_close(struct dump_ctx *ctx)
{
	guard_dir_close(&ctx->guard);
}

int guard_dir_open(struct dump_guard *g, const char *what, cr_error_t *err)
{
	g->dirfd = g->pipe_wr = -1;
	if (mkdir("/run", 0755) < 0 && errno != EEXIST)   /* a system without /run (an initramfs) */
		return cr_error(err, errno, "guard records: create /run");
	if (mkdir_private("/run/cr", err) < 0 || mkdir_private(GUARD_ROOT, err) < 0)
		return cr_error_wrap(err, "guard records");
	guard_recover_stale();
	snprintf(g->path, sizeof(g->path), GUARD_ROOT "/%s-%d.XXXXXX", what, (int)getpid());
	if (mkdtemp(g->path) == NULL)
		return cr_error(err, errno, "guard records: create %s", g->path);
	g->dirfd = open(g->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (g->dirfd < 0) {
		rmdir(g->path);
		return cr_error(err, errno, "guard records: open %s", g->path);
	}
	g->detached = strcmp(what, "dump") != 0;
	g->guardian = guardian_spawn(g->path, &g->pipe_wr, g->detached, err);
	if (g->guardian < 0) {
		guard_dir_close(g);
		return cr_error_wrap(err, "start the guardian");
	}
	return 0;
}

void guard_dir_close(struct dump_guard *g)
{
	if (g->dirfd < 0)
		return;
	unlinkat(g->dirfd, GUARD_COMPLETE, 0);
	close(g->dirfd);
	g->dirfd = -1;
	if (rmdir(g->path) < 0)
		pr_warn("guard records left in %s: %s", g->path, strerror(errno));
	if (g->pipe_wr >= 0)
		close(g->pipe_wr);   /* the guardian finds no records and ends */
	if (g->guardian > 0 && !g->detached)
		while (waitpid(g->guardian, NULL, 0) < 0 && errno == EINTR)
			;
	g->pipe_wr = -1;
	g->guardian = 0;
}

static int write_record(struct dump_ctx *ctx, const struct dump_task *t, const struct guard_head *h,
			const struct guard_thread *th, cr_error_t *err)
{
	char name[32], tmp[40];
	size_t len = sizeof(*h) + h->n_threads * sizeof(*th);
	cleanup_free char *buf = xmalloc(len);
	cleanup_close int fd = -1;

	snprintf(name, sizeof(name), "%d", (int)t->pid);
	snprintf(tmp, sizeof(tmp), ".%d.new", (int)t->pid);
	memcpy(buf, h, sizeof(*h));
	if (h->n_threads)
		memcpy(buf + sizeof(*h), th, h->n_threads * sizeof(*th));
	unlinkat(ctx->guard.dirfd, tmp, 0);
	fd = openat(ctx->guard.dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return cr_error(err, errno, "write guard record %s/%s", ctx->guard.path, tmp);
	if (renameat(ctx->guard.dirfd, tmp, ctx->guard.dirfd, name) < 0)
		return cr_error(err, errno, "rename guard record %s/%s", ctx->guard.path, tmp);
	return 0;
}

static void init_head(struct guard_head *h, const struct dump_task *t)
{
	memset(h, 0, sizeof(*h));
	h->magic = GUARD_MAGIC;
	h->version = GUARD_VERSION;
	h->pid = t->pid;
	h->start_time = t->stat.start_time;
	h->flags = t->held ? GUARD_CONTINUE : 0;
}

int guard_note_held(struct dump_ctx *ctx, const struct dump_task *t, cr_error_t *err)
{
	struct guard_head h;

	init_head(&h, t);
	return write_record(ctx, t, &h, NULL, err);
}

int guard_note_injection(struct dump_ctx *ctx, const struct dump_task *t, uint64_t scratch, cr_error_t *err)
{
	cleanup_free struct guard_thread *th = xcalloc(t->n_threads, sizeof(*th));
	struct guard_head h;

	init_head(&h, t);
	h.flags |= GUARD_INJECTED;
	h.syscall_ip = t->inj->syscall_ip;
	h.scratch = scratch;
	h.n_threads = (uint32_t)t->n_threads;
	for (size_t i = 0; i < t->n_threads; i++) {
		th[i].tid = t->threads[i].tid;
		th[i].sigmask = t->threads[i].inj.orig_sigmask;
		th[i].regs = t->threads[i].inj.orig;
	}
	return write_record(ctx, t, &h, th, err);
}

int guard_note_released(struct dump_ctx *ctx, const struct dump_task *t, cr_error_t *err)
{
	struct guard_head h;

	init_head(&h, t);
	return write_record(ctx, t, &h, NULL, err);
}

void guard_note_complete(struct dump_ctx *ctx)
{
	int fd;

	if (ctx->guard.dirfd < 0)
		return;
	/* No fsync: the guardian is a process of this machine and sees the
	 * file at once; a crash of the machine takes the tree with it.  (It
	 * cost milliseconds of the tree's frozen time.) */
	fd = openat(ctx->guard.dirfd, GUARD_COMPLETE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		pr_warn("guard record %s/%s: %s", ctx->guard.path, GUARD_COMPLETE, strerror(errno));
	if (fd >= 0)
		close(fd);
}

void guard_forget(struct dump_ctx *ctx, const struct dump_task *t)
{
	char name[32];

	if (ctx->guard.dirfd < 0)
		return;
	snprintf(name, sizeof(name), "%d", (int)t->pid);
	if (unlinkat(ctx->guard.dirfd, name, 0) < 0 && errno != ENOENT)
		pr_warn("remove guard record %s/%s: %s", ctx->guard.path, name, strerror(errno));
}

int guard_note_tcp_lock(struct dump_ctx *ctx, const struct guard_tcp *rec, cr_error_t *err)
{
	return guard_dir_note_tcp(&ctx->guard, rec, err);
}

void guard_forget_tcp(struct dump_ctx *ctx, uint32_t ino)
{
	guard_dir_forget_tcp(&ctx->guard, ino);
}

int guard_dir_note_tcp(struct dump_guard *g, const struct guard_tcp *rec, cr_error_t *err)
{
	char name[32], tmp[40];
	cleanup_close int fd = -1;

	if (g->dirfd < 0)
		return 0;
	snprintf(name, sizeof(name), GUARD_TCP_PREFIX "%u", rec->ino);
	snprintf(tmp, sizeof(tmp), "." GUARD_TCP_PREFIX "%u.new", rec->ino);
	unlinkat(g->dirfd, tmp, 0);
	fd = openat(g->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, rec, sizeof(*rec)) != (ssize_t)sizeof(*rec))
		return cr_error(err, errno, "write guard record %s/%s", g->path, tmp);
	if (renameat(g->dirfd, tmp, g->dirfd, name) < 0)
		return cr_error(err, errno, "rename guard record %s/%s", g->path, tmp);
	return 0;
}

void guard_dir_forget_tcp(struct dump_guard *g, uint32_t ino)
{
	char name[32];

	if (g->dirfd < 0)
		return;
	snprintf(name, sizeof(name), GUARD_TCP_PREFIX "%u", ino);
	if (unlinkat(g->dirfd, name, 0) < 0 && errno != ENOENT)
		pr_warn("remove guard record %s/%s: %s", g->path, name, strerror(errno));
}
