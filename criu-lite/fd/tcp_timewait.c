/* See tcp_timewait.h. */
#include "fd/tcp_timewait.h"
#include "net/netlink.h"
#include "os/xalloc.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <stdbool.h>
#include <stdlib.h>

#define TCP_TIME_WAIT_STATE 6

struct found {
	uint16_t port;
	struct tw {
		uint8_t family;
		struct inet_diag_sockid id;
	} *v;
	size_t n, cap;
	bool other;   /* a socket in another state uses the port */
};

static int take(struct nlmsghdr *h, void *arg)
{
	struct found *f = arg;
	const struct inet_diag_msg *m = NLMSG_DATA(h);

	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || ntohs(m->id.idiag_sport) != f->port)
		return 0;
	if (m->idiag_state != TCP_TIME_WAIT_STATE) {
		f->other = true;
		return 0;
	}
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 16;
		f->v = xreallocarray(f->v, f->cap, sizeof(*f->v));
	}
	f->v[f->n++] = (struct tw){ m->idiag_family, m->id };
	return 0;
}

static int list_port(struct nl_sock *sk, struct found *f, cr_error_t *err)
{
	static const uint8_t families[] = { AF_INET, AF_INET6 };

	for (size_t i = 0; i < sizeof(families); i++) {
		struct inet_diag_req_v2 req = { .sdiag_family = families[i], .sdiag_protocol = IPPROTO_TCP,
						.idiag_states = ~0u };

		if (crnl_dump(sk, SOCK_DIAG_BY_FAMILY, &req, sizeof(req), take, f, err) < 0)
			return cr_error_wrap(err, "sock_diag: the TCP sockets of port %u", f->port);
	}
	return 0;
}

static int destroy(struct nl_sock *sk, const struct tw *t, uint16_t port, cr_error_t *err)
{
	struct inet_diag_req_v2 req = { .sdiag_family = t->family, .sdiag_protocol = IPPROTO_TCP,
					.idiag_states = 1u << TCP_TIME_WAIT_STATE, .id = t->id };
	struct nl_msg *msg = nlmsg_alloc_simple(SOCK_DESTROY, NLM_F_REQUEST);
	int kerr = 0, r;

	if (msg == NULL)
		xalloc_failed_in("nlmsg_alloc_simple");
	r = nlmsg_append(msg, &req, sizeof(req), NLMSG_ALIGNTO) < 0 ? cr_error(err, ENOBUFS, "a SOCK_DESTROY request")
								     : crnl_request(sk, msg, &kerr, err);
	nlmsg_free(msg);
	if (r == 0 && kerr < 0 && kerr != -ENOENT)   /* ENOENT: it ended by itself meanwhile */
		r = cr_error(err, -kerr, "sock_diag: end a TIME_WAIT connection of port %u", port);
	return r;
}

int tcp_timewait_clear(uint16_t port, size_t *n, cr_error_t *err)
{
	struct found f = { .port = port };
	struct nl_sock *sk = NULL;
	int ret;

	*n = 0;
	if (crnl_open(NETLINK_SOCK_DIAG, &sk, err) < 0)
		return -1;
	ret = list_port(sk, &f, err);
	for (size_t i = 0; ret == 0 && !f.other && i < f.n; i++) {
		ret = destroy(sk, &f.v[i], port, err);
		*n += ret == 0;
	}
	nl_socket_free(sk);
	free(f.v);
	return ret;
}
