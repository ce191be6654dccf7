/* Field-level mutation of one message image of a dump, for t_fields:
 *
 *   mutate_field DIR FILE INDEX [FIELD]
 *
 * Decodes DIR/FILE with its kind's descriptor, applies mutation number
 * INDEX (0, 1, ...) to one field of one message, and writes the image
 * back through the image API, so that its framing and checksum are valid
 * and only the value is wrong.  Prints what it changed.  Exit 0: done; 3:
 * INDEX is past the last mutation (the count is printed); 1: an error.
 *
 * The mutations, walked in a fixed order over every field of every
 * message, nested ones included (of a repeated field, its first and last
 * element):
 *   numbers     0, 1, all ones, the largest and the smallest of the type,
 *               the dumped value + 1
 *   bools       the other value
 *   enums       0 and a value no enum has
 *   strings     "", "../../../x", 3000 characters
 *   bytes       none, one byte short, one byte 0xff
 *   repeated    one element fewer
 *   optional    absent (a message or a value that was present)
 *
 * With FIELD, only the mutations of fields of that name count, of every
 * element of a repeated message field, and an optional number or bool of
 * that name that is absent is also made present, as 1 (true). */
#include "img/dir.h"
#include "img/dumpid.h"
#include "img/kinds.h"
#include "img/msgs.h"
#include "inventory.pb-c.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMS_WALKED 2   /* of a repeated message field: the first and the last */

struct walk {
	const char *only; /* FIELD, or NULL */
	const char *field;/* the name of the field being walked */
	long target;      /* the mutation to apply */
	long n;           /* mutations seen so far */
	char path[512];   /* of the field being walked */
	char done[768];   /* what was changed */
};

static char long_string[3001];

/* Counts one mutation; true if it is the one to apply. */
static bool hit(struct walk *w)
{
	if (w->only != NULL && (w->field == NULL || strcmp(w->field, w->only) != 0))
		return false;
	return w->n++ == w->target;
}

static void *field_at(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->offset;
}

static size_t *count_of(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (size_t *)((char *)m + f->quantifier_offset);
}

/* Mutations of one scalar value at p. */
static void scalar(struct walk *w, const ProtobufCFieldDescriptor *f, void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: {
		int32_t v[] = { 0, 1, -1, INT32_MAX, INT32_MIN, *(int32_t *)p + 1 };

		for (size_t i = 0; i < 6; i++)
			if (hit(w)) {
				*(int32_t *)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = %" PRId32, w->path, v[i]);
			}
		break;
	}
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: {
		uint32_t v[] = { 0, 1, UINT32_MAX, 0x80000000u, 0x7fffffffu, *(uint32_t *)p + 1 };

		for (size_t i = 0; i < 6; i++)
			if (hit(w)) {
				*(uint32_t *)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = %" PRIu32, w->path, v[i]);
			}
		break;
	}
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v[] = { 0, 1, -1, INT64_MAX, INT64_MIN, *(int64_t *)p + 1 };

		for (size_t i = 0; i < 6; i++)
			if (hit(w)) {
				*(int64_t *)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = %" PRId64, w->path, v[i]);
			}
		break;
	}
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v[] = { 0, 1, UINT64_MAX, UINT64_C(1) << 63, UINT64_C(0x00007ffffffff000), *(uint64_t *)p + 1 };

		for (size_t i = 0; i < 6; i++)
			if (hit(w)) {
				*(uint64_t *)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = %" PRIu64, w->path, v[i]);
			}
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (hit(w)) {
			*(protobuf_c_boolean *)p = !*(protobuf_c_boolean *)p;
			snprintf(w->done, sizeof(w->done), "%s = %d", w->path, *(protobuf_c_boolean *)p);
		}
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v[] = { 0, 12345 };

		for (size_t i = 0; i < 2; i++)
			if (hit(w)) {
				*(int *)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = %d", w->path, v[i]);
			}
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *v[] = { "", "../../../x", long_string };

		for (size_t i = 0; i < 3; i++)
			if (hit(w)) {
				*(char **)p = v[i];
				snprintf(w->done, sizeof(w->done), "%s = \"%.20s\"%s", w->path, v[i],
					 strlen(v[i]) > 20 ? "..." : "");
			}
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *b = p;
		static uint8_t ff = 0xff;

		if (hit(w)) {
			b->len = 0;
			snprintf(w->done, sizeof(w->done), "%s = no bytes", w->path);
		}
		if (b->len > 0 && hit(w)) {
			b->len--;
			snprintf(w->done, sizeof(w->done), "%s = one byte short (%zu)", w->path, b->len);
		}
		if (hit(w)) {
			b->data = &ff;
			b->len = 1;
			snprintf(w->done, sizeof(w->done), "%s = one byte 0xff", w->path);
		}
		break;
	}
	default:
		break;
	}
}

static size_t scalar_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static void message(struct walk *w, ProtobufCMessage *m);

static void with_path(struct walk *w, const char *fmt, const char *name, size_t i, void (*fn)(struct walk *, void *),
		      void *arg)
{
	size_t len = strlen(w->path);

	snprintf(w->path + len, sizeof(w->path) - len, fmt, name, i);
	fn(w, arg);
	w->path[len] = '\0';
}

struct field_ref {
	ProtobufCMessage *m;
	const ProtobufCFieldDescriptor *f;
	void *p;
};

static void walk_value(struct walk *w, void *arg)
{
	struct field_ref *r = arg;

	if (r->f->type == PROTOBUF_C_TYPE_MESSAGE) {
		if (*(ProtobufCMessage **)r->p != NULL)
			message(w, *(ProtobufCMessage **)r->p);
		return;
	}
	scalar(w, r->f, r->p);
}

static void repeated(struct walk *w, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	size_t *n = count_of(m, f);
	char *base = *(char **)field_at(m, f);

	if (*n > 0 && hit(w)) {
		(*n)--;
		snprintf(w->done, sizeof(w->done), "%s%s: one element fewer (%zu)", w->path, f->name, *n);
		return;
	}
	if (w->only != NULL) {   /* every element */
		for (size_t i = 0; i < *n; i++) {
			struct field_ref r = { m, f, base + i * scalar_size(f) };

			w->field = f->name;
			with_path(w, "%s[%zu].", f->name, i, walk_value, &r);
		}
		return;
	}
	for (size_t k = 0; k < *n && k < ELEMS_WALKED; k++) {
		size_t i = k == 0 ? 0 : *n - 1;
		struct field_ref r = { m, f, base + i * scalar_size(f) };

		if (k == 1 && *n == 1)
			break;
		w->field = f->name;
		with_path(w, "%s[%zu].", f->name, i, walk_value, &r);
	}
}

/* With FIELD: an absent optional number or bool of that name, made 1. */
static void optional_present(struct walk *w, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	void *p = field_at(m, f);

	if (w->only == NULL || f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING ||
	    f->type == PROTOBUF_C_TYPE_BYTES || f->quantifier_offset == 0 || !hit(w))
		return;
	*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	if (f->type == PROTOBUF_C_TYPE_BOOL)
		*(protobuf_c_boolean *)p = 1;
	else if (scalar_size(f) == 8)
		*(uint64_t *)p = 1;
	else
		*(uint32_t *)p = 1;
	snprintf(w->done, sizeof(w->done), "%s%s: present, 1", w->path, f->name);
}

static void optional_absent(struct walk *w, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		if (*(void **)field_at(m, f) != NULL && hit(w)) {
			*(void **)field_at(m, f) = NULL;
			snprintf(w->done, sizeof(w->done), "%s%s: absent", w->path, f->name);
		}
		return;
	}
	if (f->type == PROTOBUF_C_TYPE_STRING || f->quantifier_offset == 0)
		return;
	if (*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) && hit(w)) {
		*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 0;
		snprintf(w->done, sizeof(w->done), "%s%s: absent", w->path, f->name);
	}
}

static void one_field(struct walk *w, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	struct field_ref r = { m, f, field_at(m, f) };

	w->field = f->name;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		repeated(w, m, f);
		return;
	}
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		bool present = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING
				       ? *(void **)r.p != NULL
				       : *(protobuf_c_boolean *)((char *)m + f->quantifier_offset);

		optional_absent(w, m, f);
		if (!present) {
			optional_present(w, m, f);
			return;
		}
	}
	w->field = f->name;
	with_path(w, "%s%.0zu.", f->name, 0, walk_value, &r);
}

static void message(struct walk *w, ProtobufCMessage *m)
{
	for (unsigned i = 0; i < m->descriptor->n_fields; i++)
		one_field(w, m, &m->descriptor->fields[i]);
}

/* The dump's id, from its inventory, bound to dirfd: the image written
 * back carries it, as every image of the dump does. */
static int bind_dump_id(int dirfd, cr_error_t *err)
{
	struct img_msgs inv;
	struct cr_dump_id id;
	const InventoryEntry *e;
	int r;

	if (img_load(dirfd, CR_IMG_INVENTORY, 0, NULL, &inv, err) < 0)
		return -1;
	e = (const InventoryEntry *)inv.v[0];
	r = cr_dump_id_from(e->has_dump_id ? e->dump_id.data : NULL, e->dump_id.len, &id, "inventory.img", err);
	img_msgs_free(&inv);
	return r < 0 ? -1 : img_dir_bind_id(dirfd, &id, err);
}

int main(int argc, char **argv)
{
	const struct img_kind *k;
	struct img_msgs msgs;
	struct walk w = { 0 };
	cr_error_t err = NULL;
	pid_t pid = 0;
	int dirfd;

	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: mutate_field DIR FILE INDEX [FIELD]\n");
		return 1;
	}
	w.only = argc == 5 ? argv[4] : NULL;
	memset(long_string, 'a', sizeof(long_string) - 1);
	w.target = atol(argv[3]);
	k = img_kind_of_name(argv[2], &pid);
	dirfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k == NULL || k->desc == NULL || dirfd < 0) {
		fprintf(stderr, "mutate_field: %s is no message image in %s\n", argv[2], argv[1]);
		return 1;
	}
	if (bind_dump_id(dirfd, &err) < 0 || img_load(dirfd, k->kind, pid, NULL, &msgs, &err) < 0) {
		fprintf(stderr, "mutate_field: %s\n", err->msg);
		return 1;
	}
	for (size_t i = 0; i < msgs.n && w.n <= w.target; i++) {
		snprintf(w.path, sizeof(w.path), "[%zu].", i);
		message(&w, msgs.v[i]);
	}
	if (w.target >= w.n) {
		printf("%ld\n", w.n);
		return 3;
	}
	if (unlinkat(dirfd, argv[2], 0) < 0 || img_store(dirfd, k->kind, pid, msgs.v, msgs.n, &err) < 0) {
		fprintf(stderr, "mutate_field: write %s: %s\n", argv[2], err ? err->msg : "unlink");
		return 1;
	}
	printf("%s %s\n", argv[2], w.done);
	return 0;
}
