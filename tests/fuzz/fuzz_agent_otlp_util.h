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

#endif /* TT_FUZZ_AGENT_OTLP_UTIL_H */
