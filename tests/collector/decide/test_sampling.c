/* Sampling weights, th encoding, tracestate merging and span annotation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "otlp_fixture.h"
#include "sampling.h"
#include "wire.h"

static char *merge(const char *ts, uint64_t th, uint64_t *eff) {
  static char out[2048];
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__tracestate_merge((const uint8_t *)ts, strlen(ts), th, &b, eff), 0);
  assert_true(b.len < sizeof out);
  memcpy(out, b.data, b.len);
  out[b.len] = '\0';
  tt__buf_free(&b);
  return out;
}

static void threshold_should_follow_the_consistent_probability_spec(void **state) {
  (void)state;
  char s[16];
  tt__threshold_format(tt__threshold_from_ratio(1.0), s);
  assert_string_equal(s, "0");
  tt__threshold_format(tt__threshold_from_ratio(0.5), s);
  assert_string_equal(s, "8");
  tt__threshold_format(tt__threshold_from_ratio(0.25), s);
  assert_string_equal(s, "c");
  tt__threshold_format(tt__threshold_from_ratio(0.1), s);
  assert_string_equal(s, "e6666666666666");
  uint64_t t;
  assert_int_equal(tt__threshold_parse("c", 1, &t), 0);
  assert_int_equal(t, 0xc0000000000000ull);
  assert_int_equal(tt__threshold_parse("C", 1, &t), -EINVAL); /* lowercase only */
  assert_int_equal(tt__threshold_parse("123456789012345", 15, &t), -EINVAL);
  assert_int_equal(tt__sample_rate(0, NULL), 1);
  assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.1), NULL), 10);
  assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.01), NULL), 100);
  assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.25), NULL), 4);
}

static void ratio_should_compare_the_last_56_bits(void **state) {
  (void)state;
  uint8_t id[16];
  memset(id, 0xff, sizeof id);
  id[9] = 0x7f; /* R = 0x7fffff... < 0x80000000000000 */
  uint64_t half = tt__threshold_from_ratio(0.5);
  assert_false(tt__ratio_keeps(id, half));
  id[9] = 0x80;
  memset(id + 10, 0, 6);
  assert_true(tt__ratio_keeps(id, half)); /* R == T keeps */
  /* The first 9 bytes play no part. */
  memset(id, 0, 9);
  assert_true(tt__ratio_keeps(id, half));
  assert_int_equal(tt__trace_randomness(id), 0x80000000000000ull);
}

static void tracestate_merge_should_add_update_and_preserve(void **state) {
  (void)state;
  uint64_t eff;
  uint64_t th10 = tt__threshold_from_ratio(0.1);
  assert_string_equal(merge("", th10, &eff), "ot=th:e6666666666666");
  assert_string_equal(merge("congo=t61rcWkgMzE", 0, &eff), "ot=th:0,congo=t61rcWkgMzE");
  /* An existing lower threshold is replaced by ours; other ot sub-keys stay, in order. */
  assert_string_equal(merge("a=1 , ot=th:4;rv:0123456789abcd;x:y ,b=2", th10, &eff),
                      "ot=th:e6666666666666;rv:0123456789abcd;x:y,a=1,b=2");
  assert_int_equal(eff, th10);
  /* An upstream higher threshold wins: the span was already sampled at a lower probability. */
  assert_string_equal(merge("ot=th:f", th10, &eff), "ot=th:f");
  assert_int_equal(tt__sample_rate(eff, NULL), 16);
  /* A malformed upstream th is ignored, never propagated. */
  assert_string_equal(merge("ot=th:XYZ", 0, &eff), "ot=th:0");
  /* Empty members disappear; at most 32 members in all. */
  assert_string_equal(merge(",,a=1,,", 0, &eff), "ot=th:0,a=1");
  char many[1024] = "";
  for (int i = 0; i < 40; i++) {
    char m[16];
    snprintf(m, sizeof m, "%sk%d=v", i ? "," : "", i);
    strcat(many, m);
  }
  char *out = merge(many, 0, &eff);
  int members = 1;
  for (char *p = out; *p; p++)
    members += *p == ',';
  assert_int_equal(members, 32);
  assert_non_null(strstr(out, "ot=th:0,k0=v,k1=v"));
  assert_null(strstr(out, "k31=v"));
}

static void explicit_randomness_should_be_read_from_the_ot_member(void **state) {
  (void)state;
  uint64_t rv = 0;
  const char *a = "x=1,ot=th:8;rv:fedcba98765432,y=2";
  assert_int_equal(tt__tracestate_rv((const uint8_t *)a, strlen(a), &rv), 0);
  assert_int_equal(rv, 0xfedcba98765432ull);
  const char *short_rv = "ot=rv:fedcba9876543"; /* 13 digits: not a randomness value */
  assert_int_equal(tt__tracestate_rv((const uint8_t *)short_rv, strlen(short_rv), &rv), -ENOENT);
  const char *other = "vendor=rv:fedcba98765432";
  assert_int_equal(tt__tracestate_rv((const uint8_t *)other, strlen(other), &rv), -ENOENT);
}

static void annotate_should_replace_tracestate_and_append_weight_and_reason(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 1, 0);
  sp.trace_state = "ot=rv:00000000000001,z=9";
  sp.attr_key = "SampleRate"; /* a stale weight from an upstream sampler */
  sp.attr_str = "7";
  size_t len;
  uint8_t *req = fx_request(&sp, 1, &len);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       req);
  pb_span_t *in = r->resource_spans[0]->scope_spans[0]->spans[0];
  size_t slen = opentelemetry__proto__trace__v1__span__get_packed_size(in);
  uint8_t *span = malloc(slen);
  opentelemetry__proto__trace__v1__span__pack(in, span);
  tt_buf_t out = TT_BUF_INIT;
  tt_annotation_t a = {tt__threshold_from_ratio(0.25), "sampled", "idle", in->trace_id.data};
  assert_int_equal(tt__span_annotate(span, slen, &a, &out), 0);
  pb_span_t *s = opentelemetry__proto__trace__v1__span__unpack(NULL, out.len, out.data);
  assert_non_null(s);
  assert_string_equal(s->trace_state, "ot=th:c;rv:00000000000001,z=9");
  assert_memory_equal(s->trace_id.data, in->trace_id.data, 16);
  assert_string_equal(s->name, in->name);
  assert_int_equal(s->start_time_unix_nano, in->start_time_unix_nano);
  size_t rates = 0;
  for (size_t i = 0; i < s->n_attributes; i++)
    rates += strcmp(s->attributes[i]->key, "SampleRate") == 0;
  assert_int_equal(rates, 1);
  assert_int_equal(fx_attr(s, "SampleRate")->int_value, 4);
  assert_string_equal(fx_attr(s, "tailtrace.decision.reason")->string_value, "sampled");
  assert_string_equal(fx_attr(s, "tailtrace.decision.trigger")->string_value, "idle");
  opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
  /* Malformed input leaves the output untouched. */
  size_t before = out.len;
  assert_int_equal(tt__span_annotate(span, slen - 1, &a, &out), -EINVAL);
  assert_int_equal(out.len, before);
  tt__buf_free(&out);
  free(span);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
  free(req);
}

/* What a kept span leaves with: its tracestate and SampleRate. */
typedef struct {
  char trace_state[256];
  int64_t sample_rate;
  size_t rates; /* SampleRate attributes on the output: always 1 */
} weighed_t;

/* Annotates one span, built with protobuf-c (an independent encoder), that arrives with
 * tracestate `ts` (NULL: none) and a SampleRate attribute (kind 'i' int, 'd' double, 's' string
 * of `rate`, 0 for none), kept by a decision of threshold `th`. */
static weighed_t weigh(const char *ts, char kind, double rate, uint64_t th, uint64_t trace) {
  pb_span_t sp;
  opentelemetry__proto__trace__v1__span__init(&sp);
  uint8_t id[16], sid[8];
  fx_id(id, 16, trace);
  fx_id(sid, 8, trace + 1);
  sp.trace_id.data = id;
  sp.trace_id.len = 16;
  sp.span_id.data = sid;
  sp.span_id.len = 8;
  sp.name = "op";
  sp.trace_state = ts != NULL ? (char *)ts : "";
  pb_kv_t *kv[2];
  size_t nkv = 0;
  kv[nkv++] = fx_kv_str("http.route", "/checkout");
  char text[32];
  if (kind != 0) {
    snprintf(text, sizeof text, "%g", rate);
    pb_kv_t *r = fx_kv_str("SampleRate", text);
    if (kind == 'i') {
      r->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
      r->value->int_value = (int64_t)rate;
    } else if (kind == 'd') {
      r->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
      r->value->double_value = rate;
    }
    kv[nkv++] = r;
  }
  sp.attributes = kv;
  sp.n_attributes = nkv;
  size_t len = opentelemetry__proto__trace__v1__span__get_packed_size(&sp);
  uint8_t *bytes = malloc(len);
  opentelemetry__proto__trace__v1__span__pack(&sp, bytes);
  tt_buf_t out = TT_BUF_INIT;
  tt_annotation_t a = {th, "errors", NULL, id};
  assert_int_equal(tt__span_annotate(bytes, len, &a, &out), 0);
  pb_span_t *o = opentelemetry__proto__trace__v1__span__unpack(NULL, out.len, out.data);
  assert_non_null(o);
  weighed_t w;
  memset(&w, 0, sizeof w);
  assert_true(strlen(o->trace_state) < sizeof w.trace_state);
  strcpy(w.trace_state, o->trace_state);
  for (size_t i = 0; i < o->n_attributes; i++) {
    if (strcmp(o->attributes[i]->key, "SampleRate") == 0) {
      w.rates++;
      assert_int_equal(o->attributes[i]->value->value_case,
                       OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
      w.sample_rate = o->attributes[i]->value->int_value;
    }
  }
  assert_non_null(fx_attr(o, "http.route")); /* the span's own attributes pass through */
  opentelemetry__proto__trace__v1__span__free_unpacked(o, NULL);
  for (size_t i = 0; i < nkv; i++)
    fx_kv_free(kv[i]);
  tt__buf_free(&out);
  free(bytes);
  return w;
}

/* The specification's worked examples, arriving as an SDK writes them (ot=th at its default
 * precision of 4 hex digits, from a head sampler) on spans the errors policy keeps: the weight
 * out is the incoming one and the th is passed through. 1/3 at 4 digits is aaab, a weight of
 * 3.00002, so SampleRate is 3 except with probability 2e-5 (the trace drawn here gives 3). */
static void kept_span_should_carry_its_incoming_th_weight(void **state) {
  (void)state;
  static const struct {
    const char *th;
    int64_t rate;
  } ex[] = {{"0", 1}, {"8", 2}, {"c", 4}, {"aaab", 3}, {"e666", 10}, {"fd70a", 100}};
  for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
    char ts[64], want[64];
    snprintf(ts, sizeof ts, "vendor=x,ot=th:%s;rv:00000000000001", ex[i].th);
    snprintf(want, sizeof want, "ot=th:%s;rv:00000000000001,vendor=x", ex[i].th);
    weighed_t w = weigh(ts, 0, 0, 0, 100 + i);
    assert_string_equal(w.trace_state, want);
    assert_int_equal(w.sample_rate, ex[i].rate);
    assert_int_equal(w.rates, 1);
  }
  /* The library's own ratio sampler writes these at precision 4: the same values. */
  char s[16];
  static const double ratio[] = {0.5, 0.25, 1.0 / 3, 0.1, 0.01};
  for (size_t i = 0; i < 5; i++) {
    tt__threshold_format(tt__threshold_from_ratio_prec(ratio[i], TT_TH_PRECISION_DEFAULT), s);
    assert_string_equal(s, ex[i + 1].th);
  }
}

/* A span sampled upstream by Honeycomb's rule (a SampleRate attribute, int or double) and kept
 * by the errors policy keeps its weight, and gains the matching th at full precision, so a
 * backend reading either agrees. The worked examples' probabilities as SampleRate. */
static void kept_span_should_turn_an_incoming_sample_rate_into_a_matching_th(void **state) {
  (void)state;
  static const struct {
    double rate;
    const char *th;
  } ex[] = {
      {2, "8"}, {4, "c"}, {3, "aaaaaaaaaaaaab"}, {10, "e6666666666666"}, {100, "fd70a3d70a3d71"}};
  for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
    for (int k = 0; k < 2; k++) {
      weighed_t w = weigh("congo=t61rcWkgMzE", k ? 'd' : 'i', ex[i].rate, 0, 200 + i * 2 + k);
      char want[64];
      snprintf(want, sizeof want, "ot=th:%s,congo=t61rcWkgMzE", ex[i].th);
      assert_string_equal(w.trace_state, want);
      assert_int_equal(w.sample_rate, (int64_t)ex[i].rate);
      assert_int_equal(w.rates, 1);
      /* The th read back gives the same whole weight, whatever the trace. */
      uint64_t t = 0;
      assert_int_equal(tt__threshold_parse(ex[i].th, strlen(ex[i].th), &t), 0);
      assert_int_equal(tt__sample_rate(t, NULL), (int64_t)ex[i].rate);
    }
  }
  /* A weight below or at 1, or a SampleRate that is not a number, weighs 1. */
  assert_int_equal(weigh(NULL, 'i', 0, 0, 300).sample_rate, 1);
  assert_int_equal(weigh(NULL, 'i', -5, 0, 301).sample_rate, 1);
  assert_int_equal(weigh(NULL, 'd', 0.5, 0, 302).sample_rate, 1);
  weighed_t s = weigh(NULL, 's', 10, 0, 303);
  assert_int_equal(s.sample_rate, 1);
  assert_string_equal(s.trace_state, "ot=th:0");
}

/* With our own ratio decision as well, the weights multiply for a SampleRate attribute (the two
 * draws are independent), and the stricter threshold wins for an incoming th (both compare the
 * same randomness, so ours is nested in the upstream one). */
static void kept_span_should_combine_its_weight_with_our_ratio(void **state) {
  (void)state;
  uint64_t tenth = tt__threshold_from_ratio(0.1), quarter = tt__threshold_from_ratio(0.25);
  weighed_t w = weigh(NULL, 'i', 10, tenth, 400);
  assert_int_equal(w.sample_rate, 100);
  assert_string_equal(w.trace_state, "ot=th:fd70a3d70a3d71");
  w = weigh(NULL, 'd', 4, quarter, 401);
  assert_int_equal(w.sample_rate, 16);
  assert_string_equal(w.trace_state, "ot=th:f");
  /* A fractional SampleRate: 2.5 x 4 = 10. */
  w = weigh(NULL, 'd', 2.5, quarter, 402);
  assert_int_equal(w.sample_rate, 10);
  assert_string_equal(w.trace_state, "ot=th:e6666666666666");
  /* Incoming th:8 (weight 2) and our 0.25: the stricter threshold, c, weight 4 (not 8). */
  w = weigh("ot=th:8", 0, 0, quarter, 403);
  assert_int_equal(w.sample_rate, 4);
  assert_string_equal(w.trace_state, "ot=th:c");
  /* Incoming th:e666 (weight ~10) and our 0.25: the upstream one is stricter and stays. */
  w = weigh("ot=th:e666", 0, 0, quarter, 404);
  assert_string_equal(w.trace_state, "ot=th:e666");
  assert_in_range(w.sample_rate, 9, 10);
  /* A th and a SampleRate both: the th is the span's weight, the attribute is replaced. */
  w = weigh("ot=th:c", 'i', 10, 0, 405);
  assert_int_equal(w.sample_rate, 4);
  assert_string_equal(w.trace_state, "ot=th:c");
  assert_int_equal(w.rates, 1);
  /* A malformed th is no weight: the SampleRate attribute is. */
  w = weigh("ot=th:XYZ", 'i', 4, 0, 406);
  assert_int_equal(w.sample_rate, 4);
  assert_string_equal(w.trace_state, "ot=th:c");
  /* A weight past 2^56 keeps the smallest share there is, and SampleRate saturates with it. */
  w = weigh(NULL, 'd', 1e30, 0, 407);
  assert_string_equal(w.trace_state, "ot=th:ffffffffffffff");
  assert_int_equal(w.sample_rate, (int64_t)1 << 56);
}

/* Trace ids from a fixed seed: the tests below are deterministic, and still see ids spread as
 * an SDK's random ones are. */
static void seeded_trace_id(uint8_t id[16], uint64_t *seed) {
  for (int h = 0; h < 2; h++) {
    uint64_t z = (*seed += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    memcpy(id + 8 * h, &z, 8);
  }
}

/* Offers n traces to a ratio decision and sums SampleRate over the kept ones; counts the kept
 * traces and the weights seen below, at and above floor(1/ratio). */
static int64_t weighted_count(double ratio, int n, int *kept, int *low, int *high) {
  uint64_t th = tt__threshold_from_ratio(ratio), seed = 42;
  int64_t whole = (int64_t)(1 / ratio), sum = 0;
  *kept = *low = *high = 0;
  for (int i = 0; i < n; i++) {
    uint8_t id[16];
    seeded_trace_id(id, &seed);
    if (!tt__ratio_keeps(id, th))
      continue;
    int64_t w = tt__sample_rate(th, id);
    assert_int_equal(w, tt__sample_rate(th, id)); /* the same for every span of the trace */
    assert_in_range(w, whole, whole + 1);
    *low += w == whole;
    *high += w == whole + 1;
    (*kept)++;
    sum += w;
  }
  return sum;
}

/* A weight 1/ratio that is not a whole number is rounded down or up per trace, so that the sum
 * of SampleRate over kept traces estimates the traces offered. Rounded to the nearest, ratio 0.4
 * weighed 3 (sum ~120,000 of 100,000 offered) and ratio 0.3 weighed 3 (sum ~90,000). */
static void sample_rate_should_round_at_random_so_weighted_counts_are_unbiased(void **state) {
  (void)state;
  const int n = 100000;
  int kept, low, high;
  /* w = 2.5: each kept trace weighs 2 or 3, half and half. Var(sum) = n (p E[w^2] - 1)
   * = n (0.4 * 6.5 - 1) = 1.6 n: sigma 400; accept 5 sigma. */
  int64_t sum = weighted_count(0.4, n, &kept, &low, &high);
  printf("ratio 0.4: kept %d of %d (weights 2: %d, 3: %d), sum(SampleRate) = %lld\n", kept, n, low,
         high, (long long)sum);
  assert_in_range(sum, n - 2000, n + 2000);
  assert_in_range(high, kept / 2 - kept / 20, kept / 2 + kept / 20);
  /* w = 3.333: 3 two times in three, 4 once. Var(sum) = n (0.3 * (2/3 * 9 + 1/3 * 16) - 1)
   * = 1.4 n: sigma 375; accept 5 sigma. */
  sum = weighted_count(0.3, n, &kept, &low, &high);
  printf("ratio 0.3: kept %d of %d (weights 3: %d, 4: %d), sum(SampleRate) = %lld\n", kept, n, low,
         high, (long long)sum);
  assert_in_range(sum, n - 1875, n + 1875);
  assert_in_range(high, kept / 3 - kept / 20, kept / 3 + kept / 20);
}

/* A whole weight is exact whatever the trace: no draw. */
static void sample_rate_should_be_exact_when_the_weight_is_whole(void **state) {
  (void)state;
  uint64_t seed = 7;
  for (int i = 0; i < 1000; i++) {
    uint8_t id[16];
    seeded_trace_id(id, &seed);
    assert_int_equal(tt__sample_rate(0, id), 1);
    assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.1), id), 10);
    assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.25), id), 4);
    assert_int_equal(tt__sample_rate(tt__threshold_from_ratio(0.01), id), 100);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(threshold_should_follow_the_consistent_probability_spec),
      cmocka_unit_test(ratio_should_compare_the_last_56_bits),
      cmocka_unit_test(tracestate_merge_should_add_update_and_preserve),
      cmocka_unit_test(explicit_randomness_should_be_read_from_the_ot_member),
      cmocka_unit_test(annotate_should_replace_tracestate_and_append_weight_and_reason),
      cmocka_unit_test(sample_rate_should_round_at_random_so_weighted_counts_are_unbiased),
      cmocka_unit_test(sample_rate_should_be_exact_when_the_weight_is_whole),
      cmocka_unit_test(kept_span_should_carry_its_incoming_th_weight),
      cmocka_unit_test(kept_span_should_turn_an_incoming_sample_rate_into_a_matching_th),
      cmocka_unit_test(kept_span_should_combine_its_weight_with_our_ratio),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
