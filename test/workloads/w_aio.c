/*
 * w_aio STATE_DIR MODE
 *
 * Linux native AIO (io_setup) contexts, their rings restored with what
 * was in them:
 *
 *   one    io_setup(32); a read submitted and reaped before the dump, then
 *          a second read completed but left unreaped in the ring.  After
 *          restore: io_getevents returns the unreaped completion (its data,
 *          result and the bytes read), the context id is the same, a new
 *          io_submit/io_getevents works with it, io_destroy works.
 *   wrap   io_setup(8); enough reads reaped that the ring's tail went
 *          round, then 5 completions left unreaped across its end.
 *   two    two contexts (one made and destroyed before them, so their
 *          kernel ids are not 0 and 1 in order), each with its own
 *          unreaped completion.
 *   empty  io_setup(4096), nothing ever submitted.
 *   forked one's context, then a child forked (pid in "child"): it maps
 *          the ring but has no context (the dump must refuse it); the
 *          child is ended at the check.
 *
 * Sabotage: reap (the unreaped completions are reaped before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

struct ring_hdr {
	unsigned id, nr, head, tail;
};

struct ctx {
	aio_context_t id;
	unsigned left;        /* completions left unreaped */
	uint64_t first_data;  /* the data of the first of them */
};

static struct ctx c1, c2;
static int data_fd;
static char bufs[64][16];
static uint64_t next_data = 0x5eed0000;

static void setup_ctx(struct ctx *c, unsigned nr)
{
	if (syscall(SYS_io_setup, nr, &c->id) != 0)
		wl_fatal("io_setup(%u): %s", nr, strerror(errno));
}

/* A read of 12 bytes at offset (data & 15), into a buffer of its own. */
static void submit(struct ctx *c, uint64_t data)
{
	struct iocb cb = { 0 }, *cbs[1] = { &cb };

	cb.aio_lio_opcode = IOCB_CMD_PREAD;
	cb.aio_fildes = (uint32_t)data_fd;
	cb.aio_buf = (uintptr_t)bufs[data % 64];
	cb.aio_nbytes = 12;
	cb.aio_offset = (int64_t)(data & 15);
	cb.aio_data = data;
	if (syscall(SYS_io_submit, c->id, 1, cbs) != 1)
		wl_fatal("io_submit: %s", strerror(errno));
}

static bool reap_one(struct ctx *c, struct io_event *ev)
{
	struct timespec ts = { 5, 0 };

	return syscall(SYS_io_getevents, c->id, 1, 1, ev, &ts) == 1;
}

/* The event of data: its result is 12 and its buffer what is at its offset. */
static bool event_right(const struct io_event *ev, uint64_t data)
{
	static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";

	return ev->data == data && ev->res == 12 && memcmp(bufs[data % 64], text + (data & 15), 12) == 0;
}

/* n reads, each reaped at once, then left reads that stay in the ring. */
static void fill(struct ctx *c, unsigned n, unsigned left)
{
	struct io_event ev;

	for (unsigned i = 0; i < n; i++) {
		uint64_t d = next_data++;

		submit(c, d);
		if (!reap_one(c, &ev) || !event_right(&ev, d))
			wl_fatal("read %u before the dump did not complete right", i);
	}
	c->first_data = next_data;
	c->left = left;
	for (unsigned i = 0; i < left; i++)
		submit(c, next_data++);
}

static void open_data(void)
{
	char path[512];

	wl_path(path, sizeof(path), "data");
	data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (data_fd < 0 || write(data_fd, "0123456789abcdefghijklmnopqrstuvwxyz", 36) != 36)
		wl_fatal("data file: %s", strerror(errno));
}

static void check_ctx(const char *name, struct ctx *c)
{
	struct io_event ev;
	struct timespec zero = { 0, 0 };
	char what[32] = "";
	const struct ring_hdr *h = (const void *)(uintptr_t)c->id;
	uint64_t d;

	if (wl_read_file("sabotage", what, sizeof(what)) > 0 && strncmp(what, "reap", 4) == 0)
		for (unsigned i = 0; i < c->left; i++)
			reap_one(c, &ev);
	wl_check(h->nr > 0, "(%s) the ring at the context's address has %u slots", name, h->nr);
	for (unsigned i = 0; i < c->left; i++) {
		bool got = syscall(SYS_io_getevents, c->id, 1, 1, &ev, &zero) == 1;

		wl_check(got && event_right(&ev, c->first_data + i),
			 "(%s) unreaped completion %u of %u: %s (data %#llx res %lld, want %#llx 12)", name, i + 1,
			 c->left, got ? "wrong" : "not returned", (unsigned long long)ev.data, (long long)ev.res,
			 (unsigned long long)(c->first_data + i));
	}
	wl_check(syscall(SYS_io_getevents, c->id, 1, 1, &ev, &zero) == 0, "(%s) a completion more than the "
		 "dumped ones", name);
	for (unsigned i = 0; i < 3 * h->nr; i++) {   /* round the ring, again and again */
		d = next_data++;
		submit(c, d);
		if (!wl_check(reap_one(c, &ev) && event_right(&ev, d), "(%s) new read %u after restore did not "
			      "complete right", name, i))
			break;
	}
	wl_check(syscall(SYS_io_destroy, c->id) == 0, "(%s) io_destroy: %s", name, strerror(errno));
}

static void setup_one(void)
{
	open_data();
	setup_ctx(&c1, 32);
	fill(&c1, 1, 1);
}

static void setup_wrap(void)
{
	struct ring_hdr *h;

	open_data();
	setup_ctx(&c1, 8);
	h = (void *)(uintptr_t)c1.id;
	fill(&c1, h->nr - 2, 5);
	if (h->tail >= h->head)
		wl_fatal("the ring did not wrap: head %u tail %u of %u", h->head, h->tail, h->nr);
}

static void setup_two(void)
{
	struct ctx gone = { 0 };   /* io_setup needs its id 0 */

	open_data();
	setup_ctx(&gone, 16);
	setup_ctx(&c1, 16);
	setup_ctx(&c2, 300);
	if (syscall(SYS_io_destroy, gone.id) != 0)
		wl_fatal("io_destroy: %s", strerror(errno));
	fill(&c1, 3, 1);
	fill(&c2, 7, 2);
}

static void setup_empty(void)
{
	open_data();
	setup_ctx(&c1, 4096);
}

static void check_one(void)
{
	check_ctx("ctx", &c1);
}

static void check_two(void)
{
	check_ctx("ctx1", &c1);
	check_ctx("ctx2", &c2);
}

static pid_t child;

static void setup_forked(void)
{
	setup_one();
	child = fork();
	if (child < 0)
		wl_fatal("fork: %s", strerror(errno));
	if (child == 0) {
		for (;;)
			pause();
	}
	wl_write_file("child", "%d\n", (int)child);
}

static void check_forked(void)
{
	int st;

	kill(child, SIGKILL);
	wl_check(waitpid(child, &st, 0) == child, "the child is gone: %s", strerror(errno));
	check_one();
}

static const struct wl_mode modes[] = {
	{ "one", setup_one, check_one },
	{ "wrap", setup_wrap, check_one },
	{ "two", setup_two, check_two },
	{ "empty", setup_empty, check_one },
	{ "forked", setup_forked, check_forked },
};

int main(int argc, char **argv)
{
	wl_run_mode(argc, argv, modes, sizeof(modes) / sizeof(modes[0]), "one|wrap|two|empty|forked");
}
