/* Small helpers shared by every file: cleanup attributes and checked I/O. */
#ifndef CR_UTIL_H
#define CR_UTIL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "os/error.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE_SIZE_CR 4096UL
/* Above the highest user address of x86-64 with 5-level paging: an image's
 * address at or past it is no process's. */
#define USER_ADDR_MAX 0x00fffffffffff000ULL
#define NSEC_PER_SEC 1000000000ULL

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void cleanup_fclosep(FILE **f)
{
	if (*f != NULL)
		fclose(*f);
}

static inline void cleanup_closedirp(DIR **d)
{
	if (*d != NULL)
		closedir(*d);
}

#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
#define cleanup_fclose __attribute__((cleanup(cleanup_fclosep)))
#define cleanup_closedir __attribute__((cleanup(cleanup_closedirp)))

/* Takes ownership away from a cleanup variable. */
#define steal_pointer(pp) ({ __typeof__(*(pp)) _p = *(pp); *(pp) = NULL; _p; })
#define steal_fd(fdp) ({ int _fd = *(fdp); *(fdp) = -1; _fd; })

/* A timespec as nanoseconds, and back (images keep times as nanoseconds). */
static inline uint64_t timespec_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * NSEC_PER_SEC + (uint64_t)ts->tv_nsec;
}

/* CLOCK_MONOTONIC now, in nanoseconds (for step timings). */
static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return timespec_ns(&ts);
}

static inline struct timespec ns_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / NSEC_PER_SEC), .tv_nsec = (long)(ns % NSEC_PER_SEC) };
}

/* Writes all of buf, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len, cr_error_t *err);
/* Writes text to the /proc file path in one write (a /proc knob takes
 * one); the error names path and text. */
int write_proc_text(const char *path, const char *text, cr_error_t *err);
/* Reads exactly len bytes; a short file is an error naming what. */
int read_exact(int fd, void *buf, size_t len, const char *what, cr_error_t *err);
/* Copies len bytes from / to addr in another process (process_vm_readv /
 * process_vm_writev); a short copy is an error naming pid and address. */
int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len, cr_error_t *err);
int remote_write(pid_t pid, uint64_t addr, const void *buf, size_t len, cr_error_t *err);
/* Reads a whole (small, /proc-like) file into a NUL-terminated buffer. */
int read_whole_file_at(int dirfd, const char *path, char **out, size_t *len, cr_error_t *err);

/* A page-aligned range of len bytes, free of every [start,end) pair in
 * busy (n pairs, any order) with a page to spare on each side, at or
 * above 4 GiB: for mappings cr places in a process being restored.  0 if
 * there is none. */
uint64_t find_free_range(const uint64_t (*busy)[2], size_t n, uint64_t len);

/* Time-critical work (a migration's frozen window, the page server that
 * receives its last round): the calling thread, and the threads it makes
 * from now on, run at nice CR_URGENT_NICE when they may (root), so that
 * a busy host's other work does not make them wait for a CPU.  Returns
 * the nice value to give back to cr_priority_restore, or INT_MIN when
 * nothing changed. */
#define CR_URGENT_NICE (-10)
int cr_priority_raise(void);
void cr_priority_restore(int old);

#endif
