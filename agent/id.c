/* Identifiers: per-thread random generator, hex codecs, span-context helpers. Trace ids are fully
 * random so the W3C Level 2 "random" flag can be set on every root we create. */
#include "internal.h"

#include <string.h>
#include <sys/random.h>

void tt__rng_seed(tt__rng_t *r) {
  uint64_t seed = 0;
  /* getrandom can only fail very early in boot or on a broken sandbox; fall back to mixing the
   * clock and the state's address so two threads still diverge. */
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed || seed == 0)
    seed = tt__now_mono_ns() ^ ((uint64_t)(uintptr_t)r * 0x9e3779b97f4a7c15ull);
  r->state = seed;
}

static const char hexdig[] = "0123456789abcdef";

void tt__hex_encode(const uint8_t *in, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hexdig[in[i] >> 4];
    out[2 * i + 1] = hexdig[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int lower_hex_val(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Decodes 2n lowercase hex characters; uppercase is rejected as W3C trace context requires. */
int tt__hex_decode_lower(const char *in, size_t n, uint8_t *out) {
  for (size_t i = 0; i < n; i++) {
    int hi = lower_hex_val(in[2 * i]), lo = lower_hex_val(in[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return TT_EPARSE;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

int tt_span_context_is_valid(const tt_span_context_t *ctx) {
  return ctx != NULL && !all_zero(ctx->trace_id, 16) && !all_zero(ctx->span_id, 8);
}

int tt_span_context_is_sampled(const tt_span_context_t *ctx) {
  return ctx != NULL && (ctx->trace_flags & TT_TRACE_FLAG_SAMPLED) != 0;
}

void tt_trace_id_hex(const tt_span_context_t *ctx, char out[33]) {
  static const uint8_t zero[16];
  tt__hex_encode(ctx != NULL ? ctx->trace_id : zero, 16, out);
}

void tt_span_id_hex(const tt_span_context_t *ctx, char out[17]) {
  static const uint8_t zero[8];
  tt__hex_encode(ctx != NULL ? ctx->span_id : zero, 8, out);
}

uint64_t tt_monotonic_ns(void) {
  return tt__now_mono_ns();
}

uint64_t tt_unix_ns(void) {
  return tt__now_unix_ns();
}
