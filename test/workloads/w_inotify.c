/*
 * w_inotify STATE_DIR
 *
 * Holds two inotify instances and checks them after restore:
 *
 *   in1 (fdinfo)  its watches, as fdinfo shows them (watch descriptor,
 *                 inode, device, mask), are the same.  They are:
 *                   1  dir: IN_CREATE | IN_DELETE
 *                   (2 was removed before the dump: a gap)
 *                   3  dir/file: IN_MODIFY | IN_ONESHOT
 *                   4  dir2, renamed to dir2-renamed after the watch was
 *                      added: IN_CREATE | IN_EXCL_UNLINK
 *   in1 (events)  nothing is queued at first (EAGAIN: O_NONBLOCK kept);
 *                 creating dir/new gives wd 1 IN_CREATE "new", writing
 *                 dir/file gives wd 3 IN_MODIFY then IN_IGNORED (one-shot),
 *                 creating dir2-renamed/sub gives wd 4 IN_CREATE "sub".
 *   in2           blocking, close-on-exec; its only watch (dir3, IN_CREATE)
 *                 has wd 0x13 (18 watches were added and removed first):
 *                 the same fdinfo, nothing queued at first, and creating a
 *                 file in dir3 gives wd 0x13.
 *
 * Sabotage: rm (removes watch 1 of in1 before the checks).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG_WD 0x13

static int in1, in2;
static char in1_before[2048], in2_before[2048];
static char dir[PATH_MAX], file[PATH_MAX], other[PATH_MAX], dir2[PATH_MAX], renamed[PATH_MAX], dir3[PATH_MAX];

static int watch(int in, const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(in, path, mask);

	if (wd < 0)
		wl_fatal("inotify_add_watch(%s): %s", path, strerror(errno));
	return wd;
}

static void drain(int in)
{
	char buf[4096];
	struct pollfd p = { .fd = in, .events = POLLIN };

	while (poll(&p, 1, 0) == 1 && read(in, buf, sizeof(buf)) > 0)
		;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "inotify wd:..." lines of fdinfo without the file handle, sorted. */
static void watches(int in, char *out, size_t size)
{
	char path[64], buf[4096], *lines[64], *save = NULL;
	size_t n = 0, used = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", in);
	out[0] = '\0';
	if (wl_read_path(path, buf, sizeof(buf)) < 0)
		return;
	for (char *l = strtok_r(buf, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save)) {
		char *fh = strstr(l, " fhandle-bytes:");

		if (strncmp(l, "inotify wd:", 11) != 0)
			continue;
		if (fh)
			*fh = '\0';
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(lines[0]), by_text);
	for (size_t i = 0; i < n; i++)
		used += (size_t)snprintf(out + used, used < size ? size - used : 0, "%s|", lines[i]);
}

static void make_paths(void)
{
	wl_path(dir, sizeof(dir), "watched");
	wl_path(file, sizeof(file), "watched/file");
	wl_path(other, sizeof(other), "watched/other");
	wl_path(dir2, sizeof(dir2), "watched2");
	wl_path(renamed, sizeof(renamed), "watched2-renamed");
	wl_path(dir3, sizeof(dir3), "watched3");
	if (mkdir(dir, 0700) < 0 || mkdir(dir2, 0700) < 0 || mkdir(dir3, 0700) < 0)
		wl_fatal("mkdir: %s", strerror(errno));
	if (wl_write_file("watched/file", "x\n") < 0 || wl_write_file("watched/other", "y\n") < 0)
		wl_fatal("write files: %s", strerror(errno));
}

static void setup(void)
{
	int gone;

	make_paths();
	in1 = inotify_init1(IN_NONBLOCK);
	in2 = inotify_init1(IN_CLOEXEC);
	if (in1 < 0 || in2 < 0)
		wl_fatal("inotify_init1: %s", strerror(errno));
	if (watch(in1, dir, IN_CREATE | IN_DELETE) != 1)
		wl_fatal("first watch is not 1");
	gone = watch(in1, other, IN_ATTRIB);
	inotify_rm_watch(in1, gone);
	if (watch(in1, file, IN_MODIFY | IN_ONESHOT) != 3 || watch(in1, dir2, IN_CREATE | IN_EXCL_UNLINK) != 4)
		wl_fatal("watches are not 3 and 4");
	if (rename(dir2, renamed) < 0)
		wl_fatal("rename: %s", strerror(errno));
	for (int i = 1; i < BIG_WD; i++)
		inotify_rm_watch(in2, watch(in2, other, IN_ATTRIB));
	if (watch(in2, dir3, IN_CREATE) != BIG_WD)
		wl_fatal("in2's watch is not %d", BIG_WD);
	drain(in1);
	drain(in2);
	watches(in1, in1_before, sizeof(in1_before));
	watches(in2, in2_before, sizeof(in2_before));
}

/* The next event: wd, mask and name; false when there is none. */
static bool next_event(int in, int *wd, uint32_t *mask, char *name, size_t size)
{
	static char buf[4096];
	static size_t len, off;
	static int buf_in = -1;
	const struct inotify_event *ev;
	struct pollfd p = { .fd = in, .events = POLLIN };

	if (buf_in != in)
		len = off = 0, buf_in = in;
	if (off >= len) {
		ssize_t n;

		if (poll(&p, 1, 1000) != 1 || (n = read(in, buf, sizeof(buf))) <= 0)
			return false;
		len = (size_t)n;
		off = 0;
	}
	ev = (const struct inotify_event *)(buf + off);
	*wd = ev->wd;
	*mask = ev->mask;
	snprintf(name, size, "%s", ev->len ? ev->name : "");
	off += sizeof(*ev) + ev->len;
	return true;
}

static void expect_event(const char *what, int in, int want_wd, uint32_t want_mask, const char *want_name)
{
	int wd = -1;
	uint32_t mask = 0;
	char name[NAME_MAX + 1] = "";

	if (!wl_check(next_event(in, &wd, &mask, name, sizeof(name)), "(%s) no event", what))
		return;
	wl_check(wd == want_wd && mask == want_mask && strcmp(name, want_name) == 0,
		 "(%s) event wd %d mask %#x '%s', want wd %d mask %#x '%s'", what, wd, mask, name, want_wd, want_mask,
		 want_name);
}

static void create(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	wl_check(fd >= 0, "create %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void check(void)
{
	char now[2048], path[PATH_MAX + 16];
	struct pollfd p = { .fd = in2, .events = POLLIN };
	int fd;

	watches(in1, now, sizeof(now));
	wl_check(strcmp(now, in1_before) == 0, "(in1) watches [%s], were [%s]", now, in1_before);
	watches(in2, now, sizeof(now));
	wl_check(strcmp(now, in2_before) == 0, "(in2) watches [%s], were [%s]", now, in2_before);
	wl_check(read(in1, now, sizeof(now)) < 0 && errno == EAGAIN, "(in1) events queued after restore, or "
		 "O_NONBLOCK lost");
	wl_check(poll(&p, 1, 0) == 0, "(in2) events queued after restore");
	wl_check(!(fcntl(in2, F_GETFL) & O_NONBLOCK) && fcntl(in2, F_GETFD) == FD_CLOEXEC &&
		 fcntl(in1, F_GETFD) == 0, "(in2) flags");

	snprintf(path, sizeof(path), "%s/new", dir);
	create(path);
	expect_event("in1 dir", in1, 1, IN_CREATE, "new");
	fd = open(file, O_WRONLY | O_APPEND | O_CLOEXEC);
	wl_check(fd >= 0 && write(fd, "z", 1) == 1, "write %s: %s", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	expect_event("in1 file", in1, 3, IN_MODIFY, "");
	expect_event("in1 file one-shot", in1, 3, IN_IGNORED, "");
	snprintf(path, sizeof(path), "%s/sub", renamed);
	create(path);
	expect_event("in1 renamed dir", in1, 4, IN_CREATE, "sub");
	snprintf(path, sizeof(path), "%s/in2-probe", dir3);
	create(path);
	expect_event("in2", in2, BIG_WD, IN_CREATE, "in2-probe");
}

static void sabotage(void)
{
	char what[32];

	if (wl_read_file("sabotage", what, sizeof(what)) <= 0)
		return;
	what[strcspn(what, "\n")] = '\0';
	if (strcmp(what, "rm") == 0)
		inotify_rm_watch(in1, 1);
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
