/* Room for cr's own fds in a restored process.
 *
 * Until its transplant, a restored process holds, besides its dumped
 * fds, fds of cr's: a block of fixed size (the sync socket, the terminal,
 * the files its mappings need, the descriptions its children inherit)
 * and, above every dumped fd, the fds kinds keep aside while they open
 * (a pipe's other end, a namespace).  All of them must sit below the hard
 * RLIMIT_NOFILE the restore runs with.  The block goes above the highest
 * dumped fd when there is room, else into the lowest gap between dumped
 * fds that holds it.  Dump and restore ask the same question, so a dump
 * whose restore would find no room is refused while the process runs. */
#ifndef CR_FDROOM_H
#define CR_FDROOM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

/* Namespaces of the restorer a restore may keep an fd of (ns.c). */
#define CR_ROOM_HOST_NS 8

struct fd_room {
	int base;      /* cr's block: [base, end) */
	int end;
	int aside;     /* fds kept aside go here and up, above every dumped fd */
};

/* used: the dumped fd numbers of every process of the tree, sorted, each
 * once; block: the size of cr's block; aside: how many fds may be kept
 * aside at most; limit: the hard RLIMIT_NOFILE.  0, or -1 if there is no
 * room. */
int fd_room_find(const uint32_t *used, size_t n, int block, int aside, rlim_t limit, struct fd_room *out);

/* Sorts v and drops repeats; returns the new length. */
size_t fd_room_sort_unique(uint32_t *v, size_t n);

/* The hard RLIMIT_NOFILE cr runs with. */
rlim_t fd_room_limit(void);

#endif
