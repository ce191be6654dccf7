#include "fd/fdshare.h"
#include "state/files.h"
#include "os/job.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/log.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <search.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ------------------------------------------------------------------ dump */

/* Every fd of every process but cr, read once per dump from /proc. */
struct holder {
	pid_t pid;
	int fd;
	char *link;
};

/* A dump: its context and its image directory (each dump has its own). */
struct dump_id {
	const struct dump_ctx *ctx;
	dev_t dev;
	ino_t ino;
};

static struct {
	struct dump_id id;            /* the dump the table was read for */
	struct holder *v;
	size_t n, cap;
	struct fdshare_netns *net;    /* every process's network namespace, cr's too */
	size_t n_net, cap_net;
} holders;

static void holders_clear(void)
{
	for (size_t i = 0; i < holders.n; i++)
		free(holders.v[i].link);
	free(holders.v);
	holders.v = NULL;
	holders.n = holders.cap = 0;
	free(holders.net);
	holders.net = NULL;
	holders.n_net = holders.cap_net = 0;
	holders.id = (struct dump_id){ 0 };
}

static void holders_add(pid_t pid, int fd, const char *link)
{
	if (holders.n == holders.cap) {
		holders.cap = holders.cap ? holders.cap * 2 : 1024;
		holders.v = xreallocarray(holders.v, holders.cap, sizeof(*holders.v));
	}
	holders.v[holders.n].link = xstrdup(link);
	holders.v[holders.n].pid = pid;
	holders.v[holders.n].fd = fd;
	holders.n++;
}

static void read_process_fds(pid_t pid)
{
	cleanup_closedir DIR *d = NULL;
	char path[64], link[PATH_MAX];
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (d == NULL)
		return;   /* gone, or a kernel thread */
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;   /* closed meanwhile */
		link[n] = '\0';
		holders_add(pid, fd, link);
	}
}

static int holders_read(const struct dump_ctx *ctx, cr_error_t *err)
{
	cleanup_closedir DIR *d = NULL;
	struct dump_id id = { .ctx = ctx };
	pid_t self = getpid();
	struct dirent *e;
	struct stat st;

	if (fstat(ctx->dirfd, &st) < 0)
		return cr_error(err, errno, "stat the image directory");
	id.dev = st.st_dev;
	id.ino = st.st_ino;
	if (holders.v != NULL && holders.id.ctx == ctx && holders.id.dev == id.dev && holders.id.ino == id.ino)
		return 0;
	holders_clear();
	d = opendir("/proc");
	if (d == NULL)
		return cr_error(err, errno, "opendir /proc");
	while ((e = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(e->d_name);
		cr_error_t ignored = NULL;
		uint64_t ino;

		if (pid <= 0)
			continue;
		if (proc_read_ns(pid, "net", &ino, &ignored) == 0) {
			if (holders.n_net == holders.cap_net) {
				holders.cap_net = holders.cap_net ? holders.cap_net * 2 : 256;
				holders.net = xreallocarray(holders.net, holders.cap_net, sizeof(*holders.net));
			}
			holders.net[holders.n_net++] = (struct fdshare_netns){ .pid = pid, .ino = ino };
		}
		cr_error_release(&ignored);   /* gone, or a kernel thread */
		if (pid != self)
			read_process_fds(pid);
	}
	holders.id = id;
	return 0;
}

/* The table is read by a thread of its own from the moment the tree is
 * frozen (fdshare_prefetch: the fds of the tree cannot change any more,
 * and the rest of the collection goes on meanwhile); holders_load waits
 * for it. */
static struct cr_job ahead;

static int read_ahead(void *arg, cr_error_t *err)
{
	return holders_read(arg, err);
}

void fdshare_prefetch(const struct dump_ctx *ctx)
{
	cr_job_start(&ahead, read_ahead, (void *)ctx);
}

static int holders_load(const struct dump_ctx *ctx, cr_error_t *err)
{
	if (cr_job_wait(&ahead, err) < 0)
		return -1;
	return holders_read(ctx, err);
}

/* An object in a tree of them: its kind and key, and its first entry. */
struct object_node {
	uint32_t kind;
	struct fdshare_key key;
	const FileEntry *fe;
};

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_object(const void *pa, const void *pb)
{
	const struct object_node *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->key.ino != b->key.ino || a->key.dev != b->key.dev)
		return a->key.ino != b->key.ino ? cmp_u64(a->key.ino, b->key.ino) : cmp_u64(a->key.dev, b->key.dev);
	if (a->key.path == NULL || b->key.path == NULL)
		return (a->key.path != NULL) - (b->key.path != NULL);
	return strcmp(a->key.path, b->key.path);
}

/* The first entry of n's object in *tree, n itself when it is new. */
static const FileEntry *object_first(void **tree, struct object_node *n)
{
	struct object_node **found = tsearch(n, tree, cmp_object);

	if (found == NULL)
		xalloc_failed_in("tsearch");
	return (*found)->fe;
}

static void no_free(void *p)
{
	(void)p;   /* nodes live in an arena, or on the caller's array */
}

bool fdshare_recorded(struct dump_ctx *ctx, const FileEntry *fe, fdshare_key_fn key)
{
	struct object_node *n = arena_new(&ctx->arena, struct object_node);

	n->kind = fe->kind;
	n->fe = fe;
	if (!key(fe, &n->key))
		return false;
	return object_first(&ctx->objects, n) != fe;
}

void fdshare_prefetch_wait(void)
{
	cr_job_wait(&ahead, NULL);
}

void fdshare_release_dump(struct dump_ctx *ctx)
{
	cr_job_wait(&ahead, NULL);
	tdestroy(steal_pointer(&ctx->objects), no_free);
}

bool fdshare_in_dump(const struct dump_ctx *ctx, pid_t pid)
{
	for (size_t i = 0; i < ctx->n_tasks; i++)
		if (ctx->tasks[i].pid == pid)
			return true;
	return false;
}

/* Does the holder's fd lead to the inode of the probe?  Links that are
 * not paths ("pipe:[N]", "socket:[N]") name the inode already. */
static bool same_inode(const struct holder *h, const struct fd_probe *p)
{
	char path[64];
	struct stat st;

	if (p->link[0] != '/')
		return true;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", h->pid, h->fd);
	return stat(path, &st) == 0 && st.st_ino == p->st.st_ino && st.st_dev == p->st.st_dev;
}

/* Does pid hold the very description that h holds (an fd inherited, say)? */
static bool held_here(pid_t pid, const struct fd_probe *p, const struct holder *h)
{
	for (size_t i = 0; i < holders.n; i++) {
		const struct holder *mine = &holders.v[i];

		if (mine->pid == pid && strcmp(mine->link, p->link) == 0 && same_inode(mine, p) &&
		    syscall(SYS_kcmp, pid, h->pid, KCMP_FILE, mine->fd, h->fd) == 0)
			return true;
	}
	return false;
}

static int refuse_holders(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			  bool dump_ok, cr_error_t *err);

int fdshare_refuse_shared(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			  cr_error_t *err)
{
	return refuse_holders(ctx, pid, p, what, false, err);
}

int fdshare_refuse_outside(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			   cr_error_t *err)
{
	return refuse_holders(ctx, pid, p, what, true, err);
}

static int refuse_holders(const struct dump_ctx *ctx, pid_t pid, const struct fd_probe *p, const char *what,
			  bool dump_ok, cr_error_t *err)
{
	if (holders_load(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < holders.n; i++) {
		const struct holder *h = &holders.v[i];
		bool in_dump;

		if (h->pid == pid || strcmp(h->link, p->link) != 0 || !same_inode(h, p))
			continue;
		in_dump = fdshare_in_dump(ctx, h->pid);
		if (in_dump && (dump_ok || held_here(pid, p, h)))
			continue;   /* a description this process holds too: files.c shares it */
		if (in_dump)
			return cr_error(err, 0, "unsupported %s: %s is also open in pid %d (fd %d) of the dump "
					"through another description; sharing one between processes is not "
					"supported yet", what, p->link, h->pid, h->fd);
		return cr_error(err, 0, "unsupported %s: %s is also open in pid %d (fd %d), outside the dump",
				what, p->link, h->pid, h->fd);
	}
	return 0;
}

int fdshare_netns_all(const struct dump_ctx *ctx, const struct fdshare_netns **v, size_t *n, cr_error_t *err)
{
	if (holders_load(ctx, err) < 0)
		return -1;
	*v = holders.net;
	*n = holders.n_net;
	return 0;
}

int fdshare_held_by(const struct dump_ctx *ctx, const char *link, pid_t pid, pid_t *other, cr_error_t *err)
{
	*other = 0;
	if (holders_load(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < holders.n; i++) {
		if (strcmp(holders.v[i].link, link) != 0)
			continue;
		if (holders.v[i].pid == pid)
			return 1;
		if (*other == 0)
			*other = holders.v[i].pid;
	}
	return 0;
}

int fdshare_holders(const struct dump_ctx *ctx, const char *link, pid_t *pids, size_t max, size_t *n,
		    cr_error_t *err)
{
	pid_t last = 0;

	*n = 0;
	if (holders_load(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < holders.n; i++) {
		pid_t pid = holders.v[i].pid;

		if (strcmp(holders.v[i].link, link) != 0 || pid == last)
			continue;   /* a process's fds are listed together */
		if (*n < max)
			pids[*n] = pid;
		(*n)++;
		last = pid;
	}
	return 0;
}

int fdshare_description_held(const struct dump_ctx *ctx, int own, const char *link, pid_t *pid, int *fd,
			     cr_error_t *err)
{
	pid_t self = getpid();

	if (holders_load(ctx, err) < 0)
		return -1;
	for (size_t i = 0; i < holders.n; i++) {
		const struct holder *h = &holders.v[i];

		if (strcmp(h->link, link) == 0 && syscall(SYS_kcmp, self, h->pid, KCMP_FILE, own, h->fd) == 0) {
			*pid = h->pid;
			*fd = h->fd;
			return 1;
		}
	}
	return 0;
}

int fdshare_reopen(pid_t pid, int fd, cr_error_t *err)
{
	char path[64];
	int own;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	own = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (own < 0)
		return cr_error(err, errno, "open %s", path);
	return own;
}

/* --------------------------------------------------------------- restore */

/* Per file id, its anchor (NULL if none). */
static struct {
	struct fd_anchor **by_id;
	size_t cap;
} anchors;

/* Every entry of kind in ctx->file_first, by a tree of their objects. */
static void find_firsts(const struct restore_ctx *ctx, uint32_t kind, fdshare_key_fn key)
{
	cleanup_free struct object_node *nodes = xcalloc(ctx->n_files, sizeof(*nodes));
	void *tree = NULL;

	for (size_t i = 0; i < ctx->n_files; i++) {
		const FileEntry *fe = ctx->files[i];
		struct object_node *n = &nodes[i];

		if (fe->kind != kind)
			continue;
		*n = (struct object_node){ .kind = kind, .fe = fe };
		ctx->file_first[fe->id] = key(fe, &n->key) ? object_first(&tree, n)->id : fe->id;
	}
	tdestroy(tree, no_free);
}

const FileEntry *fdshare_first(const struct restore_ctx *ctx, const FileEntry *fe, fdshare_key_fn key)
{
	if (ctx->file_first[fe->id] == 0)
		find_firsts(ctx, fe->kind, key);
	return ctx->files[ctx->file_first[fe->id] - 1];
}

struct fd_anchor *fd_anchor_find(uint32_t file_id)
{
	return file_id < anchors.cap ? anchors.by_id[file_id] : NULL;
}

static void anchors_grow(uint32_t file_id)
{
	size_t cap = anchors.cap;

	if (file_id < cap)
		return;
	while (cap <= file_id)
		cap = cap ? cap * 2 : 32;
	anchors.by_id = xreallocarray(anchors.by_id, cap, sizeof(*anchors.by_id));
	memset(anchors.by_id + anchors.cap, 0, (cap - anchors.cap) * sizeof(*anchors.by_id));
	anchors.cap = cap;
}

static void close_both(int a, int b)
{
	if (a >= 0)
		close(a);
	if (b >= 0)
		close(b);
}

struct fd_anchor *fd_anchor_add(const struct restore_task *t, uint32_t file_id, const int fds[2], cr_error_t *err)
{
	int stashed[2] = { -1, -1 };
	struct fd_anchor *a;

	if (fds[0] >= 0 && (stashed[0] = files_stash_fd(t, fds[0], err)) < 0) {
		close_both(fds[0], fds[1]);
		return NULL;
	}
	if (fds[1] >= 0 && (stashed[1] = files_stash_fd(t, fds[1], err)) < 0) {
		close_both(stashed[0], fds[1]);
		return NULL;
	}
	a = xcalloc(1, sizeof(*a));
	a->file_id = file_id;
	a->fd[0] = stashed[0];
	a->fd[1] = stashed[1];
	anchors_grow(file_id);
	if (anchors.by_id[file_id] == NULL)
		anchors.by_id[file_id] = a;
	return a;
}

/* Flags that F_SETFL changes on an open description, and flags that only
 * matter while opening. */
#define SETFL_BITS (O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME)
#define OPEN_ONLY  (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW)   /* shm_open: O_NOFOLLOW */

/* Can the anchor's own description serve fe, once F_SETFL adjusts it?
 * O_NOFOLLOW stays in a description's flags: an anchor opened with it
 * (a FIFO or file made again by cr) serves only one dumped with it. */
static bool anchor_fits(int anchor_fd, uint32_t want)
{
	uint32_t fixed = ~(uint32_t)(SETFL_BITS | (OPEN_ONLY & ~O_NOFOLLOW) | O_LARGEFILE);
	int have = fcntl(anchor_fd, F_GETFL);

	return have >= 0 && ((uint32_t)have & fixed) == (want & fixed);
}

static int reopen(int anchor_fd, uint32_t flags, cr_error_t *err)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", anchor_fd);
	fd = open(path, (int)(flags & ~(uint32_t)(OPEN_ONLY | SETFL_BITS)) | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "reopen with flags 0%o", flags);
	return fd;
}

int fd_anchor_open(struct fd_anchor *a, int end, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = -1;

	if (a->fd[end] < 0)
		return cr_error(err, 0, "no %s end to open", end ? "write" : "read");
	if (!a->taken[end] && anchor_fits(a->fd[end], fe->flags)) {
		fd = fcntl(a->fd[end], F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return cr_error(err, errno, "dup");
		a->taken[end] = true;
	} else if ((fd = reopen(a->fd[end], fe->flags, err)) < 0) {
		return -1;
	}
	if (!(fe->flags & O_PATH) && fcntl(fd, F_SETFL, fe->flags & SETFL_BITS) < 0)
		return cr_error(err, errno, "set flags 0%o", fe->flags & SETFL_BITS);
	return steal_fd(&fd);
}

int fd_anchor_open_at(struct fd_anchor *a, const FileEntry *fe, cr_error_t *err)
{
	cleanup_close int fd = fd_anchor_open(a, 0, fe, err);

	if (fd < 0)
		return -1;
	if (!(fe->flags & O_PATH) && lseek(fd, (off_t)fe->pos, SEEK_SET) < 0)
		return cr_error(err, errno, "seek to %llu", (unsigned long long)fe->pos);
	return steal_fd(&fd);
}
