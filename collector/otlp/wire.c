/* Protobuf wire scanning for OTLP spans: see wire.h. The scan is the span path's inner loop, so
 * it avoids allocation and reads each byte once. */
#include "wire.h"

#include <errno.h>
#include <string.h>

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
      case 13:
        EXPECT_WT(f, TT_WT_LEN);
        break;
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
