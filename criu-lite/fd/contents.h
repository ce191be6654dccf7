/* The contents of a file kept in the image (memfds, deleted files), as
 * data extents: holes are not stored and stay holes at restore. */
#ifndef CR_CONTENTS_H
#define CR_CONTENTS_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "os/arena.h"
#include "os/error.h"

struct contents {
	size_t n;
	uint64_t *off;               /* ascending, not overlapping */
	ProtobufCBinaryData *data;
};

/* Dump: the data extents of the first size bytes of fd, which must be cr's
 * own description (SEEK_DATA moves its offset).  Refuses more than
 * FDKIND_MAX_DATA bytes of data. */
int contents_dump(struct arena *a, int fd, uint64_t size, struct contents *out, cr_error_t *err);

/* Restore validation: as many offsets as extents, ascending, within size. */
int contents_validate(uint64_t size, size_t n_off, const uint64_t *off, size_t n_data,
		      const ProtobufCBinaryData *data, cr_error_t *err);

/* Restore: sets the size of fd and writes the extents at their offsets. */
int contents_restore(int fd, uint64_t size, size_t n, const uint64_t *off, const ProtobufCBinaryData *data,
		     cr_error_t *err);

#endif
