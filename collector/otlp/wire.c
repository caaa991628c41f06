/* Protobuf wire scanning for OTLP spans: see wire.h. The scan is the span path's inner loop, so
 * it avoids allocation and reads each byte once. */
#include "wire.h"

#include <errno.h>
#include <string.h>

#include "utf8.h"

/* A known field must arrive with its declared wire type; anything else is a malformed message
 * rather than an unknown field, because a decoder would misread it. */
#define EXPECT_WT(f, t)                                                                            \
  do {                                                                                             \
    if ((f).wt != (t))                                                                             \
      return -EINVAL;                                                                              \
  } while (0)

/* ---- the validating walk ---------------------------------------------------------------------
 * One pass over a span's bytes does everything the receive path needs from them: it checks the
 * framing of the span and of every message nested in it by the rules of the request validator
 * (validate.c: tags, lengths, the wire type of each known field, nesting at most MAX_DEPTH deep
 * counted from the request), checks every `string` field for UTF-8, and collects the facts and
 * error signals a decision reads. So a request whose spans all pass here is one the validator
 * accepts, without a second walk over its bytes (fuzz_collector_wire checks the two agree).
 *
 * proto3 `string` fields must be UTF-8, and a backend that decodes with Go's protobuf refuses a
 * whole request for one bad string; checked here, one bad span can still be refused alone. A bad
 * string does not stop the walk: the framing after it must still be checked, because malformed
 * bytes anywhere refuse the whole request while a bad string refuses only its span. */

/* Nesting depth of messages, the request being 0 (ExportTraceServiceRequest > ResourceSpans >
 * ScopeSpans > Span is 3): the validator's limit, so both refuse the same requests. */
#define MAX_DEPTH 64
#define DEPTH_RESOURCE_SPANS 1
#define DEPTH_SCOPE_SPANS 2
#define DEPTH_SPAN 3

/* The walk's field reader: tt__wire_next without the copy of each field's bounds, and with the
 * one-byte tag and length that nearly every attribute field has read inline. Same rules: returns
 * 1 with *f filled (p/len for a length-delimited field, u for the others), 0 at the end, -EINVAL
 * when malformed. */
typedef struct {
  uint32_t field, wt;
  const uint8_t *p;
  size_t len;
  uint64_t u;
} lfield_t;

/* Always inlined: it runs for every field of every span, and a call per field cost more than
 * the read. */
static inline __attribute__((always_inline)) int next_lean(const uint8_t **pp, const uint8_t *end,
                                                           lfield_t *f) {
  const uint8_t *p = *pp;
  if (p >= end)
    return 0;
  uint64_t tag, n;
  if (*p < 0x80)
    tag = *p++;
  else if (tt__wire_varint(&p, end, &tag) != 0)
    return -EINVAL;
  if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
    return -EINVAL;
  f->field = (uint32_t)(tag >> 3);
  f->wt = (uint32_t)(tag & 7);
  switch (f->wt) {
    case TT_WT_LEN:
      if (p < end && *p < 0x80)
        n = *p++;
      else if (tt__wire_varint(&p, end, &n) != 0)
        return -EINVAL;
      if (n > (uint64_t)(end - p))
        return -EINVAL;
      f->p = p;
      f->len = (size_t)n;
      f->u = 0;
      p += n;
      break;
    case TT_WT_VARINT:
      if (tt__wire_varint(&p, end, &f->u) != 0)
        return -EINVAL;
      f->p = NULL;
      f->len = 0;
      break;
    case TT_WT_FIXED64:
    case TT_WT_FIXED32:
      n = f->wt == TT_WT_FIXED64 ? 8 : 4;
      if ((uint64_t)(end - p) < n)
        return -EINVAL;
      f->u = tt__wire_load_le(p, n);
      f->p = NULL;
      f->len = 0;
      p += n;
      break;
    default:
      return -EINVAL;
  }
  *pp = p;
  return 1;
}

/* What one walk found beside framing: the first string that is not UTF-8, and error signals. */
typedef struct {
  const char *bad;
  uint32_t signals;
} walk_t;

static inline __attribute__((always_inline)) void check_str(walk_t *w, bool ascii, const uint8_t *s,
                                                            size_t n, const char *name) {
  if (!ascii && w->bad == NULL && !tt__utf8_ascii(s, n) && !tt__utf8_valid(s, n))
    w->bad = name;
}

static int walk_any(const uint8_t *p, size_t len, int depth, bool ascii, const char *vname,
                    walk_t *w);

/* What an AnyValue holding exactly one scalar field, written the usual way (one-byte tag and
 * length), carries: 1 with *s and *n set for a string, 0 for a bool, int, double or bytes value (no
 * text), -1 for anything else (arrays, kvlists, several fields, longer lengths), which the
 * general walk then reads. Such a value is well-formed as it stands. */
static inline int simple_any(const uint8_t *a, size_t al, const uint8_t **s, size_t *n) {
  if (al < 2)
    return -1;
  switch (a[0]) {
    case 0x0a: /* string_value */
    case 0x3a: /* bytes_value */
      if (a[1] != al - 2)
        return -1;
      *s = a + 2;
      *n = al - 2;
      return a[0] == 0x0a;
    case 0x10:   /* bool_value */
    case 0x18: { /* int_value */
      const uint8_t *q = a + 1;
      uint64_t x;
      return tt__wire_varint(&q, a + al, &x) == 0 && q == a + al ? 0 : -1;
    }
    case 0x21: /* double_value */
      return al == 9 ? 0 : -1;
    default:
      return -1;
  }
}

/* An HTTP status arrives as an int, or as a numeric string (at most 7 characters) from older
 * instrumentations, read as strtoll reads it. */
static int64_t status_value(const uint8_t *any, size_t len) {
  if (len >= 2 && any[0] == 0x18) { /* int_value, the usual form */
    const uint8_t *q = any + 1;
    uint64_t x;
    if (tt__wire_varint(&q, any + len, &x) == 0 && q == any + len)
      return (int64_t)x;
  }
  tt_any_t v;
  if (len >= 2 && any[0] == 0x0a && any[1] == len - 2) { /* string_value alone */
    v.type = TT_ANY_STRING;
    v.s = any + 2;
    v.slen = len - 2;
  } else if (tt__wire_any(any, len, &v) != 0) {
    return 0;
  }
  if (v.type == TT_ANY_INT)
    return v.i;
  if (v.type != TT_ANY_STRING || v.slen == 0 || v.slen >= 8)
    return 0;
  size_t i = 0;
  while (i < v.slen && (v.s[i] == ' ' || (v.s[i] >= '\t' && v.s[i] <= '\r')))
    i++;
  bool neg = i < v.slen && v.s[i] == '-';
  if (i < v.slen && (v.s[i] == '-' || v.s[i] == '+'))
    i++;
  int64_t x = 0;
  for (; i < v.slen && v.s[i] >= '0' && v.s[i] <= '9'; i++)
    x = x * 10 + (v.s[i] - '0');
  return neg ? -x : x;
}

static bool key_is(const uint8_t *k, size_t kl, const char *lit, size_t litlen) {
  return kl == litlen && memcmp(k, lit, litlen) == 0;
}

/* A span attribute that says the request failed: an HTTP status of 500 or more. */
static void note_status_attr(walk_t *w, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl) {
  if (k != NULL && v != NULL &&
      (key_is(k, kl, "http.response.status_code", 25) || key_is(k, kl, "http.status_code", 16)) &&
      status_value(v, vl) >= 500)
    w->signals |= TT_SPAN_SIG_HTTP_5XX;
}

/* Nearly every attribute is {key, value{one scalar}} with one-byte lengths: read in place, by the
 * caller's loop (inlined). Returns true when the KeyValue at `depth` had that form, which is then
 * well-formed as it stands, its strings checked and its signal noted. */
static inline __attribute__((always_inline)) bool kv_fast(const uint8_t *p, size_t len, int depth,
                                                          bool ascii, const char *kname,
                                                          const char *vname, walk_t *w,
                                                          bool span_attr) {
  if (!(len >= 4 && p[0] == 0x0a && p[1] < 0x80 && p[1] <= len - 4 && depth < MAX_DEPTH))
    return false;
  const uint8_t *k = p + 2, *v = p + 2 + p[1], *s = NULL;
  size_t al = len - 4 - p[1], n = 0;
  int kind;
  if (!(v[0] == 0x12 && v[1] == al && al < 0x80 && (kind = simple_any(v + 2, al, &s, &n)) >= 0))
    return false;
  check_str(w, ascii, k, p[1], kname);
  if (kind == 1)
    check_str(w, ascii, s, n, vname);
  if (span_attr && (p[1] == 25 || p[1] == 16))
    note_status_attr(w, k, p[1], v + 2, al);
  return true;
}

/* One KeyValue at `depth`: its key, and its value. `span_attr`: an attribute of the span itself,
 * whose HTTP status is an error signal. */
static int walk_kv(const uint8_t *p, size_t len, int depth, bool ascii, const char *kname,
                   const char *vname, walk_t *w, bool span_attr) {
  if (depth > MAX_DEPTH)
    return -EINVAL;
  if (kv_fast(p, len, depth, ascii, kname, vname, w, span_attr))
    return 0;
  const uint8_t *end = p + len, *k = NULL, *v = NULL;
  size_t kl = 0, vl = 0;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    switch (f.field) {
      case 1:
        EXPECT_WT(f, TT_WT_LEN);
        check_str(w, ascii, f.p, f.len, kname);
        k = f.p, kl = f.len;
        break;
      case 2:
        EXPECT_WT(f, TT_WT_LEN);
        if (walk_any(f.p, f.len, depth + 1, ascii, vname, w) != 0)
          return -EINVAL;
        v = f.p, vl = f.len;
        break;
      case 3:
        EXPECT_WT(f, TT_WT_VARINT);
        break;
      default:
        break;
    }
  }
  if (rc < 0)
    return -EINVAL;
  if (span_attr)
    note_status_attr(w, k, kl, v, vl);
  return 0;
}

/* The entries (field 1) of an ArrayValue (AnyValues) or a KeyValueList (KeyValues) at depth. */
static int walk_list(const uint8_t *p, size_t len, int depth, bool ascii, bool kvs,
                     const char *vname, walk_t *w) {
  if (depth > MAX_DEPTH)
    return -EINVAL;
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    if (f.field != 1)
      continue;
    EXPECT_WT(f, TT_WT_LEN);
    int erc = kvs ? walk_kv(f.p, f.len, depth + 1, ascii, vname, vname, w, false)
                  : walk_any(f.p, f.len, depth + 1, ascii, vname, w);
    if (erc != 0)
      return erc;
  }
  return rc < 0 ? -EINVAL : 0;
}

static int walk_any(const uint8_t *p, size_t len, int depth, bool ascii, const char *vname,
                    walk_t *w) {
  if (depth > MAX_DEPTH)
    return -EINVAL;
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    switch (f.field) {
      case 1: /* string_value */
        EXPECT_WT(f, TT_WT_LEN);
        check_str(w, ascii, f.p, f.len, vname);
        break;
      case 2: /* bool_value */
      case 3: /* int_value */
      case 8: /* string_value_strindex */
        EXPECT_WT(f, TT_WT_VARINT);
        break;
      case 4: /* double_value */
        EXPECT_WT(f, TT_WT_FIXED64);
        break;
      case 5: /* array_value */
      case 6: /* kvlist_value */
        EXPECT_WT(f, TT_WT_LEN);
        if (walk_list(f.p, f.len, depth + 1, ascii, f.field == 6, vname, w) != 0)
          return -EINVAL;
        break;
      case 7: /* bytes_value: not text */
        EXPECT_WT(f, TT_WT_LEN);
        break;
      default:
        break;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

/* The other messages, by table: each known field's wire type and what it holds. A table ends
 * with field 0; fields it does not list are unknown and skipped. */
enum { S_PLAIN, S_STRING, S_ATTRS, S_MSG, S_SKIP, S_EVENT_NAME };
typedef struct msg_field_s {
  uint8_t field;
  uint8_t wt;
  uint8_t kind;
  const char *name;  /* S_STRING: the string; S_ATTRS: the attributes' keys */
  const char *vname; /* S_ATTRS: the attributes' values */
  const struct msg_field_s *sub;
} msg_field_t;

static const msg_field_t event_fields[] = {
    {1, TT_WT_FIXED64, S_PLAIN, NULL, NULL, NULL},
    {2, TT_WT_LEN, S_EVENT_NAME, "event name", NULL, NULL},
    {3, TT_WT_LEN, S_ATTRS, "event attribute key", "event attribute value", NULL},
    {4, TT_WT_VARINT, S_PLAIN, NULL, NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t link_fields[] = {
    {1, TT_WT_LEN, S_PLAIN, NULL, NULL, NULL},
    {2, TT_WT_LEN, S_PLAIN, NULL, NULL, NULL},
    {3, TT_WT_LEN, S_STRING, "link trace_state", NULL, NULL},
    {4, TT_WT_LEN, S_ATTRS, "link attribute key", "link attribute value", NULL},
    {5, TT_WT_VARINT, S_PLAIN, NULL, NULL, NULL},
    {6, TT_WT_FIXED32, S_PLAIN, NULL, NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t status_fields[] = {{2, TT_WT_LEN, S_STRING, "status message", NULL, NULL},
                                            {3, TT_WT_VARINT, S_PLAIN, NULL, NULL, NULL},
                                            {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t resource_fields[] = {
    {1, TT_WT_LEN, S_ATTRS, "resource attribute key", "resource attribute value", NULL},
    {2, TT_WT_VARINT, S_PLAIN, NULL, NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t resource_spans_fields[] = {
    {1, TT_WT_LEN, S_MSG, NULL, NULL, resource_fields},
    {2, TT_WT_LEN, S_SKIP, NULL, NULL, NULL},
    {3, TT_WT_LEN, S_STRING, "resource schema_url", NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t scope_fields[] = {
    {1, TT_WT_LEN, S_STRING, "scope name", NULL, NULL},
    {2, TT_WT_LEN, S_STRING, "scope version", NULL, NULL},
    {3, TT_WT_LEN, S_ATTRS, "scope attribute key", "scope attribute value", NULL},
    {4, TT_WT_VARINT, S_PLAIN, NULL, NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};
static const msg_field_t scope_spans_fields[] = {
    {1, TT_WT_LEN, S_MSG, NULL, NULL, scope_fields},
    {2, TT_WT_LEN, S_SKIP, NULL, NULL, NULL},
    {3, TT_WT_LEN, S_STRING, "scope schema_url", NULL, NULL},
    {0, 0, 0, NULL, NULL, NULL}};

static int walk_msg(const uint8_t *p, size_t len, int depth, const msg_field_t *fields, walk_t *w) {
  if (depth > MAX_DEPTH)
    return -EINVAL;
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    const msg_field_t *d = fields;
    while (d->field != 0 && d->field != f.field)
      d++;
    if (d->field == 0)
      continue;
    EXPECT_WT(f, d->wt);
    switch (d->kind) {
      case S_EVENT_NAME:
        if (key_is(f.p, f.len, "exception", 9))
          w->signals |= TT_SPAN_SIG_EXCEPTION;
        /* fall through */
      case S_STRING:
        check_str(w, false, f.p, f.len, d->name);
        break;
      case S_ATTRS:
        if (walk_kv(f.p, f.len, depth + 1, tt__utf8_ascii(f.p, f.len), d->name, d->vname, w,
                    false) != 0)
          return -EINVAL;
        break;
      case S_MSG:
        if (walk_msg(f.p, f.len, depth + 1, d->sub, w) != 0)
          return -EINVAL;
        break;
      default: /* S_PLAIN: the wire type was all; S_SKIP: walked by the caller */
        break;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

/* A ResourceSpans or ScopeSpans payload without its field 2. */
static int check_shared(const uint8_t *p, size_t len, int depth, const msg_field_t *fields,
                        const char **what) {
  walk_t w = {NULL, 0};
  if (walk_msg(p, len, depth, fields, &w) != 0)
    return -EINVAL;
  if (w.bad != NULL) {
    *what = w.bad;
    return -EILSEQ;
  }
  return 0;
}

int tt__wire_resource_spans_check(const uint8_t *rs, size_t len, const char **what) {
  return check_shared(rs, len, DEPTH_RESOURCE_SPANS, resource_spans_fields, what);
}

int tt__wire_scope_spans_check(const uint8_t *ss, size_t len, const char **what) {
  return check_shared(ss, len, DEPTH_SCOPE_SPANS, scope_spans_fields, what);
}

int tt__wire_scan_span(const uint8_t *span, size_t len, tt_span_facts_t *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *p = span, *end = span + len;
  walk_t w = {NULL, 0};
  const int depth = DEPTH_SPAN;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    switch (f.field) {
      case 1:
        EXPECT_WT(f, TT_WT_LEN);
        out->trace_id = f.p;
        out->trace_id_len = f.len;
        break;
      case 2:
        EXPECT_WT(f, TT_WT_LEN);
        out->span_id = f.p;
        out->span_id_len = f.len;
        break;
      case 3:
        EXPECT_WT(f, TT_WT_LEN);
        check_str(&w, false, f.p, f.len, "trace_state");
        out->trace_state = f.p;
        out->trace_state_len = f.len;
        break;
      case 4:
        EXPECT_WT(f, TT_WT_LEN);
        out->parent_span_id = f.p;
        out->parent_span_id_len = f.len;
        break;
      case 5:
        EXPECT_WT(f, TT_WT_LEN);
        check_str(&w, false, f.p, f.len, "span name");
        out->name = f.p;
        out->name_len = f.len;
        break;
      case 6:
        EXPECT_WT(f, TT_WT_VARINT);
        out->kind = (uint32_t)f.u;
        break;
      case 7:
        EXPECT_WT(f, TT_WT_FIXED64);
        out->start_ns = f.u;
        break;
      case 8:
        EXPECT_WT(f, TT_WT_FIXED64);
        out->end_ns = f.u;
        break;
      case 9:
        EXPECT_WT(f, TT_WT_LEN);
        /* Most attributes are all ASCII bytes, strings, tags and lengths alike: nothing in them
         * can be bad UTF-8, so only their framing is walked. */
        {
          bool ascii = tt__utf8_ascii(f.p, f.len);
          if (!kv_fast(f.p, f.len, depth + 1, ascii, "span attribute key", "span attribute value",
                       &w, true) &&
              walk_kv(f.p, f.len, depth + 1, ascii, "span attribute key", "span attribute value",
                      &w, true) != 0)
            return -EINVAL;
        }
        break;
      case 10:
      case 12:
      case 14:
        EXPECT_WT(f, TT_WT_VARINT);
        break;
      case 11:
      case 13:
      case 15:
        EXPECT_WT(f, TT_WT_LEN);
        if (walk_msg(f.p, f.len, depth + 1,
                     f.field == 11   ? event_fields
                     : f.field == 13 ? link_fields
                                     : status_fields,
                     &w) != 0)
          return -EINVAL;
        if (f.field == 15) {
          /* The status code: the last field 3, as a decoder reads it. */
          const uint8_t *q = f.p, *qe = f.p + f.len;
          lfield_t sf;
          while (next_lean(&q, qe, &sf) == 1)
            if (sf.field == 3)
              out->status_code = (uint32_t)sf.u;
        }
        break;
      case 16:
        EXPECT_WT(f, TT_WT_FIXED32);
        out->flags = (uint32_t)f.u;
        break;
      default:
        break;
    }
  }
  if (rc < 0)
    return -EINVAL;
  out->signals = w.signals;
  if (out->status_code == 2)
    out->signals |= TT_SPAN_SIG_STATUS_ERROR;
  if (w.bad != NULL) {
    out->invalid_utf8 = w.bad;
    return -EILSEQ;
  }
  return 0;
}

/* The facts of a span the walk above accepted, read again without its checks: only the span's
 * own fields, not what is nested in them (error signals are not looked for). */
void tt__wire_span_facts(const uint8_t *span, size_t len, tt_span_facts_t *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *p = span, *end = span + len;
  lfield_t f;
  while (next_lean(&p, end, &f) == 1) {
    switch (f.field) {
      case 1:
        out->trace_id = f.p;
        out->trace_id_len = f.len;
        break;
      case 2:
        out->span_id = f.p;
        out->span_id_len = f.len;
        break;
      case 3:
        out->trace_state = f.p;
        out->trace_state_len = f.len;
        break;
      case 4:
        out->parent_span_id = f.p;
        out->parent_span_id_len = f.len;
        break;
      case 5:
        out->name = f.p;
        out->name_len = f.len;
        break;
      case 6:
        out->kind = (uint32_t)f.u;
        break;
      case 7:
        out->start_ns = f.u;
        break;
      case 8:
        out->end_ns = f.u;
        break;
      case 15: {
        const uint8_t *q = f.p, *qe = f.p + f.len;
        lfield_t sf;
        while (next_lean(&q, qe, &sf) == 1)
          if (sf.field == 3 && sf.wt == TT_WT_VARINT)
            out->status_code = (uint32_t)sf.u;
        break;
      }
      case 16:
        out->flags = (uint32_t)f.u;
        break;
      default:
        break;
    }
  }
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      return false;
  return true;
}

bool tt__wire_span_ids_valid(const tt_span_facts_t *f, const char **why) {
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  if (f->trace_id_len != 16 || all_zero(f->trace_id, 16)) {
    *why = "invalid trace_id (must be 16 bytes, not all zero)";
    return false;
  }
  if (f->span_id_len != 8 || all_zero(f->span_id, 8)) {
    *why = "invalid span_id (must be 8 bytes, not all zero)";
    return false;
  }
  if (f->parent_span_id_len != 0 && f->parent_span_id_len != 8) {
    *why = "invalid parent_span_id (must be empty or 8 bytes)";
    return false;
  }
  return true;
}

int tt__wire_any(const uint8_t *p, size_t len, tt_any_t *out) {
  memset(out, 0, sizeof *out);
  tt_wire_reader_t r;
  tt__wire_reader_init(&r, p, len);
  tt_wire_field_t f;
  int rc;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    switch (f.field) {
      case 1:
        EXPECT_WT(f, TT_WT_LEN);
        out->type = TT_ANY_STRING;
        out->s = f.p;
        out->slen = f.len;
        break;
      case 2:
        EXPECT_WT(f, TT_WT_VARINT);
        out->type = TT_ANY_BOOL;
        out->i = f.u != 0;
        break;
      case 3:
        EXPECT_WT(f, TT_WT_VARINT);
        out->type = TT_ANY_INT;
        out->i = (int64_t)f.u;
        break;
      case 4:
        EXPECT_WT(f, TT_WT_FIXED64);
        out->type = TT_ANY_DOUBLE;
        memcpy(&out->d, &f.u, sizeof out->d);
        break;
      case 5:
      case 6:
      case 7:
        EXPECT_WT(f, TT_WT_LEN);
        out->type = TT_ANY_OTHER;
        break;
      default:
        break;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

/* Splits a KeyValue into its key and value payloads. Returns 0 or -EINVAL. */
static int keyvalue(const uint8_t *p, size_t len, const uint8_t **key, size_t *keylen,
                    const uint8_t **val, size_t *vallen) {
  tt_wire_reader_t r;
  tt__wire_reader_init(&r, p, len);
  tt_wire_field_t f;
  int rc;
  *key = *val = NULL;
  *keylen = *vallen = 0;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field == 1) {
      EXPECT_WT(f, TT_WT_LEN);
      *key = f.p;
      *keylen = f.len;
    } else if (f.field == 2) {
      EXPECT_WT(f, TT_WT_LEN);
      *val = f.p;
      *vallen = f.len;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

int tt__wire_find_attr(const uint8_t *msg, size_t len, uint32_t attr_field, const char *key,
                       tt_any_t *out) {
  size_t klen = strlen(key);
  tt_wire_reader_t r;
  tt__wire_reader_init(&r, msg, len);
  tt_wire_field_t f;
  int rc;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != attr_field || f.wt != TT_WT_LEN)
      continue;
    const uint8_t *k, *v;
    size_t kl, vl;
    if (keyvalue(f.p, f.len, &k, &kl, &v, &vl) != 0)
      return -EINVAL;
    if (kl == klen && memcmp(k, key, klen) == 0) {
      if (v == NULL) {
        memset(out, 0, sizeof *out);
        out->type = TT_ANY_OTHER;
        return 1;
      }
      return tt__wire_any(v, vl, out) == 0 ? 1 : -EINVAL;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

int tt__wire_span_has_event(const uint8_t *span, size_t len, const char *name) {
  size_t nlen = strlen(name);
  tt_wire_reader_t r;
  tt__wire_reader_init(&r, span, len);
  tt_wire_field_t f;
  int rc;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 11 || f.wt != TT_WT_LEN)
      continue;
    tt_wire_reader_t er;
    tt_wire_field_t ef;
    int erc;
    tt__wire_reader_init(&er, f.p, f.len);
    while ((erc = tt__wire_next(&er, &ef)) == 1) {
      if (ef.field == 2 && ef.wt == TT_WT_LEN && ef.len == nlen && memcmp(ef.p, name, nlen) == 0)
        return 1;
    }
    if (erc < 0)
      return -EINVAL;
  }
  return rc < 0 ? -EINVAL : 0;
}
