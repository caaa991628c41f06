/* Sampling thresholds, tracestate merging and span annotation: see sampling.h. */
#include "sampling.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

bool tt__ratio_keeps(const uint8_t id[16], uint64_t threshold) {
  return tt__trace_randomness(id) >= threshold;
}

/* splitmix64's finaliser: a bijection that spreads every input bit over the output. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

/* A uniform draw in [0, 1) from the whole trace id. Hashed, not read off the id: the keep
 * decision already used the 56 random bits, and a kept trace's bits sit above the threshold,
 * so they are not uniform any more; the hash of all 16 bytes is independent of that for all
 * practical purposes. */
static double trace_draw(const uint8_t id[16]) {
  uint64_t a = 0, b = 0;
  memcpy(&a, id, 8);
  memcpy(&b, id + 8, 8);
  return (double)(mix64(a ^ mix64(b + UINT64_C(0x9e3779b97f4a7c15))) >> 11) * 0x1p-53;
}

/* A weight as a whole number, rounded at random per trace (see tt__sample_rate). */
static int64_t whole_rate(double rate, const uint8_t *trace_id) {
  if (!(rate < 0x1p62))
    return INT64_MAX;
  double whole = floor(rate), frac = rate - whole;
  if (trace_id == NULL || frac < 1e-9 || frac > 1 - 1e-9) {
    int64_t r = (int64_t)llround(rate); /* exact (ratio 0.1 is 9.999...: 10), or no draw */
    return r < 1 ? 1 : r;
  }
  int64_t r = (int64_t)whole + (trace_draw(trace_id) < frac);
  return r < 1 ? 1 : r;
}

int64_t tt__sample_rate(uint64_t threshold, const uint8_t *trace_id) {
  if (threshold >= TT_TH_MAX)
    return INT64_MAX;
  return whole_rate((double)TT_TH_MAX / (double)(TT_TH_MAX - threshold), trace_id);
}

uint64_t tt__threshold_compose_weight(uint64_t threshold, double weight) {
  if (!(weight > 1.0) || isinf(weight) || threshold >= TT_TH_MAX)
    return threshold;
  /* The keep share of the product is our keep share divided by the incoming weight. A whole
   * weight divides in integers, so SampleRate 3 gives exactly round(2^56 / 3) (th
   * aaaaaaaaaaaaab); a fractional one in long double, whose 64-bit mantissa holds 2^56 exactly. */
  uint64_t share = TT_TH_MAX - threshold, keep;
  if (weight == floor(weight) && weight <= 0x1p56) {
    uint64_t w = (uint64_t)weight;
    keep = share / w + (share % w >= w - w / 2 ? 1 : 0);
  } else {
    keep = (uint64_t)llroundl((long double)share / (long double)weight);
  }
  /* A weight beyond 2^56 still keeps the span: the smallest share there is. */
  if (keep < 1)
    keep = 1;
  return TT_TH_MAX - keep;
}

void tt__threshold_format(uint64_t threshold, char *out) {
  /* The library's encoder (consistent_sampling.h): one definition of th's hex form. */
  (void)tt__threshold_encode(threshold, out);
}

#define TT_TRACESTATE_MAX_MEMBERS 32

int tt__tracestate_merge(const uint8_t *ts, size_t len, uint64_t threshold, tt_buf_t *out,
                         uint64_t *effective) {
  /* The ot member's value, and with it an upstream threshold. */
  size_t otlen = 0;
  const uint8_t *ot = tt__tracestate_ot(ts, len, &otlen);
  uint64_t eff = threshold;
  const uint8_t *k;
  size_t kn, pos = 0;
  while (tt__cs_next(ot, otlen, &pos, ';', &k, &kn)) {
    uint64_t up;
    if (kn > 3 && memcmp(k, "th:", 3) == 0 &&
        tt__threshold_parse((const char *)k + 3, kn - 3, &up) == 0 && up > eff)
      eff = up;
  }
  char th[16];
  tt__threshold_format(eff, th);
  int rc = tt__buf_append(out, "ot=th:", 6);
  if (rc == 0)
    rc = tt__buf_append(out, th, strlen(th));
  /* Keep the ot member's other sub-keys (rv:, vendor extensions) in their order. */
  pos = 0;
  while (rc == 0 && tt__cs_next(ot, otlen, &pos, ';', &k, &kn)) {
    if (kn > 0 && !(kn >= 3 && memcmp(k, "th:", 3) == 0)) {
      rc = tt__buf_append(out, ";", 1);
      if (rc == 0)
        rc = tt__buf_append(out, k, kn);
    }
  }
  int members = 1;
  const uint8_t *m;
  size_t mn;
  pos = 0;
  while (rc == 0 && members < TT_TRACESTATE_MAX_MEMBERS &&
         tt__cs_next(ts, len, &pos, ',', &m, &mn)) {
    tt__cs_trim(&m, &mn);
    if (mn > 0 && !(mn >= 3 && memcmp(m, "ot=", 3) == 0)) {
      rc = tt__buf_append(out, ",", 1);
      if (rc == 0)
        rc = tt__buf_append(out, m, mn);
      members++;
    }
  }
  if (effective != NULL)
    *effective = eff;
  return rc;
}

/* Whether a KeyValue is one of the attributes we write (SampleRate, tailtrace.decision.*). A
 * SampleRate whose value is an int or a double stores that value in *weight: the weight an
 * upstream sampler (a Honeycomb SDK, Refinery) gave the span. Other value types carry none. */
static bool is_our_attr(const uint8_t *kv, size_t len, double *weight) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  const uint8_t *any = NULL;
  size_t any_len = 0;
  bool rate = false, ours = false;
  tt__wire_reader_init(&r, kv, len);
  while (tt__wire_next(&r, &f) == 1) {
    if (f.field == 1 && f.wt == TT_WT_LEN) {
      rate = f.len == 10 && memcmp(f.p, "SampleRate", 10) == 0;
      ours = rate || (f.len > 19 && memcmp(f.p, "tailtrace.decision.", 19) == 0);
    } else if (f.field == 2 && f.wt == TT_WT_LEN) {
      any = f.p;
      any_len = f.len;
    }
  }
  if (!rate || any == NULL)
    return ours;
  tt__wire_reader_init(&r, any, any_len);
  while (tt__wire_next(&r, &f) == 1) {
    if (f.field == 3 && f.wt == TT_WT_VARINT) {
      *weight = (double)(int64_t)f.u;
    } else if (f.field == 4 && f.wt == TT_WT_FIXED64) {
      double d;
      memcpy(&d, &f.u, sizeof d);
      *weight = d;
    }
  }
  return true;
}

/* Whether a tracestate's ot member holds a well-formed th: the span was sampled upstream by a
 * consistent sampler, whose threshold is then the span's incoming weight. */
static bool tracestate_has_th(const uint8_t *ts, size_t len) {
  size_t otlen = 0, pos = 0, kn;
  const uint8_t *ot = tt__tracestate_ot(ts, len, &otlen), *k;
  uint64_t up;
  while (tt__cs_next(ot, otlen, &pos, ';', &k, &kn))
    if (kn > 3 && memcmp(k, "th:", 3) == 0 &&
        tt__threshold_parse((const char *)k + 3, kn - 3, &up) == 0)
      return true;
  return false;
}

/* Appends KeyValue{key, AnyValue{...}} as a span attribute (field 9), framed in place: the sizes
 * are computed up front, so no temporary buffer is needed. `val` is a string (is_int false) or
 * `ival` an int. */
static uint8_t *put_varint(uint8_t *o, uint64_t v) {
  while (v >= 0x80) {
    *o++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *o++ = (uint8_t)v;
  return o;
}

static int append_attr(tt_buf_t *b, const char *key, bool is_int, const char *val, int64_t ival) {
  size_t kl = strlen(key), vl = is_int ? 0 : strlen(val);
  size_t any_len = is_int ? 1 + tt__varint_size((uint64_t)ival) : 1 + tt__varint_size(vl) + vl;
  size_t kv_len = 1 + tt__varint_size(kl) + kl + 1 + tt__varint_size(any_len) + any_len;
  size_t total = 1 + tt__varint_size(kv_len) + kv_len;
  if (tt__buf_reserve(b, total) != 0)
    return -ENOMEM;
  /* Written in place, once the room is there: a kept span gets three of these. */
  uint8_t *o = b->data + b->len;
  *o++ = (9 << 3) | TT_WT_LEN;
  o = put_varint(o, kv_len);
  *o++ = (1 << 3) | TT_WT_LEN;
  o = put_varint(o, kl);
  memcpy(o, key, kl);
  o += kl;
  *o++ = (2 << 3) | TT_WT_LEN;
  o = put_varint(o, any_len);
  if (is_int) {
    *o++ = (3 << 3) | TT_WT_VARINT;
    o = put_varint(o, (uint64_t)ival);
  } else {
    *o++ = (1 << 3) | TT_WT_LEN;
    o = put_varint(o, vl);
    memcpy(o, val, vl);
    o += vl;
  }
  b->len += total;
  return 0;
}

int tt__span_annotate(const uint8_t *span, size_t len, const tt_annotation_t *a, tt_buf_t *out) {
  const uint8_t *ts = NULL;
  size_t tslen = 0;
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  size_t mark = out->len;
  double in_weight = 0; /* an upstream SampleRate attribute's value; 0: none */
  tt__wire_reader_init(&r, span, len);
  /* The bytes we keep are never re-encoded, only re-framed: copied in runs of fields, each run
   * ending at a field left out (the tracestate, an earlier annotation of ours). */
  const uint8_t *run = span;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    bool ours = f.field == 9 && f.wt == TT_WT_LEN && is_our_attr(f.p, f.len, &in_weight);
    if (f.field == 3 && f.wt == TT_WT_LEN) {
      ts = f.p;
      tslen = f.len;
    } else if (!ours) {
      continue;
    }
    if (tt__buf_append(out, run, (size_t)(f.start - run)) != 0)
      goto nomem;
    run = f.end;
  }
  if (rc < 0) {
    out->len = mark;
    return -EINVAL;
  }
  if (len > 0 && tt__buf_append(out, run, len - (size_t)(run - span)) != 0)
    goto nomem;
  /* The merged tracestate is written in place and its tag and length slid in front of it, so
   * annotating a span allocates nothing beyond the output's own growth. */
  /* The span's incoming weight is its ot=th when it has one (merged below by the stricter
   * threshold: both decisions compare thresholds with the same randomness, so ours is nested in
   * the upstream one and the keep probability is the smaller of the two), else its SampleRate
   * attribute, a decision independent of our randomness, so the weights multiply. */
  uint64_t mine = a->threshold, eff = a->threshold;
  double product = 0;
  if (in_weight > 1.0 && !isinf(in_weight) && a->threshold < TT_TH_MAX &&
      !tracestate_has_th(ts, tslen)) {
    mine = tt__threshold_compose_weight(a->threshold, in_weight);
    product = in_weight * ((double)TT_TH_MAX / (double)(TT_TH_MAX - a->threshold));
    if (product > (double)TT_TH_MAX) /* where the threshold saturates, so does SampleRate */
      product = (double)TT_TH_MAX;
  }
  size_t ts_at = out->len;
  if (tt__tracestate_merge(ts, tslen, mine, out, &eff) != 0)
    goto nomem;
  size_t merged = out->len - ts_at;
  uint8_t hdr[12];
  size_t hn = 0;
  hdr[hn++] = (3 << 3) | TT_WT_LEN;
  for (uint64_t v = merged; hn < sizeof hdr; v >>= 7) {
    hdr[hn++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    if (v < 0x80)
      break;
  }
  if (tt__buf_reserve(out, hn) != 0)
    goto nomem;
  memmove(out->data + ts_at + hn, out->data + ts_at, merged);
  memcpy(out->data + ts_at, hdr, hn);
  out->len += hn;
  /* From the exact product when there is one: th at 14 hex digits is within 2^-56 of it, and a
   * whole product (SampleRate 10 kept by the errors policy) stays exactly whole. */
  int64_t rate = product > 0 ? whole_rate(product, a->trace_id) : tt__sample_rate(eff, a->trace_id);
  if (append_attr(out, "SampleRate", true, NULL, rate) != 0)
    goto nomem;
  if (a->reason != NULL && append_attr(out, "tailtrace.decision.reason", false, a->reason, 0) != 0)
    goto nomem;
  if (a->trigger != NULL &&
      append_attr(out, "tailtrace.decision.trigger", false, a->trigger, 0) != 0)
    goto nomem;
  return 0;
nomem:
  out->len = mark;
  return -ENOMEM;
}
