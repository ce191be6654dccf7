/*
 * w_busy STATE_DIR
 *
 * Never sleeps: the main thread and a second thread each write an array of
 * their own in a tight loop, every word derived from the round number, and
 * check the whole array at the end of each round. A task let go with wrong
 * registers, a wrong signal mask or a page that is not its own crashes or
 * counts a mismatch. Both threads block SIGUSR1 and nothing else.
 *
 * On SIGUSR2 it checks: no round ever found a mismatch, both threads still
 * make progress, and each thread's signal mask is {SIGUSR1}.
 */
#include "wl.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define WORDS 4096

struct lane {
	uint64_t w[WORDS];
	volatile uint64_t rounds;
	volatile uint64_t bad;
	volatile int mask_ok;
};

static struct lane lanes[2];
static volatile int stop;

static bool mask_is_usr1(void)
{
	sigset_t cur, want;

	sigemptyset(&want);
	sigaddset(&want, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (int s = 1; s < NSIG; s++)
		if (sigismember(&cur, s) != sigismember(&want, s))
			return false;
	return true;
}

static void run_lane(struct lane *l, uint64_t salt)
{
	for (uint64_t r = 1; !stop && !(l == &lanes[0] && wl_triggered); r++) {
		uint64_t k = (r ^ salt) * 0x9e3779b97f4a7c15ULL;

		for (size_t i = 0; i < WORDS; i++)
			l->w[i] = k + i;
		for (size_t i = 0; i < WORDS; i++)
			if (l->w[i] != k + i)
				l->bad++;
		l->rounds = r;
	}
	l->mask_ok = mask_is_usr1();
}

static void *second(void *arg)
{
	(void)arg;
	run_lane(&lanes[1], wl_seed(2));
	return NULL;
}

static uint64_t rounds_after(const struct lane *l, int ms)
{
	uint64_t before = l->rounds;
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
	return l->rounds - before;
}

int main(int argc, char **argv)
{
	sigset_t usr1;
	pthread_t th;

	wl_init(argc, argv);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	if (pthread_sigmask(SIG_BLOCK, &usr1, NULL) != 0)
		wl_fatal("block SIGUSR1");
	if (pthread_create(&th, NULL, second, NULL) != 0)
		wl_fatal("pthread_create");
	wl_ready();
	run_lane(&lanes[0], wl_seed(1));
	wl_check(rounds_after(&lanes[1], 200) > 0, "the second thread stopped making progress");
	stop = 1;
	pthread_join(th, NULL);
	for (int i = 0; i < 2; i++) {
		wl_check(lanes[i].bad == 0, "thread %d found %llu words changed under it", i,
			 (unsigned long long)lanes[i].bad);
		wl_check(lanes[i].rounds > 0, "thread %d never finished a round", i);
		wl_check(lanes[i].mask_ok, "thread %d's signal mask is not {SIGUSR1}", i);
	}
	wl_finish();
}
