/*
 * w_thread STATE_DIR
 *
 * A process with a second thread that counts while it waits. cr dumps and
 * restores it with both threads (t_tree.sh, case multi_threaded, checks the
 * tids are the same). On the trigger it checks that it has two threads, is
 * not traced, that the thread still counts, then stops and joins it
 * (pthread_join needs the thread's clear_child_tid restored).
 */
#include "wl.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static volatile unsigned long thread_count;

static void *counter_thread(void *arg)
{
	(void)arg;
	while (!stop) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		thread_count++;
		nanosleep(&ts, NULL);
	}
	return (void *)0x5eed;
}

int main(int argc, char **argv)
{
	sigset_t usr2, old;
	pthread_t t;
	void *ret = NULL;
	unsigned long before;
	int err;

	wl_init(argc, argv);
	/* Only the main thread takes the trigger. */
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &usr2, &old);
	err = pthread_create(&t, NULL, counter_thread, NULL);
	if (err)
		wl_fatal("pthread_create: %s", strerror(err));
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	wl_write_file("threads", "%d %d\n", (int)getpid(), 2);
	wl_ready();
	wl_wait_trigger();

	wl_check(wl_status_field("Threads") == 2, "%ld threads, want 2", wl_status_field("Threads"));
	wl_check(wl_status_field("TracerPid") == 0, "still traced");
	before = thread_count;
	usleep(100 * 1000);
	wl_check(thread_count > before, "the second thread stopped counting");
	stop = 1;
	err = pthread_join(t, &ret);
	wl_check(err == 0 && ret == (void *)0x5eed, "pthread_join: %s", strerror(err));
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
