/*
 * w_signalfd STATE_DIR
 *
 * Holds two signalfds over blocked signals and checks them after restore:
 *
 *   sfd1   SIGUSR1 and SIGRTMIN+5, SFD_NONBLOCK: its mask (fdinfo) is the
 *          same; the SIGRTMIN+5 queued (with a value) before the dump is
 *          read from it; a SIGUSR1 raised now is read from it, and not seen
 *          by sfd2; then it is empty (EAGAIN).
 *   sfd2   SIGRTMIN+6 only, blocking, close-on-exec: its mask is the same;
 *          a SIGRTMIN+6 queued now is read from it.
 *
 * Sabotage: mask (changes sfd1's mask to SIGRTMIN+6 before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int sfd1, sfd2;
static sigset_t mask1, mask2;

static uint64_t kernel_mask(const int *sigs, size_t n)
{
	uint64_t m = 0;

	for (size_t i = 0; i < n; i++)
		m |= 1ULL << (sigs[i] - 1);
	return m;
}

static uint64_t fdinfo_mask(int fd)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_path(path, buf, sizeof(buf)) < 0 || (p = strstr(buf, "\nsigmask:")) == NULL)
		return 0;
	return strtoull(p + strlen("\nsigmask:"), NULL, 16);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The signal read from fd (with its value), or 0 when there is none. */
static int take(int fd, int *value)
{
	struct signalfd_siginfo si;

	if (!readable(fd) || read(fd, &si, sizeof(si)) != sizeof(si))
		return 0;
	*value = si.ssi_int;
	return (int)si.ssi_signo;
}

static void setup(void)
{
	sigset_t all;

	sigemptyset(&mask1);
	sigaddset(&mask1, SIGUSR1);
	sigaddset(&mask1, SIGRTMIN + 5);
	sigemptyset(&mask2);
	sigaddset(&mask2, SIGRTMIN + 6);
	all = mask1;
	sigaddset(&all, SIGRTMIN + 6);
	sigprocmask(SIG_BLOCK, &all, NULL);
	sfd1 = signalfd(-1, &mask1, SFD_NONBLOCK);
	sfd2 = signalfd(-1, &mask2, SFD_CLOEXEC);
	if (sfd1 < 0 || sfd2 < 0)
		wl_fatal("signalfd: %s", strerror(errno));
	if (sigqueue(getpid(), SIGRTMIN + 5, (union sigval){ .sival_int = 55 }) < 0)
		wl_fatal("sigqueue: %s", strerror(errno));
}

static void check(void)
{
	int rt5 = SIGRTMIN + 5, rt6 = SIGRTMIN + 6, usr1 = SIGUSR1, value = 0, sig;
	int fl1 = fcntl(sfd1, F_GETFL), fl2 = fcntl(sfd2, F_GETFL);

	wl_check(fdinfo_mask(sfd1) == kernel_mask((int[]){ usr1, rt5 }, 2), "(sfd1) mask %016" PRIx64,
		 fdinfo_mask(sfd1));
	wl_check(fdinfo_mask(sfd2) == kernel_mask(&rt6, 1), "(sfd2) mask %016" PRIx64, fdinfo_mask(sfd2));
	wl_check(fl1 >= 0 && (fl1 & O_NONBLOCK), "(sfd1) O_NONBLOCK lost");
	wl_check(fl2 >= 0 && !(fl2 & O_NONBLOCK), "(sfd2) O_NONBLOCK set");
	wl_check(fcntl(sfd2, F_GETFD) == FD_CLOEXEC && fcntl(sfd1, F_GETFD) == 0, "(sfd) close-on-exec flags");

	sig = take(sfd1, &value);
	wl_check(sig == rt5 && value == 55, "(sfd1) read signal %d value %d, want the queued %d value 55", sig, value,
		 rt5);
	raise(SIGUSR1);
	wl_check(!readable(sfd2), "(sfd2) sees SIGUSR1, which is not in its mask");
	sig = take(sfd1, &value);
	wl_check(sig == SIGUSR1, "(sfd1) read signal %d, want SIGUSR1", sig);
	wl_check(read(sfd1, &(struct signalfd_siginfo){ 0 }, sizeof(struct signalfd_siginfo)) < 0 && errno == EAGAIN,
		 "(sfd1) empty read did not fail with EAGAIN");
	sigqueue(getpid(), rt6, (union sigval){ .sival_int = 66 });
	sig = take(sfd2, &value);
	wl_check(sig == rt6 && value == 66, "(sfd2) read signal %d value %d, want %d value 66", sig, value, rt6);
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "mask") == 0)
		signalfd(sfd1, &mask2, 0);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	setup();
	wl_ready();
	wl_wait_trigger();
	sabotage();
	check();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
