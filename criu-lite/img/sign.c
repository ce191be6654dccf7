/* Signed dumps: image hashes, inventory.sig written and checked (see sign.h). */
#include "img/sign.h"
#include "img/bytes.h"
#include "img/dir.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#define SIGN_MAGIC    0x47535243u
#define SIGN_VERSION  1
#define SIGN_FILE_SIZE (8 + crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES)
#define SIGN_CONTEXT  "cr dump signature v1"   /* with its NUL, before the inventory's bytes */
#define INVENTORY     "inventory.img"
#define INVENTORY_MAX (64u << 20)
#define HASH_BUF      (1u << 20)

/* --- hashing ----------------------------------------------------------------- */

static int read_some(int fd, void *buf, size_t len, size_t *got, const char *name, cr_error_t *err)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cr_error(err, errno, "%s: read", name);
	*got = (size_t)n;
	return 0;
}

int img_hash_file(int dirfd, const char *name, unsigned char out[CR_IMG_HASH_SIZE], cr_error_t *err)
{
	cleanup_close int fd = img_dir_open_read(dirfd, name, NULL, err);
	cleanup_free unsigned char *buf = NULL;
	crypto_generichash_state st;
	size_t n = 0;

	if (fd < 0)
		return -1;
	buf = xmalloc(HASH_BUF);
	crypto_generichash_init(&st, NULL, 0, CR_IMG_HASH_SIZE);
	do {
		if (read_some(fd, buf, HASH_BUF, &n, name, err) < 0)
			return -1;
		crypto_generichash_update(&st, buf, n);
	} while (n > 0);
	crypto_generichash_final(&st, out, CR_IMG_HASH_SIZE);
	return 0;
}

/* --- whole small files ---------------------------------------------------------- */

/* The bytes of name, read whole into a buffer with room for prefix_len
 * bytes before them; *len counts the file's bytes only. */
static int slurp(int dirfd, const char *name, size_t prefix_len, size_t max, unsigned char **out, size_t *len,
		 cr_error_t *err)
{
	struct stat st;
	cleanup_close int fd = img_dir_open_read(dirfd, name, &st, err);
	cleanup_free unsigned char *buf = NULL;
	size_t have = 0, n = 0;

	if (fd < 0)
		return -1;
	if ((uint64_t)st.st_size > max)
		return cr_error(err, EFBIG, "%s: %lld bytes, more than the %zu a %s can be", name,
				(long long)st.st_size, max, name);
	buf = xmalloc(prefix_len + (size_t)st.st_size + 1);
	do {
		if (read_some(fd, buf + prefix_len + have, (size_t)st.st_size + 1 - have, &n, name, err) < 0)
			return -1;
		have += n;
	} while (n > 0 && have <= (size_t)st.st_size);
	if (have != (size_t)st.st_size)
		return cr_error(err, 0, "%s: changed while it was read", name);
	*len = have;
	*out = steal_pointer(&buf);
	return 0;
}

/* SIGN_CONTEXT and the inventory's bytes: what the signature covers. */
static int signed_message(int dirfd, unsigned char **msg, size_t *len, cr_error_t *err)
{
	size_t inv_len;

	if (slurp(dirfd, INVENTORY, sizeof(SIGN_CONTEXT), INVENTORY_MAX, msg, &inv_len, err) < 0)
		return -1;
	memcpy(*msg, SIGN_CONTEXT, sizeof(SIGN_CONTEXT));
	*len = sizeof(SIGN_CONTEXT) + inv_len;
	return 0;
}

/* --- signing ------------------------------------------------------------------------ */

int img_sign_write(int dirfd, const struct cr_secret_key *key, cr_error_t *err)
{
	cleanup_free unsigned char *msg = NULL;
	unsigned char file[SIGN_FILE_SIZE];
	struct cr_public_key pub;
	cleanup_close int fd = -1;
	size_t len;

	if (cr_sodium_ready(err) < 0 || signed_message(dirfd, &msg, &len, err) < 0)
		return -1;
	cr_key_public_of(key, &pub);
	put_le32(file, SIGN_MAGIC);
	put_le16(file + 4, SIGN_VERSION);
	put_le16(file + 6, 0);
	memcpy(file + 8, pub.pk, sizeof(pub.pk));
	crypto_sign_detached(file + 8 + sizeof(pub.pk), NULL, msg, len, key->sk);
	fd = img_dir_create(dirfd, CR_SIGNATURE_FILE, err);
	if (fd < 0)
		return -1;
	if (write_all(fd, file, sizeof(file), err) < 0)
		return cr_error_wrap(err, "%s", CR_SIGNATURE_FILE);
	return 0;
}

/* --- checking -------------------------------------------------------------------------- */

/* The signer's key and the signature, from inventory.sig's bytes. */
static int parse_signature(const unsigned char *p, size_t len, struct cr_public_key *signer,
			   unsigned char sig[crypto_sign_BYTES], cr_error_t *err)
{
	if (len != SIGN_FILE_SIZE)
		return cr_error(err, 0, "%s: %zu bytes, a signature file has %d", CR_SIGNATURE_FILE, len,
				(int)SIGN_FILE_SIZE);
	if (get_le32(p) != SIGN_MAGIC || get_le16(p + 4) != SIGN_VERSION || get_le16(p + 6) != 0)
		return cr_error(err, 0, "%s: not a cr signature of version %d", CR_SIGNATURE_FILE, SIGN_VERSION);
	memcpy(signer->pk, p + 8, sizeof(signer->pk));
	if (sig != NULL)
		memcpy(sig, p + 8 + sizeof(signer->pk), crypto_sign_BYTES);
	return 0;
}

static int read_signature(int dirfd, struct cr_public_key *signer, unsigned char sig[crypto_sign_BYTES],
			  cr_error_t *err)
{
	cleanup_free unsigned char *p = NULL;
	size_t len;

	if (slurp(dirfd, CR_SIGNATURE_FILE, 0, 4096, &p, &len, err) < 0)
		return -1;
	return parse_signature(p, len, signer, sig, err);
}

int img_signer(int dirfd, struct cr_public_key *signer, cr_error_t *err)
{
	struct stat st;

	if (fstatat(dirfd, CR_SIGNATURE_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
		return 0;
	return read_signature(dirfd, signer, NULL, err) < 0 ? -1 : 1;
}

int img_sign_check(int dirfd, const char *dir, const struct cr_public_key *key, cr_error_t *err)
{
	unsigned char sig[crypto_sign_BYTES];
	cleanup_free unsigned char *msg = NULL;
	struct cr_public_key signer;
	char want[CR_KEY_FPR_HEX], got[CR_KEY_FPR_HEX];
	size_t len;
	int is_signed = img_signer(dirfd, &signer, err);

	if (is_signed == 0)
		return cr_error(err, 0, "%s is not signed (it has no %s): --verify refuses an unsigned dump",
				dir, CR_SIGNATURE_FILE);
	if (is_signed < 0 || read_signature(dirfd, &signer, sig, err) < 0)
		return -1;
	if (sodium_memcmp(signer.pk, key->pk, sizeof(key->pk)) != 0)
		return cr_error(err, 0, "%s: signed with key %s, not with the key given (%s)", CR_SIGNATURE_FILE,
				cr_key_fingerprint(&signer, got), cr_key_fingerprint(key, want));
	if (signed_message(dirfd, &msg, &len, err) < 0)
		return -1;
	if (crypto_sign_verify_detached(sig, msg, len, key->pk) != 0)
		return cr_error(err, 0, "%s: the signature in %s does not verify: the inventory (or the "
				"signature) was changed after the dump was signed", INVENTORY, CR_SIGNATURE_FILE);
	return 0;
}

static const ImageDigest *find_digest(const InventoryEntry *inv, const char *name, size_t *hint)
{
	if (*hint < inv->n_images && strcmp(inv->images[*hint]->name, name) == 0)
		return inv->images[(*hint)++];
	for (size_t i = 0; i < inv->n_images; i++) {
		if (strcmp(inv->images[i]->name, name) == 0) {
			*hint = i + 1;
			return inv->images[i];
		}
	}
	return NULL;
}

int img_digest_check(int dirfd, const char *name, const InventoryEntry *inv, size_t *hint, cr_error_t *err)
{
	const ImageDigest *d = find_digest(inv, name, hint);
	unsigned char h[CR_IMG_HASH_SIZE];

	if (d == NULL)
		return cr_error(err, 0, "%s: not covered by the signature (the signed inventory lists no hash "
				"for it)", name);
	if (d->blake2b.len != CR_IMG_HASH_SIZE)
		return cr_error(err, 0, "%s: the signed inventory's hash of it is %zu bytes, not %d", name,
				d->blake2b.len, CR_IMG_HASH_SIZE);
	if (img_hash_file(dirfd, name, h, err) < 0)
		return -1;
	if (sodium_memcmp(h, d->blake2b.data, CR_IMG_HASH_SIZE) != 0)
		return cr_error(err, 0, "%s: does not match the hash in the signed inventory: changed after "
				"the dump was signed", name);
	return 0;
}
