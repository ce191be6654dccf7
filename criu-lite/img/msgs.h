/* Whole message images, by kind: what the drivers write and load.  The
 * name and the message type come from the table (img/kinds.h). */
#ifndef CR_IMG_MSGS_H
#define CR_IMG_MSGS_H

#include <stddef.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "os/arena.h"
#include "os/error.h"

/* The messages of one image: built by a dump, loaded by a restore
 * (in_arena: into an arena, freed with it). */
struct img_msgs {
	ProtobufCMessage **v;
	size_t n;
	bool in_arena;
};

/* Writes v as the image of kind (pid names per-process ones). */
int img_store(int dirfd, uint32_t kind, pid_t pid, ProtobufCMessage *const *v, size_t n, cr_error_t *err);
/* Reads every message of the image of kind into *out (freed with
 * img_msgs_free, also after a failure; with an arena a, the messages and
 * their array live in a and go with it); a kind of shape IMG_ONE must hold
 * exactly one. */
int img_load(int dirfd, uint32_t kind, pid_t pid, struct arena *a, struct img_msgs *out, cr_error_t *err);
void img_msgs_free(struct img_msgs *m);

#endif
