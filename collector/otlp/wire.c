/* Protobuf wire scanning for OTLP spans: see wire.h. The scan is the span path's inner loop, so
 * it avoids allocation and reads each byte once. */
#include "wire.h"

#include <errno.h>
#include <string.h>

#include "utf8.h"

static uint64_t load_le(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

int tt__wire_next(tt_wire_reader_t *r, tt_wire_field_t *f) {
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
      f->u = load_le(p, 8);
      p += 8;
      break;
    case TT_WT_FIXED32:
      if (r->end - p < 4)
        return -EINVAL;
      f->u = load_le(p, 4);
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

/* A known field must arrive with its declared wire type; anything else is a malformed message
 * rather than an unknown field, because a decoder would misread it. */
#define EXPECT_WT(f, t)                                                                            \
  do {                                                                                             \
    if ((f).wt != (t))                                                                             \
      return -EINVAL;                                                                              \
  } while (0)

/* ---- UTF-8 of string fields -----------------------------------------------------------------
 * proto3 `string` fields must be UTF-8, and a backend that decodes with Go's protobuf refuses a
 * whole request for one bad string. So every string a span carries is checked on the way in,
 * where one bad span can still be refused alone. Each string is checked where the scan meets
 * it; the walks below visit only the messages that hold strings. */

/* AnyValues nest through arrays and kvlists. The request validator caps nesting at 64; this cap
 * holds for bytes that never went through it (fuzzers, tests) and bounds the recursion. */
#define MAX_ANY_DEPTH 64

/* The walks' field reader: tt__wire_next without the copy of each field's bounds, and with the
 * one-byte tag and length that nearly every attribute field has read inline. Same rules: returns
 * 1 with *f filled (p/len for a length-delimited field), 0 at the end, -EINVAL when malformed. */
typedef struct {
  uint32_t field, wt;
  const uint8_t *p;
  size_t len;
} lfield_t;

static inline int next_lean(const uint8_t **pp, const uint8_t *end, lfield_t *f) {
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
      p += n;
      break;
    case TT_WT_VARINT:
      if (tt__wire_varint(&p, end, &n) != 0)
        return -EINVAL;
      break;
    case TT_WT_FIXED64:
    case TT_WT_FIXED32:
      n = f->wt == TT_WT_FIXED64 ? 8 : 4;
      if ((uint64_t)(end - p) < n)
        return -EINVAL;
      p += n;
      break;
    default:
      return -EINVAL;
  }
  *pp = p;
  return 1;
}

static int any_utf8(const uint8_t *p, size_t len, int depth, const char *vname, const char **what);

static inline bool str_ok(const uint8_t *s, size_t n) {
  return tt__utf8_ascii(s, n) || tt__utf8_valid(s, n);
}

/* What an AnyValue holding exactly one scalar field, written the usual way (one-byte tag and
 * length), carries: 1 with *s and *n set for a string, 0 for a bool, int, double or bytes value (no
 * text), -1 for anything else (arrays, kvlists, several fields, longer lengths), which the
 * general walk then reads. */
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

/* One KeyValue: its key, and every string in its value. */
static int kv_utf8(const uint8_t *p, size_t len, int depth, const char *kname, const char *vname,
                   const char **what) {
  /* Nearly every attribute is {key, value{one scalar}} with one-byte lengths (a long string or
   * an int of 128 or more is what sends it here past the all-ASCII test): read in place. */
  if (len >= 4 && p[0] == 0x0a && p[1] < 0x80 && p[1] <= len - 4) {
    const uint8_t *k = p + 2, *v = p + 2 + p[1], *s = NULL;
    size_t al = len - 4 - p[1], n = 0;
    int kind;
    if (v[0] == 0x12 && v[1] == al && al < 0x80 && (kind = simple_any(v + 2, al, &s, &n)) >= 0) {
      if (!str_ok(k, p[1])) {
        *what = kname;
        return -EILSEQ;
      }
      if (kind == 1 && !str_ok(s, n)) {
        *what = vname;
        return -EILSEQ;
      }
      return 0;
    }
  }
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    if (f.field == 1) {
      EXPECT_WT(f, TT_WT_LEN);
      if (!str_ok(f.p, f.len)) {
        *what = kname;
        return -EILSEQ;
      }
    } else if (f.field == 2) {
      EXPECT_WT(f, TT_WT_LEN);
      int arc = any_utf8(f.p, f.len, depth + 1, vname, what);
      if (arc != 0)
        return arc;
    }
  }
  return rc < 0 ? -EINVAL : 0;
}

/* The entries (field 1) of an ArrayValue (AnyValues) or a KeyValueList (KeyValues). */
static int list_utf8(const uint8_t *p, size_t len, int depth, bool kvs, const char *vname,
                     const char **what) {
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    if (f.field != 1)
      continue;
    EXPECT_WT(f, TT_WT_LEN);
    int erc = kvs ? kv_utf8(f.p, f.len, depth, vname, vname, what)
                  : any_utf8(f.p, f.len, depth, vname, what);
    if (erc != 0)
      return erc;
  }
  return rc < 0 ? -EINVAL : 0;
}

static int any_utf8(const uint8_t *p, size_t len, int depth, const char *vname, const char **what) {
  if (depth > MAX_ANY_DEPTH)
    return -EINVAL;
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    int src = 0;
    switch (f.field) {
      case 1: /* string_value */
        EXPECT_WT(f, TT_WT_LEN);
        if (!str_ok(f.p, f.len)) {
          *what = vname;
          return -EILSEQ;
        }
        break;
      case 5: /* array_value */
      case 6: /* kvlist_value */
        EXPECT_WT(f, TT_WT_LEN);
        src = list_utf8(f.p, f.len, depth + 1, f.field == 6, vname, what);
        break;
      default: /* bool, int, double, bytes (not text), unknown fields */
        break;
    }
    if (src != 0)
      return src;
  }
  return rc < 0 ? -EINVAL : 0;
}

/* Where a message keeps its strings, for the messages walked by msg_utf8: a string field, a
 * repeated KeyValue field (attributes), or a nested message with strings of its own. A table
 * ends with field 0. */
enum { S_STRING, S_ATTRS, S_MSG };
typedef struct str_field_s {
  uint8_t field;
  uint8_t kind;
  const char *name;  /* S_STRING: the string; S_ATTRS: the attributes' keys */
  const char *vname; /* S_ATTRS: the attributes' values */
  const struct str_field_s *sub;
} str_field_t;

static const str_field_t event_strings[] = {
    {2, S_STRING, "event name", NULL, NULL},
    {3, S_ATTRS, "event attribute key", "event attribute value", NULL},
    {0, 0, NULL, NULL, NULL}};
static const str_field_t link_strings[] = {
    {3, S_STRING, "link trace_state", NULL, NULL},
    {4, S_ATTRS, "link attribute key", "link attribute value", NULL},
    {0, 0, NULL, NULL, NULL}};
static const str_field_t resource_strings[] = {
    {1, S_ATTRS, "resource attribute key", "resource attribute value", NULL},
    {0, 0, NULL, NULL, NULL}};
static const str_field_t resource_spans_strings[] = {
    {1, S_MSG, NULL, NULL, resource_strings},
    {3, S_STRING, "resource schema_url", NULL, NULL},
    {0, 0, NULL, NULL, NULL}};
static const str_field_t scope_strings[] = {
    {1, S_STRING, "scope name", NULL, NULL},
    {2, S_STRING, "scope version", NULL, NULL},
    {3, S_ATTRS, "scope attribute key", "scope attribute value", NULL},
    {0, 0, NULL, NULL, NULL}};
static const str_field_t scope_spans_strings[] = {{1, S_MSG, NULL, NULL, scope_strings},
                                                  {3, S_STRING, "scope schema_url", NULL, NULL},
                                                  {0, 0, NULL, NULL, NULL}};

static int msg_utf8(const uint8_t *p, size_t len, const str_field_t *fields, const char **what) {
  const uint8_t *end = p + len;
  lfield_t f;
  int rc;
  while ((rc = next_lean(&p, end, &f)) == 1) {
    const str_field_t *d = fields;
    while (d->field != 0 && d->field != f.field)
      d++;
    if (d->field == 0)
      continue;
    EXPECT_WT(f, TT_WT_LEN);
    int src = 0;
    if (d->kind == S_STRING) {
      if (!str_ok(f.p, f.len)) {
        *what = d->name;
        src = -EILSEQ;
      }
    } else if (d->kind == S_ATTRS)
      src = kv_utf8(f.p, f.len, 0, d->name, d->vname, what);
    else
      src = msg_utf8(f.p, f.len, d->sub, what);
    if (src != 0)
      return src;
  }
  return rc < 0 ? -EINVAL : 0;
}

int tt__wire_resource_spans_utf8(const uint8_t *rs, size_t len, const char **what) {
  return msg_utf8(rs, len, resource_spans_strings, what);
}

int tt__wire_scope_spans_utf8(const uint8_t *ss, size_t len, const char **what) {
  return msg_utf8(ss, len, scope_spans_strings, what);
}

/* A span string that is not UTF-8 ends the scan: the span is refused whatever else it holds. */
#define CHECK_UTF8(f, name)                                                                        \
  do {                                                                                             \
    if (!tt__utf8_ascii((f).p, (f).len) && !tt__utf8_valid((f).p, (f).len)) {                      \
      out->invalid_utf8 = (name);                                                                  \
      return -EILSEQ;                                                                              \
    }                                                                                              \
  } while (0)

int tt__wire_scan_span(const uint8_t *span, size_t len, tt_span_facts_t *out) {
  memset(out, 0, sizeof *out);
  tt_wire_reader_t r;
  tt__wire_reader_init(&r, span, len);
  tt_wire_field_t f;
  int rc;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
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
        CHECK_UTF8(f, "trace_state");
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
        CHECK_UTF8(f, "span name");
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
      case 11:
      case 13: {
        EXPECT_WT(f, TT_WT_LEN);
        /* Most attributes are all ASCII bytes, strings, tags and lengths alike: nothing in
         * them can be bad UTF-8, so they are not walked. Events and links (times, ids) nearly
         * always are. The framing inside them is the request validator's to check. */
        if (tt__utf8_ascii(f.p, f.len))
          break;
        int src = f.field == 9 ? kv_utf8(f.p, f.len, 0, "span attribute key",
                                         "span attribute value", &out->invalid_utf8)
                               : msg_utf8(f.p, f.len, f.field == 11 ? event_strings : link_strings,
                                          &out->invalid_utf8);
        if (src != 0)
          return src;
        break;
      }
      case 15: {
        EXPECT_WT(f, TT_WT_LEN);
        tt_wire_reader_t sr;
        tt_wire_field_t sf;
        int src;
        tt__wire_reader_init(&sr, f.p, f.len);
        while ((src = tt__wire_next(&sr, &sf)) == 1) {
          if (sf.field == 3) {
            EXPECT_WT(sf, TT_WT_VARINT);
            out->status_code = (uint32_t)sf.u;
          } else if (sf.field == 2) {
            EXPECT_WT(sf, TT_WT_LEN);
            CHECK_UTF8(sf, "status message");
          }
        }
        if (src < 0)
          return -EINVAL;
        break;
      }
      case 16:
        EXPECT_WT(f, TT_WT_FIXED32);
        out->flags = (uint32_t)f.u;
        break;
      default:
        break;
    }
  }
  return rc < 0 ? -EINVAL : 0;
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
