/* Internals shared by the OTLP/JSON codec's three files: otlp_json.c (this schema table and the
 * JSON string rules), otlp_json_decode.c (JSON -> protobuf) and otlp_json_encode.c (protobuf ->
 * JSON). One table describes every message for both directions, so a field added to it is read
 * and written alike. Not for other files: the rest of the collector includes otlp_json.h. */
#ifndef TT_COLLECTOR_OTLP_JSON_INT_H
#define TT_COLLECTOR_OTLP_JSON_INT_H

#include <stddef.h>
#include <stdint.h>

#include "otlp_json.h"

/* The schema: one row per field, in field-number order: JSON name (lowerCamelCase), the snake_case
 * name the protobuf JSON mapping also allows, field number, kind, nested message and flags. */

enum {
  J_STRING,
  J_ID,    /* trace/span id: hex in OTLP/JSON (base64 of the right length is also accepted) */
  J_BYTES, /* bytes: base64 (proto3 JSON mapping) */
  J_MSG,
  J_U32,    /* varint uint32 */
  J_I32,    /* varint int32 (sign-extended) */
  J_I64,    /* varint int64 */
  J_F64,    /* fixed64 (times) */
  J_F32,    /* fixed32 (flags) */
  J_DOUBLE, /* 64-bit double */
  J_BOOL,
  J_KIND,   /* enum SpanKind */
  J_STATUS, /* enum StatusCode */
};

enum { F_REPEATED = 1, F_ONEOF = 2 /* zero values are meaningful: always encode */ };

enum {
  JM_REQ,
  JM_RSPANS,
  JM_RESOURCE,
  JM_SSPANS,
  JM_SCOPE,
  JM_SPAN,
  JM_EVENT,
  JM_LINK,
  JM_STATUS,
  JM_KV,
  JM_ANY,
  JM_ARRAY,
  JM_KVLIST,
  JM_COUNT
};

typedef struct {
  const char *json;
  const char *snake;
  uint8_t num;
  uint8_t kind;
  uint8_t sub;
  uint8_t flags;
  uint8_t id_len; /* J_ID: 16 or 8 */
} jfield_t;

typedef struct {
  const char *name;
  const jfield_t *f;
  size_t n;
} jmsg_t;

/* The messages of an ExportTraceServiceRequest, indexed by JM_*. Immutable; any thread. */
extern const jmsg_t tt__otlp_json_schema[JM_COUNT];

/* Nesting: ExportTraceServiceRequest to a KeyValue is 6 levels; AnyValue arrays and kvlists add
 * 2 per level. 64 leaves ample room and bounds the recursion in both directions. */
#define JSON_MAX_DEPTH 64

/* Returns the length of the valid UTF-8 sequence at s (1-4, reading at most n bytes), or 0 when
 * it is invalid: overlong forms, surrogates and values past U+10FFFF included. The decoder
 * carries such bytes through to the protobuf (the pipeline refuses the span that holds them);
 * the encoder replaces them with U+FFFD. */
size_t tt__json_utf8_seq(const uint8_t *s, size_t n);

/* The byte that `\` followed by `esc` stands for in a JSON string, or -1 when that is not a
 * two-character escape (\u is not one: the decoder reads its hex digits itself). */
int tt__json_unescape(char esc);

#endif
