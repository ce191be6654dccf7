/* Reopening a file by its dumped path at restore, as the process that
 * will hold it: with its file-system credentials (os/fscreds.h) and never
 * through a symbolic link, since /proc showed the dump a path without
 * any.  A file the process's credentials may no longer open (a daemon
 * that opened its log as root and then dropped privileges) is opened as
 * cr, and *as_cr tells the caller to insist on the file's identity. */
#ifndef CR_FD_REOPEN_H
#define CR_FD_REOPEN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"

/* What O_TMPFILE adds to O_DIRECTORY (the kernel's __O_TMPFILE): a
 * description made with O_TMPFILE keeps both bits in its flags. */
#define O_TMPFILE_BIT 020000000

int reopen_path(const struct restore_task *t, const char *path, int flags, bool *as_cr, cr_error_t *err);

/* Validation, before any process exists: path is absolute and as /proc
 * shows paths (no empty, "." or ".." component, no trailing slash), and
 * what is there now, reached without a symbolic link, is st. */
int reopen_look(const char *path, struct stat *st, cr_error_t *err);

/* The same, where the last component may be a symbolic link: st is then
 * the link's. */
int reopen_look_nofollow(const char *path, struct stat *st, cr_error_t *err);
/* An O_PATH fd of path (as reopen_look wants it), or -1 with err set. */
int reopen_place(const char *path, cr_error_t *err);

/* Validation: the regular file or directory at path (reached without a
 * link, opened for reading by cr) takes the offset pos: lseek refuses one
 * beyond what its file system allows. */
int reopen_check_offset(const char *path, uint64_t pos, cr_error_t *err);

/* Validation: flags are open flags a description can have. */
int reopen_check_flags(const char *path, uint32_t flags, cr_error_t *err);

#endif
