/* fuzz_agent_otlp_util.h: helpers shared by the OTLP answer fuzzers: a bounded protobuf writer
 * (to build well-formed messages out of fuzz input and check that the parsers read back what was
 * written) and a cursor over the input. Header-only, static functions. */
#ifndef TT_FUZZ_AGENT_OTLP_UTIL_H
#define TT_FUZZ_AGENT_OTLP_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint8_t buf[4096];
  size_t n;
} pbw_t;

static __attribute__((unused)) void pbw_varint(pbw_t *w, uint64_t v) {
  do {
    if (w->n >= sizeof w->buf)
      abort(); /* a harness bug: sizes are bounded by the callers */
    uint8_t b = v & 0x7f;
    v >>= 7;
    w->buf[w->n++] = (uint8_t)(b | (v ? 0x80 : 0));
  } while (v);
}

static __attribute__((unused)) void pbw_key(pbw_t *w, uint32_t field, uint32_t wt) {
  pbw_varint(w, (uint64_t)field << 3 | wt);
}

static __attribute__((unused)) void pbw_bytes(pbw_t *w, uint32_t field, const void *p, size_t len) {
  pbw_key(w, field, 2);
  pbw_varint(w, len);
  if (len > sizeof w->buf - w->n)
    abort();
  memcpy(w->buf + w->n, p, len);
  w->n += len;
}

/* Reads fuzz input in pieces; running out yields zeros. */
typedef struct {
  const uint8_t *p;
  size_t left;
} cur_t;

static __attribute__((unused)) uint64_t cur_u64(cur_t *c, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v <<= 8;
    if (c->left) {
      v |= *c->p++;
      c->left--;
    }
  }
  return v;
}

/* The next up-to-max bytes of input. */
static __attribute__((unused)) const uint8_t *cur_take(cur_t *c, size_t max, size_t *len) {
  size_t n = c->left < max ? c->left : max;
  const uint8_t *r = c->p;
  c->p += n;
  c->left -= n;
  *len = n;
  return r;
}

/* How often a top-level field occurs in well-formed protobuf bytes (-1 if they are not). */
static __attribute__((unused)) int pb_count_field(const uint8_t *p, size_t len, uint32_t field) {
  const uint8_t *end = p + len;
  int count = 0;
  while (p < end) {
    uint64_t v[2];
    for (int k = 0; k < 2; k++) { /* the key, then a varint value or a length */
      v[k] = 0;
      for (int shift = 0;; shift += 7) {
        if (p >= end || shift > 63)
          return -1;
        uint8_t b = *p++;
        v[k] |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
          break;
      }
      uint32_t wt = (uint32_t)(v[0] & 7);
      if (k == 0 && wt == 1) {
        if (end - p < 8)
          return -1;
        p += 8;
        break;
      }
      if (k == 0 && wt == 5) {
        if (end - p < 4)
          return -1;
        p += 4;
        break;
      }
      if (k == 0 && wt != 0 && wt != 2)
        return -1;
      if (k == 1 && wt == 2) {
        if (v[1] > (uint64_t)(end - p))
          return -1;
        p += v[1];
      }
    }
    count += (v[0] >> 3) == field;
  }
  return count;
}

#endif /* TT_FUZZ_AGENT_OTLP_UTIL_H */
