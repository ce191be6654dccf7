/*
 * w_refuse STATE_DIR THING
 *
 * Holds one thing cr refuses to dump (t_refusals): the dump must fail
 * naming the process and the thing, leave no dump, and leave the process
 * running with the thing as it was, which the check then uses.
 *
 *   epoll_flags, eventfd_flags, signalfd_flags, inotify_flags,
 *   timerfd_flags, mqueue_flags  the kind's fd with O_APPEND set (F_SETFL):
 *                    the flag is still set.
 *   epoll_elsewhere  an epoll registration of a pipe's read end that the
 *                    process closed, kept alive by a child holding it: the
 *                    epoll still reports data written to the pipe.
 *   memfd_outside    a memfd also held by a process outside the tree: its
 *                    contents.
 *   memfd_hugetlb    a memfd made with MFD_HUGETLB: still one.
 *   mq_unlinked      a POSIX message queue unlinked while open, a message
 *                    in it: the message.
 *   unix_peer_outside  a stream socketpair whose other end is held only by
 *                    a process outside the tree: data sent back arrives.
 *   unix_dgram_half  a datagram socketpair whose second end disconnected
 *                    (connect AF_UNSPEC): the first still sends to it.
 *   unix_same_path   a datagram socket bound at STATE_DIR/dg, its file
 *                    unlinked, a second bound at the same path, and the
 *                    first connected to it: it sends to the second.
 *   unix_backlog     a listener with 257 connections not accepted (one
 *                    more than cr takes): all are accepted.
 *   unix_pending_outside  a listener with a connection not accepted whose
 *                    client only a process outside the tree holds: accept.
 *   unix_pending_closed  a listener with a connection not accepted whose
 *                    client closed: accept.
 *   unix_listener_outside  a client whose connection is not accepted yet by
 *                    a listener only a process outside the tree holds: it
 *                    writes.
 *   unix_ext_relative, unix_ext_queued  a client whose accepted end only a
 *                    process outside the tree holds, the listener bound at
 *                    a relative name / with bytes queued from that end
 *                    (dumped with --ext-unix-sk): it writes / the bytes.
 *   unix_scm_rights  a stream socketpair, written "plain", then a byte with
 *                    its sending end in flight: a read of 5 bytes is
 *                    "plain", the next one carries the socket.
 *   unix_scm_tail    a stream socketpair, "ff" with its sending end in
 *                    flight, then "a" and "b" written apart: the socket
 *                    arrives with the first byte, then "fab".
 *   unix_scm_closed  a stream socketpair with its receiving end in flight
 *                    on it ("ff"), the sending end closed: it is received.
 *   unix_scm_dgram, unix_file_gone, unix_file_shared, unix_flight_netlink,
 *   unix_flight_outside  a datagram socketpair with in flight: /dev/null; a
 *                    file deleted since; a file whose description it holds
 *                    too; a netlink socket; a unix socket a process outside
 *                    the tree holds too: it is received.
 *   unix_pipe_held   a datagram socketpair with a pipe's read end in
 *                    flight, which it holds too, and the write end: the
 *                    pipe reads what the write end writes.
 *   unix_pipe_both   a datagram socketpair with both ends of a pipe in
 *                    flight, in two messages: they are one pipe.
 *   unix_pipe_twice  the same with the read end of a pipe holding "d"
 *                    twice, its write end closed: it reads "d".
 *   unix_flight_deep  a datagram socket with in flight a socket with in
 *                    flight a socket ..., 6 deep: all are received.
 *   unix_creds_late  a datagram queued before its receiver set SO_PASSCRED
 *                    (no credentials): it is received.
 *   unix_creds_pidns  its child, init of a pid namespace of its own, has a
 *                    datagram queued with its credentials (SO_PASSCRED):
 *                    it receives it with its own pid.
 *   unix_so_error    a stream socket whose peer closed with data unread:
 *                    SO_ERROR is ECONNRESET.
 *   opath_deleted    an O_PATH fd on a deleted file: still nlink 0.
 *   opath_proc       an O_PATH fd on /proc/self/status: still that file.
 *   opath_replaced   an O_PATH fd on a file another one is then bind-mounted
 *                    over: still the first one (the check unmounts it).
 *   chr_replaced     a device node (1:3) open, 1:5's node then bind-mounted
 *                    over it: the fd still writes to 1:3 (the check
 *                    unmounts it).
 *   flock_fifo       an flock on a FIFO: still held (flock -n fails).
 *   timer_cpuclock   a POSIX timer on the CPU clock of its child: armed.
 *   uffd_missing     a userfaultfd registration (missing pages) of a
 *                    mapping, the userfaultfd held only by a process
 *                    outside the tree: the registration is listed (VmFlags
 *                    um).
 *   vma_deleted_linked  a shared mapping of a file deleted since, linked
 *                    under another name in a sub-directory, with the
 *                    kernel's cache of names dropped: its bytes.
 *   memfd_future_write  a memfd mapped shared and writable, then sealed
 *                    F_SEAL_FUTURE_WRITE: the mapping writes, the fd not.
 *   memfd_mapped_outside  a memfd mapped shared, its fd held only by a
 *                    process outside the tree: its bytes.
 *   sysv_removed_locked  a System V segment attached, locked (SHM_LOCK) and
 *                    removed: its bytes.
 *   sysv_other_ipcns  a System V segment attached, then an ipc namespace of
 *                    its own (unshare): its bytes.
 *   pidfd_flags      a pidfd of its child with O_APPEND set: still set.
 *   userfaultfd      a userfaultfd (no kind cr has): still open.
 *   secretmem_fd     a memfd_secret fd: still open.
 *   secretmem_map    a memfd_secret mapped shared and written, its fd
 *                    closed: its bytes.
 *   hardlink_uncached  a file open by a name deleted since, linked under
 *                    another in a sub-directory, with the kernel's cache
 *                    of names dropped (vm.drop_caches=2): the fd is the
 *                    file of the other name.
 *   inotify_deleted_child  an inotify watch on a file deleted since, which
 *                    only its child holds open: the watch is still listed.
 *   inotify_deleted_shared  an inotify watch on a file deleted since, which
 *                    it holds open, the inotify inherited by its child: the
 *                    watch reports a write.
 *   fanotify_content, fanotify_mount, fanotify_ignored, fanotify_deleted
 *                    a fanotify group of the content class; one with a
 *                    mark on a mount; one with a mark with an ignored mask;
 *                    one with a mark on a file it holds open and deleted:
 *                    the group is still open.
 *   nsfs_shared      its uts namespace open as an fd, inherited by its
 *                    child: the fd is the namespace.
 *   pts_no_shell_job  a pseudo-terminal's slave open (its master closed),
 *                    dumped without --shell-job: still a terminal.
 *   pty_other_devpts  a pty pair of a second devpts instance (detached
 *                    since): a line goes through it.
 *   ctty_fg_other    its child leads the session of a pty it made, its
 *                    grandchild's group in the foreground, and has no fd
 *                    on the pty: that group is still in the foreground.
 *   ctty_other       its child's controlling terminal is a pty it made
 *                    (setsid), the process has none; dumped with
 *                    --shell-job: the child still has it.
 */
#include "wl.h"

#include <linux/netlink.h>
#include <sched.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKLOG_MANY 257   /* one more than cr takes (UNIX_DIAG_ICONS_MAX) */

static int fd_a, fd_b, fd_c, fd_d;
static char path_a[4096], path_b[4096];
static struct stat st_a;
static pid_t child;
static char name[64];

static int check_fd(int fd, const char *what)
{
	if (fd < 0)
		wl_fatal("%s: %s", what, strerror(errno));
	return fd;
}

/* A child of the process that sleeps until the process dies. */
static pid_t sleeping_child(void)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	return pid;
}

/* A process outside the tree (its parent exits at once, so it is no
 * descendant of the process) that holds what the process held at the
 * fork (of its fds only ONLY, when ONLY >= 0), and ends once the process
 * is gone. */
static void outside_holder_of(int only)
{
	pid_t me = getpid(), pid = fork();
	int status;

	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		if (only >= 0 && ((only > 3 && close_range(3, (unsigned)only - 1, 0) < 0) ||
				  close_range((unsigned)only + 1, ~0U, 0) < 0))
			_exit(1);
		while (kill(me, 0) == 0 || errno != ESRCH)
			usleep(100000);
		_exit(0);
	}
	waitpid(pid, &status, 0);
}

static void outside_holder(void)
{
	outside_holder_of(-1);
}

/* ------------------------------------------------- flags no kind keeps */

static int flags_fd;

static void set_append(int fd)
{
	flags_fd = check_fd(fd, "create");
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND) < 0 || !(fcntl(fd, F_GETFL) & O_APPEND))
		wl_fatal("F_SETFL O_APPEND: %s", strerror(errno));
}

static void flags_check(void)
{
	wl_check(fcntl(flags_fd, F_GETFL) & O_APPEND, "O_APPEND is gone");
}

static void epoll_flags_setup(void)
{
	set_append(epoll_create1(0));
}

static void eventfd_flags_setup(void)
{
	set_append(eventfd(0, 0));
}

static void signalfd_flags_setup(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGWINCH);
	set_append(signalfd(-1, &s, 0));
}

static void inotify_flags_setup(void)
{
	set_append(inotify_init1(0));
}

static void timerfd_flags_setup(void)
{
	set_append(timerfd_create(CLOCK_MONOTONIC, 0));
}

static void mqueue_flags_setup(void)
{
	snprintf(name, sizeof(name), "/w_refuse.%d", getpid());
	set_append(mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
}

static void mqueue_flags_check(void)
{
	flags_check();
	mq_unlink(name);
}

/* ------------------------------------------------------------------ fds */

static void epoll_elsewhere_setup(void)
{
	int p[2];
	struct epoll_event ev = { .events = EPOLLIN };

	fd_a = check_fd(epoll_create1(0), "epoll_create1");
	if (pipe(p) < 0 || epoll_ctl(fd_a, EPOLL_CTL_ADD, p[0], &ev) < 0)
		wl_fatal("pipe, epoll_ctl: %s", strerror(errno));
	child = sleeping_child();   /* holds p[0] */
	close(p[0]);
	fd_b = p[1];
}

static void epoll_elsewhere_check(void)
{
	struct epoll_event ev;

	wl_check(write(fd_b, "x", 1) == 1 && epoll_wait(fd_a, &ev, 1, 2000) == 1, "the epoll reports nothing");
}

static void memfd_outside_setup(void)
{
	fd_a = check_fd((int)syscall(SYS_memfd_create, "w_refuse", 0), "memfd_create");
	wl_write_all(fd_a, "memfd data", 10);
	outside_holder();
}

static void memfd_outside_check(void)
{
	char buf[16] = "";

	wl_check(pread(fd_a, buf, 10, 0) == 10 && strcmp(buf, "memfd data") == 0, "memfd reads '%s'", buf);
}

static void memfd_hugetlb_setup(void)
{
	fd_a = check_fd((int)syscall(SYS_memfd_create, "w_refuse_huge", MFD_HUGETLB), "memfd_create MFD_HUGETLB");
}

static void fd_open_check(void)
{
	wl_check(fcntl(fd_a, F_GETFD) >= 0, "fd %d is closed", fd_a);
}

static void mq_unlinked_setup(void)
{
	struct mq_attr attr = { .mq_maxmsg = 4, .mq_msgsize = 16 };

	snprintf(name, sizeof(name), "/w_refuse.%d", getpid());
	fd_a = check_fd(mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_NONBLOCK, 0600, &attr), "mq_open");
	if (mq_send(fd_a, "queued", 6, 1) < 0 || mq_unlink(name) < 0)
		wl_fatal("mq_send, mq_unlink: %s", strerror(errno));
}

static void mq_unlinked_check(void)
{
	char buf[16] = "";

	wl_check(mq_receive(fd_a, buf, sizeof(buf), NULL) == 6 && strcmp(buf, "queued") == 0, "received '%s'", buf);
}

/* --------------------------------------------------------- unix sockets */

static void pair(int type, int sv[2])
{
	if (socketpair(AF_UNIX, type, 0, sv) < 0)
		wl_fatal("socketpair: %s", strerror(errno));
}

static bool receives(int fd, const char *want)
{
	char buf[32] = "";
	ssize_t n;

	if (!wl_readable(fd, 2000))
		return false;
	n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	return n == (ssize_t)strlen(want) && strcmp(buf, want) == 0;
}

static void unix_peer_outside_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	outside_holder();
	close(sv[1]);
	fd_a = sv[0];
}

static void unix_peer_outside_check(void)
{
	wl_check(write(fd_a, "x", 1) == 1, "write: %s", strerror(errno));
}

/* One write of data with fd in flight: its length, or -1. */
static int send_fd_with(int sock, int fd, const char *data)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return (int)sendmsg(sock, &mh, 0);
}

static int send_fd(int sock, int fd)
{
	return send_fd_with(sock, fd, "f");
}

static int recv_fd(int sock)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 }, b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	int fd = -1;

	if (recvmsg(sock, &mh, MSG_DONTWAIT) != 1 || (c = CMSG_FIRSTHDR(&mh)) == NULL || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void unix_dgram_half_setup(void)
{
	int sv[2];
	struct sockaddr sa = { .sa_family = AF_UNSPEC };

	pair(SOCK_DGRAM, sv);
	if (connect(sv[1], &sa, sizeof(sa)) < 0)
		wl_fatal("connect AF_UNSPEC: %s", strerror(errno));
	fd_a = sv[0];
	fd_b = sv[1];
}

static void unix_dgram_half_check(void)
{
	wl_check(send(fd_a, "d", 1, 0) == 1 && receives(fd_b, "d"), "the datagram did not arrive");
}

static int dgram_bound(const struct sockaddr_un *sun)
{
	int fd = check_fd(socket(AF_UNIX, SOCK_DGRAM, 0), "socket");

	if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) < 0)
		wl_fatal("bind %s: %s", sun->sun_path, strerror(errno));
	return fd;
}

static void unix_same_path_setup(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	wl_path(sun.sun_path, sizeof(sun.sun_path), "dg");
	unlink(sun.sun_path);
	fd_a = dgram_bound(&sun);
	unlink(sun.sun_path);
	fd_b = dgram_bound(&sun);
	if (connect(fd_a, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		wl_fatal("connect %s: %s", sun.sun_path, strerror(errno));
}

static void unix_same_path_check(void)
{
	wl_check(send(fd_a, "s", 1, 0) == 1 && receives(fd_b, "s"), "the datagram did not arrive");
}

/* A listener bound at STATE_DIR/NAME (relative: bound from STATE_DIR),
 * listening. */
static int listener(const char *name, bool relative)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = check_fd(socket(AF_UNIX, SOCK_STREAM, 0), "socket");

	wl_path(sun.sun_path, sizeof(sun.sun_path), name);
	if (relative) {
		char *slash = strrchr(sun.sun_path, '/');

		*slash = '\0';
		if (chdir(sun.sun_path) < 0)
			wl_fatal("chdir: %s", strerror(errno));
		memmove(sun.sun_path, slash + 1, strlen(slash + 1) + 1);
	}
	unlink(sun.sun_path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd, BACKLOG_MANY + 8) < 0)
		wl_fatal("bind, listen %s: %s", sun.sun_path, strerror(errno));
	return fd;
}

static int client_of(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = check_fd(socket(AF_UNIX, SOCK_STREAM, 0), "socket");

	wl_path(sun.sun_path, sizeof(sun.sun_path), name);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		wl_fatal("connect %s: %s", sun.sun_path, strerror(errno));
	return fd;
}

static int clients[BACKLOG_MANY];

static void unix_backlog_setup(void)
{
	fd_a = listener("ls", false);
	for (int i = 0; i < BACKLOG_MANY; i++)
		clients[i] = client_of("ls");
}

static void unix_backlog_check(void)
{
	int n = 0, s;

	while (n < BACKLOG_MANY && (s = accept4(fd_a, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
		close(s);
		n++;
	}
	wl_check(n == BACKLOG_MANY, "accepted %d of %d connections", n, BACKLOG_MANY);
}

/* A connection not accepted yet from a client that only a process outside
 * the tree holds. */
static void unix_pending_outside_setup(void)
{
	fd_a = listener("ls", false);
	fd_b = client_of("ls");
	outside_holder_of(fd_b);
	close(fd_b);
}

static void accept_one_check(void)
{
	int s = wl_readable(fd_a, 2000) ? accept(fd_a, NULL, NULL) : -1;

	wl_check(s >= 0, "no connection to accept");
}

/* A connection not accepted yet whose client closed. */
static void unix_pending_closed_setup(void)
{
	fd_a = listener("ls", false);
	close(client_of("ls"));
}

/* A client whose connection is not accepted yet by a listener that only a
 * process outside the tree holds. */
static void unix_listener_outside_setup(void)
{
	int l = listener("ls", false);

	fd_a = client_of("ls");
	outside_holder_of(l);
	close(l);
}

static void connected_check(void)
{
	wl_check(write(fd_a, "x", 1) == 1, "write: %s", strerror(errno));
}

/* A connection whose accepted end only a process outside the tree holds,
 * the listener bound at a relative name (ext_relative) or with bytes
 * queued from that end (ext_queued); dumped with --ext-unix-sk. */
static void ext_peer(bool relative)
{
	int l = listener("ext.sock", relative), s;

	fd_a = client_of("ext.sock");
	s = check_fd(accept(l, NULL, NULL), "accept");
	if (!relative)
		wl_write_all(s, "queued", 6);
	outside_holder_of(s);
	close(s);
	close(l);
}

static void unix_ext_relative_setup(void)
{
	ext_peer(true);
}

static void unix_ext_queued_setup(void)
{
	ext_peer(false);
}

static void unix_ext_queued_check(void)
{
	wl_check(receives(fd_a, "queued"), "the queued bytes are gone");
}

static void unix_scm_rights_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	wl_write_all(sv[0], "plain", 5);
	if (send_fd(sv[0], sv[0]) != 1)
		wl_fatal("sendmsg: %s", strerror(errno));
	fd_a = sv[0];
	fd_b = sv[1];
}

static bool same_socket(int a, int b)
{
	struct stat sa, sb;

	return a >= 0 && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino;
}

static void unix_scm_rights_check(void)
{
	char buf[6] = "";
	int fd;

	wl_check(wl_readable(fd_b, 2000) && recv(fd_b, buf, 5, MSG_DONTWAIT) == 5 && strcmp(buf, "plain") == 0,
		 "the first read is '%s', wanted 'plain'", buf);
	fd = recv_fd(fd_b);
	wl_check(same_socket(fd, fd_a), "the socket in flight did not arrive after 'plain'");
}

static void unix_scm_tail_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	if (send_fd_with(sv[0], sv[0], "ff") != 2)
		wl_fatal("sendmsg: %s", strerror(errno));
	wl_write_all(sv[0], "a", 1);
	wl_write_all(sv[0], "b", 1);
	fd_a = sv[0];
	fd_b = sv[1];
}

static void unix_scm_tail_check(void)
{
	int fd = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1;

	wl_check(same_socket(fd, fd_a), "the socket in flight did not arrive first");
	wl_check(receives(fd_b, "fab"), "'fab' did not follow");
}

static void unix_scm_closed_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	if (send_fd_with(sv[0], sv[1], "ff") != 2)
		wl_fatal("sendmsg: %s", strerror(errno));
	close(sv[0]);
	fd_b = sv[1];
}

static void unix_scm_closed_check(void)
{
	int fd = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1;

	wl_check(same_socket(fd, fd_b), "the socket in flight did not arrive");
}

static void unix_so_error_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	wl_write_all(sv[0], "unread", 6);
	close(sv[1]);
	fd_a = sv[0];
}

static void unix_so_error_check(void)
{
	int e = 0;
	socklen_t len = sizeof(e);

	wl_check(getsockopt(fd_a, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e == ECONNRESET, "SO_ERROR is %d", e);
}

/* A datagram socketpair: fd_a sends, fd_b receives what is in flight. */
static void dgram_carrying(int fd)
{
	int sv[2];

	pair(SOCK_DGRAM, sv);
	if (send_fd(sv[0], fd) != 1)
		wl_fatal("sendmsg: %s", strerror(errno));
	fd_a = sv[0];
	fd_b = sv[1];
}

static void received_check(void)
{
	int fd = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1;

	wl_check(fd >= 0, "the fd in flight did not arrive");
}

/* /dev/null in flight in a datagram queue. */
static void unix_scm_dgram_setup(void)
{
	int null = check_fd(open("/dev/null", O_WRONLY), "/dev/null");

	dgram_carrying(null);
	close(null);
}

/* A regular file in flight, deleted since. */
static void unix_file_gone_setup(void)
{
	int f;

	wl_path(path_a, sizeof(path_a), "inflight");
	f = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	dgram_carrying(f);
	close(f);
	unlink(path_a);
}

/* A regular file in flight whose description the process holds too. */
static void unix_file_shared_setup(void)
{
	wl_path(path_a, sizeof(path_a), "inflight");
	flags_fd = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	dgram_carrying(flags_fd);
}

/* A socket that is no unix socket (netlink) in flight. */
static void unix_flight_netlink_setup(void)
{
	int nl = check_fd(socket(AF_NETLINK, SOCK_DGRAM, NETLINK_ROUTE), "netlink socket");

	dgram_carrying(nl);
	close(nl);
}

/* A datagram socketpair whose queue holds a and b, each in a message of
 * its own (fd_b receives them); closes them. */
static void dgram_carrying_two(int a, int b)
{
	dgram_carrying(a);
	if (send_fd(fd_a, b) != 1)
		wl_fatal("sendmsg: %s", strerror(errno));
	close(a);
	close(b);
}

/* Both ends of a pipe in flight, nothing else holds it. */
static void unix_pipe_both_setup(void)
{
	int p[2];

	if (pipe(p) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	dgram_carrying_two(p[0], p[1]);
}

/* The read end of a pipe holding "d" in flight twice, its write end closed. */
static void unix_pipe_twice_setup(void)
{
	int p[2];

	if (pipe(p) < 0 || write(p[1], "d", 1) != 1)
		wl_fatal("pipe: %s", strerror(errno));
	close(p[1]);
	dgram_carrying_two(p[0], dup(p[0]));
}

/* The two fds in flight are the ends of one pipe (both) or one read end
 * of a pipe holding "d" (twice). */
static void unix_pipe_check(bool both)
{
	int r = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1, w = recv_fd(fd_b);
	char c = 0;

	if (!wl_check(r >= 0 && w >= 0, "the fds in flight did not arrive"))
		return;
	if (both && !wl_check(write(w, "x", 1) == 1, "the write end does not write"))
		return;
	wl_check(read(r, &c, 1) == 1 && c == (both ? 'x' : 'd'), "the pipe in flight reads '%c'", c);
}

/* The read end of a pipe in flight, which the process holds too (the
 * same description), with the write end. */
static void unix_pipe_held_setup(void)
{
	int p[2];

	if (pipe(p) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	dgram_carrying(p[0]);
	fd_c = p[0];
	fd_d = p[1];
}

static void unix_pipe_held_check(void)
{
	int r = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1;
	char c = 0;

	wl_check(r >= 0 && write(fd_d, "h", 1) == 1 && read(r, &c, 1) == 1 && c == 'h',
		 "the pipe in flight does not read what its write end wrote");
}

static void unix_pipe_both_check(void)
{
	unix_pipe_check(true);
}

static void unix_pipe_twice_check(void)
{
	unix_pipe_check(false);
}

/* A unix socket in flight that a process outside the tree holds too. */
static void unix_flight_outside_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	outside_holder_of(sv[1]);
	dgram_carrying(sv[1]);
	close(sv[0]);
	close(sv[1]);
}

/* Sockets in flight carrying sockets in flight, FLIGHT_DEEP deep: the
 * queue of fd_b holds the receiving end of pair 1, whose queue holds that
 * of pair 2, ... */
#define FLIGHT_DEEP 6
static void unix_flight_deep_setup(void)
{
	int inner = -1;

	for (int i = FLIGHT_DEEP; i >= 1; i--) {
		int sv[2];

		pair(SOCK_DGRAM, sv);
		if (inner >= 0 && send_fd(sv[0], inner) != 1)
			wl_fatal("sendmsg: %s", strerror(errno));
		if (inner >= 0)
			close(inner);
		close(sv[0]);
		inner = sv[1];
	}
	dgram_carrying(inner);
	close(inner);
}

static void unix_flight_deep_check(void)
{
	int fd = fd_b, depth = 0;

	while (wl_readable(fd, 2000) && (fd = recv_fd(fd)) >= 0)
		depth++;
	wl_check(depth == FLIGHT_DEEP, "%d sockets deep in flight, not %d", depth, FLIGHT_DEEP);
}

/* A datagram queued before the receiver set SO_PASSCRED: no credentials. */
static void unix_creds_late_setup(void)
{
	int sv[2], on = 1;

	pair(SOCK_DGRAM, sv);
	if (send(sv[0], "late", 4, 0) != 4 || setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0)
		wl_fatal("send, SO_PASSCRED: %s", strerror(errno));
	fd_a = sv[0];
	fd_b = sv[1];
}

static void unix_creds_late_check(void)
{
	wl_check(receives(fd_b, "late"), "the datagram is gone");
}

/* In its child, init of a pid namespace of its own: a datagram queued
 * with its sender's credentials (SO_PASSCRED).  Told by fd_a, the child
 * receives it and answers on fd_b whether the credentials are its own. */
static void creds_pidns_child(int go, int answer)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(struct ucred))];
	} u;
	char byte, got[8] = "";
	struct iovec iov = { .iov_base = got, .iov_len = sizeof(got) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	struct ucred cred = { 0 };
	int sv[2], on = 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	pair(SOCK_DGRAM, sv);
	if (setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) < 0 || send(sv[0], "cred", 4, 0) != 4 ||
	    write(answer, "r", 1) != 1 || read(go, &byte, 1) != 1)
		_exit(1);
	if (recvmsg(sv[1], &mh, MSG_DONTWAIT) == 4 && (c = CMSG_FIRSTHDR(&mh)) != NULL &&
	    c->cmsg_type == SCM_CREDENTIALS)
		memcpy(&cred, CMSG_DATA(c), sizeof(cred));
	byte = cred.pid == getpid() && memcmp(got, "cred", 4) == 0 ? 'y' : 'n';
	if (write(answer, &byte, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

static void unix_creds_pidns_setup(void)
{
	int go[2], answer[2];
	char byte;

	if (pipe(go) < 0 || pipe(answer) < 0 || unshare(CLONE_NEWPID) < 0)
		wl_fatal("pipe, unshare(CLONE_NEWPID): %s", strerror(errno));
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0)
		creds_pidns_child(go[0], answer[1]);
	close(go[0]);
	close(answer[1]);
	if (read(answer[0], &byte, 1) != 1)
		wl_fatal("the child in its pid namespace did not get ready");
	fd_a = go[1];
	fd_b = answer[0];
}

static void unix_creds_pidns_check(void)
{
	char byte = 0;

	wl_check(write(fd_a, "g", 1) == 1 && wl_readable(fd_b, 2000) && read(fd_b, &byte, 1) == 1 && byte == 'y',
		 "the child's datagram or its credentials are gone (%c)", byte ? byte : '-');
}

/* ------------------------------------------------------- O_PATH, devices */


static void opath_deleted_setup(void)
{
	wl_path(path_a, sizeof(path_a), "gone");
	close(check_fd(open(path_a, O_WRONLY | O_CREAT, 0600), path_a));
	fd_a = check_fd(open(path_a, O_PATH), "open O_PATH");
	unlink(path_a);
}

static void opath_deleted_check(void)
{
	struct stat st;

	wl_check(fstat(fd_a, &st) == 0 && st.st_nlink == 0, "not a deleted file");
}

static void opath_proc_setup(void)
{
	fd_a = check_fd(open("/proc/self/status", O_PATH), "open /proc/self/status");
	fstat(fd_a, &st_a);
}

static void same_as_before_check(void)
{
	struct stat st;

	wl_check(fstat(fd_a, &st) == 0 && wl_same_inode(&st, &st_a), "another file");
}

static void opath_replaced_setup(void)
{
	wl_path(path_a, sizeof(path_a), "a");
	wl_path(path_b, sizeof(path_b), "b");
	close(check_fd(open(path_a, O_WRONLY | O_CREAT, 0600), path_a));
	close(check_fd(open(path_b, O_WRONLY | O_CREAT, 0600), path_b));
	fd_a = check_fd(open(path_a, O_PATH), "open O_PATH");
	fstat(fd_a, &st_a);
	if (mount(path_b, path_a, NULL, MS_BIND, NULL) < 0)
		wl_fatal("bind-mount %s over %s: %s", path_b, path_a, strerror(errno));
}

static void opath_replaced_check(void)
{
	same_as_before_check();
	wl_check(umount2(path_a, MNT_DETACH) == 0, "umount %s: %s", path_a, strerror(errno));
}

static void chr_replaced_setup(void)
{
	wl_path(path_a, sizeof(path_a), "null");
	if (mknod(path_a, S_IFCHR | 0600, makedev(1, 3)) < 0)
		wl_fatal("mknod: %s", strerror(errno));
	wl_path(path_b, sizeof(path_b), "zero");
	fd_a = check_fd(open(path_a, O_WRONLY), path_a);
	if (mknod(path_b, S_IFCHR | 0600, makedev(1, 5)) < 0 || mount(path_b, path_a, NULL, MS_BIND, NULL) < 0)
		wl_fatal("bind-mount the node of 1:5 over %s: %s", path_a, strerror(errno));
}

static void chr_replaced_check(void)
{
	struct stat st;

	wl_check(fstat(fd_a, &st) == 0 && st.st_rdev == makedev(1, 3) && write(fd_a, "x", 1) == 1,
		 "not the device 1:3");
	wl_check(umount2(path_a, MNT_DETACH) == 0, "umount %s: %s", path_a, strerror(errno));
}

static void flock_fifo_setup(void)
{
	wl_path(path_a, sizeof(path_a), "fifo");
	if (mkfifo(path_a, 0600) < 0)
		wl_fatal("mkfifo: %s", strerror(errno));
	fd_a = check_fd(open(path_a, O_RDWR), path_a);
	if (flock(fd_a, LOCK_EX) < 0)
		wl_fatal("flock: %s", strerror(errno));
}

static void flock_fifo_check(void)
{
	int other = open(path_a, O_RDWR);

	wl_check(other >= 0 && flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "the flock is gone");
	close(other);
}

/* --------------------------------------------------- timers and memory */

static timer_t timer;

static void timer_cpuclock_setup(void)
{
	clockid_t clock;
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	struct itimerspec its = { .it_value = { .tv_sec = 1000 } };

	child = sleeping_child();
	if (clock_getcpuclockid(child, &clock) != 0 || timer_create(clock, &sev, &timer) < 0 ||
	    timer_settime(timer, 0, &its, NULL) < 0)
		wl_fatal("a timer on the child's CPU clock: %s", strerror(errno));
}

static void timer_check(void)
{
	struct itimerspec its;

	wl_check(timer_gettime(timer, &its) == 0 && its.it_value.tv_sec > 0, "the timer is not armed");
}

static char *area;

static void uffd_missing_setup(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd_a = check_fd((int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK), "userfaultfd");
	reg.range.start = (uintptr_t)area;
	reg.range.len = 4096;
	if (area == MAP_FAILED || ioctl(fd_a, UFFDIO_API, &api) < 0 || ioctl(fd_a, UFFDIO_REGISTER, &reg) < 0)
		wl_fatal("userfaultfd register: %s", strerror(errno));
	outside_holder();
	close(fd_a);
}

static void uffd_missing_check(void)
{
	char flags[128] = "";
	long locked;

	wl_check(wl_smaps_of(area, flags, sizeof(flags), &locked) && wl_has_vmflag(flags, "um"),
		 "the registration is gone (VmFlags %s)", flags);
}

/* The kernel's cache of names dropped (vm.drop_caches=2): a file's other
 * names in other directories are then unknown to cr. */
static void drop_name_cache(void)
{
	int drop = check_fd(open("/proc/sys/vm/drop_caches", O_WRONLY), "/proc/sys/vm/drop_caches");

	wl_write_all(drop, "2", 1);
	close(drop);
}

static void vma_deleted_setup(void)
{
	wl_path(path_a, sizeof(path_a), "mapped");
	fd_b = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	wl_write_all(fd_b, "mapped bytes", 12);
	area = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd_b, 0);
	if (area == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	close(fd_b);
	wl_path(path_b, sizeof(path_b), "vsub");
	if (mkdir(path_b, 0700) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	wl_path(path_b, sizeof(path_b), "vsub/other-name");
	if (link(path_a, path_b) < 0)
		wl_fatal("link: %s", strerror(errno));
	unlink(path_a);
	drop_name_cache();
}

static void vma_deleted_check(void)
{
	wl_check(memcmp(area, "mapped bytes", 12) == 0, "the mapping reads otherwise");
}

/* A memfd mapped shared and writable, then sealed F_SEAL_FUTURE_WRITE
 * (the mapping stays writable). */
static void memfd_future_write_setup(void)
{
	fd_a = check_fd(memfd_create("future", MFD_ALLOW_SEALING), "memfd_create");
	if (ftruncate(fd_a, 4096) < 0)
		wl_fatal("ftruncate: %s", strerror(errno));
	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_a, 0);
	if (area == MAP_FAILED || fcntl(fd_a, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0)
		wl_fatal("mmap, F_SEAL_FUTURE_WRITE: %s", strerror(errno));
}

static void memfd_future_write_check(void)
{
	area[0] = 'w';
	wl_check((fcntl(fd_a, F_GET_SEALS) & F_SEAL_FUTURE_WRITE) && pwrite(fd_a, "x", 1, 0) < 0,
		 "the seal is gone");
}

/* A memfd mapped shared, its fd held only by a process outside the tree. */
static void memfd_mapped_outside_setup(void)
{
	int fd = check_fd(memfd_create("mapped-outside", 0), "memfd_create");

	if (ftruncate(fd, 4096) < 0)
		wl_fatal("ftruncate: %s", strerror(errno));
	outside_holder_of(fd);   /* before the mapping: it holds the fd alone */
	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (area == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	memcpy(area, "mapped bytes", 12);
	close(fd);
}

/* A System V segment attached, locked (SHM_LOCK) and removed. */
static void sysv_removed_locked_setup(void)
{
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);

	area = id < 0 ? MAP_FAILED : shmat(id, NULL, 0);
	if (area == MAP_FAILED || shmctl(id, SHM_LOCK, NULL) < 0 || shmctl(id, IPC_RMID, NULL) < 0)
		wl_fatal("shmget, shmat, SHM_LOCK, IPC_RMID: %s", strerror(errno));
	memcpy(area, "mapped bytes", 12);
}

/* A System V segment attached, then an ipc namespace of its own. */
static void sysv_other_ipcns_setup(void)
{
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);

	area = id < 0 ? MAP_FAILED : shmat(id, NULL, 0);
	if (area == MAP_FAILED || shmctl(id, IPC_RMID, NULL) < 0)
		wl_fatal("shmget, shmat: %s", strerror(errno));
	memcpy(area, "mapped bytes", 12);
	if (unshare(CLONE_NEWIPC) < 0)
		wl_fatal("unshare(CLONE_NEWIPC): %s", strerror(errno));
}

static void pidfd_flags_setup(void)
{
	child = sleeping_child();
	set_append((int)syscall(SYS_pidfd_open, child, 0));
}

static void nsfs_shared_setup(void)
{
	fd_a = check_fd(open("/proc/self/ns/uts", O_RDONLY), "open /proc/self/ns/uts");
	fstat(fd_a, &st_a);
	child = sleeping_child();
}

static void pts_no_shell_job_setup(void)
{
	int master = check_fd(posix_openpt(O_RDWR | O_NOCTTY), "posix_openpt");

	if (grantpt(master) < 0 || unlockpt(master) < 0)
		wl_fatal("unlockpt: %s", strerror(errno));
	fd_a = check_fd(open(ptsname(master), O_RDWR | O_NOCTTY), "open the pts");
	close(master);
}

static void pts_check(void)
{
	struct stat st;

	wl_check(fstat(fd_a, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) >= 136 && major(st.st_rdev) <= 143,
		 "no longer a pseudo-terminal");
}

/* A pty pair of a devpts of its own (a second instance, mounted in
 * STATE_DIR and detached once both ends are open). */
static void pty_other_devpts_setup(void)
{
	int n = 0, unlock = 0;
	char path[4200];

	wl_path(path_a, sizeof(path_a), "pts");
	if (mkdir(path_a, 0700) < 0 || mount("devpts", path_a, "devpts", 0, "newinstance,ptmxmode=0666") < 0)
		wl_fatal("mount devpts on %s: %s", path_a, strerror(errno));
	snprintf(path, sizeof(path), "%s/ptmx", path_a);
	fd_b = check_fd(open(path, O_RDWR | O_NOCTTY), path);
	if (ioctl(fd_b, TIOCSPTLCK, &unlock) < 0 || ioctl(fd_b, TIOCGPTN, &n) < 0)
		wl_fatal("TIOCSPTLCK, TIOCGPTN: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/%d", path_a, n);
	fd_a = check_fd(open(path, O_RDWR | O_NOCTTY), path);
	if (umount2(path_a, MNT_DETACH) < 0)
		wl_fatal("umount %s: %s", path_a, strerror(errno));
}

static void pty_pair_check(void)
{
	char buf[8] = "";

	wl_check(write(fd_b, "up\n", 3) == 3 && wl_readable(fd_a, 2000) && read(fd_a, buf, sizeof(buf)) == 3 &&
		 memcmp(buf, "up\n", 3) == 0, "the pty pair does not carry a line ('%s')", buf);
}

/* The process holds a new pty's master (fd_b); its child leads a session
 * whose controlling terminal is the pty's slave: the slave's fd in the
 * child, -1 in the process. */
static int pty_session_child(void)
{
	int master = check_fd(posix_openpt(O_RDWR | O_NOCTTY), "posix_openpt"), tty;
	char *pts;

	if (grantpt(master) < 0 || unlockpt(master) < 0 || (pts = ptsname(master)) == NULL)
		wl_fatal("unlockpt: %s", strerror(errno));
	snprintf(path_a, sizeof(path_a), "%s", pts);
	fd_b = master;
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child > 0)
		return -1;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGTTOU, SIG_IGN);
	if (setsid() < 0 || (tty = open(path_a, O_RDWR)) < 0)
		_exit(1);
	return tty;
}

/* A child that made a pty whose master the process holds its controlling
 * terminal (setsid), the process none: dumped with --shell-job. */
static void ctty_other_setup(void)
{
	if (pty_session_child() < 0)
		return;
	for (;;)
		pause();
}

static void ctty_other_check(void)
{
	char path[64], text[1024] = "", *p;
	int tty = 0, fd;
	ssize_t n = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", child);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	p = n > 0 ? strrchr(text, ')') : NULL;
	wl_check(p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %d", &tty) == 1 && major(tty) >= 136 && major(tty) <= 143,
		 "the child has no pty as its controlling terminal (tty_nr %d)", tty);
}

static pid_t foreground;

/* Its child leads the session of a pty the process made, with its
 * grandchild's group in the foreground, and closed its fds on it. */
static void ctty_fg_other_setup(void)
{
	int report[2], tty;
	pid_t fg;

	if (pipe(report) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	if ((tty = pty_session_child()) < 0) {
		if (read(report[0], &foreground, sizeof(foreground)) != sizeof(foreground))
			wl_fatal("the child did not put its child in the foreground");
		return;
	}
	if ((fg = fork()) < 0)
		_exit(1);
	if (fg == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	if (setpgid(fg, fg) < 0 || tcsetpgrp(tty, fg) < 0 || write(report[1], &fg, sizeof(fg)) != sizeof(fg))
		_exit(1);
	close(tty);
	for (;;)
		pause();
}

static void ctty_fg_other_check(void)
{
	pid_t fg = tcgetpgrp(fd_b);

	wl_check(fg == foreground, "the foreground group of the pty is %d, not %d", fg, foreground);
}

static void hardlink_uncached_setup(void)
{

	wl_path(path_a, sizeof(path_a), "a");
	wl_path(path_b, sizeof(path_b), "sub");
	if (mkdir(path_b, 0700) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	wl_path(path_b, sizeof(path_b), "sub/b");
	fd_a = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	if (link(path_a, path_b) < 0 || unlink(path_a) < 0)
		wl_fatal("link, unlink: %s", strerror(errno));
	drop_name_cache();
	fstat(fd_a, &st_a);
}

static void hardlink_uncached_check(void)
{
	struct stat st;

	wl_check(stat(path_b, &st) == 0 && wl_same_inode(&st, &st_a), "%s is another file", path_b);
	same_as_before_check();
}

static void userfaultfd_setup(void)
{
	fd_a = check_fd((int)syscall(SYS_userfaultfd, O_CLOEXEC), "userfaultfd");
}

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

static void secretmem_map_setup(void)
{
	fd_a = check_fd((int)syscall(SYS_memfd_secret, O_CLOEXEC), "memfd_secret");
	if (ftruncate(fd_a, 4096) < 0)
		wl_fatal("ftruncate of the memfd_secret: %s", strerror(errno));
	area = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd_a, 0);
	if (area == MAP_FAILED)
		wl_fatal("mmap of the memfd_secret: %s", strerror(errno));
	strcpy(area, "secret");
	close(fd_a);
	fd_a = -1;
}

static void secretmem_fd_setup(void)
{
	fd_a = check_fd((int)syscall(SYS_memfd_secret, O_CLOEXEC), "memfd_secret");
}

static void secretmem_map_check(void)
{
	wl_check(strcmp(area, "secret") == 0, "the secret memory holds '%.8s'", area);
}

static void fanotify_content_setup(void)
{
	fd_a = check_fd(fanotify_init(FAN_CLASS_CONTENT, O_RDONLY), "fanotify_init FAN_CLASS_CONTENT");
}

static void fanotify_mount_setup(void)
{
	fd_a = check_fd(fanotify_init(FAN_CLASS_NOTIF, O_RDONLY), "fanotify_init");
	if (fanotify_mark(fd_a, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, wl_dir()) < 0)
		wl_fatal("fanotify_mark FAN_MARK_MOUNT: %s", strerror(errno));
}

static void fanotify_ignored_setup(void)
{
	fd_a = check_fd(fanotify_init(FAN_CLASS_NOTIF, O_RDONLY), "fanotify_init");
	if (fanotify_mark(fd_a, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_OPEN, AT_FDCWD, wl_dir()) < 0)
		wl_fatal("fanotify_mark FAN_MARK_IGNORED_MASK: %s", strerror(errno));
}

static void fanotify_deleted_setup(void)
{
	wl_path(path_a, sizeof(path_a), "marked");
	fd_b = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	fd_a = check_fd(fanotify_init(FAN_CLASS_NOTIF, O_RDONLY), "fanotify_init");
	if (fanotify_mark(fd_a, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, path_a) < 0 || unlink(path_a) < 0)
		wl_fatal("fanotify_mark, unlink: %s", strerror(errno));
}

/* An inotify watching a file (for writes) that is then deleted; the file
 * stays open as fd_b in the process, or only in its child. */
static void inotify_deleted(bool child_holds, bool child_shares)
{
	wl_path(path_a, sizeof(path_a), "watched");
	fd_b = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	fd_a = check_fd(inotify_init1(IN_NONBLOCK), "inotify_init1");
	if (inotify_add_watch(fd_a, path_a, IN_MODIFY) < 0 || unlink(path_a) < 0)
		wl_fatal("inotify_add_watch, unlink: %s", strerror(errno));
	if (child_holds || child_shares)
		child = sleeping_child();
	if (child_holds)
		close(fd_b);
}

static void inotify_deleted_child_setup(void)
{
	inotify_deleted(true, false);
}

static void inotify_deleted_shared_setup(void)
{
	inotify_deleted(false, true);
}

static void inotify_listed_check(void)
{
	char path[64], text[4096] = "";

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd_a);
	wl_check(wl_read_path(path, text, sizeof(text)) > 0 && strstr(text, "inotify wd:1 ") != NULL,
		 "the watch is gone: %s", text);
}

static void inotify_deleted_check(void)
{
	char buf[256];

	wl_check(write(fd_b, "x", 1) == 1 && wl_readable(fd_a, 2000) && read(fd_a, buf, sizeof(buf)) > 0,
		 "no event from the deleted file");
}

static const struct wl_mode modes[] = {
	{ "epoll_flags", epoll_flags_setup, flags_check },
	{ "eventfd_flags", eventfd_flags_setup, flags_check },
	{ "signalfd_flags", signalfd_flags_setup, flags_check },
	{ "inotify_flags", inotify_flags_setup, flags_check },
	{ "timerfd_flags", timerfd_flags_setup, flags_check },
	{ "mqueue_flags", mqueue_flags_setup, mqueue_flags_check },
	{ "epoll_elsewhere", epoll_elsewhere_setup, epoll_elsewhere_check },
	{ "memfd_outside", memfd_outside_setup, memfd_outside_check },
	{ "memfd_hugetlb", memfd_hugetlb_setup, fd_open_check },
	{ "mq_unlinked", mq_unlinked_setup, mq_unlinked_check },
	{ "unix_peer_outside", unix_peer_outside_setup, unix_peer_outside_check },
	{ "unix_dgram_half", unix_dgram_half_setup, unix_dgram_half_check },
	{ "unix_same_path", unix_same_path_setup, unix_same_path_check },
	{ "unix_backlog", unix_backlog_setup, unix_backlog_check },
	{ "unix_scm_rights", unix_scm_rights_setup, unix_scm_rights_check },
	{ "unix_scm_closed", unix_scm_closed_setup, unix_scm_closed_check },
	{ "unix_scm_tail", unix_scm_tail_setup, unix_scm_tail_check },
	{ "unix_so_error", unix_so_error_setup, unix_so_error_check },
	{ "unix_pending_outside", unix_pending_outside_setup, accept_one_check },
	{ "unix_pending_closed", unix_pending_closed_setup, accept_one_check },
	{ "unix_listener_outside", unix_listener_outside_setup, connected_check },
	{ "unix_ext_relative", unix_ext_relative_setup, connected_check },
	{ "unix_ext_queued", unix_ext_queued_setup, unix_ext_queued_check },
	{ "unix_scm_dgram", unix_scm_dgram_setup, received_check },
	{ "unix_file_gone", unix_file_gone_setup, received_check },
	{ "unix_file_shared", unix_file_shared_setup, received_check },
	{ "unix_flight_netlink", unix_flight_netlink_setup, received_check },
	{ "unix_flight_outside", unix_flight_outside_setup, received_check },
	{ "unix_pipe_both", unix_pipe_both_setup, unix_pipe_both_check },
	{ "unix_pipe_held", unix_pipe_held_setup, unix_pipe_held_check },
	{ "unix_pipe_twice", unix_pipe_twice_setup, unix_pipe_twice_check },
	{ "unix_flight_deep", unix_flight_deep_setup, unix_flight_deep_check },
	{ "unix_creds_late", unix_creds_late_setup, unix_creds_late_check },
	{ "unix_creds_pidns", unix_creds_pidns_setup, unix_creds_pidns_check },
	{ "opath_deleted", opath_deleted_setup, opath_deleted_check },
	{ "opath_proc", opath_proc_setup, same_as_before_check },
	{ "opath_replaced", opath_replaced_setup, opath_replaced_check },
	{ "chr_replaced", chr_replaced_setup, chr_replaced_check },
	{ "flock_fifo", flock_fifo_setup, flock_fifo_check },
	{ "timer_cpuclock", timer_cpuclock_setup, timer_check },
	{ "uffd_missing", uffd_missing_setup, uffd_missing_check },
	{ "vma_deleted_linked", vma_deleted_setup, vma_deleted_check },
	{ "memfd_future_write", memfd_future_write_setup, memfd_future_write_check },
	{ "memfd_mapped_outside", memfd_mapped_outside_setup, vma_deleted_check },
	{ "sysv_removed_locked", sysv_removed_locked_setup, vma_deleted_check },
	{ "sysv_other_ipcns", sysv_other_ipcns_setup, vma_deleted_check },
	{ "pidfd_flags", pidfd_flags_setup, flags_check },
	{ "userfaultfd", userfaultfd_setup, fd_open_check },
	{ "secretmem_fd", secretmem_fd_setup, fd_open_check },
	{ "secretmem_map", secretmem_map_setup, secretmem_map_check },
	{ "hardlink_uncached", hardlink_uncached_setup, hardlink_uncached_check },
	{ "inotify_deleted_child", inotify_deleted_child_setup, inotify_listed_check },
	{ "inotify_deleted_shared", inotify_deleted_shared_setup, inotify_deleted_check },
	{ "fanotify_content", fanotify_content_setup, fd_open_check },
	{ "fanotify_mount", fanotify_mount_setup, fd_open_check },
	{ "fanotify_ignored", fanotify_ignored_setup, fd_open_check },
	{ "fanotify_deleted", fanotify_deleted_setup, fd_open_check },
	{ "nsfs_shared", nsfs_shared_setup, same_as_before_check },
	{ "pts_no_shell_job", pts_no_shell_job_setup, pts_check },
	{ "pty_other_devpts", pty_other_devpts_setup, pty_pair_check },
	{ "ctty_other", ctty_other_setup, ctty_other_check },
	{ "ctty_fg_other", ctty_fg_other_setup, ctty_fg_other_check },
};

int main(int argc, char **argv)
{
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_refuse STATE_DIR THING");
}
