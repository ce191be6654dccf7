/*
 * w_pty STATE_DIR
 *
 * Holds two pty pairs and checks them after restore:
 *
 *   a   master and slave open, the slave in raw mode without echo, VMIN 1
 *       VTIME 3, window 17 rows x 71 columns (pixels 300 x 200), the
 *       master in packet mode (TIOCPKT), the slave's fd O_NONBLOCK: after
 *       restore the same pts number, the same settings, and data flows
 *       both ways (master -> slave raw; slave -> master with the packet
 *       header byte TIOCPKT_DATA).
 *   b   only a master, its slave still locked (never unlocked): after
 *       restore the same number, still locked (TIOCGPTLCK), opening the
 *       slave fails; unlocked, it opens.
 *
 * Sabotage: winsize (changes a's window before the checks), lock
 * (unlocks b before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static int a_master, a_slave, b_master;
static unsigned a_index, b_index;

static unsigned pts_index(int master)
{
	unsigned n;

	if (ioctl(master, TIOCGPTN, &n) < 0)
		wl_fatal("TIOCGPTN: %s", strerror(errno));
	return n;
}

static void setup(void)
{
	struct winsize ws = { .ws_row = 17, .ws_col = 71, .ws_xpixel = 300, .ws_ypixel = 200 };
	struct termios tio;
	int one = 1, zero = 0;
	char name[64];

	a_master = posix_openpt(O_RDWR | O_NOCTTY);
	b_master = posix_openpt(O_RDWR | O_NOCTTY);
	if (a_master < 0 || b_master < 0)
		wl_fatal("posix_openpt: %s", strerror(errno));
	a_index = pts_index(a_master);
	b_index = pts_index(b_master);
	if (ioctl(a_master, TIOCSPTLCK, &zero) < 0)
		wl_fatal("unlock: %s", strerror(errno));
	snprintf(name, sizeof(name), "/dev/pts/%u", a_index);
	a_slave = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK);
	if (a_slave < 0)
		wl_fatal("open %s: %s", name, strerror(errno));
	if (tcgetattr(a_slave, &tio) < 0)
		wl_fatal("tcgetattr: %s", strerror(errno));
	cfmakeraw(&tio);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 3;
	if (tcsetattr(a_slave, TCSANOW, &tio) < 0 || ioctl(a_master, TIOCSWINSZ, &ws) < 0 ||
	    ioctl(a_master, TIOCPKT, &one) < 0)
		wl_fatal("set up pair a: %s", strerror(errno));
}

static void sabotage(void)
{
	char what[32] = "";
	int zero = 0;

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	if (strncmp(what, "winsize", 7) == 0) {
		struct winsize ws = { .ws_row = 5, .ws_col = 5 };

		ioctl(a_master, TIOCSWINSZ, &ws);
	} else if (strncmp(what, "lock", 4) == 0) {
		ioctl(b_master, TIOCSPTLCK, &zero);
	} else {
		wl_check(false, "unknown sabotage '%s'", what);
	}
}

static ssize_t read_wait(int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, 2000) != 1)
		return -1;
	return read(fd, buf, len);
}

static void check_a(void)
{
	struct winsize ws = { 0 };
	struct termios tio;
	int pkt = -1, fl = fcntl(a_slave, F_GETFL);
	int got_ws = ioctl(a_master, TIOCGWINSZ, &ws), got_tio = tcgetattr(a_slave, &tio);
	int got_pkt = ioctl(a_master, TIOCGPKT, &pkt);
	char buf[16];
	ssize_t n;

	wl_check(pts_index(a_master) == a_index, "(a) the master is of pts %u, was %u", pts_index(a_master), a_index);
	wl_check(got_ws == 0 && ws.ws_row == 17 && ws.ws_col == 71 &&
			 ws.ws_xpixel == 300 && ws.ws_ypixel == 200,
		 "(a) window %ux%u (%ux%u pixels), was 17x71 (300x200)", ws.ws_row, ws.ws_col, ws.ws_xpixel,
		 ws.ws_ypixel);
	wl_check(got_tio == 0 && !(tio.c_lflag & (ECHO | ICANON)) && tio.c_cc[VMIN] == 1 &&
			 tio.c_cc[VTIME] == 3,
		 "(a) the slave is not raw with VMIN 1 VTIME 3 (lflag 0%o)", tio.c_lflag);
	wl_check(got_pkt == 0 && pkt == 1, "(a) packet mode is %d", pkt);
	wl_check(fl >= 0 && (fl & O_NONBLOCK), "(a) the slave lost O_NONBLOCK");
	wl_check(write(a_master, "ping", 4) == 4, "(a) write to the master: %s", strerror(errno));
	n = read_wait(a_slave, buf, sizeof(buf));
	wl_check(n == 4 && memcmp(buf, "ping", 4) == 0, "(a) the slave read %zd bytes, not 'ping'", n);
	wl_check(write(a_slave, "pong", 4) == 4, "(a) write to the slave: %s", strerror(errno));
	n = read_wait(a_master, buf, sizeof(buf));
	wl_check(n == 5 && buf[0] == TIOCPKT_DATA && memcmp(buf + 1, "pong", 4) == 0,
		 "(a) the master read %zd bytes, not a packet with 'pong'", n);
}

static void check_b(void)
{
	int lck = -1;
	int got = ioctl(b_master, TIOCGPTLCK, &lck);
	char name[64];
	int fd;

	wl_check(pts_index(b_master) == b_index, "(b) the master is of pts %u, was %u", pts_index(b_master), b_index);
	wl_check(got == 0 && lck == 1, "(b) the slave's lock is %d, want 1", lck);
	snprintf(name, sizeof(name), "/dev/pts/%u", b_index);
	fd = open(name, O_RDWR | O_NOCTTY);
	wl_check(fd < 0 && errno == EIO, "(b) opening the locked slave: %s", fd < 0 ? strerror(errno) : "opened");
	if (fd >= 0)
		close(fd);
	lck = 0;
	wl_check(ioctl(b_master, TIOCSPTLCK, &lck) == 0 && (fd = open(name, O_RDWR | O_NOCTTY)) >= 0,
		 "(b) unlocked, the slave does not open: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	setup();
	wl_ready();
	wl_wait_trigger();
	sabotage();
	check_a();
	check_b();
	wl_finish();
}
