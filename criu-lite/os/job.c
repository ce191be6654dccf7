/* See job.h. */
#include "os/job.h"

#include <signal.h>

int cr_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static void *run(void *arg)
{
	struct cr_job *j = arg;

	j->r = j->fn(j->arg, &j->err);
	return NULL;
}

bool cr_job_start(struct cr_job *j, int (*fn)(void *arg, cr_error_t *err), void *arg)
{
	cr_job_wait(j, NULL);   /* one before, not waited for: its result is dropped */
	j->fn = fn;
	j->arg = arg;
	j->r = 0;
	j->err = NULL;
	j->running = cr_thread_create(&j->thread, run, j) == 0;
	return j->running;
}

int cr_job_wait(struct cr_job *j, cr_error_t *err)
{
	if (!j->running)
		return 0;
	pthread_join(j->thread, NULL);
	j->running = false;
	if (j->r < 0) {
		if (err != NULL)
			*err = j->err;
		else
			cr_error_release(&j->err);
		j->err = NULL;
		return -1;
	}
	return 0;
}
