/* Policies evaluated directly on trace views: latency per service and per operation, root-only
 * latency, attribute rules (equals, regex, range, exists; span or resource), rate limits and the
 * no-match default. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "policy.h"
#include "sampling.h"
#include "wire.h"

#define MS 1000000ull

typedef struct {
  tt_buf_t bytes[8];
  tt_span_view_t views[8];
  uint8_t trace_id[16];
  size_t n;
  tt_buf_t resource;
} trace_fx_t;

static void kv(tt_buf_t *b, uint32_t field, const char *k, int type, const char *s, int64_t i) {
  tt_buf_t any = TT_BUF_INIT, kvb = TT_BUF_INIT;
  if (type == 1) {
    tt__buf_append_lenfield(&any, 1, s, strlen(s));
  } else {
    tt__buf_append_tag(&any, 3, TT_WT_VARINT);
    tt__buf_append_varint(&any, (uint64_t)i);
  }
  tt__buf_append_lenfield(&kvb, 1, k, strlen(k));
  tt__buf_append_lenfield(&kvb, 2, any.data, any.len);
  tt__buf_append_lenfield(b, field, kvb.data, kvb.len);
  tt__buf_free(&any);
  tt__buf_free(&kvb);
}

/* Adds a span: name, duration in ms, root or not, one optional attribute. */
static void add_span(trace_fx_t *t, const char *service, const char *name, uint64_t start_ms,
                     uint64_t dur_ms, bool root, const char *key, int type, const char *s,
                     int64_t i) {
  tt_buf_t *b = &t->bytes[t->n];
  uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, (uint8_t)(t->n + 1)};
  tt__buf_append_lenfield(b, 1, t->trace_id, 16);
  tt__buf_append_lenfield(b, 2, sid, 8);
  if (!root)
    tt__buf_append_lenfield(b, 4, "\1\1\1\1\1\1\1\1", 8);
  tt__buf_append_lenfield(b, 5, name, strlen(name));
  tt__buf_append_fixed(b, 7, 1000 * MS + start_ms * MS, 8);
  tt__buf_append_fixed(b, 8, 1000 * MS + (start_ms + dur_ms) * MS, 8);
  if (key != NULL)
    kv(b, 9, key, type, s, i);
  tt_span_view_t *v = &t->views[t->n];
  memset(v, 0, sizeof *v);
  v->data = b->data;
  v->len = b->len;
  v->resource = t->resource.data;
  v->resource_len = t->resource.len;
  v->service = (const uint8_t *)service;
  v->service_len = service ? strlen(service) : 0;
  assert_int_equal(tt__wire_scan_span(v->data, v->len, &v->facts), 0);
  t->n++;
}

static void fx_init(trace_fx_t *t) {
  memset(t, 0, sizeof *t);
  for (int i = 0; i < 16; i++)
    t->trace_id[i] = (uint8_t)(0x10 + i);
  kv(&t->resource, 1, "deployment.environment", 1, "prod", 0);
}

static void fx_free(trace_fx_t *t) {
  for (size_t i = 0; i < 8; i++)
    tt__buf_free(&t->bytes[i]);
  tt__buf_free(&t->resource);
}

/* Decisions the summary was checked against (so a test can see it ran). */
static int summary_checks;

static const char *decide(tt_policy_set_t *s, trace_fx_t *t, bool *keep) {
  for (size_t i = 0; i < s->n; i++) {
    char err[128];
    if (s->items[i].kind != TT_POL_RATE_LIMIT || !s->items[i].mu_ready)
      assert_int_equal(tt__policy_prepare(&s->items[i], err, sizeof err), 0);
  }
  tt_trace_view_t tv = {t->trace_id, t->n, t->views, NULL};
  tt_decision_t d;
  tt__policy_decide(s, &tv, 5000 * MS, &d);
  *keep = d.keep;
  /* The shard decides most traces on their summary alone (policy.h): wherever it may, that must
   * decide the same. Sets with a rate limit are left out, since deciding counts in its window. */
  bool may_sum = !tt__policy_set_needs_spans(s);
  for (size_t i = 0; i < s->n; i++)
    may_sum = may_sum && s->items[i].kind != TT_POL_RATE_LIMIT;
  for (size_t i = 0; i < t->n; i++)
    may_sum = may_sum && t->views[i].facts.trace_state_len == 0;
  if (may_sum) {
    tt_trace_summary_t sum;
    tt__trace_summary_init(&sum);
    for (size_t i = 0; i < t->n; i++) {
      const tt_span_facts_t *f = &t->views[i].facts;
      tt__trace_summary_add(&sum, f->start_ns, f->end_ns, f->parent_span_id_len == 0, f->signals);
    }
    tt_trace_view_t sv = {t->trace_id, t->n, NULL, &sum};
    tt_decision_t ds;
    tt__policy_decide(s, &sv, 5000 * MS, &ds);
    assert_int_equal(ds.keep, d.keep);
    assert_int_equal(ds.threshold, d.threshold);
    assert_int_equal(ds.kind, d.kind);
    assert_string_equal(ds.reason, d.reason);
    summary_checks++;
  }
  return d.reason;
}

static void latency_should_apply_service_and_operation_thresholds_to_spans(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 120, true, NULL, 0, NULL, 0);
  add_span(&t, "db", "SELECT orders", 10, 60, false, NULL, 0, NULL, 0);
  tt_policy_set_t *s = tt__policy_set_new(1);
  s->items[0].kind = TT_POL_LATENCY;
  s->items[0].threshold_ns = 1000 * MS; /* the trace (120 ms) is not slow */
  s->items[0].operations = calloc(1, sizeof(tt_named_threshold_t));
  s->items[0].operations[0].name = strdup("SELECT orders");
  s->items[0].operations[0].ns = 50 * MS;
  s->items[0].noperations = 1;
  bool keep;
  assert_string_equal(decide(s, &t, &keep), "latency");
  assert_true(keep);
  s->items[0].operations[0].ns = 70 * MS;
  assert_string_equal(decide(s, &t, &keep), "no_match");
  s->items[0].services = calloc(1, sizeof(tt_named_threshold_t));
  s->items[0].services[0].name = strdup("web");
  s->items[0].services[0].ns = 100 * MS;
  s->items[0].nservices = 1;
  assert_string_equal(decide(s, &t, &keep), "latency");
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void latency_should_measure_root_or_whole_trace(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 100, true, NULL, 0, NULL, 0);
  add_span(&t, "worker", "async job", 50, 2000, false, NULL, 0, NULL, 0); /* outlives root */
  tt_policy_set_t *s = tt__policy_set_new(1);
  s->items[0].kind = TT_POL_LATENCY;
  s->items[0].threshold_ns = 1000 * MS;
  bool keep;
  assert_string_equal(decide(s, &t, &keep), "latency"); /* trace: 2050 ms */
  s->items[0].root_only = true;
  assert_string_equal(decide(s, &t, &keep), "no_match"); /* root: 100 ms */
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void attribute_rules_should_match_each_operator(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, "user.tier", 1, "gold", 0);
  add_span(&t, "web", "retry", 0, 10, false, "retry.count", 2, NULL, 4);
  tt_policy_set_t *s = tt__policy_set_new(1);
  tt_policy_t *p = &s->items[0];
  p->kind = TT_POL_ATTRIBUTE;
  p->key = strdup("user.tier");
  p->value = strdup("gold");
  p->op = TT_ATTR_EQUALS;
  bool keep;
  assert_string_equal(decide(s, &t, &keep), "attribute");
  free(p->value);
  p->value = strdup("silver");
  assert_string_equal(decide(s, &t, &keep), "no_match");
  free(p->key);
  p->key = strdup("retry.count");
  p->op = TT_ATTR_RANGE;
  p->min = 3;
  p->max = INFINITY;
  assert_string_equal(decide(s, &t, &keep), "attribute");
  p->min = 5;
  assert_string_equal(decide(s, &t, &keep), "no_match");
  p->op = TT_ATTR_EQUALS; /* ints compare by their decimal text */
  free(p->value);
  p->value = strdup("4");
  assert_string_equal(decide(s, &t, &keep), "attribute");
  p->op = TT_ATTR_EXISTS;
  free(p->key);
  p->key = strdup("missing.key");
  assert_string_equal(decide(s, &t, &keep), "no_match");
  /* Resource attributes count, unless the rule is limited to spans. */
  free(p->key);
  p->key = strdup("deployment.environment");
  assert_string_equal(decide(s, &t, &keep), "attribute");
  p->scope = TT_ATTR_IN_SPAN;
  assert_string_equal(decide(s, &t, &keep), "no_match");
  p->scope = TT_ATTR_IN_RESOURCE;
  p->keep = false;
  assert_string_equal(decide(s, &t, &keep), "attribute");
  assert_false(keep);
  tt__policy_set_unref(s);
  fx_free(&t);
}

static tt_policy_set_t *rate_limit_then_ratio(double per_second, bool count_spans) {
  tt_policy_set_t *s = tt__policy_set_new(2);
  s->items[0].kind = TT_POL_RATE_LIMIT;
  s->items[0].per_second = per_second;
  s->items[0].count_spans = count_spans;
  s->items[1].kind = TT_POL_RATIO;
  s->items[1].ratio = 1.0;
  char err[64];
  assert_int_equal(tt__policy_prepare(&s->items[0], err, sizeof err), 0);
  assert_int_equal(tt__policy_prepare(&s->items[1], err, sizeof err), 0);
  return s;
}

/* A reproducible stream of random trace ids (splitmix64), so the statistical tests below give the
 * same answer on every run; their tolerances are stated in standard deviations all the same. */
static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void random_trace_id(uint8_t id[16], uint64_t *seed) {
  uint64_t a = splitmix(seed), b = splitmix(seed);
  memcpy(id, &a, 8);
  memcpy(id + 8, &b, 8);
}

static void rate_limit_should_keep_everything_with_weight_one_under_the_limit(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = rate_limit_then_ratio(100, false);
  tt_trace_view_t tv = {t.trace_id, t.n, t.views, NULL};
  tt_decision_t d;
  uint64_t seed = 7;
  /* 90 traces a second for five seconds. */
  for (int i = 0; i < 450; i++) {
    random_trace_id(t.trace_id, &seed);
    tt__policy_decide(s, &tv, 5000 * MS + (uint64_t)i * 11 * MS, &d);
    assert_true(d.keep);
    assert_string_equal(d.reason, "rate_limit");
    assert_int_equal(d.threshold, 0);
    assert_int_equal(tt__sample_rate(d.threshold, NULL), 1);
  }
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void
rate_limit_should_keep_about_the_limit_with_honest_weights_under_overload(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = rate_limit_then_ratio(100, false);
  tt_trace_view_t tv = {t.trace_id, t.n, t.views, NULL};
  tt_decision_t d;
  uint64_t seed = 42;
  /* 1000 traces a second (one a millisecond) for ten seconds: ten times the limit. */
  const int per_window = 1000, windows = 10;
  int64_t weight_sum = 0;
  int kept_steady = 0, kept_first = 0;
  for (int i = 0; i < per_window * windows; i++) {
    random_trace_id(t.trace_id, &seed);
    tt__policy_decide(s, &tv, 5000 * MS + (uint64_t)i * MS, &d);
    assert_string_equal(d.reason, "rate_limit"); /* a miss is dropped, never passed on */
    if (!d.keep)
      continue;
    /* Kept means the consistent rule said so: randomness at or above the threshold. */
    assert_true(tt__trace_randomness(t.trace_id) >= d.threshold);
    weight_sum += tt__sample_rate(d.threshold, t.trace_id);
    if (i < per_window) {
      kept_first++;
    } else {
      kept_steady++;
      assert_int_equal(tt__sample_rate(d.threshold, NULL), 10);
    }
  }
  /* Steady windows: 9000 offered at p = 0.1, so 900 expected, sigma = sqrt(9000*0.1*0.9) = 28.5;
   * accept 5 sigma. */
  assert_in_range(kept_steady, 900 - 143, 900 + 143);
  /* The first window thins a burst as it grows (p = 100/k for the k-th trace): about
   * 100 * (1 + ln 10) = 330 kept, far fewer than the 1000 offered. */
  assert_in_range(kept_first, 200, 460);
  /* Weighted, the kept traces stand for what was offered: the variance of the sum is
   * sum (1-p)/p = 9000*9 + ~4000, sigma ~290; accept 5 sigma around 10000. */
  printf("rate_limit: kept %d + %d of %d, sum(SampleRate) = %lld\n", kept_first, kept_steady,
         per_window * windows, (long long)weight_sum);
  assert_in_range(weight_sum, 10000 - 1450, 10000 + 1450);
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void rate_limit_should_forget_an_old_rate_after_an_idle_window(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = rate_limit_then_ratio(10, false);
  tt_trace_view_t tv = {t.trace_id, t.n, t.views, NULL};
  tt_decision_t d;
  for (int i = 0; i < 100; i++) /* 100 in one second: ten times the limit */
    tt__policy_decide(s, &tv, 5000 * MS + (uint64_t)i * MS, &d);
  tt__policy_decide(s, &tv, 6000 * MS, &d); /* the next window samples at 10 / 100 */
  assert_int_equal(tt__sample_rate(d.threshold, NULL), 10);
  tt__policy_decide(s, &tv, 9000 * MS, &d); /* after quiet windows: the first trace is kept */
  assert_int_equal(d.threshold, 0);
  assert_true(d.keep);
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void rate_limit_by_spans_should_weigh_traces_by_their_span_count(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  for (int i = 0; i < 4; i++)
    add_span(&t, "web", "GET /", 0, 10, i == 0, NULL, 0, NULL, 0);
  tt_policy_set_t *s = rate_limit_then_ratio(40, true);
  tt_trace_view_t tv = {t.trace_id, t.n, t.views, NULL};
  tt_decision_t d;
  for (int i = 0; i < 100; i++) /* 100 traces of 4 spans: 400 spans/s against 40 */
    tt__policy_decide(s, &tv, 5000 * MS + (uint64_t)i * MS, &d);
  tt__policy_decide(s, &tv, 6000 * MS, &d);
  assert_int_equal(tt__sample_rate(d.threshold, NULL), 10);
  tt__policy_set_unref(s);
  fx_free(&t);
}

static void rate_limit_should_prefer_explicit_randomness_from_tracestate(void **state) {
  (void)state;
  /* Two traces with the same id (randomness 0x191a...1f, below a 1/10 threshold), the second's
   * root carrying rv:ff...: rv replaces the id's bits, so only the second is kept. */
  trace_fx_t t, u;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  fx_init(&u);
  tt__buf_append_lenfield(&u.bytes[0], 3, "ot=rv:ffffffffffffff", 20);
  add_span(&u, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = rate_limit_then_ratio(10, false);
  tt_trace_view_t tv = {t.trace_id, t.n, t.views, NULL}, uv = {u.trace_id, u.n, u.views, NULL};
  tt_decision_t d;
  for (int i = 0; i < 100; i++) /* ten times the limit in the first second */
    tt__policy_decide(s, &tv, 5000 * MS + (uint64_t)i * MS, &d);
  tt__policy_decide(s, &tv, 6000 * MS, &d);
  assert_int_equal(tt__sample_rate(d.threshold, NULL), 10);
  assert_false(d.keep);
  assert_string_equal(d.reason, "rate_limit");
  tt__policy_decide(s, &uv, 6001 * MS, &d);
  assert_int_equal(tt__sample_rate(d.threshold, NULL), 10);
  assert_true(d.keep);
  tt__policy_set_unref(s);
  fx_free(&t);
  fx_free(&u);
}

static void ratio_should_prefer_explicit_randomness_from_tracestate(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t); /* trace id randomness 0x19...1f: below the 0.5 threshold, so dropped */
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = tt__policy_set_new(1);
  s->items[0].kind = TT_POL_RATIO;
  s->items[0].ratio = 0.5;
  bool keep;
  assert_string_equal(decide(s, &t, &keep), "ratio");
  assert_false(keep);
  /* The same trace whose root carries rv:ff... is kept: rv replaces the id's bits. */
  trace_fx_t u;
  fx_init(&u);
  tt_buf_t *b = &u.bytes[0];
  tt__buf_append_lenfield(b, 3, "ot=rv:ffffffffffffff", 20);
  add_span(&u, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  assert_string_equal(decide(s, &u, &keep), "ratio");
  assert_true(keep);
  tt__policy_set_unref(s);
  fx_free(&t);
  fx_free(&u);
}

static void errors_should_read_http_status_as_int_or_string(void **state) {
  (void)state;
  tt_policy_set_t *s = tt__policy_set_new(1);
  s->items[0].kind = TT_POL_ERRORS;
  s->items[0].http_5xx = true;
  bool keep;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, "http.status_code", 1, "502", 0);
  assert_string_equal(decide(s, &t, &keep), "errors");
  fx_free(&t);
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, "http.response.status_code", 2, NULL, 499);
  assert_string_equal(decide(s, &t, &keep), "no_match");
  fx_free(&t);
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, "http.response.status_code", 2, NULL, 500);
  assert_string_equal(decide(s, &t, &keep), "errors");
  s->items[0].http_5xx = false; /* switched off: the same span no longer matches */
  assert_string_equal(decide(s, &t, &keep), "no_match");
  fx_free(&t);
  tt__policy_set_unref(s);
}

static void empty_policy_list_should_drop_as_no_match(void **state) {
  (void)state;
  trace_fx_t t;
  fx_init(&t);
  add_span(&t, "web", "GET /", 0, 10, true, NULL, 0, NULL, 0);
  tt_policy_set_t *s = tt__policy_set_new(0);
  bool keep = true;
  assert_string_equal(decide(s, &t, &keep), "no_match");
  assert_false(keep);
  tt__policy_set_unref(s);
  fx_free(&t);
}

static int prepare_regex(const char *pattern, char *err, size_t errlen) {
  tt_policy_set_t *s = tt__policy_set_new(1);
  s->items[0].kind = TT_POL_ATTRIBUTE;
  s->items[0].key = strdup("k");
  s->items[0].value = strdup(pattern);
  s->items[0].op = TT_ATTR_REGEX;
  int rc = tt__policy_prepare(&s->items[0], err, errlen);
  tt__policy_set_unref(s);
  return rc;
}

static void regex_should_refuse_patterns_whose_automaton_explodes(void **state) {
  (void)state;
  char err[128];
  /* Each of these took gigabytes inside glibc's regcomp before it returned. */
  const char *bad[] = {"2++++++++++++++++++++++++++++++++++++++++2222",
                       "a**",
                       "x+{3}",
                       "((a{255}){255}){255}",
                       "(a|b){200}(c{200}){200}",
                       "((((((((x+)+)+)+)+)+)+)+"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = '\0';
    assert_int_equal(prepare_regex(bad[i], err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "bad regex"));
  }
  char longpat[1100];
  memset(longpat, 'a', sizeof longpat - 1);
  longpat[sizeof longpat - 1] = '\0';
  assert_int_equal(prepare_regex(longpat, err, sizeof err), -EINVAL);
  /* Patterns people write still compile. */
  const char *good[] = {"^/api/v[0-9]+/orders/[0-9]{1,10}$", "^(GET|POST) /health(z)?$",
                        "[[:alpha:]]+-[^]x]*", "a{2}b{3,}c{1,5}", "(ab)*|cd+"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    assert_int_equal(prepare_regex(good[i], err, sizeof err), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(latency_should_apply_service_and_operation_thresholds_to_spans),
      cmocka_unit_test(latency_should_measure_root_or_whole_trace),
      cmocka_unit_test(attribute_rules_should_match_each_operator),
      cmocka_unit_test(rate_limit_should_keep_everything_with_weight_one_under_the_limit),
      cmocka_unit_test(rate_limit_should_keep_about_the_limit_with_honest_weights_under_overload),
      cmocka_unit_test(rate_limit_should_forget_an_old_rate_after_an_idle_window),
      cmocka_unit_test(rate_limit_by_spans_should_weigh_traces_by_their_span_count),
      cmocka_unit_test(rate_limit_should_prefer_explicit_randomness_from_tracestate),
      cmocka_unit_test(ratio_should_prefer_explicit_randomness_from_tracestate),
      cmocka_unit_test(errors_should_read_http_status_as_int_or_string),
      cmocka_unit_test(empty_policy_list_should_drop_as_no_match),
      cmocka_unit_test(regex_should_refuse_patterns_whose_automaton_explodes),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  /* The summary was compared with the spans on the tests' own traces, not vacuously. */
  if (summary_checks < 5) {
    fprintf(stderr, "only %d decisions were checked against the summary\n", summary_checks);
    return 1;
  }
  return failed;
}
