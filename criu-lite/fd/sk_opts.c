#include "fd/sk_opts.h"
#include "net/netlink.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IP_RECVFRAGSIZE
#define IP_RECVFRAGSIZE 25
#endif
#ifndef IP_RECVERR_RFC4884
#define IP_RECVERR_RFC4884 26
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef IPV6_RECVERR_RFC4884
#define IPV6_RECVERR_RFC4884 31
#endif
#ifndef IPV6_AUTOFLOWLABEL
#define IPV6_AUTOFLOWLABEL 70
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_RECVFRAGSIZE
#define IPV6_RECVFRAGSIZE 77
#endif

enum opt_shape {
	OPT_INT,
	OPT_BUF,      /* SO_SNDBUF/SO_RCVBUF: getsockopt shows twice what was set */
	OPT_TIMEO,    /* struct timeval, kept in microseconds */
	OPT_LINGER,   /* struct linger: -1 off, else seconds */
	OPT_TEXT,     /* a name: SO_BINDTODEVICE, TCP_CONGESTION */
};

struct opt_def {
	const char *name;
	int level, opt;
	enum opt_shape shape;
	int force;    /* OPT_BUF: the *FORCE option, past the sysctl maximum */
	bool derived; /* set by the kernel on a connection: left to it */
	bool always;  /* kept even when a new socket of cr's has it: its default
	               * is a sysctl of the network namespace */
	bool dgram;   /* settable on datagram sockets only: on a TCP one its
	               * value is the kernel's (an accepted connection's
	               * multicast TTL comes from the SYN's TTL) */
};

#define O(lv, nm, ...) { .name = #nm, .level = lv, .opt = nm, .shape = OPT_INT, __VA_ARGS__ }
#define S(lv, nm, sh, ...) { .name = #nm, .level = lv, .opt = nm, .shape = sh, __VA_ARGS__ }

/* In the order restore sets them: all before bind (IPV6_V6ONLY,
 * SO_BINDTODEVICE, SO_REUSE* and the FREEBIND ones must be). */
static const struct opt_def table[] = {
	O(SOL_SOCKET, SO_REUSEADDR), O(SOL_SOCKET, SO_REUSEPORT), O(SOL_SOCKET, SO_KEEPALIVE),
	S(SOL_SOCKET, SO_SNDBUF, OPT_BUF, .force = SO_SNDBUFFORCE),
	S(SOL_SOCKET, SO_RCVBUF, OPT_BUF, .force = SO_RCVBUFFORCE),
	O(SOL_SOCKET, SO_MARK), O(SOL_SOCKET, SO_BROADCAST),
	O(SOL_SOCKET, SO_DONTROUTE), O(SOL_SOCKET, SO_OOBINLINE), O(SOL_SOCKET, SO_RCVLOWAT),
	O(SOL_SOCKET, SO_TIMESTAMP), O(SOL_SOCKET, SO_TIMESTAMPNS), O(SOL_SOCKET, SO_PASSCRED),
	O(SOL_SOCKET, SO_BUSY_POLL), O(SOL_SOCKET, SO_ZEROCOPY), O(SOL_SOCKET, SO_SELECT_ERR_QUEUE),
	O(SOL_SOCKET, SO_INCOMING_CPU), O(SOL_SOCKET, SO_PREFER_BUSY_POLL), O(SOL_SOCKET, SO_RCVMARK),
	O(SOL_SOCKET, SO_TXREHASH),
	S(SOL_SOCKET, SO_LINGER, OPT_LINGER), S(SOL_SOCKET, SO_RCVTIMEO, OPT_TIMEO),
	S(SOL_SOCKET, SO_SNDTIMEO, OPT_TIMEO), S(SOL_SOCKET, SO_BINDTODEVICE, OPT_TEXT),
	O(SOL_IP, IP_TOS), O(SOL_IP, IP_TTL), O(SOL_IP, IP_FREEBIND), O(SOL_IP, IP_TRANSPARENT),
	O(SOL_IP, IP_RECVERR), O(SOL_IP, IP_PKTINFO), O(SOL_IP, IP_RECVTOS), O(SOL_IP, IP_RECVTTL),
	O(SOL_IP, IP_RECVORIGDSTADDR), O(SOL_IP, IP_MTU_DISCOVER), O(SOL_IP, IP_BIND_ADDRESS_NO_PORT),
	O(SOL_IP, IP_MULTICAST_TTL, .dgram = true), O(SOL_IP, IP_MULTICAST_LOOP), O(SOL_IP, IP_MULTICAST_ALL),
	O(SOL_IP, IP_MINTTL), O(SOL_IP, IP_RECVFRAGSIZE), O(SOL_IP, IP_RECVOPTS), O(SOL_IP, IP_RETOPTS),
	O(SOL_IP, IP_CHECKSUM), O(SOL_IP, IP_RECVERR_RFC4884), O(SOL_IP, IP_LOCAL_PORT_RANGE),
	O(SOL_IPV6, IPV6_V6ONLY, .always = true), O(SOL_IPV6, IPV6_TCLASS), O(SOL_IPV6, IPV6_UNICAST_HOPS),
	O(SOL_IPV6, IPV6_RECVPKTINFO), O(SOL_IPV6, IPV6_RECVERR), O(SOL_IPV6, IPV6_MTU_DISCOVER),
	O(SOL_IPV6, IPV6_MULTICAST_HOPS, .dgram = true), O(SOL_IPV6, IPV6_MULTICAST_LOOP), O(SOL_IPV6, IPV6_MULTICAST_ALL),
	O(SOL_IPV6, IPV6_FREEBIND),
	O(SOL_IPV6, IPV6_TRANSPARENT), O(SOL_IPV6, IPV6_RECVTCLASS), O(SOL_IPV6, IPV6_RECVHOPLIMIT),
	O(SOL_IPV6, IPV6_DONTFRAG), O(SOL_IPV6, IPV6_RECVPATHMTU), O(SOL_IPV6, IPV6_MINHOPCOUNT),
	O(SOL_IPV6, IPV6_RECVFRAGSIZE), O(SOL_IPV6, IPV6_RECVRTHDR), O(SOL_IPV6, IPV6_RECVHOPOPTS),
	O(SOL_IPV6, IPV6_RECVDSTOPTS), O(SOL_IPV6, IPV6_RECVERR_RFC4884), O(SOL_IPV6, IPV6_FLOWINFO_SEND),
	O(SOL_IPV6, IPV6_AUTOFLOWLABEL), O(SOL_IPV6, IPV6_RECVORIGDSTADDR), O(SOL_IPV6, IPV6_ADDR_PREFERENCES),
	/* After IP_TOS, which sets the priority too. */
	O(SOL_SOCKET, SO_PRIORITY),
	O(SOL_TCP, TCP_NODELAY), O(SOL_TCP, TCP_CORK), O(SOL_TCP, TCP_KEEPIDLE), O(SOL_TCP, TCP_KEEPINTVL),
	O(SOL_TCP, TCP_KEEPCNT), O(SOL_TCP, TCP_DEFER_ACCEPT), O(SOL_TCP, TCP_FASTOPEN),
	O(SOL_TCP, TCP_USER_TIMEOUT), O(SOL_TCP, TCP_MAXSEG, .derived = true), O(SOL_TCP, TCP_SYNCNT),
	O(SOL_TCP, TCP_LINGER2), O(SOL_TCP, TCP_WINDOW_CLAMP, .derived = true), O(SOL_TCP, TCP_NOTSENT_LOWAT),
	O(SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS), O(SOL_TCP, TCP_FASTOPEN_CONNECT), O(SOL_TCP, TCP_INQ),
	O(SOL_TCP, TCP_SAVE_SYN), O(SOL_TCP, TCP_TX_DELAY),
	S(SOL_TCP, TCP_CONGESTION, OPT_TEXT),
	O(SOL_UDP, UDP_CORK), O(SOL_UDP, UDP_SEGMENT), O(SOL_UDP, UDP_GRO),
	O(SOL_NETLINK, NETLINK_PKTINFO), O(SOL_NETLINK, NETLINK_BROADCAST_ERROR),
	O(SOL_NETLINK, NETLINK_NO_ENOBUFS), O(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID), O(SOL_NETLINK, NETLINK_CAP_ACK),
	O(SOL_NETLINK, NETLINK_EXT_ACK), O(SOL_NETLINK, NETLINK_GET_STRICT_CHK),
};

struct opt_val {
	int64_t value;
	char text[IFNAMSIZ + 1];   /* TCP_CONGESTION names fit too (TCP_CA_NAME_MAX 16) */
};

/* 0 and *v, or -1 when the socket has no such option. */
static int read_opt(int fd, const struct opt_def *d, struct opt_val *v)
{
	struct timeval tv;
	struct linger l;
	socklen_t len;
	int i;

	memset(v, 0, sizeof(*v));
	switch (d->shape) {
	case OPT_INT:
	case OPT_BUF:
		len = sizeof(i);
		if (getsockopt(fd, d->level, d->opt, &i, &len) < 0 || len != sizeof(i))
			return -1;
		v->value = i;
		return 0;
	case OPT_TIMEO:
		len = sizeof(tv);
		if (getsockopt(fd, d->level, d->opt, &tv, &len) < 0 || len != sizeof(tv))
			return -1;
		v->value = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
		return 0;
	case OPT_LINGER:
		len = sizeof(l);
		if (getsockopt(fd, d->level, d->opt, &l, &len) < 0 || len != sizeof(l))
			return -1;
		v->value = l.l_onoff ? l.l_linger : -1;
		return 0;
	case OPT_TEXT:
		len = IFNAMSIZ;   /* SO_BINDTODEVICE wants room for a whole name */
		if (getsockopt(fd, d->level, d->opt, v->text, &len) < 0)
			return -1;
		v->text[len < IFNAMSIZ ? len : IFNAMSIZ] = '\0';
		return 0;
	}
	return -1;
}

static const char *describe_val(const struct opt_def *d, const struct opt_val *v, char *buf, size_t size)
{
	if (d->shape == OPT_TEXT)
		snprintf(buf, size, "\"%s\"", v->text);
	else
		snprintf(buf, size, "%lld", (long long)v->value);
	return buf;
}

static bool same(const struct opt_val *a, const struct opt_val *b)
{
	return a->value == b->value && strcmp(a->text, b->text) == 0;
}

static int set_opt(int fd, const struct opt_def *d, const SkOpt *o)
{
	struct timeval tv = { .tv_sec = o->value / 1000000, .tv_usec = o->value % 1000000 };
	struct linger l = { .l_onoff = o->value >= 0, .l_linger = o->value >= 0 ? (int)o->value : 0 };
	int i = (int)o->value;

	switch (d->shape) {
	case OPT_INT:
		return setsockopt(fd, d->level, d->opt, &i, sizeof(i));
	case OPT_BUF:
		i /= 2;
		return setsockopt(fd, d->level, d->force, &i, sizeof(i));
	case OPT_TIMEO:
		return setsockopt(fd, d->level, d->opt, &tv, sizeof(tv));
	case OPT_LINGER:
		return setsockopt(fd, d->level, d->opt, &l, sizeof(l));
	case OPT_TEXT:
		return setsockopt(fd, d->level, d->opt, o->text, (socklen_t)strlen(o->text));
	}
	return -1;
}

/* A new socket like fd's, in fd's network namespace: a device name
 * (SO_BINDTODEVICE) means a device there. */
static int fresh_socket(int fd, int family, int type, int protocol, cr_error_t *err)
{
	cleanup_close int ns = ioctl(fd, SIOCGSKNS);
	struct stat its, mine;

	if (ns < 0 || fstat(ns, &its) < 0)
		return cr_error(err, errno, "the socket's network namespace (SIOCGSKNS)");
	if (stat("/proc/thread-self/ns/net", &mine) < 0)
		return cr_error(err, errno, "/proc/thread-self/ns/net");
	if (its.st_ino == mine.st_ino && its.st_dev == mine.st_dev)
		return netns_socket_fd(-1, family, type | SOCK_CLOEXEC, protocol, err);
	return netns_socket_fd(ns, family, type | SOCK_CLOEXEC, protocol, err);
}

int sk_opts_dump(struct arena *a, int fd, int family, int type, int protocol, bool connected, struct sk_opts *out,
		 cr_error_t *err)
{
	cleanup_close int fresh = fresh_socket(fd, family, type, protocol, err);

	if (fresh < 0)
		return cr_error_wrap(err, "a new socket to compare options with");
	out->v = arena_array(a, SkOpt *, ARRAY_SIZE(table));
	out->n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		const struct opt_def *d = &table[i];
		struct opt_val mine, dflt;
		char text[IFNAMSIZ + 8];
		SkOpt *o;

		if ((connected && d->derived) || read_opt(fd, d, &mine) < 0 ||
		    (!d->always && read_opt(fresh, d, &dflt) == 0 && same(&mine, &dflt)))
			continue;
		o = arena_new(a, SkOpt);
		sk_opt__init(o);
		o->name = (char *)d->name;
		o->level = (uint32_t)d->level;
		o->opt = (uint32_t)d->opt;
		o->has_value = d->shape != OPT_TEXT;
		o->value = mine.value;
		o->text = d->shape == OPT_TEXT ? arena_strdup(a, mine.text) : NULL;
		/* Set on the new socket too, as the restore will (IP_TOS changes
		 * the priority the next options are compared with): a value
		 * that cannot be set is refused, unless no program could have
		 * set it, the kernel giving it again. */
		if (set_opt(fresh, d, o) == 0) {
			out->v[out->n++] = o;
		} else if (!(d->dgram && type == SOCK_STREAM)) {
			int e = errno;

			return cr_error(err, e, "unsupported: socket option %s %s, unlike a new socket's, cannot be "
					"set on one", d->name, describe_val(d, &mine, text, sizeof(text)));
		}
	}
	return 0;
}

static const struct opt_def *def_of(const SkOpt *o)
{
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (strcmp(table[i].name, o->name) == 0 && (uint32_t)table[i].level == o->level &&
		    (uint32_t)table[i].opt == o->opt)
			return &table[i];
	return NULL;
}

int sk_opts_validate(SkOpt *const *opts, size_t n, cr_error_t *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct opt_def *d = def_of(opts[i]);

		if (d == NULL)
			return cr_error(err, 0, "socket option %s (level %u, %u) is not one cr restores", opts[i]->name,
					opts[i]->level, opts[i]->opt);
		if ((d->shape == OPT_TEXT) != (opts[i]->text != NULL) || (d->shape != OPT_TEXT && !opts[i]->has_value))
			return cr_error(err, 0, "socket option %s without its value", d->name);
		if (d->shape != OPT_TEXT && d->shape != OPT_TIMEO &&
		    (opts[i]->value < (d->shape == OPT_LINGER ? -1 : INT32_MIN) || opts[i]->value > INT32_MAX))
			return cr_error(err, 0, "socket option %s: value %lld out of range", d->name,
					(long long)opts[i]->value);
	}
	return 0;
}

int sk_opts_apply(int fd, SkOpt *const *opts, size_t n, const char *skip, cr_error_t *err)
{
	for (size_t t = 0; t < ARRAY_SIZE(table); t++) {
		for (size_t i = 0; i < n; i++) {
			const SkOpt *o = opts[i];

			if (def_of(o) != &table[t] || (skip != NULL && strcmp(o->name, skip) == 0))
				continue;
			if (set_opt(fd, &table[t], o) < 0)
				return o->text ? cr_error(err, errno, "setsockopt %s \"%s\"", o->name, o->text)
					       : cr_error(err, errno, "setsockopt %s %lld", o->name, (long long)o->value);
		}
	}
	return 0;
}

int64_t sk_opts_value(SkOpt *const *opts, size_t n, const char *name, int64_t dflt)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(opts[i]->name, name) == 0 && opts[i]->has_value)
			return opts[i]->value;
	return dflt;
}

int sk_opts_check_filter(int fd, cr_error_t *err)
{
	socklen_t len = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &len) < 0)
		return cr_error(err, 0, "unsupported: a socket filter that cr cannot read back (SO_ATTACH_BPF: %s)",
				strerror(errno));
	if (len != 0)
		return cr_error(err, 0, "unsupported: a socket filter of %u instructions (SO_ATTACH_FILTER)", len);
	return 0;
}

void sk_proto_name(const struct fd_probe *p, char *out, size_t size)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", p->pid, p->fd);
	n = getxattr(path, "system.sockprotoname", out, size - 1);
	out[n > 0 ? n : 0] = '\0';
}

bool sk_proto_is(const struct fd_probe *p, const char *const *names)
{
	char name[32];

	if (!S_ISSOCK(p->st.st_mode) || strncmp(p->link, "socket:[", 8) != 0)
		return false;
	sk_proto_name(p, name, sizeof(name));
	for (; *names != NULL; names++)
		if (strcmp(name, *names) == 0)
			return true;
	return false;
}

int sk_check_flags(const FileEntry *fe, const char *me, cr_error_t *err)
{
	if (fe->flags & ~(uint32_t)(O_ACCMODE | O_NONBLOCK))
		return cr_error(err, 0, "%s: unsupported: socket with flags 0%o (only O_NONBLOCK is kept)", me, fe->flags);
	return 0;
}

int sk_check_netns(pid_t pid, int fd, const char *me, cr_error_t *err)
{
	cleanup_close int ns = ioctl(fd, SIOCGSKNS);
	struct stat mine, its;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (ns < 0 || fstat(ns, &its) < 0)
		return cr_error(err, errno, "%s: the socket's network namespace (SIOCGSKNS)", me);
	if (stat(path, &mine) < 0)
		return cr_error(err, errno, "%s", path);
	if (mine.st_ino != its.st_ino || mine.st_dev != its.st_dev)
		return cr_error(err, 0, "%s: unsupported: a socket of network namespace net:[%lu], not of its process's "
				"(net:[%lu]): it would come back in its process's", me, (unsigned long)its.st_ino,
				(unsigned long)mine.st_ino);
	return 0;
}
