#include "fd/inet_mcast.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void seen_add(struct mc_list *l, int family, const void *group, int ifindex, const char *ifname)
{
	struct mc_seen *s;

	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	s = &l->v[l->n++];
	memset(s, 0, sizeof(*s));
	s->family = family;
	if (group != NULL)
		memcpy(s->group, group, family == AF_INET ? 4 : 16);
	s->ifindex = ifindex;
	snprintf(s->ifname, sizeof(s->ifname), "%s", ifname);
}

/* /proc/PID/net/igmp: a line per device, "IDX\tNAME: COUNT QUERIER", then
 * one per group joined on it, "\t\t\t\tGROUP USERS TIMER\tREPORTER", GROUP
 * the 32 bits of the address as the kernel holds them (network order). */
void mcast_parse_igmp(FILE *f, struct mc_list *l)
{
	cleanup_free char *line = NULL;
	char name[IFNAMSIZ + 2] = "", *colon;
	size_t cap = 0;
	int idx = 0;
	uint32_t g;

	while (f != NULL && getline(&line, &cap, f) > 0) {
		if (line[0] == '\t') {
			if (idx > 0 && sscanf(line, "%x", &g) == 1)
				seen_add(l, AF_INET, &g, idx, name);
		} else if (sscanf(line, "%d %17s", &idx, name) == 2) {
			if ((colon = strchr(name, ':')) != NULL)
				*colon = '\0';
			seen_add(l, 0, NULL, idx, name);
		} else {
			idx = 0;
		}
	}
}

static bool hex16(const char *text, uint8_t *out)
{
	unsigned b;

	if (strlen(text) != 32)
		return false;
	for (int i = 0; i < 16; i++) {
		if (sscanf(text + 2 * i, "%2x", &b) != 1)
			return false;
		out[i] = (uint8_t)b;
	}
	return true;
}

/* /proc/PID/net/igmp6: "IDX NAME GROUP USERS FLAGS TIMER", GROUP in 32
 * hex digits. */
void mcast_parse_igmp6(FILE *f, struct mc_list *l)
{
	cleanup_free char *line = NULL;
	char name[IFNAMSIZ + 1], hex[40];
	uint8_t g[16];
	size_t cap = 0;
	int idx;

	while (f != NULL && getline(&line, &cap, f) > 0)
		if (sscanf(line, "%d %16s %39s", &idx, name, hex) == 3 && hex16(hex, g))
			seen_add(l, AF_INET6, g, idx, name);
}

/* /proc/PID/net/if_inet6, a line per IPv6 address: "ADDRESS IDX
 * PREFIXLEN SCOPE FLAGS NAME", IDX in hex. */
void mcast_parse_if_inet6(FILE *f, struct mc_list *l)
{
	cleanup_free char *line = NULL;
	char name[IFNAMSIZ + 1], hex[40];
	size_t cap = 0;
	unsigned idx;

	while (f != NULL && getline(&line, &cap, f) > 0)
		if (sscanf(line, "%39s %x %*x %*x %*x %16s", hex, &idx, name) == 3)
			seen_add(l, 0, NULL, (int)idx, name);
}

/* A file the kernel has not (no IPv6, no multicast) lists nothing. */
static int read_net(pid_t pid, const char *name, void (*parse)(FILE *, struct mc_list *), struct mc_list *l,
		    cr_error_t *err)
{
	char path[64];
	cleanup_fclose FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, name);
	f = fopen(path, "re");
	if (f == NULL && errno != ENOENT)
		return cr_error(err, errno, "%s", path);
	parse(f, l);
	return 0;
}

const char *mcast_ifname_of(const struct mc_list *l, int ifindex)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].ifindex == ifindex)
			return l->v[i].ifname;
	return NULL;
}

static void put_addr(struct sockaddr_storage *ss, int family, const void *addr)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = (sa_family_t)family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, addr, 16);
}

static const void *addr_in(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return &((const struct sockaddr_in *)ss)->sin_addr;
	return &((const struct sockaddr_in6 *)ss)->sin6_addr;
}

static size_t filter_size(uint32_t numsrc)
{
	size_t size = GROUP_FILTER_SIZE(numsrc);

	return size < sizeof(struct group_filter) ? sizeof(struct group_filter) : size;
}

static int level_of(int family)
{
	return family == AF_INET ? SOL_IP : SOL_IPV6;
}

/* Whether fd joined s's group on s's device: 1 and its filter (to free),
 * 0 when it did not, -1 on error. */
static int probe(int fd, const struct mc_seen *s, struct group_filter **out, cr_error_t *err)
{
	uint32_t n = 0;

	for (;;) {
		struct group_filter *gf = xcalloc(1, filter_size(n));
		socklen_t len = (socklen_t)GROUP_FILTER_SIZE(n);

		gf->gf_interface = (uint32_t)s->ifindex;
		gf->gf_numsrc = n;
		put_addr(&gf->gf_group, s->family, s->group);
		if (getsockopt(fd, level_of(s->family), MCAST_MSFILTER, gf, &len) < 0) {
			int e = errno;

			free(gf);
			return e == EADDRNOTAVAIL ? 0 : cr_error(err, e, "getsockopt MCAST_MSFILTER");
		}
		if (gf->gf_numsrc <= n) {
			*out = gf;
			return 1;
		}
		n = gf->gf_numsrc;   /* sources were added meanwhile: ask again with room for them */
		free(gf);
	}
}

static char *text_of(struct arena *a, int family, const void *addr)
{
	char t[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, t, sizeof(t));
	return arena_strdup(a, t);
}

static int record(struct arena *a, const struct mc_seen *s, const struct group_filter *gf, const char *me,
		  InetMcastEntry *m, cr_error_t *err)
{
	inet_mcast_entry__init(m);
	m->family = s->family;
	m->group = text_of(a, s->family, s->group);
	m->ifname = arena_strdup(a, s->ifname);
	m->exclude = gf->gf_fmode == MCAST_EXCLUDE;
	if (!m->exclude && gf->gf_numsrc == 0)
		return cr_error(err, 0, "%s: unsupported: multicast group %s on %s in INCLUDE mode with no source (a "
				"source join that failed half-way; no setsockopt makes one)", me, m->group, m->ifname);
	m->n_sources = gf->gf_numsrc;
	m->sources = arena_array(a, char *, gf->gf_numsrc);
	for (uint32_t i = 0; i < gf->gf_numsrc; i++)
		m->sources[i] = text_of(a, s->family, addr_in(&gf->gf_slist[i]));
	return 0;
}

static int dump_groups(struct arena *a, int fd, int family, const struct mc_list *l, const char *me, InetSkEntry *e,
		       cr_error_t *err)
{
	if (l->n == 0)
		return 0;
	e->mcast = arena_array(a, InetMcastEntry *, l->n);
	for (size_t i = 0; i < l->n; i++) {
		const struct mc_seen *s = &l->v[i];
		cleanup_free struct group_filter *gf = NULL;
		int r;

		/* An IPv4 socket holds no IPv6 group. */
		if (s->family == 0 || (s->family == AF_INET6 && family != AF_INET6))
			continue;
		r = probe(fd, s, &gf, err);
		if (r < 0)
			return cr_error_wrap(err, "%s: multicast group %s on %s", me, text_of(a, s->family, s->group),
					     s->ifname);
		if (r == 0)
			continue;
		e->mcast[e->n_mcast] = arena_new(a, InetMcastEntry);
		if (record(a, s, gf, me, e->mcast[e->n_mcast], err) < 0)
			return -1;
		e->n_mcast++;
	}
	return 0;
}

bool mcast_is_local4(FILE *f, struct in_addr a)
{
	cleanup_free char *line = NULL;
	struct in_addr leaf = { 0 };
	char text[INET_ADDRSTRLEN];
	size_t cap = 0;
	unsigned len;

	while (f != NULL && getline(&line, &cap, f) > 0) {
		if (sscanf(line, " |-- %15s", text) == 1) {
			if (inet_pton(AF_INET, text, &leaf) != 1)
				leaf.s_addr = 0;
		} else if (sscanf(line, " /%u", &len) == 1 && len <= 32 && strstr(line, " LOCAL") != NULL) {
			uint32_t mask = len == 0 ? 0 : htonl(~0u << (32 - len));

			if (((a.s_addr ^ leaf.s_addr) & mask) == 0)
				return true;
		}
	}
	return false;
}

/* IP_MULTICAST_IF is set again by its address, which the kernel looks
 * up among the local ones of the namespace (ip_dev_find): one removed since
 * it was set could not be. */
static int check_local4(pid_t pid, struct in_addr a, const char *me, cr_error_t *err)
{
	char path[64], text[INET_ADDRSTRLEN];
	cleanup_fclose FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/net/fib_trie", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return cr_error(err, errno, "%s", path);
	if (mcast_is_local4(f, a))
		return 0;
	inet_ntop(AF_INET, &a, text, sizeof(text));
	return cr_error(err, 0, "%s: unsupported: IP_MULTICAST_IF %s, an address no device of the namespace has "
			"any more (the restore sets it by its address)", me, text);
}

static int dump_interfaces(struct arena *a, pid_t pid, int fd, int family, bool stream, const struct mc_list *l,
			   const char *me, InetSkEntry *e, cr_error_t *err)
{
	struct in_addr addr = { 0 };
	socklen_t len = sizeof(addr);
	int idx = 0;
	const char *name;

	/* TCP sends no multicast, and no program can set these on it: an
	 * accepted IPv6 connection has the device its SYN came in by, which
	 * is the kernel's to give again. */
	if (stream)
		return 0;
	/* An IPv6 socket has both: it sends to IPv4 groups too. */
	if (getsockopt(fd, SOL_IP, IP_MULTICAST_IF, &addr, &len) < 0)
		return cr_error(err, errno, "%s: getsockopt IP_MULTICAST_IF", me);
	if (addr.s_addr != htonl(INADDR_ANY)) {
		if (check_local4(pid, addr, me, err) < 0)
			return -1;
		e->mcast_if_addr = text_of(a, AF_INET, &addr);
	}
	len = sizeof(idx);
	if (family != AF_INET6 || getsockopt(fd, SOL_IPV6, IPV6_MULTICAST_IF, &idx, &len) < 0 || idx == 0)
		return 0;
	name = mcast_ifname_of(l, idx);
	if (name == NULL)
		return cr_error(err, 0, "%s: unsupported: IPV6_MULTICAST_IF on interface index %d, which no IPv6 "
				"address or multicast group names", me, idx);
	e->mcast_if6 = arena_strdup(a, name);
	return 0;
}

int inet_mcast_dump(struct arena *a, pid_t pid, int fd, int family, bool stream, const char *me, InetSkEntry *e,
		    cr_error_t *err)
{
	struct mc_list l = { 0 };
	int r = read_net(pid, "igmp", mcast_parse_igmp, &l, err);

	if (r == 0 && family == AF_INET6)
		r = read_net(pid, "igmp6", mcast_parse_igmp6, &l, err);
	if (r == 0 && family == AF_INET6)
		r = read_net(pid, "if_inet6", mcast_parse_if_inet6, &l, err);
	if (r == 0)
		r = dump_groups(a, fd, family, &l, me, e, err);
	if (r == 0)
		r = dump_interfaces(a, pid, fd, family, stream, &l, me, e, err);
	free(l.v);
	return r;
}

/* --------------------------------------------------------------- restore */

static bool parse(int family, const char *text, struct sockaddr_storage *ss)
{
	uint8_t addr[16];

	if (text == NULL || inet_pton(family, text, addr) != 1)
		return false;
	put_addr(ss, family, addr);
	return true;
}

static bool is_multicast(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return IN_MULTICAST(ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr));
	return IN6_IS_ADDR_MULTICAST(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

static bool good_ifname(const char *name)
{
	return name != NULL && name[0] != '\0' && strlen(name) < IFNAMSIZ;
}

static int validate_one(int sk_family, const InetMcastEntry *m, cr_error_t *err)
{
	struct sockaddr_storage ss;

	if ((m->family != AF_INET && m->family != AF_INET6) || (m->family == AF_INET6 && sk_family != AF_INET6))
		return cr_error(err, 0, "multicast group of family %d on a socket of family %d", m->family, sk_family);
	if (!parse(m->family, m->group, &ss) || !is_multicast(&ss))
		return cr_error(err, 0, "multicast group '%s' is not a multicast address", m->group ? m->group : "");
	if (!good_ifname(m->ifname))
		return cr_error(err, 0, "multicast group %s without its device's name", m->group);
	if (!m->exclude && m->n_sources == 0)
		return cr_error(err, 0, "multicast group %s in INCLUDE mode with no source", m->group);
	for (size_t i = 0; i < m->n_sources; i++)
		if (!parse(m->family, m->sources[i], &ss))
			return cr_error(err, 0, "multicast group %s: source '%s'", m->group,
					m->sources[i] ? m->sources[i] : "");
	return 0;
}

int inet_mcast_validate(const InetSkEntry *e, cr_error_t *err)
{
	struct sockaddr_storage ss;

	for (size_t i = 0; i < e->n_mcast; i++)
		if (validate_one(e->family, e->mcast[i], err) < 0)
			return -1;
	if (e->mcast_if_addr != NULL && !parse(AF_INET, e->mcast_if_addr, &ss))
		return cr_error(err, 0, "IP_MULTICAST_IF address '%s'", e->mcast_if_addr);
	if (e->mcast_if6 != NULL && (e->family != AF_INET6 || !good_ifname(e->mcast_if6)))
		return cr_error(err, 0, "IPV6_MULTICAST_IF device '%s'", e->mcast_if6);
	return 0;
}

static int device(const char *name, const char *me, const char *what, cr_error_t *err)
{
	unsigned idx = if_nametoindex(name);

	if (idx == 0)
		return cr_error(err, errno, "%s: %s: no device %s in this network namespace", me, what, name);
	return (int)idx;
}

/* Joined (EXCLUDE, no source), then given its filter when it has another. */
static int join(int fd, const InetMcastEntry *m, const char *me, cr_error_t *err)
{
	struct group_req gr = { 0 };
	cleanup_free struct group_filter *gf = NULL;
	char what[INET6_ADDRSTRLEN + 32];
	int idx;

	snprintf(what, sizeof(what), "multicast group %s", m->group);
	idx = device(m->ifname, me, what, err);
	if (idx < 0)
		return -1;
	gr.gr_interface = (uint32_t)idx;
	parse(m->family, m->group, &gr.gr_group);
	if (setsockopt(fd, level_of(m->family), MCAST_JOIN_GROUP, &gr, sizeof(gr)) < 0)
		return cr_error(err, errno, "%s: join %s on %s", me, what, m->ifname);
	if (m->exclude && m->n_sources == 0)
		return 0;
	gf = xcalloc(1, filter_size((uint32_t)m->n_sources));
	gf->gf_interface = (uint32_t)idx;
	gf->gf_group = gr.gr_group;
	gf->gf_fmode = m->exclude ? MCAST_EXCLUDE : MCAST_INCLUDE;
	gf->gf_numsrc = (uint32_t)m->n_sources;
	for (size_t i = 0; i < m->n_sources; i++)
		parse(m->family, m->sources[i], &gf->gf_slist[i]);
	if (setsockopt(fd, level_of(m->family), MCAST_MSFILTER, gf, (socklen_t)GROUP_FILTER_SIZE(m->n_sources)) < 0)
		return cr_error(err, errno, "%s: the source filter of %s on %s (%zu source(s))", me, what, m->ifname,
				m->n_sources);
	return 0;
}

int inet_mcast_restore(int fd, const InetSkEntry *e, const char *me, cr_error_t *err)
{
	struct in_addr addr;
	int idx;

	for (size_t i = 0; i < e->n_mcast; i++)
		if (join(fd, e->mcast[i], me, err) < 0)
			return -1;
	if (e->mcast_if_addr != NULL) {
		inet_pton(AF_INET, e->mcast_if_addr, &addr);
		if (setsockopt(fd, SOL_IP, IP_MULTICAST_IF, &addr, sizeof(addr)) < 0)
			return cr_error(err, errno, "%s: IP_MULTICAST_IF %s (no device holds that address here?)", me,
					e->mcast_if_addr);
	}
	if (e->mcast_if6 != NULL) {
		idx = device(e->mcast_if6, me, "IPV6_MULTICAST_IF", err);
		if (idx < 0 || setsockopt(fd, SOL_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0)
			return idx < 0 ? -1 : cr_error(err, errno, "%s: IPV6_MULTICAST_IF %s", me, e->mcast_if6);
	}
	return 0;
}
