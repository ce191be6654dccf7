/* Encrypted images (cr dump --encrypt KEY; cr restore / cr show --decrypt
 * KEY), with libsodium's XChaCha20-Poly1305 (crypto_aead_xchacha20poly1305_ietf).
 *
 * An encrypted image keeps its 28-byte header (image.h) in the clear, with
 * CR_IMG_ENCRYPTED in its flags, so that anyone can still tell what the
 * file is and which dump it belongs to; everything after it is sealed:
 *
 *   header   28 bytes, as in image.h                             clear
 *   salt     16 random bytes, new for every file                  clear
 *   key id   16 bytes: BLAKE2b of KEY_ID_CONTEXT keyed with the   clear
 *            key, so that a wrong key is named as such
 *   records  the plain image's bytes after its header (body and trailer)
 *            cut into records of CR_CRYPT_RECORD bytes, the last one
 *            shorter or as long (never empty unless the whole is); each
 *            stored as [Poly1305 tag, 16 bytes][ciphertext, record's length]
 *
 * Record i is sealed with the nonce salt || le64(i) and the additional data
 *   AD_CONTEXT, header, salt, key id (the 60 clear bytes), le64(i), a byte
 *   that is 1 for the file's last record and 0 for the others, the name of
 *   the file.
 * A changed byte anywhere (the clear ones included), records reordered,
 * dropped or added, a file cut short (its new last record was not sealed
 * as the last), a file renamed or copied in from another dump (its header
 * holds that dump's id) or another name: each makes a record fail to open,
 * and the error names the file.  The salt keeps the nonces of two files
 * sealed with one key apart (2^-128 of a collision per pair).
 *
 * One key serves a whole cr process (img_crypt_use): with a key, every
 * image written is encrypted and every image read must be; without one,
 * an encrypted image is refused, naming the option that would open it. */
#ifndef CR_IMG_CRYPT_H
#define CR_IMG_CRYPT_H

#include "img/keys.h"
#include "os/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CR_IMG_ENCRYPTED     0x1u     /* header flags (image.h) */
#define CR_CRYPT_RECORD      (64u << 10)
#define CR_CRYPT_TAG         crypto_aead_xchacha20poly1305_ietf_ABYTES   /* 16 */
#define CR_CRYPT_SALT        16u
#define CR_CRYPT_KEY_ID      16u
#define CR_CRYPT_HEADER      28u      /* CR_IMG_HEADER_SIZE */
#define CR_CRYPT_CLEAR       (CR_CRYPT_HEADER + CR_CRYPT_SALT + CR_CRYPT_KEY_ID)   /* 60 */
#define CR_CRYPT_KEY_ID_HEX  17       /* the first 8 bytes of the key id, in hex */
#define CR_CRYPT_NAME_MAX    255u

/* --- the key of this process ----------------------------------------------- */

/* From now on images are written encrypted with key, and must be when
 * read; NULL forgets (and wipes) the key. */
void img_crypt_use(const struct cr_image_key *key);
bool img_crypt_active(void);
/* Loads the image key file path (cr_image_key_load) and uses its key. */
int img_crypt_use_file(const char *path, cr_error_t *err);
/* The key id of key, in hex (what cr show and errors name a key by). */
const char *cr_image_key_id_hex(const struct cr_image_key *key, char out[CR_CRYPT_KEY_ID_HEX]);

/* --- records: the pure part -------------------------------------------------- */

/* The clear part of a file, from its header: a fresh salt and key's id. */
void img_crypt_clear_new(unsigned char clear[CR_CRYPT_CLEAR], const unsigned char header[CR_CRYPT_HEADER],
			 const struct cr_image_key *key);
/* Seals rec[CR_CRYPT_TAG ..+len) in place, the tag in front. */
void img_crypt_seal(unsigned char *rec, size_t len, uint64_t index, bool last, const unsigned char *clear,
		    const char *name, const struct cr_image_key *key);
/* Opens a record sealed so: 0, or -1 when it does not authenticate. */
int img_crypt_open_record(unsigned char *rec, size_t len, uint64_t index, bool last, const unsigned char *clear,
			  const char *name, const struct cr_image_key *key);
/* The plain size of the records part of a file whose records take
 * stored bytes (after the clear part): -1 when no layout gives stored. */
int64_t img_crypt_plain_size(uint64_t stored);

/* --- writing ------------------------------------------------------------------- */

struct img_sealer;

/* Writes the clear part for header into fd, at its start, and returns a
 * sealer that takes the plain image's bytes after the header. */
int img_sealer_open(int fd, const char *name, const unsigned char header[CR_CRYPT_HEADER],
		    struct img_sealer **out, cr_error_t *err);
/* Takes the plain bytes that follow, in order: 0 or an errno value. */
int img_sealer_write(struct img_sealer *s, const void *p, size_t len);
/* Seals and writes the last record: 0 or an errno value. */
int img_sealer_finish(struct img_sealer *s);
void img_sealer_free(struct img_sealer *s);

/* --- reading: an image file as its plain bytes ----------------------------------- */

struct img_crypt;

/* An open image file, encrypted or not, read at offsets of its plain
 * image (size bytes).  Thread-safe: several threads may read at once. */
struct img_view {
	int fd;
	uint64_t size;
	struct img_crypt *crypt;   /* NULL: the file is its plain image */
};

/* Opens name in dirfd (img_dir_open_read): refuses an encrypted file when
 * there is no key, another key's, a damaged or truncated record layout,
 * and a clear image when there is a key.  A file too short or with a bad
 * magic is opened as it is, for the image layer to say what is wrong. */
int img_view_open(int dirfd, const char *name, struct img_view *v, cr_error_t *err);
/* Reads len bytes at *off (moved on): 0, an errno value, ENODATA when
 * the plain image ends first, EBADMSG when a record does not open. */
int img_view_pread(const struct img_view *v, void *buf, size_t len, uint64_t *off);
void img_view_close(struct img_view *v);

/* Whether name in dirfd is an encrypted image (1, with its key id in hex
 * when key_id is not NULL), a clear one (0), or cannot be told (-1). */
int img_crypt_probe(int dirfd, const char *name, char key_id[CR_CRYPT_KEY_ID_HEX], cr_error_t *err);

#endif
