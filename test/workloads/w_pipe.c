/*
 * w_pipe STATE_DIR
 *
 * Holds a pipe and a unix socketpair, each with data buffered in it, and
 * above them (a higher fd number, so that cr has already read the pipe and
 * the socket queue when it gets there) a raw socket, a kind cr does not
 * support: `cr dump` must refuse and leave the process running untouched.
 * On the trigger it checks that it is not traced or stopped, that the
 * buffered data is still all there (the dump read it without consuming it)
 * and that both channels still carry a byte.
 *
 * Writes "fds": "pipe R W\nsocket A B\nraw N\n" with the fd numbers.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void check_channel(const char *what, int rfd, int wfd, const char *buffered, int mode)
{
	char buf[64] = "";
	struct stat st;
	ssize_t n;
	size_t len = strlen(buffered);
	int r = fstat(rfd, &st);

	if (wl_check(r == 0, "%s fd %d: %s", what, rfd, strerror(errno)))
		wl_check((st.st_mode & S_IFMT) == (mode_t)mode, "%s fd %d changed kind", what, rfd);
	n = read(rfd, buf, sizeof(buf) - 1);
	wl_check(n == (ssize_t)len && memcmp(buf, buffered, len) == 0,
		 "%s: buffered data lost (read %zd bytes)", what, n);
	wl_check(write(wfd, "!", 1) == 1, "%s: write failed", what);
	n = read(rfd, buf, 1);
	wl_check(n == 1 && buf[0] == '!', "%s: byte did not come through", what);
}

int main(int argc, char **argv)
{
	int p[2], s[2], raw;

	wl_init(argc, argv);
	if (pipe2(p, O_NONBLOCK) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) < 0)
		wl_fatal("pipe/socketpair: %s", strerror(errno));
	if (write(p[1], "hello", 5) != 5 || write(s[0], "world", 5) != 5)
		wl_fatal("write: %s", strerror(errno));
	raw = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
	if (raw < 0)
		wl_fatal("raw socket: %s", strerror(errno));
	wl_write_file("fds", "pipe %d %d\nsocket %d %d\nraw %d\n", p[0], p[1], s[0], s[1], raw);
	wl_ready();
	wl_wait_trigger();

	wl_check(wl_status_field("TracerPid") == 0, "still traced (TracerPid %ld)",
		 wl_status_field("TracerPid"));
	check_channel("pipe", p[0], p[1], "hello", S_IFIFO);
	check_channel("socket", s[1], s[0], "world", S_IFSOCK);
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
