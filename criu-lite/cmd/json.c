/* JSON output and protobuf-c reflection (the mapping is described in json.h).
 *
 * A message is walked through its ProtobufCMessageDescriptor: for each
 * field, the label says where its presence lives (always for required, a
 * has_ flag or a non-NULL pointer for optional, the oneof case for oneof
 * members, a count for repeated) and the type says how to read the value at
 * the field's offset. */
#include "cmd/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

void json_init(struct json_writer *w, FILE *f, bool pretty)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->pretty = pretty;
}

static bool *members_at(struct json_writer *w, int depth)
{
	return &w->has_members[depth < JSON_MAX_DEPTH ? depth : JSON_MAX_DEPTH - 1];
}

static void newline_indent(struct json_writer *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Before a value or a key: the comma and the line break it needs. */
static void value_prefix(struct json_writer *w)
{
	bool *has;

	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->depth == 0)
		return;
	has = members_at(w, w->depth);
	if (*has)
		fputc(',', w->f);
	*has = true;
	newline_indent(w);
}

static void container_begin(struct json_writer *w, char open)
{
	value_prefix(w);
	fputc(open, w->f);
	w->depth++;
	*members_at(w, w->depth) = false;
}

static void container_end(struct json_writer *w, char close)
{
	bool had = *members_at(w, w->depth);

	w->depth--;
	if (had)
		newline_indent(w);
	fputc(close, w->f);
}

void json_object_begin(struct json_writer *w)
{
	container_begin(w, '{');
}

void json_object_end(struct json_writer *w)
{
	container_end(w, '}');
}

void json_array_begin(struct json_writer *w)
{
	container_begin(w, '[');
}

void json_array_end(struct json_writer *w)
{
	container_end(w, ']');
}

/* --- strings ------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp > 0x10ffff)
		return 0;
	return len;
}

static void put_escaped_byte(FILE *f, unsigned char c)
{
	switch (c) {
	case '"': fputs("\\\"", f); break;
	case '\\': fputs("\\\\", f); break;
	case '\b': fputs("\\b", f); break;
	case '\f': fputs("\\f", f); break;
	case '\n': fputs("\\n", f); break;
	case '\r': fputs("\\r", f); break;
	case '\t': fputs("\\t", f); break;
	default:
		if (c < 0x20 || c >= 0x80)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void put_string(FILE *f, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	fputc('"', f);
	while (i < len) {
		size_t n = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, len - i);

		if (n > 1) {
			fwrite(p + i, 1, n, f);
			i += n;
		} else {
			put_escaped_byte(f, p[i]);
			i++;
		}
	}
	fputc('"', f);
}

void json_key(struct json_writer *w, const char *key)
{
	value_prefix(w);
	put_string(w->f, key, strlen(key));
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

void json_string_len(struct json_writer *w, const char *s, size_t len)
{
	value_prefix(w);
	put_string(w->f, s, len);
}

void json_string(struct json_writer *w, const char *s)
{
	if (s == NULL) {
		json_null(w);
		return;
	}
	json_string_len(w, s, strlen(s));
}

/* --- scalars --------------------------------------------------------------- */

void json_uint(struct json_writer *w, uint64_t v)
{
	value_prefix(w);
	fprintf(w->f, "%" PRIu64, v);
}

void json_int(struct json_writer *w, int64_t v)
{
	value_prefix(w);
	fprintf(w->f, "%" PRId64, v);
}

void json_double(struct json_writer *w, double v)
{
	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	value_prefix(w);
	fprintf(w->f, "%.17g", v);
}

void json_bool(struct json_writer *w, bool v)
{
	value_prefix(w);
	fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w)
{
	value_prefix(w);
	fputs("null", w->f);
}

void json_hex(struct json_writer *w, const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = data;

	value_prefix(w);
	fputc('"', w->f);
	for (size_t i = 0; i < len; i++) {
		fputc(digits[p[i] >> 4], w->f);
		fputc(digits[p[i] & 15], w->f);
	}
	fputc('"', w->f);
}

void json_kv_string(struct json_writer *w, const char *key, const char *s)
{
	json_key(w, key);
	json_string(w, s);
}

void json_kv_uint(struct json_writer *w, const char *key, uint64_t v)
{
	json_key(w, key);
	json_uint(w, v);
}

void json_kv_bool(struct json_writer *w, const char *key, bool v)
{
	json_key(w, key);
	json_bool(w, v);
}

/* --- protobuf-c messages ------------------------------------------------------- */

const char *json_enum_name(const ProtobufCEnumDescriptor *desc, int value)
{
	const ProtobufCEnumValue *ev = desc != NULL ? protobuf_c_enum_descriptor_get_value(desc, value) : NULL;

	return ev != NULL ? ev->name : NULL;
}

/* Bytes one element of a repeated field of this type takes in its array. */
static size_t element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return sizeof(uint32_t);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return sizeof(uint64_t);
	case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	}
	return 0;
}

static void enum_value(struct json_writer *w, const ProtobufCEnumDescriptor *desc, int value)
{
	const char *name = json_enum_name(desc, value);

	if (name != NULL)
		json_string(w, name);
	else
		json_int(w, value);
}

static void nested_message(struct json_writer *w, const ProtobufCMessage *msg)
{
	/* Each level of message takes one container level (two for a repeated field). */
	if (w->depth >= JSON_MAX_DEPTH - 2) {
		w->too_deep = true;
		json_null(w);
		return;
	}
	json_message(w, msg);
}

/* The value of one field (or one element of a repeated one) stored at p. */
static void field_value(struct json_writer *w, const ProtobufCFieldDescriptor *fd, const void *p)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: json_int(w, *(const int32_t *)p); break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: json_int(w, *(const int64_t *)p); break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: json_uint(w, *(const uint32_t *)p); break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: json_uint(w, *(const uint64_t *)p); break;
	case PROTOBUF_C_TYPE_FLOAT: json_double(w, *(const float *)p); break;
	case PROTOBUF_C_TYPE_DOUBLE: json_double(w, *(const double *)p); break;
	case PROTOBUF_C_TYPE_BOOL: json_bool(w, *(const protobuf_c_boolean *)p != 0); break;
	case PROTOBUF_C_TYPE_ENUM: enum_value(w, fd->descriptor, *(const int *)p); break;
	case PROTOBUF_C_TYPE_STRING: json_string(w, *(char *const *)p); break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;

		json_hex(w, b->data, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: nested_message(w, *(ProtobufCMessage *const *)p); break;
	}
}

static bool field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)msg;

	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + fd->quantifier_offset) == fd->id;
	if (fd->label != PROTOBUF_C_LABEL_OPTIONAL)
		return true;   /* required, and proto3 fields without presence */
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)(base + fd->offset) != NULL;
	return *(const protobuf_c_boolean *)(base + fd->quantifier_offset) != 0;
}

static void repeated_field(struct json_writer *w, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)msg;
	size_t n = *(const size_t *)(base + fd->quantifier_offset);
	const char *arr = *(const char *const *)(base + fd->offset);
	size_t size = element_size(fd->type);

	json_array_begin(w);
	for (size_t i = 0; i < n && arr != NULL; i++)
		field_value(w, fd, arr + i * size);
	json_array_end(w);
}

static void unknown_fields(struct json_writer *w, const ProtobufCMessage *msg)
{
	json_key(w, "_unknown_fields");
	json_array_begin(w);
	for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *u = &msg->unknown_fields[i];

		json_object_begin(w);
		json_kv_uint(w, "tag", u->tag);
		json_kv_uint(w, "wire_type", u->wire_type);
		json_key(w, "data");
		json_hex(w, u->data, u->len);
		json_object_end(w);
	}
	json_array_end(w);
}

void json_message(struct json_writer *w, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc;

	if (msg == NULL || msg->descriptor == NULL) {
		json_null(w);
		return;
	}
	desc = msg->descriptor;
	json_object_begin(w);
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &desc->fields[i];

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			json_key(w, fd->name);
			repeated_field(w, msg, fd);
		} else if (field_is_set(msg, fd)) {
			json_key(w, fd->name);
			field_value(w, fd, (const char *)msg + fd->offset);
		}
	}
	if (msg->n_unknown_fields > 0)
		unknown_fields(w, msg);
	json_object_end(w);
}

int json_finish(struct json_writer *w, cr_error_t *err)
{
	if (w->pretty)
		fputc('\n', w->f);
	if (fflush(w->f) != 0 || ferror(w->f))
		return cr_error(err, errno, "write JSON output");
	if (w->too_deep)
		return cr_error(err, 0, "a message nests deeper than %d levels", JSON_MAX_DEPTH);
	return 0;
}
