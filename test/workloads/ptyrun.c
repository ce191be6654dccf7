/*
 * ptyrun OUTFILE CMD [ARGS...]
 *
 * Test helper (not a workload): runs CMD on a fresh pseudo-terminal, as the
 * leader of a new session with the pty as its controlling terminal, and
 * copies everything the terminal shows into OUTFILE. Nothing is typed into
 * the terminal. Exits when CMD has exited and the terminal has no other
 * writer left (or 2 s after CMD exited), with CMD's exit status (128+signal
 * if it was killed). SIGTERM/SIGINT/SIGHUP are passed on to CMD.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t pending_sig;

static void on_signal(int sig)
{
	pending_sig = sig;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	int master, out, status = 0, exit_code = -1;
	long long exited_at = 0;
	struct sigaction sa;
	pid_t child;

	if (argc < 3) {
		fprintf(stderr, "usage: ptyrun OUTFILE CMD [ARGS...]\n");
		return 2;
	}
	out = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out < 0) {
		perror(argv[1]);
		return 2;
	}
	child = forkpty(&master, NULL, NULL, NULL);
	if (child < 0) {
		perror("forkpty");
		return 2;
	}
	if (child == 0) {
		execvp(argv[2], argv + 2);
		perror(argv[2]);
		_exit(127);
	}
	fcntl(master, F_SETFD, FD_CLOEXEC);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	for (;;) {
		struct pollfd pfd = { .fd = master, .events = POLLIN };
		char buf[4096];
		int r;

		if (pending_sig) {
			kill(child, pending_sig);
			pending_sig = 0;
		}
		if (exit_code < 0 && waitpid(child, &status, WNOHANG) == child) {
			exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			exited_at = now_ms();
		}
		if (exit_code >= 0 && now_ms() - exited_at > 2000)
			break;
		r = poll(&pfd, 1, 100);
		if (r > 0) {
			ssize_t n = read(master, buf, sizeof(buf));

			if (n > 0) {
				if (write(out, buf, (size_t)n) != n)
					break;
			} else if (n < 0 && errno != EINTR && errno != EAGAIN) {
				/* EIO: no writer is left on the terminal. */
				if (exit_code >= 0)
					break;
				usleep(50 * 1000);
			}
		}
	}
	return exit_code < 0 ? 2 : exit_code;
}
