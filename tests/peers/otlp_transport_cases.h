/* otlp_transport_cases.h: the behaviour both OTLP transports must show against the real Python
 * receiver, written once and instantiated by tests/agent/export/test_transport_http.c and
 * test_transport_grpc.c (which define PROTO before including it). Each case exports through the
 * full exporter object (encode -> transport -> retry -> stats), then checks what the receiver
 * decoded with its own generated classes and what the exporter counted.
 *
 * Timing: no case asserts that something was fast. Cases that prove a server delay was honoured
 * set the client's own backoff longer than the export timeout, so only the server's shorter
 * Retry-After/RetryInfo can make the retry happen at all; the only clock checks are lower bounds
 * (a wait cannot end early) and one generous sanity bound far from any noise. */
#ifndef TT_TEST_OTLP_TRANSPORT_CASES_H
#define TT_TEST_OTLP_TRANSPORT_CASES_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exporter_otlp.h"
#include "peers/otlp_peer.h"
#include "peers/otlp_sample.h"

#ifndef PROTO
#error "define PROTO as TT_OTLP_PROTOCOL_HTTP_PROTOBUF, _HTTP_JSON or _GRPC"
#endif
#define IS_GRPC (PROTO == TT_OTLP_PROTOCOL_GRPC)
#define IS_JSON (PROTO == TT_OTLP_PROTOCOL_HTTP_JSON)

static tt_peer_t g_peer;

static int peer_group_setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  /* Failing here fails every test of the group: a missing python3-grpcio is an error. */
  return peer_start(&g_peer, NULL) == 0 ? 0 : -1;
}

static int peer_group_teardown(void **state) {
  (void)state;
  peer_stop(&g_peer);
  return 0;
}

static int reset_peer(void **state) {
  (void)state;
  char *r = peer_ctl(&g_peer, "/_control/reset", "");
  free(r);
  return r ? 0 : -1;
}

static void endpoint_for(char *buf, size_t cap, int port) {
  if (IS_GRPC)
    snprintf(buf, cap, "http://127.0.0.1:%d", port);
  else
    snprintf(buf, cap, "http://127.0.0.1:%d/v1/traces", port);
}

static void base_options(tt_otlp_options_t *o, char *endpoint, size_t cap) {
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->protocol = PROTO;
  endpoint_for(endpoint, cap, IS_GRPC ? g_peer.grpc_port : g_peer.http_port);
  o->endpoint = endpoint;
  o->timeout_ms = 10000;
  o->retry_initial_ms = 20;
  o->retry_max_ms = 100;
  o->retry_multiplier = 2.0;
}

static tt__otlp_exporter_t *make_exporter(const tt_otlp_options_t *o) {
  tt__otlp_exporter_t *e = NULL;
  assert_int_equal(tt__otlp_exporter_new(o, &e), 0);
  assert_non_null(e);
  return e;
}

static int64_t ms_since(int64_t t0) {
  return (tt__otlp_now_ns() - t0) / 1000000;
}

static void assert_dump_has(const char *dump, const char *line) {
  if (strstr(dump, line) == NULL) {
    fprintf(stderr, "missing in receiver dump: %s\n--- dump ---\n%s\n", line, dump);
    fail();
  }
}

/* ---- delivery --------------------------------------------------------------------------- */

static void export_should_deliver_every_field_intact(void **state) {
  (void)state;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.headers = "x-api-key = s%20ecret%2Cx ,X-Tenant=acme;prop=1, broken-entry";
  tt__otlp_exporter_t *e = make_exporter(&o);
  assert_int_equal(tt__otlp_exporter_config(e)->warnings, 1);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 3);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 3, 0), 0);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  for (int i = 0; sample_root_expect[i]; i++)
    assert_dump_has(dump, sample_root_expect[i]);
  assert_dump_has(dump, "request n=1 proto=" PROTO_NAME " fault=none spans=3");
  assert_dump_has(dump, "header n=1 x-api-key=s ecret,x");
  assert_dump_has(dump, "header n=1 x-tenant=acme");
  assert_dump_has(dump, "tailtrace/0.1.0");
  if (!IS_GRPC)
    assert_dump_has(dump, IS_JSON ? "header n=1 content-type=application/json"
                                  : "header n=1 content-type=application/x-protobuf");
  /* Two scopes under one resource: one ResourceSpans, two ScopeSpans. */
  assert_int_equal(count_substr(dump, "scope name="), 2);
  assert_int_equal(count_substr(dump, "resource attr key=service.name"), 1);
  free(dump);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.batches_exported, 1);
  assert_int_equal(st.spans_exported, 3);
  assert_int_equal(st.attempts, 1);
  assert_int_equal(st.spans_failed, 0);
  tt__otlp_exporter_destroy(e);
}

static void gzip_export_should_deliver_every_field_intact(void **state) {
  (void)state;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.compression = TT_OTLP_COMPRESSION_GZIP;
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 200);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 200, 0), 0);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  for (int i = 0; sample_root_expect[i]; i++)
    assert_dump_has(dump, sample_root_expect[i]);
  assert_dump_has(dump, "fault=none spans=200");
  assert_dump_has(dump, "span_id=00f00000000000c7 parent_span_id=00f0000000000000 name=child");
  if (!IS_GRPC)
    assert_dump_has(dump, "header n=1 content-encoding=gzip");
  free(dump);
  tt__otlp_exporter_destroy(e);
}

/* ---- retries ---------------------------------------------------------------------------- */

static void retryable_failures_should_be_retried_until_success(void **state) {
  (void)state;
  if (IS_GRPC) {
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                         "\"UNAVAILABLE\"}"),
                     0);
    assert_int_equal(
        peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"CANCELLED\"}"), 0);
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                         "\"DEADLINE_EXCEEDED\"}"),
                     0);
    assert_int_equal(
        peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"ABORTED\"}"), 0);
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                         "\"OUT_OF_RANGE\"}"),
                     0);
    assert_int_equal(
        peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"DATA_LOSS\"}"), 0);
  } else {
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":429}"),
                     0);
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":502}"),
                     0);
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":503}"),
                     0);
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":504}"),
                     0);
  }
  long faults = IS_GRPC ? 6 : 4;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 2, 0), 0);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.retries, faults);
  assert_int_equal(st.attempts, faults + 1);
  assert_int_equal(st.batches_retried, 1);
  assert_int_equal(st.spans_exported, 2);
  assert_int_equal(st.spans_failed, 0);
  assert_int_equal(peer_stat(&g_peer, "requests"), faults + 1);
  assert_int_equal(peer_stat(&g_peer, "spans"), 2);
  tt__otlp_exporter_destroy(e);
}

/* The client's own first backoff (60 s) exceeds the export timeout (8 s), so the only way the
 * export can succeed is by waiting the server's delay instead. */
static void server_retry_delay_should_be_honoured(const char *fault) {
  assert_int_equal(peer_fault(&g_peer, fault), 0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.timeout_ms = 8000;
  o.retry_initial_ms = 60000;
  o.retry_max_ms = 60000;
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  int64_t t0 = tt__otlp_now_ns();
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  assert_true(ms_since(t0) >= 900); /* lower bound: the 1 s delay was waited, not skipped */
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.retries, 1);
  assert_int_equal(st.spans_exported, 1);
  tt__otlp_exporter_destroy(e);
}

static void retry_after_seconds_should_be_honoured(void **state) {
  (void)state;
  server_retry_delay_should_be_honoured(
      IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"RESOURCE_EXHAUSTED\","
                "\"retry_delay_ms\":1000,\"message\":\"slow down\"}"
              : "{\"proto\":\"http\",\"kind\":\"status\",\"status\":503,\"retry_after\":\"1\"}");
}

static void permanent_failure_should_be_dropped_without_retry(void **state) {
  (void)state;
  assert_int_equal(
      peer_fault(&g_peer,
                 IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"INVALID_ARGUMENT\","
                           "\"message\":\"span 3 has no name\"}"
                         : "{\"proto\":\"http\",\"kind\":\"status\",\"status\":400,"
                           "\"message\":\"span 3 has no name\"}"),
      0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 4);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 4, 0), TT__OTLP_FAIL_PERMANENT);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.attempts, 1);
  assert_int_equal(st.retries, 0);
  assert_int_equal(st.batches_failed, 1);
  assert_int_equal(st.spans_failed_permanent, 4);
  assert_int_equal(st.spans_failed, 4);
  assert_int_equal(st.spans_exported, 0);
  assert_int_equal(st.last_code, IS_GRPC ? 3 : 400);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1);
  tt__otlp_exporter_destroy(e);
}

static void throttling_without_retry_info_should_be_permanent(void **state) {
  (void)state;
  if (!IS_GRPC) {
    /* HTTP has no such case; check 413 (payload too large) instead: retrying cannot help. */
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":413}"),
                     0);
  } else {
    assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                         "\"RESOURCE_EXHAUSTED\"}"),
                     0);
  }
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 2, 0), TT__OTLP_FAIL_PERMANENT);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.attempts, 1);
  assert_int_equal(st.spans_failed_permanent, 2);
  tt__otlp_exporter_destroy(e);
}

static void partial_success_should_be_counted_not_retried(void **state) {
  (void)state;
  assert_int_equal(
      peer_fault(&g_peer, IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"partial\",\"rejected\":2,"
                                    "\"message\":\"2 spans too old\",\"times\":2}"
                                  : "{\"proto\":\"http\",\"kind\":\"partial\",\"rejected\":2,"
                                    "\"message\":\"2 spans too old\",\"times\":2}"),
      0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 5);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 5, 0), 0);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 5, 0), 0);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.attempts, 2);
  assert_int_equal(st.retries, 0);
  assert_int_equal(st.partial_successes, 2);
  assert_int_equal(st.spans_rejected, 4);
  assert_int_equal(st.spans_exported, 6);
  assert_int_equal(st.batches_exported, 2);
  assert_int_equal(st.spans_failed, 0);
  assert_int_equal(peer_stat(&g_peer, "requests"), 2);
  tt__otlp_exporter_destroy(e);
}

/* ---- deadlines -------------------------------------------------------------------------- */

static void export_timeout_should_be_enforced_on_a_hung_server(void **state) {
  (void)state;
  assert_int_equal(
      peer_fault(&g_peer, IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"hang\",\"seconds\":60}"
                                  : "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":60}"),
      0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.timeout_ms = 1000;
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 3);
  int64_t t0 = tt__otlp_now_ns();
  assert_int_equal(tt__otlp_exporter_export(e, spans, 3, 0), TT__OTLP_FAIL_TIMEOUT);
  /* Sanity bound, far from noise: the server holds the request for 60 s. */
  assert_true(ms_since(t0) < 30000);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.spans_failed_timeout, 3);
  assert_int_equal(st.batches_failed, 1);
  tt__otlp_exporter_destroy(e);
}

typedef struct {
  tt__otlp_exporter_t *e;
  int rc;
  sample_batch_t sb;
  const tt_span_data_t *const *spans;
} export_job_t;

static void *export_thread(void *arg) {
  export_job_t *j = arg;
  j->rc = tt__otlp_exporter_export(j->e, j->spans, 2, 0);
  return NULL;
}

static void cancel_should_end_an_export_stuck_on_a_hung_server(void **state) {
  (void)state;
  assert_int_equal(
      peer_fault(&g_peer, IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"hang\",\"seconds\":60}"
                                  : "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":60}"),
      0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.timeout_ms = 60000;
  static export_job_t job;
  job.e = make_exporter(&o);
  job.rc = 1;
  job.spans = sample_spans(&job.sb, 2);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, export_thread, &job), 0);
  /* Wait until the request is being held by the server, then cancel as shutdown would. */
  for (int i = 0; i < 500 && peer_stat(&g_peer, "requests") < 1; i++)
    usleep(10000);
  int64_t t0 = tt__otlp_now_ns();
  tt__otlp_exporter_cancel(job.e);
  pthread_join(th, NULL);
  assert_true(ms_since(t0) < 30000); /* sanity bound; the hang lasts 60 s */
  assert_int_equal(job.rc, TT__OTLP_FAIL_CANCELLED);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(job.e, &st);
  assert_int_equal(st.spans_failed_shutdown, 2);
  /* Sticky: the next export does not even try. */
  assert_int_equal(tt__otlp_exporter_export(job.e, job.spans, 2, 0), TT__OTLP_FAIL_CANCELLED);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1);
  tt__otlp_exporter_destroy(job.e);
}

static void refused_port_should_fail_fast_as_retryable_until_the_timeout(void **state) {
  (void)state;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  int port = closed_port();
  assert_true(port > 0);
  endpoint_for(ep, sizeof ep, port);
  o.timeout_ms = 1500;
  o.retry_initial_ms = 50;
  o.retry_max_ms = 200;
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 2, 0), TT__OTLP_FAIL_TIMEOUT);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  /* Retryable, and each attempt failed fast: several fit in the 1.5 s budget. */
  assert_true(st.attempts >= 3);
  assert_int_equal(st.spans_failed_timeout, 2);
  assert_int_equal(st.spans_failed_permanent, 0);
  tt__otlp_exporter_destroy(e);
}

static void shorter_caller_deadline_should_win_over_the_timeout(void **state) {
  (void)state;
  assert_int_equal(
      peer_fault(&g_peer, IS_GRPC ? "{\"proto\":\"grpc\",\"kind\":\"hang\",\"seconds\":60}"
                                  : "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":60}"),
      0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  o.timeout_ms = 60000;
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  int64_t t0 = tt__otlp_now_ns();
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, t0 + 500 * 1000000LL),
                   TT__OTLP_FAIL_TIMEOUT);
  assert_true(ms_since(t0) < 30000);
  tt__otlp_exporter_destroy(e);
}

/* ---- required header (Honeycomb-style) -------------------------------------------------- */

static void missing_required_header_should_be_a_permanent_failure(void **state) {
  (void)state;
  tt_peer_t hp;
  const char *args[] = {"--require-header", "x-honeycomb-team=k3y", NULL};
  assert_int_equal(peer_start(&hp, args), 0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  endpoint_for(ep, sizeof ep, IS_GRPC ? hp.grpc_port : hp.http_port);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), TT__OTLP_FAIL_PERMANENT);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.last_code, IS_GRPC ? 16 : 401);
  assert_int_equal(st.attempts, 1);
  tt__otlp_exporter_destroy(e);

  o.headers = "x-honeycomb-team=k3y";
  e = make_exporter(&o);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  assert_int_equal(peer_stat(&hp, "spans"), 1);
  tt__otlp_exporter_destroy(e);
  peer_stop(&hp);
}

#define TRANSPORT_CASES                                                                            \
  cmocka_unit_test_setup(export_should_deliver_every_field_intact, reset_peer),                    \
      cmocka_unit_test_setup(gzip_export_should_deliver_every_field_intact, reset_peer),           \
      cmocka_unit_test_setup(retryable_failures_should_be_retried_until_success, reset_peer),      \
      cmocka_unit_test_setup(retry_after_seconds_should_be_honoured, reset_peer),                  \
      cmocka_unit_test_setup(permanent_failure_should_be_dropped_without_retry, reset_peer),       \
      cmocka_unit_test_setup(throttling_without_retry_info_should_be_permanent, reset_peer),       \
      cmocka_unit_test_setup(partial_success_should_be_counted_not_retried, reset_peer),           \
      cmocka_unit_test_setup(export_timeout_should_be_enforced_on_a_hung_server, reset_peer),      \
      cmocka_unit_test_setup(cancel_should_end_an_export_stuck_on_a_hung_server, reset_peer),      \
      cmocka_unit_test_setup(refused_port_should_fail_fast_as_retryable_until_the_timeout,         \
                             reset_peer),                                                          \
      cmocka_unit_test_setup(shorter_caller_deadline_should_win_over_the_timeout, reset_peer),     \
      cmocka_unit_test(missing_required_header_should_be_a_permanent_failure)

#endif /* TT_TEST_OTLP_TRANSPORT_CASES_H */
