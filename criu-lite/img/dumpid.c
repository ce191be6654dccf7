/* The dump's identity and the directory it is bound to (see dumpid.h). */
#include "img/dumpid.h"
#include "os/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

int cr_dump_id_new(struct cr_dump_id *id, cr_error_t *err)
{
	size_t got = 0;

	while (got < sizeof(id->b)) {
		ssize_t n = getrandom(id->b + got, sizeof(id->b) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cr_error(err, errno, "getrandom (the dump's id)");
		got += (size_t)n;
	}
	return 0;
}

const char *cr_dump_id_hex(const struct cr_dump_id *id, char out[CR_DUMP_ID_HEX])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < CR_DUMP_ID_SIZE; i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 0xf];
	}
	out[2 * CR_DUMP_ID_SIZE] = '\0';
	return out;
}

bool cr_dump_id_equal(const struct cr_dump_id *a, const struct cr_dump_id *b)
{
	return memcmp(a->b, b->b, CR_DUMP_ID_SIZE) == 0;
}

int cr_dump_id_from(const void *p, size_t len, struct cr_dump_id *id, const char *name, cr_error_t *err)
{
	static const struct cr_dump_id zero;

	if (p == NULL || len != CR_DUMP_ID_SIZE)
		return cr_error(err, 0, "%s: the dump id is %zu bytes, not %d", name, p == NULL ? 0 : len,
				CR_DUMP_ID_SIZE);
	memcpy(id->b, p, CR_DUMP_ID_SIZE);
	if (cr_dump_id_equal(id, &zero))
		return cr_error(err, 0, "%s: the dump id is all zero (no dump cr made)", name);
	return 0;
}

/* --- the bindings ---------------------------------------------------------- */

struct binding {
	dev_t dev;
	ino_t ino;
	struct cr_dump_id id;
};

static struct {
	pthread_mutex_t lock;
	struct binding *v;
	size_t n;
} bound = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int dir_stat(int dirfd, struct stat *st)
{
	return fstatat(dirfd, "", st, AT_EMPTY_PATH);
}

/* The binding of st's directory, or NULL; call with the lock held. */
static struct binding *find(const struct stat *st)
{
	for (size_t i = 0; i < bound.n; i++)
		if (bound.v[i].dev == st->st_dev && bound.v[i].ino == st->st_ino)
			return &bound.v[i];
	return NULL;
}

int img_dir_bind_id(int dirfd, const struct cr_dump_id *id, cr_error_t *err)
{
	struct binding *b;
	struct stat st;

	if (dir_stat(dirfd, &st) < 0)
		return cr_error(err, errno, "stat the image directory");
	pthread_mutex_lock(&bound.lock);
	b = find(&st);
	if (b == NULL) {
		bound.v = xreallocarray(bound.v, bound.n + 1, sizeof(*bound.v));
		b = &bound.v[bound.n++];
		b->dev = st.st_dev;
		b->ino = st.st_ino;
	}
	b->id = *id;
	pthread_mutex_unlock(&bound.lock);
	return 0;
}

bool img_dir_bound_id(int dirfd, struct cr_dump_id *id)
{
	struct binding *b;
	struct stat st;

	if (dir_stat(dirfd, &st) < 0)
		return false;
	pthread_mutex_lock(&bound.lock);
	b = find(&st);
	if (b != NULL)
		*id = b->id;
	pthread_mutex_unlock(&bound.lock);
	return b != NULL;
}

void img_dir_unbind_id(int dirfd)
{
	struct binding *b;
	struct stat st;

	if (dir_stat(dirfd, &st) < 0)
		return;
	pthread_mutex_lock(&bound.lock);
	b = find(&st);
	if (b != NULL)
		*b = bound.v[--bound.n];
	if (bound.n == 0) {
		free(bound.v);
		bound.v = NULL;
	}
	pthread_mutex_unlock(&bound.lock);
}
