/* See keeper.h.  The exchange, on a SOCK_SEQPACKET connection: one
 * keeper_hdr, then the entries in messages of at most KEEPER_BATCH, each
 * with their userfaultfds attached (SCM_RIGHTS) in the same order. */
#include "dump/keeper.h"
#include "os/log.h"
#include "os/proc.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEPER_MAGIC   0x4b505243u   /* "CRPK" */
#define KEEPER_VERSION 1u
#define KEEPER_BATCH   64

struct keeper_hdr {
	uint32_t magic, version, n, pad;
	unsigned char id[CR_DUMP_ID_SIZE];
};

struct keeper_ent {
	int32_t pid;
	uint32_t pad;
	uint64_t start_time;
};

/* The abstract address of the keeper of root's tree. */
static socklen_t keeper_addr(struct sockaddr_un *sa, pid_t root, uint64_t root_start)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "cr-keeper/%d/%llu", (int)root,
		     (unsigned long long)root_start);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* Only root (or cr's own user) may take or hand over tracking fds. */
static bool peer_trusted(int sock)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	return getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && (uc.uid == 0 || uc.uid == geteuid());
}

static bool is_uffd(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

/* ------------------------------------------------------------ fetching */

static int recv_batch(int sock, struct keeper_ent *ents, int *fds, size_t want, cr_error_t *err)
{
	char control[CMSG_SPACE(KEEPER_BATCH * sizeof(int))];
	struct iovec iov = { .iov_base = ents, .iov_len = want * sizeof(*ents) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	size_t got = 0;

	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(fds + got, CMSG_DATA(c), (k <= want - got ? k : want - got) * sizeof(int));
			got += k <= want - got ? k : want - got;
		}
	if (n != (ssize_t)(want * sizeof(*ents)) || got != want || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (size_t i = 0; i < got; i++)
			close(fds[i]);
		return cr_error(err, n < 0 ? errno : EPROTO, "the keeper's answer is short or malformed");
	}
	return 0;
}

/* Keeps the entries whose fd is a userfaultfd of a process still there. */
static void take_batch(struct tracker *tr, const struct keeper_ent *ents, const int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		cr_error_t ignored = NULL;
		struct track_proc *p;

		if (!is_uffd(fds[i]) || proc_read_stat(ents[i].pid, &st, &ignored) < 0 ||
		    st.start_time != ents[i].start_time) {
			cr_error_release(&ignored);
			close(fds[i]);
			continue;
		}
		p = track_proc_of(tr, ents[i].pid, ents[i].start_time);
		if (p->uffd >= 0)
			close(p->uffd);
		p->uffd = fds[i];
	}
}

static int fetch_from(struct tracker *tr, int sock, cr_error_t *err)
{
	struct keeper_hdr h;
	struct keeper_ent ents[KEEPER_BATCH];
	int fds[KEEPER_BATCH];

	if (!peer_trusted(sock))
		return cr_error(err, 0, "the keeper's socket is held by a process of another user");
	if (recv(sock, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.magic != KEEPER_MAGIC ||
	    h.version != KEEPER_VERSION)
		return cr_error(err, EPROTO, "the keeper's answer is not one cr understands");
	for (uint32_t done = 0; done < h.n;) {
		size_t k = h.n - done < KEEPER_BATCH ? h.n - done : KEEPER_BATCH;

		if (recv_batch(sock, ents, fds, k, err) < 0)
			return -1;
		take_batch(tr, ents, fds, k);
		done += (uint32_t)k;
	}
	memcpy(tr->prev_id.b, h.id, sizeof(h.id));
	tr->kept = tr->have_prev = true;
	return 0;
}

int keeper_fetch(struct tracker *tr, pid_t root, uint64_t root_start, cr_error_t *err)
{
	struct sockaddr_un sa;
	socklen_t len = keeper_addr(&sa, root, root_start);
	cleanup_close int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (sock < 0)
		return cr_error(err, errno, "socket");
	if (connect(sock, (struct sockaddr *)&sa, len) < 0) {
		pr_debug("no keeper for the tree of pid %d (%s)", root, strerror(errno));
		return 0;
	}
	if (fetch_from(tr, sock, err) < 0)
		return cr_error_wrap(err, "take the write tracking of the round before from its keeper");
	pr_debug("took %zu userfaultfds from the keeper of pid %d's tree", tr->n, root);
	return 0;
}

/* ------------------------------------------------------------- keeping */

static int send_all(int sock, const struct tracker *tr, const struct cr_dump_id *id)
{
	struct keeper_hdr h = { .magic = KEEPER_MAGIC, .version = KEEPER_VERSION };
	size_t i = 0;

	for (size_t k = 0; k < tr->n; k++)
		h.n += tr->v[k].uffd >= 0;
	memcpy(h.id, id->b, sizeof(h.id));
	if (send(sock, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h))
		return -1;
	while (i < tr->n) {
		struct keeper_ent ents[KEEPER_BATCH];
		int fds[KEEPER_BATCH];
		char control[CMSG_SPACE(sizeof(fds))];
		struct iovec iov = { .iov_base = ents };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control };
		struct cmsghdr *c;
		size_t k = 0;

		for (; i < tr->n && k < KEEPER_BATCH; i++)
			if (tr->v[i].uffd >= 0) {
				ents[k] = (struct keeper_ent){ .pid = tr->v[i].pid, .start_time = tr->v[i].start_time };
				fds[k++] = tr->v[i].uffd;
			}
		if (k == 0)
			break;
		iov.iov_len = k * sizeof(*ents);
		mh.msg_controllen = CMSG_SPACE(k * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(c), fds, k * sizeof(int));
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)iov.iov_len)
			return -1;
	}
	return 0;
}

/* Whether fd is one the keeper holds. */
static bool kept(const struct tracker *tr, int lsock, int fd)
{
	if (fd == lsock)
		return true;
	for (size_t i = 0; i < tr->n; i++)
		if (tr->v[i].uffd == fd)
			return true;
	return false;
}

/* The keeper keeps nothing of cr's but its own fds, and no terminal. */
static void keeper_detach(const struct tracker *tr, int lsock)
{
	DIR *d = opendir("/proc/self/fd");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	struct dirent *de;

	for (int fd = 0; fd < 3; fd++)
		if (null >= 0 && !kept(tr, lsock, fd))
			dup2(null, fd);
	while (d != NULL && (de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd > 2 && fd != dirfd(d) && !kept(tr, lsock, fd))
			close(fd);
	}
	if (d != NULL)
		closedir(d);
	if (chdir("/") < 0)
		_exit(1);
	prctl(PR_SET_NAME, "cr-keeper");
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
}

/* Polls the socket and a pidfd per tracked process; a process that ended
 * takes its tracking with it. */
static void keeper_loop(struct tracker *tr, int lsock, const struct cr_dump_id *id)
{
	struct pollfd *pfd = xcalloc(tr->n + 1, sizeof(*pfd));
	size_t alive = 0;

	pfd[0] = (struct pollfd){ .fd = lsock, .events = POLLIN };
	for (size_t i = 0; i < tr->n; i++) {
		int fd = tr->v[i].uffd >= 0 ? (int)syscall(SYS_pidfd_open, tr->v[i].pid, 0) : -1;

		pfd[i + 1] = (struct pollfd){ .fd = fd, .events = POLLIN };
		alive += fd >= 0;
	}
	while (alive > 0) {
		int n = poll(pfd, tr->n + 1, KEEPER_IDLE_S * 1000);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;   /* no next round for an hour: the tracking ends */
		if (n < 0)
			continue;
		for (size_t i = 0; n > 0 && i < tr->n; i++)
			if (pfd[i + 1].fd >= 0 && pfd[i + 1].revents) {
				close(pfd[i + 1].fd);
				pfd[i + 1].fd = -1;
				close(tr->v[i].uffd);
				tr->v[i].uffd = -1;
				alive--;
			}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);

			if (c >= 0 && peer_trusted(c) && send_all(c, tr, id) == 0) {
				/* Wait until the next round has read all: it closes first. */
				struct pollfd w = { .fd = c, .events = POLLIN };

				poll(&w, 1, 10000);
				break;
			}
			if (c >= 0)
				close(c);
		}
	}
	_exit(0);
}

int keeper_start(struct tracker *tr, pid_t root, uint64_t root_start, const struct cr_dump_id *id, pid_t *pid,
		 cr_error_t *err)
{
	struct sockaddr_un sa;
	socklen_t len = keeper_addr(&sa, root, root_start);
	int lsock, pipefd[2], status;
	pid_t child;
	size_t n = 0;

	*pid = 0;
	for (size_t i = 0; i < tr->n; i++)
		n += tr->v[i].uffd >= 0;
	if (n == 0)
		return 0;
	lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, len) < 0 || listen(lsock, 4) < 0) {
		int e = errno;

		if (lsock >= 0)
			close(lsock);
		return cr_error(err, e, "the keeper's socket @%s", sa.sun_path + 1);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		close(lsock);
		return cr_error(err, errno, "pipe");
	}
	child = fork();
	if (child == 0) {
		pid_t keeper;

		close(pipefd[0]);
		setsid();
		keeper = fork();
		if (keeper == 0) {
			close(pipefd[1]);
			keeper_detach(tr, lsock);
			keeper_loop(tr, lsock, id);
		}
		_exit(write(pipefd[1], &keeper, sizeof(keeper)) == (ssize_t)sizeof(keeper) && keeper > 0 ? 0 : 1);
	}
	close(pipefd[1]);
	close(lsock);
	if (child < 0 || read(pipefd[0], pid, sizeof(*pid)) != (ssize_t)sizeof(*pid)) {
		close(pipefd[0]);
		if (child > 0)
			waitpid(child, &status, 0);
		return cr_error(err, errno, "start the keeper");
	}
	close(pipefd[0]);
	waitpid(child, &status, 0);
	return 0;
}
