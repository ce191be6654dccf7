/*
 * w_counter STATE_DIR
 *
 * The demo workload: every 100 ms it appends "pid <pid> count <n>" to its log
 * (fd 1, a regular file opened O_APPEND), forever. The count lives only in
 * memory, so after a restore the log goes on from where it stopped; a process
 * started afresh would begin again at 1.
 *
 * SIGTERM ends it (default action). SIGUSR2 makes it check that the count
 * moved and finish with a result, like the other workloads.
 */
#include "wl.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long count = 0;

	wl_init(argc, argv);
	wl_ready();
	while (!wl_triggered) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		count++;
		dprintf(1, "pid %d count %lu\n", (int)getpid(), count);
		nanosleep(&ts, NULL);	/* EINTR after a restore: just go on */
	}
	wl_check(count > 0, "count did not move");
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
