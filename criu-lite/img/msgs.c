#include "img/msgs.h"
#include "img/image.h"
#include "os/xalloc.h"

#include <stdlib.h>

int img_store(int dirfd, uint32_t kind, pid_t pid, ProtobufCMessage *const *v, size_t n, cr_error_t *err)
{
	char name[IMG_NAME_MAX];
	struct cr_img *img;

	if (cr_img_create(dirfd, img_name(name, kind, pid), kind, &img, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (cr_img_write_msg(img, v[i], err) < 0) {
			cr_img_abort(img);
			return -1;
		}
	}
	return cr_img_finish(img, err);
}

static void *arena_pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void arena_pb_free(void *data, void *p)
{
	(void)data;
	(void)p;   /* freed with the arena */
}

/* The message array moves into the arena too, once its length is known. */
static void msgs_into_arena(struct arena *a, struct img_msgs *m)
{
	ProtobufCMessage **v = m->v;

	m->v = arena_memdup(a, v, m->n * sizeof(*v));
	m->in_arena = true;
	free(v);
}

int img_load(int dirfd, uint32_t kind, pid_t pid, struct arena *a, struct img_msgs *out, cr_error_t *err)
{
	const struct img_kind *k = img_kind(kind);
	ProtobufCAllocator alloc = { .alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = a };
	char name[IMG_NAME_MAX];
	struct cr_img *img;
	ProtobufCMessage *m;
	size_t cap = 0;
	int r;

	*out = (struct img_msgs){ 0 };
	if (cr_img_open(dirfd, img_name(name, kind, pid), kind, &img, err) < 0)
		return -1;
	while ((r = cr_img_read_msg_with(img, k->desc, a ? &alloc : NULL, &m, err)) == 1) {
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			out->v = xreallocarray(out->v, cap, sizeof(*out->v));
		}
		out->v[out->n++] = m;
	}
	cr_img_close(img);
	if (a != NULL)
		msgs_into_arena(a, out);
	if (r == 0 && (k->shape & IMG_ONE) && out->n != 1)
		return cr_error(err, 0, "%s: %s %s message in the image", name, out->n ? "more than one" : "no",
				k->desc->name);
	return r;
}

void img_msgs_free(struct img_msgs *m)
{
	if (m->in_arena) {
		*m = (struct img_msgs){ 0 };
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		protobuf_c_message_free_unpacked(m->v[i], NULL);
	free(m->v);
	*m = (struct img_msgs){ 0 };
}
