/* cr's network lock (net/nft_lock.c), in a network namespace of the
 * test's own (needs root, as the suite): a connection on loopback whose
 * table drops its segments, opened by nft_lock_open (the restore's way
 * to let the traffic through before the table is deleted), closed again by
 * nft_lock_close (a restore that fails after opening it), then deleted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/nft_lock.h"

#define TABLE "cr_tcp_unit"

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int sk = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	r = sk >= 0 && ioctl(sk, SIOCGIFFLAGS, &ifr) == 0 ? 0 : -1;
	ifr.ifr_flags |= IFF_UP;
	if (r == 0)
		r = ioctl(sk, SIOCSIFFLAGS, &ifr);
	if (sk >= 0)
		close(sk);
	return r;
}

/* A connected pair on 127.0.0.1: cl the client's end, sv the server's. */
static int pair(int *cl, int *sv, unsigned *cport, unsigned *sport)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		return -1;
	*sport = ntohs(a.sin_port);
	*cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*cl < 0 || connect(*cl, (struct sockaddr *)&a, sizeof(a)) < 0 || (*sv = accept(l, NULL, NULL)) < 0)
		return -1;
	len = sizeof(a);
	if (getsockname(*cl, (struct sockaddr *)&a, &len) < 0)
		return -1;
	*cport = ntohs(a.sin_port);
	close(l);
	return 0;
}

/* The byte sv receives within ms, or -1. */
static int recv_within(int sv, int ms)
{
	struct pollfd p = { .fd = sv, .events = POLLIN };
	char c;

	if (poll(&p, 1, ms) != 1 || recv(sv, &c, 1, 0) != 1)
		return -1;
	return (unsigned char)c;
}

/* In the child, in its own network namespace: the number of the step that
 * failed, 0 if none did. */
static int run(void)
{
	struct nft_lock_ends l = { .family = AF_INET };
	cr_error_t err = NULL;
	int cl, sv;

	if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0 || pair(&cl, &sv, &l.sport, &l.dport) < 0)
		return 1;
	inet_pton(AF_INET, "127.0.0.1", l.src);
	inet_pton(AF_INET, "127.0.0.1", l.dst);
	if (nft_lock_add(-1, TABLE, &l, true, &err) < 0)
		return 2;
	if (send(cl, "a", 1, 0) != 1 || recv_within(sv, 300) != -1)
		return 3;   /* the lock lets the segment through */
	if (nft_lock_open(-1, TABLE, &err) < 0 || nft_lock_exists(-1, TABLE, &err) != 1)
		return 4;
	if (recv_within(sv, 5000) != 'a')
		return 5;   /* the retransmission did not arrive once opened */
	if (send(cl, "b", 1, 0) != 1 || recv_within(sv, 1000) != 'b')
		return 6;
	if (nft_lock_close(-1, TABLE, &l, &err) < 0)
		return 9;
	if (send(cl, "c", 1, 0) != 1 || recv_within(sv, 300) != -1)
		return 10;   /* closed again: dropped, as the dump left it */
	if (nft_lock_delete(-1, TABLE, &err) < 0 || nft_lock_exists(-1, TABLE, &err) != 0)
		return 7;
	if (recv_within(sv, 5000) != 'c')
		return 11;   /* the table gone: the retransmission arrives */
	if (nft_lock_open(-1, TABLE, &err) == 0 || err->status != ENOENT)
		return 8;   /* a table that is gone: ENOENT */
	cr_error_release(&err);
	return 0;
}

static void test_open_then_delete(void **state)
{
	pid_t child;
	int status;

	(void)state;
	if (geteuid() != 0)
		skip();   /* a network namespace and nf_tables need root (the suite runs as root) */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(run());
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_then_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
