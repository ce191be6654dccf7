/* A page image's file allocated ahead of its writer.
 *
 * On tmpfs a writer pays for every new page of the file (the allocation
 * and its charge) under the file's lock, about 40 % of the write; cat
 * pays it too.  A dump knows roughly how large its root's page image will
 * be before it freezes anything, and a core has little to do while the
 * tree is seized and collected: a thread allocates a file without a name
 * (O_TMPFILE) with fallocate then (FALLOC_FL_KEEP_SIZE, in small steps),
 * so that the writer later finds most pages there and only copies.  The
 * image that takes the file (cr_img_create, by directory and name) stops
 * the thread and names the file; what was allocated beyond its end is
 * freed when the image is finished.  A dump that dies first leaves
 * nothing: the file has no name.
 *
 * Only one file at a time, only on tmpfs (where it was measured), and
 * only in the process that started it. */
#ifndef CR_IMG_PREALLOC_H
#define CR_IMG_PREALLOC_H

#include "os/error.h"

#include <stdint.h>

/* Below this many bytes the thread is not worth starting. */
#define IMG_PREALLOC_MIN (32ull << 20)

/* Starts allocating bytes of the file that will be name in dirfd;
 * nothing when dirfd is not on tmpfs, bytes is small or anything fails
 * (an optimization only). */
void img_prealloc_start(int dirfd, const char *name, uint64_t bytes);
/* If the file being allocated is to be name in dirfd: the thread stopped,
 * the file named so (journalled, as img_dir_create), *fd its fd (the
 * caller's), *allocated how far the thread got.  *fd is -1 when it is
 * not; -1 when the name cannot be made. */
int img_prealloc_take(int dirfd, const char *name, int *fd, uint64_t *allocated, cr_error_t *err);
/* Frees what was allocated beyond the end of fd, a file taken above. */
void img_prealloc_trim(int fd, uint64_t allocated);
/* Stops the thread and closes a file nobody took (the dump failed first,
 * or the root had no pages): it goes with its fd. */
void img_prealloc_stop(void);

#endif
