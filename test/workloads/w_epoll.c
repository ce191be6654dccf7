/*
 * w_epoll STATE_DIR
 *
 * Holds epolls with varied interest lists (targets are eventfds and a
 * timerfd) and checks them after restore:
 *
 *   ep1 (fdinfo)  its interest list, as fdinfo shows it (fd number, events,
 *                 data of every registration), is the same.
 *   ep1 (waits)   two epoll_wait calls report exactly:
 *                   a  EPOLLIN, data 0xa    (level-triggered, readable)
 *                   b  EPOLLOUT, data 0xb   (asked IN|OUT, only writable)
 *                   c  EPOLLIN, data 0xc    EPOLLET: the first wait only
 *                   d  EPOLLIN, data 0xd    EPOLLONESHOT: the first wait only
 *                 the stale registration (below) is not reported.
 *   stale         x was registered in ep1 as fd N, then moved to another
 *                 number and N reused by an unregistered readable eventfd
 *                 y: the registration keeps number N and still means x (not
 *                 reported until x is written, then reported with 0x5).
 *   ep2           a is registered in ep2 too (data 0x2a), with the expired
 *                 timerfd t (data 0x7f); ep2 is O_NONBLOCK and close-on-exec.
 *   nested        outer (a lower fd number) holds inner (data 0x99), which
 *                 holds a readable eventfd: outer reports inner.
 *   fired         ep3's one-shot registration of a readable eventfd fired
 *                 before the dump: ep3 reports nothing.
 *
 * Sabotage: del (removes a from ep1 before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 16

static int ep1, ep2, ep3, outer, inner;
static int a, b, c, d, x, y, x_moved, t, in_ev, e_fired;
static char ep1_before[2048], ep2_before[2048];

static int efd(uint64_t count)
{
	int fd = eventfd(0, EFD_NONBLOCK);

	if (fd < 0 || (count && write(fd, &count, sizeof(count)) != sizeof(count)))
		wl_fatal("eventfd: %s", strerror(errno));
	return fd;
}

static void add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		wl_fatal("epoll_ctl(%d, ADD %d): %s", ep, fd, strerror(errno));
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "tfd: N events: X data: Y" part of each registration, sorted. */
static void interest_list(int ep, char *out, size_t size)
{
	char path[64], buf[4096], *lines[64], *save = NULL;
	size_t n = 0, used = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	out[0] = '\0';
	if (wl_read_path(path, buf, sizeof(buf)) < 0)
		return;
	for (char *l = strtok_r(buf, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save)) {
		char *pos = strstr(l, " pos:");

		if (strncmp(l, "tfd:", 4) != 0)
			continue;
		if (pos)
			*pos = '\0';
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(lines[0]), by_text);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s|", lines[i]);
}

static void setup(void)
{
	struct itimerspec its = { .it_value = { 0, 1000000 } };

	outer = epoll_create1(0);	/* a lower number than inner */
	ep1 = epoll_create1(0);
	ep2 = epoll_create1(EPOLL_CLOEXEC);
	ep3 = epoll_create1(0);
	inner = epoll_create1(0);
	if (outer < 0 || ep1 < 0 || ep2 < 0 || ep3 < 0 || inner < 0 || fcntl(ep2, F_SETFL, O_NONBLOCK) < 0)
		wl_fatal("epoll_create1: %s", strerror(errno));
	a = efd(1), b = efd(0), c = efd(2), d = efd(1), x = efd(0);
	add(ep1, a, EPOLLIN, 0xa);
	add(ep1, b, EPOLLIN | EPOLLOUT, 0xb);
	add(ep1, c, EPOLLIN | EPOLLET, 0xc);
	add(ep1, d, EPOLLIN | EPOLLONESHOT, 0xd);
	add(ep1, x, EPOLLIN, 0x5);
	/* x moves away from the number it was registered under; y takes it. */
	x_moved = dup(x);
	close(x);
	y = efd(3);
	if (y != x)
		wl_fatal("eventfd did not reuse fd %d (got %d)", x, y);

	t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (t < 0 || timerfd_settime(t, 0, &its, NULL) < 0)
		wl_fatal("timerfd: %s", strerror(errno));
	add(ep2, a, EPOLLIN, 0x2a);
	add(ep2, t, EPOLLIN, 0x7f);

	in_ev = efd(1);
	add(inner, in_ev, EPOLLIN, 0x1);
	add(outer, inner, EPOLLIN, 0x99);

	e_fired = efd(1);
	add(ep3, e_fired, EPOLLIN | EPOLLONESHOT, 0xf1);
	if (epoll_wait(ep3, &(struct epoll_event){ 0 }, 1, 1000) != 1)
		wl_fatal("the one-shot registration did not fire");
	nanosleep(&(struct timespec){ 0, 5000000 }, NULL);   /* t expires */
	interest_list(ep1, ep1_before, sizeof(ep1_before));
	interest_list(ep2, ep2_before, sizeof(ep2_before));
}

/* What one epoll_wait reports, as "data:events," in data order. */
static void wait_once(int ep, char *out, size_t size)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(ep, ev, MAX_EVENTS, 0);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (ev[j].data.u64 < ev[i].data.u64) {
				struct epoll_event tmp = ev[i];

				ev[i] = ev[j];
				ev[j] = tmp;
			}
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%" PRIx64 ":%x,", ev[i].data.u64,
					 ev[i].events);
}

static void expect_wait(const char *what, int ep, const char *want)
{
	char got[512];

	wait_once(ep, got, sizeof(got));
	wl_check(strcmp(got, want) == 0, "(%s) epoll_wait reported [%s], want [%s]", what, got, want);
}

static void check(void)
{
	char now[2048];
	uint64_t one = 1;

	interest_list(ep1, now, sizeof(now));
	wl_check(strcmp(now, ep1_before) == 0, "(ep1) interest list [%s], was [%s]", now, ep1_before);
	interest_list(ep2, now, sizeof(now));
	wl_check(strcmp(now, ep2_before) == 0, "(ep2) interest list [%s], was [%s]", now, ep2_before);
	wl_check((fcntl(ep2, F_GETFL) & O_NONBLOCK) && fcntl(ep2, F_GETFD) == FD_CLOEXEC &&
		 !(fcntl(ep1, F_GETFL) & O_NONBLOCK) && fcntl(ep1, F_GETFD) == 0, "(ep2) flags");

	expect_wait("ep1 first", ep1, "a:1,b:4,c:1,d:1,");
	expect_wait("ep1 second", ep1, "a:1,b:4,");
	wl_check(write(x_moved, &one, sizeof(one)) == sizeof(one), "write x: %s", strerror(errno));
	expect_wait("stale", ep1, "5:1,a:1,b:4,");
	expect_wait("ep2", ep2, "2a:1,7f:1,");
	expect_wait("nested", outer, "99:1,");
	expect_wait("fired", ep3, "");
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "del") == 0)
		epoll_ctl(ep1, EPOLL_CTL_DEL, a, NULL);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	setup();
	wl_ready();
	wl_wait_trigger();
	sabotage();
	check();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
