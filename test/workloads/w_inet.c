/*
 * w_inet STATE_DIR MODE   inet and netlink sockets (t_inet.sh)
 *
 *   listen4 / listen6 / dual   a TCP listener on 127.0.0.1, on ::1
 *            (IPV6_V6ONLY), or on :: taking IPv4 too, with options set
 *            (table opts below) and O_NONBLOCK; writes STATE_DIR/port.
 *            Triggered: every option, the address, port and backlog are
 *            checked, then the listener serves one client (two for dual:
 *            IPv4 and IPv6), writing it "TOKEN <token>\n".
 *   prefork  a listener on 127.0.0.1 shared by three forked workers, each
 *            serving "W <pid> <token>\n" (the token drawn before the fork)
 *            to every client; STATE_DIR/workers lists their pids.
 *            Triggered: the parent stops the workers and checks they ran.
 *   deferred a TCP listener on 127.0.0.1 with TCP_DEFER_ACCEPT (the test's
 *            client connects and writes nothing: its connection stays
 *            being made).  Triggered: like listen4, it serves one client.
 *   reuseport  two TCP listeners on one port of 127.0.0.1 (SO_REUSEPORT).
 *            Triggered: both listen on it, and serve a client between them.
 *   udp      A bound to 127.0.0.1 (SO_RCVBUF, SO_BROADCAST, IP_TOS), B
 *            bound elsewhere and connected to A.  Triggered: B sends to A,
 *            A answers B's address, B reads it; then A echoes the next
 *            datagram from outside, prefixed with the token.
 *   udp_queued  the same, with three datagrams from B queued on A.
 *            Triggered: A's queue is drained, each datagram checked (B's
 *            next, from B's port) and their count written to
 *            STATE_DIR/queued.  udp6_queued: the same over ::1.
 *   udp_queued_mixed  two datagrams from an outside sender (C) queued on A,
 *            then A connected to B and B's three queued: all five, C's
 *            first, from their senders.
 *   udp_queued_info  udp_queued, A with IP_PKTINFO (a datagram sent again
 *            would not keep its own: the dump drops them).
 *   netlink  a NETLINK_ROUTE socket bound with the kernel's port id,
 *            RTMGRP_LINK in the bind, RTNLGRP_NSID and RTNLGRP_BRVLAN (33)
 *            joined, NETLINK_NO_ENOBUFS; an unbound NETLINK_GENERIC
 *            socket; a NETLINK_KOBJECT_UEVENT socket bound to a port id of
 *            its own choice (pid + 1000000) and group 1.  Triggered: the port id, groups and option are
 *            checked, then it waits (10 s) for an RTM_NEWNSID (the test
 *            gives a new network namespace an id).
 *   idle     sockets not in use: a UDP and a TCP socket never bound, a TCP
 *            socket bound to 127.0.0.1 and not listening.  Triggered: the
 *            first two are unbound, the third on its port; the bound one
 *            listens and the unbound TCP socket connects to it.
 *   stream   (dumped with --tcp-established) a TCP connection to its own
 *            listener, accepted, with data queued unread both ways and
 *            some unsent (the client's receive buffer full).  Triggered:
 *            both ends read what was queued, in order, talk again, and the
 *            listener accepts a new connection from a third socket.
 *   stream6  the same over ::1.
 *   stream_raw  the same, and a raw socket after it: its dump is refused
 *            (once the connection was in repair mode), and the connection
 *            must go on as if nothing happened.
 *   stream_ext PORT  (--tcp-established) a server on 127.0.0.1:PORT whose
 *            client is outside the tree: in set-up it accepts the client
 *            and answers its first line; triggered, it answers the next
 *            one: "n=<lines so far> <token>".
 *   established  a TCP connection to its own listener, accepted.
 *   pending  a TCP connection to its own listener, not accepted.
 *   raw      a raw ICMP socket.
 *   ended    a TCP connection its peer reset (state CLOSE, a peer address).
 *   flags    a UDP socket with O_APPEND (F_SETFL).
 *   filter   a UDP socket with a classic BPF filter (SO_ATTACH_FILTER).
 *   nl_other a NETLINK_NETFILTER socket.
 *   md5      a TCP listener with a TCP MD5 signature key (TCP_MD5SIG).
 *   nl_connected  a NETLINK_ROUTE socket connected to group 1.
 *   urgent   an established connection holding an urgent byte (MSG_OOB)
 *            not read yet; triggered, it reads it (still there).
 * (established and the modes after it are refused; triggered, they check
 * their sockets are still there.)
 */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#define BACKLOG 17
#define N_WORKERS 3

#ifndef IPV6_PREFER_SRC_TMP
#define IPV6_PREFER_SRC_TMP 0x0001
#define IPV6_PREFER_SRC_HOME 0x0400
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef SO_RCVMARK
#define SO_RCVMARK 75
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_RECVERR_RFC4884
#define IPV6_RECVERR_RFC4884 31
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef IPV6_AUTOFLOWLABEL
#define IPV6_AUTOFLOWLABEL 70
#endif
#ifndef IPV6_MINHOPCOUNT
#define IPV6_MINHOPCOUNT 73
#endif
#ifndef IPV6_RECVFRAGSIZE
#define IPV6_RECVFRAGSIZE 77
#endif
#ifndef IP_RECVFRAGSIZE
#define IP_RECVFRAGSIZE 25
#endif
#ifndef IP_RECVERR_RFC4884
#define IP_RECVERR_RFC4884 26
#endif

struct opt {
	const char *name;
	int level, opt, value;
	int only;   /* the family it is for; 0: both */
};

static const struct opt opts[] = {
	{ "IP_TOS", SOL_IP, IP_TOS, 0x10, .only = AF_INET },   /* sets the priority too: before SO_PRIORITY */
	{ "SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 1, 0 },
	{ "SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, 1, 0 },
	{ "SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 1, 0 },
	{ "TCP_CORK", SOL_TCP, TCP_CORK, 1, 0 },
	{ "TCP_KEEPIDLE", SOL_TCP, TCP_KEEPIDLE, 77, 0 },
	{ "TCP_KEEPINTVL", SOL_TCP, TCP_KEEPINTVL, 13, 0 },
	{ "TCP_KEEPCNT", SOL_TCP, TCP_KEEPCNT, 4, 0 },
	{ "TCP_NODELAY", SOL_TCP, TCP_NODELAY, 1, 0 },
	{ "SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 65536, 0 },    /* getsockopt: twice that */
	{ "SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 98304, 0 },
	{ "SO_MARK", SOL_SOCKET, SO_MARK, 0x42, 0 },
	{ "SO_PRIORITY", SOL_SOCKET, SO_PRIORITY, 3, 0 },
	{ "TCP_FASTOPEN", SOL_TCP, TCP_FASTOPEN, 5, 0 },
	{ "IP_FREEBIND", SOL_IP, IP_FREEBIND, 1, .only = AF_INET },
	/* Options of servers and resolvers less often set. */
	{ "SO_SELECT_ERR_QUEUE", SOL_SOCKET, SO_SELECT_ERR_QUEUE, 1, 0 },
	{ "SO_INCOMING_CPU", SOL_SOCKET, SO_INCOMING_CPU, 1, 0 },
	{ "SO_PREFER_BUSY_POLL", SOL_SOCKET, SO_PREFER_BUSY_POLL, 1, 0 },
	{ "SO_RCVMARK", SOL_SOCKET, SO_RCVMARK, 1, 0 },
	{ "SO_TXREHASH", SOL_SOCKET, SO_TXREHASH, 0, 0 },
	{ "TCP_SAVE_SYN", SOL_TCP, TCP_SAVE_SYN, 1, 0 },
	{ "TCP_TX_DELAY", SOL_TCP, TCP_TX_DELAY, 1000, 0 },
	{ "IP_MINTTL", SOL_IP, IP_MINTTL, 5, .only = AF_INET },
	{ "IP_RECVOPTS", SOL_IP, IP_RECVOPTS, 1, .only = AF_INET },
	{ "IP_RETOPTS", SOL_IP, IP_RETOPTS, 1, .only = AF_INET },
	{ "IP_CHECKSUM", SOL_IP, IP_CHECKSUM, 1, .only = AF_INET },
	{ "IP_RECVERR_RFC4884", SOL_IP, IP_RECVERR_RFC4884, 1, .only = AF_INET },
	{ "IP_LOCAL_PORT_RANGE", SOL_IP, IP_LOCAL_PORT_RANGE, (int)((40100u << 16) | 40000u), .only = AF_INET },
	{ "IPV6_DONTFRAG", SOL_IPV6, IPV6_DONTFRAG, 1, .only = AF_INET6 },
	{ "IPV6_RECVPATHMTU", SOL_IPV6, IPV6_RECVPATHMTU, 1, .only = AF_INET6 },
	{ "IPV6_MINHOPCOUNT", SOL_IPV6, IPV6_MINHOPCOUNT, 5, .only = AF_INET6 },
	{ "IPV6_RECVFRAGSIZE", SOL_IPV6, IPV6_RECVFRAGSIZE, 1, .only = AF_INET6 },
	{ "IPV6_RECVRTHDR", SOL_IPV6, IPV6_RECVRTHDR, 1, .only = AF_INET6 },
	{ "IPV6_RECVHOPOPTS", SOL_IPV6, IPV6_RECVHOPOPTS, 1, .only = AF_INET6 },
	{ "IPV6_RECVDSTOPTS", SOL_IPV6, IPV6_RECVDSTOPTS, 1, .only = AF_INET6 },
	{ "IPV6_RECVERR_RFC4884", SOL_IPV6, IPV6_RECVERR_RFC4884, 1, .only = AF_INET6 },
	{ "IPV6_FLOWINFO_SEND", SOL_IPV6, IPV6_FLOWINFO_SEND, 1, .only = AF_INET6 },
	{ "IPV6_AUTOFLOWLABEL", SOL_IPV6, IPV6_AUTOFLOWLABEL, 0, .only = AF_INET6 },
	{ "IPV6_RECVORIGDSTADDR", SOL_IPV6, IPV6_RECVORIGDSTADDR, 1, .only = AF_INET6 },
	{ "IPV6_ADDR_PREFERENCES", SOL_IPV6, IPV6_ADDR_PREFERENCES, IPV6_PREFER_SRC_TMP | IPV6_PREFER_SRC_HOME,
	  .only = AF_INET6 },
};

static int lsk = -1, family;
static int udp_a = -1, udp_b = -1, nl = -1, gen = -1, uev = -1, cli = -1, acc = -1;
static char **argv_;
static struct sockaddr_storage lname, b_name;
static uint32_t portid;
static pid_t workers[N_WORKERS];

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static socklen_t loopback(int fam, struct sockaddr_storage *ss, bool any)
{
	memset(ss, 0, sizeof(*ss));
	if (fam == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_addr = any ? in6addr_any : in6addr_loopback;
	return sizeof(*a6);
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int make_listener(int fam, bool any, int v6only, bool with_opts)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(fam, &ss, any);
	int fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct linger l = { 1, 5 };

	must(fd >= 0, "socket");
	for (size_t i = 0; with_opts && i < sizeof(opts) / sizeof(opts[0]); i++)
		if (opts[i].only == 0 || opts[i].only == fam)
			wl_setsockopt_int(fd, opts[i].level, opts[i].opt, opts[i].value, opts[i].name);
	if (with_opts)
		must(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0, "SO_LINGER");
	if (fam == AF_INET6)
		wl_setsockopt_int(fd, SOL_IPV6, IPV6_V6ONLY, v6only, "IPV6_V6ONLY");
	if (with_opts && fam == AF_INET)
		must(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 2) == 0, "SO_BINDTODEVICE");
	must(bind(fd, (struct sockaddr *)&ss, len) == 0, "bind");
	must(listen(fd, BACKLOG) == 0, "listen");
	len = sizeof(lname);
	must(getsockname(fd, (struct sockaddr *)&lname, &len) == 0, "getsockname");
	wl_write_file("port", "%u\n", port_of(&lname));
	return fd;
}

static void check_opts(int fd, int fam)
{
	struct linger l = { 0, 0 };
	socklen_t len = sizeof(l);
	char dev[16] = "";

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		int want = opts[i].value, got;

		if (opts[i].only != 0 && opts[i].only != fam)
			continue;
		if (opts[i].level == SOL_SOCKET && (opts[i].opt == SO_SNDBUF || opts[i].opt == SO_RCVBUF))
			want *= 2;
		got = wl_getsockopt_int(fd, opts[i].level, opts[i].opt);
		wl_check(got == want, "%s is %d, not %d", opts[i].name, got, want);
	}
	wl_check(getsockopt(fd, SOL_SOCKET, SO_LINGER, &l, &len) == 0 && l.l_onoff == 1 && l.l_linger == 5,
		 "SO_LINGER is %d/%d", l.l_onoff, l.l_linger);
	len = sizeof(dev);
	if (fam == AF_INET)
		wl_check(getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &len) == 0 && strcmp(dev, "lo") == 0,
			 "SO_BINDTODEVICE is '%s'", dev);
}

static void check_listener(int fd, int v6only)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	int fl = fcntl(fd, F_GETFL);

	wl_check(getsockname(fd, (struct sockaddr *)&now, &len) == 0 && memcmp(&now, &lname, len) == 0,
		 "the listener's address changed (port %u, was %u)", port_of(&now), port_of(&lname));
	wl_check(wl_getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1, "not listening");
	wl_check(fl >= 0 && (fl & O_NONBLOCK), "O_NONBLOCK lost");
	wl_check((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0, "close-on-exec set");
	if (family == AF_INET6)
		wl_check(wl_getsockopt_int(fd, SOL_IPV6, IPV6_V6ONLY) == v6only, "IPV6_V6ONLY is %d",
			 wl_getsockopt_int(fd, SOL_IPV6, IPV6_V6ONLY));
}

/* Accepts one client (10 s) and writes it the token. */
static void serve_one(int fd, const char *prefix)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char line[64];
	int c;

	if (!wl_check(poll(&p, 1, 10000) == 1, "no client within 10 s"))
		return;
	c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (!wl_check(c >= 0, "accept: %s", strerror(errno)))
		return;
	snprintf(line, sizeof(line), "%s %016llx\n", prefix, (unsigned long long)wl_token());
	wl_check(write(c, line, strlen(line)) == (ssize_t)strlen(line), "write to the client");
	close(c);
}

static void setup_deferred(void)
{
	family = AF_INET;
	lsk = make_listener(AF_INET, false, 0, false);
	wl_setsockopt_int(lsk, SOL_TCP, TCP_DEFER_ACCEPT, 30, "TCP_DEFER_ACCEPT");
}

static void check_deferred(void)
{
	wl_write_file("serving", "1\n");
	serve_one(lsk, "TOKEN");
}

static void setup_listen4(void) { family = AF_INET; lsk = make_listener(AF_INET, false, 0, true); }
static void setup_listen6(void) { family = AF_INET6; lsk = make_listener(AF_INET6, false, 1, true); }
static void setup_dual(void) { family = AF_INET6; lsk = make_listener(AF_INET6, true, 0, true); }

static void check_listen(void)
{
	check_opts(lsk, family);
	check_listener(lsk, strcmp(argv_[2], "listen6") == 0);
	wl_write_file("serving", "1\n");
	serve_one(lsk, "TOKEN");
	if (strcmp(argv_[2], "dual") == 0)
		serve_one(lsk, "TOKEN");
}

/* ---- prefork */

static void worker(void)
{
	char line[64];

	snprintf(line, sizeof(line), "W %d %016llx\n", getpid(), (unsigned long long)wl_token());
	for (;;) {
		struct pollfd p = { .fd = lsk, .events = POLLIN };
		int c;

		poll(&p, 1, -1);
		c = accept(lsk, NULL, NULL);
		if (c < 0)
			continue;
		if (write(c, line, strlen(line)) < 0)
			_exit(3);
		close(c);
	}
}

static void setup_prefork(void)
{
	char list[128] = "";

	family = AF_INET;
	lsk = make_listener(AF_INET, false, 0, false);
	for (int i = 0; i < N_WORKERS; i++) {
		workers[i] = fork();
		must(workers[i] >= 0, "fork");
		if (workers[i] == 0)
			worker();
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%d ", workers[i]);
	}
	wl_write_file("workers", "%s\n", list);
}

static void check_prefork(void)
{
	check_listener(lsk, 0);
	for (int i = 0; i < N_WORKERS; i++) {
		int st = 0;

		wl_check(kill(workers[i], SIGTERM) == 0, "worker %d is gone", workers[i]);
		wl_check(waitpid(workers[i], &st, 0) == workers[i] && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
			 "worker %d did not run until stopped (status 0x%x)", workers[i], st);
	}
}

/* ---- reuseport */

static int lsk2 = -1;

static int reuseport_listener(unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, &ss, false);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	must(fd >= 0, "socket");
	wl_setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	must(bind(fd, (struct sockaddr *)&ss, len) == 0 && listen(fd, BACKLOG) == 0, "bind and listen");
	return fd;
}

static void setup_reuseport(void)
{
	socklen_t len = sizeof(lname);

	family = AF_INET;
	lsk = reuseport_listener(0);
	must(getsockname(lsk, (struct sockaddr *)&lname, &len) == 0, "getsockname");
	lsk2 = reuseport_listener(port_of(&lname));
	wl_write_file("port", "%u\n", port_of(&lname));
}

static void check_reuseport(void)
{
	struct pollfd p[2] = { { .fd = lsk, .events = POLLIN }, { .fd = lsk2, .events = POLLIN } };
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	check_listener(lsk, 0);
	wl_check(getsockname(lsk2, (struct sockaddr *)&ss, &len) == 0 && port_of(&ss) == port_of(&lname),
		 "the second listener is on port %u", port_of(&ss));
	wl_check(wl_getsockopt_int(lsk, SOL_SOCKET, SO_REUSEPORT) == 1 &&
		 wl_getsockopt_int(lsk2, SOL_SOCKET, SO_REUSEPORT) == 1,
		 "SO_REUSEPORT lost");
	wl_check(wl_getsockopt_int(lsk2, SOL_SOCKET, SO_ACCEPTCONN) == 1, "the second one does not listen");
	wl_write_file("serving", "1\n");
	if (wl_check(poll(p, 2, 10000) >= 1, "no client within 10 s"))
		serve_one(p[0].revents ? lsk : lsk2, "TOKEN");
}

/* ---- udp */

static void setup_udp_common(int queued)
{
	struct sockaddr_storage a;
	socklen_t len;

	family = family ? family : AF_INET;
	len = loopback(family, &a, false);
	udp_a = socket(family, SOCK_DGRAM, 0);
	udp_b = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	must(udp_a >= 0 && udp_b >= 0, "socket");
	wl_setsockopt_int(udp_a, SOL_SOCKET, SO_RCVBUF, 50000, "SO_RCVBUF");
	wl_setsockopt_int(udp_a, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
	if (family == AF_INET)
		wl_setsockopt_int(udp_a, SOL_IP, IP_TOS, 0x08, "IP_TOS");
	must(bind(udp_a, (struct sockaddr *)&a, len) == 0, "bind A");
	len = sizeof(lname);
	must(getsockname(udp_a, (struct sockaddr *)&lname, &len) == 0, "getsockname");
	must(connect(udp_b, (struct sockaddr *)&lname, len) == 0, "connect B");
	len = sizeof(b_name);
	must(getsockname(udp_b, (struct sockaddr *)&b_name, &len) == 0, "getsockname B");
	for (int i = 0; i < queued; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "queued-%d", i);

		must(send(udp_b, msg, (size_t)n, 0) == n, "send");
	}
	wl_write_file("port", "%u\n", port_of(&lname));
}

static void setup_udp(void) { setup_udp_common(0); }
static void setup_udp_queued(void) { setup_udp_common(3); }
static void setup_udp6_queued(void) { family = AF_INET6; setup_udp_common(3); }

static struct sockaddr_storage c_name;
static void check_udp_queued(void);

static void setup_udp_queued_mixed(void)
{
	socklen_t len;
	int c = socket(AF_INET, SOCK_DGRAM, 0);

	setup_udp_common(0);
	must(c >= 0 && sendto(c, "other-0", 7, 0, (struct sockaddr *)&lname, sizeof(struct sockaddr_in)) == 7 &&
	     sendto(c, "other-1", 7, 0, (struct sockaddr *)&lname, sizeof(struct sockaddr_in)) == 7, "C sends");
	len = sizeof(c_name);
	must(getsockname(c, (struct sockaddr *)&c_name, &len) == 0, "getsockname C");
	close(c);   /* its port is free at restore */
	must(connect(udp_a, (struct sockaddr *)&b_name, sizeof(struct sockaddr_in)) == 0, "A connects to B");
	for (int i = 0; i < 3; i++) {
		char msg[16];
		int n = snprintf(msg, sizeof(msg), "queued-%d", i);

		must(send(udp_b, msg, (size_t)n, 0) == n, "send");
	}
}

static void check_udp_queued_mixed(void)
{
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	char buf[64];
	ssize_t got;

	for (int i = 0; i < 2; i++) {
		got = recvfrom(udp_a, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
		buf[got > 0 ? got : 0] = '\0';
		wl_check(got == 7 && buf[6] == '0' + i && port_of(&from) == port_of(&c_name),
			 "datagram %d from C is '%s' from port %u", i, buf, port_of(&from));
		len = sizeof(from);
	}
	check_udp_queued();
}

static void setup_udp_queued_info(void)
{
	setup_udp_common(3);
	wl_setsockopt_int(udp_a, SOL_IP, IP_PKTINFO, 1, "IP_PKTINFO");
}

static void check_udp(void)
{
	struct sockaddr_storage from, now;
	socklen_t len = sizeof(now);
	char buf[128];
	ssize_t n;

	wl_check(wl_getsockopt_int(udp_a, SOL_SOCKET, SO_RCVBUF) == 100000, "SO_RCVBUF is %d",
		 wl_getsockopt_int(udp_a, SOL_SOCKET, SO_RCVBUF));
	wl_check(wl_getsockopt_int(udp_a, SOL_SOCKET, SO_BROADCAST) == 1, "SO_BROADCAST lost");
	wl_check(wl_getsockopt_int(udp_a, SOL_IP, IP_TOS) == 0x08, "IP_TOS is %d", wl_getsockopt_int(udp_a, SOL_IP, IP_TOS));
	wl_check(fcntl(udp_b, F_GETFL) & O_NONBLOCK, "B lost O_NONBLOCK");
	wl_check(getsockname(udp_b, (struct sockaddr *)&now, &len) == 0 && memcmp(&now, &b_name, len) == 0,
		 "B's address changed");
	wl_check(send(udp_b, "ping", 4, 0) == 4, "B send: %s", strerror(errno));
	len = sizeof(from);
	n = recvfrom(udp_a, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);
	wl_check(n == 4 && memcmp(buf, "ping", 4) == 0 && port_of(&from) == port_of(&b_name), "A got %zd bytes from "
		 "port %u", n, port_of(&from));
	wl_check(sendto(udp_a, "pong", 4, 0, (struct sockaddr *)&from, len) == 4, "A sendto");
	wl_check(wl_readable(udp_b, 2000) && recv(udp_b, buf, sizeof(buf), 0) == 4, "B got no answer");
	wl_write_file("serving", "1\n");
	if (!wl_check(wl_readable(udp_a, 10000), "no datagram from outside within 10 s"))
		return;
	len = sizeof(from);
	n = recvfrom(udp_a, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &len);
	if (n > 0) {
		char out[200];
		int m = snprintf(out, sizeof(out), "%016llx %.*s", (unsigned long long)wl_token(), (int)n, buf);

		wl_check(sendto(udp_a, out, (size_t)m, 0, (struct sockaddr *)&from, len) == m, "echo");
	}
}

/* Writes STATE_DIR/queued: how many datagrams were queued on A; each must
 * be B's next, from B's address. */
static void check_udp_queued(void)
{
	char buf[64], want[24];
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	ssize_t got;
	int n = 0;

	while ((got = recvfrom(udp_a, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &len)) > 0) {
		buf[got] = '\0';
		snprintf(want, sizeof(want), "queued-%d", n);
		wl_check(strcmp(buf, want) == 0, "datagram %d is '%s'", n, buf);
		wl_check(port_of(&from) == port_of(&b_name) && from.ss_family == b_name.ss_family,
			 "datagram %d from port %u, not B's %u", n, port_of(&from), port_of(&b_name));
		n++;
		len = sizeof(from);
	}
	wl_write_file("queued", "%d\n", n);
	wl_check(send(udp_b, "ping", 4, 0) == 4 && wl_readable(udp_a, 2000), "A does not receive from B");
}

/* ---- netlink */

static void setup_netlink(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	socklen_t len = sizeof(a);
	char buf[8192];

	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
	gen = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_GENERIC);
	must(nl >= 0 && gen >= 0, "socket");
	must(bind(nl, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	uev = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_KOBJECT_UEVENT);
	a = (struct sockaddr_nl){ .nl_family = AF_NETLINK, .nl_pid = (uint32_t)getpid() + 1000000, .nl_groups = 1 };
	must(uev >= 0 && bind(uev, (struct sockaddr *)&a, sizeof(a)) == 0, "bind the uevent socket");
	wl_setsockopt_int(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NSID, "join NSID");
	wl_setsockopt_int(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, 33, "join 33");
	wl_setsockopt_int(nl, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "NO_ENOBUFS");
	must(getsockname(nl, (struct sockaddr *)&a, &len) == 0, "getsockname");
	portid = a.nl_pid;
	while (recv(nl, buf, sizeof(buf), 0) > 0)
		;
}

static void check_netlink(void)
{
	struct sockaddr_nl a = { 0 };
	socklen_t len = sizeof(a);
	uint32_t groups[2] = { 0, 0 };
	socklen_t glen = sizeof(groups);
	char buf[8192];
	bool seen = false;

	wl_check(getsockname(nl, (struct sockaddr *)&a, &len) == 0 && a.nl_pid == portid, "port id %u, was %u",
		 a.nl_pid, portid);
	wl_check(getsockopt(nl, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &glen) == 0 &&
		 groups[0] == ((1u << (RTNLGRP_LINK - 1)) | (1u << (RTNLGRP_NSID - 1))) && groups[1] == 1u,
		 "groups 0x%x 0x%x", groups[0], groups[1]);
	wl_check(wl_getsockopt_int(nl, SOL_NETLINK, NETLINK_NO_ENOBUFS) == 1, "NETLINK_NO_ENOBUFS lost");
	wl_check(wl_getsockopt_int(gen, SOL_SOCKET, SO_PROTOCOL) == NETLINK_GENERIC, "the generic socket");
	len = sizeof(a);
	glen = sizeof(groups);
	wl_check(getsockname(uev, (struct sockaddr *)&a, &len) == 0 && a.nl_pid == (uint32_t)getpid() + 1000000,
		 "the uevent socket's port id is %u", a.nl_pid);
	wl_check(getsockopt(uev, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, groups, &glen) == 0 && groups[0] == 1,
		 "the uevent socket's groups 0x%x", groups[0]);
	wl_write_file("serving", "1\n");
	for (int i = 0; i < 100 && !seen; i++) {
		ssize_t n;

		if (!wl_readable(nl, 100))
			continue;
		n = recv(nl, buf, sizeof(buf), 0);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(h, (unsigned)n);
		     h = NLMSG_NEXT(h, n))
			seen |= h->nlmsg_type == RTM_NEWNSID;
	}
	wl_check(seen, "no RTM_NEWNSID within 10 s");
}

/* ---- refused */

/* A listener on the loopback of family (AF_INET when unset), a client
 * connected to it and, if accepted, its server end. */
static void connect_self(bool accepted)
{
	struct sockaddr_storage ss;
	socklen_t len;

	family = family ? family : AF_INET;
	len = loopback(family, &ss, false);
	lsk = socket(family, SOCK_STREAM, 0);
	must(lsk >= 0 && bind(lsk, (struct sockaddr *)&ss, len) == 0 && listen(lsk, 4) == 0, "listen");
	len = sizeof(lname);
	must(getsockname(lsk, (struct sockaddr *)&lname, &len) == 0, "getsockname");
	cli = socket(family, SOCK_STREAM, 0);
	must(cli >= 0 && connect(cli, (struct sockaddr *)&lname, len) == 0, "connect");
	if (accepted)
		must((acc = accept(lsk, NULL, NULL)) >= 0, "accept");
}

static void setup_established(void) { connect_self(true); }
static void setup_pending(void) { connect_self(false); }

static void check_connected(void)
{
	char c = 0;

	if (acc < 0)
		acc = accept(lsk, NULL, NULL);
	wl_check(acc >= 0 && write(cli, "x", 1) == 1 && read(acc, &c, 1) == 1 && c == 'x', "the connection");
}

static void setup_urgent(void)
{
	struct pollfd p;

	connect_self(true);
	must(send(cli, "!", 1, MSG_OOB) == 1, "send MSG_OOB");
	p = (struct pollfd){ .fd = acc, .events = POLLPRI };
	must(poll(&p, 1, 5000) == 1 && (p.revents & POLLPRI), "the urgent byte arrives");
}

static void check_urgent(void)
{
	char c = 0;

	wl_check(recv(acc, &c, 1, MSG_OOB) == 1 && c == '!', "the urgent byte: %s",
		 c ? "another byte" : strerror(errno));
}

static void setup_raw(void)
{
	cli = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	must(cli >= 0, "raw socket");
}

static void check_raw(void)
{
	wl_check(wl_getsockopt_int(cli, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "the raw socket");
}

static void setup_ended(void)
{
	struct linger l = { 1, 0 };

	connect_self(true);
	must(setsockopt(acc, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) == 0, "SO_LINGER");
	close(acc);   /* a reset */
	acc = -1;
	for (int i = 0; i < 100; i++) {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		if (getsockopt(cli, SOL_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == 7 /* TCP_CLOSE */)
			return;
		usleep(10000);
	}
	wl_fatal("the connection was not reset");
}

static void setup_flags(void)
{
	cli = socket(AF_INET, SOCK_DGRAM, 0);
	must(cli >= 0 && fcntl(cli, F_SETFL, O_APPEND) == 0, "O_APPEND");
}

static void setup_filter(void)
{
	struct sock_filter code[] = { { BPF_RET | BPF_K, 0, 0, 0xffff } };
	struct sock_fprog prog = { 1, code };

	cli = socket(AF_INET, SOCK_DGRAM, 0);
	must(cli >= 0 && setsockopt(cli, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) == 0, "filter");
}

static void setup_md5(void)
{
	struct tcp_md5sig m = { .tcpm_keylen = 6 };
	struct sockaddr_in *peer = (struct sockaddr_in *)&m.tcpm_addr;

	cli = make_listener(AF_INET, false, 0, false);
	peer->sin_family = AF_INET;
	peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memcpy(m.tcpm_key, "secret", 6);
	must(setsockopt(cli, SOL_TCP, TCP_MD5SIG, &m, sizeof(m)) == 0, "TCP_MD5SIG");
}

static void setup_nl_other(void)
{
	cli = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
	must(cli >= 0, "netfilter socket");
}

static void setup_nl_connected(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 };

	cli = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	must(cli >= 0 && connect(cli, (struct sockaddr *)&a, sizeof(a)) == 0, "connect to group 1");
}

static int idle_udp = -1, idle_tcp = -1, idle_bound = -1;

static void setup_idle(void)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(AF_INET, &ss, false);

	idle_udp = socket(AF_INET, SOCK_DGRAM, 0);
	idle_tcp = socket(AF_INET6, SOCK_STREAM, 0);
	idle_bound = socket(AF_INET, SOCK_STREAM, 0);
	must(idle_udp >= 0 && idle_tcp >= 0 && idle_bound >= 0, "socket");
	wl_setsockopt_int(idle_tcp, SOL_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	wl_setsockopt_int(idle_bound, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	must(bind(idle_bound, (struct sockaddr *)&ss, len) == 0, "bind");
	len = sizeof(lname);
	must(getsockname(idle_bound, (struct sockaddr *)&lname, &len) == 0, "getsockname");
}

static void check_idle(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port_of(&lname)) };
	socklen_t len = sizeof(ss);
	int c;

	wl_check(getsockname(idle_udp, (struct sockaddr *)&ss, &len) == 0 && port_of(&ss) == 0, "the UDP socket is bound");
	len = sizeof(ss);
	wl_check(getsockname(idle_tcp, (struct sockaddr *)&ss, &len) == 0 && port_of(&ss) == 0 &&
		 ss.ss_family == AF_INET6, "the TCP socket is bound or not IPv6");
	wl_check(wl_getsockopt_int(idle_tcp, SOL_TCP, TCP_NODELAY) == 1, "TCP_NODELAY lost");
	len = sizeof(ss);
	wl_check(getsockname(idle_bound, (struct sockaddr *)&ss, &len) == 0 && port_of(&ss) == port_of(&lname),
		 "the bound TCP socket is on port %u, not %u", port_of(&ss), port_of(&lname));
	wl_check(wl_getsockopt_int(idle_bound, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost");
	if (!wl_check(listen(idle_bound, 2) == 0, "listen: %s", strerror(errno)))
		return;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &to.sin6_addr);
	wl_check(connect(idle_tcp, (struct sockaddr *)&to, sizeof(to)) == 0, "connect: %s", strerror(errno));
	c = accept(idle_bound, NULL, NULL);
	wl_check(c >= 0 && write(idle_tcp, "k", 1) == 1 && read(c, &to, 1) == 1, "the new connection");
}

/* ---- established connections (--tcp-established) */

#define STREAM_BIG (1u << 20)

static size_t unsent;   /* bytes the server wrote that the client has not read */

static void setup_stream(void);
static void check_stream(void);

static void setup_stream_raw(void)
{
	static int raw;

	setup_stream();
	raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	must(raw >= 0, "raw socket");
	wl_setsockopt_int(acc, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
}

static void check_stream_raw(void)
{
	wl_check(wl_getsockopt_int(acc, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost on the connection");
	check_stream();
}

static void setup_stream(void)
{
	static char big[STREAM_BIG];
	ssize_t n;

	connect_self(true);
	wl_setsockopt_int(cli, SOL_SOCKET, SO_RCVBUF, 4096, "SO_RCVBUF");
	must(write(cli, "abc", 3) == 3, "client write");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 4096);
	wl_setsockopt_int(acc, SOL_SOCKET, SO_SNDBUF, 262144, "SO_SNDBUF");
	n = send(acc, big, sizeof(big), MSG_DONTWAIT);   /* fills the client's window, the rest stays queued */
	must(n > 0, "server write");
	unsent = (size_t)n;
	wl_write_file("unsent", "%zu\n", unsent);
}

static void setup_stream6(void)
{
	family = AF_INET6;
	setup_stream();
}

/* Reads exactly len bytes (10 s at most). */
static bool read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len && wl_readable(fd, 10000)) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return got == len;
}

static void check_stream(void)
{
	static char big[STREAM_BIG];
	char buf[8] = "";
	size_t bad = unsent;
	int c2, a2;

	wl_check(read_all(acc, buf, 3) && memcmp(buf, "abc", 3) == 0, "the server lost the client's bytes");
	if (wl_check(read_all(cli, big, unsent), "the client did not get all %zu bytes", unsent))
		for (bad = 0; bad < unsent && big[bad] == (char)(bad * 7 + bad / 4096); bad++)
			;
	wl_check(bad == unsent, "the client's bytes differ at %zu of %zu", bad, unsent);
	wl_check(write(cli, "d", 1) == 1 && read_all(acc, buf, 1) && buf[0] == 'd', "client to server after restore");
	wl_check(write(acc, "e", 1) == 1 && read_all(cli, buf, 1) && buf[0] == 'e', "server to client after restore");
	c2 = socket(family, SOCK_STREAM, 0);
	wl_check(c2 >= 0 &&
		 connect(c2, (struct sockaddr *)&lname,
			 family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0 &&
		 (a2 = accept(lsk, NULL, NULL)) >= 0, "a new connection to the listener");
}

static int ext_conn = -1, ext_lines;
static FILE *ext_in;

/* Answers the next line of the outside client. */
static bool answer_ext(void)
{
	char line[64], out[64];
	int n;

	if (!wl_readable(ext_conn, 10000) || fgets(line, sizeof(line), ext_in) == NULL)
		return false;
	n = snprintf(out, sizeof(out), "n=%d %016llx\n", ++ext_lines, (unsigned long long)wl_token());
	return write(ext_conn, out, (size_t)n) == n;
}

static void setup_stream_ext(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct pollfd p;

	if (argv_[3] == NULL)
		wl_fatal("stream_ext needs a port");
	a.sin_port = htons((uint16_t)atoi(argv_[3]));
	lsk = socket(AF_INET, SOCK_STREAM, 0);
	wl_setsockopt_int(lsk, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	must(lsk >= 0 && bind(lsk, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lsk, 4) == 0, "listen");
	p = (struct pollfd){ .fd = lsk, .events = POLLIN };
	must(poll(&p, 1, 10000) == 1, "no client within 10 s");
	ext_conn = accept(lsk, NULL, NULL);
	must(ext_conn >= 0, "accept");
	ext_in = fdopen(dup(ext_conn), "r");
	setvbuf(ext_in, NULL, _IONBF, 0);
	must(answer_ext(), "the first line");
}

static void check_stream_ext(void)
{
	wl_check(answer_ext(), "no second line from the client");
}

static void check_still_there(void)
{
	wl_check(wl_getsockopt_int(cli, SOL_SOCKET, SO_TYPE) != -12345, "the socket is gone");
}

int main(int argc, char **argv)
{
	static const struct wl_mode modes[] = {
		{ "listen4", setup_listen4, check_listen }, { "listen6", setup_listen6, check_listen },
		{ "dual", setup_dual, check_listen }, { "deferred", setup_deferred, check_deferred }, { "prefork", setup_prefork, check_prefork },
		{ "reuseport", setup_reuseport, check_reuseport }, { "udp", setup_udp, check_udp },
		{ "udp6_queued", setup_udp6_queued, check_udp_queued },
		{ "udp_queued_mixed", setup_udp_queued_mixed, check_udp_queued_mixed },
		{ "udp_queued_info", setup_udp_queued_info, check_udp_queued }, { "udp_queued", setup_udp_queued, check_udp_queued },
		{ "netlink", setup_netlink, check_netlink }, { "established", setup_established, check_connected },
		{ "pending", setup_pending, check_connected }, { "raw", setup_raw, check_raw },
		{ "ended", setup_ended, check_still_there }, { "flags", setup_flags, check_still_there },
		{ "filter", setup_filter, check_still_there }, { "md5", setup_md5, check_still_there }, { "nl_other", setup_nl_other, check_still_there },
		{ "nl_connected", setup_nl_connected, check_still_there }, { "urgent", setup_urgent, check_urgent },
		{ "stream", setup_stream, check_stream }, { "stream_raw", setup_stream_raw, check_stream_raw }, { "stream6", setup_stream6, check_stream }, { "stream_ext", setup_stream_ext, check_stream_ext }, { "idle", setup_idle, check_idle },
	};

	argv_ = argv;
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_inet STATE_DIR MODE");
}
