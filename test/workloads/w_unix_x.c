/*
 * w_unix_x STATE_DIR tree          unix sockets between processes
 * w_unix_x STATE_DIR embryo [data] connections not accepted yet
 * w_unix_x STATE_DIR rights        a pipe in flight (SCM_RIGHTS) whose write
 *                                  end a child holds alone: refused
 * w_unix_x STATE_DIR rights-pipe   a pipe's read end in flight to a child,
 *                                  its write end written on by the sender
 * w_unix_x STATE_DIR rights-sk     fds in flight (SCM_RIGHTS): the receiving
 *                                  socket itself, an end of a pair whose
 *                                  other end a child holds, a file (offset
 *                                  4, O_RDWR), an end of a pair (with data
 *                                  queued) that no process holds and a
 *                                  pipe's read end (with data); and
 *                                  a stream with SO_PASSCRED written by P,
 *                                  the child, then P
 * w_unix_x STATE_DIR rights-stream [cred]  fds in flight on a stream
 *                                  socketpair from P to its child: see
 *                                  run_rights_stream
 * w_unix_x STATE_DIR rights-closed a byte with a file in flight, then two
 *                                  writes, on a stream pair whose sending
 *                                  end is closed
 * w_unix_x STATE_DIR lost-peer     a socket whose peer is in flight in a queue
 *                                  outside the dump: refused
 * w_unix_x STATE_DIR creds         a datagram queued with the sender's
 *                                  credentials (SO_PASSCRED)
 * w_unix_x STATE_DIR ext PATH      a client of a server outside the dump
 * w_unix_x STATE_DIR serve PATH    that server: echoes what it reads
 * w_unix_x STATE_DIR ext-dgram PATH  a datagram socket connected to the
 *                                  datagram server at PATH outside the dump
 * w_unix_x STATE_DIR dserve PATH   that server: echoes each datagram
 * w_unix_x STATE_DIR ext-dgram-replaced PATH FILE  the same socket, which
 *                                  also sent a datagram to a socket of its
 *                                  own bound to FILE, whose socket file was
 *                                  then replaced by a regular file ("other")
 *
 * tree: the parent P forks A and B and holds a control socketpair with
 * each (pairs across fork).  A and B share a socketpair that P made and
 * closed (their common ancestor holds none of it), with data queued both
 * ways; B has a datagram socket bound at STATE_DIR/b.dgram that A sent
 * two datagrams to; A is a client of P's listener at STATE_DIR/l.sock,
 * accepted by P, with data queued both ways.  When triggered P checks its
 * queue, tells A and B to check theirs and talk over their pair, and wants
 * each to report the token it drew after the fork; then a new client is
 * accepted by the listener.
 *
 * embryo: P listens at STATE_DIR/e.sock; its child C connected twice and
 * neither connection is accepted ("data": C wrote on the first).  When
 * triggered P accepts both, in order, writes "1" and "2" on them, and C
 * must read each on the right socket.
 *
 * creds: a datagram socketpair with SO_PASSCRED on P's end; P's child
 * queued a datagram on it, then exited.  P checks the pid, uid and gid it
 * carries.
 *
 * ext: P is connected to the server at PATH; when triggered it sends a
 * line and wants it back (a restore reconnects by PATH).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIMEOUT_MS 5000

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void send_str(int fd, const char *s)
{
	must(send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s), s);
}

/* One write of data with n fds in flight (SCM_RIGHTS). */
static void send_data_fds(int sock, const char *data, const int *fds, size_t n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	memset(&u, 0, sizeof(u));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	must(sendmsg(sock, &mh, 0) == (ssize_t)strlen(data), "sendmsg SCM_RIGHTS");
}

/* One byte with n fds in flight. */
static void send_fds(int sock, const int *fds, size_t n)
{
	send_data_fds(sock, "m", fds, n);
}

/* Exactly len bytes within TIMEOUT_MS; -1 on error, timeout or EOF. */
static ssize_t read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, TIMEOUT_MS) != 1)
			return -1;
		n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* One message (datagram, or what one read returns) within TIMEOUT_MS. */
static ssize_t read_one(int fd, char *buf, size_t size)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, TIMEOUT_MS) != 1)
		return -1;
	n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* Reads exactly the string want; false (with a failure recorded) if not. */
static bool expect(int fd, const char *want, const char *what, char *why, size_t why_size)
{
	char buf[256];
	ssize_t n = read_exact(fd, buf, strlen(want));

	if (n >= 0 && strcmp(buf, want) == 0)
		return true;
	snprintf(why, why_size, "%s: read '%s' (%zd), wanted '%s'", what, n >= 0 ? buf : strerror(errno), n, want);
	return false;
}

static socklen_t state_addr(struct sockaddr_un *a, const char *name)
{
	char path[PATH_MAX];

	wl_path(path, sizeof(path), name);
	return wl_unix_addr(a, path);
}

static uint64_t draw_token(void)
{
	uint64_t t = 0;

	must(getrandom(&t, sizeof(t), 0) == sizeof(t), "getrandom");
	return t;
}

/* ---- children ---------------------------------------------------------------- */

/* A child's report on its control socket: "<pid> <token> OK" or "... FAIL why". */
static void report(int ctl, uint64_t token, const char *why)
{
	char line[512];

	snprintf(line, sizeof(line), "%d %llx %s%s\n", (int)getpid(), (unsigned long long)token,
		 why[0] ? "FAIL " : "OK", why);
	send_str(ctl, line);
}

/* Waits for "go" from the parent (EOF: it is gone, exit quietly). */
static void await_go(int ctl)
{
	char buf[8];

	for (;;) {
		ssize_t n = read(ctl, buf, 3);

		if (n == 3 && memcmp(buf, "go\n", 3) == 0)
			return;
		if (n == 0 || (n < 0 && errno != EINTR))
			_exit(0);
	}
}

static void await_end(int ctl)
{
	char c;

	while (read(ctl, &c, 1) != 0 && errno == EINTR)
		;
	_exit(0);
}

static void child_a(int ctl, int pair, int client, int dgram, const struct sockaddr_un *b_addr)
{
	uint64_t token = draw_token();
	char why[256] = "", line[64];

	send_str(pair, "early from A");
	send_str(client, "to P via accept");
	must(sendto(dgram, "dgram one", 9, 0, (const struct sockaddr *)b_addr, sizeof(*b_addr)) == 9, "sendto");
	must(sendto(dgram, "dgram two!", 10, 0, (const struct sockaddr *)b_addr, sizeof(*b_addr)) == 10, "sendto");
	snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
	send_str(ctl, line);
	await_go(ctl);
	if (expect(pair, "early from B", "A's pair", why, sizeof(why)) &&
	    expect(client, "to A via accept", "A's client", why, sizeof(why))) {
		send_str(pair, "ping");
		expect(pair, "pong", "A's pair after ping", why, sizeof(why));
	}
	report(ctl, token, why);
	await_end(ctl);
}

static void child_b(int ctl, int pair, int dgram)
{
	uint64_t token = draw_token();
	char why[256] = "", line[64], buf[64];

	send_str(pair, "early from B");
	snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
	send_str(ctl, line);
	await_go(ctl);
	if (!expect(pair, "early from A", "B's pair", why, sizeof(why)))
		goto out;
	if (read_one(dgram, buf, sizeof(buf)) != 9 || strcmp(buf, "dgram one") != 0) {
		snprintf(why, sizeof(why), "B's first datagram is '%s'", buf);
		goto out;
	}
	if (read_one(dgram, buf, sizeof(buf)) != 10 || strcmp(buf, "dgram two!") != 0) {
		snprintf(why, sizeof(why), "B's second datagram is '%s'", buf);
		goto out;
	}
	if (expect(pair, "ping", "B's pair, ping", why, sizeof(why)))
		send_str(pair, "pong");
out:
	report(ctl, token, why);
	await_end(ctl);
}

/* ---- the parent ---------------------------------------------------------------- */

struct kid {
	pid_t pid;
	int ctl;
	char token[64];   /* "<pid> <token>" as the child sent it at set-up */
};

static void read_hello(struct kid *k)
{
	char buf[64];
	char *nl;

	must(read_one(k->ctl, buf, sizeof(buf)) > 0, "the child's hello");
	nl = strchr(buf, '\n');
	if (nl != NULL)
		*nl = '\0';
	snprintf(k->token, sizeof(k->token), "%s", buf);
}

/* The report of a child that was told to go. */
static void check_kid(const struct kid *k, const char *name)
{
	char buf[512], want[96];

	if (!wl_check(read_one(k->ctl, buf, sizeof(buf)) > 0, "no report from %s (pid %d)", name, (int)k->pid))
		return;
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(want, sizeof(want), "%s OK", k->token);
	wl_check(strcmp(buf, want) == 0, "%s reports '%s', wanted '%s'", name, buf, want);
}

static void end_kids(struct kid *kids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int status;

		close(kids[i].ctl);
		wl_check(waitpid(kids[i].pid, &status, 0) == kids[i].pid && WIFEXITED(status) &&
				 WEXITSTATUS(status) == 0, "child %d did not exit cleanly", (int)kids[i].pid);
	}
}

static pid_t fork_kid(struct kid *k, int *kid_end)
{
	int sv[2];

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair ctl");
	k->ctl = sv[0];
	*kid_end = sv[1];
	k->pid = fork();
	must(k->pid >= 0, "fork");
	if (k->pid == 0)
		close(sv[0]);
	else
		close(sv[1]);
	return k->pid;
}

static int new_client(const struct sockaddr_un *a)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	must(fd >= 0 && connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0, "connect");
	return fd;
}

static int listening(const struct sockaddr_un *a, int backlog)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	must(fd >= 0 && bind(fd, (const struct sockaddr *)a, sizeof(*a)) == 0 && listen(fd, backlog) == 0, "listen");
	return fd;
}

static void run_tree(void)
{
	struct sockaddr_un l_addr, b_addr;
	struct kid kids[2];
	int pair[2], listener, served, b_dgram, kid_ctl, probe, again;
	char why[256] = "";

	state_addr(&l_addr, "l.sock");
	state_addr(&b_addr, "b.dgram");
	listener = listening(&l_addr, 4);
	b_dgram = socket(AF_UNIX, SOCK_DGRAM, 0);
	must(b_dgram >= 0 && bind(b_dgram, (struct sockaddr *)&b_addr, sizeof(b_addr)) == 0, "bind b.dgram");
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0, "socketpair");

	if (fork_kid(&kids[0], &kid_ctl) == 0) {
		int client = new_client(&l_addr), dgram = socket(AF_UNIX, SOCK_DGRAM, 0);

		close(listener);
		close(pair[1]);
		close(b_dgram);
		child_a(kid_ctl, pair[0], client, dgram, &b_addr);
	}
	read_hello(&kids[0]);
	served = accept(listener, NULL, NULL);
	must(served >= 0, "accept");
	send_str(served, "to A via accept");
	if (fork_kid(&kids[1], &kid_ctl) == 0) {
		close(listener);
		close(served);
		close(pair[0]);
		close(kids[0].ctl);
		child_b(kid_ctl, pair[1], b_dgram);
	}
	close(pair[0]);
	close(pair[1]);
	close(b_dgram);
	read_hello(&kids[1]);
	wl_ready();
	wl_wait_trigger();

	wl_check(expect(served, "to P via accept", "P's accepted socket", why, sizeof(why)), "%s", why);
	send_str(kids[0].ctl, "go\n");
	send_str(kids[1].ctl, "go\n");
	check_kid(&kids[0], "A");
	check_kid(&kids[1], "B");
	probe = new_client(&l_addr);
	again = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
	wl_check(again >= 0, "the listener accepts no new client: %s", strerror(errno));
	send_str(probe, "new");
	wl_check(again >= 0 && expect(again, "new", "a new client", why, sizeof(why)), "%s", why);
	end_kids(kids, 2);
	wl_finish();
}

static void run_embryo(bool data)
{
	struct sockaddr_un e_addr;
	struct kid kid;
	int listener, kid_ctl;

	state_addr(&e_addr, "e.sock");
	listener = listening(&e_addr, 4);
	if (fork_kid(&kid, &kid_ctl) == 0) {
		uint64_t token = draw_token();
		int c1 = new_client(&e_addr), c2 = new_client(&e_addr);
		char line[64], why[256] = "";

		close(listener);
		if (data)
			send_str(c1, "early");
		snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
		send_str(kid_ctl, line);
		await_go(kid_ctl);
		if (expect(c1, "1", "the first client", why, sizeof(why)))
			expect(c2, "2", "the second client", why, sizeof(why));
		report(kid_ctl, token, why);
		await_end(kid_ctl);
	}
	read_hello(&kid);
	wl_ready();
	wl_wait_trigger();
	for (int i = 1; i <= 2; i++) {
		int s = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
		char n[2] = { (char)('0' + i), '\0' };

		if (!wl_check(s >= 0, "connection %d is not waiting to be accepted: %s", i, strerror(errno)))
			break;
		send_str(s, n);
		if (data && i == 1) {
			char why[256] = "";

			wl_check(expect(s, "early", "data of the first connection", why, sizeof(why)), "%s", why);
		}
	}
	send_str(kid.ctl, "go\n");
	check_kid(&kid, "C");
	end_kids(&kid, 1);
	wl_finish();
}

/* rights: a pipe's read end in flight on a stream pair P holds; its write
 * end is held by P's child K alone, which holds neither end of the pair. */
static void run_rights(void)
{
	int sv[2], p[2], status;
	char byte = 'x';
	pid_t k;

	must(pipe(p) == 0, "pipe");
	k = fork();
	must(k >= 0, "fork");
	if (k == 0) {
		close(p[0]);
		pause();
		_exit(0);
	}
	close(p[1]);
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	send_fds(sv[0], &p[0], 1);
	close(p[0]);
	wl_ready();
	wl_wait_trigger();
	wl_check(recv(sv[1], &byte, 1, 0) == 1, "the message with an fd is gone");
	kill(k, SIGKILL);
	waitpid(k, &status, 0);
	wl_finish();
}


/* The sender's pid in the credentials of recv_data_fds's last read (0:
 * none came, SO_PASSCRED is off). */
static pid_t read_from;

/* One read of at most size - 1 bytes into buf (a string), with its fds
 * (at most n) into fds: their count, -1 when the read returns nothing. */
static int recv_data_fds(int sock, char *buf, size_t size, int *fds, int n)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = size - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t len = recvmsg(sock, &mh, MSG_DONTWAIT);
	int got = 0;

	buf[len > 0 ? len : 0] = '\0';
	read_from = 0;
	if (len <= 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_type == SCM_CREDENTIALS)
			read_from = ((const struct ucred *)(const void *)CMSG_DATA(c))->pid;
		if (c->cmsg_type != SCM_RIGHTS)
			continue;
		got = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(fds, CMSG_DATA(c), (size_t)(got < n ? got : n) * sizeof(int));
	}
	return got;
}

/* Receives one message of one byte with its fds (at most n); the count. */
static int recv_fds(int sock, int *fds, int n)
{
	char byte[2];

	return recv_data_fds(sock, byte, sizeof(byte), fds, n);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* The stream q, written "ab" by P, "cd" by its child kid, "ef" by P: each
 * read stops where the writer changes and carries its credentials. */
static void check_stream_creds(int q, pid_t kid)
{
	static const char *const parts[] = { "ab", "cd", "ef" };

	for (int i = 0; i < 3; i++) {
		char buf[8] = "";
		union {
			struct cmsghdr align;
			char room[CMSG_SPACE(sizeof(struct ucred))];
		} u;
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.room, .msg_controllen = sizeof(u.room) };
		struct cmsghdr *c;
		struct ucred cred = { 0 };

		if (!wl_check(recvmsg(q, &mh, MSG_DONTWAIT) == 2 && strcmp(buf, parts[i]) == 0,
			      "stream read %d is '%s', wanted '%s'", i, buf, parts[i]))
			return;
		c = CMSG_FIRSTHDR(&mh);
		if (c != NULL && c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		wl_check(cred.pid == (i == 1 ? kid : getpid()), "stream read %d carries the credentials of pid %d",
			 i, (int)cred.pid);
	}
}

/* rights-sk: a datagram queued on P's socket d1 carries d1 itself, P's
 * end of a stream pair whose other end the child holds, a file and a
 * socket that only the message holds. */
static void run_rights_sockets(void)
{
	int d[2], s[2], fds[8] = { -1, -1 }, kid_ctl;
	struct kid kid;
	char why[256] = "";
	char path[PATH_MAX], data[16] = "";
	int file, fly[2], q[2], p[2], on = 1;

	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, d) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
	/* A stream with SO_PASSCRED written by P, the child, then P again. */
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0, "socketpair");
	must(setsockopt(q[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, "SO_PASSCRED");
	send_str(q[0], "ab");
	if (fork_kid(&kid, &kid_ctl) == 0) {
		uint64_t token = draw_token();
		char line[64], kwhy[256] = "";

		close(q[1]);
		send_str(q[0], "cd");
		close(s[0]);
		snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
		send_str(kid_ctl, line);
		await_go(kid_ctl);
		if (expect(s[1], "hi", "the child's end", kwhy, sizeof(kwhy)))
			send_str(s[1], "hi back");
		report(kid_ctl, token, kwhy);
		await_end(kid_ctl);
	}
	close(s[1]);
	wl_path(path, sizeof(path), "inflight.txt");
	file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	must(file >= 0 && write(file, "0123456789", 10) == 10 && lseek(file, 4, SEEK_SET) == 4, "the file");
	must(socketpair(AF_UNIX, SOCK_STREAM, 0, fly) == 0, "socketpair");
	send_str(fly[1], "flying data");
	must(pipe(p) == 0 && write(p[1], "dgram pipe", 10) == 10, "pipe");
	close(p[1]);
	send_fds(d[0], (int[]){ d[1], s[0], file, fly[0], p[0] }, 5);
	close(file);
	close(fly[0]);
	close(p[0]);
	read_hello(&kid);
	send_str(q[0], "ef");
	wl_ready();
	wl_wait_trigger();
	send_str(kid.ctl, "go\n");
	check_stream_creds(q[1], kid.pid);
	if (wl_check(recv_fds(d[1], fds, 8) == 5, "the message does not carry 5 fds")) {
		wl_check(read_one(fds[4], data, sizeof(data)) == 10 && strcmp(data, "dgram pipe") == 0 &&
				 read(fds[4], data, 1) == 0,
			 "the pipe in flight reads '%s', not 'dgram pipe' and its end", data);
		memset(data, 0, sizeof(data));
		wl_check(!(fcntl(fds[3], F_GETFL) & O_NONBLOCK), "the socket in flight became O_NONBLOCK");
		wl_check(expect(fds[3], "flying data", "the socket only in flight", why, sizeof(why)), "%s", why);
		send_str(fds[3], "back");
		wl_check(expect(fly[1], "back", "the peer of the socket in flight", why, sizeof(why)), "%s", why);
		wl_check(same_file(fds[0], d[1]), "the first fd in flight is not the receiving socket itself");
		wl_check(same_file(fds[1], s[0]), "the second fd in flight is not the end of the pair");
		wl_check(read(fds[2], data, sizeof(data) - 1) == 6 && strcmp(data, "456789") == 0,
			 "the file in flight reads '%s' from its offset, wanted '456789'", data);
		wl_check((fcntl(fds[2], F_GETFL) & O_ACCMODE) == O_RDWR, "the file in flight is not O_RDWR");
		send_str(fds[1], "hi");
		wl_check(expect(s[0], "hi back", "P's end of the pair", why, sizeof(why)), "%s", why);
	}
	check_kid(&kid, "C");
	end_kids(&kid, 1);
	wl_finish();
}

/* The regular file name in the state dir, holding "0123456789", open
 * O_RDWR at offset pos. */
static int file_at(const char *name, off_t pos)
{
	char path[PATH_MAX];
	int f;

	wl_path(path, sizeof(path), name);
	f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	must(f >= 0 && write(f, "0123456789", 10) == 10 && lseek(f, pos, SEEK_SET) == pos, name);
	return f;
}

/* A file received in flight: it reads want on from its offset, O_RDWR. */
static void check_file(int fd, const char *want, const char *what, char *why, size_t why_size)
{
	char data[16] = "";

	if (read(fd, data, sizeof(data) - 1) < 0 || strcmp(data, want) != 0)
		snprintf(why, why_size, "%s reads '%s' from its offset, wanted '%s'", what, data, want);
	else if ((fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		snprintf(why, why_size, "%s is not O_RDWR", what);
}

/* With SO_PASSCRED (cred), the last read came from P (C's parent), or
 * from another process (kid); a failure into why if not. */
static bool read_from_ok(bool cred, bool kid, const char *what, char *why, size_t why_size)
{
	if (!cred || (kid ? read_from > 0 && read_from != getppid() : read_from == getppid()))
		return true;
	snprintf(why, why_size, "%s carries the credentials of pid %d", what, (int)read_from);
	return false;
}

/* C's reads of the stream q: each stops after the write that carried fds,
 * which come with it (and with SO_PASSCRED where the writer changes). */
static void read_stream_rights(int q, bool cred, char *why, size_t why_size)
{
	char buf[64];
	int fds[8], in[8];

	if (recv_data_fds(q, buf, sizeof(buf), fds, 8) != 2 || strcmp(buf, "first") != 0) {
		snprintf(why, why_size, "the first read is '%s', not 'first' with two fds", buf);
		return;
	}
	if (!read_from_ok(cred, false, "the first read", why, why_size))
		return;
	check_file(fds[0], "456789", "the file in flight", why, why_size);
	if (why[0])
		return;
	if (read_one(fds[1], buf, sizeof(buf)) != 10 || strcmp(buf, "piped data") != 0 || read(fds[1], buf, 1) != 0) {
		snprintf(why, why_size, "the pipe in flight reads '%s', not 'piped data' and its end", buf);
		return;
	}
	if (cred && (recv_data_fds(q, buf, sizeof(buf), fds, 8) != 0 || strcmp(buf, "kid") != 0)) {
		snprintf(why, why_size, "the read after 'first' is '%s', not 'kid'", buf);
		return;
	}
	if (!read_from_ok(cred, true, "the read 'kid'", why, why_size))
		return;
	if (recv_data_fds(q, buf, sizeof(buf), fds, 8) != 2 || strcmp(buf, "second") != 0) {
		snprintf(why, why_size, "the second read is '%s', not 'second' with two fds", buf);
		return;
	}
	if (!read_from_ok(cred, false, "the read 'second'", why, why_size))
		return;
	if (recv_data_fds(fds[0], buf, sizeof(buf), in, 8) != 1 || strcmp(buf, "flying") != 0) {
		snprintf(why, why_size, "the socket in flight reads '%s', not 'flying' with one fd", buf);
		return;
	}
	check_file(in[0], "23456789", "the file in flight in the socket in flight", why, why_size);
	if (why[0])
		return;
	send_str(fds[0], "back");
	send_str(fds[1], "hi");
	if (recv_data_fds(q, buf, sizeof(buf), fds, 8) != 0 || strcmp(buf, "tail") != 0)
		snprintf(why, why_size, "the last read is '%s', not 'tail'", buf);
	else
		read_from_ok(cred, false, "the read 'tail'", why, why_size);
}

/* rights-stream: a stream pair q from P to its child C holds, unread, the
 * writes "first" with a file in flight (offset 4) and the read end of a
 * pipe holding "piped data" (its write end closed), "second" with an end of
 * a pair fly that only the message holds (its own queue: "flying" with
 * another file, offset 2) and P's end s[0] of a pair, and "tail".  When
 * triggered C reads them, gets each write's fds with it and uses them:
 * "back" on the socket only in flight and "hi" on s[0] reach P.
 * rights-stream cred: C's end has SO_PASSCRED, and between "first" and
 * "second" a child K of P, gone since, wrote "kid": each read carries its
 * writer's pid. */
static void run_rights_stream(bool cred)
{
	int q[2], s[2], fly[2], p[2], f1, f2, kid_ctl, on = 1;
	struct kid kid;
	char why[256] = "";

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0 && socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0 &&
		     socketpair(AF_UNIX, SOCK_STREAM, 0, fly) == 0, "socketpair");
	if (fork_kid(&kid, &kid_ctl) == 0) {
		uint64_t token = draw_token();
		char line[64], kwhy[256] = "";

		close(q[0]);
		close(s[0]);
		close(s[1]);
		close(fly[0]);
		close(fly[1]);
		must(!cred || setsockopt(q[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, "SO_PASSCRED");
		snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
		send_str(kid_ctl, line);
		await_go(kid_ctl);
		read_stream_rights(q[1], cred, kwhy, sizeof(kwhy));
		report(kid_ctl, token, kwhy);
		await_end(kid_ctl);
	}
	close(q[1]);
	read_hello(&kid);
	f1 = file_at("first.txt", 4);
	f2 = file_at("flying.txt", 2);
	send_data_fds(fly[1], "flying", &f2, 1);
	must(pipe(p) == 0 && write(p[1], "piped data", 10) == 10, "pipe");
	close(p[1]);
	send_data_fds(q[0], "first", (int[]){ f1, p[0] }, 2);
	close(p[0]);
	if (cred) {
		pid_t k = fork();

		must(k >= 0, "fork");
		if (k == 0) {
			send_str(q[0], "kid");
			_exit(0);
		}
		must(waitpid(k, NULL, 0) == k, "waitpid");
	}
	send_data_fds(q[0], "second", (int[]){ fly[0], s[0] }, 2);
	send_str(q[0], "tail");
	close(f1);
	close(f2);
	close(fly[0]);
	wl_ready();
	wl_wait_trigger();
	send_str(kid.ctl, "go\n");
	check_kid(&kid, "C");
	wl_check(expect(fly[1], "back", "the peer of the socket in flight", why, sizeof(why)), "%s", why);
	wl_check(expect(s[1], "hi", "the peer of P's end in flight", why, sizeof(why)), "%s", why);
	end_kids(&kid, 1);
	wl_finish();
}

/* rights-closed: P's child C made a stream pair q; C's child K wrote on it
 * one byte with a file in flight (offset 4), then "a" and "b" apart, and
 * exited: the sending end is closed.  When triggered C reads the byte with
 * the file, then "ab", then the end of the stream. */
static void run_rights_closed(void)
{
	struct kid kid;
	int kid_ctl;

	if (fork_kid(&kid, &kid_ctl) == 0) {
		uint64_t token = draw_token();
		char line[64], buf[16], kwhy[256] = "";
		int q[2], fds[8];
		pid_t k;

		must(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0, "socketpair");
		k = fork();
		must(k >= 0, "fork");
		if (k == 0) {
			int f = file_at("first.txt", 4);

			send_fds(q[0], &f, 1);
			send_str(q[0], "a");
			send_str(q[0], "b");
			_exit(0);
		}
		close(q[0]);
		must(waitpid(k, NULL, 0) == k, "waitpid");
		snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
		send_str(kid_ctl, line);
		await_go(kid_ctl);
		if (recv_data_fds(q[1], buf, 2, fds, 8) != 1 || strcmp(buf, "m") != 0)
			snprintf(kwhy, sizeof(kwhy), "the first read is '%s', not 'm' with one fd", buf);
		else
			check_file(fds[0], "456789", "the file in flight", kwhy, sizeof(kwhy));
		if (!kwhy[0] && (read_exact(q[1], buf, 2) != 2 || strcmp(buf, "ab") != 0 || read(q[1], buf, 1) != 0))
			snprintf(kwhy, sizeof(kwhy), "after the fd the stream reads '%s', not 'ab' and its end", buf);
		report(kid_ctl, token, kwhy);
		await_end(kid_ctl);
	}
	read_hello(&kid);
	wl_ready();
	wl_wait_trigger();
	send_str(kid.ctl, "go\n");
	check_kid(&kid, "C");
	end_kids(&kid, 1);
	wl_finish();
}

/* rights-pipe: P sent its child C the read end of a pipe on their stream
 * pair and writes on: "before" at the dump, " after" and the end once
 * triggered.  C must read "before after", then the end of the pipe. */
static void run_rights_pipe(void)
{
	int q[2], p[2], kid_ctl;
	struct kid kid;

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, q) == 0 && pipe(p) == 0, "socketpair and pipe");
	if (fork_kid(&kid, &kid_ctl) == 0) {
		uint64_t token = draw_token();
		char line[64], buf[32], kwhy[256] = "";
		int fds[8];

		close(q[0]);
		close(p[0]);
		close(p[1]);
		snprintf(line, sizeof(line), "%d %llx\n", (int)getpid(), (unsigned long long)token);
		send_str(kid_ctl, line);
		await_go(kid_ctl);
		if (recv_data_fds(q[1], buf, sizeof(buf), fds, 8) != 1)
			snprintf(kwhy, sizeof(kwhy), "the pipe did not come with the byte '%s'", buf);
		else if (read_exact(fds[0], buf, 12) != 12 || strcmp(buf, "before after") != 0 || read(fds[0], buf, 1) != 0)
			snprintf(kwhy, sizeof(kwhy), "the pipe in flight reads '%s', not 'before after' and its end", buf);
		report(kid_ctl, token, kwhy);
		await_end(kid_ctl);
	}
	close(q[1]);
	send_fds(q[0], &p[0], 1);
	close(p[0]);
	wl_write_all(p[1], "before", 6);
	read_hello(&kid);
	wl_ready();
	wl_wait_trigger();
	wl_write_all(p[1], " after", 6);
	close(p[1]);
	send_str(kid.ctl, "go\n");
	check_kid(&kid, "C");
	end_kids(&kid, 1);
	wl_finish();
}

/* lost-peer: P holds a[0]; its peer a[1] is only in flight, in the queue of
 * a socket an orphan outside P's tree holds (it exits after P). */
static void run_lost_peer(void)
{
	int a[2], b[2];
	pid_t me = getpid();
	pid_t mid;

	must(socketpair(AF_UNIX, SOCK_STREAM, 0, a) == 0 && socketpair(AF_UNIX, SOCK_DGRAM, 0, b) == 0,
	     "socketpair");
	mid = fork();
	must(mid >= 0, "fork");
	if (mid == 0) {
		if (fork() == 0) {   /* the orphan: holds b[1] until P is gone */
			close(a[0]);
			close(a[1]);
			close(b[0]);
			while (kill(me, 0) == 0)
				usleep(50000);
			_exit(0);
		}
		_exit(0);
	}
	must(waitpid(mid, NULL, 0) == mid, "waitpid");
	close(b[1]);
	send_fds(b[0], &a[1], 1);
	close(a[1]);
	close(b[0]);
	wl_ready();
	wl_wait_trigger();
	send_str(a[0], "still");
	wl_finish();
}

static void run_creds(void)
{
	int sv[2], on = 1, status;
	pid_t kid;
	char byte;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} u;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct ucred cred = { 0 };

	must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair");
	must(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0, "SO_PASSCRED");
	kid = fork();
	must(kid >= 0, "fork");
	if (kid == 0) {
		must(setgid(4321) == 0 && setuid(1234) == 0, "setuid");
		send_str(sv[1], "k");
		_exit(0);
	}
	must(waitpid(kid, &status, 0) == kid, "waitpid");
	wl_ready();
	wl_wait_trigger();
	if (wl_check(recvmsg(sv[0], &mh, MSG_DONTWAIT) == 1, "no datagram: %s", strerror(errno))) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		if (wl_check(c != NULL && c->cmsg_type == SCM_CREDENTIALS, "no credentials with the datagram"))
			memcpy(&cred, CMSG_DATA(c), sizeof(cred));
		wl_check(cred.pid == kid && cred.uid == 1234 && cred.gid == 4321,
			 "credentials pid %d uid %u gid %u, wanted %d 1234 4321", (int)cred.pid, cred.uid, cred.gid,
			 (int)kid);
	}
	wl_finish();
}

static void run_ext(const char *path)
{
	struct sockaddr_un a;
	char why[256] = "";
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	wl_unix_addr(&a, path);
	must(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	wl_ready();
	wl_wait_trigger();
	send_str(fd, "echo me");
	wl_check(expect(fd, "echo me", "the echo of the outside server", why, sizeof(why)), "%s", why);
	wl_finish();
}

/* ext-dgram: a datagram socket bound to an abstract name and connected to
 * the datagram echo server at path, outside the dump. */
static void run_ext_dgram(const char *path)
{
	struct sockaddr_un a, me;
	char buf[64];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	int n = snprintf(buf, sizeof(buf), "wl-unix-x-%d", (int)getpid());

	memset(&me, 0, sizeof(me));
	me.sun_family = AF_UNIX;
	memcpy(me.sun_path + 1, buf, (size_t)n);
	wl_unix_addr(&a, path);
	must(fd >= 0 && bind(fd, (struct sockaddr *)&me, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) == 0 &&
		     connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect");
	wl_ready();
	wl_wait_trigger();
	send_str(fd, "echo me");
	wl_check(read_one(fd, buf, sizeof(buf)) == 7 && strcmp(buf, "echo me") == 0,
		 "the echo of the outside server is '%s'", buf);
	wl_finish();
}

/* ext-dgram-replaced: ext-dgram, and a datagram queued from that socket to
 * one bound to file, whose socket file is then replaced by a regular file.
 * The test makes the restore fail after that socket is bound again: the
 * regular file must be back at its path. */
static void run_ext_dgram_replaced(const char *path, const char *file)
{
	struct sockaddr_un a, me, at;
	char buf[64];
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0), to = socket(AF_UNIX, SOCK_DGRAM, 0), f = -1;
	int n = snprintf(buf, sizeof(buf), "wl-unix-x-%d", (int)getpid());

	memset(&me, 0, sizeof(me));
	me.sun_family = AF_UNIX;
	memcpy(me.sun_path + 1, buf, (size_t)n);
	wl_unix_addr(&a, path);
	wl_unix_addr(&at, file);
	must(fd >= 0 && to >= 0 && bind(to, (struct sockaddr *)&at, sizeof(at)) == 0 &&
		     bind(fd, (struct sockaddr *)&me, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) == 0 &&
		     connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		     sendto(fd, "queued", 6, 0, (struct sockaddr *)&at, sizeof(at)) == 6,
	     "connect and send");
	must(unlink(file) == 0 && (f = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0 && write(f, "other", 5) == 5,
	     "replace the socket file");
	close(f);
	wl_ready();
	wl_wait_trigger();
	wl_check(read_one(to, buf, sizeof(buf)) == 6 && strcmp(buf, "queued") == 0, "the queued datagram is '%s'", buf);
	wl_finish();
}

/* dserve: echoes each datagram to its sender. */
static void run_dserve(const char *path)
{
	struct sockaddr_un a;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	wl_unix_addr(&a, path);
	must(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	wl_ready();
	for (;;) {
		struct sockaddr_un from;
		socklen_t len = sizeof(from);
		char buf[256];
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len);

		if (n >= 0 && len > sizeof(sa_family_t))
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
}

static void run_serve(const char *path)
{
	struct sockaddr_un a;
	int l;

	wl_unix_addr(&a, path);
	l = listening(&a, 8);
	wl_ready();
	for (;;) {
		int c = accept(l, NULL, NULL);

		if (c < 0)
			continue;
		if (fork() == 0) {
			char buf[256];
			ssize_t n;

			while ((n = read(c, buf, sizeof(buf))) > 0)
				if (write(c, buf, (size_t)n) != n)
					break;
			_exit(0);
		}
		close(c);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

int main(int argc, char **argv)
{
	const char *mode;

	wl_init(argc, argv);
	mode = argc > 2 ? argv[2] : "tree";
	if (strcmp(mode, "tree") == 0)
		run_tree();
	if (strcmp(mode, "embryo") == 0)
		run_embryo(argc > 3 && strcmp(argv[3], "data") == 0);
	if (strcmp(mode, "rights") == 0)
		run_rights();
	if (strcmp(mode, "creds") == 0)
		run_creds();
	if (strcmp(mode, "rights-sk") == 0)
		run_rights_sockets();
	if (strcmp(mode, "rights-stream") == 0)
		run_rights_stream(argc > 3 && strcmp(argv[3], "cred") == 0);
	if (strcmp(mode, "rights-pipe") == 0)
		run_rights_pipe();
	if (strcmp(mode, "rights-closed") == 0)
		run_rights_closed();
	if (strcmp(mode, "lost-peer") == 0)
		run_lost_peer();
	if (strcmp(mode, "ext") == 0 && argc > 3)
		run_ext(argv[3]);
	if (strcmp(mode, "serve") == 0 && argc > 3)
		run_serve(argv[3]);
	if (strcmp(mode, "ext-dgram") == 0 && argc > 3)
		run_ext_dgram(argv[3]);
	if (strcmp(mode, "ext-dgram-replaced") == 0 && argc > 4)
		run_ext_dgram_replaced(argv[3], argv[4]);
	if (strcmp(mode, "dserve") == 0 && argc > 3)
		run_dserve(argv[3]);
	wl_fatal("unknown mode %s", mode);
}
