#include "net/netlink.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/errno.h>

void crnl_sock_freep(struct nl_sock **sk)
{
	if (*sk != NULL)
		nl_socket_free(*sk);
}

int netns_enter_fd(int fd, int *back, cr_error_t *err)
{
	*back = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*back < 0)
		return cr_error(err, errno, "open /proc/thread-self/ns/net");
	if (setns(fd, CLONE_NEWNET) < 0) {
		int e = errno;

		close(*back);
		*back = -1;
		return cr_error(err, e, "enter the network namespace");
	}
	return 0;
}

int netns_enter_pid(pid_t pid, int *back, cr_error_t *err)
{
	char path[64];
	cleanup_close int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cr_error(err, errno, "open %s", path);
	return netns_enter_fd(fd, back, err);
}

void netns_leave(int *back)
{
	cr_error_t err = NULL;

	if (setns(*back, CLONE_NEWNET) < 0) {
		/* cr is in the wrong namespace: nothing it does from here is right */
		cr_error(&err, errno, "go back to cr's network namespace");
		cr_error_report(err);
		abort();
	}
	close(*back);
	*back = -1;
}

/* The socket, made in the namespace entered (back >= 0: left again). */
static int socket_then_leave(int *back, int domain, int type, int protocol, cr_error_t *err)
{
	int sk = socket(domain, type, protocol), e = errno;

	if (*back >= 0)
		netns_leave(back);
	if (sk < 0)
		return cr_error(err, e, "socket (family %d, protocol %d)", domain, protocol);
	return sk;
}

int netns_socket_fd(int netns_fd, int domain, int type, int protocol, cr_error_t *err)
{
	int back = -1;

	if (netns_fd >= 0 && netns_enter_fd(netns_fd, &back, err) < 0)
		return -1;
	return socket_then_leave(&back, domain, type, protocol, err);
}

int netns_socket_pid(pid_t pid, int domain, int type, int protocol, cr_error_t *err)
{
	int back = -1;

	if (netns_enter_pid(pid, &back, err) < 0)
		return -1;
	return socket_then_leave(&back, domain, type, protocol, err);
}

int crnl_open(int protocol, struct nl_sock **out, cr_error_t *err)
{
	struct nl_sock *sk = nl_socket_alloc();
	int r;

	if (sk == NULL)
		xalloc_failed_in("nl_socket_alloc");
	r = nl_connect(sk, protocol);
	if (r < 0) {
		nl_socket_free(sk);
		return cr_error(err, 0, "netlink (protocol %d): connect: %s", protocol, nl_geterror(r));
	}
	*out = sk;
	return 0;
}

static int on_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	(void)who;
	*(int *)arg = e->error;
	return NL_STOP;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	(void)msg;
	*(int *)arg = 0;
	return NL_STOP;
}

struct each {
	crnl_each_fn fn;
	void *arg;
	int ret;
};

static int on_valid(struct nl_msg *msg, void *arg)
{
	struct each *e = arg;

	if (e->ret == 0)
		e->ret = e->fn(nlmsg_hdr(msg), e->arg);
	return NL_OK;
}

int crnl_request(struct nl_sock *sk, struct nl_msg *msg, int *kerr, cr_error_t *err)
{
	return crnl_ask(sk, msg, NULL, NULL, kerr, err);
}

int crnl_ask(struct nl_sock *sk, struct nl_msg *msg, crnl_each_fn fn, void *arg, int *kerr, cr_error_t *err)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	struct each e = { fn, arg, 0 };
	int r;

	if (cb == NULL)
		xalloc_failed_in("nl_cb_alloc");
	*kerr = 1;
	nl_cb_err(cb, NL_CB_CUSTOM, on_error, kerr);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_ack, kerr);
	if (fn)
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &e);
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_ACK;
	r = nl_send_auto(sk, msg);
	while (r >= 0 && *kerr == 1)
		r = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (r < 0 && *kerr == 1)
		return cr_error(err, 0, "netlink: %s", nl_geterror(r));
	return 0;
}

int crnl_dump(struct nl_sock *sk, int type, const void *hdr, size_t len, crnl_each_fn fn, void *arg, cr_error_t *err)
{
	struct each e = { fn, arg, 0 };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r;

	if (cb == NULL)
		xalloc_failed_in("nl_cb_alloc");
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, on_valid, &e);
	r = nl_send_simple(sk, type, NLM_F_REQUEST | NLM_F_DUMP, (void *)hdr, len);
	if (r >= 0)
		r = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (r < 0)
		return cr_error(err, 0, "netlink dump (type %d): %s", type, nl_geterror(r));
	return e.ret < 0 ? -1 : 0;
}
