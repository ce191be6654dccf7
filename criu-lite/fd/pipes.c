/* Pipes and FIFOs, with the data buffered in them.
 *
 * Dump: every description of a pipe records the pipe's inode; the first
 * one of each pipe also records its size (F_GETPIPE_SZ) and its unread
 * data.  The data is read without consuming it: tee(2) from a readable
 * description of the pipe (a pidfd_getfd duplicate, or the pipe reopened
 * through /proc/PID/fd when the process holds only a write end) into a
 * private pipe, which cr then reads.  Reading a packet pipe (O_DIRECT)
 * returns one packet per read, so packets are stored one per item.
 *
 * Restore: the first description asked for creates the pipe (pipe2, or the
 * FIFO opened O_RDWR by its path; a FIFO deleted while open is made again
 * at its path, opened and unlinked, fd/deleted.h), sizes it, writes the data back and keeps
 * its ends as anchors (fdshare.h), from which every description is handed
 * out.  An end no description uses (a pipe whose write end was closed) is
 * closed with the stash, before the process runs: readers then see the data
 * and then end-of-file, as before. */
#include "fd/deleted.h"
#include "fd/fdkind.h"
#include "fd/reg.h"
#include "fd/reopen.h"
#include "fd/fdshare.h"
#include "fd/pipes.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/mntns.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ dump */

static bool pipe_match(const struct fd_probe *p)
{
	return S_ISFIFO(p->st.st_mode) && strncmp(p->link, "pipe:[", 6) == 0;
}

/* A FIFO deleted while open (its fds show "PATH (deleted)"). */
static bool fifo_removed(const struct fd_probe *p)
{
	return p->st.st_nlink == 0 && proc_link_deleted(p->link, NULL);
}

/* A FIFO still reachable by its path, or deleted. */
static bool fifo_match(const struct fd_probe *p)
{
	char view[PATH_MAX + 64];
	struct stat now;

	if (!S_ISFIFO(p->st.st_mode) || p->link[0] != '/')
		return false;
	return fifo_removed(p) || (stat(mntns_dump_view(p->pid, p->link, view, sizeof(view)), &now) == 0 &&
				   S_ISFIFO(now.st_mode) && now.st_ino == p->st.st_ino && now.st_dev == p->st.st_dev);
}

/* A deleted FIFO is made again at its former path, with its mode and
 * owner, and unlinked (fd/deleted.h). */
static int fifo_dump_removed(const struct fd_probe *p, FileEntry *fe, cr_error_t *err)
{
	size_t stem = 0;

	if (!fifo_removed(p))
		return 0;
	proc_link_deleted(p->link, &stem);
	fe->path[stem] = '\0';
	fe->has_removed = fe->removed = true;
	reg_identity(fe, &p->st);
	return deleted_check_dir("deleted FIFO", fe->path, p->pid, NULL, 0, err);
}

/* The first description of the same pipe or FIFO, in entries of kind kind. */
/* Descriptions of one pipe: its inode, and for a FIFO its path. */
static bool pipe_key(const FileEntry *fe, struct fdshare_key *k)
{
	if (fe->pipe == NULL)
		return false;
	*k = (struct fdshare_key){ .ino = fe->pipe->ino,
				   .path = fe->kind == FILE_KIND__FILE_PIPE ? NULL : fe->path };
	return true;
}

static bool same_pipe(const FileEntry *a, const FileEntry *b)
{
	return a->kind == b->kind && a->pipe != NULL && b->pipe != NULL && a->pipe->ino == b->pipe->ino &&
	       (a->kind == FILE_KIND__FILE_PIPE || strcmp(a->path, b->path) == 0);
}

/* A description cr may read the pipe through without touching the
 * process's own: the process's, when it can read, else a new reader. */
static int open_readable(pid_t pid, const struct fd_probe *p, cr_error_t *err)
{
	char path[64];
	int fd;

	if ((p->info.flags & O_ACCMODE) != O_WRONLY)
		return fdkind_steal_fd(pid, p->fd, err);
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, p->fd);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open %s for reading", path);
	return fd;
}

/* A private pipe that holds at least size bytes. */
static int scratch_pipe(unsigned size, int fds[2], cr_error_t *err)
{
	int have;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return cr_error(err, errno, "pipe");
	have = fcntl(fds[1], F_GETPIPE_SZ);
	if (have >= 0 && (unsigned)have >= size)
		return 0;
	if (fcntl(fds[1], F_SETPIPE_SZ, size) >= 0)
		return 0;
	cr_error(err, errno, "the pipe holds %u bytes, more than fs.pipe-max-size lets cr copy without "
		 "consuming them (raising that limit needs CAP_SYS_RESOURCE)", size);
	close(fds[0]);
	close(fds[1]);
	return -1;
}

/* Reads the n bytes tee'd into rfd: one item per read, i.e. per packet. */
static int read_items(struct dump_ctx *ctx, int rfd, size_t n, unsigned pipe_size, PipeEntry *pe, cr_error_t *err)
{
	size_t max_items = pipe_size / 4096 + 1, got = 0;
	cleanup_free uint8_t *buf = xmalloc(n);

	pe->data = arena_array(&ctx->arena, ProtobufCBinaryData, max_items);
	while (got < n) {
		ssize_t r = read(rfd, buf + got, n - got);

		if (r <= 0)
			return cr_error(err, r < 0 ? errno : 0, "read the copy of the pipe's data");
		if (pe->n_data == max_items)
			return cr_error(err, 0, "more packets than the pipe has buffers");
		pe->data[pe->n_data].data = arena_memdup(&ctx->arena, buf + got, (size_t)r);
		pe->data[pe->n_data].len = (size_t)r;
		pe->n_data++;
		got += (size_t)r;
	}
	return 0;
}

static int read_pipe_data(struct dump_ctx *ctx, int src, PipeEntry *pe, cr_error_t *err)
{
	int tmp[2], n = 0;
	ssize_t copied;
	int ret;

	if (ioctl(src, FIONREAD, &n) < 0)
		return cr_error(err, errno, "FIONREAD");
	if (n <= 0)
		return 0;
	if ((unsigned)n > FDKIND_MAX_DATA)
		return cr_error(err, 0, "%d buffered bytes; cr keeps at most %u MiB in the image", n,
				FDKIND_MAX_DATA >> 20);
	if (scratch_pipe(pe->pipe_size, tmp, err) < 0)
		return -1;
	copied = tee(src, tmp[1], (size_t)n, SPLICE_F_NONBLOCK);
	if (copied != n)
		ret = cr_error(err, copied < 0 ? errno : 0, "tee copied %zd of %d buffered bytes", copied, n);
	else
		ret = read_items(ctx, tmp[0], (size_t)n, pe->pipe_size, pe, err);
	close(tmp[0]);
	close(tmp[1]);
	return ret;
}

static int pipe_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			   cr_error_t *err)
{
	PipeEntry *pe = arena_new(&ctx->arena, PipeEntry);
	cleanup_close int src = -1;
	int size;

	pipe_entry__init(pe);
	pe->ino = p->st.st_ino;
	fe->pipe = pe;
	if (fdshare_refuse_outside(ctx, t->pid, p, fe->kind == FILE_KIND__FILE_PIPE ? "pipe" : "FIFO", err) < 0)
		return -1;
	if (fe->kind == FILE_KIND__FILE_FIFO && fifo_dump_removed(p, fe, err) < 0)
		return -1;
	src = open_readable(t->pid, p, err);
	if (src < 0)
		return -1;
	size = fcntl(src, F_GETPIPE_SZ);
	if (size < 0)
		return cr_error(err, errno, "F_GETPIPE_SZ");
	pe->pipe_size = (uint32_t)size;
	if (fdshare_recorded(ctx, fe, pipe_key))
		return 0;   /* its first description holds the data */
	if (read_pipe_data(ctx, src, pe, err) < 0)
		return cr_error_wrap(err, "%s", p->link);
	return 0;
}

static int record_flying(struct dump_ctx *ctx, int fd, PipeEntry *pe, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int reader = -1;
	struct stat st;
	char path[64];
	int size;

	if (fstat(fd, &st) < 0 || (size = fcntl(fd, F_GETPIPE_SZ)) < 0)
		return cr_error(err, errno, "a pipe in flight");
	pe->ino = st.st_ino;
	pe->pipe_size = (uint32_t)size;
	if (fe != NULL && fdshare_recorded(ctx, fe, pipe_key))
		return 0;   /* its first description holds the data */
	if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY)
		return read_pipe_data(ctx, fd, pe, err);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return cr_error(err, errno, "open %s for reading", path);
	return read_pipe_data(ctx, reader, pe, err);
}

int pipe_record_flying(struct dump_ctx *ctx, int fd, PipeEntry *pe, cr_error_t *err)
{
	return record_flying(ctx, fd, pe, NULL, err);
}

int pipe_record_held_flying(struct dump_ctx *ctx, int fd, FileEntry *fe, cr_error_t *err)
{
	fe->pipe = arena_new(&ctx->arena, PipeEntry);
	pipe_entry__init(fe->pipe);
	return record_flying(ctx, fd, fe->pipe, fe, err);
}

/* --------------------------------------------------------------- restore */

static int pipe_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	size_t total = 0;
	(void)ctx;

	if (fe->pipe == NULL)
		return cr_error(err, 0, "pipe without its pipe entry");
	if (fe->kind == FILE_KIND__FILE_FIFO && fe->path[0] != '/')
		return cr_error(err, 0, "FIFO at a relative path '%s'", fe->path);
	if (fe->removed && (!fe->has_mode || !S_ISFIFO(fe->mode) || !fe->has_uid || !fe->has_gid))
		return cr_error(err, 0, "deleted FIFO %s without its mode and owner", fe->path);
	if (fe->removed && deleted_check_dir("deleted FIFO", fe->path, 0, ctx, fe->mnt_ns, err) < 0)
		return -1;
	if ((total = pipe_data_len(fe->pipe)) > fe->pipe->pipe_size)
		return cr_error(err, 0, "pipe holds %zu bytes in a buffer of %u", total, fe->pipe->pipe_size);
	return 0;
}

size_t pipe_data_len(const PipeEntry *pe)
{
	size_t total = 0;

	for (size_t i = 0; i < pe->n_data; i++)
		total += pe->data[i].len;
	return total;
}

static const FileEntry *first_of_pipe(const struct restore_ctx *ctx, const FileEntry *fe)
{
	return fdshare_first(ctx, fe, pipe_key);
}

/* Packets (O_DIRECT) when the data came out in several, or when any
 * description of the pipe writes packets. */
static bool pipe_packets(const struct restore_ctx *ctx, const FileEntry *first)
{
	if (first->pipe->n_data > 1)
		return true;
	for (size_t i = 0; i < ctx->n_files; i++)
		if (same_pipe(ctx->files[i], first) && (ctx->files[i]->flags & O_DIRECT))
			return true;
	return false;
}

static int fill_pipe(int wfd, const PipeEntry *pe, cr_error_t *err)
{
	int size = fcntl(wfd, F_GETPIPE_SZ);

	if (size < 0)
		return cr_error(err, errno, "F_GETPIPE_SZ");
	if ((uint32_t)size != pe->pipe_size && fcntl(wfd, F_SETPIPE_SZ, pe->pipe_size) < 0)
		return cr_error(err, errno, "set the pipe size to %u bytes%s", pe->pipe_size,
				errno == EPERM ? " (above fs.pipe-max-size, which needs CAP_SYS_RESOURCE)" : "");
	for (size_t i = 0; i < pe->n_data; i++)
		if (write_all(wfd, pe->data[i].data, pe->data[i].len, err) < 0)
			return cr_error_wrap(err, "refill the pipe's %zu bytes", pe->data[i].len);
	return 0;
}

int pipe_make_filled(const PipeEntry *pe, bool packets, int fds[2], cr_error_t *err)
{
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK | (packets ? O_DIRECT : 0)) < 0)
		return cr_error(err, errno, "pipe");
	if (fill_pipe(fds[1], pe, err) == 0)
		return 0;
	close(fds[0]);
	close(fds[1]);
	return -1;
}

static struct fd_anchor *create_pipe(const struct restore_ctx *ctx, const struct restore_task *t,
				     const FileEntry *first, cr_error_t *err)
{
	int fds[2];

	if (pipe_make_filled(first->pipe, pipe_packets(ctx, first), fds, err) < 0)
		return NULL;
	return fd_anchor_add(t, first->id, fds, err);
}

/* The FIFO, opened for reading and writing (which never blocks), as the
 * process would (fd/reopen.h); on the boot of the dump, the same inode. */
static struct fd_anchor *open_fifo(const struct restore_ctx *ctx, const struct restore_task *t,
				   const FileEntry *first, cr_error_t *err)
{
	bool as_cr;
	int fds[2] = { first->removed ? deleted_remake_node(t, first->path, first->mode, first->uid, first->gid,
							  O_RDWR | O_NONBLOCK, err)
				      : reopen_path(t, first->path, O_RDWR | O_NONBLOCK, &as_cr, err),
		       -1 };
	struct stat st;
	int queued = 0;

	if (fds[0] < 0) {
		cr_error_wrap(err, "FIFO");
		return NULL;
	}
	if (fstat(fds[0], &st) < 0 || !S_ISFIFO(st.st_mode))
		cr_error(err, 0, "%s is no longer a FIFO", first->path);
	else if (!first->removed && ctx->same_boot && first->pipe->ino != 0 && st.st_ino != first->pipe->ino)
		cr_error(err, 0, "%s is another FIFO than at dump (inode %llu, was %llu): refused", first->path,
			 (unsigned long long)st.st_ino, (unsigned long long)first->pipe->ino);
	else if (ioctl(fds[0], FIONREAD, &queued) < 0 || queued != 0)
		cr_error(err, 0, "FIFO %s already holds %d bytes: another process has it open", first->path, queued);
	else if (pipe_packets(ctx, first) && fcntl(fds[0], F_SETFL, O_NONBLOCK | O_DIRECT) < 0)
		cr_error(err, errno, "FIFO %s: packet mode", first->path);
	else if (fill_pipe(fds[0], first->pipe, err) == 0)
		return fd_anchor_add(t, first->id, fds, err);
	close(fds[0]);
	return NULL;
}

static int pipe_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const FileEntry *first = first_of_pipe(ctx, fe);
	struct fd_anchor *a = fd_anchor_find(first->id);
	bool fifo = fe->kind == FILE_KIND__FILE_FIFO;
	int end = !fifo && (fe->flags & O_ACCMODE) == O_WRONLY;

	if (a == NULL)
		a = fifo ? open_fifo(ctx, t, first, err) : create_pipe(ctx, t, first, err);
	if (a == NULL)
		return cr_error_wrap(err, "%s", fifo ? fe->path : "pipe");
	return fd_anchor_open(a, end, fe, err);
}

const struct fd_kind fdkind_pipe = {
	.kind = FILE_KIND__FILE_PIPE, .shareable = true, .first = first_of_pipe, .aside = 2,
	.name = "pipe", .match = pipe_match, .dump = pipe_dump, .validate = pipe_validate, .open = pipe_open,
};
const struct fd_kind fdkind_fifo = {
	.kind = FILE_KIND__FILE_FIFO, .shareable = true, .first = first_of_pipe, .aside = 1,
	.name = "FIFO", .match = fifo_match, .dump = pipe_dump, .validate = pipe_validate, .open = pipe_open,
};
