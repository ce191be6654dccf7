/* Multicast state of inet sockets (fd/inet_mcast.c): the /proc files of a
 * network namespace, recorded here, give the candidate groups and the
 * devices' names; what a restore accepts of the images' groups. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "asserts.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fd/inet_mcast.h"

/* Recorded on Linux 6.18: lo and a device with a name of 15 characters
 * (no room for the padding before its colon), then one without IPv4
 * groups. */
static const char igmp[] =
	"Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
	"1\tlo        :     2      V3\n"
	"\t\t\t\t030201EF     1 0:00000000\t\t0\n"
	"\t\t\t\t010000E0     1 0:00000000\t\t0\n"
	"7\tcrmc1234567890a:     1      V3\n"
	"\t\t\t\t060201EF     2 0:00000000\t\t0\n"
	"9\tmcb       :     0      V3\n";

static const char igmp6[] =
	"1    lo              ff0e0000000000000000000000010002     1 00000004 0\n"
	"1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
	"12   mcb             ff3e0000000000000000000000010003     1 00000004 0\n";

static const char if_inet6[] =
	"fd090000000000000000000000000001 0b 40 00 80     mca\n"
	"00000000000000000000000000000001 01 80 10 80       lo\n";

static void parse(const char *text, void (*fn)(FILE *, struct mc_list *), struct mc_list *l)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	assert_non_null(f);
	fn(f, l);
	fclose(f);
}

static void assert_group(const struct mc_seen *s, int family, const char *group, int ifindex, const char *name)
{
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(s->family, family);
	inet_ntop(family, s->group, text, sizeof(text));
	assert_string_equal(text, group);
	assert_int_equal(s->ifindex, ifindex);
	assert_string_equal(s->ifname, name);
}

static void test_parse(void **state)
{
	struct mc_list l = { 0 };
	size_t groups = 0;

	(void)state;
	parse(igmp, mcast_parse_igmp, &l);
	parse(igmp6, mcast_parse_igmp6, &l);
	parse(if_inet6, mcast_parse_if_inet6, &l);
	mcast_parse_igmp(NULL, &l);   /* a file the kernel has not: nothing */
	for (size_t i = 0; i < l.n; i++)
		groups += l.v[i].family != 0;
	assert_int_equal(groups, 6);
	assert_group(&l.v[1], AF_INET, "239.1.2.3", 1, "lo");
	assert_group(&l.v[2], AF_INET, "224.0.0.1", 1, "lo");
	assert_group(&l.v[4], AF_INET, "239.1.2.6", 7, "crmc1234567890a");
	assert_group(&l.v[6], AF_INET6, "ff0e::1:2", 1, "lo");
	assert_group(&l.v[8], AF_INET6, "ff3e::1:3", 12, "mcb");
	assert_string_equal(mcast_ifname_of(&l, 9), "mcb");
	assert_string_equal(mcast_ifname_of(&l, 11), "mca");   /* if_inet6's index is hex */
	assert_null(mcast_ifname_of(&l, 5));
	free(l.v);
}

/* Recorded in a namespace with lo, 10.9.0.5/32 and 10.1.0.1/24 (the Local
 * table; Main shows the same leaves). */
static const char fib_trie[] =
	"Local:\n"
	"  +-- 0.0.0.0/1 2 0 2\n"
	"     +-- 10.0.0.0/12 2 0 2\n"
	"        |-- 10.1.0.1\n"
	"           /32 host LOCAL\n"
	"        |-- 10.9.0.5\n"
	"           /32 host LOCAL\n"
	"     +-- 127.0.0.0/8 2 0 2\n"
	"        +-- 127.0.0.0/31 1 0 0\n"
	"           |-- 127.0.0.0\n"
	"              /8 host LOCAL\n"
	"           |-- 127.0.0.1\n"
	"              /32 host LOCAL\n"
	"        |-- 127.255.255.255\n"
	"           /32 link BROADCAST\n";

static bool local4(const char *addr)
{
	FILE *f = fmemopen((void *)fib_trie, strlen(fib_trie), "r");
	struct in_addr a;
	bool r;

	assert_non_null(f);
	assert_int_equal(inet_pton(AF_INET, addr, &a), 1);
	r = mcast_is_local4(f, a);
	fclose(f);
	return r;
}

static void test_local4(void **state)
{
	(void)state;
	assert_true(local4("10.9.0.5"));
	assert_true(local4("10.1.0.1"));
	assert_true(local4("127.0.0.1"));
	assert_true(local4("127.0.0.2"));   /* 127.0.0.0/8 is local */
	assert_false(local4("10.9.0.6"));
	assert_false(local4("10.1.0.2"));   /* in 10.1.0.0/24, a link route, not a local one */
	assert_false(mcast_is_local4(NULL, (struct in_addr){ htonl(INADDR_LOOPBACK) }));
}

struct model {
	InetSkEntry e;
	InetMcastEntry m, *ms[1];
	char *sources[1];
};

static int setup(void **state)
{
	struct model *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return -1;
	inet_sk_entry__init(&m->e);
	m->e.family = AF_INET6;
	inet_mcast_entry__init(&m->m);
	m->m.family = AF_INET6;
	m->m.group = "ff3e::1:3";
	m->m.ifname = "mcb";
	m->m.exclude = false;
	m->sources[0] = "fd09::1";
	m->m.sources = m->sources;
	m->m.n_sources = 1;
	m->ms[0] = &m->m;
	m->e.mcast = m->ms;
	m->e.n_mcast = 1;
	m->e.mcast_if6 = "mca";
	m->e.mcast_if_addr = "127.0.0.1";
	*state = m;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void test_valid(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;

	assert_ok(inet_mcast_validate(&m->e, &err), &err);
	m->m.family = AF_INET;   /* an IPv4 group of an IPv6 socket */
	m->m.group = "232.1.1.1";
	m->sources[0] = "127.0.0.1";
	assert_ok(inet_mcast_validate(&m->e, &err), &err);
	m->m.exclude = true;
	m->m.n_sources = 0;
	assert_ok(inet_mcast_validate(&m->e, &err), &err);
}

static void test_refused(void **state)
{
	struct model *m = *state;
	cr_error_t err = NULL;

	m->e.family = AF_INET;
	m->e.mcast_if6 = NULL;
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);   /* an IPv6 group on an IPv4 socket */
	assert_err_has(&err, "family 10 on a socket of family 2", NULL);
	m->e.family = AF_INET6;
	m->m.group = "fd09::1";
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "is not a multicast address", NULL);
	m->m.group = "ff3e::1:3";
	m->m.ifname = "";
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "without its device's name", NULL);
	m->m.ifname = "a-name-too-long-for-linux";
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "without its device's name", NULL);
	m->m.ifname = "mcb";
	m->sources[0] = "127.0.0.1";   /* not of the group's family */
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "source '127.0.0.1'", NULL);
	m->m.n_sources = 0;
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "INCLUDE mode with no source", NULL);
	m->m.exclude = true;
	m->e.mcast_if_addr = "::1";
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "IP_MULTICAST_IF address '::1'", NULL);
	m->e.mcast_if_addr = NULL;
	m->e.family = AF_INET;
	m->m.family = AF_INET;
	m->m.group = "239.1.2.3";
	m->e.mcast_if6 = "mca";
	assert_int_equal(inet_mcast_validate(&m->e, &err), -1);
	assert_err_has(&err, "IPV6_MULTICAST_IF device 'mca'", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_local4),
		cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
