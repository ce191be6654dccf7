/* Netlink sockets of NETLINK_ROUTE, NETLINK_AUDIT, NETLINK_KOBJECT_UEVENT,
 * NETLINK_GENERIC and NETLINK_SOCK_DIAG: bound (or not) and unconnected,
 * with their multicast groups and options.
 *
 * Dump: sock_diag (fd/inet_diag.h) gives the port id, the groups, whether
 * a dump the program asked for is still being answered and what is
 * queued; options are read on cr's duplicate (fd/sk_opts.h).  Refused: a
 * connected socket (a destination port id or group), a socket in the
 * middle of a dump (its remaining answers would be lost), other netlink
 * protocols, messages queued and not yet read (the kernel sent them and
 * nothing can send them again: a program waiting for an answer that was
 * queued would wait for ever), unless --skip-in-flight, which drops them
 * with a warning.
 *
 * Restore: the socket is bound to its dumped port id (whether the program
 * or the kernel chose it: libraries keep it, and the kernel's choice, the
 * pid, is the same pid after restore), with the groups up to 32 in the
 * bind and the others by NETLINK_ADD_MEMBERSHIP.  A port id taken by
 * another socket fails the restore naming it. */
#include "fd/fdkind.h"
#include "fd/fdshare.h"
#include "fd/inet_diag.h"
#include "fd/sk_opts.h"
#include "os/log.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MAX_GROUP (NETLINK_DIAG_GROUP_WORDS * 32)

static bool protocol_kept(unsigned protocol)
{
	return protocol == NETLINK_ROUTE || protocol == NETLINK_AUDIT || protocol == NETLINK_KOBJECT_UEVENT ||
	       protocol == NETLINK_GENERIC || protocol == NETLINK_SOCK_DIAG;
}

static bool netlink_match(const struct fd_probe *p)
{
	static const char *const names[] = { "NETLINK", NULL };

	return sk_proto_is(p, names);
}

static int check(const struct netlink_diag_sk *d, const char *me, cr_error_t *err)
{
	if (!protocol_kept(d->protocol))
		return cr_error(err, 0, "%s: unsupported: a netlink socket of protocol %u (cr restores NETLINK_ROUTE, "
				"AUDIT, KOBJECT_UEVENT, GENERIC and SOCK_DIAG)", me, d->protocol);
	if (d->dst_portid != 0 || d->dst_group != 0)
		return cr_error(err, 0, "%s: unsupported: a netlink socket connected to port id %u group %u", me,
				d->dst_portid, d->dst_group);
	if (d->flags & NDIAG_FLAG_CB_RUNNING)
		return cr_error(err, 0, "%s: unsupported: a netlink socket whose dump request is still being "
				"answered (read the answer before dumping)", me);
	return 0;
}

static void keep_groups(struct dump_ctx *ctx, const struct netlink_diag_sk *d, NetlinkSkEntry *e)
{
	e->groups = arena_array(&ctx->arena, uint32_t, MAX_GROUP);
	for (uint32_t g = 1; g <= MAX_GROUP; g++)
		if (d->groups[(g - 1) / 32] & (1u << ((g - 1) % 32)))
			e->groups[e->n_groups++] = g;
}

/* A socket that was never bound is not in the tables sock_diag walks: it
 * is described from cr's duplicate (the protocol, type and groups). */
static int describe_unbound(int fd, struct netlink_diag_sk *d, const char *link, cr_error_t *err)
{
	struct sockaddr_nl a = { 0 };
	socklen_t len = sizeof(a), glen = sizeof(d->groups);
	int v;

	memset(d, 0, sizeof(*d));
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.nl_family != AF_NETLINK)
		return cr_error(err, errno, "%s: getsockname", link);
	if (a.nl_pid != 0)
		return cr_error(err, 0, "%s: sock_diag does not know it, yet it has port id %u", link, a.nl_pid);
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0)
		return cr_error(err, errno, "%s: SO_PROTOCOL", link);
	d->protocol = (uint8_t)v;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return cr_error(err, errno, "%s: SO_TYPE", link);
	d->type = (uint8_t)v;
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, d->groups, &glen) < 0)
		return cr_error(err, errno, "%s: NETLINK_LIST_MEMBERSHIPS", link);
	return 0;
}

static int netlink_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe,
			cr_error_t *err)
{
	NetlinkSkEntry *e = arena_new(&ctx->arena, NetlinkSkEntry);
	cleanup_close int dup = -1;
	struct netlink_diag_sk d;
	struct sk_opts opts;
	char me[64];
	int r = netlink_diag_lookup(t->pid, (uint32_t)p->st.st_ino, &d, err);

	if (r < 0)
		return -1;
	dup = fdkind_steal_fd(p->pid, p->fd, err);
	if (dup < 0 || (r == 0 && describe_unbound(dup, &d, p->link, err) < 0))
		return -1;
	d.ino = (uint32_t)p->st.st_ino;
	snprintf(me, sizeof(me), "netlink %u port id %u (socket:[%u])", d.protocol, d.portid, d.ino);
	if (sk_check_flags(fe, me, err) < 0)
		return -1;
	if (check(&d, me, err) < 0 || fdshare_refuse_outside(ctx, t->pid, p, "netlink socket", err) < 0)
		return -1;
	if (sk_opts_check_filter(dup, err) < 0)
		return cr_error_wrap(err, "%s", me);
	if (sk_opts_dump(&ctx->arena, dup, AF_NETLINK, d.type, d.protocol, false, &opts, err) < 0)
		return cr_error_wrap(err, "%s", me);
	netlink_sk_entry__init(e);
	e->ino = d.ino;
	e->protocol = d.protocol;
	e->type = d.type;
	e->portid = d.portid;
	keep_groups(ctx, &d, e);
	if (d.rmem != 0) {
		if (!ctx->opts->skip_in_flight)
			return cr_error(err, 0, "%s: unsupported: messages queued for it and not read yet (%u bytes with "
					"overhead; nothing can send them again; --skip-in-flight drops them)", me, d.rmem);
		pr_warn("%s: the messages queued for it and not read yet (%u bytes with overhead) are dropped "
			"(--skip-in-flight)", me, d.rmem);
		e->has_dropped = true;
		e->dropped = d.rmem;
	}
	e->opts = opts.v;
	e->n_opts = opts.n;
	fe->netlink_sk = e;
	return 0;
}

static int netlink_validate(const struct restore_ctx *ctx, const FileEntry *fe, cr_error_t *err)
{
	const NetlinkSkEntry *e = fe->netlink_sk;

	(void)ctx;
	if (e == NULL)
		return cr_error(err, 0, "netlink socket without its state");
	if (!protocol_kept(e->protocol) || (e->type != SOCK_RAW && e->type != SOCK_DGRAM))
		return cr_error(err, 0, "netlink socket of protocol %u type %u", e->protocol, e->type);
	for (size_t i = 0; i < e->n_groups; i++)
		if (e->groups[i] == 0 || e->groups[i] > MAX_GROUP)
			return cr_error(err, 0, "netlink socket with group %u", e->groups[i]);
	return sk_opts_validate(e->opts, e->n_opts, err);
}

static int join_groups(int fd, const NetlinkSkEntry *e, bool bound, const char *me, cr_error_t *err)
{
	for (size_t i = 0; i < e->n_groups; i++) {
		int g = (int)e->groups[i];

		if (bound && g <= 32)
			continue;   /* joined by the bind */
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0)
			return cr_error(err, errno, "%s: join group %d", me, g);
	}
	return 0;
}

static int netlink_open(const struct restore_ctx *ctx, struct restore_task *t, const FileEntry *fe, cr_error_t *err)
{
	const NetlinkSkEntry *e = fe->netlink_sk;
	int type = (int)e->type | SOCK_CLOEXEC | ((fe->flags & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
	cleanup_close int fd = socket(AF_NETLINK, type, (int)e->protocol);
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = e->portid };
	char me[64];

	(void)ctx, (void)t;
	snprintf(me, sizeof(me), "netlink %u port id %u", e->protocol, e->portid);
	if (fd < 0)
		return cr_error(err, errno, "%s: socket", me);
	if (sk_opts_apply(fd, e->opts, e->n_opts, NULL, err) < 0)
		return cr_error_wrap(err, "%s", me);
	for (size_t i = 0; i < e->n_groups; i++)
		if (e->groups[i] <= 32)
			a.nl_groups |= 1u << (e->groups[i] - 1);
	if (e->portid != 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return errno == EADDRINUSE ? cr_error(err, errno, "%s: the port id is taken by another netlink socket", me)
					   : cr_error(err, errno, "%s: bind", me);
	if (join_groups(fd, e, e->portid != 0, me, err) < 0)
		return -1;
	return steal_fd(&fd);
}

const struct fd_kind fdkind_netlink = {
	.kind = FILE_KIND__FILE_NETLINK,
	.shareable = true,
	.name = "netlink socket",
	.match = netlink_match,
	.dump = netlink_dump,
	.validate = netlink_validate,
	.open = netlink_open,
};
