#include "os/progress.h"
#include "os/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_NS 100000000LL   /* at most ten lines a second */

static struct {
	const char *what;
	uint64_t total, done;
	int approx, shown, active;
	int64_t start_ns, last_ns, after_ns;
} p;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)timespec_ns(&ts);
}

void progress_start(const char *what, uint64_t total, int approx)
{
	const char *after = getenv("CR_PROGRESS_AFTER_MS");

	p.what = what;
	p.total = total;
	p.approx = approx;
	p.done = 0;
	p.shown = 0;
	p.active = isatty(STDERR_FILENO);
	p.start_ns = p.last_ns = now_ns();
	p.after_ns = (after ? atoll(after) : 1000) * 1000000LL;
}

static void draw(int64_t now)
{
	double secs = (double)(now - p.start_ns) / 1e9;
	double rate = secs > 0 ? (double)p.done / (1 << 20) / secs : 0;

	fprintf(stderr, "\rcr %s: %llu of %s%llu MiB, %.0f MiB/s ", p.what, (unsigned long long)(p.done >> 20),
		p.approx ? "~" : "", (unsigned long long)(p.total >> 20), rate);
	fflush(stderr);
	p.shown = 1;
	p.last_ns = now;
}

void progress_add(uint64_t bytes)
{
	int64_t now;

	p.done += bytes;
	if (!p.active)
		return;
	now = now_ns();
	if (now - p.start_ns >= p.after_ns && (!p.shown || now - p.last_ns >= REDRAW_NS))
		draw(now);
}

void progress_done(void)
{
	if (p.active && p.shown) {
		draw(now_ns());
		fputc('\n', stderr);
	}
	p.active = 0;
}
