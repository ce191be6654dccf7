/*
 * w_pty STATE_DIR
 *
 * Holds three pty pairs and checks them after restore:
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
 *   c   (opened first) master and slave, the slave in the default
 *       canonical mode with echo, holding data queued both ways: typed
 *       "one\rtwo^V^C^V^S\npar" (the slave's input holds the lines "one\n",
 *       "two^C^S\n" and the partial "par"), and the slave wrote "out\n^C\r"
 *       not read by the master (ONLCR made it "out\r\n^C\r"): after
 *       restore the slave reads the same two lines one at a time, "par"
 *       is not readable until a newline ends it, and the master reads
 *       the same bytes (the echo and the output) as a reference pair set
 *       up the same way and read at once.
 *
 *   d   (opened first too) master and slave in the default canonical mode,
 *       nothing queued: the same termios after (cr switches a pair raw to
 *       look for a line not yet ended, and must set it back).
 *
 * w_pty STATE_DIR refuse: pair a's master in packet mode also holds a
 * byte the slave wrote, which cr refuses (after reading pair c's bytes and
 * putting them back); the checks then read that byte first.
 *
 * Sabotage: winsize (changes a's window before the checks), lock
 * (unlocks b before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static int a_master, a_slave, b_master, c_master, c_slave, d_master, d_slave;
static struct termios d_tio;
static unsigned a_index, b_index;
static bool refuse;
static char c_echo[256];
static size_t c_echo_len;

static const char c_typed[] = "one\rtwo\x16\x03\x16\x13\npar";
static const char c_output[] = "out\n\x03\r";

static ssize_t read_wait_ms(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	if (poll(&p, 1, ms) != 1)
		return -1;
	return read(fd, buf, len);
}

static unsigned pts_index(int master)
{
	unsigned n;

	if (ioctl(master, TIOCGPTN, &n) < 0)
		wl_fatal("TIOCGPTN: %s", strerror(errno));
	return n;
}

static ssize_t read_wait(int fd, void *buf, size_t len);

/* A pair in the default (canonical, echo) mode; the slave opened. */
static int open_pair(int *slave)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), zero = 0;
	char name[64];

	if (m < 0 || ioctl(m, TIOCSPTLCK, &zero) < 0)
		wl_fatal("pair: %s", strerror(errno));
	snprintf(name, sizeof(name), "/dev/pts/%u", pts_index(m));
	*slave = open(name, O_RDWR | O_NOCTTY);
	if (*slave < 0)
		wl_fatal("open %s: %s", name, strerror(errno));
	return m;
}

static int inq(int fd)
{
	int n = -1;

	ioctl(fd, FIONREAD, &n);
	return n;
}

/* Until fd holds want bytes (any number if want < 0) and stays so 50 ms. */
static void await_inq(int fd, int want)
{
	int last = -2, same = 0;

	for (int i = 0; i < 400 && same < 5; i++) {
		int n = inq(fd);

		same = n == last && n > 0 && (want < 0 || n == want) ? same + 1 : 0;
		last = n;
		usleep(10000);
	}
	if (same < 5)
		wl_fatal("fd %d holds %d bytes, not %d", fd, last, want);
}

/* Types into m and writes out of s what pair c holds, the echo before the
 * output (both come to the master through the tty's buffer work). */
static void fill_pair(int m, int s)
{
	if (write(m, c_typed, strlen(c_typed)) != (ssize_t)strlen(c_typed))
		wl_fatal("fill a pair: %s", strerror(errno));
	await_inq(s, 10);   /* "one\n" "two^C^S\n" */
	await_inq(m, -1);   /* the echo */
	if (write(s, c_output, strlen(c_output)) != (ssize_t)strlen(c_output))
		wl_fatal("fill a pair: %s", strerror(errno));
	await_inq(m, -1);
}

/* All m has to read now (until it stays quiet for 200 ms). */
static size_t read_all(int m, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len && (n = read_wait_ms(m, buf + got, len - got, 200)) > 0)
		got += (size_t)n;
	return got;
}

static void setup_c(void)
{
	int ref_slave, ref = open_pair(&ref_slave);

	c_master = open_pair(&c_slave);
	d_master = open_pair(&d_slave);
	if (tcgetattr(d_slave, &d_tio) < 0)
		wl_fatal("tcgetattr: %s", strerror(errno));
	fill_pair(ref, ref_slave);
	fill_pair(c_master, c_slave);
	c_echo_len = read_all(ref, c_echo, sizeof(c_echo));
	if (c_echo_len == 0)
		wl_fatal("the reference pair echoed nothing");
	close(ref);
	close(ref_slave);
}

static void setup(void)
{
	struct winsize ws = { .ws_row = 17, .ws_col = 71, .ws_xpixel = 300, .ws_ypixel = 200 };
	struct termios tio;
	int one = 1, zero = 0;
	char name[64];

	setup_c();
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
	if (refuse && write(a_slave, "!", 1) != 1)
		wl_fatal("write a: %s", strerror(errno));
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
	return read_wait_ms(fd, buf, len, 2000);
}

static void check_d(void)
{
	struct termios t = { 0 };

	wl_check(tcgetattr(d_slave, &t) == 0 && t.c_iflag == d_tio.c_iflag && t.c_oflag == d_tio.c_oflag &&
			 t.c_lflag == d_tio.c_lflag && memcmp(t.c_cc, d_tio.c_cc, sizeof(t.c_cc)) == 0,
		 "(d) termios changed: iflag 0%o oflag 0%o lflag 0%o, was 0%o 0%o 0%o", t.c_iflag, t.c_oflag,
		 t.c_lflag, d_tio.c_iflag, d_tio.c_oflag, d_tio.c_lflag);
}

static void check_c(void)
{
	char buf[256];
	ssize_t n;
	size_t got = read_all(c_master, buf, sizeof(buf));

	char have[3 * sizeof(buf) + 1] = "", want[3 * sizeof(buf) + 1] = "";

	for (size_t i = 0; i < got; i++)
		snprintf(have + 3 * i, 4, "%02x ", (unsigned char)buf[i]);
	for (size_t i = 0; i < c_echo_len; i++)
		snprintf(want + 3 * i, 4, "%02x ", (unsigned char)c_echo[i]);
	wl_check(got == c_echo_len && memcmp(buf, c_echo, got) == 0,
		 "(c) the master read %zu bytes (%s), not the %zu echoed and written (%s)", got, have, c_echo_len, want);
	n = read_wait(c_slave, buf, sizeof(buf));
	wl_check(n == 4 && memcmp(buf, "one\n", 4) == 0, "(c) the slave's first line is %zd bytes, not 'one\\n'", n);
	n = read_wait(c_slave, buf, sizeof(buf));
	wl_check(n == 6 && memcmp(buf, "two\x03\x13\n", 6) == 0,
		 "(c) the slave's second line is %zd bytes, not 'two^C^S\\n'", n);
	n = read_wait_ms(c_slave, buf, sizeof(buf), 300);
	wl_check(n < 0, "(c) the partial line was readable (%zd bytes) before it ended", n);
	wl_check(write(c_master, "\n", 1) == 1, "(c) write: %s", strerror(errno));
	n = read_wait(c_slave, buf, sizeof(buf));
	wl_check(n == 4 && memcmp(buf, "par\n", 4) == 0, "(c) the partial line ended reads %zd bytes, not 'par\\n'", n);
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
	if (refuse) {
		n = read_wait(a_master, buf, sizeof(buf));
		wl_check(n == 2 && buf[1] == '!', "(a) the master read %zd bytes, not the packet with '!'", n);
	}
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
	refuse = argc > 2 && strcmp(argv[2], "refuse") == 0;
	setup();
	wl_ready();
	wl_wait_trigger();
	sabotage();
	check_c();
	check_d();
	check_a();
	check_b();
	wl_finish();
}
