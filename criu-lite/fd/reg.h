/* Regular files (and directories), character devices and terminals:
 * reopened by path at restore. */
#ifndef CR_FD_REG_H
#define CR_FD_REG_H

#include <stdbool.h>
#include <sys/stat.h>

#include "os/error.h"
#include "files.pb-c.h"

/* Opens the regular file fe names with its flags and offset; when strict,
 * it must be the file that was dumped (same size and mtime), as a mapped
 * or executed file must.  Returns the fd. */
int reg_open(const FileEntry *fe, bool strict, cr_error_t *err);

#endif
