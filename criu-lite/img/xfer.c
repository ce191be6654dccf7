/* A dump over TCP: the client side (cr dump --page-server) and the server
 * side (cr page-server).  See xfer.h for the protocol. */
#include "img/xfer.h"
#include "img/dir.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char magic[8] = "CRXFER";

#define NAME_MAX_XFER 255
#define HIDDEN_PREFIX ".xfer-"

/* ------------------------------------------------------------ the wire */

static int put(int sock, const void *buf, size_t n, cr_error_t *err)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(sock, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return cr_error(err, w < 0 ? errno : EPIPE, "send to the page server connection");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int get(int sock, void *buf, size_t n, cr_error_t *err)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = recv(sock, p, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return cr_error(err, EPIPE, "the connection closed in the middle of the transfer");
		if (r < 0)
			return cr_error(err, errno, errno == EAGAIN ? "nothing came for %d s" : "receive",
					XFER_TIMEOUT_S);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int get_u32(int sock, uint32_t *v, cr_error_t *err)
{
	if (get(sock, v, sizeof(*v), err) < 0)
		return -1;
	*v = le32toh(*v);
	return 0;
}

/* Timeouts, and small messages (hello, answer) sent at once. */
static int set_timeouts(int sock, cr_error_t *err)
{
	struct timeval tv = { .tv_sec = XFER_TIMEOUT_S };
	int one = 1;

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return cr_error(err, errno, "set the connection's options");
	return 0;
}

/* While corked, the headers and batches go out in full segments; the
 * uncork after the last record sends the rest. */
static int cork(int sock, int on, cr_error_t *err)
{
	if (setsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on)) < 0)
		return cr_error(err, errno, "TCP_CORK");
	return 0;
}

/* Each side says its version first and checks the other's. */
static int hello(int sock, cr_error_t *err)
{
	struct {
		char magic[8];
		uint32_t version, zero;
	} mine = { .version = htole32(XFER_VERSION) }, theirs;

	memcpy(mine.magic, magic, sizeof(magic));
	if (put(sock, &mine, sizeof(mine), err) < 0 || get(sock, &theirs, sizeof(theirs), err) < 0)
		return cr_error_wrap(err, "hello");
	if (memcmp(theirs.magic, magic, sizeof(magic)) != 0)
		return cr_error(err, EPROTO, "the other side is not a cr image transfer");
	if (le32toh(theirs.version) != XFER_VERSION)
		return cr_error(err, EPROTO, "the other side speaks transfer version %u, this cr version %u",
				le32toh(theirs.version), XFER_VERSION);
	return 0;
}

/* Socket buffers large enough for a whole final round of a migration
 * (set before the connection exists, so that the window scale allows
 * them): the sender hands its images over at once instead of waiting,
 * frozen, for the window to grow.  Root may pass the sysctl limits; an
 * error only leaves the defaults. */
#define XFER_SOCKBUF (8 << 20)

static void big_buffers(int sock)
{
	int size = XFER_SOCKBUF;

	if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

static int resolve(const char *address, int port, bool passive, struct addrinfo **ai, cr_error_t *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	char service[16];
	int r;

	if (passive)
		hints.ai_flags |= AI_PASSIVE;
	if (port <= 0 || port > 65535)
		return cr_error(err, EINVAL, "port %d is not a TCP port", port);
	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(address, service, &hints, ai);
	if (r != 0)
		return cr_error(err, EINVAL, "address '%s': %s (a numeric IPv4 or IPv6 address)",
				address ? address : "(none)", gai_strerror(r));
	return 0;
}

int xfer_connect(const char *address, int port, cr_error_t *err)
{
	struct addrinfo *ai;
	int sock;

	if (resolve(address, port, false, &ai, err) < 0)
		return -1;
	sock = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock >= 0)
		big_buffers(sock);
	if (sock < 0 || connect(sock, ai->ai_addr, ai->ai_addrlen) < 0) {
		int saved = errno;

		if (sock >= 0)
			close(sock);
		freeaddrinfo(ai);
		return cr_error(err, saved, "connect to the page server at %s port %d", address, port);
	}
	freeaddrinfo(ai);
	if (set_timeouts(sock, err) < 0 || hello(sock, err) < 0) {
		close(sock);
		return cr_error_wrap(err, "the page server at %s port %d", address, port);
	}
	return sock;
}

int xfer_listen(const char *address, int port, int *bound, cr_error_t *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addrinfo *ai;
	int one = 1, sock;

	if (resolve(address, port == 0 ? 1 : port, true, &ai, err) < 0)
		return -1;
	if (ai->ai_family == AF_INET)
		((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)port);
	else if (ai->ai_family == AF_INET6)
		((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)port);
	sock = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock >= 0)
		big_buffers(sock);   /* the accepted connection's */
	if (sock < 0 || setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(sock, ai->ai_addr, ai->ai_addrlen) < 0 || listen(sock, 1) < 0) {
		int saved = errno;

		if (sock >= 0)
			close(sock);
		freeaddrinfo(ai);
		return cr_error(err, saved, "listen on %s port %d", address ? address : "(any)", port);
	}
	freeaddrinfo(ai);
	if (getsockname(sock, (struct sockaddr *)&ss, &len) < 0) {
		close(sock);
		return cr_error(err, errno, "getsockname");
	}
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
						 ((struct sockaddr_in6 *)&ss)->sin6_port);
	return sock;
}

/* ------------------------------------------------------------- sending */

static bool is_inventory(const char *name)
{
	return strncmp(name, "inventory", 9) == 0;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t a = strlen(s), b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

/* The inventory after everything else, then by name. */
static int cmp_send_order(const void *pa, const void *pb)
{
	const char *a = *(char *const *)pa, *b = *(char *const *)pb;

	if (is_inventory(a) != is_inventory(b))
		return is_inventory(a) ? 1 : -1;
	return strcmp(a, b);
}

struct names {
	char **v;
	size_t n;
};

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void names_add(struct names *l, const char *name)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = xstrdup(name);
}

/* The files a dump sends: regular, not hidden, not a log. */
static int list_files(int dirfd, struct names *out, cr_error_t *err)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return cr_error(err, errno, "read the image directory");
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' || ends_with(de->d_name, ".log") ||
		    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		names_add(out, de->d_name);
	}
	closedir(d);
	qsort(out->v, out->n, sizeof(*out->v), cmp_send_order);
	return 0;
}

static int await_answer(int sock, cr_error_t *err);

/* The server answers before the end only to refuse: say why, and stop. */
static int early_answer(int sock, cr_error_t *err)
{
	struct pollfd p = { .fd = sock, .events = POLLIN };

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (await_answer(sock, err) == 0)
		return cr_error(err, EPROTO, "the page server answered before the end");
	return -1;
}

/* A batch: u32 length, u32 crc32, the bytes, in one sendmsg (and more
 * only if the socket takes part of it). */
static int put_batch(int sock, const char *buf, size_t n, cr_error_t *err)
{
	uint32_t head[2] = { htole32((uint32_t)n), htole32((uint32_t)crc32(0, (const Bytef *)buf, (uInt)n)) };
	struct iovec iov[2] = { { head, sizeof(head) }, { (void *)buf, n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t left = sizeof(head) + n;

	while (left > 0) {
		ssize_t w = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return cr_error(err, w < 0 ? errno : EPIPE, "send to the page server connection");
		left -= (size_t)w;
		while (mh.msg_iovlen > 0 && (size_t)w >= mh.msg_iov[0].iov_len) {
			w -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + w;
			mh.msg_iov[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int send_file(int sock, int dirfd, const char *name, char *buf, uint64_t *bytes, cr_error_t *err)
{
	struct stat st;
	cleanup_close int fd = img_dir_open_read(dirfd, name, &st, err);
	uint16_t len = (uint16_t)strlen(name);
	uint64_t size, left;
	uint32_t mode;
	uint8_t kind = 'F';
	char hdr[15 + NAME_MAX_XFER];

	if (fd < 0)
		return -1;
	if (strlen(name) > NAME_MAX_XFER)
		return cr_error(err, ENAMETOOLONG, "%s: a name longer than %d bytes", name, NAME_MAX_XFER);
	size = htole64((uint64_t)st.st_size);
	len = htole16(len);
	mode = htole32(st.st_mode & 07777);
	/* The header in one piece: 'F', u16 name length, the name, u32 mode, u64 size. */
	memcpy(hdr, &kind, 1);
	memcpy(hdr + 1, &len, sizeof(len));
	memcpy(hdr + 3, name, strlen(name));
	memcpy(hdr + 3 + strlen(name), &mode, sizeof(mode));
	memcpy(hdr + 7 + strlen(name), &size, sizeof(size));
	if (early_answer(sock, err) < 0 || put(sock, hdr, 15 + strlen(name), err) < 0)
		return -1;
	for (left = (uint64_t)st.st_size; left > 0;) {
		size_t want = left < XFER_BATCH ? (size_t)left : XFER_BATCH;
		ssize_t r = read(fd, buf, want);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return cr_error(err, r < 0 ? errno : EIO, "read %s", name);
		if (early_answer(sock, err) < 0 || put_batch(sock, buf, (size_t)r, err) < 0)
			return -1;
		left -= (uint64_t)r;
		*bytes += (uint64_t)r;
	}
	return 0;
}

/* The server's last word: status 0, or its error. */
static int await_answer(int sock, cr_error_t *err)
{
	char msg[512];
	uint32_t status;
	uint16_t len;

	if (get_u32(sock, &status, err) < 0 || get(sock, &len, sizeof(len), err) < 0)
		return cr_error_wrap(err, "the page server's answer");
	len = le16toh(len);
	if (len >= sizeof(msg))
		return cr_error(err, EPROTO, "the page server's answer is %u bytes long", len);
	if (get(sock, msg, len, err) < 0)
		return cr_error_wrap(err, "the page server's answer");
	msg[len] = '\0';
	if (status != 0)
		return cr_error(err, EPROTO, "the page server refused the dump: %s", msg);
	return 0;
}

int xfer_send_dir(int sock, int dirfd, uint64_t *bytes, cr_error_t *err)
{
	struct names files = { 0 };
	cleanup_free char *buf = xmalloc(XFER_BATCH);
	uint8_t end = 'E';
	char tail[5];
	uint32_t count;
	int ret = -1;

	*bytes = 0;
	if (list_files(dirfd, &files, err) < 0 || cork(sock, 1, err) < 0)
		goto out;
	count = htole32((uint32_t)files.n);
	for (size_t i = 0; i < files.n; i++)
		if (send_file(sock, dirfd, files.v[i], buf, bytes, err) < 0) {
			cr_error_wrap(err, "send %s", files.v[i]);
			goto out;
		}
	memcpy(tail, &end, 1);
	memcpy(tail + 1, &count, sizeof(count));
	if (put(sock, tail, sizeof(tail), err) < 0 || cork(sock, 0, err) < 0 ||
	    await_answer(sock, err) < 0)
		goto out;
	ret = 0;
out:
	names_free(&files);
	return ret;
}

int xfer_send_commit(int sock, cr_error_t *err)
{
	uint8_t commit = 'C';

	return put(sock, &commit, 1, err) < 0 ? cr_error_wrap(err, "send the commit") : 0;
}

/* ----------------------------------------------------------- receiving */

/* A name the server writes: one component, not hidden, printable. */
static int check_name(const char *name, size_t len, cr_error_t *err)
{
	if (len == 0 || name[0] == '.')
		return cr_error(err, EPROTO, "a file name '%s' (empty or hidden)", name);
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return cr_error(err, EPROTO, "a file name with '/' or a control character");
	return 0;
}

#define RBUF_SIZE (256u << 10)

struct recv_state {
	int sock, dirfd;
	struct names got;      /* the names received, in order */
	size_t renamed;        /* how many of them have their names */
	char *buf;
	uint64_t bytes;
	char *rbuf;            /* what came and is not read yet: [rpos, rlen) */
	size_t rpos, rlen;
};

/* get() through the read buffer: a record's small fields cost no system
 * call each (large reads go straight to buf once the buffer is empty). */
static int rget(struct recv_state *s, void *buf, size_t n, cr_error_t *err)
{
	char *p = buf;

	while (n > 0) {
		size_t take = s->rlen - s->rpos < n ? s->rlen - s->rpos : n;
		ssize_t r;

		memcpy(p, s->rbuf + s->rpos, take);
		s->rpos += take;
		p += take;
		n -= take;
		if (n == 0)
			break;
		if (n >= RBUF_SIZE / 2)
			return get(s->sock, p, n, err);
		r = recv(s->sock, s->rbuf, RBUF_SIZE, 0);
		if (r < 0 && errno == EINTR)
			r = 0, s->rpos = s->rlen = 0;
		else if (r == 0)
			return cr_error(err, EPIPE, "the connection closed in the middle of the transfer");
		else if (r < 0)
			return cr_error(err, errno, errno == EAGAIN ? "nothing came for %d s" : "receive",
					XFER_TIMEOUT_S);
		s->rpos = 0;
		s->rlen = (size_t)r;
	}
	return 0;
}

static int rget_u32(struct recv_state *s, uint32_t *v, cr_error_t *err)
{
	if (rget(s, v, sizeof(*v), err) < 0)
		return -1;
	*v = le32toh(*v);
	return 0;
}

static void hidden_name(const char *name, char out[NAME_MAX_XFER + sizeof(HIDDEN_PREFIX)])
{
	snprintf(out, NAME_MAX_XFER + sizeof(HIDDEN_PREFIX), HIDDEN_PREFIX "%s", name);
}

static int recv_body(struct recv_state *s, int fd, const char *name, uint64_t size, cr_error_t *err)
{
	for (uint64_t left = size; left > 0;) {
		uint32_t len, crc;

		if (rget_u32(s, &len, err) < 0 || rget_u32(s, &crc, err) < 0)
			return -1;
		if (len == 0 || len > XFER_BATCH || len > left)
			return cr_error(err, EPROTO, "%s: a batch of %u bytes, with %llu left", name, len,
					(unsigned long long)left);
		if (rget(s, s->buf, len, err) < 0)
			return -1;
		if ((uint32_t)crc32(0, (const Bytef *)s->buf, len) != crc)
			return cr_error(err, EBADMSG, "%s: a batch at byte %llu fails its crc32", name,
					(unsigned long long)(size - left));
		if (write_all(fd, s->buf, len, err) < 0)
			return cr_error_wrap(err, "write %s", name);
		left -= len;
		s->bytes += len;
	}
	return 0;
}

static int recv_file(struct recv_state *s, cr_error_t *err)
{
	char name[NAME_MAX_XFER + 1], hidden[NAME_MAX_XFER + sizeof(HIDDEN_PREFIX)];
	uint16_t len;
	uint32_t mode;
	uint64_t size;
	struct stat st;
	cleanup_close int fd = -1;

	if (rget(s, &len, sizeof(len), err) < 0)
		return -1;
	len = le16toh(len);
	if (len > NAME_MAX_XFER)
		return cr_error(err, EPROTO, "a file name of %u bytes", len);
	if (rget(s, name, len, err) < 0)
		return -1;
	name[len] = '\0';
	if (strlen(name) != len || check_name(name, len, err) < 0 || rget_u32(s, &mode, err) < 0 ||
	    rget(s, &size, sizeof(size), err) < 0)
		return -1;
	size = le64toh(size);
	if (fstatat(s->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return cr_error(err, EEXIST, "%s is in the directory already", name);
	hidden_name(name, hidden);
	fd = img_dir_create(s->dirfd, hidden, err);
	if (fd < 0)
		return -1;
	names_add(&s->got, name);
	return recv_body(s, fd, name, size, err);
}

/* Every file durable, then each gets its name, the inventory last (the
 * client sent it last), then the names are durable. */
static int publish(struct recv_state *s, cr_error_t *err)
{
	if (syncfs(s->dirfd) < 0)
		return cr_error(err, errno, "syncfs");
	for (; s->renamed < s->got.n; s->renamed++) {
		char hidden[NAME_MAX_XFER + sizeof(HIDDEN_PREFIX)];

		hidden_name(s->got.v[s->renamed], hidden);
		if (renameat2(s->dirfd, hidden, s->dirfd, s->got.v[s->renamed], RENAME_NOREPLACE) < 0)
			return cr_error(err, errno, "rename %s to %s", hidden, s->got.v[s->renamed]);
	}
	if (syncfs(s->dirfd) < 0)
		return cr_error(err, errno, "syncfs");
	return 0;
}

/* A failed transfer leaves nothing it wrote. */
static void unpublish(struct recv_state *s)
{
	for (size_t i = 0; i < s->got.n; i++) {
		char hidden[NAME_MAX_XFER + sizeof(HIDDEN_PREFIX)];

		hidden_name(s->got.v[i], hidden);
		unlinkat(s->dirfd, i < s->renamed ? s->got.v[i] : hidden, 0);
		img_dir_forget(s->dirfd, hidden);
	}
}

static int receive(struct recv_state *s, uint32_t *files, cr_error_t *err)
{
	for (;;) {
		uint8_t kind;
		uint32_t n;

		if (rget(s, &kind, 1, err) < 0)
			return -1;
		if (kind == 'F') {
			if (recv_file(s, err) < 0)
				return cr_error_wrap(err, "file %zu", s->got.n + 1);
			continue;
		}
		if (kind != 'E')
			return cr_error(err, EPROTO, "a record of kind 0x%02x", kind);
		if (rget_u32(s, &n, err) < 0)
			return -1;
		if (n != s->got.n)
			return cr_error(err, EPROTO, "the client says it sent %u files, %zu arrived", n, s->got.n);
		*files = n;
		return 0;
	}
}

/* The check reads the files by their names before they have them in the
 * directory: through hard links in a hidden directory of its own, gone
 * again after (a server killed meanwhile leaves no dump that looks whole,
 * only hidden names). */
static int check_hidden(struct recv_state *s, const struct xfer_check *check, cr_error_t *err)
{
	char sub[64], hidden[NAME_MAX_XFER + sizeof(HIDDEN_PREFIX)];
	cleanup_close int subfd = -1;
	size_t linked = 0;
	int ret = -1;

	snprintf(sub, sizeof(sub), HIDDEN_PREFIX "check.%d", (int)getpid());
	if (mkdirat(s->dirfd, sub, 0700) < 0)
		return cr_error(err, errno, "make %s to check the dump in", sub);
	subfd = openat(s->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (subfd < 0) {
		cr_error(err, errno, "open %s", sub);
		goto out;
	}
	for (; linked < s->got.n; linked++) {
		hidden_name(s->got.v[linked], hidden);
		if (linkat(s->dirfd, hidden, subfd, s->got.v[linked], 0) < 0) {
			cr_error(err, errno, "link %s to %s/%s", hidden, sub, s->got.v[linked]);
			goto out;
		}
	}
	ret = check->fn(subfd, check->arg, err);
out:
	for (size_t i = 0; i < linked; i++)
		unlinkat(subfd, s->got.v[i], 0);
	unlinkat(s->dirfd, sub, AT_REMOVEDIR);
	return ret;
}

/* The answer in one piece: u32 status, u16 length, the message. */
static void answer(int sock, uint32_t status, const char *msg)
{
	char buf[4 + 2 + 500];
	uint16_t len = (uint16_t)strnlen(msg, 500);
	uint32_t st = htole32(status);
	uint16_t le = htole16(len);
	cr_error_t ignored = NULL;

	memcpy(buf, &st, 4);
	memcpy(buf + 4, &le, 2);
	memcpy(buf + 6, msg, len);
	if (put(sock, buf, 6 + (size_t)len, &ignored) < 0)
		cr_error_release(&ignored);
}

/* After a refusal: what the client still sends is read and dropped until
 * it closes (or XFER_TIMEOUT_S), so that it reads the answer rather than a
 * reset. */
static void drain(int sock)
{
	char buf[65536];

	shutdown(sock, SHUT_WR);
	while (recv(sock, buf, sizeof(buf), 0) > 0)
		;
}

int xfer_recv_dir(int sock, int dirfd, const struct xfer_check *check, uint32_t *files, uint64_t *bytes,
		  cr_error_t *err)
{
	struct recv_state s = { .sock = sock, .dirfd = dirfd, .buf = xmalloc(XFER_BATCH), .rbuf = xmalloc(RBUF_SIZE) };
	int ret = -1;

	*files = 0;
	if (set_timeouts(sock, err) < 0 || hello(sock, err) < 0)
		goto out;
	if (receive(&s, files, err) < 0 || (check != NULL && check_hidden(&s, check, err) < 0) || publish(&s, err) < 0) {
		unpublish(&s);
		answer(sock, 1, (*err)->msg);
		drain(sock);
		goto out;
	}
	answer(sock, 0, "");
	ret = 0;
out:
	*bytes = s.bytes;
	names_free(&s.got);
	free(s.buf);
	free(s.rbuf);
	return ret;
}

int xfer_await_commit(int sock, bool *committed, cr_error_t *err)
{
	uint8_t kind;
	ssize_t r;

	*committed = false;
	do
		r = recv(sock, &kind, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;   /* closed: the tree was not said to be gone */
	if (r < 0)
		return cr_error(err, errno, errno == EAGAIN ? "no commit nor end for %d s" : "receive the commit",
				XFER_TIMEOUT_S);
	if (kind != 'C')
		return cr_error(err, EPROTO, "the client sent %#x where a commit or the end belongs", kind);
	*committed = true;
	return 0;
}
