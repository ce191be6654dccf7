/*
 * lockprobe [hold] posix|ofd|flock FILE r|w [START LEN]
 *
 * Test helper (not a workload): tries to take one lock on FILE, opened
 * anew (a description of its own), without waiting.  START and LEN are a
 * byte range (LEN 0: to the end of the file); flock ignores them.
 *
 *   exit 0   the lock was free: taken, and released by exiting
 *   exit 1   another process holds a conflicting lock; stdout says
 *            "held by pid N" (POSIX: the holder's pid; OFD locks say -1;
 *            flock says 0, it cannot tell)
 *   exit 2   usage or system error
 *
 * With "hold", a free lock is kept: prints "held" and waits to be killed.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int usage(const char *me)
{
	fprintf(stderr, "usage: %s [hold] posix|ofd|flock FILE r|w [START LEN]\n", me);
	return 2;
}

/* The holder of what conflicts with fl, for the report. */
static int holder(int fd, int getcmd, struct flock fl)
{
	if (getcmd == 0 || fcntl(fd, getcmd, &fl) < 0 || fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid;
}

int main(int argc, char **argv)
{
	const char *me = argv[0];
	bool hold = argc > 1 && strcmp(argv[1], "hold") == 0;
	struct flock fl = { .l_whence = SEEK_SET };
	int fd, r, setcmd = 0, getcmd = 0;
	const char *kind, *path;
	bool write;

	if (hold) {
		argv++;
		argc--;
	}
	if (argc != 4 && argc != 6)
		return usage(me);
	kind = argv[1];
	path = argv[2];
	write = strcmp(argv[3], "w") == 0;
	if (!write && strcmp(argv[3], "r") != 0)
		return usage(me);
	fl.l_type = write ? F_WRLCK : F_RDLCK;
	if (argc == 6) {
		fl.l_start = strtoll(argv[4], NULL, 10);
		fl.l_len = strtoll(argv[5], NULL, 10);
	}
	if (strcmp(kind, "posix") == 0) {
		setcmd = F_SETLK;
		getcmd = F_GETLK;
	} else if (strcmp(kind, "ofd") == 0) {
		setcmd = F_OFD_SETLK;
		getcmd = F_OFD_GETLK;
	} else if (strcmp(kind, "flock") != 0) {
		return usage(me);
	}
	fd = open(path, write ? O_RDWR : O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "%s: open %s: %s\n", me, path, strerror(errno));
		return 2;
	}
	r = setcmd ? fcntl(fd, setcmd, &fl) : flock(fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	if (r < 0 && (errno == EAGAIN || errno == EACCES || errno == EWOULDBLOCK)) {
		printf("held by pid %d\n", holder(fd, getcmd, fl));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "%s: lock %s: %s\n", me, path, strerror(errno));
		return 2;
	}
	if (!hold)
		return 0;
	printf("held\n");
	fflush(stdout);
	for (;;)
		pause();
}
