/*
 * w_tty STATE_DIR
 *
 * Runs with stdin, stdout and stderr on a terminal (started under ptyrun), for
 * the --shell-job tests. Says "w_tty <pid> ready" on the terminal, waits for
 * the trigger, then checks its fds 0-2 are still terminals and writes
 * "w_tty <pid> <token> alive" to fd 1 (the harness looks for that line in
 * what the terminal showed).
 */
#include "wl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct termios tio;
	int n;

	wl_init_flags(argc, argv, WL_KEEP_STDIO);
	for (int fd = 0; fd <= 2; fd++)
		if (!isatty(fd))
			wl_fatal("fd %d is not a terminal", fd);
	dprintf(1, "w_tty %d ready\n", (int)wl_pid());
	wl_ready();
	wl_wait_trigger();

	for (int fd = 0; fd <= 2; fd++)
		wl_check(isatty(fd), "fd %d is no longer a terminal: %s", fd, strerror(errno));
	wl_check(tcgetattr(0, &tio) == 0, "tcgetattr: %s", strerror(errno));
	n = dprintf(1, "w_tty %d %016" PRIx64 " alive\n", (int)wl_pid(), wl_token());
	wl_check(n > 0, "writing to the terminal failed: %s", strerror(errno));
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
