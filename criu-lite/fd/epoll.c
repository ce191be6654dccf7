/* epoll: the interest list, one (file, fd number) pair per registration,
 * each with its events (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, ... as the
 * kernel holds them) and its data.
 *
 * Dump: fdinfo lists every registration ("tfd: N events: X data: Y").  The
 * number N is the fd the file was registered under; the process may have
 * closed it since, or put another file there.  kcmp(KCMP_EPOLL_TFD) tells
 * which fd of the process is open on the registered file (N itself when it
 * still is, any other fd otherwise); that fd is the registration's source.
 *
 * Restore runs after every other kind (order FD_OPEN_LAST), so all sources
 * are at their numbers.  A registration whose source is its own number is
 * simply added; otherwise the source is put at number N for the time of
 * epoll_ctl and whatever was there is put back, so the registration keeps
 * its number N.  A source that is itself an epoll with a higher fd number
 * (not restored yet) is restored first, at its number, and found there
 * when its own turn comes.
 *
 * Not kept: the ready list.  Adding a registration polls its file at once,
 * so level-triggered and one-shot ones report what is ready; an
 * edge-triggered one whose file is ready reports one edge even if the
 * process had already consumed it.  A one-shot registration that already
 * fired (no events left) comes back armed for EPOLLERR | EPOLLHUP, which
 * epoll_ctl always adds.  A registered file that no fd of the process
 * holds any more (kept open by another process, a mapping, ...) makes the
 * dump fail. */
#include "fd/fdkind.h"
#include "state/files.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

/* The kernel nests epolls at most 4 deep; deeper means a broken image. */
#define MAX_NESTING 8

typedef EpollEntry__Target Target;

/* ------------------------------------------------------------------ dump */

static bool epoll_match(const struct fd_probe *p)
{
	return strcmp(p->link, "anon_inode:[eventpoll]") == 0;
}

/* The n-th registration of the same fd number before this one counts for
 * kcmp, which walks them in fdinfo's order. */
static uint32_t same_number_before(Target *const *v, size_t n, uint32_t tfd)
{
	uint32_t toff = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i]->tfd == tfd)
			toff++;
	return toff;
}

static bool same_file(pid_t pid, int epfd, const Target *g, uint32_t toff, int fd)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)epfd, .tfd = g->tfd, .toff = toff };

	return syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, fd, (unsigned long)&slot) == 0;
}

static int find_source(pid_t pid, int epfd, Target *g, uint32_t toff, const int *fds, size_t n_fds,
		       cr_error_t *err)
{
	if (same_file(pid, epfd, g, toff, (int)g->tfd)) {
		g->source_fd = g->tfd;
		return 0;
	}
	for (size_t i = 0; i < n_fds; i++) {
		if (fds[i] != epfd && same_file(pid, epfd, g, toff, fds[i])) {
			g->source_fd = (uint32_t)fds[i];
			return 0;
		}
	}
	return cr_error(err, 0, "the file registered in this epoll as fd %u is not open in the process any "
			"more: unsupported kind (an epoll registration kept alive from elsewhere)", g->tfd);
}

static int parse_targets(struct dump_ctx *ctx, const struct fd_probe *p, EpollEntry *e, cr_error_t *err)
{
	e->targets = arena_array(&ctx->arena, Target *, proc_fdinfo_count(p->fdinfo, "tfd") + 1);
	for (const char *l = proc_fdinfo_next(p->fdinfo, "tfd", NULL); l != NULL;
	     l = proc_fdinfo_next(p->fdinfo, "tfd", l)) {
		Target *g;
		int tfd;
		unsigned events;
		uint64_t data;

		if (sscanf(l, "tfd: %d events: %x data: %" SCNx64, &tfd, &events, &data) != 3 || tfd < 0)
			return cr_error(err, 0, "cannot parse epoll fdinfo line '%.60s'", l);
		g = arena_new(&ctx->arena, Target);
		epoll_entry__target__init(g);
		g->tfd = (uint32_t)tfd;
		g->events = events;
		g->data = data;
		e->targets[e->n_targets++] = g;
	}
	return 0;
}

static int epoll_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
		      cr_error_t *err)
{
	EpollEntry *e = arena_new(&ctx->arena, EpollEntry);
	cleanup_free int *fds = NULL;
	size_t n_fds = 0;

	epoll_entry__init(e);
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "epoll with flags 0%o: unsupported kind (only O_NONBLOCK is kept)",
				fe->flags);
	if (parse_targets(ctx, p, e, err) < 0 || proc_list_fds(t->pid, &fds, &n_fds, err) < 0)
		return -1;
	for (size_t i = 0; i < e->n_targets; i++) {
		uint32_t toff = same_number_before(e->targets, i, e->targets[i]->tfd);

		if (find_source(t->pid, p->fd, e->targets[i], toff, fds, n_fds, err) < 0)
			return -1;
	}
	fe->epoll = e;
	return 0;
}

/* --------------------------------------------------------------- restore */

static int epoll_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	(void)ctx;
	if (fe->epoll == NULL)
		return cr_error(err, 0, "epoll without its interest list");
	for (size_t i = 0; i < fe->epoll->n_targets; i++)
		if (fe->epoll->targets[i]->tfd > INT32_MAX || fe->epoll->targets[i]->source_fd > INT32_MAX)
			return cr_error(err, 0, "epoll registration %zu has a bad fd number", i);
	return 0;
}

static const FdEntry *fd_entry_of(const struct restore_task *t, int fd)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if ((int)t->fds[i]->fd == fd)
			return t->fds[i];
	return NULL;
}

/* The first fd of the process that holds this description. */
static const FdEntry *first_fd_of(const struct restore_task *t, uint32_t file_id)
{
	for (size_t i = 0; i < t->n_fds; i++)
		if (t->fds[i]->file_id == file_id)
			return t->fds[i];
	return NULL;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int create_epoll(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, int depth,
			cr_error_t *err);

/* A source that is an epoll not restored yet is restored now, at its
 * number; any other kind must already be there. */
static int ensure_source(const struct restore_ctx *ctx, struct restore_task *t, int fd, int depth,
			 cr_error_t *err)
{
	const FdEntry *f = fd_entry_of(t, fd);
	const FileEntry *fe = f ? restore_file(ctx, f->file_id) : NULL;
	int ep;

	if (fd_open(fd))
		return 0;
	if (fe == NULL)
		return cr_error(err, 0, "registered fd %d is not in the process's fd table", fd);
	if (fe->kind != FILE_KIND__FILE_EPOLL)
		return cr_error(err, 0, "registered fd %d (%s) is not restored yet", fd, fe->path);
	ep = create_epoll(ctx, t, fe, depth + 1, err);
	if (ep < 0)
		return cr_error_wrap(err, "nested epoll fd %d", fd);
	if (dup3(ep, fd, f->cloexec ? O_CLOEXEC : 0) < 0) {
		close(ep);
		return cr_error(err, errno, "put nested epoll at fd %d", fd);
	}
	close(ep);
	return 0;
}

/* Registers source under the number tfd: the source goes to tfd for the
 * call and whatever was at tfd comes back. */
static int add_as(int epfd, const Target *g, struct epoll_event *ev, cr_error_t *err)
{
	int tfd = (int)g->tfd, saved = -1, saved_flags = fcntl(tfd, F_GETFD), r, e;

	if (saved_flags >= 0 && (saved = fcntl(tfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return cr_error(err, errno, "keep fd %d aside", tfd);
	if (dup2((int)g->source_fd, tfd) < 0) {
		e = errno;
		if (saved >= 0)
			close(saved);
		return cr_error(err, e, "put fd %u at %d", g->source_fd, tfd);
	}
	r = epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, ev);
	e = errno;
	if (saved >= 0) {
		if (dup3(saved, tfd, (saved_flags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
			return cr_error(err, errno, "put fd %d back", tfd);
		close(saved);
	} else {
		close(tfd);
	}
	if (r < 0)
		return cr_error(err, e, "epoll_ctl(ADD, fd %d as %d, events 0x%x)", (int)g->source_fd, tfd,
				g->events);
	return 0;
}

static int add_target(const struct restore_ctx *ctx, struct restore_task *t, int *epfd, const Target *g,
		      int depth, cr_error_t *err)
{
	struct epoll_event ev = { .events = g->events, .data.u64 = g->data };

	if (ensure_source(ctx, t, (int)g->source_fd, depth, err) < 0)
		return -1;
	if (g->source_fd == g->tfd) {
		if (epoll_ctl(*epfd, EPOLL_CTL_ADD, (int)g->tfd, &ev) < 0)
			return cr_error(err, errno, "epoll_ctl(ADD, fd %u, events 0x%x)", g->tfd, g->events);
		return 0;
	}
	if ((int)g->tfd == *epfd) {   /* the number to borrow is the epoll's own */
		int moved = files_stash_fd(t, *epfd, err);

		if (moved < 0)
			return -1;
		*epfd = moved;
	}
	return add_as(*epfd, g, &ev, err);
}

static int create_epoll(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, int depth,
			cr_error_t *err)
{
	cleanup_close int epfd = -1;
	int raw;

	if (depth > MAX_NESTING)
		return cr_error(err, 0, "epolls nested more than %d deep", MAX_NESTING);
	raw = epoll_create1(EPOLL_CLOEXEC);
	if (raw < 0)
		return cr_error(err, errno, "epoll_create1");
	/* Above every dumped fd, out of the way of the numbers registrations
	 * borrow (a stale number may still clash: see add_target). */
	epfd = files_stash_fd(t, raw, err);
	if (epfd < 0) {
		close(raw);
		return -1;
	}
	if ((fe->flags & O_NONBLOCK) && fcntl(epfd, F_SETFL, O_NONBLOCK) < 0)
		return cr_error(err, errno, "set O_NONBLOCK");
	for (size_t i = 0; i < fe->epoll->n_targets; i++)
		if (add_target(ctx, t, &epfd, fe->epoll->targets[i], depth, err) < 0)
			return cr_error_wrap(err, "epoll file %u", fe->id);
	return steal_fd(&epfd);
}

static int epoll_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const FdEntry *first = first_fd_of(t, fe->id);

	/* Restored early, as the source of an epoll with a lower number. */
	if (first != NULL && fd_open((int)first->fd)) {
		int fd = fcntl((int)first->fd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0)
			return cr_error(err, errno, "dup fd %u", first->fd);
		return fd;
	}
	return create_epoll(ctx, t, fe, 0, err);
}

const struct fd_kind fdkind_epoll = {
	.kind = FILE_KIND__FILE_EPOLL,
	.order = FD_OPEN_LAST,
	.aside = 1,
	.name = "epoll",
	.match = epoll_match,
	.dump = epoll_dump,
	.validate = epoll_validate,
	.open = epoll_open,
};
