/* Keys for dumps (libsodium).  Signing keys (Ed25519): cr keygen writes a
 * secret key file (0600, for cr dump --sign) and its public key beside it
 * (KEYFILE.pub, for cr restore --verify and cr show --verify).  Image keys
 * (XChaCha20-Poly1305, img/crypt.h): cr keygen --secret writes one secret
 * file (0600), for cr dump --encrypt and cr restore/show --decrypt.
 *
 * All are text, a line that says what the file is and a line of hex:
 *   cr-ed25519-secret-key   cr-ed25519-public-key   cr-xchacha20poly1305-key
 *   <128 hex digits>        <64 hex digits>         <64 hex digits>
 * A secret key file that others may read is refused, like ssh does. */
#ifndef CR_IMG_KEYS_H
#define CR_IMG_KEYS_H

#include "os/error.h"

#include <sodium.h>

struct cr_secret_key {
	unsigned char sk[crypto_sign_SECRETKEYBYTES];
};

struct cr_public_key {
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

struct cr_image_key {
	unsigned char k[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

/* The first 8 bytes of the BLAKE2b hash of a public key, in hex: short
 * enough to read, what cr show and errors name a key by. */
#define CR_KEY_FPR_HEX 17

/* libsodium is ready (sodium_init); every user of it calls this first. */
int cr_sodium_ready(cr_error_t *err);

/* Makes a key pair: path (the secret key, mode 0600) and path.pub, and
 * gives the public key in *pub.  Both files must be new; nothing is left
 * behind if either cannot be written. */
int cr_key_generate(const char *path, struct cr_public_key *pub, cr_error_t *err);
int cr_key_load_secret(const char *path, struct cr_secret_key *key, cr_error_t *err);
int cr_key_load_public(const char *path, struct cr_public_key *key, cr_error_t *err);
void cr_key_public_of(const struct cr_secret_key *key, struct cr_public_key *pub);
const char *cr_key_fingerprint(const struct cr_public_key *pub, char out[CR_KEY_FPR_HEX]);
/* Clears a secret key from memory. */
void cr_key_wipe(struct cr_secret_key *key);

/* Image keys: a new random key in path (mode 0600, must be new), and
 * loading one (refused when others may read the file). */
int cr_image_key_generate(const char *path, cr_error_t *err);
int cr_image_key_load(const char *path, struct cr_image_key *key, cr_error_t *err);
void cr_image_key_wipe(struct cr_image_key *key);

#endif
