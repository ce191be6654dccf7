/* Signed dumps (cr dump --sign, cr restore --verify, libsodium).
 *
 * A signed dump's inventory lists every other image file of the dump with
 * the BLAKE2b-256 hash of all its bytes (inventory.proto, image_digest),
 * and inventory.sig holds an Ed25519 signature over the inventory file:
 *
 *   magic "CRSG" (u32 0x47535243), version (u16, 1), reserved (u16, 0),
 *   the signer's public key (32 bytes), the signature (64 bytes)
 *
 * The signature is made over SIGN_CONTEXT followed by every byte of
 * inventory.img.  A verifier checks the signature with the public key it
 * was given (never with the one in the file, which only lets an error say
 * "signed with another key"), then each image file against its hash, so
 * a changed byte anywhere, an image swapped in from another dump (signed
 * or not), an unsigned dump and a wrong key are each refused by name. */
#ifndef CR_IMG_SIGN_H
#define CR_IMG_SIGN_H

#include "img/keys.h"
#include "os/error.h"
#include "inventory.pb-c.h"

#include <stdbool.h>

#define CR_SIGNATURE_FILE "inventory.sig"
#define CR_IMG_HASH_SIZE  crypto_generichash_BYTES   /* 32: BLAKE2b-256 */

/* The hash of every byte of the image file name in dirfd. */
int img_hash_file(int dirfd, const char *name, unsigned char out[CR_IMG_HASH_SIZE], cr_error_t *err);

/* Signs inventory.img in dirfd with key into a new inventory.sig. */
int img_sign_write(int dirfd, const struct cr_secret_key *key, cr_error_t *err);

/* 1 when dirfd holds a well-formed inventory.sig (*signer is the key it
 * names), 0 when it holds none, -1 (naming the file) when it is damaged. */
int img_signer(int dirfd, struct cr_public_key *signer, cr_error_t *err);

/* The signature in inventory.sig is key's, over inventory.img as it is:
 * refuses an unsigned dump, another key's signature and a changed
 * inventory, each by name. */
int img_sign_check(int dirfd, const char *dir, const struct cr_public_key *key, cr_error_t *err);

/* The image file name in dirfd has the hash the (signed) inventory lists
 * for it; *hint is where to look first in inv->images (the dump lists them
 * in the order img_each_file gives), and is moved past the entry found. */
int img_digest_check(int dirfd, const char *name, const InventoryEntry *inv, size_t *hint, cr_error_t *err);

#endif
