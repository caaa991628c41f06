/* The collector core through its handler: grouping, decision timing, policies, annotation, late
 * spans, memory budget, per-trace cap and shutdown. A fake clock drives the timing wheel and
 * tt__pipeline_sync() makes each step deterministic, so no test sleeps or measures time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>

#include <cmocka.h>

#include "otlp_fixture.h"
#include "pipeline_env.h"
#include "pipeline_int.h"
#include "sampling.h"

static tt_policy_set_t *policies_errors_latency_ratio(double ratio) {
  tt_policy_set_t *s = tt__policy_set_new(3);
  char err[128];
  s->items[0].kind = TT_POL_ERRORS;
  s->items[0].http_5xx = true;
  s->items[0].exception_event = true;
  s->items[1].kind = TT_POL_LATENCY;
  s->items[1].threshold_ns = 1 * SEC;
  s->items[2].kind = TT_POL_RATIO;
  s->items[2].ratio = ratio;
  for (size_t i = 0; i < s->n; i++)
    assert_int_equal(tt__policy_prepare(&s->items[i], err, sizeof err), 0);
  return s;
}

/* Decisions final at once (decision.drop_delay 0): the tests of when and how traces are decided.
 * env_new_delayed keeps the default drop_delay, for the tests of pending decisions. */
static env_t *env_new_opts(double ratio, bool delayed) {
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.root_grace_ns = 2 * SEC;
  o.idle_timeout_ns = 10 * SEC;
  o.tick_ns = 10000000ull;
  if (!delayed)
    o.drop_delay_ns = 0;
  return env_new_with(&o, policies_errors_latency_ratio(ratio));
}

static env_t *env_new(double ratio) {
  return env_new_opts(ratio, false);
}

static env_t *env_new_delayed(double ratio) {
  return env_new_opts(ratio, true);
}

static size_t exported(env_t *e) {
  tt__pipeline_sync(e->p);
  return atomic_load(&e->sink->spans);
}

static void handler_should_reject_invalid_ids_one_by_one_and_accept_the_rest(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t sp[4] = {fx_span(1, 1, 0), fx_span(1, 2, 1), fx_span(2, 3, 0), fx_span(3, 4, 0)};
  sp[2].trace_id_len = 8;      /* short trace id */
  memset(sp[3].span_id, 0, 8); /* all-zero span id */
  tt_export_result_t res = send(e, sp, 4);
  assert_int_equal(res.status, TT_EXPORT_OK);
  assert_int_equal(res.rejected_spans, 2);
  assert_non_null(strstr(res.message, "trace_id"));
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->spans_accepted), 2);
  assert_int_equal(atomic_load(&m->spans_refused_invalid), 2);
  env_free(e);
}

static void handler_should_refuse_a_malformed_request_whole(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t sp = fx_span(1, 1, 0);
  size_t len;
  uint8_t *req = fx_request(&sp, 1, &len);
  tt_export_request_t r = {req, len - 3, "test", 0}; /* truncated inside a span */
  tt_export_result_t res;
  tt__pipeline_handle(e->p, &r, &res);
  assert_int_equal(res.status, TT_EXPORT_INVALID);
  free(req);
  assert_int_equal(atomic_load(&tt__pipeline_metrics(e->p)->spans_accepted), 0);
  env_free(e);
}

/* received = accepted + refused, whatever the causes. */
static void assert_span_counts(env_t *e, uint64_t accepted, uint64_t invalid, uint64_t utf8) {
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->spans_accepted), accepted);
  assert_int_equal(atomic_load(&m->spans_refused_invalid), invalid);
  assert_int_equal(atomic_load(&m->spans_refused_utf8), utf8);
  assert_int_equal(atomic_load(&m->spans_received), accepted + invalid + utf8);
}

static void handler_should_refuse_a_span_with_invalid_utf8_alone(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  enum { N = 6 };
  span_spec_t sp[N + 1];
  for (int i = 0; i < N; i++)
    sp[i] = fx_span(40 + (uint64_t)i, 1, 0);
  sp[0].attr_key = "city";
  sp[0].attr_str = "Z\xc3\xbcrich"; /* valid multi-byte: accepted */
  sp[N] = fx_span(60, 1, 0);
  sp[N].attr_key = "city";
  sp[N].attr_str = "Z\xfcrich"; /* Latin-1, as a misconfigured client sends it */
  tt_export_result_t res = send(e, sp, N + 1);
  assert_int_equal(res.status, TT_EXPORT_OK);
  assert_int_equal(res.rejected_spans, 1);
  assert_non_null(strstr(res.message, "invalid UTF-8 in span attribute value"));
  assert_span_counts(e, N, 0, 1);
  advance(e, 3 * SEC); /* past the root grace: every accepted trace is decided and kept */
  assert_int_equal(exported(e), N);
  env_free(e);
}

static void handler_should_refuse_every_span_of_a_resource_with_invalid_utf8(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t sp[4] = {fx_span(70, 1, 0), fx_span(71, 1, 0), fx_span(72, 1, 0), fx_span(73, 1, 0)};
  sp[1].service = sp[2].service = "caf\xc3"; /* truncated sequence in service.name */
  sp[3].trace_id_len = 8;                    /* and one span refused for its id */
  tt_export_result_t res = send(e, sp, 4);
  assert_int_equal(res.status, TT_EXPORT_OK);
  assert_int_equal(res.rejected_spans, 3);
  assert_span_counts(e, 1, 1, 2);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 1);
  env_free(e);
}

static void handler_should_refuse_every_span_of_a_scope_with_invalid_utf8(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t sp[3] = {fx_span(80, 1, 0), fx_span(81, 1, 0), fx_span(82, 1, 0)};
  sp[2].service = "other"; /* its own resource and scope, which stay valid */
  size_t len;
  uint8_t *req = fx_request(sp, 3, &len);
  /* The first scope's name "fixture" becomes "fi\xffture". */
  size_t at = 0;
  while (at + 7 <= len && memcmp(req + at, "fixture", 7) != 0)
    at++;
  assert_true(at + 7 <= len);
  req[at + 2] = 0xff;
  tt_export_request_t r = {req, len, "test", 0};
  tt_export_result_t res;
  tt__pipeline_handle(e->p, &r, &res);
  free(req);
  assert_int_equal(res.status, TT_EXPORT_OK);
  assert_int_equal(res.rejected_spans, 2);
  assert_non_null(strstr(res.message, "invalid UTF-8 in scope name"));
  assert_span_counts(e, 1, 0, 2);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 1);
  env_free(e);
}

static void trace_should_be_decided_a_grace_after_its_root_arrives(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  /* Children first, in separate requests, the root last: out of order across requests. */
  span_spec_t c1 = fx_span(7, 2, 1), c2 = fx_span(7, 3, 2), root = fx_span(7, 1, 0);
  send(e, &c2, 1);
  advance(e, SEC);
  send(e, &c1, 1);
  advance(e, SEC);
  assert_int_equal(exported(e), 0);
  send(e, &root, 1);
  advance(e, 1900000000ull);
  assert_int_equal(exported(e), 0);
  advance(e, 200000000ull);
  assert_int_equal(exported(e), 3);
  /* All three spans came back in one ResourceSpans, grouped under their shared resource. */
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 3);
  assert_int_equal(v.nreqs, 1);
  assert_int_equal(v.reqs[0]->n_resource_spans, 1);
  assert_string_equal(v.reqs[0]->resource_spans[0]->schema_url,
                      "https://opentelemetry.io/schemas/1.24.0");
  assert_string_equal(v.reqs[0]->resource_spans[0]->scope_spans[0]->scope->name, "fixture");
  for (size_t i = 0; i < v.n; i++)
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.trigger")->string_value,
                        "root_grace");
  cap_view_free(&v);
  env_free(e);
}

static void trace_without_root_should_be_decided_after_idle_timeout(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t c1 = fx_span(8, 2, 1), c2 = fx_span(8, 3, 1);
  send(e, &c1, 1);
  advance(e, 9 * SEC);
  assert_int_equal(exported(e), 0);
  send(e, &c2, 1); /* activity resets the idle timer */
  advance(e, 9 * SEC);
  assert_int_equal(exported(e), 0);
  advance(e, 2 * SEC);
  assert_int_equal(exported(e), 2);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_IDLE]), 1);
  env_free(e);
}

static void error_trace_should_be_kept_with_weight_one_and_its_reason(void **state) {
  (void)state;
  env_t *e = env_new_delayed(0.0); /* the ratio keeps nothing: only the error policy can keep */
  span_spec_t sp[2] = {fx_span(9, 1, 0), fx_span(9, 2, 1)};
  sp[1].status = 2;
  send(e, sp, 2);
  span_spec_t ok = fx_span(10, 1, 0);
  send(e, &ok, 1);
  advance(e, 3 * SEC);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 2);
  for (size_t i = 0; i < v.n; i++) {
    assert_int_equal(fx_attr(v.spans[i], "SampleRate")->int_value, 1);
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.reason")->string_value, "errors");
    assert_string_equal(v.spans[i]->trace_state, "ot=th:0");
  }
  cap_view_free(&v);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][0][TT_TRIG_ROOT_GRACE]), 0);
  advance(e, drop_delay()); /* the drop is final, and counted, once drop_delay is over */
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][0][TT_TRIG_ROOT_GRACE]), 1);
  env_free(e);
}

static void errors_policy_should_see_http_5xx_and_exception_events(void **state) {
  (void)state;
  env_t *e = env_new(0.0);
  span_spec_t a = fx_span(11, 1, 0), b = fx_span(12, 1, 0), c = fx_span(13, 1, 0);
  a.http_status = 503;
  b.exception_event = true;
  c.http_status = 404;
  send(e, &a, 1);
  send(e, &b, 1);
  send(e, &c, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 2);
  env_free(e);
}

static void slow_trace_should_be_kept_by_latency(void **state) {
  (void)state;
  env_t *e = env_new(0.0);
  span_spec_t sp[2] = {fx_span(14, 1, 0), fx_span(14, 2, 1)};
  sp[1].start_ns = sp[0].start_ns + 500000000ull;
  sp[1].end_ns = sp[0].start_ns + 1500000000ull; /* the trace spans 1.5 s */
  send(e, sp, 2);
  span_spec_t fast = fx_span(15, 1, 0);
  send(e, &fast, 1);
  advance(e, 3 * SEC);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 2);
  assert_string_equal(fx_attr(v.spans[0], "tailtrace.decision.reason")->string_value, "latency");
  cap_view_free(&v);
  env_free(e);
}

/* A latency threshold per operation reads span names, which the shard otherwise never takes
 * from a held span's bytes: the name must still decide. */
static void latency_per_operation_should_read_span_names(void **state) {
  (void)state;
  char err[256];
  tt_policy_set_t *pol = tt__policy_set_new(1);
  pol->items[0].kind = TT_POL_LATENCY;
  pol->items[0].operations = calloc(1, sizeof *pol->items[0].operations);
  pol->items[0].operations[0].name = strdup("GET /slow");
  pol->items[0].operations[0].ns = 100000000ull; /* 100 ms */
  pol->items[0].noperations = 1;
  assert_int_equal(tt__policy_prepare(&pol->items[0], err, sizeof err), 0);
  assert_true(tt__policy_set_reads_names(pol));
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.root_grace_ns = 2 * SEC;
  o.tick_ns = 10000000ull;
  o.drop_delay_ns = 0;
  env_t *e = env_new_with(&o, pol);
  span_spec_t slow = fx_span(16, 1, 0), other = fx_span(17, 1, 0);
  slow.name = "GET /slow";
  other.name = "GET /other";
  slow.end_ns = slow.start_ns + 200000000ull; /* both last 200 ms */
  other.end_ns = other.start_ns + 200000000ull;
  send(e, &slow, 1);
  send(e, &other, 1);
  advance(e, 3 * SEC);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 1);
  assert_string_equal(v.spans[0]->name, "GET /slow");
  cap_view_free(&v);
  env_free(e);
}

static void ratio_should_keep_its_share_deterministically_with_weight(void **state) {
  (void)state;
  env_t *e = env_new(0.1);
  const size_t n = 10000;
  uint64_t th = tt__threshold_from_ratio(0.1);
  size_t expect = 0;
  span_spec_t batch[100];
  for (size_t i = 0; i < n; i++) {
    batch[i % 100] = fx_span(100000 + i, 1, 0);
    expect += tt__ratio_keeps(batch[i % 100].trace_id, th);
    if (i % 100 == 99)
      send(e, batch, 100);
  }
  advance(e, 3 * SEC);
  size_t kept = exported(e);
  assert_int_equal(kept, expect);
  /* Binomial(10000, 0.1): sd = 30; 5 sd either side. */
  assert_true(kept > 850 && kept < 1150);
  cap_view_t v;
  cap_view(e->sink, &v);
  char ths[16];
  tt__threshold_format(th, ths);
  char want[32];
  snprintf(want, sizeof want, "ot=th:%s", ths);
  assert_string_equal(want, "ot=th:e6666666666666");
  for (size_t i = 0; i < v.n; i++) {
    assert_int_equal(fx_attr(v.spans[i], "SampleRate")->int_value, 10);
    assert_string_equal(v.spans[i]->trace_state, want);
    assert_true(tt__ratio_keeps(v.spans[i]->trace_id.data, th));
  }
  cap_view_free(&v);
  env_free(e);
}

static void policies_should_apply_in_order_first_match_wins(void **state) {
  (void)state;
  tt_policy_set_t *s = tt__policy_set_new(2);
  char err[128];
  s->items[0].kind = TT_POL_ATTRIBUTE;
  s->items[0].key = strdup("http.route");
  s->items[0].value = strdup("^/health");
  s->items[0].op = TT_ATTR_REGEX;
  s->items[0].keep = false;
  snprintf(s->items[0].name, sizeof s->items[0].name, "drop-health");
  s->items[1].kind = TT_POL_ERRORS;
  for (size_t i = 0; i < s->n; i++)
    assert_int_equal(tt__policy_prepare(&s->items[i], err, sizeof err), 0);
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  env_t *e = env_new_with(&o, s);
  span_spec_t a = fx_span(20, 1, 0), b = fx_span(21, 1, 0);
  a.status = b.status = 2;
  a.attr_key = b.attr_key = "http.route";
  a.attr_str = "/healthz";
  b.attr_str = "/api/orders";
  send(e, &a, 1);
  send(e, &b, 1);
  advance(e, 3 * SEC);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 1);
  assert_string_equal(fx_attr(v.spans[0], "http.route")->string_value, "/api/orders");
  cap_view_free(&v);
  advance(e, drop_delay());
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_ATTRIBUTE][0][TT_TRIG_ROOT_GRACE]), 1);
  env_free(e);
}

static void kept_span_should_merge_ot_threshold_into_existing_tracestate(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t a = fx_span(30, 1, 0);
  a.trace_state = "vendor=x, ot=rv:abcdef01234567;th:8,other=y";
  send(e, &a, 1);
  advance(e, 3 * SEC);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 1);
  /* Upstream sampled at 1/2 (th:8): that threshold wins and the weight is 2. */
  assert_string_equal(v.spans[0]->trace_state, "ot=th:8;rv:abcdef01234567,vendor=x,other=y");
  assert_int_equal(fx_attr(v.spans[0], "SampleRate")->int_value, 2);
  cap_view_free(&v);
  env_free(e);
}

static void late_spans_should_follow_the_decision(void **state) {
  (void)state;
  env_t *e = env_new(0.0);
  span_spec_t kept = fx_span(40, 1, 0), dropped = fx_span(41, 1, 0);
  kept.status = 2;
  send(e, &kept, 1);
  send(e, &dropped, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 1);
  span_spec_t late_k = fx_span(40, 2, 1), late_d = fx_span(41, 2, 1);
  send(e, &late_k, 1);
  send(e, &late_d, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 2);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->late_spans_kept), 1);
  assert_int_equal(atomic_load(&m->late_spans_dropped), 1);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 2);
  assert_string_equal(fx_attr(v.spans[1], "tailtrace.decision.reason")->string_value, "errors");
  assert_string_equal(fx_attr(v.spans[1], "tailtrace.decision.trigger")->string_value, "late");
  cap_view_free(&v);
  env_free(e);
}

static void memory_budget_should_decide_early_and_throttle_without_silent_loss(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 64 * 1024;
  o.retry_after_ms = 700;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  size_t throttled = 0, sent_ok = 0;
  /* Whether a request in this loop meets a full budget depends on how fast the shards decide
   * early (they run concurrently), so the loop only counts throttling; the end of the test
   * forces it deterministically. */
  enum { SPANS = 100 };
  span_spec_t batch[SPANS];
  for (uint64_t i = 0; i < 80; i++) {
    for (uint64_t k = 0; k < SPANS; k++)
      batch[k] = fx_span(1000 + i, k + 1, k ? 1 : 0); /* one trace per request, never idle */
    tt_export_result_t r = send(e, batch, SPANS);
    if (r.status == TT_EXPORT_THROTTLED) {
      assert_int_equal(r.retry_after_ms, 700);
      throttled++;
    } else {
      assert_int_equal(r.status, TT_EXPORT_OK);
      sent_ok++;
    }
    if (i % 10 == 9)
      tt__pipeline_sync(e->p); /* shards run their pressure checks */
  }
  tt__pipeline_sync(e->p);
  /* A request that would take the budget past its limit on its own can never be taken: it is
   * refused for good, with no retry delay, and the limit named. */
  {
    enum { BIG = 2000 }; /* well over half the budget in request bytes */
    span_spec_t *big = calloc(BIG, sizeof *big);
    assert_non_null(big);
    for (uint64_t k = 0; k < BIG; k++)
      big[k] = fx_span(999999, k + 1, k ? 1 : 0);
    size_t len;
    free(fx_request(big, BIG, &len));
    assert_true(len * 2 > o.memory_budget);
    tt_export_result_t r = send(e, big, BIG);
    free(big);
    assert_int_equal(r.status, TT_EXPORT_TOO_LARGE);
    assert_int_equal(r.retry_after_ms, 0);
    assert_non_null(strstr(r.message, "more than memory.budget"));
  }
  tt__pipeline_sync(e->p);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->requests_throttled), throttled);
  assert_int_equal(atomic_load(&m->requests_too_large), 1);
  uint64_t early = 0;
  for (int k = 0; k < TT_POL__COUNT; k++)
    early += atomic_load(&m->decisions[k][1][TT_TRIG_MEMORY]);
  assert_true(early > 0);
  assert_true((uint64_t)atomic_load(&m->bytes_held) <= o.memory_budget);
  /* Every accepted span is exported, dropped or still held: nothing vanished. */
  tt__pipeline_shutdown(e->p);
  assert_int_equal(atomic_load(&m->spans_accepted), sent_ok * SPANS);
  assert_int_equal(atomic_load(&e->sink->spans) + atomic_load(&m->spans_dropped), sent_ok * SPANS);
  assert_int_equal(atomic_load(&m->bytes_held), 0);
  env_free(e);
}

static void pressure_from_shared_resource_bytes_should_still_decide_early(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 256 * 1024;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  /* One small span per request under a 4 KiB resource: the held bytes are mostly resource
   * blobs, which belong to no shard. */
  static char service[4096];
  memset(service, 's', sizeof service - 1);
  size_t ok = 0;
  for (uint64_t i = 0; i < 300; i++) {
    span_spec_t sp = fx_span(70000 + i, 2, 1);
    sp.service = service;
    ok += send(e, &sp, 1).status == TT_EXPORT_OK;
    if (i % 10 == 9)
      tt__pipeline_sync(e->p);
  }
  tt__pipeline_sync(e->p);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  uint64_t early = 0;
  for (int k = 0; k < TT_POL__COUNT; k++)
    early += atomic_load(&m->decisions[k][1][TT_TRIG_MEMORY]);
  assert_true(early > 0);
  assert_true((uint64_t)atomic_load(&m->bytes_held) <= o.memory_budget);
  tt__pipeline_shutdown(e->p);
  assert_int_equal(atomic_load(&e->sink->spans), ok);
  env_free(e);
}

static void trace_reaching_the_byte_cap_should_be_decided_at_once(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.max_trace_bytes = 2048;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  /* Ten requests of five spans: the cap is checked as each request's run of the trace arrives. */
  for (uint64_t r = 0; r < 10; r++) {
    span_spec_t batch[5];
    for (uint64_t k = 0; k < 5; k++)
      batch[k] = fx_span(50, r * 5 + k + 1, 1);
    send(e, batch, 5);
  }
  tt__pipeline_sync(e->p);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_TRACE_CAP]), 1);
  /* The spans after the cap follow the decision as late spans. */
  assert_true(atomic_load(&m->late_spans_kept) > 0);
  assert_int_equal(exported(e), 50);
  env_free(e);
}

static void shutdown_should_decide_every_held_trace(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  span_spec_t batch[30];
  for (uint64_t k = 0; k < 30; k++)
    batch[k] = fx_span(60 + k, 2, 1);
  send(e, batch, 30);
  tt__pipeline_sync(e->p);
  assert_int_equal(exported(e), 0);
  tt__pipeline_shutdown(e->p);
  assert_int_equal(atomic_load(&e->sink->spans), 30);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_SHUTDOWN]), 30);
  tt_export_result_t r = send(e, batch, 1);
  assert_int_equal(r.status, TT_EXPORT_UNAVAILABLE);
  env_free(e);
}

static void new_policies_should_apply_to_later_decisions(void **state) {
  (void)state;
  env_t *e = env_new(0.0);
  span_spec_t a = fx_span(70, 1, 0), b = fx_span(71, 1, 0);
  send(e, &a, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 0);
  tt_policy_set_t *all = policies_errors_latency_ratio(1.0);
  tt__pipeline_set_policies(e->p, all);
  tt__policy_set_unref(all);
  send(e, &b, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 1);
  env_free(e);
}

static void busy_trace_should_be_decided_at_its_max_age(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0; /* ratio keeps final at once, as the timing below expects */
  o.idle_timeout_ns = 10 * SEC;
  o.max_trace_age_ns = 30 * SEC;
  o.tick_ns = 10000000ull;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  /* A span every 5 s: never idle, no root. */
  for (uint64_t k = 0; k < 6; k++) {
    span_spec_t c = fx_span(80, k + 2, 1);
    send(e, &c, 1);
    advance(e, 5 * SEC);
  }
  assert_int_equal(exported(e), 6);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_MAX_AGE]), 1);
  env_free(e);
}

static void decided_ids_should_be_forgotten_after_their_ttl(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0; /* ratio keeps final at once, as the timing below expects */
  o.root_grace_ns = 2 * SEC;
  o.late_cache_ttl_ns = 10 * SEC;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  span_spec_t root = fx_span(90, 1, 0), late = fx_span(90, 2, 1), later = fx_span(90, 3, 1);
  send(e, &root, 1);
  advance(e, 3 * SEC); /* decided: kept */
  send(e, &late, 1);   /* within the ttl: follows the decision at once */
  advance(e, 0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->late_spans_kept), 1);
  advance(e, 11 * SEC); /* the id is forgotten */
  send(e, &later, 1);
  advance(e, 0);
  assert_int_equal(atomic_load(&m->late_spans_kept), 1);
  assert_int_equal(atomic_load(&m->traces_held), 1); /* held again as a new trace */
  env_free(e);
}

static void decided_id_cache_should_stay_within_its_size(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0;      /* ratio keeps final at once, as the timing below expects */
  o.late_cache_traces = 10; /* 5 per shard */
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  span_spec_t batch[40];
  for (uint64_t i = 0; i < 40; i++)
    batch[i] = fx_span(95000 + i, 1, 0);
  send(e, batch, 40);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 40);
  /* Late spans for all 40: at most the 10 remembered ids can follow their decision. */
  for (uint64_t i = 0; i < 40; i++)
    batch[i] = fx_span(95000 + i, 2, 1);
  send(e, batch, 40);
  advance(e, 0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_true(atomic_load(&m->late_spans_kept) <= 10);
  assert_int_equal(atomic_load(&m->late_spans_kept) + (uint64_t)atomic_load(&m->traces_held), 40);
  env_free(e);
}

static void rate_limited_traces_should_carry_honest_weights_and_misses_be_counted(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.root_grace_ns = 2 * SEC;
  tt_policy_set_t *pol = tt__policy_set_new(1);
  char err[64];
  pol->items[0].kind = TT_POL_RATE_LIMIT;
  pol->items[0].per_second = 100;
  assert_int_equal(tt__policy_prepare(&pol->items[0], err, sizeof err), 0);
  env_t *e = env_new_with(&o, pol);
  /* Eight seconds of 1000 single-span traces a second: ten times the limit. */
  const uint64_t per_sec = 1000, secs = 8;
  span_spec_t batch[100];
  for (uint64_t sec = 0; sec < secs; sec++) {
    for (uint64_t i = 0; i < per_sec; i++) {
      batch[i % 100] = fx_span(500000 + sec * per_sec + i, 1, 0);
      if (i % 100 == 99)
        send(e, batch, 100);
    }
    advance(e, 1 * SEC);
  }
  /* Second by second, as traffic would: a quiet gap of two windows resets the rate to 1. */
  for (int i = 0; i < 3; i++)
    advance(e, 1 * SEC);
  advance(e, drop_delay()); /* every drop final */
  size_t kept = exported(e);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  uint64_t kept_dec = atomic_load(&m->decisions[TT_POL_RATE_LIMIT][1][TT_TRIG_ROOT_GRACE]);
  uint64_t dropped_dec = atomic_load(&m->decisions[TT_POL_RATE_LIMIT][0][TT_TRIG_ROOT_GRACE]);
  assert_int_equal(kept_dec, kept);
  assert_int_equal(kept_dec + dropped_dec, per_sec * secs); /* misses are drops, by reason */
  assert_int_equal(atomic_load(&m->spans_dropped), dropped_dec);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, kept);
  int64_t sum = 0;
  size_t weight_ten = 0;
  for (size_t i = 0; i < v.n; i++) {
    const char *ts = v.spans[i]->trace_state;
    uint64_t th = 0;
    assert_memory_equal(ts, "ot=th:", 6);
    assert_int_equal(tt__threshold_parse(ts + 6, strlen(ts) - 6, &th), 0);
    int64_t rate = fx_attr(v.spans[i], "SampleRate")->int_value;
    assert_int_equal(
        rate,
        tt__sample_rate(th, v.spans[i]->trace_id.data)); /* the weight matches the threshold */
    assert_true(tt__ratio_keeps(v.spans[i]->trace_id.data, th));
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.reason")->string_value,
                        "rate_limit");
    sum += rate;
    weight_ten += rate == 10;
  }
  /* After the first second every window samples at 100/1000: most kept traces weigh 10. */
  assert_true(weight_ten > kept / 2);
  /* sum(SampleRate) estimates the 8000 offered: sigma = sqrt(7000*9 + ~5000) ~ 260; 5 sigma. */
  printf("rate_limit pipeline: kept %zu of %llu, sum(SampleRate) = %lld\n", kept,
         (unsigned long long)(per_sec * secs), (long long)sum);
  assert_in_range(sum, 8000 - 1300, 8000 + 1300);
  cap_view_free(&v);
  env_free(e);
}

static void duplicate_spans_should_be_exported_once_and_counted(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  /* A 12-span trace (past the linear scan, so the id set is used) and a 2-span trace. */
  span_spec_t big[12], small[2] = {fx_span(71, 1, 0), fx_span(71, 2, 1)};
  for (uint64_t k = 0; k < 12; k++)
    big[k] = fx_span(70, k + 1, k ? 1 : 0);
  send(e, big, 6);
  send(e, big, 12); /* a retry of the first six, with six new ones */
  send(e, big + 6, 6);
  send(e, small, 2);
  send(e, small, 2);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 14);
  assert_int_equal(atomic_load(&m->spans_duplicate), 6 + 6 + 2);
  /* Late: a retry of already-emitted spans is dropped; a new span goes out once. */
  span_spec_t late = fx_span(70, 13, 1);
  send(e, big + 10, 2);
  send(e, &late, 1);
  send(e, &late, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 15);
  assert_int_equal(atomic_load(&m->late_spans_kept), 1);
  assert_int_equal(atomic_load(&m->spans_duplicate), 14 + 2 + 1);
  /* The accounting still balances: accepted = exported + dropped + duplicate. */
  assert_int_equal(atomic_load(&m->spans_accepted),
                   exported(e) + atomic_load(&m->spans_dropped) + atomic_load(&m->spans_duplicate));
  /* One request holding a new trace's span twice (one run, one block): held once. */
  span_spec_t twice[3] = {fx_span(72, 1, 0), fx_span(72, 1, 0), fx_span(72, 2, 1)};
  send(e, twice, 3);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 17);
  assert_int_equal(atomic_load(&m->spans_duplicate), 14 + 2 + 1 + 1);
  cap_view_t v;
  cap_view(e->sink, &v);
  for (size_t i = 0; i < v.n; i++)
    for (size_t j = i + 1; j < v.n; j++)
      assert_false(v.spans[i]->span_id.len == v.spans[j]->span_id.len &&
                   memcmp(v.spans[i]->span_id.data, v.spans[j]->span_id.data, 8) == 0 &&
                   memcmp(v.spans[i]->trace_id.data, v.spans[j]->trace_id.data, 16) == 0);
  cap_view_free(&v);
  env_free(e);
}

static void late_duplicates_beyond_the_remembered_ids_should_go_out_again(void **state) {
  (void)state;
  /* The documented limit: a kept trace remembers its last 16 emitted span ids only. */
  env_t *e = env_new(1.0);
  span_spec_t big[40];
  for (uint64_t k = 0; k < 40; k++)
    big[k] = fx_span(72, k + 1, k ? 1 : 0);
  send(e, big, 40);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 40);
  send(e, big + 39, 1); /* among the last 16: dropped */
  send(e, big, 1);      /* the first span, long forgotten: exported again */
  advance(e, 0);
  assert_int_equal(exported(e), 41);
  assert_int_equal(atomic_load(&tt__pipeline_metrics(e->p)->spans_duplicate), 1);
  env_free(e);
}

static void decided_cache_should_count_against_the_budget_within_its_share(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0; /* ratio keeps final at once, as the timing below expects */
  o.memory_budget = 64 * 1024;
  o.late_cache_traces = 1000000; /* the count alone would never bound it */
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(1.0));
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  span_spec_t batch[100];
  for (uint64_t b = 0; b < 20; b++) {
    for (uint64_t i = 0; i < 100; i++)
      batch[i] = fx_span(800000 + b * 100 + i, 1, 0);
    assert_int_equal(send(e, batch, 100).status, TT_EXPORT_OK);
    advance(e, 3 * SEC);
    int64_t cache = atomic_load(&m->cache_bytes);
    assert_true(cache > 0);
    assert_true((uint64_t)cache <= o.memory_budget / 4);
    assert_true((uint64_t)(cache + atomic_load(&m->bytes_held)) <= o.memory_budget);
  }
  assert_int_equal(exported(e), 2000);
  /* Ten more, decided last: their ids fit well within the cache's share and are remembered,
   * while the oldest were forgotten to stay within the bytes. */
  for (uint64_t i = 0; i < 10; i++)
    batch[i] = fx_span(800000 + 2000 + i, 1, 0);
  send(e, batch, 10);
  advance(e, 3 * SEC);
  for (uint64_t i = 0; i < 10; i++)
    batch[i] = fx_span(800000 + 2000 + i, 2, 1);
  send(e, batch, 10);
  advance(e, 0);
  assert_int_equal(atomic_load(&m->late_spans_kept), 10);
  for (uint64_t i = 0; i < 10; i++)
    batch[i] = fx_span(800000 + i, 2, 1);
  send(e, batch, 10);
  advance(e, 0);
  assert_int_equal(atomic_load(&m->late_spans_kept), 10);
  assert_int_equal(atomic_load(&m->traces_held), 10); /* new traces: their ids were forgotten */
  env_free(e);
}

typedef struct {
  env_t *e;
  int k;
} sender_t;

/* Sender k sends span k of every trace, so each trace's spans arrive from four threads. */
static void *sender(void *arg) {
  sender_t *sd = arg;
  span_spec_t batch[20];
  for (uint64_t r = 0; r < 25; r++) {
    for (uint64_t i = 0; i < 20; i++) {
      uint64_t trace = 200000 + r * 20 + i;
      batch[i] = fx_span(trace, (uint64_t)sd->k + 1, sd->k == 0 ? 0 : 1);
    }
    tt_export_result_t res = send(sd->e, batch, 20);
    assert_int_equal(res.status, TT_EXPORT_OK);
  }
  return NULL;
}

static void concurrent_senders_should_group_every_trace_and_lose_nothing(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  pthread_t th[4];
  sender_t sd[4];
  for (int k = 0; k < 4; k++) {
    sd[k] = (sender_t){e, k};
    pthread_create(&th[k], NULL, sender, &sd[k]);
  }
  for (int k = 0; k < 4; k++)
    pthread_join(th[k], NULL);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 4 * 25 * 20);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  /* 500 traces, each decided once with all four spans: no span arrived late. */
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_ROOT_GRACE]), 500);
  assert_int_equal(atomic_load(&m->late_spans_kept), 0);
  assert_int_equal(atomic_load(&m->traces_held), 0);
  env_free(e);
}

/* ---- late evidence: decision.drop_delay ------------------------------------------------------ */

static uint64_t decided(env_t *e, tt_policy_kind_t k, bool keep, tt_trigger_t t) {
  tt__pipeline_sync(e->p);
  return atomic_load(&tt__pipeline_metrics(e->p)->decisions[k][keep][t]);
}

static void late_error_span_should_turn_a_pending_drop_into_a_keep_sent_complete(void **state) {
  (void)state;
  env_t *e = env_new_delayed(0.0); /* the ratio keeps nothing */
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  span_spec_t root = fx_span(900, 1, 0), mid = fx_span(900, 2, 1);
  send(e, &root, 1);
  send(e, &mid, 1);
  advance(e, 3 * SEC); /* root + grace: decided drop, pending */
  assert_int_equal(exported(e), 0);
  assert_int_equal(atomic_load(&m->traces_pending), 1);
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 0);
  /* Another process's span, exported on its SDK's timer, brings the error. */
  span_spec_t leaf = fx_span(900, 3, 2);
  leaf.status = 2;
  send(e, &leaf, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 3);
  assert_int_equal(atomic_load(&m->traces_pending), 0);
  assert_int_equal(atomic_load(&m->traces_rescued[0]), 1);
  assert_int_equal(decided(e, TT_POL_ERRORS, true, TT_TRIG_LATE_SPAN), 1);
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_int_equal(v.n, 3);
  for (size_t i = 0; i < v.n; i++) {
    assert_int_equal(fx_attr(v.spans[i], "SampleRate")->int_value, 1);
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.reason")->string_value, "errors");
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.trigger")->string_value,
                        "late_span");
  }
  cap_view_free(&v);
  /* The drop it replaced is never counted. */
  advance(e, drop_delay());
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 0);
  assert_int_equal(atomic_load(&m->spans_dropped), 0);
  env_free(e);
}

static void
pending_drop_should_be_final_after_drop_delay_and_later_evidence_counted_late(void **state) {
  (void)state;
  env_t *e = env_new_delayed(0.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  span_spec_t root = fx_span(901, 1, 0), ok = fx_span(901, 2, 1);
  send(e, &root, 1);
  advance(e, 3 * SEC);
  send(e, &ok, 1); /* a late span without evidence joins the pending trace */
  advance(e, 0);
  assert_int_equal(exported(e), 0);
  assert_int_equal(atomic_load(&m->late_spans_dropped), 0);
  advance(e, drop_delay());
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 1);
  assert_int_equal(atomic_load(&m->spans_dropped), 2);
  assert_int_equal(atomic_load(&m->traces_held), 0);
  span_spec_t err = fx_span(901, 3, 1);
  err.status = 2;
  send(e, &err, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 0); /* too late: the drop was final */
  assert_int_equal(atomic_load(&m->late_spans_dropped), 1);
  assert_int_equal(atomic_load(&m->traces_rescued[0]), 0);
  env_free(e);
}

static void late_error_should_replace_a_ratio_keep_so_errored_traces_weigh_one(void **state) {
  (void)state;
  env_t *e = env_new_delayed(1.0); /* the ratio keeps everything, weight 1... */
  tt_policy_set_t *pol = policies_errors_latency_ratio(0.5);
  tt__pipeline_set_policies(e->p, pol); /* ...now half of it, weight 2 */
  tt__policy_set_unref(pol);
  /* A trace id the 0.5 ratio keeps (randomness >= 2^55). */
  uint64_t t = 960;
  for (;; t++) {
    span_spec_t probe = fx_span(t, 1, 0);
    if (tt__ratio_keeps(probe.trace_id, tt__threshold_from_ratio(0.5)))
      break;
  }
  span_spec_t root = fx_span(t, 1, 0);
  send(e, &root, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 0); /* a keep by chance waits for late evidence */
  span_spec_t leaf = fx_span(t, 2, 1);
  leaf.status = 2;
  send(e, &leaf, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 2);
  cap_view_t v;
  cap_view(e->sink, &v);
  for (size_t i = 0; i < v.n; i++) {
    assert_int_equal(fx_attr(v.spans[i], "SampleRate")->int_value, 1);
    assert_string_equal(fx_attr(v.spans[i], "tailtrace.decision.reason")->string_value, "errors");
  }
  cap_view_free(&v);
  assert_int_equal(decided(e, TT_POL_ERRORS, true, TT_TRIG_LATE_SPAN), 1);
  assert_int_equal(decided(e, TT_POL_RATIO, true, TT_TRIG_ROOT_GRACE), 0);
  /* Without evidence, the ratio keep goes out when drop_delay ends, with its weight. */
  span_spec_t other = fx_span(t + 1000000, 1, 0);
  for (uint64_t u = t + 1000000;; u++) {
    other = fx_span(u, 1, 0);
    if (tt__ratio_keeps(other.trace_id, tt__threshold_from_ratio(0.5)))
      break;
  }
  send(e, &other, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 2);
  advance(e, drop_delay());
  assert_int_equal(exported(e), 3);
  assert_int_equal(decided(e, TT_POL_RATIO, true, TT_TRIG_ROOT_GRACE), 1);
  env_free(e);
}

static void drop_rule_listed_before_errors_should_still_win_over_late_evidence(void **state) {
  (void)state;
  tt_policy_set_t *s = tt__policy_set_new(2);
  char err[128];
  s->items[0].kind = TT_POL_ATTRIBUTE;
  snprintf(s->items[0].name, sizeof s->items[0].name, "no-health");
  s->items[0].key = strdup("http.route");
  s->items[0].value = strdup("/healthz");
  s->items[0].keep = false;
  s->items[1].kind = TT_POL_ERRORS;
  snprintf(s->items[1].name, sizeof s->items[1].name, "errors");
  for (size_t i = 0; i < s->n; i++)
    assert_int_equal(tt__policy_prepare(&s->items[i], err, sizeof err), 0);
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  env_t *e = env_new_with(&o, s);
  span_spec_t root = fx_span(902, 1, 0);
  root.attr_key = "http.route";
  root.attr_str = "/healthz";
  send(e, &root, 1);
  advance(e, 3 * SEC);
  span_spec_t leaf = fx_span(902, 2, 1);
  leaf.status = 2;
  send(e, &leaf, 1);
  advance(e, 0);
  advance(e, drop_delay());
  assert_int_equal(exported(e), 0);
  assert_int_equal(decided(e, TT_POL_ATTRIBUTE, false, TT_TRIG_ROOT_GRACE), 1);
  assert_int_equal(atomic_load(&tt__pipeline_metrics(e->p)->traces_rescued[0]), 0);
  env_free(e);
}

static void zero_drop_delay_should_make_drops_final_at_once(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0;
  env_t *e = env_new_with(&o, policies_errors_latency_ratio(0.0));
  span_spec_t root = fx_span(903, 1, 0);
  send(e, &root, 1);
  advance(e, 3 * SEC);
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 1);
  span_spec_t leaf = fx_span(903, 2, 1);
  leaf.status = 2;
  send(e, &leaf, 1);
  advance(e, 0);
  assert_int_equal(exported(e), 0);
  assert_int_equal(atomic_load(&tt__pipeline_metrics(e->p)->late_spans_dropped), 1);
  env_free(e);
}

static void span_with_a_remote_parent_should_start_the_grace_timer_like_a_root(void **state) {
  (void)state;
  env_t *e = env_new(1.0);                /* idle_timeout 10 s, root_grace 2 s */
  span_spec_t entry = fx_span(904, 2, 1); /* its parent is in another service */
  entry.flags = 0x100 | 0x200 | 1;
  span_spec_t local = fx_span(905, 2, 1); /* a local parent that never came */
  local.flags = 0x100 | 1;
  send(e, &entry, 1);
  send(e, &local, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported(e), 1);
  assert_int_equal(decided(e, TT_POL_RATIO, true, TT_TRIG_ROOT_GRACE), 1);
  advance(e, 8 * SEC);
  assert_int_equal(decided(e, TT_POL_RATIO, true, TT_TRIG_IDLE), 1);
  env_free(e);
}

/* ---- the decision bus, against an in-memory fake ------------------------------------------- */

/* A bus whose store is a small table. Look-ups are answered at once, from the shard's own thread
 * (the pipeline must take answers at any time), unless `silent` (a bus too slow to answer) or
 * `down` (every look-up answered with -ENOTCONN). */
typedef struct {
  tt_bus_t base;
  pthread_mutex_t mu;
  tt_bus_answer_fn answer;
  void *answer_ctx;
  tt_bus_keep_t keeps[64];
  size_t nkeeps;
  int lookups, published;
  bool silent, down;
} fake_bus_t;

static int fake_publish(tt_bus_t *b, const tt_bus_keep_t *k) {
  fake_bus_t *f = (fake_bus_t *)b;
  pthread_mutex_lock(&f->mu);
  f->published++;
  if (f->nkeeps < 64)
    f->keeps[f->nkeeps++] = *k;
  pthread_mutex_unlock(&f->mu);
  return 0;
}

static int fake_lookup(tt_bus_t *b, unsigned owner, const uint8_t id[16], uint64_t cookie) {
  fake_bus_t *f = (fake_bus_t *)b;
  tt_bus_answer_t a;
  memset(&a, 0, sizeof a);
  memcpy(a.trace_id, id, 16);
  a.owner = owner;
  a.cookie = cookie;
  pthread_mutex_lock(&f->mu);
  f->lookups++;
  bool silent = f->silent;
  a.status = f->down ? -ENOTCONN : 0;
  for (size_t i = 0; i < f->nkeeps && !f->down; i++)
    if (memcmp(f->keeps[i].trace_id, id, 16) == 0) {
      a.found = true;
      a.keep = f->keeps[i];
    }
  pthread_mutex_unlock(&f->mu);
  if (!silent)
    f->answer(f->answer_ctx, &a, 1);
  return 0;
}

static void fake_stats(tt_bus_t *b, tt_bus_stats_t *out) {
  (void)b;
  memset(out, 0, sizeof *out);
}

static void fake_free(tt_bus_t *b) {
  (void)b;
}

static const tt_bus_vt_t fake_vt = {fake_publish, fake_lookup, fake_stats, fake_free};

static int fake_factory(void *ctx, tt_bus_answer_fn answer, void *answer_ctx, tt_bus_t **out) {
  fake_bus_t *f = ctx;
  f->base.vt = &fake_vt;
  f->answer = answer;
  f->answer_ctx = answer_ctx;
  *out = &f->base;
  return 0;
}

static env_t *env_new_bus(fake_bus_t *f, double ratio) {
  memset(f, 0, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.tick_ns = 10000000ull;
  o.bus_factory = fake_factory;
  o.bus_factory_ctx = f;
  o.bus_wait_ns = 1 * SEC;
  return env_new_with(&o, policies_errors_latency_ratio(ratio));
}

static void remember(fake_bus_t *f, uint64_t trace, const char *reason, uint64_t threshold) {
  span_spec_t sp = fx_span(trace, 1, 0);
  tt_bus_keep_t k;
  memcpy(k.trace_id, sp.trace_id, 16);
  k.threshold = threshold;
  snprintf(k.reason, sizeof k.reason, "%s", reason);
  fake_publish(&f->base, &k);
}

/* Answers come in from the bus between rounds; sync until the shards have taken them. */
static size_t exported_settled(env_t *e) {
  for (int i = 0; i < 4; i++)
    tt__pipeline_sync(e->p);
  return exported(e);
}

static void evidence_keep_should_be_shared_and_a_remote_keep_not_shared_again(void **state) {
  (void)state;
  fake_bus_t f;
  env_t *e = env_new_bus(&f, 0.0);
  span_spec_t err = fx_span(950, 1, 0);
  err.status = 2;
  send(e, &err, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported_settled(e), 1);
  assert_int_equal(f.published, 1);
  assert_string_equal(f.keeps[0].reason, "errors");
  assert_int_equal(f.keeps[0].threshold, 0);
  /* Another collector kept trace 951; here only its root arrives, which the ratio drops. */
  remember(&f, 951, "slow-checkout", 0);
  span_spec_t root = fx_span(951, 1, 0);
  send(e, &root, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported_settled(e), 2);
  assert_int_equal(f.published, 2); /* only the fake's own remember */
  cap_view_t v;
  cap_view(e->sink, &v);
  assert_string_equal(fx_attr(v.spans[1], "tailtrace.decision.reason")->string_value,
                      "slow-checkout");
  assert_string_equal(fx_attr(v.spans[1], "tailtrace.decision.trigger")->string_value, "remote");
  assert_int_equal(fx_attr(v.spans[1], "SampleRate")->int_value, 1);
  cap_view_free(&v);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->traces_rescued[1]), 1);
  assert_int_equal(decided(e, TT_POL_REMOTE, true, TT_TRIG_REMOTE), 1);
  env_free(e);
  pthread_mutex_destroy(&f.mu);
}

static void keep_shared_while_pending_should_be_found_by_the_final_lookup(void **state) {
  (void)state;
  fake_bus_t f;
  env_t *e = env_new_bus(&f, 0.0);
  span_spec_t root = fx_span(952, 1, 0);
  send(e, &root, 1);
  advance(e, 3 * SEC); /* pending; the first look-up finds nothing */
  assert_int_equal(exported_settled(e), 0);
  assert_int_equal(f.lookups, 1);
  remember(&f, 952, "errors", 0); /* the leaf's collector decides later */
  advance(e, drop_delay());
  assert_int_equal(exported_settled(e), 1);
  assert_int_equal(f.lookups, 2);
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 0);
  env_free(e);
  pthread_mutex_destroy(&f.mu);
}

static void chance_keep_should_wait_for_the_bus_and_take_a_remote_keeps_weight(void **state) {
  (void)state;
  fake_bus_t f;
  env_t *e = env_new_bus(&f, 1.0); /* the ratio keeps everything, with weight 1 */
  span_spec_t a = fx_span(953, 1, 0), b = fx_span(954, 1, 0);
  send(e, &a, 1);
  send(e, &b, 1);
  advance(e, 3 * SEC);
  assert_int_equal(exported_settled(e), 0); /* chance keeps wait for drop_delay */
  remember(&f, 953, "errors", 0);
  advance(e, drop_delay());
  assert_int_equal(exported_settled(e), 2);
  assert_int_equal(decided(e, TT_POL_REMOTE, true, TT_TRIG_REMOTE), 1);
  assert_int_equal(decided(e, TT_POL_RATIO, true, TT_TRIG_ROOT_GRACE), 1);
  /* A chance keep taken over by a remote keep is no rescue: it was kept anyway. */
  assert_int_equal(atomic_load(&tt__pipeline_metrics(e->p)->traces_rescued[1]), 0);
  env_free(e);
  pthread_mutex_destroy(&f.mu);
}

static void bus_that_cannot_answer_should_leave_the_decision_local_and_counted(void **state) {
  (void)state;
  fake_bus_t f;
  env_t *e = env_new_bus(&f, 0.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  f.down = true;
  span_spec_t a = fx_span(955, 1, 0);
  send(e, &a, 1);
  advance(e, 3 * SEC);
  advance(e, drop_delay());
  exported_settled(e);
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 1);
  assert_int_equal(atomic_load(&m->bus_local), 1);
  /* A bus that never answers: the trace waits bus_wait_ns at most, then is decided here. */
  f.down = false;
  f.silent = true;
  span_spec_t b = fx_span(956, 1, 0);
  send(e, &b, 1);
  advance(e, 3 * SEC);
  advance(e, drop_delay());
  assert_int_equal(atomic_load(&m->traces_held), 1);
  advance(e, 1 * SEC + 20000000ull);
  assert_int_equal(atomic_load(&m->traces_held), 0);
  assert_int_equal(decided(e, TT_POL_RATIO, false, TT_TRIG_ROOT_GRACE), 2);
  assert_int_equal(atomic_load(&m->bus_local), 2);
  env_free(e);
  pthread_mutex_destroy(&f.mu);
}

static void a_trace_should_be_timed_from_receipt_not_from_when_a_shard_took_it(void **state) {
  (void)state;
  env_t *e = env_new(1.0);
  struct tt_pipeline_s *p = (struct tt_pipeline_s *)e->p;
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  /* The shards stall between taking their inbox and reading the clock (they take the policy
   * lock there): the root is received now and taken 3 s later, past its 2 s grace. */
  pthread_mutex_lock(&p->pol_mu);
  span_spec_t root = fx_span(0xabc, 1, 0);
  assert_int_equal(send(e, &root, 1).status, TT_EXPORT_OK);
  atomic_fetch_add(&e->clock.now, 3 * SEC);
  pthread_mutex_unlock(&p->pol_mu);
  tt__pipeline_sync(e->p);
  /* Decided in the round that took it, and timed from receipt: 3 s, not 0. */
  assert_int_equal(atomic_load(&m->latency_count), 1);
  assert_int_equal(atomic_load(&m->latency_sum_ms), 3000);
  assert_int_equal(e->sink->spans, 1);
  env_free(e);
}

/* The accounting every operator relies on (docs/collector.md, "Accounting"): spans received =
 * accepted + refused; accepted = kept + dropped + duplicate (+ held, 0 once all is decided),
 * late spans included on both sides; what a sink took = kept. */
static void every_span_should_be_counted_once_in_the_accounting_invariant(void **state) {
  (void)state;
  env_t *e = env_new(0.5);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  enum { TRACES = 60 };
  for (uint64_t t = 1; t <= TRACES; t++) {
    span_spec_t sp[3] = {fx_span(t, 1, 0), fx_span(t, 2, 1), fx_span(t, 3, 1)};
    if (t % 7 == 0)
      sp[2].status = 2; /* errors: kept whatever the ratio */
    assert_int_equal(send(e, sp, 3).status, TT_EXPORT_OK);
    if (t % 5 == 0) /* a retried batch: its spans are duplicates */
      assert_int_equal(send(e, sp, 2).status, TT_EXPORT_OK);
  }
  /* One span refused alone (an all-zero span id) beside a good one. */
  span_spec_t bad[2] = {fx_span(500, 1, 0), fx_span(500, 2, 1)};
  memset(bad[1].span_id, 0, 8);
  tt_export_result_t r = send(e, bad, 2);
  assert_int_equal(r.status, TT_EXPORT_OK);
  assert_int_equal(r.rejected_spans, 1);
  advance(e, 3 * SEC); /* past the root grace: every trace decided */
  /* A late span for every trace: kept traces take it, dropped ones drop it. */
  for (uint64_t t = 1; t <= TRACES; t++) {
    span_spec_t late = fx_span(t, 9, 1);
    assert_int_equal(send(e, &late, 1).status, TT_EXPORT_OK);
  }
  advance(e, 1 * SEC);
  uint64_t received = atomic_load(&m->spans_received), accepted = atomic_load(&m->spans_accepted),
           refused = atomic_load(&m->spans_refused_invalid), kept = atomic_load(&m->spans_kept),
           dropped = atomic_load(&m->spans_dropped), dup = atomic_load(&m->spans_duplicate);
  assert_int_equal(atomic_load(&m->traces_held), 0);
  assert_int_equal(received, TRACES * 3 + TRACES / 5 * 2 + 2 + TRACES);
  assert_int_equal(refused, 1);
  assert_int_equal(received, accepted + refused);
  assert_int_equal(dup, TRACES / 5 * 2);
  assert_int_equal(accepted, kept + dropped + dup);
  assert_true(kept > 0 && dropped > 0);
  assert_true(atomic_load(&m->late_spans_dropped) > 0); /* and inside `dropped` */
  const tt_sink_counts_t *c = tt__pipeline_sink_counts(e->p, 0);
  assert_int_equal(atomic_load(&c->spans_ok) + atomic_load(&c->spans_failed), kept);
  assert_int_equal(atomic_load(&e->sink->spans), kept);
  assert_null(tt__pipeline_sink_counts(e->p, 1));
  env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_span_should_be_counted_once_in_the_accounting_invariant),
      cmocka_unit_test(a_trace_should_be_timed_from_receipt_not_from_when_a_shard_took_it),
      cmocka_unit_test(handler_should_reject_invalid_ids_one_by_one_and_accept_the_rest),
      cmocka_unit_test(handler_should_refuse_a_malformed_request_whole),
      cmocka_unit_test(handler_should_refuse_a_span_with_invalid_utf8_alone),
      cmocka_unit_test(handler_should_refuse_every_span_of_a_resource_with_invalid_utf8),
      cmocka_unit_test(handler_should_refuse_every_span_of_a_scope_with_invalid_utf8),
      cmocka_unit_test(trace_should_be_decided_a_grace_after_its_root_arrives),
      cmocka_unit_test(trace_without_root_should_be_decided_after_idle_timeout),
      cmocka_unit_test(error_trace_should_be_kept_with_weight_one_and_its_reason),
      cmocka_unit_test(errors_policy_should_see_http_5xx_and_exception_events),
      cmocka_unit_test(slow_trace_should_be_kept_by_latency),
      cmocka_unit_test(latency_per_operation_should_read_span_names),
      cmocka_unit_test(ratio_should_keep_its_share_deterministically_with_weight),
      cmocka_unit_test(policies_should_apply_in_order_first_match_wins),
      cmocka_unit_test(kept_span_should_merge_ot_threshold_into_existing_tracestate),
      cmocka_unit_test(late_spans_should_follow_the_decision),
      cmocka_unit_test(memory_budget_should_decide_early_and_throttle_without_silent_loss),
      cmocka_unit_test(pressure_from_shared_resource_bytes_should_still_decide_early),
      cmocka_unit_test(trace_reaching_the_byte_cap_should_be_decided_at_once),
      cmocka_unit_test(shutdown_should_decide_every_held_trace),
      cmocka_unit_test(new_policies_should_apply_to_later_decisions),
      cmocka_unit_test(busy_trace_should_be_decided_at_its_max_age),
      cmocka_unit_test(decided_ids_should_be_forgotten_after_their_ttl),
      cmocka_unit_test(decided_id_cache_should_stay_within_its_size),
      cmocka_unit_test(rate_limited_traces_should_carry_honest_weights_and_misses_be_counted),
      cmocka_unit_test(duplicate_spans_should_be_exported_once_and_counted),
      cmocka_unit_test(late_duplicates_beyond_the_remembered_ids_should_go_out_again),
      cmocka_unit_test(decided_cache_should_count_against_the_budget_within_its_share),
      cmocka_unit_test(concurrent_senders_should_group_every_trace_and_lose_nothing),
      cmocka_unit_test(late_error_span_should_turn_a_pending_drop_into_a_keep_sent_complete),
      cmocka_unit_test(
          pending_drop_should_be_final_after_drop_delay_and_later_evidence_counted_late),
      cmocka_unit_test(drop_rule_listed_before_errors_should_still_win_over_late_evidence),
      cmocka_unit_test(late_error_should_replace_a_ratio_keep_so_errored_traces_weigh_one),
      cmocka_unit_test(zero_drop_delay_should_make_drops_final_at_once),
      cmocka_unit_test(span_with_a_remote_parent_should_start_the_grace_timer_like_a_root),
      cmocka_unit_test(evidence_keep_should_be_shared_and_a_remote_keep_not_shared_again),
      cmocka_unit_test(keep_shared_while_pending_should_be_found_by_the_final_lookup),
      cmocka_unit_test(chance_keep_should_wait_for_the_bus_and_take_a_remote_keeps_weight),
      cmocka_unit_test(bus_that_cannot_answer_should_leave_the_decision_local_and_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
