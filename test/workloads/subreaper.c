/*
 * subreaper CMD [ARGS...]
 *
 * Test helper (not a workload): makes itself a child subreaper, runs CMD as
 * its child with CR_TEST_SUBREAPER=<own pid> in the environment, and reaps
 * every process that ends up below it. Restored processes whose `cr restore
 * --detach` has exited are reparented here instead of to PID 1, which on these
 * machines reaps orphans only after seconds (a zombie keeps its pid taken).
 *
 * When CMD exits, whatever is still parented here is killed (and reported on
 * stderr: the tests should have cleaned up) and reaped; then it exits with
 * CMD's status (128+signal if CMD was killed). SIGTERM, SIGINT and SIGHUP are
 * passed on to CMD.
 *
 * PR_SET_CHILD_SUBREAPER is not inherited across fork, so CMD itself is not a
 * subreaper; orphans skip it and land here.
 */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t main_child;

static void forward(int sig)
{
	if (main_child > 0)
		kill(main_child, sig);
}

static pid_t parent_of(pid_t pid, char *comm, size_t size)
{
	char path[64], buf[1024], *close_paren;
	FILE *f;
	int ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (close_paren = strrchr(buf, ')'))) {
		char *open_paren = strchr(buf, '(');

		sscanf(close_paren + 2, "%*c %d", &ppid);
		*close_paren = '\0';
		snprintf(comm, size, "%s", open_paren ? open_paren + 1 : "?");
	}
	fclose(f);
	return ppid;
}

#define PID_LIMIT 4194304   /* PID_MAX_LIMIT */

/* Leftovers already named: a tree of thousands is killed over many passes
 * and each is named once. */
static unsigned char named[PID_LIMIT / 8];

static bool name_once(pid_t pid)
{
	bool first;

	if (pid >= PID_LIMIT)
		return true;
	first = !(named[pid / 8] & (1u << (pid % 8)));
	named[pid / 8] |= (unsigned char)(1u << (pid % 8));
	return first;
}

/* Kills every live child that is still ours. */
static void kill_leftovers(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char comm[64];

	if (!d)
		return;
	while ((e = readdir(d))) {
		pid_t pid = (pid_t)atoi(e->d_name);

		if (pid <= 0 || parent_of(pid, comm, sizeof(comm)) != getpid())
			continue;
		if (name_once(pid))
			fprintf(stderr, "subreaper: killing leftover process %d (%s)\n", (int)pid, comm);
		kill(pid, SIGKILL);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	char pid_text[32];
	int status, exit_code = 1;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: subreaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		perror("PR_SET_CHILD_SUBREAPER");
		return 2;
	}
	snprintf(pid_text, sizeof(pid_text), "%d", (int)getpid());
	setenv("CR_TEST_SUBREAPER", pid_text, 1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	main_child = pid;

	/* Reap everything until the command is done. */
	for (;;) {
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
		if (pid == main_child) {
			exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			main_child = 0;
			break;
		}
	}
	/* Then clean up what it left behind (children of the killed reparent here). */
	for (;;) {
		kill_leftovers();
		pid = waitpid(-1, &status, 0);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0)
			break;
	}
	return exit_code;
}
