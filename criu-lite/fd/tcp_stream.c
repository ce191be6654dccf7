#include "fd/tcp_stream.h"
#include "dump/guard.h"
#include "fd/fdshare.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <spawn.h>
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

extern char **environ;

/* A connection held in repair mode by the dump. */
struct tcp_repair {
	struct tcp_repair *next;
	int fd;                 /* cr's duplicate */
	int reuse;              /* SO_REUSEADDR, which leaving repair mode clears */
	uint32_t ino;
	char table[32];
};

/* ---------------------------------------------------------------- nftables */

/* Runs nft with one command line; 0 or -1 with err (naming what). */
static int run_nft(const char *cmd, const char *what, cr_error_t *err)
{
	char *const argv[] = { "nft", (char *)cmd, NULL };
	posix_spawn_file_actions_t fa;
	int status = 0, r;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	r = posix_spawnp(&pid, "nft", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return cr_error(err, r, "%s: run nft", what);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cr_error(err, 0, "%s: nft failed (status 0x%x)", what, status);
	return 0;
}

/* "ip saddr A ip daddr B" for an address pair of family (an IPv4-mapped
 * IPv6 pair as IPv4, which is what travels). */
static void match_addrs(int family, const uint8_t *a, const uint8_t *b, char *out, size_t size)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char ta[INET6_ADDRSTRLEN], tb[INET6_ADDRSTRLEN];

	if (family == AF_INET6 && memcmp(a, mapped, 12) == 0 && memcmp(b, mapped, 12) == 0) {
		a += 12, b += 12;
		family = AF_INET;
	}
	inet_ntop(family, a, ta, sizeof(ta));
	inet_ntop(family, b, tb, sizeof(tb));
	snprintf(out, size, family == AF_INET ? "ip saddr %s ip daddr %s" : "ip6 saddr %s ip6 daddr %s", ta, tb);
}

static void unblock(const char *table);

static int block(const struct inet_diag_sk *d, const char *table, cr_error_t *err)
{
	char there[128], back[128], cmd[2048];

	match_addrs(d->family, d->src, d->dst, there, sizeof(there));
	match_addrs(d->family, d->dst, d->src, back, sizeof(back));
	snprintf(cmd, sizeof(cmd),
		 "add table inet %1$s; "
		 "add chain inet %1$s out { type filter hook output priority -150; policy accept; }; "
		 "add chain inet %1$s in { type filter hook input priority -150; policy accept; }; "
		 "add rule inet %1$s out %2$s tcp sport %4$u tcp dport %5$u drop; "
		 "add rule inet %1$s out %3$s tcp sport %5$u tcp dport %4$u drop; "
		 "add rule inet %1$s in %2$s tcp sport %4$u tcp dport %5$u drop; "
		 "add rule inet %1$s in %3$s tcp sport %5$u tcp dport %4$u drop",
		 table, there, back, d->sport, d->dport);
	return run_nft(cmd, "block the connection's traffic", err);
}

void tcp_stream_unlock(const char *table)
{
	unblock(table);
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

static void unblock(const char *table)
{
	char cmd[64];
	cr_error_t err = NULL;

	snprintf(cmd, sizeof(cmd), "delete table inet %s", table);
	if (run_nft(cmd, table, &err) < 0) {
		pr_warn("%s (delete the nftables table inet %s by hand)", err->msg, table);
		cr_error_release(&err);
	}
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
				 .start_time = t->stat.start_time, .reuse = r->reuse, .ino = ino };

	snprintf(rec.table, sizeof(rec.table), "%s", r->table);
	return guard_note_tcp_lock(ctx, &rec, err);
}

int tcp_stream_dump(struct dump_ctx *ctx, const struct dump_task *t, int fd, int dup, const struct inet_diag_sk *d,
		    InetSkEntry *e, cr_error_t *err)
{
	struct tcp_repair *r;
	TcpStream *s;
	socklen_t len;

	if (!ctx->opts->network_lock_skip && !proc_shares_ns(t->pid, "net"))
		return cr_error(err, 0, "unsupported: an established TCP connection in a network namespace other than "
				"cr's: the nftables lock is made in cr's (--network-lock skip, with a lock of the "
				"caller's in that namespace)");
	r = xcalloc(1, sizeof(*r));
	s = arena_new(&ctx->arena, TcpStream);
	len = sizeof(r->reuse);

	snprintf(r->table, sizeof(r->table), "cr_tcp_%u", d->ino);
	r->ino = d->ino;
	if (getsockopt(dup, SOL_SOCKET, SO_REUSEADDR, &r->reuse, &len) < 0)
		r->reuse = 0;
	r->fd = fcntl(dup, F_DUPFD_CLOEXEC, 0);
	if (r->fd < 0) {
		free(r);
		return cr_error(err, errno, "dup");
	}
	if (ctx->opts->network_lock_skip)
		r->table[0] = '\0';   /* the caller keeps the peers' packets away */
	if (note_lock(ctx, t, fd, r, d->ino, err) < 0 || (r->table[0] && block(d, r->table, err) < 0)) {
		guard_forget_tcp(ctx, d->ino);
		close(r->fd);
		free(r);
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
	if (r->table[0] == '\0')
		return 0;
	e->nft_table = arena_strdup(&ctx->arena, r->table);
	pr_info("socket:[%u]: its traffic is dropped by nftables table inet %s until it is restored", d->ino,
		r->table);
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
				unblock(r->table);
		}
		close(r->fd);   /* killed: in repair mode, closed without a word to the peer */
		guard_forget_tcp(ctx, r->ino);
		free(r);
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
	return set_int(fd, TCP_REPAIR, TCP_REPAIR_OFF, "TCP_REPAIR off", err);
}

void tcp_stream_unblock(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_files; i++) {
		const InetSkEntry *e = ctx->files[i]->inet_sk;

		if (e != NULL && e->nft_table != NULL)
			unblock(e->nft_table);
	}
}
