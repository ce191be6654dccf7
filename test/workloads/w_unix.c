/*
 * w_unix STATE_DIR
 * w_unix STATE_DIR serve            (a listener outside the dumped process)
 * w_unix STATE_DIR connect PATH     (a client of it: its dump is refused)
 *
 * Holds unix sockets with queued data and checks, when triggered, that
 * every one is as it was:
 *
 *   (a) stream    a socketpair with bytes queued both ways (several writes,
 *                 one of 70000 bytes); SO_PEEK_OFF left at 3 on one end; one
 *                 end O_NONBLOCK: type, flags, peek offset, the bytes, and
 *                 the pair still talks.
 *   (b) dgram     a socketpair with datagrams queued both ways, one of them
 *                 empty: each read returns one datagram, boundaries kept;
 *                 SO_RCVBUF raised and SO_PASSCRED set on one end.
 *   (c) seqpacket a socketpair with two records queued: one per read.
 *   (d) listener  a stream socket bound at STATE_DIR/listen.sock (mode 0640)
 *                 and listening, with one connection accepted and data queued
 *                 both ways on it: the names (getsockname, getpeername), the
 *                 socket file and its mode, the data; then a new client
 *                 connects by the path and is accepted.
 *   (e) abstract  a listening socket bound to an abstract name: a new client
 *                 connects to it and is accepted.
 *   (f) named dgram  a datagram socket bound at STATE_DIR/dgram.sock holding
 *                 datagrams from an unnamed client connected to it and from
 *                 a client bound to an abstract name (sendto): order,
 *                 boundaries and each sender's address; the client is still
 *                 connected to the path.
 *   (g) shutdown  a stream pair, one end shut down for writing after
 *                 writing: the other reads the data, then end-of-file, and
 *                 can still write back.
 *   (h) orphans   a stream and a datagram socket whose peers were closed with
 *                 data queued: the data, then end-of-file (stream).
 *
 * Sabotage (file "sabotage"): stream, dgram, peek, name, sender — breaks
 * that property just before the checks, which must then fail.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BIG_WRITE 70000

static int stream[2], dgram[2], seqp[2], listener, served, client, abstract_l, ddsrv, dcl1, dcl2, shut[2];
static int orphan_stream, orphan_dgram;
static struct sockaddr_un listen_addr, abstract_addr, dgram_addr, dcl2_addr;
static socklen_t abstract_len, dcl2_len;
static int rcvbuf_before;

static unsigned char big[BIG_WRITE];
static const char *const a_to_b[] = { "abc", "defg" };   /* then big */
static const char b_to_a[] = "from b to a";
static const char *const dgrams_ab[] = { "first", "", "the third datagram" };
static const char *const dgrams_ba[] = { "x", "yy" };
static const char *const records[] = { "record one", "2" };
static const char to_server[] = "hello server", to_client[] = "hello client";
static const char *const to_dgram_srv[] = { "from c1 #1", "from c2", "from c1 #2" };
static const char last_words[] = "last words", orphan_words[] = "orphaned data";

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void send_exact(int fd, const void *buf, size_t len, const char *what)
{
	must(send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, what);
}

static socklen_t path_addr(struct sockaddr_un *a, const char *name)
{
	char path[PATH_MAX];

	wl_path(path, sizeof(path), name);
	return wl_unix_addr(a, path);
}

static socklen_t abstract_name(struct sockaddr_un *a, const char *what)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "wl-unix-%s-%d-%llx", what, (int)getpid(),
		     (unsigned long long)wl_token());
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int listening(struct sockaddr_un *a, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	must(fd >= 0 && bind(fd, (struct sockaddr *)a, len) == 0 && listen(fd, 4) == 0, "listen");
	return fd;
}

/* ---- set-up --------------------------------------------------------------- */

static void build_pairs(void)
{
	int peek_off = 0, rcvbuf = 65536, on = 1;
	char peeked[3];

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, stream) == 0, "socketpair (a)");
	for (size_t i = 0; i < 2; i++)
		send_exact(stream[0], a_to_b[i], strlen(a_to_b[i]), "send (a)");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7 + 3);
	send_exact(stream[0], big, sizeof(big), "send big (a)");
	send_exact(stream[1], b_to_a, sizeof(b_to_a), "send (a)");
	must(fcntl(stream[1], F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK (a)");
	must(setsockopt(stream[1], SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) == 0, "SO_PEEK_OFF");
	must(recv(stream[1], peeked, 3, MSG_PEEK) == 3, "peek (a)");

	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram) == 0, "socketpair (b)");
	must(setsockopt(dgram[1], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) == 0, "SO_RCVBUF");
	must(setsockopt(dgram[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, "SO_PASSCRED");
	socklen_t len = sizeof(rcvbuf_before);
	must(getsockopt(dgram[1], SOL_SOCKET, SO_RCVBUF, &rcvbuf_before, &len) == 0, "SO_RCVBUF");
	for (size_t i = 0; i < 3; i++)
		send_exact(dgram[0], dgrams_ab[i], strlen(dgrams_ab[i]), "send (b)");
	for (size_t i = 0; i < 2; i++)
		send_exact(dgram[1], dgrams_ba[i], strlen(dgrams_ba[i]), "send (b)");

	must(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seqp) == 0, "socketpair (c)");
	for (size_t i = 0; i < 2; i++)
		send_exact(seqp[0], records[i], strlen(records[i]), "send (c)");
}

static void build_listeners(void)
{
	socklen_t len = path_addr(&listen_addr, "listen.sock");

	listener = listening(&listen_addr, len);
	must(chmod(listen_addr.sun_path, 0640) == 0, "chmod (d)");
	client = socket(AF_UNIX, SOCK_STREAM, 0);
	must(client >= 0 && connect(client, (struct sockaddr *)&listen_addr, len) == 0, "connect (d)");
	served = accept(listener, NULL, NULL);
	must(served >= 0, "accept (d)");
	send_exact(client, to_server, sizeof(to_server), "send (d)");
	send_exact(served, to_client, sizeof(to_client), "send (d)");

	abstract_len = abstract_name(&abstract_addr, "listen");
	abstract_l = listening(&abstract_addr, abstract_len);
}

static void build_named_dgram(void)
{
	socklen_t len = path_addr(&dgram_addr, "dgram.sock");

	ddsrv = socket(AF_UNIX, SOCK_DGRAM, 0);
	must(ddsrv >= 0 && bind(ddsrv, (struct sockaddr *)&dgram_addr, len) == 0, "bind (f)");
	dcl1 = socket(AF_UNIX, SOCK_DGRAM, 0);
	must(dcl1 >= 0 && connect(dcl1, (struct sockaddr *)&dgram_addr, len) == 0, "connect (f)");
	dcl2_len = abstract_name(&dcl2_addr, "client");
	dcl2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	must(dcl2 >= 0 && bind(dcl2, (struct sockaddr *)&dcl2_addr, dcl2_len) == 0, "bind (f)");
	send_exact(dcl1, to_dgram_srv[0], strlen(to_dgram_srv[0]), "send (f)");
	must(sendto(dcl2, to_dgram_srv[1], strlen(to_dgram_srv[1]), 0, (struct sockaddr *)&dgram_addr, len) ==
		     (ssize_t)strlen(to_dgram_srv[1]), "sendto (f)");
	send_exact(dcl1, to_dgram_srv[2], strlen(to_dgram_srv[2]), "send (f)");
}

static void build_ends(void)
{
	int p[2];

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, shut) == 0, "socketpair (g)");
	send_exact(shut[0], last_words, sizeof(last_words), "send (g)");
	must(shutdown(shut[0], SHUT_WR) == 0, "shutdown (g)");

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, p) == 0, "socketpair (h)");
	send_exact(p[0], orphan_words, sizeof(orphan_words), "send (h)");
	close(p[0]);
	orphan_stream = p[1];
	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, p) == 0, "socketpair (h)");
	send_exact(p[0], orphan_words, sizeof(orphan_words), "send (h)");
	close(p[0]);
	orphan_dgram = p[1];
}

/* ---- checks --------------------------------------------------------------- */

static int int_opt(int fd, int opt)
{
	int v = -12345;
	socklen_t len = sizeof(v);

	getsockopt(fd, SOL_SOCKET, opt, &v, &len);
	return v;
}

/* Reads exactly len bytes of a stream (fd O_NONBLOCK or not). */
static bool read_stream(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, MSG_DONTWAIT);

		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

static void expect_message(const char *what, int fd, const char *want, size_t want_len)
{
	char got[256];
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);

	wl_check(n == (ssize_t)want_len && memcmp(got, want, want_len) == 0,
		 "(%s) read %zd bytes ('%.*s'), want the %zu-byte message '%s'", what, n, n > 0 ? (int)n : 0, got,
		 want_len, want);
}

static void expect_nothing(const char *what, int fd)
{
	char c;

	wl_check(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "(%s) more queued than was sent", what);
}

static void expect_eof(const char *what, int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	wl_check(n == 0, "(%s) read %zd after the data, want 0 (end of file)", what, n);
}

static void check_talks(const char *what, int a, int b)
{
	char c = 0;

	wl_check(send(a, "!", 1, MSG_NOSIGNAL) == 1 && recv(b, &c, 1, MSG_DONTWAIT) == 1 && c == '!',
		 "(%s) a byte sent after restore did not come through", what);
}

static void check_stream(void)
{
	static unsigned char got[BIG_WRITE];
	char head[8], peeked[2];

	wl_check(int_opt(stream[0], SO_TYPE) == SOCK_STREAM, "(a) SO_TYPE %d", int_opt(stream[0], SO_TYPE));
	wl_check((fcntl(stream[1], F_GETFL) & O_NONBLOCK) && !(fcntl(stream[0], F_GETFL) & O_NONBLOCK),
		 "(a) O_NONBLOCK flags changed");
	wl_check(int_opt(stream[1], SO_PEEK_OFF) == 3, "(a) SO_PEEK_OFF %d, want 3", int_opt(stream[1], SO_PEEK_OFF));
	wl_check(recv(stream[1], peeked, 2, MSG_PEEK) == 2 && memcmp(peeked, "de", 2) == 0,
		 "(a) a peek does not continue at offset 3");
	wl_check(read_stream(stream[1], head, 7) && memcmp(head, "abcdefg", 7) == 0, "(a) the first bytes differ");
	wl_check(read_stream(stream[1], got, sizeof(got)) && memcmp(got, big, sizeof(got)) == 0,
		 "(a) the %d-byte write differs", BIG_WRITE);
	expect_nothing("a", stream[1]);
	expect_message("a", stream[0], b_to_a, sizeof(b_to_a));
	check_talks("a", stream[0], stream[1]);
	check_talks("a", stream[1], stream[0]);
}

static void check_dgram(void)
{
	wl_check(int_opt(dgram[0], SO_TYPE) == SOCK_DGRAM, "(b) SO_TYPE %d", int_opt(dgram[0], SO_TYPE));
	wl_check(int_opt(dgram[1], SO_RCVBUF) == rcvbuf_before, "(b) SO_RCVBUF %d, want %d",
		 int_opt(dgram[1], SO_RCVBUF), rcvbuf_before);
	wl_check(int_opt(dgram[1], SO_PASSCRED) == 1, "(b) SO_PASSCRED lost");
	wl_check(int_opt(dgram[0], SO_PASSCRED) == 0, "(b) SO_PASSCRED set on the other end");
	for (size_t i = 0; i < 3; i++)
		expect_message("b", dgram[1], dgrams_ab[i], strlen(dgrams_ab[i]));
	expect_nothing("b", dgram[1]);
	for (size_t i = 0; i < 2; i++)
		expect_message("b", dgram[0], dgrams_ba[i], strlen(dgrams_ba[i]));
	expect_nothing("b", dgram[0]);
	check_talks("b", dgram[0], dgram[1]);

	wl_check(int_opt(seqp[0], SO_TYPE) == SOCK_SEQPACKET, "(c) SO_TYPE %d", int_opt(seqp[0], SO_TYPE));
	for (size_t i = 0; i < 2; i++)
		expect_message("c", seqp[1], records[i], strlen(records[i]));
	expect_nothing("c", seqp[1]);
	check_talks("c", seqp[1], seqp[0]);
}

static bool same_addr(const struct sockaddr_un *a, socklen_t alen, const struct sockaddr_un *b, socklen_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

static void check_name(const char *what, int fd, bool peer, const struct sockaddr_un *want, socklen_t want_len)
{
	struct sockaddr_un got;
	socklen_t len = sizeof(got);
	int r = peer ? getpeername(fd, (struct sockaddr *)&got, &len) : getsockname(fd, (struct sockaddr *)&got, &len);

	wl_check(r == 0 && same_addr(&got, len, want, want_len), "(%s) %s of fd %d is '%s', want '%s'", what,
		 peer ? "peer name" : "name", fd, r == 0 && len > 2 ? got.sun_path : "", want->sun_path);
}

static void check_accepts(const char *what, int l, const struct sockaddr_un *a, socklen_t len)
{
	int c = socket(AF_UNIX, SOCK_STREAM, 0), s = -1;
	bool connected = c >= 0 && connect(c, (const struct sockaddr *)a, len) == 0;

	if (wl_check(connected, "(%s) connect: %s", what, strerror(errno)) &&
	    wl_check((s = accept(l, NULL, NULL)) >= 0, "(%s) accept", what))
		check_talks(what, c, s);
	close(c);
	close(s);
}

static void check_listeners(void)
{
	socklen_t plen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(listen_addr.sun_path) + 1);
	struct stat st;

	check_name("d", listener, false, &listen_addr, plen);
	check_name("d", served, false, &listen_addr, plen);
	check_name("d", client, true, &listen_addr, plen);
	int r = stat(listen_addr.sun_path, &st);

	if (wl_check(r == 0, "(d) %s: %s", listen_addr.sun_path, strerror(errno)))
		wl_check(S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640, "(d) %s has mode 0%o, want socket 0640",
			 listen_addr.sun_path, st.st_mode);
	wl_check(int_opt(listener, SO_ACCEPTCONN) == 1, "(d) the listener does not listen");
	expect_message("d", served, to_server, sizeof(to_server));
	expect_message("d", client, to_client, sizeof(to_client));
	check_talks("d", client, served);
	check_accepts("d", listener, &listen_addr, plen);

	check_name("e", abstract_l, false, &abstract_addr, abstract_len);
	check_accepts("e", abstract_l, &abstract_addr, abstract_len);
}

static void check_named_dgram(void)
{
	socklen_t plen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(dgram_addr.sun_path) + 1);

	check_name("f", ddsrv, false, &dgram_addr, plen);
	check_name("f", dcl1, true, &dgram_addr, plen);
	check_name("f", dcl2, false, &dcl2_addr, dcl2_len);
	for (int i = 0; i < 3; i++) {
		struct sockaddr_un from;
		socklen_t len = sizeof(from);
		char got[64];
		ssize_t n = recvfrom(ddsrv, got, sizeof(got), MSG_DONTWAIT, (struct sockaddr *)&from, &len);

		wl_check(n == (ssize_t)strlen(to_dgram_srv[i]) && memcmp(got, to_dgram_srv[i], (size_t)n) == 0,
			 "(f) datagram %d: %zd bytes, want '%s'", i, n, to_dgram_srv[i]);
		if (i == 1)
			wl_check(same_addr(&from, len, &dcl2_addr, dcl2_len), "(f) datagram %d: the sender's name "
				 "is lost (%u bytes of address)", i, len);
		else
			wl_check(len <= sizeof(sa_family_t), "(f) datagram %d: an unnamed sender got a name", i);
	}
	expect_nothing("f", ddsrv);
	check_talks("f", dcl1, ddsrv);
}

static void check_ends(void)
{
	char got[64];

	wl_check(read_stream(shut[1], got, sizeof(last_words)) && memcmp(got, last_words, sizeof(last_words)) == 0,
		 "(g) the data before the shutdown is lost");
	expect_eof("g", shut[1]);
	check_talks("g", shut[1], shut[0]);
	wl_check(send(shut[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "(g) the shut-down end can write");

	wl_check(read_stream(orphan_stream, got, sizeof(orphan_words)) &&
		 memcmp(got, orphan_words, sizeof(orphan_words)) == 0, "(h) the orphaned stream data is lost");
	expect_eof("h", orphan_stream);
	expect_message("h", orphan_dgram, orphan_words, sizeof(orphan_words));
	expect_nothing("h", orphan_dgram);
}

static void sabotage(void)
{
	char what[32], buf[64];
	int zero = 0;

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "stream") == 0)
		wl_check(recv(stream[0], buf, 1, 0) == 1, "sabotage recv");
	else if (strcmp(what, "dgram") == 0)
		wl_check(recv(dgram[1], buf, sizeof(buf), 0) >= 0, "sabotage recv");
	else if (strcmp(what, "peek") == 0)
		wl_check(setsockopt(stream[1], SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof(zero)) == 0, "sabotage");
	else if (strcmp(what, "name") == 0)
		wl_check(unlink(listen_addr.sun_path) == 0, "sabotage unlink");
	else if (strcmp(what, "sender") == 0)
		wl_check(recv(ddsrv, buf, sizeof(buf), 0) >= 0, "sabotage recv");
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

/* ---- a connection with a process outside the dump ------------------------ */

static void serve(void)
{
	struct sockaddr_un a;
	socklen_t len = path_addr(&a, "outside.sock");
	int l = listening(&a, len);

	wl_ready();
	while (!wl_triggered) {
		accept4(l, NULL, NULL, SOCK_NONBLOCK);   /* keeps the connection open */
		usleep(10000);
	}
	wl_finish();
}

static void connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	socklen_t len = sizeof(a);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	must(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	send_exact(fd, "hi", 2, "send");
	wl_write_file("fd", "%d\n", fd);
	wl_ready();
	wl_wait_trigger();
	wl_check(wl_status_field("TracerPid") == 0, "still traced");
	memset(&a, 0, sizeof(a));
	wl_check(getpeername(fd, (struct sockaddr *)&a, &len) == 0 && strcmp(a.sun_path, path) == 0,
		 "no longer connected to %s", path);
	wl_check(send(fd, "!", 1, MSG_NOSIGNAL) == 1, "the connection no longer takes data");
	wl_finish();
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (argc > 2 && strcmp(argv[2], "serve") == 0)
		serve();
	if (argc > 3 && strcmp(argv[2], "connect") == 0)
		connect_to(argv[3]);
	build_pairs();
	build_listeners();
	build_named_dgram();
	build_ends();
	wl_ready();
	wl_wait_trigger();

	sabotage();
	check_stream();
	check_dgram();
	check_listeners();
	check_named_dgram();
	check_ends();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
