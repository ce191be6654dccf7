/*
 * w_memrefuse STATE_DIR KIND
 *
 * Holds one mapping cr must refuse to dump, by name, and checks when
 * triggered that it still holds its data (a refused dump leaves the
 * process as it was).  KIND:
 *
 *   sysv      System V shared memory (shmget + shmat; removed at once, so
 *             nothing outlives the process)
 *   memfd     a shared mapping of a memfd whose fd is closed
 *   privshm   a private mapping of shared anonymous memory (through
 *             /proc/self/map_files)
 *   shmfd     shared anonymous memory, mapped, and an fd on it (opened
 *             through /proc/self/map_files): it would come back as a file
 *             of its own
 *
 * Writes the mapping's address to "addr" before ready.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#define SIZE (4 * 4096UL)

static void must(bool ok, const char *what)
{
	if (!ok)
		wl_fatal("%s: %s", what, strerror(errno));
}

static char *sysv(void)
{
	int id = shmget(IPC_PRIVATE, SIZE, IPC_CREAT | 0600);
	char *p;

	must(id >= 0, "shmget");
	p = shmat(id, NULL, 0);
	must(p != (void *)-1, "shmat");
	must(shmctl(id, IPC_RMID, NULL) == 0, "IPC_RMID");
	return p;
}

static char *memfd(void)
{
	int fd = memfd_create("w_memrefuse", 0);
	char *p;

	must(fd >= 0 && ftruncate(fd, (off_t)SIZE) == 0, "memfd");
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	must(p != MAP_FAILED, "mmap memfd");
	close(fd);
	return p;
}

static char *private_shmem(void)
{
	char *shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[96];
	char *p;
	int fd;

	must(shared != MAP_FAILED, "mmap");
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)shared,
		 (unsigned long)shared + SIZE);
	fd = open(path, O_RDONLY);
	must(fd >= 0, path);
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	must(p != MAP_FAILED, "mmap private");
	close(fd);
	must(munmap(shared, SIZE) == 0, "munmap");
	return p;
}

static char *shmem_fd(void)
{
	char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[96];

	must(p != MAP_FAILED, "mmap");
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)p, (unsigned long)p + SIZE);
	must(open(path, O_RDWR) >= 0, path);
	return p;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 2 ? argv[2] : "";
	uint64_t s, v;
	char *p;

	wl_init(argc, argv);
	if (strcmp(kind, "sysv") == 0)
		p = sysv();
	else if (strcmp(kind, "memfd") == 0)
		p = memfd();
	else if (strcmp(kind, "privshm") == 0)
		p = private_shmem();
	else if (strcmp(kind, "shmfd") == 0)
		p = shmem_fd();
	else
		wl_fatal("unknown kind '%s'", kind);
	s = wl_seed(1);
	for (size_t i = 0; i < SIZE; i += 8) {
		v = wl_xorshift(&s);
		memcpy(p + i, &v, 8);
	}
	wl_write_file("addr", "%lx\n", (unsigned long)p);
	wl_ready();
	wl_wait_trigger();
	s = wl_seed(1);
	for (size_t i = 0; i < SIZE; i += 8) {
		v = wl_xorshift(&s);
		if (!wl_check(memcmp(p + i, &v, 8) == 0, "%s: data differs at %zu", kind, i))
			break;
	}
	wl_finish();
}
