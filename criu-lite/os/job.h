/* A job run by a thread of its own while the caller goes on (work that
 * takes long and that the caller needs only later, such as a scan of
 * every process while the dump collects): started, then waited for once,
 * its result and error handed over. */
#ifndef CR_JOB_H
#define CR_JOB_H

#include "os/error.h"

#include <pthread.h>
#include <stdbool.h>

struct cr_job {
	bool running;
	pthread_t thread;
	int (*fn)(void *arg, cr_error_t *err);
	void *arg;
	int r;
	cr_error_t err;
};

/* pthread_create, the thread with every signal blocked: the stop signals
 * (SIGINT, SIGTERM, SIGHUP) must reach the main thread, whose blocking
 * calls they interrupt (supervise.h).  Returns pthread_create's result. */
int cr_thread_create(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Starts fn(arg) in a thread; false if none could be made (the caller
 * then does the work itself when it needs it). */
bool cr_job_start(struct cr_job *j, int (*fn)(void *arg, cr_error_t *err), void *arg);
/* Waits for the job, if one runs: its result (0 if none ran), its error in
 * *err (err NULL: dropped). */
int cr_job_wait(struct cr_job *j, cr_error_t *err);

#endif
