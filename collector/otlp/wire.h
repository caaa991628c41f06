/* Bounds-checked protobuf wire scanning for OTLP trace data.
 *
 * The collector never unpacks a whole span: it keeps the span's raw bytes and reads from them
 * only the fields a decision needs (ids, times, status, named attributes, events). Every reader
 * here checks every length against the end of its buffer, so arbitrary bytes give -EINVAL,
 * never a read out of bounds. Pure functions over borrowed bytes; any thread. */
#ifndef TT_COLLECTOR_WIRE_H
#define TT_COLLECTOR_WIRE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TT_WT_VARINT 0
#define TT_WT_FIXED64 1
#define TT_WT_LEN 2
#define TT_WT_FIXED32 5

/* A cursor over one message's fields. */
typedef struct {
  const uint8_t *p;
  const uint8_t *end;
} tt_wire_reader_t;

/* One field: `start` and `end` delimit its whole encoding (tag included), so a field can be
 * copied through unchanged. For TT_WT_LEN, `p`/`len` is the payload; otherwise `u` is the value. */
typedef struct {
  uint32_t field;
  uint32_t wt;
  uint64_t u;
  const uint8_t *p;
  size_t len;
  const uint8_t *start;
  const uint8_t *end;
} tt_wire_field_t;

static inline void tt__wire_reader_init(tt_wire_reader_t *r, const uint8_t *p, size_t len) {
  r->p = p;
  r->end = p + len;
}

/* Reads a varint at *p (not past end); advances *p. Returns 0, or -EINVAL (and *p unmoved) when
 * the varint runs past end, is longer than ten bytes, or has a tenth byte other than 0x00 or 0x01.
 *
 * This is the collector's only varint reader: the request validator, the span scanner and the
 * JSON encoder all read with it, so a request the validator accepts is one every later stage can
 * read. The rule is Go protowire's (ConsumeVarint: the tenth byte may only carry bit 63), which
 * is stricter than protobuf-c 1.4 (any bits in the tenth byte, silently dropped): a value that
 * does not fit 64 bits is refused, never truncated. Negative int32 and int64 values are ten
 * bytes with a tenth byte of 0x01, so they pass. Inline: the validator calls it for every tag. */
static inline int tt__wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  const uint8_t *q = *p;
  uint64_t v = 0;
  for (unsigned i = 0; i < 10; i++) {
    if (q >= end)
      return -EINVAL;
    uint8_t b = *q++;
    if (i == 9 && b > 1)
      return -EINVAL; /* bits past 64, or an eleventh byte */
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      *p = q;
      *out = v;
      return 0;
    }
  }
  return -EINVAL; /* unreachable: the tenth byte has no continuation bit once checked */
}

static inline uint64_t tt__wire_load_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Reads the next field. Returns 1 with *f filled, 0 at the end of the message, -EINVAL for
 * malformed bytes (bad varint, length past the end, group or reserved wire types, field 0).
 * Inline: every walk over a message calls it for each field. */
static inline int tt__wire_next(tt_wire_reader_t *r, tt_wire_field_t *f) {
  if (r->p >= r->end)
    return 0;
  const uint8_t *p = r->p;
  f->start = p;
  uint64_t tag;
  if (tt__wire_varint(&p, r->end, &tag) != 0)
    return -EINVAL;
  if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
    return -EINVAL;
  f->field = (uint32_t)(tag >> 3);
  f->wt = (uint32_t)(tag & 7);
  f->p = NULL;
  f->len = 0;
  f->u = 0;
  switch (f->wt) {
    case TT_WT_VARINT:
      if (tt__wire_varint(&p, r->end, &f->u) != 0)
        return -EINVAL;
      break;
    case TT_WT_FIXED64:
      if (r->end - p < 8)
        return -EINVAL;
      f->u = tt__wire_load_le(p, 8);
      p += 8;
      break;
    case TT_WT_FIXED32:
      if (r->end - p < 4)
        return -EINVAL;
      f->u = tt__wire_load_le(p, 4);
      p += 4;
      break;
    case TT_WT_LEN: {
      uint64_t n;
      if (tt__wire_varint(&p, r->end, &n) != 0)
        return -EINVAL;
      if (n > (uint64_t)(r->end - p))
        return -EINVAL;
      f->p = p;
      f->len = (size_t)n;
      p += n;
      break;
    }
    default:
      /* Groups (3, 4) are deprecated and never used by OTLP; 6 and 7 do not exist. */
      return -EINVAL;
  }
  f->end = p;
  r->p = p;
  return 1;
}

/* Span fields a decision reads. Pointers borrow from the scanned bytes. An id absent from the
 * wire has length 0. */
typedef struct {
  const uint8_t *trace_id;
  size_t trace_id_len;
  const uint8_t *span_id;
  size_t span_id_len;
  const uint8_t *parent_span_id;
  size_t parent_span_id_len;
  const uint8_t *name;
  size_t name_len;
  const uint8_t *trace_state;
  size_t trace_state_len;
  uint64_t start_ns;
  uint64_t end_ns;
  uint32_t kind;
  uint32_t status_code;     /* 0 unset, 1 ok, 2 error */
  uint32_t flags;           /* W3C trace flags in bits 0-7, TT_SPAN_FLAGS_* above them */
  uint32_t signals;         /* TT_SPAN_SIG_*: what says this span failed */
  const char *invalid_utf8; /* after -EILSEQ: the string that is not UTF-8 ("span name", ...) */
} tt_span_facts_t;

/* Error signals of a span, found by the scan so that the errors policy reads bits instead of
 * walking every span's attributes and events again: status ERROR; an attribute
 * http.response.status_code or http.status_code of 500 or more (an int, or a numeric string);
 * an event named "exception". */
#define TT_SPAN_SIG_STATUS_ERROR 1u
#define TT_SPAN_SIG_HTTP_5XX 2u
#define TT_SPAN_SIG_EXCEPTION 4u

/* Span.flags bits (OTLP 1.4): whether the parent's context says if it is remote, and that it is. */
#define TT_SPAN_FLAGS_HAS_IS_REMOTE 0x100u
#define TT_SPAN_FLAGS_IS_REMOTE 0x200u

/* Scans one Span message, checking all of it: returns 0; -EINVAL when the bytes are not a
 * well-formed Span by the request validator's rules (validate.h: tags, lengths, the wire type of
 * every known field at every level, messages nested at most 64 deep counting the span as depth 3,
 * as it is in a request); or -EILSEQ when the span is well-formed but a string in it is not valid
 * UTF-8, with f->invalid_utf8 naming the first such (the other facts are then complete too).
 * Every `string` field of the span is checked: name, trace_state, status message, attribute keys
 * and string values (inside arrays and kvlists too), and the names, attributes and trace_state
 * of its events and links. Unknown fields are skipped. Fills f->signals. */
int tt__wire_scan_span(const uint8_t *span, size_t len, tt_span_facts_t *f);

/* The facts of a span that tt__wire_scan_span accepted, read again cheaply: the span's own fields
 * only, no checks, and no signals (f->signals is 0: the caller keeps them from the scan). */
void tt__wire_span_facts(const uint8_t *span, size_t len, tt_span_facts_t *f);

/* The same checks for what a span shares with its neighbours: a ResourceSpans payload (its
 * Resource, schema_url) and a ScopeSpans payload (its scope's name, version and attributes,
 * schema_url), their field 2 (the ScopeSpans / the spans) left to the caller. Returns 0, -EINVAL
 * for malformed bytes, or -EILSEQ (only when well-formed) with *what naming the first string that
 * is not UTF-8 (static). */
int tt__wire_resource_spans_check(const uint8_t *rs, size_t len, const char **what);
int tt__wire_scope_spans_check(const uint8_t *ss, size_t len, const char **what);

/* True when the ids make a span we can hold: a 16-byte non-zero trace id, an 8-byte non-zero
 * span id and a parent id that is empty or 8 bytes. *why gets a static reason otherwise. */
bool tt__wire_span_ids_valid(const tt_span_facts_t *f, const char **why);

typedef enum {
  TT_ANY_NONE = 0,
  TT_ANY_STRING,
  TT_ANY_BOOL,
  TT_ANY_INT,
  TT_ANY_DOUBLE,
  TT_ANY_OTHER, /* array, kvlist, bytes: present but not comparable */
} tt_any_type_t;

typedef struct {
  tt_any_type_t type;
  const uint8_t *s; /* TT_ANY_STRING: borrowed, not NUL-terminated */
  size_t slen;
  int64_t i; /* TT_ANY_INT and TT_ANY_BOOL */
  double d;  /* TT_ANY_DOUBLE */
} tt_any_t;

/* Looks for the attribute `key` among the KeyValue entries carried in field `attr_field` of the
 * message (Span: 9, Resource: 1, Span.Event: 3, InstrumentationScope: 3). Returns 1 when found
 * (*out filled, first occurrence), 0 when absent, -EINVAL for malformed bytes. */
int tt__wire_find_attr(const uint8_t *msg, size_t len, uint32_t attr_field, const char *key,
                       tt_any_t *out);

/* Returns 1 when the span has an event named `name`, 0 when not, -EINVAL for malformed bytes. */
int tt__wire_span_has_event(const uint8_t *span, size_t len, const char *name);

/* Reads an AnyValue message. Returns 0 or -EINVAL. */
int tt__wire_any(const uint8_t *p, size_t len, tt_any_t *out);

#endif
