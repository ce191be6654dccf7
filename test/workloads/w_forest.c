/*
 * w_forest STATE_DIR N
 *
 * For `make bench`: a root with N-1 small children that wait. When the root
 * is triggered it checks every child is still its child, alive, with the
 * pid it had, and kills them.
 */
#include "wl.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_KIDS 4096

/* The file "tree" the harness's treelib reads: "<i> N <pid> <ppid> <pid>"
 * a line, the root first (its parent left out as "-").  Only for forests of
 * up to 100 (wl_write_file holds 4 KiB; the larger ones are make bench's,
 * which checks them through the trigger alone). */
static void write_tree(const pid_t *kids, int n)
{
	size_t cap = (size_t)(n + 1) * 48, len = 0;
	char *text = malloc(cap);
	pid_t me = getpid();

	if (text == NULL)
		wl_fatal("malloc");
	len += (size_t)snprintf(text + len, cap - len, "0 N %d - %d\n", me, me);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%d N %d %d %d\n", i + 1, kids[i], me, kids[i]);
	if (wl_write_file("tree", "%s", text) < 0)
		wl_fatal("write the tree file");
	free(text);
}

int main(int argc, char **argv)
{
	static pid_t kids[MAX_KIDS];
	int n;

	wl_init(argc, argv);
	n = argc > 2 ? atoi(argv[2]) - 1 : 99;
	if (n < 0 || n > MAX_KIDS)
		wl_fatal("bad process count");
	for (int i = 0; i < n; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			wl_fatal("fork");
		if (kids[i] == 0) {
			for (;;)
				pause();
		}
	}
	if (n < 100)
		write_tree(kids, n);
	wl_ready();
	wl_wait_trigger();
	for (int i = 0; i < n; i++) {
		int st;

		wl_check(kill(kids[i], 0) == 0, "child %d is gone", kids[i]);
		wl_check(waitpid(kids[i], &st, WNOHANG) == 0, "child %d is not running", kids[i]);
		kill(kids[i], SIGKILL);
		waitpid(kids[i], &st, 0);
	}
	wl_finish();
}
