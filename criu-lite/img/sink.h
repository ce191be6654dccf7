/* A sink: byte pieces handed, in order, to a consumer function that runs on
 * a thread of its own (or at once, when threads are off or unavailable).
 *
 * A piece larger than SINK_COPY_MAX is read where it lies: its memory must
 * stay unchanged until sink_wait has seen a mark taken after it was added
 * (or sink_settle returned).  Smaller pieces are copied.  Once the consumer
 * fails, later pieces are dropped and the failure is kept. */
#ifndef CR_SINK_H
#define CR_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SINK_COPY_MAX 64u

/* Consumes one piece, with the tag it was added with: 0, or an errno value. */
typedef int (*sink_fn)(void *arg, const void *p, size_t len, uint64_t tag);

struct sink;

/* A sink on a thread of its own when threaded asks for one and it starts. */
struct sink *sink_open(sink_fn fn, void *arg, bool threaded);
void sink_add(struct sink *s, const void *p, size_t len, uint64_t tag);
/* Pieces added so far; waiting for a mark returns once that many are consumed. */
uint64_t sink_mark(const struct sink *s);
void sink_wait(struct sink *s, uint64_t mark);
void sink_settle(struct sink *s);
/* The consumer's first failure among the pieces consumed so far (0 if none). */
int sink_failure(struct sink *s);
bool sink_threaded(const struct sink *s);
/* Settles, stops the thread and frees; NULL is fine. */
void sink_close(struct sink *s);

#endif
