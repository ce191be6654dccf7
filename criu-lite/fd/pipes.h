/* What pipes.c lends unix_sk.c for a pipe in flight (SCM_RIGHTS) in a
 * unix socket's queue: recorded with the socket, made again at restore
 * with pipes.c's reading and filling of the data. */
#ifndef CR_PIPES_H
#define CR_PIPES_H

#include <stdbool.h>
#include <stddef.h>

#include "os/error.h"
#include "state/task.h"

/* The inode, size and data of the pipe behind cr's fd (an end of it),
 * read without consuming them: through fd when it reads, else through a
 * reader opened for the purpose. */
int pipe_record_flying(struct dump_ctx *ctx, int fd, PipeEntry *pe, cr_error_t *err);

/* fe (a pipe entry): the description behind cr's fd in flight of a pipe
 * that processes of the dump hold too, recorded as their descriptions
 * are (the data with the pipe's first description). */
int pipe_record_held_flying(struct dump_ctx *ctx, int fd, FileEntry *fe, cr_error_t *err);

/* A pipe made again, holding pe's data: fds[0] reads, fds[1] writes
 * (close-on-exec, non-blocking); packets (O_DIRECT) when asked. */
int pipe_make_filled(const PipeEntry *pe, bool packets, int fds[2], cr_error_t *err);

/* How many bytes pe holds. */
size_t pipe_data_len(const PipeEntry *pe);

#endif
