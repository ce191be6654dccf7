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
 *   unix_pair_fork   a stream socketpair whose other end is in its child:
 *                    data from the child arrives.
 *   unix_peer_outside  a stream socketpair whose other end is held only by
 *                    a process outside the tree: data sent back arrives.
 *   unix_peer_in_flight  a socketpair whose other end was sent with
 *                    SCM_RIGHTS over another pair and closed: it is
 *                    received and works.
 *   unix_dgram_half  a datagram socketpair whose second end disconnected
 *                    (connect AF_UNSPEC): the first still sends to it.
 *   unix_backlog     a listener with a connection not accepted: accept.
 *   unix_scm_rights  a socketpair with an fd (/dev/null) in flight: it is
 *                    received.
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
 *   vma_deleted      a mapping of a file deleted since: its bytes.
 *   pidfd_flags      a pidfd of its child with O_APPEND set: still set.
 *   userfaultfd      a userfaultfd (no kind cr has): still open.
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
 */
#include "wl.h"

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

static int fd_a, fd_b;
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
 * fork, and ends once the process is gone. */
static void outside_holder(void)
{
	pid_t me = getpid(), pid = fork();
	int status;

	if (pid < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		while (kill(me, 0) == 0 || errno != ESRCH)
			usleep(100000);
		_exit(0);
	}
	waitpid(pid, &status, 0);
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

static void unix_pair_fork_setup(void)
{
	int sv[2];

	pair(SOCK_STREAM, sv);
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		while (read(sv[1], name, 1) == 1)
			if (write(sv[1], "back", 4) != 4)
				_exit(1);
		_exit(0);
	}
	close(sv[1]);
	fd_a = sv[0];
}

static void unix_pair_fork_check(void)
{
	wl_check(write(fd_a, "?", 1) == 1 && receives(fd_a, "back"), "the child does not answer");
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

static int send_fd(int sock, int fd)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return (int)sendmsg(sock, &mh, 0);
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

static void unix_peer_in_flight_setup(void)
{
	int sv[2], q[2];

	pair(SOCK_STREAM, sv);
	pair(SOCK_DGRAM, q);
	if (send_fd(q[0], sv[1]) != 1)
		wl_fatal("sendmsg: %s", strerror(errno));
	close(sv[1]);
	close(q[0]);
	fd_a = sv[0];
	fd_b = q[1];
}

static void unix_peer_in_flight_check(void)
{
	int peer = recv_fd(fd_b);

	wl_check(peer >= 0 && write(fd_a, "hi", 2) == 2 && receives(peer, "hi"), "the end in flight does not work");
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

static void unix_backlog_setup(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	wl_path(sun.sun_path, sizeof(sun.sun_path), "ls");
	fd_a = check_fd(socket(AF_UNIX, SOCK_STREAM, 0), "socket");
	fd_b = check_fd(socket(AF_UNIX, SOCK_STREAM, 0), "socket");
	if (bind(fd_a, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(fd_a, 4) < 0 ||
	    connect(fd_b, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		wl_fatal("listen, connect: %s", strerror(errno));
}

static void unix_backlog_check(void)
{
	int s = accept(fd_a, NULL, NULL);

	wl_check(s >= 0 && write(fd_b, "a", 1) == 1 && receives(s, "a"), "no connection to accept");
}

static void unix_scm_rights_setup(void)
{
	int sv[2], null = check_fd(open("/dev/null", O_WRONLY), "/dev/null");

	pair(SOCK_STREAM, sv);
	if (send_fd(sv[0], null) != 1)
		wl_fatal("sendmsg: %s", strerror(errno));
	close(null);
	fd_a = sv[0];
	fd_b = sv[1];
}

static void unix_scm_rights_check(void)
{
	int fd = wl_readable(fd_b, 2000) ? recv_fd(fd_b) : -1;
	struct stat st;

	wl_check(fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
		 "/dev/null did not arrive");
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

/* ------------------------------------------------------- O_PATH, devices */

static char path_a[4096], path_b[4096];
static struct stat st_a;

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

static void vma_deleted_setup(void)
{
	wl_path(path_a, sizeof(path_a), "mapped");
	fd_b = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	wl_write_all(fd_b, "mapped bytes", 12);
	area = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd_b, 0);
	if (area == MAP_FAILED)
		wl_fatal("mmap: %s", strerror(errno));
	close(fd_b);
	unlink(path_a);
}

static void vma_deleted_check(void)
{
	wl_check(memcmp(area, "mapped bytes", 12) == 0, "the mapping reads otherwise");
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

static void hardlink_uncached_setup(void)
{
	int drop;

	wl_path(path_a, sizeof(path_a), "a");
	wl_path(path_b, sizeof(path_b), "sub");
	if (mkdir(path_b, 0700) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	wl_path(path_b, sizeof(path_b), "sub/b");
	fd_a = check_fd(open(path_a, O_RDWR | O_CREAT, 0600), path_a);
	if (link(path_a, path_b) < 0 || unlink(path_a) < 0)
		wl_fatal("link, unlink: %s", strerror(errno));
	drop = check_fd(open("/proc/sys/vm/drop_caches", O_WRONLY), "/proc/sys/vm/drop_caches");
	wl_write_all(drop, "2", 1);
	close(drop);
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
	{ "unix_pair_fork", unix_pair_fork_setup, unix_pair_fork_check },
	{ "unix_peer_outside", unix_peer_outside_setup, unix_peer_outside_check },
	{ "unix_peer_in_flight", unix_peer_in_flight_setup, unix_peer_in_flight_check },
	{ "unix_dgram_half", unix_dgram_half_setup, unix_dgram_half_check },
	{ "unix_backlog", unix_backlog_setup, unix_backlog_check },
	{ "unix_scm_rights", unix_scm_rights_setup, unix_scm_rights_check },
	{ "unix_so_error", unix_so_error_setup, unix_so_error_check },
	{ "opath_deleted", opath_deleted_setup, opath_deleted_check },
	{ "opath_proc", opath_proc_setup, same_as_before_check },
	{ "opath_replaced", opath_replaced_setup, opath_replaced_check },
	{ "chr_replaced", chr_replaced_setup, chr_replaced_check },
	{ "flock_fifo", flock_fifo_setup, flock_fifo_check },
	{ "timer_cpuclock", timer_cpuclock_setup, timer_check },
	{ "uffd_missing", uffd_missing_setup, uffd_missing_check },
	{ "vma_deleted", vma_deleted_setup, vma_deleted_check },
	{ "pidfd_flags", pidfd_flags_setup, flags_check },
	{ "userfaultfd", userfaultfd_setup, fd_open_check },
	{ "hardlink_uncached", hardlink_uncached_setup, hardlink_uncached_check },
	{ "inotify_deleted_child", inotify_deleted_child_setup, inotify_listed_check },
	{ "inotify_deleted_shared", inotify_deleted_shared_setup, inotify_deleted_check },
	{ "fanotify_content", fanotify_content_setup, fd_open_check },
	{ "fanotify_mount", fanotify_mount_setup, fd_open_check },
	{ "fanotify_ignored", fanotify_ignored_setup, fd_open_check },
	{ "fanotify_deleted", fanotify_deleted_setup, fd_open_check },
	{ "nsfs_shared", nsfs_shared_setup, same_as_before_check },
	{ "pts_no_shell_job", pts_no_shell_job_setup, pts_check },
};

int main(int argc, char **argv)
{
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "w_refuse STATE_DIR THING");
}
