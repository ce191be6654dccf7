#include "fd/tcp_stream.h"
#include "dump/guard.h"
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/sk_opts.h"
#include "net/netns_fw.h"
#include "net/nft_lock.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"
#include "state/ns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* TCP option kinds (RFC 793, 1323, 2018), for TCP_REPAIR_OPTIONS. */
#define OPT_MAXSEG    2
#define OPT_WINDOW    3
#define OPT_SACK_PERM 4
#define OPT_TIMESTAMP 8

#define CHUNK (256u << 10)

/* A connection held in repair mode by the dump. */
struct tcp_repair {
	struct tcp_repair *next;
	int fd;                 /* cr's duplicate */
	int reuse;              /* SO_REUSEADDR, which leaving repair mode clears */
	uint32_t ino;
	int netns;              /* its network namespace, where the table is; -1 with no table */
	uint64_t netns_ino;
	char table[32];
};

/* ---------------------------------------------------------------- nftables */

/* The table dropping the connection's packets both ways, made in the
 * network namespace of netns (-1: cr's).  create: fails if it exists. */
static int block(int netns, const struct nft_lock_ends *l, const char *table, bool create, cr_error_t *err)
{
	if (nft_lock_add(netns, table, l, create, err) < 0)
		return cr_error_wrap(err, "block the connection's traffic (nftables table inet %s)", table);
	return 0;
}

/* quiet: a table that may not be there.  Whether it was deleted. */
static bool unblock(int netns, const char *table, bool quiet)
{
	cr_error_t err = NULL;
	bool done = nft_lock_delete(netns, table, &err) == 0;

	if (!done && !quiet)
		pr_warn("%s (delete the nftables table inet %s by hand)", err->msg, table);
	cr_error_release(&err);
	return done;
}

/* path, if it is the network namespace of inode ino; else -1. */
static int netns_if(const char *path, uint64_t ino)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* A namespace file bound anywhere (an nsfs mount of cr's mount namespace:
 * ip netns's /run/netns, a container runtime's own directory) of inode
 * ino; -1 if none. */
static int bound_netns(uint64_t ino)
{
	cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[PATH_MAX + 256], where[PATH_MAX];
	int fd = -1;

	while (f != NULL && fd < 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *sep = strstr(line, " - nsfs ");

		if (sep != NULL && sscanf(line, "%*s %*s %*s %*s %4095s", where) == 1)
			fd = netns_if(where, ino);   /* octal escapes (spaces) make it miss: the scan below */
	}
	return fd;
}

/* One held by a process (a container's, with no bound name). */
static int held_netns(uint64_t ino)
{
	cleanup_closedir DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300];
	int fd = -1;

	while (d != NULL && fd < 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
		fd = netns_if(path, ino);
	}
	return fd;
}

/* The network namespace of inode ino: cr's (self), pid's (if pid), one
 * bound by name, or one any process is in; -1 if none is (it went away). */
static int find_netns(bool self, pid_t pid, uint64_t ino)
{
	char path[64];
	int fd = self ? netns_if("/proc/self/ns/net", ino) : -1;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (fd < 0 && pid > 0)
		fd = netns_if(path, ino);
	if (fd < 0)
		fd = bound_netns(ino);
	if (fd < 0)
		fd = held_netns(ino);
	return fd;
}

void tcp_stream_unlock(pid_t pid, uint64_t netns_ino, const char *path, const char *table)
{
	cleanup_close int netns = path[0] ? netns_if(path, netns_ino) : -1;

	if (netns < 0)
		netns = find_netns(true, pid, netns_ino);

	if (netns < 0) {
		pr_info("nftables table inet %s: its network namespace (inode %llu) is gone, and the table with it",
			table, (unsigned long long)netns_ino);
		return;
	}
	unblock(netns, table, false);
}

void tcp_stream_unrepair(pid_t pid, int fd, int reuse)
{
	int off = TCP_REPAIR_OFF, pidfd = (int)syscall(SYS_pidfd_open, pid, 0), sk;

	if (pidfd < 0)
		return;
	sk = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	close(pidfd);
	if (sk < 0)
		return;
	setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
	setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse));
	close(sk);
}

/* -------------------------------------------------------------------- dump */

static int get_u32(int fd, int opt, uint32_t *v, const char *name, cr_error_t *err)
{
	socklen_t len = sizeof(*v);

	if (getsockopt(fd, IPPROTO_TCP, opt, v, &len) < 0)
		return cr_error(err, errno, "%s", name);
	return 0;
}

static int set_int(int fd, int opt, int v, const char *name, cr_error_t *err)
{
	if (setsockopt(fd, IPPROTO_TCP, opt, &v, sizeof(v)) < 0)
		return cr_error(err, errno, "%s", name);
	return 0;
}

/* One queue (TCP_RECV_QUEUE or TCP_SEND_QUEUE): its sequence number and
 * its bytes, peeked. */
static int read_queue(struct dump_ctx *ctx, int fd, int queue, uint32_t *seq, ProtobufCBinaryData *data,
		      cr_error_t *err)
{
	int len = 0;
	ssize_t n;

	if (set_int(fd, TCP_REPAIR_QUEUE, queue, "TCP_REPAIR_QUEUE", err) < 0 ||
	    get_u32(fd, TCP_QUEUE_SEQ, seq, "TCP_QUEUE_SEQ", err) < 0)
		return -1;
	if (ioctl(fd, queue == TCP_RECV_QUEUE ? SIOCINQ : SIOCOUTQ, &len) < 0)
		return cr_error(err, errno, "the queue's length");
	if ((unsigned)len > FDKIND_MAX_DATA)
		return cr_error(err, 0, "unsupported: %d bytes queued (more than %u)", len, FDKIND_MAX_DATA);
	data->len = (size_t)len;
	data->data = arena_alloc(&ctx->arena, (size_t)len + 1);
	n = len ? recv(fd, data->data, (size_t)len, MSG_PEEK | MSG_DONTWAIT) : 0;
	if (n != len)
		return cr_error(err, n < 0 ? errno : 0, "peek %d bytes queued (got %zd)", len, n);
	return 0;
}

static int read_state(struct dump_ctx *ctx, int fd, TcpStream *s, cr_error_t *err)
{
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (read_queue(ctx, fd, TCP_RECV_QUEUE, &s->inq_seq, &s->inq, err) < 0 ||
	    read_queue(ctx, fd, TCP_SEND_QUEUE, &s->outq_seq, &s->outq, err) < 0 ||
	    set_int(fd, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, "TCP_REPAIR_QUEUE", err) < 0)
		return -1;
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return cr_error(err, errno, "TCP_INFO");
	/* sock_diag saw it established; in repair mode it stays as it is now */
	if (ti.tcpi_state != 1 /* TCP_ESTABLISHED */)
		return cr_error(err, 0, "the connection left the ESTABLISHED state during the dump (now in state %u: "
				"its peer closed it?)", ti.tcpi_state);
	s->options = ti.tcpi_options;
	s->snd_wscale = ti.tcpi_snd_wscale;
	s->rcv_wscale = ti.tcpi_rcv_wscale;
	if (get_u32(fd, TCP_MAXSEG, &s->mss, "TCP_MAXSEG", err) < 0 ||
	    get_u32(fd, TCP_TIMESTAMP, &s->timestamp, "TCP_TIMESTAMP", err) < 0)
		return -1;
	len = sizeof(w);
	if (getsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0)
		return cr_error(err, errno, "TCP_REPAIR_WINDOW");
	s->snd_wl1 = w.snd_wl1;
	s->snd_wnd = w.snd_wnd;
	s->max_window = w.max_window;
	s->rcv_wnd = w.rcv_wnd;
	s->rcv_wup = w.rcv_wup;
	return 0;
}

/* What a guardian needs to undo the lock if cr dies (dump/guard.h). */
static int note_lock(struct dump_ctx *ctx, const struct dump_task *t, int fd, const struct tcp_repair *r,
		     uint32_t ino, cr_error_t *err)
{
	struct guard_tcp rec = { .magic = GUARD_MAGIC, .version = GUARD_VERSION, .pid = t->pid, .fd = fd,
				 .start_time = t->stat.start_time, .reuse = r->reuse, .ino = ino,
				 .netns_ino = r->netns_ino };

	snprintf(rec.table, sizeof(rec.table), "%s", r->table);
	return guard_note_tcp_lock(ctx, &rec, err);
}

/* The network namespace of pid, where its connection's lock goes. */
static int open_netns(pid_t pid, uint64_t *ino, cr_error_t *err)
{
	char path[64];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return cr_error(err, errno, "open %s", path);
	}
	*ino = (uint64_t)st.st_ino;
	return fd;
}

static void release_one(struct tcp_repair *r)
{
	close(r->fd);
	if (r->netns >= 0)
		close(r->netns);
	free(r);
}

int tcp_stream_dump(struct dump_ctx *ctx, const struct dump_task *t, int fd, int dup, const struct inet_diag_sk *d,
		    InetSkEntry *e, cr_error_t *err)
{
	struct nft_lock_ends l = { .family = d->family, .sport = d->sport, .dport = d->dport };
	bool lock = !ctx->opts->network_lock_skip;   /* else the caller keeps the peers' packets away */
	struct tcp_repair *r;
	TcpStream *s;
	socklen_t len;

	r = xcalloc(1, sizeof(*r));
	s = arena_new(&ctx->arena, TcpStream);
	len = sizeof(r->reuse);
	r->netns = -1;
	memcpy(l.src, d->src, sizeof(l.src));
	memcpy(l.dst, d->dst, sizeof(l.dst));
	if (lock)
		snprintf(r->table, sizeof(r->table), FW_LOCK_PREFIX "%u", d->ino);
	r->ino = d->ino;
	if (getsockopt(dup, SOL_SOCKET, SO_REUSEADDR, &r->reuse, &len) < 0)
		r->reuse = 0;
	r->fd = fcntl(dup, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0) {
		free(r);
		return cr_error(err, errno, "dup");
	}
	/* In the connection's own network namespace: where its packets go. */
	if ((lock && (r->netns = open_netns(t->pid, &r->netns_ino, err)) < 0) || note_lock(ctx, t, fd, r, d->ino, err) < 0 ||
	    (lock && block(r->netns, &l, r->table, false, err) < 0)) {
		guard_forget_tcp(ctx, d->ino);
		release_one(r);
		return -1;
	}
	r->next = ctx->tcp_repair;
	ctx->tcp_repair = r;   /* undone when the dump ends, whatever happens now */
	if (set_int(dup, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR (needs CAP_NET_ADMIN)", err) < 0)
		return -1;
	tcp_stream__init(s);
	if (read_state(ctx, dup, s, err) < 0)
		return -1;
	e->tcp = s;
	if (!lock)
		return 0;
	e->nft_table = arena_strdup(&ctx->arena, r->table);
	pr_info("socket:[%u]: its traffic is dropped by nftables table inet %s (in the network namespace of pid %d, "
		"inode %llu) until it is restored", d->ino, r->table, (int)t->pid, (unsigned long long)r->netns_ino);
	return 0;
}

void tcp_stream_release(struct dump_ctx *ctx)
{
	int off = TCP_REPAIR_OFF;

	while (ctx->tcp_repair != NULL) {
		struct tcp_repair *r = ctx->tcp_repair;

		ctx->tcp_repair = r->next;
		if (!ctx->killed) {   /* the connection goes on where it was */
			setsockopt(r->fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
			setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &r->reuse, sizeof(r->reuse));
			if (r->table[0])
				unblock(r->netns, r->table, false);
		}
		/* killed: in repair mode, closed without a word to the peer */
		guard_forget_tcp(ctx, r->ino);
		release_one(r);
	}
}

/* ----------------------------------------------------------------- restore */

int tcp_stream_validate(const InetSkEntry *e, cr_error_t *err)
{
	const TcpStream *s = e->tcp;

	if (s == NULL)
		return cr_error(err, 0, "established TCP connection without its stream state");
	if (e->nft_table != NULL && (strncmp(e->nft_table, "cr_tcp_", 7) != 0 ||
	    strspn(e->nft_table + 7, "0123456789") != strlen(e->nft_table + 7) || strlen(e->nft_table) > 20))
		return cr_error(err, 0, "established TCP connection with table name '%s'",
				e->nft_table ? e->nft_table : "");
	if (e->nft_table != NULL && !nft_lock_available())   /* before anything is made */
		return cr_error(err, 0, "established TCP connection locked by nftables table inet %s: this kernel "
				"has no nf_tables (needed to lock it in its namespace and unlock it)", e->nft_table);
	if (s->inq.len > FDKIND_MAX_DATA || s->outq.len > FDKIND_MAX_DATA || s->snd_wscale > 14 || s->rcv_wscale > 14)
		return cr_error(err, 0, "established TCP connection with queues or window scales out of range");
	return 0;
}

int tcp_stream_prepare(int fd, const InetSkEntry *e, cr_error_t *err)
{
	const TcpStream *s = e->tcp;

	if (set_int(fd, TCP_REPAIR, TCP_REPAIR_ON, "TCP_REPAIR", err) < 0 ||
	    set_int(fd, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE", err) < 0 ||
	    set_int(fd, TCP_QUEUE_SEQ, (int)(s->inq_seq - (uint32_t)s->inq.len), "TCP_QUEUE_SEQ", err) < 0 ||
	    set_int(fd, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE", err) < 0 ||
	    set_int(fd, TCP_QUEUE_SEQ, (int)(s->outq_seq - (uint32_t)s->outq.len), "TCP_QUEUE_SEQ", err) < 0)
		return -1;
	if ((s->options & TCPI_OPT_TIMESTAMPS) && set_int(fd, TCP_TIMESTAMP, (int)s->timestamp, "TCP_TIMESTAMP", err) < 0)
		return -1;
	return 0;
}

static int set_options(int fd, const TcpStream *s, cr_error_t *err)
{
	struct tcp_repair_opt o[4];
	size_t n = 0;

	o[n++] = (struct tcp_repair_opt){ OPT_MAXSEG, s->mss };
	if (s->options & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){ OPT_WINDOW, s->snd_wscale | (s->rcv_wscale << 16) };
	if (s->options & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ OPT_SACK_PERM, 0 };
	if (s->options & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ OPT_TIMESTAMP, 0 };
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))) < 0)
		return cr_error(err, errno, "TCP_REPAIR_OPTIONS");
	return 0;
}

/* The buffer of a queue (SO_RCVBUF, SO_SNDBUF) grown to hold len bytes
 * while they are written; *saved is what it was (-1: big enough). */
static int make_room(int fd, int opt, int force, size_t len, int *saved, cr_error_t *err)
{
	socklen_t sl = sizeof(*saved);
	int want = (int)(len + (64u << 10));

	*saved = -1;
	if (getsockopt(fd, SOL_SOCKET, opt, saved, &sl) < 0)
		return cr_error(err, errno, "the buffer size");
	if (*saved >= 2 * want) {
		*saved = -1;
		return 0;
	}
	if (setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)) < 0)
		return cr_error(err, errno, "grow the buffer to %d bytes", want);
	return 0;
}

static int fill_queue(int fd, int queue, const ProtobufCBinaryData *d, cr_error_t *err)
{
	bool recv_q = queue == TCP_RECV_QUEUE;
	int saved, half;

	if (set_int(fd, TCP_REPAIR_QUEUE, queue, "TCP_REPAIR_QUEUE", err) < 0 ||
	    make_room(fd, recv_q ? SO_RCVBUF : SO_SNDBUF, recv_q ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, d->len, &saved,
		      err) < 0)
		return -1;
	for (size_t off = 0; off < d->len;) {
		size_t len = d->len - off < CHUNK ? d->len - off : CHUNK;
		ssize_t n = send(fd, d->data + off, len, MSG_DONTWAIT);   /* the receive queue takes a part at a time */

		if (n <= 0)
			return cr_error(err, n < 0 ? errno : 0, "write %zu bytes of the %s queue at %zu", d->len,
					queue == TCP_RECV_QUEUE ? "receive" : "send", off);
		off += (size_t)n;
	}
	half = saved / 2;   /* set as it was (getsockopt shows twice what is set) */
	if (saved >= 0 && setsockopt(fd, SOL_SOCKET, recv_q ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &half, sizeof(half)) < 0)
		return cr_error(err, errno, "set the buffer back to %d bytes", saved);
	return 0;
}

int tcp_stream_finish(int fd, const InetSkEntry *e, cr_error_t *err)
{
	const TcpStream *s = e->tcp;
	struct tcp_repair_window w = { .snd_wl1 = s->snd_wl1, .snd_wnd = s->snd_wnd, .max_window = s->max_window,
				       .rcv_wnd = s->rcv_wnd, .rcv_wup = s->rcv_wup };

	if (set_options(fd, s, err) < 0 || fill_queue(fd, TCP_RECV_QUEUE, &s->inq, err) < 0 ||
	    fill_queue(fd, TCP_SEND_QUEUE, &s->outq, err) < 0)
		return -1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
		return cr_error(err, errno, "TCP_REPAIR_WINDOW");
	return 0;
}

/* The network namespace (ns.img id, 0: cr's) of the first live process
 * that holds file id, -1 if none does. */
static int64_t holder_net(const struct restore_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->n_fds; j++)
			if (t->fds[j]->file_id == id)
				return ns_net_ref(t->core->ns);
	}
	return -1;
}

/* The connection's two ends from the image (checked by inet_validate). */
static int ends_of(const InetSkEntry *e, struct nft_lock_ends *l)
{
	memset(l, 0, sizeof(*l));
	l->family = (int)e->family;
	l->sport = e->src_port;
	l->dport = e->dst_port;
	if (e->dst_addr == NULL || inet_pton(l->family, e->src_addr, l->src) != 1 ||
	    inet_pton(l->family, e->dst_addr, l->dst) != 1)
		return -1;
	return 0;
}

/* The tables opened when the connections left repair mode, each with its
 * namespace (opened while the tree was still stopped: once it runs, a
 * process may have left it, or its pid be another's), to delete once the
 * tree runs (tcp_stream_released), or if the restore fails after all
 * (tcp_stream_lock_forget). */
struct opened_lock {
	const InetSkEntry *e;
	const char *table;
	int64_t net;   /* ns.img id; <= 0: cr's own */
	int fd;        /* the restored namespace; -1: cr's own, or gone with its processes */
	bool absent;   /* no such table to open: none to delete */
	bool quiet;
};
static struct opened_lock *opened;
static size_t n_opened;
/* Tables a restore made in the namespace it joins (the restorer's, by
 * path: no fd of it may reach the restored processes), deleted if it fails;
 * and, should cr die before, by the guardian of their records (dump/guard.h,
 * a directory "restore-PID.*" of their own), or by the next cr. */
static const char *made_in;
static char (*made)[32];
static size_t n_made;
static struct dump_guard joined_guard = { .dirfd = -1 };

/* The record of the table about to be made for socket:[ino] in the joined
 * namespace netns (path). */
static int note_joined(int netns, const char *path, uint32_t ino, const char *table, cr_error_t *err)
{
	struct guard_tcp rec = { .magic = GUARD_MAGIC, .version = GUARD_VERSION, .fd = -1, .ino = ino };
	struct stat st;

	if (fstat(netns, &st) < 0)
		return cr_error(err, errno, "stat the joined network namespace %s", path);
	rec.netns_ino = st.st_ino;
	if (strlen(path) < sizeof(rec.netns_path))
		snprintf(rec.netns_path, sizeof(rec.netns_path), "%s", path);
	snprintf(rec.table, sizeof(rec.table), "%s", table);
	if (joined_guard.dirfd < 0 && guard_dir_open(&joined_guard, "restore", err) < 0)
		return cr_error_wrap(err, "guard the tables made in %s", path);
	return guard_dir_note_tcp(&joined_guard, &rec, err);
}

/* Every record gone (the tables are), and the guardian with them. */
static void joined_guard_end(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_files && joined_guard.dirfd >= 0; i++)
		if (ctx->files[i]->inet_sk != NULL && ctx->files[i]->inet_sk->nft_table != NULL)
			guard_dir_forget_tcp(&joined_guard, ctx->files[i]->inet_sk->ino);
	guard_dir_close(&joined_guard);
}

/* In a joined namespace: the dump's table may be there already (a restore
 * where the dump was), then kept as it is. */
static int block_joined(const struct restore_ctx *ctx, int netns, const struct nft_lock_ends *l, uint32_t ino,
			const char *table, cr_error_t *err)
{
	cr_error_t look = NULL;
	int there;

	if (note_joined(netns, ctx->opts->join_net, ino, table, err) < 0)
		return -1;
	if (block(netns, l, table, true, err) == 0) {
		made = xrealloc(made, (n_made + 1) * sizeof(*made));
		snprintf(made[n_made++], sizeof(*made), "%s", table);
		made_in = ctx->opts->join_net;
		return 0;
	}
	guard_dir_forget_tcp(&joined_guard, ino);   /* not made: not the guardian's to delete */
	there = nft_lock_exists(netns, table, &look);
	cr_error_release(&look);
	if (there != 1)
		return -1;
	cr_error_release(err);
	pr_debug("nftables table inet %s is there already (the dump's)", table);
	return 0;
}

int tcp_stream_lock_ns(const struct restore_ctx *ctx, uint32_t net, int netns, bool joined, cr_error_t *err)
{
	struct nft_lock_ends l;

	if (ctx->opts->tcp_close)
		return 0;   /* they come back closed */
	for (size_t i = 0; i < ctx->n_files; i++) {
		const InetSkEntry *e = ctx->files[i]->inet_sk;

		if (e == NULL || e->nft_table == NULL || holder_net(ctx, (uint32_t)i + 1) != net)
			continue;
		if (ends_of(e, &l) < 0)
			return cr_error(err, 0, "socket:[%u]: no addresses to lock its traffic with", e->ino);
		if ((joined ? block_joined(ctx, netns, &l, e->ino, e->nft_table, err) :
			      block(netns, &l, e->nft_table, false, err)) < 0)
			return -1;
		pr_debug("socket:[%u]: its traffic is dropped by nftables table inet %s until it is restored", e->ino,
			 e->nft_table);
	}
	return 0;
}

void tcp_stream_lock_forget(const struct restore_ctx *ctx)
{
	cleanup_close int netns = -1;

	tcp_stream_relock();   /* failed after the locks were opened (restore.c did, before its kill) */
	netns = n_made ? open(made_in, O_RDONLY | O_CLOEXEC) : -1;

	for (size_t i = 0; i < n_made && netns >= 0; i++)
		unblock(netns, made[i], false);
	if (n_made && netns < 0)
		pr_warn("open %s: %s (delete the nftables tables inet %s... there by hand)", made_in, strerror(errno),
			made[0]);
	free(made);
	made = NULL;
	n_made = 0;
	joined_guard_end(ctx);
}

/* The restored network namespace net (ns.img id): the joined one, or that
 * of a process in it; -1 if every one has gone (and it with them). */
static int restored_netns(const struct restore_ctx *ctx, uint32_t net)
{
	char path[64];
	int fd = -1;

	if (ctx->opts->join_net)
		return open(ctx->opts->join_net, O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < ctx->n_tasks && fd < 0; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		if (t->zombie || ns_net_ref(t->core->ns) != net)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)(t->host_pid ? t->host_pid : t->pid));
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	return fd;
}

/* The dumped namespace net, if it is still there (bound by name, or held
 * by a process, on this boot) and not where the connection is now: the dump's table in
 * it goes too. */
static void unblock_dumped(const struct restore_ctx *ctx, uint32_t net, int now, const char *table)
{
	const NsEntry *e = (const NsEntry *)ctx->img[CR_IMG_NS].v[net - 1];
	struct stat st;
	cleanup_close int old = ctx->same_boot ? find_netns(false, 0, e->inode) : -1;

	if (old < 0 || (now >= 0 && fstat(now, &st) == 0 && (uint64_t)st.st_ino == e->inode))
		return;
	if (unblock(old, table, true))
		pr_info("nftables table inet %s deleted in the dumped network namespace too (inode %llu)", table,
			(unsigned long long)e->inode);
}

/* The list of opened tables emptied (their fds closed by the caller). */
static void opened_forget(void)
{
	free(opened);
	opened = NULL;
	n_opened = 0;
}

/* Lets the connection's traffic through (the table is deleted once the
 * tree runs).  quiet: a table that may not be there.  Whether there was
 * one. */
static bool open_lock(int netns, const char *table, bool quiet)
{
	cr_error_t err = NULL;
	bool there = true;

	if (nft_lock_open(netns, table, &err) < 0) {
		there = err->status != ENOENT;
		if (there && !quiet)
			pr_warn("%s (the connection's traffic stays dropped: delete the nftables table inet %s by "
				"hand)", err->msg, table);
	}
	cr_error_release(&err);
	return there;
}

static void open_locks(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_files; i++) {
		const InetSkEntry *e = ctx->files[i]->inet_sk;
		struct opened_lock o = { 0 };

		if (e == NULL || e->nft_table == NULL)
			continue;
		o.e = e;
		o.table = e->nft_table;
		o.net = holder_net(ctx, (uint32_t)i + 1);
		o.fd = o.net <= 0 ? -1 : restored_netns(ctx, (uint32_t)o.net);
		o.quiet = o.net > 0 && ctx->opts->tcp_close;   /* --tcp-close made none (a joined namespace may have the dump's) */
		if (o.net > 0 && o.fd < 0)
			pr_info("nftables table inet %s: the processes of its network namespace are gone, and it with "
				"them", e->nft_table);
		else
			o.absent = !open_lock(o.fd, o.table, o.quiet);
		opened = xreallocarray(opened, n_opened + 1, sizeof(*opened));
		opened[n_opened++] = o;
	}
}

/* Each opened table deleted, and the dump's in the dumped namespace (on
 * this boot, if it is still there). */
static void delete_locks(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < n_opened; i++) {
		struct opened_lock *o = &opened[i];

		if (!o->absent && (o->net <= 0 || o->fd >= 0))
			unblock(o->fd, o->table, o->quiet);
		if (o->net > 0)
			unblock_dumped(ctx, (uint32_t)o->net, o->fd, o->table);
		if (o->fd >= 0)
			close(o->fd);
	}
	opened_forget();
	n_made = 0;   /* deleted above */
}

/* The opened tables closed again, their namespaces let go: a restore that
 * fails after it opened the locks (before its processes are killed, whose
 * sockets close without a word) keeps them as the dump left them. */
void tcp_stream_relock(void)
{
	for (size_t i = 0; i < n_opened; i++) {
		struct opened_lock *o = &opened[i];
		struct nft_lock_ends l;
		cr_error_t err = NULL;

		if (!o->absent && (o->net <= 0 || o->fd >= 0) &&
		    (ends_of(o->e, &l) < 0 || nft_lock_close(o->fd, o->table, &l, &err) < 0) && !o->quiet)
			pr_warn("%s (the connection's traffic is let through: nftables table inet %s)",
				err != NULL ? err->msg : "no addresses to lock it with", o->table);
		cr_error_release(&err);
		if (o->fd >= 0)
			close(o->fd);
	}
	opened_forget();
}

void tcp_stream_released(const struct restore_ctx *ctx)
{
	delete_locks(ctx);
	joined_guard_end(ctx);
}

int tcp_stream_unlock_dump(const struct restore_ctx *ctx, size_t *deleted, cr_error_t *err)
{
	*deleted = 0;
	for (size_t i = 0; i < ctx->n_files; i++) {
		const InetSkEntry *e = ctx->files[i]->inet_sk;
		int64_t net;
		int fd = -1;

		if (e == NULL || e->nft_table == NULL)
			continue;
		net = holder_net(ctx, (uint32_t)i + 1);
		if (net > 0 && !ctx->same_boot)
			return cr_error(err, 0, "socket:[%u]: its table is in a network namespace of another boot", e->ino);
		if (net > 0) {
			fd = find_netns(false, 0, ((const NsEntry *)ctx->img[CR_IMG_NS].v[net - 1])->inode);
			if (fd < 0) {
				pr_info("nftables table inet %s: its network namespace is gone, and it with it", e->nft_table);
				continue;
			}
		}
		if (unblock(fd, e->nft_table, true)) {
			printf("deleted nftables table inet %s (socket:[%u])\n", e->nft_table, e->ino);
			(*deleted)++;
		}
		if (fd >= 0)
			close(fd);
	}
	return 0;
}

/* The connection of file id out of repair mode, through its fd in a
 * process that holds it; its SO_REUSEADDR (which leaving clears) back. */
static int unrepair_file(const struct restore_ctx *ctx, uint32_t id, const InetSkEntry *e, cr_error_t *err)
{
	int off = TCP_REPAIR_OFF, reuse = (int)sk_opts_value(e->opts, e->n_opts, "SO_REUSEADDR", 0);

	for (size_t i = 0; i < ctx->n_tasks; i++) {
		const struct restore_task *t = &ctx->tasks[i];

		for (size_t j = 0; !t->zombie && j < t->n_fds; j++) {
			int sk;

			if (t->fds[j]->file_id != id)
				continue;
			sk = fdkind_steal_fd(t->host_pid, (int)t->fds[j]->fd, err);
			if (sk < 0)
				return cr_error_wrap(err, "socket:[%u] of pid %d", id, t->pid);
			if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0 ||
			    setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) < 0) {
				close(sk);
				return cr_error(err, errno, "pid %d fd %u: the connection to %s port %u out of repair mode",
						t->pid, t->fds[j]->fd, e->dst_addr, e->dst_port);
			}
			close(sk);
			return 0;
		}
	}
	return 0;   /* held by no live process: it went with a zombie */
}

int tcp_stream_ready(const struct restore_ctx *ctx, cr_error_t *err)
{
	open_locks(ctx);
	if (ctx->opts->tcp_close)
		return 0;
	for (size_t i = 0; i < ctx->n_files; i++) {
		const InetSkEntry *e = ctx->files[i]->inet_sk;

		if (e != NULL && e->tcp != NULL && unrepair_file(ctx, (uint32_t)i + 1, e, err) < 0)
			return -1;
	}
	return 0;
}
