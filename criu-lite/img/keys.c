/* Key files for signed and encrypted dumps (see keys.h). */
#include "img/keys.h"
#include "os/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SECRET_TAG "cr-ed25519-secret-key"
#define PUBLIC_TAG "cr-ed25519-public-key"
#define IMAGE_TAG  "cr-xchacha20poly1305-key"
#define KEY_FILE_MAX 1024   /* a key file is about 150 bytes */

int cr_sodium_ready(cr_error_t *err)
{
	if (sodium_init() < 0)
		return cr_error(err, 0, "libsodium cannot be initialised");
	return 0;
}

/* --- writing ------------------------------------------------------------- */

static int write_key_file(const char *path, mode_t mode, const char *tag, const unsigned char *key,
			  size_t len, cr_error_t *err)
{
	char hex[2 * crypto_sign_SECRETKEYBYTES + 1], text[sizeof(hex) + 64];
	cleanup_close int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
	int n;

	if (fd < 0 && errno == EEXIST)
		return cr_error(err, errno, "%s: create (cr keygen never replaces a key)", path);
	if (fd < 0)
		return cr_error(err, errno, "%s: create", path);
	sodium_bin2hex(hex, sizeof(hex), key, len);
	n = snprintf(text, sizeof(text), "%s\n%s\n", tag, hex);
	sodium_memzero(hex, sizeof(hex));
	if (write_all(fd, text, (size_t)n, err) < 0 || fsync(fd) < 0) {
		sodium_memzero(text, sizeof(text));
		unlink(path);
		return *err != NULL ? cr_error_wrap(err, "%s", path) : cr_error(err, errno, "%s: fsync", path);
	}
	sodium_memzero(text, sizeof(text));
	return 0;
}

int cr_key_generate(const char *path, struct cr_public_key *pub, cr_error_t *err)
{
	struct cr_secret_key key;
	char pub_path[PATH_MAX];
	int ret;

	if (cr_sodium_ready(err) < 0)
		return -1;
	if (snprintf(pub_path, sizeof(pub_path), "%s.pub", path) >= (int)sizeof(pub_path))
		return cr_error(err, ENAMETOOLONG, "%s.pub", path);
	crypto_sign_keypair(pub->pk, key.sk);
	ret = write_key_file(path, 0600, SECRET_TAG, key.sk, sizeof(key.sk), err);
	cr_key_wipe(&key);
	if (ret < 0)
		return -1;
	if (write_key_file(pub_path, 0644, PUBLIC_TAG, pub->pk, sizeof(pub->pk), err) < 0) {
		unlink(path);
		return -1;
	}
	return 0;
}

/* --- reading ------------------------------------------------------------- */

/* The text of a key file (at most KEY_FILE_MAX - 1 bytes), NUL-terminated. */
static int read_key_file(const char *path, char text[KEY_FILE_MAX], struct stat *st, cr_error_t *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return cr_error(err, errno, "key file %s", path);
	if (fstat(fd, st) < 0)
		return cr_error(err, errno, "key file %s: stat", path);
	if (!S_ISREG(st->st_mode))
		return cr_error(err, 0, "key file %s: not a regular file", path);
	while (len < KEY_FILE_MAX - 1 && (n = read(fd, text + len, KEY_FILE_MAX - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_error(err, errno, "key file %s: read", path);
		len += (size_t)n;
	}
	text[len] = '\0';
	return 0;
}

/* Why text, which is not tag's, cannot serve where tag's key is wanted. */
static int wrong_key_kind(const char *path, const char *text, const char *tag, cr_error_t *err)
{
	if (strncmp(text, SECRET_TAG "\n", sizeof(SECRET_TAG)) == 0 && strcmp(tag, PUBLIC_TAG) == 0)
		return cr_error(err, 0, "key file %s is a secret key: give its public key (%s.pub)", path, path);
	if (strncmp(text, PUBLIC_TAG "\n", sizeof(PUBLIC_TAG)) == 0 && strcmp(tag, SECRET_TAG) == 0)
		return cr_error(err, 0, "key file %s is a public key: signing needs the secret key", path);
	if (strncmp(text, IMAGE_TAG "\n", sizeof(IMAGE_TAG)) == 0)
		return cr_error(err, 0, "key file %s is an image key (for --encrypt/--decrypt), not a signing key",
				path);
	if (strcmp(tag, IMAGE_TAG) == 0 && strncmp(text, "cr-ed25519-", 11) == 0)
		return cr_error(err, 0, "key file %s is a signing key; --encrypt/--decrypt need an image key "
				"(cr keygen --secret FILE)", path);
	return cr_error(err, 0, "key file %s is not a cr key (it does not start with '%s')", path, tag);
}

/* The key in text, which must be tag's: key holds exactly len bytes. */
static int parse_key(const char *path, const char *text, const char *tag, unsigned char *key, size_t len,
		     cr_error_t *err)
{
	size_t tag_len = strlen(tag), got = 0;
	const char *hex = text + tag_len + 1, *end;

	if (strncmp(text, tag, tag_len) != 0 || text[tag_len] != '\n')
		return wrong_key_kind(path, text, tag, err);
	if (sodium_hex2bin(key, len, hex, strlen(hex), "", &got, &end) != 0 || got != len ||
	    (*end != '\0' && strcmp(end, "\n") != 0))
		return cr_error(err, 0, "key file %s: damaged (expected %zu bytes in hex after '%s')", path, len, tag);
	return 0;
}

/* The key of tag's kind held in the file path, and the file's stat. */
static int load_key(const char *path, const char *tag, unsigned char *key, size_t len, struct stat *st,
		    cr_error_t *err)
{
	char text[KEY_FILE_MAX];
	int ret;

	if (cr_sodium_ready(err) < 0 || read_key_file(path, text, st, err) < 0)
		return -1;
	ret = parse_key(path, text, tag, key, len, err);
	sodium_memzero(text, sizeof(text));   /* it may have been a secret key */
	return ret;
}

/* A secret key of tag's kind, from a file no one else may read. */
static int load_private_key(const char *path, const char *tag, unsigned char *key, size_t len, cr_error_t *err)
{
	struct stat st;

	if (load_key(path, tag, key, len, &st, err) < 0)
		return -1;
	if (st.st_mode & 077) {
		sodium_memzero(key, len);
		return cr_error(err, 0, "key file %s: mode %04o lets others read the secret key; it must be "
				"0600 (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
	}
	return 0;
}

int cr_key_load_secret(const char *path, struct cr_secret_key *key, cr_error_t *err)
{
	return load_private_key(path, SECRET_TAG, key->sk, sizeof(key->sk), err);
}

int cr_key_load_public(const char *path, struct cr_public_key *key, cr_error_t *err)
{
	struct stat st;

	return load_key(path, PUBLIC_TAG, key->pk, sizeof(key->pk), &st, err);
}

void cr_key_public_of(const struct cr_secret_key *key, struct cr_public_key *pub)
{
	crypto_sign_ed25519_sk_to_pk(pub->pk, key->sk);
}

const char *cr_key_fingerprint(const struct cr_public_key *pub, char out[CR_KEY_FPR_HEX])
{
	unsigned char h[crypto_generichash_BYTES_MIN];

	crypto_generichash(h, sizeof(h), pub->pk, sizeof(pub->pk), NULL, 0);
	sodium_bin2hex(out, CR_KEY_FPR_HEX, h, (CR_KEY_FPR_HEX - 1) / 2);
	return out;
}

void cr_key_wipe(struct cr_secret_key *key)
{
	sodium_memzero(key->sk, sizeof(key->sk));
}

/* --- image keys ------------------------------------------------------------ */

int cr_image_key_generate(const char *path, cr_error_t *err)
{
	struct cr_image_key key;
	int ret;

	if (cr_sodium_ready(err) < 0)
		return -1;
	crypto_aead_xchacha20poly1305_ietf_keygen(key.k);
	ret = write_key_file(path, 0600, IMAGE_TAG, key.k, sizeof(key.k), err);
	cr_image_key_wipe(&key);
	return ret;
}

int cr_image_key_load(const char *path, struct cr_image_key *key, cr_error_t *err)
{
	return load_private_key(path, IMAGE_TAG, key->k, sizeof(key->k), err);
}

void cr_image_key_wipe(struct cr_image_key *key)
{
	sodium_memzero(key->k, sizeof(key->k));
}
