/* A page image's file allocated ahead of its writer (prealloc.h). */
#include "img/prealloc.h"
#include "img/dir.h"
#include "os/job.h"
#include "os/util.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define STEP (2u << 20)   /* one fallocate: the writer waits at most that long for the file's lock */

static struct {
	int fd;               /* the unnamed file until taken; -1: none */
	pid_t owner;          /* a forked child has this state, not the thread */
	bool threaded;
	pthread_t thread;
	dev_t dir_dev;
	ino_t dir_ino;
	char name[64];
	uint64_t want;
	_Atomic uint64_t done;
	atomic_bool stop;
} pa = { .fd = -1 };

static void *prealloc_main(void *arg)
{
	int fd = (int)(intptr_t)arg;   /* pa.fd goes to the image that takes it */
	uint64_t done = 0;

	while (!atomic_load(&pa.stop) && done < pa.want) {
		uint64_t n = pa.want - done < STEP ? pa.want - done : STEP;

		/* A failure (ENOSPC) leaves the rest to the writer, which says so. */
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)done, (off_t)n) < 0)
			break;
		done += n;
		atomic_store(&pa.done, done);
	}
	return NULL;
}

static bool on_tmpfs(int dirfd)
{
	struct statfs sfs;

	return fstatfs(dirfd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC;
}

void img_prealloc_start(int dirfd, const char *name, uint64_t bytes)
{
	struct stat st;

	if (pa.fd >= 0 || bytes < IMG_PREALLOC_MIN || strlen(name) >= sizeof(pa.name) || !on_tmpfs(dirfd) ||
	    fstat(dirfd, &st) < 0)
		return;
	pa.fd = img_dir_create_unnamed(dirfd);
	if (pa.fd < 0)
		return;
	strcpy(pa.name, name);
	pa.dir_dev = st.st_dev;
	pa.dir_ino = st.st_ino;
	pa.want = bytes;
	pa.owner = getpid();
	atomic_store(&pa.done, 0);
	atomic_store(&pa.stop, false);
	pa.threaded = cr_thread_create(&pa.thread, prealloc_main, (void *)(intptr_t)pa.fd) == 0;
}

/* Stops the thread; how far it got. */
static uint64_t stop_thread(void)
{
	if (pa.threaded) {
		atomic_store(&pa.stop, true);
		pthread_join(pa.thread, NULL);
	}
	pa.threaded = false;
	return atomic_load(&pa.done);
}

int img_prealloc_take(int dirfd, const char *name, int *fd, uint64_t *allocated, cr_error_t *err)
{
	struct stat st;

	*fd = -1;
	if (pa.fd < 0 || pa.owner != getpid() || strcmp(name, pa.name) != 0 || fstat(dirfd, &st) < 0 ||
	    st.st_dev != pa.dir_dev || st.st_ino != pa.dir_ino)
		return 0;
	*allocated = stop_thread();
	if (img_dir_name(dirfd, name, pa.fd, err) < 0) {
		close(steal_fd(&pa.fd));
		return -1;
	}
	*fd = steal_fd(&pa.fd);
	return 0;
}

void img_prealloc_trim(int fd, uint64_t allocated)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && (uint64_t)st.st_size < allocated)
		(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
				(off_t)(allocated - (uint64_t)st.st_size));
}

void img_prealloc_stop(void)
{
	if (pa.fd < 0 || pa.owner != getpid())
		return;
	stop_thread();
	close(steal_fd(&pa.fd));
}
