/*
 * w_eventfd STATE_DIR
 *
 * Holds eventfds and checks them after restore:
 *
 *   plain   counter 7, blocking, close-on-exec: read() returns 7, then the
 *           counter is empty.
 *   sem     counter 5, EFD_SEMAPHORE | EFD_NONBLOCK: read() returns 1 five
 *           times, then EAGAIN.
 *   big     counter 0x123456789 (more than eventfd()'s 32-bit initial
 *           value), non-blocking: read() returns it whole.
 *   empty   counter 0, non-blocking: read() fails with EAGAIN.
 *   dup     a second fd of plain (the same description): what is written
 *           through one is read through the other.
 * Each fd's O_NONBLOCK and close-on-exec flags are checked too.
 *
 * Sabotage: count (reads plain before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct efd {
	const char *name;
	int fd;
	bool nonblock, cloexec;
};

static struct efd plain, sem, big, empty, dup_of_plain;

static void make(struct efd *e, const char *name, uint64_t count, int flags)
{
	e->name = name;
	e->nonblock = flags & EFD_NONBLOCK;
	e->cloexec = flags & EFD_CLOEXEC;
	e->fd = eventfd(0, flags);
	if (e->fd < 0)
		wl_fatal("eventfd(%s): %s", name, strerror(errno));
	if (count && write(e->fd, &count, sizeof(count)) != sizeof(count))
		wl_fatal("write(%s): %s", name, strerror(errno));
}

static void check_flags(const struct efd *e)
{
	int fl = fcntl(e->fd, F_GETFL), fd_fl = fcntl(e->fd, F_GETFD);

	wl_check(fl >= 0 && !!(fl & O_NONBLOCK) == e->nonblock, "(%s) O_NONBLOCK is %s", e->name,
		 fl >= 0 && (fl & O_NONBLOCK) ? "set" : "clear");
	wl_check(fd_fl >= 0 && !!(fd_fl & FD_CLOEXEC) == e->cloexec, "(%s) close-on-exec is %s", e->name,
		 fd_fl >= 0 && (fd_fl & FD_CLOEXEC) ? "set" : "clear");
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* The next read, or -1 when there is nothing (without blocking). */
static int64_t take(const struct efd *e)
{
	uint64_t v;

	if (!readable(e->fd) || read(e->fd, &v, sizeof(v)) != sizeof(v))
		return -1;
	return (int64_t)v;
}

static void check_sem(void)
{
	int64_t v;
	int ones = 0;

	while ((v = take(&sem)) == 1 && ones < 10)
		ones++;
	wl_check(ones == 5 && v == -1, "(sem) read 1 %d times then %" PRId64 ", want 5 times then nothing", ones, v);
	wl_check(read(sem.fd, &(uint64_t){ 0 }, 8) < 0 && errno == EAGAIN, "(sem) empty read did not fail with "
		 "EAGAIN");
}

static void check_dup(void)
{
	uint64_t one = 1;

	wl_check(write(dup_of_plain.fd, &one, sizeof(one)) == sizeof(one), "(dup) write: %s", strerror(errno));
	wl_check(take(&plain) == 1, "(dup) what was written through fd %d is not read through fd %d",
		 dup_of_plain.fd, plain.fd);
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "count") == 0)
		take(&plain);
	else
		wl_check(false, "unknown sabotage '%s'", what);
}

int main(int argc, char **argv)
{
	int64_t v;

	wl_init(argc, argv);
	make(&plain, "plain", 7, EFD_CLOEXEC);
	make(&sem, "sem", 5, EFD_SEMAPHORE | EFD_NONBLOCK);
	make(&big, "big", 0x123456789ULL, EFD_NONBLOCK);
	make(&empty, "empty", 0, EFD_NONBLOCK | EFD_CLOEXEC);
	dup_of_plain = plain;
	dup_of_plain.name = "dup";
	dup_of_plain.cloexec = false;
	dup_of_plain.fd = dup(plain.fd);
	if (dup_of_plain.fd < 0)
		wl_fatal("dup: %s", strerror(errno));
	wl_ready();
	wl_wait_trigger();
	sabotage();

	check_flags(&plain);
	check_flags(&sem);
	check_flags(&big);
	check_flags(&empty);
	check_flags(&dup_of_plain);
	v = take(&plain);
	wl_check(v == 7, "(plain) read %" PRId64 ", want 7", v);
	wl_check(!readable(plain.fd), "(plain) still readable after the read");
	check_sem();
	v = take(&big);
	wl_check(v == 0x123456789LL, "(big) read %#" PRIx64 ", want 0x123456789", (uint64_t)v);
	wl_check(read(empty.fd, &(uint64_t){ 0 }, 8) < 0 && errno == EAGAIN, "(empty) read did not fail with EAGAIN");
	check_dup();
	wl_check(getpid() == wl_pid(), "pid changed");
	wl_finish();
}
