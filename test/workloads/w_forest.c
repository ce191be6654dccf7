/*
 * w_forest STATE_DIR N
 *
 * For `make bench`: a root with N-1 small children that wait. When the root
 * is triggered it checks every child is still its child, alive, with the
 * pid it had, and kills them.
 */
#include "wl.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_KIDS 4096

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
