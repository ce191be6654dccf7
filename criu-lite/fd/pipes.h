/* A pipe that only a unix socket's queue holds, in flight (SCM_RIGHTS):
 * unix_sk.c records it with the socket and makes it again at restore,
 * with pipes.c's reading and filling of the data. */
#ifndef CR_PIPES_H
#define CR_PIPES_H

#include <stdbool.h>

#include "os/error.h"
#include "state/task.h"

/* The inode, size and data of the pipe behind cr's fd (an end of it),
 * read without consuming them: through fd when it reads, else through a
 * reader opened for the purpose. */
int pipe_record_flying(struct dump_ctx *ctx, int fd, PipeEntry *pe, cr_error_t *err);

/* That pipe made again, holding its data: fds[0] reads, fds[1] writes
 * (close-on-exec); packets (O_DIRECT) when asked. */
int pipe_make_flying(const PipeEntry *pe, bool packets, int fds[2], cr_error_t *err);

/* Whether pe's data fits its size (a check of the image). */
bool pipe_data_fits(const PipeEntry *pe);

#endif
