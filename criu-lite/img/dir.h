/* The image directory: how cr opens it and every file in it.
 *
 * An image directory may hold files that are not cr's, and may be writable
 * by someone other than the root that runs cr, so nothing in it is
 * followed through a symlink and nothing of the user's is overwritten or
 * removed:
 *   - the directory itself is opened with O_NOFOLLOW: a symlink given as
 *     -D is refused by name;
 *   - every file is opened relative to the directory's fd with O_NOFOLLOW;
 *     a file read must be a regular file (it is opened O_NONBLOCK, so a
 *     FIFO cannot block the open, and refused after fstat);
 *   - a new file is created O_CREAT|O_EXCL (which never follows a link);
 *     a log is replaced by unlinking the old name first;
 *   - a dump records every file it creates (the journal), and a failed dump
 *     removes exactly those files. */
#ifndef CR_IMG_DIR_H
#define CR_IMG_DIR_H

#include "os/error.h"

#include <stdbool.h>
#include <sys/stat.h>

/* Opens the image directory path (creating it 0700 first when create is
 * set and it does not exist).  A symlink, with or without a trailing
 * slash, is refused by name; so is anything not a directory. */
int img_dir_open(const char *path, bool create, cr_error_t *err);

/* Dump and restore: the directory, whose images a restore trusts as its
 * owner's, must be writable by its owner only, and owned by the caller or
 * root; otherwise refused, naming it: another user could put images of
 * their own there. */
int img_dir_check_private(int dirfd, const char *path, cr_error_t *err);

/* Opens name in dirfd for reading: O_NOFOLLOW, a regular file only (a
 * symlink, a FIFO, a device or a directory is refused naming the file);
 * the fd is blocking again when returned.  st (may be NULL) gets its stat. */
int img_dir_open_read(int dirfd, const char *name, struct stat *st, cr_error_t *err);

/* Creates name in dirfd (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) for
 * writing; an existing name of any kind is refused.  While a journal is
 * open, the file is recorded in it. */
int img_dir_create(int dirfd, const char *name, cr_error_t *err);

/* A file without a name in dirfd's filesystem (O_TMPFILE, mode 0600) for
 * writing, which goes away with its last fd unless named; -1 (errno) if
 * the filesystem has none. */
int img_dir_create_unnamed(int dirfd);
/* Names such a file name in dirfd, as img_dir_create would have created
 * it (an existing name of any kind is refused; journalled). */
int img_dir_name(int dirfd, const char *name, int fd, cr_error_t *err);

/* Creates name in dirfd afresh for writing, as img_dir_create, after
 * removing what the name held (a log of an earlier run, or a link planted
 * in its place, which is removed, never followed).  Not journalled. */
int img_dir_replace(int dirfd, const char *name, cr_error_t *err);

/* Forgets a file img_dir_create made and the caller removed itself. */
void img_dir_forget(int dirfd, const char *name);

/* The journal of the files this process creates in one image directory
 * (the first it creates a file in): begin starts recording, undo removes
 * every recorded name that still holds a regular file with the device and
 * inode number it was created with (a file put in its place is left alone,
 * unless the filesystem gave it the same inode number), end forgets them
 * (they are kept).  Both end the journal. */
void img_dir_journal_begin(void);
void img_dir_journal_undo(void);
void img_dir_journal_end(void);

#endif
