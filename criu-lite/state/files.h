/* The fd table of a process (a kind of state, state_files) and the file
 * descriptions behind it: what the fd kinds and the mappings share. */
#ifndef CR_FILES_H
#define CR_FILES_H

#include <sys/stat.h>

#include "os/error.h"
#include "state/task.h"

/* Dump: adds a file description to files.img; returns its id. */
uint32_t file_table_add(struct dump_ctx *ctx, FileEntry *fe);
/* Dump: the id of the regular file at path that a mapping (or the exe)
 * needs, opened with flags (O_RDONLY or O_RDWR), recorded with st's size
 * and mtime, which restore checks: once per path and flags. */
uint32_t files_add_mapped(struct dump_ctx *ctx, const struct dump_task *t, const char *path, uint32_t flags,
			  const struct stat *st);

/* Restore: the lowest process that is an ancestor of (or is) both a and b. */
struct restore_task *restore_common_ancestor(struct restore_task *a, struct restore_task *b);

/* Restore: the description with that id, or NULL. */
const FileEntry *restore_file(const struct restore_ctx *ctx, uint32_t id);

/* Restore, in the child: opens the file a mapping (or the exe) needs,
 * checked to be the dumped one, at fd slot (close-on-exec). */
int files_open_mapped(const struct restore_ctx *ctx, const struct restore_task *t, const FileEntry *fe, int slot,
		      cr_error_t *err);

/* Restore, in the child: moves fd (closing it) above every dumped and
 * reserved fd, where installing the dumped fds cannot overwrite it, and
 * returns its new number.  For kinds that create two descriptions at once
 * (a pipe's two ends) and keep one for a later fd.  The restorer closes
 * everything there before the process runs. */
int files_stash_fd(const struct restore_task *t, int fd, cr_error_t *err);

#endif
