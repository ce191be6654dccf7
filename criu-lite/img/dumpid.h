/* The identity of a dump: 128 random bits, made once per dump, written in
 * the header of every image file of that dump and in its inventory.  Files
 * of two dumps cannot then be mixed into one image set unnoticed: each
 * file's id is checked against the inventory's, and a file from another
 * dump is refused by name.
 *
 * The id is bound to the image directory (by its device and inode) for the
 * process working on it: a dump binds a fresh id before it writes a file,
 * so every image it creates there carries it; a restore (or cr show) binds
 * the id its inventory holds, and from then on every image opened there
 * must carry it.  Images in a directory with no id bound carry, and are
 * checked against, nothing (the unit tests' model dumps). */
#ifndef CR_IMG_DUMPID_H
#define CR_IMG_DUMPID_H

#include "os/error.h"

#include <stdbool.h>
#include <stddef.h>

#define CR_DUMP_ID_SIZE 16
#define CR_DUMP_ID_HEX  (2 * CR_DUMP_ID_SIZE + 1)

struct cr_dump_id {
	unsigned char b[CR_DUMP_ID_SIZE];
};

/* A fresh random id (getrandom(2)). */
int cr_dump_id_new(struct cr_dump_id *id, cr_error_t *err);
/* The id as 32 lowercase hex digits. */
const char *cr_dump_id_hex(const struct cr_dump_id *id, char out[CR_DUMP_ID_HEX]);
bool cr_dump_id_equal(const struct cr_dump_id *a, const struct cr_dump_id *b);
/* The id held in len bytes (an inventory's field): refused unless it is
 * exactly CR_DUMP_ID_SIZE bytes and not all zero. */
int cr_dump_id_from(const void *p, size_t len, struct cr_dump_id *id, const char *name, cr_error_t *err);

/* Binds id to the directory dirfd (replacing an earlier binding). */
int img_dir_bind_id(int dirfd, const struct cr_dump_id *id, cr_error_t *err);
/* The id bound to dirfd: true and *id, or false when none is. */
bool img_dir_bound_id(int dirfd, struct cr_dump_id *id);
/* Forgets dirfd's id (a dump that failed, a restore that is done). */
void img_dir_unbind_id(int dirfd);

#endif
