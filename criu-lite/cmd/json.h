/* JSON output: a small streaming writer, and any protobuf-c message as JSON
 * through its descriptor (so new fields of an image appear by themselves).
 *
 * Mapping of a message: an object with one member per field that is set,
 * named as in the .proto; repeated fields are arrays; enums are their names
 * (the number when the value has none); bytes are lowercase hex strings;
 * 64-bit integers are exact JSON numbers; fields the descriptor does not know
 * (written by a newer cr) appear under "_unknown_fields".  Strings that are
 * not valid UTF-8 keep their valid parts; every other byte is written as
 * \u00XX (its Latin-1 reading), so the output is always valid JSON. */
#ifndef CR_JSON_H
#define CR_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <protobuf-c/protobuf-c.h>

#include "os/error.h"

#define JSON_MAX_DEPTH 64

struct json_writer {
	FILE *f;
	bool pretty;               /* newlines and two-space indents */
	int depth;
	bool has_members[JSON_MAX_DEPTH]; /* per open container: something written */
	bool after_key;            /* a key was written, its value comes next */
	bool too_deep;             /* a message nested beyond JSON_MAX_DEPTH */
};

void json_init(struct json_writer *w, FILE *f, bool pretty);

void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
/* Inside an object: the key of the next value. */
void json_key(struct json_writer *w, const char *key);

void json_string(struct json_writer *w, const char *s);
void json_string_len(struct json_writer *w, const char *s, size_t len);
void json_uint(struct json_writer *w, uint64_t v);
void json_int(struct json_writer *w, int64_t v);
void json_double(struct json_writer *w, double v);  /* NaN and infinities: null */
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
void json_hex(struct json_writer *w, const void *data, size_t len);

/* key and value in one call. */
void json_kv_string(struct json_writer *w, const char *key, const char *s);
void json_kv_uint(struct json_writer *w, const char *key, uint64_t v);
void json_kv_bool(struct json_writer *w, const char *key, bool v);

/* The whole message, or null for NULL. */
void json_message(struct json_writer *w, const ProtobufCMessage *msg);

/* After the last value: a newline when pretty, a flush, and an error if
 * writing failed or a message nested too deeply. */
int json_finish(struct json_writer *w, cr_error_t *err);

/* The name of an enum value ("FILE_REG"), or NULL if it has none. */
const char *json_enum_name(const ProtobufCEnumDescriptor *desc, int value);

#endif
