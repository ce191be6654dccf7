/*
 * w_creds STATE_DIR
 *
 * A child that runs as uid 1000 / gid 1001 with no supplementary groups,
 * with a parent-death signal (set after the credentials, which clear it)
 * and all three interval timers armed.  The parent stays root and keeps
 * running, so the signal never fires.  On the trigger the parent asks the
 * child over a pipe to check its state and reports the child's answer: a
 * restore that set the signal before the credentials, or that shared one
 * timer slot between the three, fails here.
 */
#include "wl.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define UID 1000
#define GID 1001
#define PDEATH_SIG SIGUSR1

static const struct {
	int which;
	const char *name;
	long value, interval;   /* seconds */
} timers[] = {
	{ ITIMER_REAL, "ITIMER_REAL", 1000, 500 },
	{ ITIMER_VIRTUAL, "ITIMER_VIRTUAL", 800, 400 },
	{ ITIMER_PROF, "ITIMER_PROF", 700, 300 },
};

/* Appends to out what is wrong with the child's state. */
static void child_check(char *out, size_t size)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	int sig = 0;
	size_t len = 0;

#define BAD(...) (len += (size_t)snprintf(out + len, len < size ? size - len : 0, __VA_ARGS__))
	if (getresuid(&r, &e, &s) < 0 || r != UID || e != UID || s != UID)
		BAD("uids %u/%u/%u, want %u; ", r, e, s, UID);
	if (getresgid(&gr, &ge, &gs) < 0 || gr != GID || ge != GID || gs != GID)
		BAD("gids %u/%u/%u, want %u; ", gr, ge, gs, GID);
	if (getgroups(0, NULL) != 0)
		BAD("%d supplementary groups, want none; ", getgroups(0, NULL));
	if (prctl(PR_GET_PDEATHSIG, &sig) < 0 || sig != PDEATH_SIG)
		BAD("parent-death signal %d, want %d; ", sig, PDEATH_SIG);
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		struct itimerval it;
		long long us = 0;

		if (getitimer(timers[i].which, &it) == 0)
			us = it.it_value.tv_sec * 1000000LL + it.it_value.tv_usec;
		/* The kernel adds a tick to every CPU timer it arms, the
		 * restore's setitimer included: allow a second. */
		if (us > (timers[i].value + 1) * 1000000LL || us <= (timers[i].value - 100) * 1000000LL ||
		    it.it_interval.tv_sec != timers[i].interval || it.it_interval.tv_usec != 0)
			BAD("%s %lld us left, interval %ld.%06ld s, want (%ld, %ld] s and %ld s; ", timers[i].name,
			    us, (long)it.it_interval.tv_sec, (long)it.it_interval.tv_usec, timers[i].value - 100,
			    timers[i].value + 1, timers[i].interval);
	}
#undef BAD
	if (len == 0)
		snprintf(out, size, "ok");
}

static __attribute__((noreturn)) void child_main(int cmd, int answer)
{
	char buf[512] = "";

	if (setgroups(0, NULL) < 0 || setresgid(GID, GID, GID) < 0 || setresuid(UID, UID, UID) < 0)
		snprintf(buf, sizeof(buf), "set credentials: %s", strerror(errno));
	else if (prctl(PR_SET_PDEATHSIG, PDEATH_SIG) < 0)
		snprintf(buf, sizeof(buf), "PR_SET_PDEATHSIG: %s", strerror(errno));
	for (size_t i = 0; buf[0] == '\0' && i < sizeof(timers) / sizeof(timers[0]); i++) {
		struct itimerval it = { .it_value = { timers[i].value, 0 },
					.it_interval = { timers[i].interval, 0 } };

		if (setitimer(timers[i].which, &it, NULL) < 0)
			snprintf(buf, sizeof(buf), "setitimer %s: %s", timers[i].name, strerror(errno));
	}
	if (buf[0] == '\0')
		snprintf(buf, sizeof(buf), "ready");
	if (write(answer, buf, strlen(buf)) < 0)
		_exit(3);
	if (read(cmd, buf, 1) != 1)   /* the check command */
		_exit(4);
	child_check(buf, sizeof(buf));
	_exit(write(answer, buf, strlen(buf)) < 0 ? 5 : 0);
}

static void read_answer(int fd, char *buf, size_t size)
{
	ssize_t n;

	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	buf[n > 0 ? n : 0] = '\0';
}

int main(int argc, char **argv)
{
	int cmd[2], answer[2], status;
	char buf[512];
	pid_t child;

	wl_init(argc, argv);
	if (pipe(cmd) < 0 || pipe(answer) < 0)
		wl_fatal("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0)
		child_main(cmd[0], answer[1]);
	read_answer(answer[0], buf, sizeof(buf));
	if (strcmp(buf, "ready") != 0)
		wl_fatal("child: %s", buf);
	wl_ready();
	wl_wait_trigger();

	if (wl_check(write(cmd[1], "c", 1) == 1, "write to the child: %s", strerror(errno))) {
		read_answer(answer[0], buf, sizeof(buf));
		wl_check(strcmp(buf, "ok") == 0, "child: %s", buf[0] ? buf : "no answer");
	}
	wl_check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		 "child did not exit cleanly (status 0x%x)", status);
	wl_finish();
}
