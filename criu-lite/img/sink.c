/* An ordered sink on a thread: a ring of pieces, consumed in order. */
#include "img/sink.h"
#include "os/job.h"
#include "os/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SINK_RING 64u

struct sink_piece {
	const void *p;
	size_t len;
	uint64_t tag;
	unsigned char copy[SINK_COPY_MAX];
};

struct sink {
	sink_fn fn;
	void *arg;
	bool threaded;
	bool stop;
	int failure;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* pieces added, or stop */
	pthread_cond_t done;    /* pieces consumed */
	uint64_t added, consumed;
	struct sink_piece ring[SINK_RING];
};

static void consume(struct sink *s, const struct sink_piece *pc, int *failure)
{
	if (*failure == 0)
		*failure = s->fn(s->arg, pc->p, pc->len, pc->tag);
}

static void *sink_thread_main(void *arg)
{
	struct sink *s = arg;
	int failure = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->consumed == s->added && !s->stop)
			pthread_cond_wait(&s->wake, &s->lock);
		if (s->consumed == s->added)
			break;
		pthread_mutex_unlock(&s->lock);
		consume(s, &s->ring[s->consumed % SINK_RING], &failure);
		pthread_mutex_lock(&s->lock);
		s->failure = failure;
		s->consumed++;
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static bool start_thread(struct sink *s)
{
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return false;
	if (pthread_cond_init(&s->wake, NULL) != 0 || pthread_cond_init(&s->done, NULL) != 0 ||
	    cr_thread_create(&s->thread, sink_thread_main, s) != 0) {
		pthread_mutex_destroy(&s->lock);
		return false;
	}
	return true;
}

struct sink *sink_open(sink_fn fn, void *arg, bool threaded)
{
	struct sink *s = xcalloc(1, sizeof(*s));

	s->fn = fn;
	s->arg = arg;
	s->threaded = threaded && start_thread(s);
	return s;
}

void sink_add(struct sink *s, const void *p, size_t len, uint64_t tag)
{
	struct sink_piece *pc;

	if (len == 0)
		return;
	if (!s->threaded) {
		consume(s, &(struct sink_piece){ .p = p, .len = len, .tag = tag }, &s->failure);
		s->added++;
		s->consumed++;
		return;
	}
	pthread_mutex_lock(&s->lock);
	while (s->added - s->consumed == SINK_RING)
		pthread_cond_wait(&s->done, &s->lock);
	pc = &s->ring[s->added % SINK_RING];
	pc->len = len;
	pc->tag = tag;
	pc->p = p;
	if (len <= SINK_COPY_MAX) {
		memcpy(pc->copy, p, len);
		pc->p = pc->copy;
	}
	s->added++;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

uint64_t sink_mark(const struct sink *s)
{
	return s->added;
}

void sink_wait(struct sink *s, uint64_t mark)
{
	if (!s->threaded)
		return;
	pthread_mutex_lock(&s->lock);
	while (s->consumed < mark)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void sink_settle(struct sink *s)
{
	sink_wait(s, s->added);
}

int sink_failure(struct sink *s)
{
	int failure;

	if (!s->threaded)
		return s->failure;
	pthread_mutex_lock(&s->lock);
	failure = s->failure;
	pthread_mutex_unlock(&s->lock);
	return failure;
}

bool sink_threaded(const struct sink *s)
{
	return s->threaded;
}

void sink_close(struct sink *s)
{
	if (s == NULL)
		return;
	if (s->threaded) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_cond_signal(&s->wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
		pthread_cond_destroy(&s->wake);
		pthread_cond_destroy(&s->done);
		pthread_mutex_destroy(&s->lock);
	}
	free(s);
}
