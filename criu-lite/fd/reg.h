/* Regular files (and directories), character devices and terminals:
 * reopened by path at restore. */
#ifndef CR_FD_REG_H
#define CR_FD_REG_H

#include <stdbool.h>
#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"
#include "files.pb-c.h"

/* Dump: what identifies the file st describes (mode, owner, device and
 * inode), into fe. */
void reg_identity(FileEntry *fe, const struct stat *st);

/* Restore, validation before any process exists: fe's flags and offset
 * make sense and the file at its path is the dumped one (see reg_open);
 * strict as there. */
int reg_check(const struct restore_ctx *ctx, const FileEntry *fe, bool strict, cr_error_t *err);

/* Restore: opens the regular file or directory fe names, with its flags
 * and offset, as process t would (fd/reopen.h), and checks it is the file
 * that was dumped: on the boot of the dump and the same device, the same
 * inode; otherwise the same type, mode and owner.  When strict, as a
 * mapped or executed file must be, also the same size and mtime.
 * Returns the fd. */
int reg_open(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe, bool strict,
	     cr_error_t *err);

/* Dump: another name of the regular file st, deleted under former and
 * still linked, that cr can reopen it by: in the directory of former,
 * else the one the kernel's cache gives for the file behind link (a
 * /proc/PID/fd/N or /proc/PID/map_files/A-B).  Into out; false if none. */
bool reg_other_name(const char *former, const char *link, const struct stat *st, char *out, size_t size);

/* The dump of a terminal that stands for the shell job's (FILE_TTY), for
 * fd/pty.c's pts whose master is outside the tree. */
struct fd_probe;
int tty_dump(struct dump_ctx *ctx, struct dump_task *t, const struct fd_probe *p, FileEntry *fe, cr_error_t *err);

#endif
