/*
 * w_mcast STATE_DIR MODE   multicast groups of UDP sockets (t_mcast.sh)
 *
 * Runs in a network namespace the test made: lo up with multicast on and
 * a route for 224.0.0.0/4; a veth pair mca (fd09::1, fd09::3, 10.9.0.5) and
 * mcb (fd09::2).  IPv4 groups are joined on lo, sent to from 127.0.0.1 (let
 * through) and 127.0.0.2 (filtered out); IPv6 groups on mcb, sent to over
 * mca from fd09::1 (let through) and fd09::3 (filtered out).
 *
 *   groups   four sockets, each with IP_MULTICAST_ALL (and
 *            IPV6_MULTICAST_ALL) off, so that only its own groups reach it:
 *              asm4   239.1.2.3 on port 5400 (IP_ADD_MEMBERSHIP by the
 *                     interface's address), IP_MULTICAST_IF 127.0.0.1,
 *                     IP_MULTICAST_TTL 3, IP_MULTICAST_LOOP off;
 *              ssm4   232.1.1.1 from 127.0.0.1 only, port 5401
 *                     (IP_ADD_SOURCE_MEMBERSHIP: INCLUDE);
 *              excl4  239.1.2.4 on port 5402 (MCAST_JOIN_GROUP by
 *                     index, MCAST_BLOCK_SOURCE 127.0.0.2: EXCLUDE);
 *              six    dual-stack [::]:5403: ff0e::1:2 (IPV6_JOIN_GROUP on
 *                     mcb), ff3e::1:3 from fd09::1 only
 *                     (MCAST_JOIN_SOURCE_GROUP), ff0e::1:4 excluding
 *                     fd09::3 (MCAST_MSFILTER), and the IPv4 group
 *                     239.1.2.5 on lo (IP_ADD_MEMBERSHIP at SOL_IP);
 *                     IPV6_MULTICAST_IF mca, IPV6_MULTICAST_HOPS 5.
 *            Triggered: the options are checked, then new sockets of the
 *            workload send a datagram to every group from both sources,
 *            and each socket must get exactly those its filters let
 *            through (and none of the others).
 *   hostdev DEV  (in the test's own namespace, DEV a device the test may
 *            delete and make again: its index changes) a UDP socket in
 *            239.1.2.6 on DEV with 10.0.0.9 blocked, and an IPv6 one in
 *            ff0e::1:6 on DEV.  Triggered: both are members on the device
 *            now named DEV, with the same filters.
 *   if6_gone an IPv6 UDP socket with IPV6_MULTICAST_IF mcb; the test then
 *            deletes the veth pair (its dump is refused).  Triggered: the
 *            option still holds mcb's old index.
 *   if4_gone a UDP socket with IP_MULTICAST_IF 10.9.0.5 (on mca); the test
 *            then deletes that address (its dump is refused).  Triggered:
 *            the option still holds it.
 *   other_netns  (started in the harness's namespace) a UDP socket bound to
 *            127.0.0.1, then the workload moves to a network namespace of
 *            its own (unshare): the socket stays in the first (its dump is
 *            refused).  Triggered: the socket is still in another
 *            namespace than the workload's, on its port.
 */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef IPV6_MULTICAST_ALL
#define IPV6_MULTICAST_ALL 29
#endif

enum { ASM4, SSM4, EXCL4, SIX, N_SK };

static const char *const sk_names[N_SK] = { "asm4", "ssm4", "excl4", "six" };
static int sk[N_SK];

/* What each socket must get after the trigger, as "GROUP SOURCE" texts. */
#define MAX_EXPECTED 6

static const char *const expected[N_SK][MAX_EXPECTED] = {
	[ASM4] = { "239.1.2.3 127.0.0.1", "239.1.2.3 127.0.0.2" },
	[SSM4] = { "232.1.1.1 127.0.0.1" },
	[EXCL4] = { "239.1.2.4 127.0.0.1" },
	[SIX] = { "ff0e::1:2 fd09::1", "ff0e::1:2 fd09::3", "ff3e::1:3 fd09::1", "ff0e::1:4 fd09::1",
		  "239.1.2.5 127.0.0.1", "239.1.2.5 127.0.0.2" },
};

static const char *const groups4[] = { "239.1.2.3", "232.1.1.1", "239.1.2.4", "239.1.2.5" };
static const char *const groups6[] = { "ff0e::1:2", "ff3e::1:3", "ff0e::1:4" };

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static void put(struct sockaddr_storage *ss, int family, const char *addr, int port)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET) {
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		must(inet_pton(AF_INET, addr, &((struct sockaddr_in *)ss)->sin_addr) == 1, addr);
	} else {
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		must(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1, addr);
	}
}

static socklen_t len_of(int family)
{
	return family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static int udp(int family, const char *addr, int port)
{
	struct sockaddr_storage ss;
	int fd = socket(family, SOCK_DGRAM, 0);

	must(fd >= 0, "socket");
	put(&ss, family, addr, port);
	must(bind(fd, (struct sockaddr *)&ss, len_of(family)) == 0, "bind");
	return fd;
}

static unsigned ifindex(const char *name)
{
	unsigned i = if_nametoindex(name);

	must(i != 0, name);
	return i;
}

/* MCAST_JOIN_GROUP, or MCAST_JOIN_SOURCE_GROUP with a source. */
static void join(int fd, int level, int family, const char *group, const char *dev, const char *source)
{
	struct group_source_req gsr = { .gsr_interface = ifindex(dev) };

	put(&gsr.gsr_group, family, group, 0);
	if (source == NULL) {
		struct group_req gr = { .gr_interface = gsr.gsr_interface, .gr_group = gsr.gsr_group };

		must(setsockopt(fd, level, MCAST_JOIN_GROUP, &gr, sizeof(gr)) == 0, group);
		return;
	}
	put(&gsr.gsr_source, family, source, 0);
	must(setsockopt(fd, level, MCAST_JOIN_SOURCE_GROUP, &gsr, sizeof(gsr)) == 0, group);
}

static void setup_asm4(void)
{
	struct ip_mreq mr;
	struct in_addr lo = { htonl(INADDR_LOOPBACK) };

	sk[ASM4] = udp(AF_INET, "0.0.0.0", 5400);
	inet_pton(AF_INET, "239.1.2.3", &mr.imr_multiaddr);
	mr.imr_interface = lo;
	must(setsockopt(sk[ASM4], SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) == 0, "IP_ADD_MEMBERSHIP");
	must(setsockopt(sk[ASM4], SOL_IP, IP_MULTICAST_IF, &lo, sizeof(lo)) == 0, "IP_MULTICAST_IF");
	wl_setsockopt_int(sk[ASM4], SOL_IP, IP_MULTICAST_TTL, 3, "IP_MULTICAST_TTL");
	wl_setsockopt_int(sk[ASM4], SOL_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
}

static void setup_ssm4(void)
{
	struct ip_mreq_source ms;

	sk[SSM4] = udp(AF_INET, "0.0.0.0", 5401);
	inet_pton(AF_INET, "232.1.1.1", &ms.imr_multiaddr);
	inet_pton(AF_INET, "127.0.0.1", &ms.imr_interface);
	inet_pton(AF_INET, "127.0.0.1", &ms.imr_sourceaddr);
	must(setsockopt(sk[SSM4], SOL_IP, IP_ADD_SOURCE_MEMBERSHIP, &ms, sizeof(ms)) == 0, "IP_ADD_SOURCE_MEMBERSHIP");
}

static void setup_excl4(void)
{
	struct group_source_req gsr = { .gsr_interface = ifindex("lo") };

	sk[EXCL4] = udp(AF_INET, "0.0.0.0", 5402);
	join(sk[EXCL4], SOL_IP, AF_INET, "239.1.2.4", "lo", NULL);
	put(&gsr.gsr_group, AF_INET, "239.1.2.4", 0);
	put(&gsr.gsr_source, AF_INET, "127.0.0.2", 0);
	must(setsockopt(sk[EXCL4], SOL_IP, MCAST_BLOCK_SOURCE, &gsr, sizeof(gsr)) == 0, "MCAST_BLOCK_SOURCE");
}

static void setup_six(void)
{
	struct ipv6_mreq m6 = { .ipv6mr_interface = ifindex("mcb") };
	struct ip_mreqn mr = { .imr_ifindex = (int)ifindex("lo") };
	char buf[GROUP_FILTER_SIZE(1)];
	struct group_filter *gf = (struct group_filter *)buf;

	sk[SIX] = udp(AF_INET6, "::", 5403);
	inet_pton(AF_INET6, "ff0e::1:2", &m6.ipv6mr_multiaddr);
	must(setsockopt(sk[SIX], SOL_IPV6, IPV6_JOIN_GROUP, &m6, sizeof(m6)) == 0, "IPV6_JOIN_GROUP");
	join(sk[SIX], SOL_IPV6, AF_INET6, "ff3e::1:3", "mcb", "fd09::1");
	join(sk[SIX], SOL_IPV6, AF_INET6, "ff0e::1:4", "mcb", NULL);
	memset(buf, 0, sizeof(buf));
	gf->gf_interface = ifindex("mcb");
	put(&gf->gf_group, AF_INET6, "ff0e::1:4", 0);
	gf->gf_fmode = MCAST_EXCLUDE;
	gf->gf_numsrc = 1;
	put(&gf->gf_slist[0], AF_INET6, "fd09::3", 0);
	must(setsockopt(sk[SIX], SOL_IPV6, MCAST_MSFILTER, gf, GROUP_FILTER_SIZE(1)) == 0, "MCAST_MSFILTER");
	inet_pton(AF_INET, "239.1.2.5", &mr.imr_multiaddr);
	must(setsockopt(sk[SIX], SOL_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) == 0, "IP_ADD_MEMBERSHIP (IPv6 socket)");
	wl_setsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_IF, (int)ifindex("mca"), "IPV6_MULTICAST_IF");
	wl_setsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_HOPS, 5, "IPV6_MULTICAST_HOPS");
	wl_setsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
}

static void setup_groups(void)
{
	setup_asm4();
	setup_ssm4();
	setup_excl4();
	setup_six();
	for (int i = 0; i < N_SK; i++)
		wl_setsockopt_int(sk[i], SOL_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
}

static void check_options(void)
{
	struct in_addr a = { 0 };
	socklen_t len = sizeof(a);

	wl_check(getsockopt(sk[ASM4], SOL_IP, IP_MULTICAST_IF, &a, &len) == 0 && a.s_addr == htonl(INADDR_LOOPBACK),
		 "asm4: IP_MULTICAST_IF is %s, not 127.0.0.1", inet_ntoa(a));
	wl_check(wl_getsockopt_int(sk[ASM4], SOL_IP, IP_MULTICAST_TTL) == 3, "asm4: IP_MULTICAST_TTL %d",
		 wl_getsockopt_int(sk[ASM4], SOL_IP, IP_MULTICAST_TTL));
	wl_check(wl_getsockopt_int(sk[ASM4], SOL_IP, IP_MULTICAST_LOOP) == 0, "asm4: IP_MULTICAST_LOOP is on");
	wl_check(wl_getsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_IF) == (int)if_nametoindex("mca"),
		 "six: IPV6_MULTICAST_IF %d, not mca's index %u", wl_getsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_IF),
		 if_nametoindex("mca"));
	wl_check(wl_getsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_HOPS) == 5, "six: IPV6_MULTICAST_HOPS %d",
		 wl_getsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_HOPS));
	wl_check(wl_getsockopt_int(sk[SIX], SOL_IPV6, IPV6_MULTICAST_ALL) == 0, "six: IPV6_MULTICAST_ALL is on");
	for (int i = 0; i < N_SK; i++)
		wl_check(wl_getsockopt_int(sk[i], SOL_IP, IP_MULTICAST_ALL) == 0, "%s: IP_MULTICAST_ALL is on", sk_names[i]);
}

/* A datagram "GROUP SOURCE" to GROUP on port, from a new socket bound to
 * SOURCE (IPv6: sent over mca). */
static void send_one(int family, const char *group, int port, const char *source)
{
	struct sockaddr_storage to;
	char text[96];
	int fd = udp(family, source, 0), n;

	if (family == AF_INET6)
		wl_setsockopt_int(fd, SOL_IPV6, IPV6_MULTICAST_IF, (int)ifindex("mca"), "IPV6_MULTICAST_IF (sender)");
	put(&to, family, group, port);
	n = snprintf(text, sizeof(text), "%s %s", group, source);
	wl_check(sendto(fd, text, (size_t)n, 0, (struct sockaddr *)&to, len_of(family)) == n, "send %s: %s", text,
		 strerror(errno));
	close(fd);
}

static void send_all(void)
{
	static const char *const src4[] = { "127.0.0.1", "127.0.0.2" }, *const src6[] = { "fd09::1", "fd09::3" };

	for (size_t g = 0; g < sizeof(groups4) / sizeof(groups4[0]); g++)
		for (int s = 0; s < 2; s++)
			send_one(AF_INET, groups4[g], g < 3 ? 5400 + (int)g : 5403, src4[s]);
	for (size_t g = 0; g < sizeof(groups6) / sizeof(groups6[0]); g++)
		for (int s = 0; s < 2; s++)
			send_one(AF_INET6, groups6[g], 5403, src6[s]);
}

static bool is_expected(int i, const char *text, bool *seen)
{
	for (int e = 0; e < MAX_EXPECTED && expected[i][e] != NULL; e++)
		if (strcmp(expected[i][e], text) == 0 && !seen[e])
			return seen[e] = true;
	return false;
}

/* Every datagram that reaches socket i within a second is expected, and
 * every expected one came. */
static void check_received(int i)
{
	bool seen[MAX_EXPECTED] = { false };
	char text[128];
	ssize_t n;

	while (wl_readable(sk[i], 1000) && (n = recv(sk[i], text, sizeof(text) - 1, MSG_DONTWAIT)) > 0) {
		text[n] = '\0';
		wl_check(is_expected(i, text, seen), "%s got '%s', which its groups and filters keep out", sk_names[i],
			 text);
	}
	for (int e = 0; e < MAX_EXPECTED && expected[i][e] != NULL; e++)
		wl_check(seen[e], "%s did not get '%s'", sk_names[i], expected[i][e]);
}

static void check_groups(void)
{
	check_options();
	send_all();
	for (int i = 0; i < N_SK; i++)
		check_received(i);
}

static char **argv_;
static int old_index;

static void setup_hostdev(void)
{
	struct group_source_req gsr = { 0 };

	if (argv_[3] == NULL)
		wl_fatal("hostdev needs a device");
	sk[0] = udp(AF_INET, "0.0.0.0", 0);
	join(sk[0], SOL_IP, AF_INET, "239.1.2.6", argv_[3], NULL);
	gsr.gsr_interface = ifindex(argv_[3]);
	put(&gsr.gsr_group, AF_INET, "239.1.2.6", 0);
	put(&gsr.gsr_source, AF_INET, "10.0.0.9", 0);
	must(setsockopt(sk[0], SOL_IP, MCAST_BLOCK_SOURCE, &gsr, sizeof(gsr)) == 0, "MCAST_BLOCK_SOURCE");
	sk[1] = udp(AF_INET6, "::", 0);
	join(sk[1], SOL_IPV6, AF_INET6, "ff0e::1:6", argv_[3], NULL);
}

/* The filter of fd's membership of group on dev: its mode, its number of
 * sources and the first one (text); false when it is no member. */
static bool filter_of(int fd, int family, const char *group, const char *dev, uint32_t *mode, uint32_t *n,
		      char *first, size_t size)
{
	char buf[GROUP_FILTER_SIZE(1)];
	struct group_filter *gf = (struct group_filter *)buf;
	socklen_t len = sizeof(buf);

	memset(buf, 0, sizeof(buf));
	gf->gf_interface = if_nametoindex(dev);
	gf->gf_numsrc = 1;
	put(&gf->gf_group, family, group, 0);
	if (getsockopt(fd, family == AF_INET ? SOL_IP : SOL_IPV6, MCAST_MSFILTER, gf, &len) < 0)
		return false;
	*mode = gf->gf_fmode;
	*n = gf->gf_numsrc;
	first[0] = '\0';
	if (gf->gf_numsrc > 0)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&gf->gf_slist[0])->sin_addr, first, (socklen_t)size);
	return true;
}

static void check_hostdev(void)
{
	uint32_t mode = 0, n = 0;
	char first[INET6_ADDRSTRLEN];

	if (wl_check(filter_of(sk[0], AF_INET, "239.1.2.6", argv_[3], &mode, &n, first, sizeof(first)),
		     "not in 239.1.2.6 on %s (index %u): %s", argv_[3], if_nametoindex(argv_[3]), strerror(errno)))
		wl_check(mode == MCAST_EXCLUDE && n == 1 && strcmp(first, "10.0.0.9") == 0,
			 "239.1.2.6: mode %u, %u source(s), first %s", mode, n, first);
	if (wl_check(filter_of(sk[1], AF_INET6, "ff0e::1:6", argv_[3], &mode, &n, first, sizeof(first)),
		     "not in ff0e::1:6 on %s: %s", argv_[3], strerror(errno)))
		wl_check(mode == MCAST_EXCLUDE && n == 0, "ff0e::1:6: mode %u, %u source(s)", mode, n);
}

static void setup_if6_gone(void)
{
	sk[0] = udp(AF_INET6, "::", 0);
	old_index = (int)ifindex("mcb");
	wl_setsockopt_int(sk[0], SOL_IPV6, IPV6_MULTICAST_IF, old_index, "IPV6_MULTICAST_IF");
}

static void check_if6_gone(void)
{
	wl_check(wl_getsockopt_int(sk[0], SOL_IPV6, IPV6_MULTICAST_IF) == old_index, "IPV6_MULTICAST_IF %d, not %d",
		 wl_getsockopt_int(sk[0], SOL_IPV6, IPV6_MULTICAST_IF), old_index);
}

static void setup_if4_gone(void)
{
	struct in_addr a;

	sk[0] = udp(AF_INET, "0.0.0.0", 0);
	inet_pton(AF_INET, "10.9.0.5", &a);
	must(setsockopt(sk[0], SOL_IP, IP_MULTICAST_IF, &a, sizeof(a)) == 0, "IP_MULTICAST_IF");
}

static void check_if4_gone(void)
{
	struct in_addr a = { 0 };
	socklen_t len = sizeof(a);

	wl_check(getsockopt(sk[0], SOL_IP, IP_MULTICAST_IF, &a, &len) == 0 && a.s_addr == inet_addr("10.9.0.5"),
		 "IP_MULTICAST_IF is %s, not 10.9.0.5", inet_ntoa(a));
}

static struct sockaddr_storage bound;

static void setup_other_netns(void)
{
	socklen_t len = sizeof(bound);

	sk[0] = udp(AF_INET, "127.0.0.1", 0);
	must(getsockname(sk[0], (struct sockaddr *)&bound, &len) == 0, "getsockname");
	must(unshare(CLONE_NEWNET) == 0, "unshare(CLONE_NEWNET)");
}

static void check_other_netns(void)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	struct stat its, mine;
	int ns = ioctl(sk[0], SIOCGSKNS);

	wl_check(ns >= 0 && fstat(ns, &its) == 0 && stat("/proc/self/ns/net", &mine) == 0 && its.st_ino != mine.st_ino,
		 "the socket is not in another network namespace");
	wl_check(getsockname(sk[0], (struct sockaddr *)&now, &len) == 0 &&
		 memcmp(&now, &bound, sizeof(struct sockaddr_in)) == 0, "the socket is no longer bound where it was");
}

int main(int argc, char **argv)
{
	static const struct wl_mode modes[] = {
		{ "groups", setup_groups, check_groups },
		{ "hostdev", setup_hostdev, check_hostdev },
		{ "if6_gone", setup_if6_gone, check_if6_gone },
		{ "if4_gone", setup_if4_gone, check_if4_gone },
		{ "other_netns", setup_other_netns, check_other_netns },
	};

	argv_ = argv;

	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_mcast STATE_DIR MODE");
}
