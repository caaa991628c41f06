/* otlp_encode.h: a plain view of finished spans, and their encoding into an OTLP
 * ExportTraceServiceRequest (protobuf, otlp_encode.c) or OTLP/JSON (exporter_otlp_json.c).
 *
 * The view decouples the exporters from the core's span records: an adapter fills one
 * tt__otlp_span_t per record (pointing into the record, no copies) on the exporter thread, and
 * the encoders only read it. All strings are NUL-terminated UTF-8 and must stay valid for the
 * duration of the encode call. Internal to libtailtrace. */
#ifndef TT_OTLP_ENCODE_H
#define TT_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  TT__OTLP_V_STRING = 1,
  TT__OTLP_V_BOOL = 2,
  TT__OTLP_V_INT = 3,
  TT__OTLP_V_DOUBLE = 4,
  TT__OTLP_V_BYTES = 5,
  TT__OTLP_V_ARRAY = 6, /* of scalar values */
} tt__otlp_vtype_t;

typedef struct tt__otlp_value_s {
  tt__otlp_vtype_t type;
  union {
    const char *s;
    int b;
    int64_t i;
    double d;
    struct {
      const uint8_t *ptr;
      size_t len;
    } bytes;
    struct {
      const struct tt__otlp_value_s *items;
      size_t n;
    } array;
  } u;
} tt__otlp_value_t;

typedef struct tt__otlp_attr_s {
  const char *key;
  tt__otlp_value_t value;
} tt__otlp_attr_t;

typedef struct tt__otlp_event_s {
  const char *name;
  uint64_t time_unix_nano;
  const tt__otlp_attr_t *attrs;
  size_t n_attrs;
  uint32_t dropped_attrs;
} tt__otlp_event_t;

typedef struct tt__otlp_link_s {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  const char *trace_state; /* NULL or "" when none */
  uint32_t flags;          /* OTLP Span.Link.flags (W3C flags | 0x100 | 0x200 remote bits) */
  const tt__otlp_attr_t *attrs;
  size_t n_attrs;
  uint32_t dropped_attrs;
} tt__otlp_link_t;

typedef struct tt__otlp_resource_s {
  const tt__otlp_attr_t *attrs;
  size_t n_attrs;
  uint32_t dropped_attrs;
  const char *schema_url;
} tt__otlp_resource_t;

typedef struct tt__otlp_scope_s {
  const char *name;
  const char *version;
  const char *schema_url;
} tt__otlp_scope_t;

/* Span kind and status codes carry the OTLP enum values. */
typedef struct tt__otlp_span_s {
  const tt__otlp_resource_t *resource; /* spans are grouped by this pointer */
  const tt__otlp_scope_t *scope;       /* then by this pointer */
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t parent_span_id[8];
  int has_parent;
  const char *trace_state;
  const char *name;
  int kind;
  uint64_t start_unix_nano;
  uint64_t end_unix_nano;
  uint32_t flags; /* OTLP Span.flags: W3C flags in bits 0-7, 0x100/0x200 parent remote bits */
  const tt__otlp_attr_t *attrs;
  size_t n_attrs;
  uint32_t dropped_attrs;
  const tt__otlp_event_t *events;
  size_t n_events;
  uint32_t dropped_events;
  const tt__otlp_link_t *links;
  size_t n_links;
  uint32_t dropped_links;
  int status_code;
  const char *status_message;
} tt__otlp_span_t;

/* OTLP Span.flags from W3C trace flags and what is known about the parent: parent_remote is
 * -1 (unknown: bits 8-9 clear), 0 (local parent) or 1 (remote parent). */
uint32_t tt__otlp_span_flags(uint8_t w3c_flags, int parent_remote);

/* Encodes n spans as one ExportTraceServiceRequest, grouped by resource then scope, in first-
 * seen order. *out is malloc'd (caller frees). Returns 0, -EINVAL (n == 0 or a NULL
 * resource/scope/name) or -ENOMEM. Exporter thread (pure function: any thread). */
int tt__otlp_encode_request(const tt__otlp_span_t *spans, size_t n, uint8_t **out, size_t *out_len);

#endif /* TT_OTLP_ENCODE_H */
