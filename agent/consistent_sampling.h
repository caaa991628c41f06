/* consistent_sampling.h: the OpenTelemetry consistent probability sampling rule, shared by
 * libtailtrace's head sampler (sampler.c) and tailtrace-collector's ratio policy
 * (collector/decide/sampling.c, policy.c), so the two programs keep nested sets of traces.
 *
 * The randomness R of a trace is the explicit `rv` value in its tracestate's `ot` member when
 * there is one, else the trace id's last 7 bytes (random under W3C Trace Context Level 2). A
 * trace is kept when R >= T, T being the rejection threshold: tt__threshold_from_ratio gives
 * 2^56 - round(ratio * 2^56) (the collector's), tt__threshold_from_ratio_prec the specification's
 * rounding to a number of hex digits (the library's, which it writes as `ot=th:`). Header-only
 * and pure; any thread. */
#ifndef TT_CONSISTENT_SAMPLING_H
#define TT_CONSISTENT_SAMPLING_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TT_TH_MAX (UINT64_C(1) << 56)

/* Rejection threshold for a keep probability in [0, 1]: 0 keeps all, 2^56 keeps nothing (also
 * for NaN). The keep share ratio * 2^56 is rounded rather than (1 - ratio) * 2^56: 1 - ratio loses
 * the low bits of a small ratio, while ratio * 2^56 is exact to double precision (0.1 gives
 * e6666666666666). */
static inline uint64_t tt__threshold_from_ratio(double ratio) {
  if (!(ratio > 0.0))
    return TT_TH_MAX;
  if (ratio >= 1.0)
    return 0;
  uint64_t keep = (uint64_t)llround(ratio * (double)TT_TH_MAX);
  return keep >= TT_TH_MAX ? 0 : TT_TH_MAX - keep;
}

/* The precision OpenTelemetry recommends SDKs use by default: 4 significant hex digits. */
#define TT_TH_PRECISION_DEFAULT 4

/* The rejection threshold for a keep probability at a precision of `precision` hex digits, by
 * the specification's rule ("Converting floating-point probability to threshold value"): the
 * precision grows by one digit for each power of 16 the probability is below 1 (so that small
 * probabilities keep their significant digits; at most 12 digits), and the threshold is
 * 1 - probability rounded half up to that many hex digits. At 4 digits 1/3 gives aaab, 0.1 e666,
 * 0.01 fd70a, 0.001 ffbe77 (the specification's table). The threshold an SDK samples with is the
 * one it writes into `ot=th`, so the weight a backend reads is exact. 0 keeps all, 2^56 nothing. */
static inline uint64_t tt__threshold_from_ratio_prec(double ratio, int precision) {
  if (!(ratio > 0.0))
    return TT_TH_MAX;
  if (ratio >= 1.0)
    return 0;
  int exp2;
  (void)frexp(ratio, &exp2);
  /* Python's exp // -4 for the exponent (<= 0 here): floor(-exp2 / 4). */
  int d = precision + (-exp2) / 4;
  if (d < 1)
    d = 1;
  if (d > 12)
    d = 12;
  /* 2 - ratio lies in [1, 2): its 52 fraction bits hold 1 - ratio exactly enough for 12 digits;
   * adding half of the last digit and truncating rounds half up. */
  double r = (2.0 - ratio) + ldexp(0.5, -4 * d);
  uint64_t digits;
  if (r >= 2.0)
    digits = (UINT64_C(1) << (4 * d)) - 1; /* all f: the spec's guard */
  else
    digits = (uint64_t)ldexp(r - 1.0, 4 * d);
  return digits << (56 - 4 * d);
}

/* Writes a threshold as the `th` value: 14 hex digits with the trailing zeros dropped ("0" for
 * 0). out holds at least 15 bytes. A threshold of 2^56 (keep nothing) has no encoding and is
 * written as the largest one. */
static inline size_t tt__threshold_encode(uint64_t threshold, char *out) {
  static const char hx[] = "0123456789abcdef";
  if (threshold >= TT_TH_MAX)
    threshold = TT_TH_MAX - 1;
  size_t n = 14;
  for (int i = 13; i >= 0; i--) {
    out[i] = hx[threshold & 15];
    threshold >>= 4;
  }
  while (n > 1 && out[n - 1] == '0')
    n--;
  out[n] = '\0';
  return n;
}

/* The 56 random bits of a 16-byte trace id. */
static inline uint64_t tt__trace_randomness(const uint8_t trace_id[16]) {
  uint64_t r = 0;
  for (int i = 9; i < 16; i++)
    r = (r << 8) | trace_id[i];
  return r;
}

static inline int tt__cs_hexval(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Parses a threshold or randomness value: 1 to 14 lowercase hex digits, the missing trailing
 * digits being zeros (the spec's th encoding drops them). Returns 0, or -EINVAL. */
static inline int tt__threshold_parse(const char *s, size_t len, uint64_t *out) {
  if (len == 0 || len > 14)
    return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < 14; i++) {
    int d = 0;
    if (i < len) {
      d = tt__cs_hexval((uint8_t)s[i]);
      if (d < 0)
        return -EINVAL;
    }
    v = (v << 4) | (uint64_t)d;
  }
  *out = v;
  return 0;
}

/* Trims W3C list optional white space (spaces and tabs) from both ends of [*p, *p + *n). */
static inline void tt__cs_trim(const uint8_t **p, size_t *n) {
  while (*n > 0 && (**p == ' ' || **p == '\t')) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
    (*n)--;
}

/* Steps through a list separated by sep (tracestate members by ',', the ot member's sub-keys by
 * ';'): stores the item at *pos, untrimmed, in *item and *n, moves *pos past it and its separator,
 * and returns 1; returns 0 once *pos has reached len. */
static inline int tt__cs_next(const uint8_t *s, size_t len, size_t *pos, uint8_t sep,
                              const uint8_t **item, size_t *n) {
  if (*pos >= len)
    return 0;
  size_t j = *pos;
  while (j < len && s[j] != sep)
    j++;
  *item = s + *pos;
  *n = j - *pos;
  *pos = j + 1;
  return 1;
}

/* The value of a W3C tracestate's `ot` member (after "ot="), its first if there are several, or
 * NULL. */
static inline const uint8_t *tt__tracestate_ot(const uint8_t *ts, size_t len, size_t *ot_len) {
  const uint8_t *m;
  size_t mn, pos = 0;
  while (tt__cs_next(ts, len, &pos, ',', &m, &mn)) {
    tt__cs_trim(&m, &mn);
    if (mn > 3 && memcmp(m, "ot=", 3) == 0) {
      *ot_len = mn - 3;
      return m + 3;
    }
  }
  return NULL;
}

/* Finds an explicit randomness value (`rv:` followed by exactly 14 hex digits in the `ot`
 * member) in a W3C tracestate. Returns 0 with *rv set, or -ENOENT. */
static inline int tt__tracestate_rv(const uint8_t *ts, size_t len, uint64_t *rv) {
  size_t n = 0, pos = 0, kn;
  const uint8_t *ot = tt__tracestate_ot(ts, len, &n), *k;
  while (tt__cs_next(ot, n, &pos, ';', &k, &kn))
    if (kn == 17 && memcmp(k, "rv:", 3) == 0 &&
        tt__threshold_parse((const char *)k + 3, 14, rv) == 0)
      return 0;
  return -ENOENT;
}

#endif
