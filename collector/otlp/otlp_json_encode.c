/* Protobuf -> OTLP/JSON (tt__otlp_json_from_pb in otlp_json.h): walks already-validated wire
 * bytes with the schema table of otlp_json_int.h and writes the canonical OTLP/JSON form. */
#include "otlp_json_int.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "validate.h"
#include "wire.h" /* tt__wire_varint */

typedef struct {
  uint32_t num;
  uint32_t wt;
  uint64_t v;          /* varint / fixed value */
  const uint8_t *data; /* LEN payload */
  size_t len;
} pbfield_t;

/* Reads the next field; the input was validated, so this only guards against running off. */
static int next_field(const uint8_t **p, const uint8_t *end, pbfield_t *f) {
  uint64_t key, v = 0;
  if (tt__wire_varint(p, end, &key) != 0)
    return -1;
  f->num = (uint32_t)(key >> 3);
  f->wt = key & 7;
  switch (f->wt) {
    case 0:
    case 2:
      if (tt__wire_varint(p, end, &v) != 0)
        return -1;
      if (f->wt == 2) {
        if (v > (uint64_t)(end - *p))
          return -1;
        f->data = *p;
        f->len = v;
        *p += v;
      }
      f->v = v;
      return 0;
    case 1:
    case 5: {
      size_t w = f->wt == 1 ? 8 : 4;
      if ((size_t)(end - *p) < w)
        return -1;
      for (size_t i = 0; i < w; i++)
        v |= (uint64_t)(*p)[i] << (8 * i);
      *p += w;
      f->v = v;
      return 0;
    }
    default:
      return -1;
  }
}

static int emit_value(const jfield_t *jf, const pbfield_t *f, tt_buf_t *out, int depth);

static int emit_message(const uint8_t *data, size_t len, int msg, tt_buf_t *out, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return -EINVAL;
  const jmsg_t *m = &tt__otlp_json_schema[msg];
  const uint8_t *end = data + len;
  int rc = tt__buf_append(out, "{", 1);
  bool first = true;
  /* One pass per schema field keeps the output in field-number order and groups repeated
   * fields into arrays even when their occurrences are interleaved on the wire. */
  for (size_t i = 0; i < m->n && rc == 0; i++) {
    const jfield_t *jf = &m->f[i];
    pbfield_t f, last = {0};
    int count = 0;
    for (const uint8_t *p = data; p < end;) {
      if (next_field(&p, end, &f) != 0)
        return -EINVAL;
      if (f.num != jf->num)
        continue;
      if (jf->flags & F_REPEATED) {
        if (count == 0)
          rc = rc ? rc : tt__buf_appendf(out, "%s\"%s\":[", first ? "" : ",", jf->json);
        else
          rc = rc ? rc : tt__buf_append(out, ",", 1);
        rc = rc ? rc : emit_value(jf, &f, out, depth);
        first = false;
      } else {
        last = f;
      }
      count++;
    }
    if (count == 0)
      continue;
    if (jf->flags & F_REPEATED) {
      rc = rc ? rc : tt__buf_append(out, "]", 1);
    } else {
      rc = rc ? rc : tt__buf_appendf(out, "%s\"%s\":", first ? "" : ",", jf->json);
      rc = rc ? rc : emit_value(jf, &last, out, depth);
      first = false;
    }
  }
  return rc ? rc : tt__buf_append(out, "}", 1);
}

static int emit_value(const jfield_t *jf, const pbfield_t *f, tt_buf_t *out, int depth) {
  static const char hex[] = "0123456789abcdef";
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int rc = 0;
  switch (jf->kind) {
    case J_MSG:
      return emit_message(f->data, f->len, jf->sub, out, depth + 1);
    case J_STRING:
      return tt__json_append_string(out, (const char *)f->data, f->len);
    case J_ID:
      rc = tt__buf_append(out, "\"", 1);
      for (size_t i = 0; i < f->len && rc == 0; i++) {
        char two[2] = {hex[f->data[i] >> 4], hex[f->data[i] & 15]};
        rc = tt__buf_append(out, two, 2);
      }
      return rc ? rc : tt__buf_append(out, "\"", 1);
    case J_BYTES:
      rc = tt__buf_append(out, "\"", 1);
      for (size_t i = 0; i < f->len && rc == 0; i += 3) {
        uint32_t n = (uint32_t)f->data[i] << 16;
        if (i + 1 < f->len)
          n |= (uint32_t)f->data[i + 1] << 8;
        if (i + 2 < f->len)
          n |= f->data[i + 2];
        char q[4] = {b64[n >> 18], b64[(n >> 12) & 63], i + 1 < f->len ? b64[(n >> 6) & 63] : '=',
                     i + 2 < f->len ? b64[n & 63] : '='};
        rc = tt__buf_append(out, q, 4);
      }
      return rc ? rc : tt__buf_append(out, "\"", 1);
    case J_BOOL:
      return tt__buf_append_str(out, f->v ? "true" : "false");
    case J_U32:
    case J_F32:
      return tt__buf_appendf(out, "%u", (unsigned)(uint32_t)f->v);
    case J_KIND:
    case J_STATUS:
    case J_I32:
      return tt__buf_appendf(out, "%d", (int)(int32_t)f->v);
    case J_I64:
      return tt__buf_appendf(out, "\"%lld\"", (long long)(int64_t)f->v);
    case J_F64:
      return tt__buf_appendf(out, "\"%llu\"", (unsigned long long)f->v);
    case J_DOUBLE: {
      double d;
      memcpy(&d, &f->v, 8);
      if (isnan(d))
        return tt__buf_append_str(out, "\"NaN\"");
      if (isinf(d))
        return tt__buf_append_str(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      /* 17 significant digits round-trip every double exactly. */
      return tt__buf_appendf(out, "%.17g", d);
    }
  }
  return -EINVAL;
}

int tt__otlp_json_from_pb(const uint8_t *pb, size_t len, tt_buf_t *out) {
  if (tt__otlp_validate_export_request(pb, len, NULL, 0) != 0)
    return -EINVAL;
  size_t mark = out->len;
  int rc = emit_message(pb ? pb : (const uint8_t *)"", len, JM_REQ, out, 0);
  if (rc != 0)
    out->len = mark;
  return rc;
}
