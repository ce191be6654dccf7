#include "fd/contents.h"
#include "fd/fdshare.h"
#include "os/util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MAX_EXTENTS 65536

/* The next extent of data at or after pos, clipped to size: 1 and
 * [*start, *end), or 0 when only a hole remains. */
static int next_extent(int fd, uint64_t pos, uint64_t size, uint64_t *start, uint64_t *end, cr_error_t *err)
{
	off_t data, hole;

	if (pos >= size)
		return 0;
	data = lseek(fd, (off_t)pos, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO ? 0 : cr_error(err, errno, "SEEK_DATA at %llu", (unsigned long long)pos);
	if ((uint64_t)data >= size)
		return 0;
	hole = lseek(fd, data, SEEK_HOLE);
	if (hole < 0)
		return cr_error(err, errno, "SEEK_HOLE at %lld", (long long)data);
	*start = (uint64_t)data;
	*end = (uint64_t)hole < size ? (uint64_t)hole : size;
	return 1;
}

static int read_extent(struct arena *a, int fd, uint64_t start, uint64_t end, ProtobufCBinaryData *out,
		       cr_error_t *err)
{
	size_t len = (size_t)(end - start), got = 0;
	uint8_t *buf = arena_alloc(a, len);

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(start + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cr_error(err, n < 0 ? errno : 0, "read %zu bytes at %llu", len - got,
					(unsigned long long)(start + got));
		got += (size_t)n;
	}
	out->data = buf;
	out->len = len;
	return 0;
}

/* Room for one more extent (the arena keeps the old arrays). */
static int grow(struct arena *a, struct contents *c, size_t *cap, cr_error_t *err)
{
	size_t bigger = *cap ? *cap * 2 : 16;
	uint64_t *off;
	ProtobufCBinaryData *data;

	if (c->n < *cap)
		return 0;
	if (c->n == MAX_EXTENTS)
		return cr_error(err, 0, "more than %d extents of data", MAX_EXTENTS);
	off = arena_array(a, uint64_t, bigger);
	data = arena_array(a, ProtobufCBinaryData, bigger);
	if (c->n) {
		memcpy(off, c->off, c->n * sizeof(*off));
		memcpy(data, c->data, c->n * sizeof(*data));
	}
	c->off = off;
	c->data = data;
	*cap = bigger;
	return 0;
}

int contents_dump(struct arena *a, int fd, uint64_t size, struct contents *out, cr_error_t *err)
{
	uint64_t pos = 0, start = 0, end = 0, total = 0;
	size_t cap = 0;
	int r;

	*out = (struct contents){ 0 };
	while ((r = next_extent(fd, pos, size, &start, &end, err)) == 1) {
		total += end - start;
		if (total > FDKIND_MAX_DATA)
			return cr_error(err, 0, "more than %u MiB of data; cr keeps at most that much in the image",
					FDKIND_MAX_DATA >> 20);
		if (grow(a, out, &cap, err) < 0)
			return -1;
		out->off[out->n] = start;
		if (read_extent(a, fd, start, end, &out->data[out->n], err) < 0)
			return -1;
		out->n++;
		pos = end;
	}
	return r;
}

int contents_validate(uint64_t size, size_t n_off, const uint64_t *off, size_t n_data,
		      const ProtobufCBinaryData *data, cr_error_t *err)
{
	uint64_t pos = 0;

	if (n_off != n_data)
		return cr_error(err, 0, "%zu offsets for %zu extents", n_off, n_data);
	for (size_t i = 0; i < n_data; i++) {
		if (off[i] < pos || data[i].len > size || off[i] > size - data[i].len)
			return cr_error(err, 0, "extent %zu (%zu bytes at %llu) is out of order or beyond the size "
					"%llu", i, data[i].len, (unsigned long long)off[i], (unsigned long long)size);
		pos = off[i] + data[i].len;
	}
	return 0;
}

static int write_extent(int fd, uint64_t off, const ProtobufCBinaryData *d, cr_error_t *err)
{
	size_t done = 0;

	while (done < d->len) {
		ssize_t n = pwrite(fd, d->data + done, d->len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cr_error(err, n < 0 ? errno : 0, "write %zu bytes at %llu", d->len - done,
					(unsigned long long)(off + done));
		done += (size_t)n;
	}
	return 0;
}

int contents_restore(int fd, uint64_t size, size_t n, const uint64_t *off, const ProtobufCBinaryData *data,
		     cr_error_t *err)
{
	if (ftruncate(fd, (off_t)size) < 0)
		return cr_error(err, errno, "set size %llu", (unsigned long long)size);
	for (size_t i = 0; i < n; i++)
		if (write_extent(fd, off[i], &data[i], err) < 0)
			return -1;
	return 0;
}
