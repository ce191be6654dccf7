/* Encrypted images: records sealed and opened, a writer that seals, and a
 * view that reads a file, encrypted or not, as its plain image (crypt.h). */
#include "img/crypt.h"
#include "img/bytes.h"
#include "img/dir.h"
#include "os/util.h"
#include "os/xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define AD_CONTEXT     "cr image record v6"   /* with its NUL */
#define KEY_ID_CONTEXT "cr image key id v1"
#define RECORD_STORED  (CR_CRYPT_RECORD + CR_CRYPT_TAG)
#define AD_MAX         (sizeof(AD_CONTEXT) + CR_CRYPT_CLEAR + 8 + 1 + CR_CRYPT_NAME_MAX)
#define IMG_MAGIC      0x4d495243u            /* CR_IMG_MAGIC (image.h) */
#define FLAGS_OFFSET   8

/* --- the key of this process ----------------------------------------------- */

static struct {
	pthread_mutex_t lock;
	bool active;
	struct cr_image_key key;
} process_key = { .lock = PTHREAD_MUTEX_INITIALIZER };

void img_crypt_use(const struct cr_image_key *key)
{
	pthread_mutex_lock(&process_key.lock);
	process_key.active = key != NULL;
	if (key != NULL)
		process_key.key = *key;
	else
		cr_image_key_wipe(&process_key.key);
	pthread_mutex_unlock(&process_key.lock);
}

/* The key in use, copied to *key: false when there is none. */
static bool key_in_use(struct cr_image_key *key)
{
	bool active;

	pthread_mutex_lock(&process_key.lock);
	active = process_key.active;
	if (active)
		*key = process_key.key;
	pthread_mutex_unlock(&process_key.lock);
	return active;
}

int img_crypt_use_file(const char *path, cr_error_t *err)
{
	struct cr_image_key key;

	if (cr_image_key_load(path, &key, err) < 0)
		return -1;
	img_crypt_use(&key);
	cr_image_key_wipe(&key);
	return 0;
}

bool img_crypt_active(void)
{
	struct cr_image_key key;
	bool active = key_in_use(&key);

	cr_image_key_wipe(&key);
	return active;
}

static void key_id(const struct cr_image_key *key, unsigned char out[CR_CRYPT_KEY_ID])
{
	crypto_generichash(out, CR_CRYPT_KEY_ID, (const unsigned char *)KEY_ID_CONTEXT, sizeof(KEY_ID_CONTEXT) - 1,
			   key->k, sizeof(key->k));
}

static const char *key_id_hex(const unsigned char id[CR_CRYPT_KEY_ID], char out[CR_CRYPT_KEY_ID_HEX])
{
	return sodium_bin2hex(out, CR_CRYPT_KEY_ID_HEX, id, (CR_CRYPT_KEY_ID_HEX - 1) / 2);
}

const char *cr_image_key_id_hex(const struct cr_image_key *key, char out[CR_CRYPT_KEY_ID_HEX])
{
	unsigned char id[CR_CRYPT_KEY_ID];

	key_id(key, id);
	return key_id_hex(id, out);
}

/* --- records ------------------------------------------------------------------- */

void img_crypt_clear_new(unsigned char clear[CR_CRYPT_CLEAR], const unsigned char header[CR_CRYPT_HEADER],
			 const struct cr_image_key *key)
{
	memcpy(clear, header, CR_CRYPT_HEADER);
	randombytes_buf(clear + CR_CRYPT_HEADER, CR_CRYPT_SALT);
	key_id(key, clear + CR_CRYPT_HEADER + CR_CRYPT_SALT);
}

static void record_nonce(unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES],
			 const unsigned char *clear, uint64_t index)
{
	memcpy(nonce, clear + CR_CRYPT_HEADER, CR_CRYPT_SALT);
	put_le64(nonce + CR_CRYPT_SALT, index);
}

/* The additional data of record index; returns its length. */
static size_t record_ad(unsigned char ad[AD_MAX], uint64_t index, bool last, const unsigned char *clear,
			const char *name)
{
	size_t name_len = strnlen(name, CR_CRYPT_NAME_MAX), n = 0;

	memcpy(ad, AD_CONTEXT, sizeof(AD_CONTEXT));
	n += sizeof(AD_CONTEXT);
	memcpy(ad + n, clear, CR_CRYPT_CLEAR);
	n += CR_CRYPT_CLEAR;
	put_le64(ad + n, index);
	n += 8;
	ad[n++] = last ? 1 : 0;
	memcpy(ad + n, name, name_len);
	return n + name_len;
}

void img_crypt_seal(unsigned char *rec, size_t len, uint64_t index, bool last, const unsigned char *clear,
		    const char *name, const struct cr_image_key *key)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], ad[AD_MAX];
	size_t ad_len = record_ad(ad, index, last, clear, name);

	record_nonce(nonce, clear, index);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(rec + CR_CRYPT_TAG, rec, NULL, rec + CR_CRYPT_TAG, len,
							    ad, ad_len, NULL, nonce, key->k);
}

int img_crypt_open_record(unsigned char *rec, size_t len, uint64_t index, bool last, const unsigned char *clear,
			  const char *name, const struct cr_image_key *key)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], ad[AD_MAX];
	size_t ad_len = record_ad(ad, index, last, clear, name);

	record_nonce(nonce, clear, index);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(rec + CR_CRYPT_TAG, NULL, rec + CR_CRYPT_TAG, len,
								   rec, ad, ad_len, nonce, key->k) == 0 ? 0 : -1;
}

int64_t img_crypt_plain_size(uint64_t stored)
{
	uint64_t n, last;

	if (stored == 0 || stored > (uint64_t)INT64_MAX)
		return -1;
	n = (stored + RECORD_STORED - 1) / RECORD_STORED;
	last = stored - (n - 1) * RECORD_STORED;
	if (last < CR_CRYPT_TAG)
		return -1;
	return (int64_t)((n - 1) * CR_CRYPT_RECORD + last - CR_CRYPT_TAG);
}

/* --- writing ------------------------------------------------------------------------ */

struct img_sealer {
	int fd;
	char *name;
	struct cr_image_key key;
	unsigned char clear[CR_CRYPT_CLEAR];
	uint64_t index;          /* of the record being filled */
	size_t have;             /* its plain bytes so far */
	unsigned char rec[RECORD_STORED];
};

static int sealer_emit(struct img_sealer *s, bool last)
{
	cr_error_t err = NULL;
	int status;

	img_crypt_seal(s->rec, s->have, s->index, last, s->clear, s->name, &s->key);
	if (write_all(s->fd, s->rec, CR_CRYPT_TAG + s->have, &err) == 0) {
		s->index++;
		s->have = 0;
		return 0;
	}
	status = err->status != 0 ? err->status : EIO;
	cr_error_release(&err);
	return status;
}

int img_sealer_open(int fd, const char *name, const unsigned char header[CR_CRYPT_HEADER],
		    struct img_sealer **out, cr_error_t *err)
{
	struct img_sealer *s;

	*out = NULL;
	if (strlen(name) > CR_CRYPT_NAME_MAX)
		return cr_error(err, ENAMETOOLONG, "%s: an encrypted image's name has at most %u bytes", name,
				CR_CRYPT_NAME_MAX);
	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->name = xstrdup(name);
	if (!key_in_use(&s->key)) {
		img_sealer_free(s);
		return cr_error(err, EINVAL, "%s: no image key to encrypt with", name);
	}
	img_crypt_clear_new(s->clear, header, &s->key);
	if (write_all(fd, s->clear, sizeof(s->clear), err) < 0) {
		img_sealer_free(s);
		return cr_error_wrap(err, "%s", name);
	}
	*out = s;
	return 0;
}

int img_sealer_write(struct img_sealer *s, const void *p, size_t len)
{
	const unsigned char *src = p;

	while (len > 0) {
		size_t n;
		int status;

		/* A full record is sealed once more bytes come: only then is
		 * it known not to be the last. */
		if (s->have == CR_CRYPT_RECORD && (status = sealer_emit(s, false)) != 0)
			return status;
		n = min_size(CR_CRYPT_RECORD - s->have, len);
		memcpy(s->rec + CR_CRYPT_TAG + s->have, src, n);
		s->have += n;
		src += n;
		len -= n;
	}
	return 0;
}

int img_sealer_finish(struct img_sealer *s)
{
	return sealer_emit(s, true);
}

void img_sealer_free(struct img_sealer *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->rec, sizeof(s->rec));
	cr_image_key_wipe(&s->key);
	free(s->name);
	free(s);
}

/* --- reading ------------------------------------------------------------------------- */

struct img_crypt {
	char *name;
	struct cr_image_key key;
	unsigned char clear[CR_CRYPT_CLEAR];
	uint64_t n_records;
	size_t last_len;         /* plain bytes of the last record */
};

/* Reads len bytes from *off on, advancing *off: 0, an errno value, or
 * ENODATA when the file ends first. */
static int pread_all(int fd, void *buf, size_t len, uint64_t *off)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)*off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENODATA;
		p += n;
		*off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static size_t record_len(const struct img_crypt *c, uint64_t i)
{
	return i + 1 == c->n_records ? c->last_len : CR_CRYPT_RECORD;
}

/* Record i, opened: its plain bytes go to plain (room for record_len). */
static int read_record(const struct img_view *v, uint64_t i, unsigned char *plain)
{
	const struct img_crypt *c = v->crypt;
	size_t len = record_len(c, i);
	unsigned char tag[CR_CRYPT_TAG];
	uint64_t off = CR_CRYPT_CLEAR + i * RECORD_STORED;
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], ad[AD_MAX];
	size_t ad_len = record_ad(ad, i, i + 1 == c->n_records, c->clear, c->name);
	int status = pread_all(v->fd, tag, sizeof(tag), &off);

	if (status == 0)
		status = pread_all(v->fd, plain, len, &off);
	if (status != 0)
		return status;
	record_nonce(nonce, c->clear, i);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(plain, NULL, plain, len, tag, ad, ad_len, nonce,
								c->key.k) != 0)
		return EBADMSG;
	return 0;
}

/* The part of the plain image at *off that record holds: n bytes. */
static int crypt_piece(const struct img_view *v, unsigned char *dst, size_t len, uint64_t off, size_t *n,
		       unsigned char **scratch)
{
	uint64_t rel = off - CR_CRYPT_HEADER, i = rel / CR_CRYPT_RECORD;
	size_t within = (size_t)(rel % CR_CRYPT_RECORD), rec_len = record_len(v->crypt, i);
	int status;

	*n = min_size(rec_len - within, len);
	if (within == 0 && *n == rec_len)
		return read_record(v, i, dst);
	if (*scratch == NULL)
		*scratch = xmalloc(CR_CRYPT_RECORD);
	status = read_record(v, i, *scratch);
	if (status == 0)
		memcpy(dst, *scratch + within, *n);
	return status;
}

static int crypt_pread(const struct img_view *v, unsigned char *dst, size_t len, uint64_t *off)
{
	cleanup_free unsigned char *scratch = NULL;

	while (len > 0) {
		size_t n;
		int status = 0;

		if (*off >= v->size)
			return ENODATA;
		if (*off < CR_CRYPT_HEADER) {
			n = min_size(CR_CRYPT_HEADER - (size_t)*off, len);
			memcpy(dst, v->crypt->clear + *off, n);
		} else {
			status = crypt_piece(v, dst, len, *off, &n, &scratch);
		}
		if (status != 0)
			return status;
		dst += n;
		*off += n;
		len -= n;
	}
	return 0;
}

int img_view_pread(const struct img_view *v, void *buf, size_t len, uint64_t *off)
{
	if (v->crypt == NULL)
		return pread_all(v->fd, buf, len, off);
	return crypt_pread(v, buf, len, off);
}

static void crypt_free(struct img_crypt *c)
{
	if (c == NULL)
		return;
	cr_image_key_wipe(&c->key);
	free(c->name);
	free(c);
}

void img_view_close(struct img_view *v)
{
	crypt_free(steal_pointer(&v->crypt));
	if (v->fd >= 0)
		close(steal_fd(&v->fd));
}

/* The clear part of an encrypted file, checked against the key in use. */
static int crypt_begin(struct img_view *v, const char *name, struct img_crypt *c, cr_error_t *err)
{
	unsigned char want[CR_CRYPT_KEY_ID];
	char got_hex[CR_CRYPT_KEY_ID_HEX], want_hex[CR_CRYPT_KEY_ID_HEX];
	uint64_t off = 0;
	int64_t plain;

	if (!key_in_use(&c->key))
		return cr_error(err, 0, "%s: encrypted: give its key with --decrypt KEYFILE", name);
	if (v->size < CR_CRYPT_CLEAR || pread_all(v->fd, c->clear, sizeof(c->clear), &off) != 0)
		return cr_error(err, 0, "%s: truncated: %" PRIu64 " bytes, less than an encrypted image's clear part",
				name, v->size);
	key_id(&c->key, want);
	if (sodium_memcmp(want, c->clear + CR_CRYPT_HEADER + CR_CRYPT_SALT, sizeof(want)) != 0)
		return cr_error(err, 0, "%s: encrypted with another key (key id %s; the key given is %s)", name,
				key_id_hex(c->clear + CR_CRYPT_HEADER + CR_CRYPT_SALT, got_hex), key_id_hex(want, want_hex));
	plain = img_crypt_plain_size(v->size - CR_CRYPT_CLEAR);
	if (plain < 0)
		return cr_error(err, 0, "%s: truncated or damaged: %" PRIu64 " bytes of records cannot be whole "
				"records", name, v->size - CR_CRYPT_CLEAR);
	c->n_records = (v->size - CR_CRYPT_CLEAR + RECORD_STORED - 1) / RECORD_STORED;
	c->last_len = (size_t)((uint64_t)plain - (c->n_records - 1) * CR_CRYPT_RECORD);
	v->size = CR_CRYPT_HEADER + (uint64_t)plain;
	return 0;
}

/* The flags of the header at the start of v's file; false when the file
 * is no image (too short, another magic). */
static bool header_flags(const struct img_view *v, uint32_t *flags)
{
	unsigned char h[CR_CRYPT_HEADER];
	uint64_t off = 0;

	if (v->size < sizeof(h) || pread_all(v->fd, h, sizeof(h), &off) != 0 || get_le32(h) != IMG_MAGIC)
		return false;
	*flags = get_le32(h + FLAGS_OFFSET);
	return true;
}

static int view_setup(struct img_view *v, const char *name, cr_error_t *err)
{
	uint32_t flags;
	struct img_crypt *c;

	if (!header_flags(v, &flags))
		return 0;
	if (!(flags & CR_IMG_ENCRYPTED)) {
		if (img_crypt_active())
			return cr_error(err, 0, "%s: not encrypted, but a key was given (--decrypt): an encrypted "
					"dump's images are all encrypted; refused", name);
		return 0;
	}
	if (strlen(name) > CR_CRYPT_NAME_MAX)
		return cr_error(err, ENAMETOOLONG, "%s", name);
	c = v->crypt = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	return crypt_begin(v, name, c, err);
}

int img_view_open(int dirfd, const char *name, struct img_view *v, cr_error_t *err)
{
	struct stat st;

	v->crypt = NULL;
	v->fd = img_dir_open_read(dirfd, name, &st, err);
	if (v->fd < 0)
		return -1;
	v->size = (uint64_t)st.st_size;
	if (view_setup(v, name, err) < 0) {
		img_view_close(v);
		return -1;
	}
	return 0;
}

int img_crypt_probe(int dirfd, const char *name, char out[CR_CRYPT_KEY_ID_HEX], cr_error_t *err)
{
	struct stat st;
	struct img_view v = { .crypt = NULL };
	unsigned char clear[CR_CRYPT_CLEAR];
	uint64_t off = 0;
	uint32_t flags;
	int ret = 0;

	v.fd = img_dir_open_read(dirfd, name, &st, err);
	if (v.fd < 0)
		return -1;
	v.size = (uint64_t)st.st_size;
	if (!header_flags(&v, &flags))
		ret = cr_error(err, 0, "%s: not a cr image", name);
	else if (flags & CR_IMG_ENCRYPTED)
		ret = 1;
	if (ret == 1 && out != NULL) {
		if (pread_all(v.fd, clear, sizeof(clear), &off) == 0)
			key_id_hex(clear + CR_CRYPT_HEADER + CR_CRYPT_SALT, out);
		else
			snprintf(out, CR_CRYPT_KEY_ID_HEX, "?");
	}
	img_view_close(&v);
	return ret;
}
