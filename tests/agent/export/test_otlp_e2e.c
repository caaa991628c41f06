/* End to end: spans through the public API -> per-thread ring -> batch thread -> OTLP exporter ->
 * the Python receiver, over both protocols; and an outage (hung receiver) during which
 * application threads keep starting and ending spans without blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exporter_otlp.h"
#include "internal.h"
#include "peers/otlp_peer.h"

static tt_peer_t g_peer;

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return peer_start(&g_peer, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
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

static void make_exporter(int proto, int32_t timeout_ms, tt_exporter_t *x) {
  static char ep[128];
  if (proto == TT_OTLP_PROTOCOL_GRPC)
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", g_peer.grpc_port);
  else
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", g_peer.http_port);
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = proto;
  o.endpoint = ep;
  o.timeout_ms = timeout_ms;
  o.retry_initial_ms = 20;
  o.compression = TT_OTLP_COMPRESSION_GZIP;
  assert_int_equal(tt_otlp_exporter_new(&o, x), 0);
}

static void assert_has(const char *dump, const char *needle) {
  if (strstr(dump, needle) == NULL) {
    fprintf(stderr, "missing in receiver dump: %s\n--- dump ---\n%s\n", needle, dump);
    fail();
  }
}

static void spans_should_arrive_through_the_public_api(int proto) {
  tt_exporter_t x;
  make_exporter(proto, 10000, &x);
  tt__otlp_exporter_t *oe = tt__otlp_exporter_of(&x);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "e2e-svc";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  to.exporter = &x;
  to.schedule_delay_ms = 50;
  to.max_export_batch_size = 64;
  assert_int_equal(tt_init(&to), 0);

  tt_tracer_t *tr = tt_tracer_get("e2e.scope", "9.9");
  tt_span_options_t so;
  memset(&so, 0, sizeof so);
  so.size = sizeof so;
  so.kind = TT_SPAN_KIND_SERVER;
  tt_span_t *root = tt_span_start(tr, "root-op", &so);
  assert_non_null(root);
  tt_span_context_t rc;
  tt_span_get_context(root, &rc);
  tt_span_t *prev = tt_make_current(root);
  tt_span_t *child = tt_span_start(tr, "child-op", NULL);
  tt_span_set_int(child, "n", 7);
  tt_span_set_str(child, "who", "e2e");
  tt_attribute_t ev[] = {TT_STR("k", "v")};
  tt_span_add_event(child, "ev1", ev, 1);
  tt_span_set_status(child, TT_STATUS_ERROR, "bad");
  tt_span_end(child);
  tt_restore_current(prev);
  tt_span_end(root);
  for (int i = 0; i < 200; i++) {
    tt_span_t *s = tt_span_start(tr, "bulk", NULL);
    tt_span_set_int(s, "i", i);
    tt_span_end(s);
  }
  assert_int_equal(tt_flush(tt_monotonic_ns() + 20000000000ULL), 0);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(oe, &st);
  assert_int_equal(st.spans_exported, 202);
  assert_int_equal(st.spans_failed, 0);
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 20000000000ULL), 0);

  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  char tid[33], sid[17], line[256];
  tt_trace_id_hex(&rc, tid);
  tt_span_id_hex(&rc, sid);
  snprintf(line, sizeof line, "span trace_id=%s span_id=%s parent_span_id= name=root-op kind=2",
           tid, sid);
  assert_has(dump, line);
  snprintf(line, sizeof line, "trace_id=%s", tid);
  assert_has(dump, line);
  snprintf(line, sizeof line, "parent_span_id=%s name=child-op kind=1", sid);
  assert_has(dump, line);
  assert_has(dump, "status_code=2 status_message=bad");
  assert_has(dump, "resource attr key=service.name value=s:e2e-svc");
  assert_has(dump, "scope name=e2e.scope version=9.9");
  assert_has(dump, "key=n value=i:7");
  assert_has(dump, "key=who value=s:e2e");
  assert_has(dump, "name=ev1");
  free(dump);
  assert_int_equal(peer_stat(&g_peer, "spans"), 202);
  assert_int_equal(peer_stat(&g_peer, proto == TT_OTLP_PROTOCOL_GRPC ? "grpc" : "http"),
                   peer_stat(&g_peer, "requests"));
}

static void http_spans_should_arrive_through_the_public_api(void **state) {
  (void)state;
  spans_should_arrive_through_the_public_api(TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
}

static void grpc_spans_should_arrive_through_the_public_api(void **state) {
  (void)state;
  spans_should_arrive_through_the_public_api(TT_OTLP_PROTOCOL_GRPC);
}

/* Polls (at most 60 s) until no exporter thread is left, so the next test can tt_init. */
static void wait_exporter_thread_gone(void) {
  for (int i = 0; i < 6000 && atomic_load(&tt__exporter_threads_alive) != 0; i++)
    usleep(10000);
  assert_int_equal(atomic_load(&tt__exporter_threads_alive), 0);
}

/* Wraps an OTLP exporter to keep its statistics past its shutdown (which frees it). */
static tt_exporter_t g_inner;
static tt__otlp_stats_t g_final;
static _Atomic int g_final_set;

static tt_export_result_t wrap_export(void *st, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  return g_inner.export_spans(st, spans, n, deadline, retry);
}
static void wrap_cancel(void *st) {
  g_inner.cancel(st);
}
static void wrap_shutdown(void *st, uint64_t deadline) {
  tt__otlp_exporter_get_stats(st, &g_final);
  atomic_store(&g_final_set, 1);
  g_inner.shutdown(st, deadline);
}

/* The collector accepts the request and never answers; the export timeout is a minute. A 300 ms
 * tt_shutdown must return TT_ETIMEDOUT and cancel that export through the exporter interface:
 * the batch is counted as failed by shutdown and the exporter thread ends (the ctest timeout,
 * well under the sum of the export timeouts, is what bounds the wait). */
static void shutdown_should_cancel_a_hung_export(int proto) {
  assert_int_equal(
      peer_fault(&g_peer,
                 proto == TT_OTLP_PROTOCOL_GRPC
                     ? "{\"proto\":\"grpc\",\"kind\":\"hang\",\"seconds\":60,\"times\":50}"
                     : "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":60,\"times\":50}"),
      0);
  make_exporter(proto, 60000, &g_inner);
  assert_non_null(g_inner.cancel);
  tt_exporter_t x = g_inner;
  x.export_spans = wrap_export;
  x.cancel = wrap_cancel;
  x.shutdown = wrap_shutdown;
  atomic_store(&g_final_set, 0);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "cancel";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  to.exporter = &x;
  to.schedule_delay_ms = 10;
  to.export_timeout_ms = 60000;
  assert_int_equal(tt_init(&to), 0);
  tt_stats_t a, b;
  memset(&a, 0, sizeof a);
  a.size = sizeof a;
  b = a;
  assert_int_equal(tt_stats_get(&a), 0);
  for (int i = 0; i < 3; i++)
    tt_span_end(tt_span_start(NULL, "hung", NULL));
  for (int i = 0; i < 1000 && peer_stat(&g_peer, "requests") < 1; i++)
    usleep(10000);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1); /* the export is in flight, unanswered */
  tt_span_end(tt_span_start(NULL, "queued-behind", NULL));

  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 300000000ULL), TT_ETIMEDOUT);
  wait_exporter_thread_gone();
  assert_int_equal(atomic_load(&g_final_set), 1);
  /* The hung batch failed by shutdown, in one attempt; what was queued behind it was dropped
   * without another request. */
  assert_int_equal(g_final.batches_exported, 0);
  assert_int_equal(g_final.attempts, 1);
  assert_int_equal(g_final.batches_failed, 1);
  assert_int_equal(g_final.spans_failed_shutdown, g_final.spans_failed);
  assert_true(g_final.spans_failed_shutdown >= 1);
  assert_int_equal(g_final.spans_failed_timeout, 0);
  assert_int_equal(tt_stats_get(&b), 0);
  assert_int_equal(b.dropped_export_failed - a.dropped_export_failed, 4);
  assert_int_equal(b.spans_exported - a.spans_exported, 0);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1);
}

static void http_shutdown_should_cancel_a_hung_export(void **state) {
  (void)state;
  shutdown_should_cancel_a_hung_export(TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
}

static void grpc_shutdown_should_cancel_a_hung_export(void **state) {
  (void)state;
  shutdown_should_cancel_a_hung_export(TT_OTLP_PROTOCOL_GRPC);
}

typedef struct {
  int spans;
  int done;
} app_job_t;

static void *app_thread(void *arg) {
  app_job_t *j = arg;
  for (int i = 0; i < j->spans; i++) {
    tt_span_t *s = tt_span_start(NULL, "during-outage", NULL);
    tt_span_set_int(s, "i", i);
    tt_span_end(s);
  }
  j->done = 1;
  return NULL;
}

/* The exporter thread is stuck in an export the receiver never answers. An application thread
 * then starts and ends 3000 spans: every call must return (the thread finishes while the
 * exporter is provably still stuck) and what cannot be queued is counted as dropped. */
static void outage_should_not_block_application_threads(int proto) {
  assert_int_equal(
      peer_fault(&g_peer,
                 proto == TT_OTLP_PROTOCOL_GRPC
                     ? "{\"proto\":\"grpc\",\"kind\":\"hang\",\"seconds\":60,\"times\":50}"
                     : "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":60,\"times\":50}"),
      0);
  tt_exporter_t x;
  make_exporter(proto, 60000, &x);
  tt__otlp_exporter_t *oe = tt__otlp_exporter_of(&x);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "outage";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  to.exporter = &x;
  to.schedule_delay_ms = 10;
  to.max_queue_size = 256;
  to.max_export_batch_size = 32;
  to.export_timeout_ms = 60000;
  assert_int_equal(tt_init(&to), 0);
  tt_span_end(tt_span_start(NULL, "first", NULL));
  for (int i = 0; i < 1000 && peer_stat(&g_peer, "requests") < 1; i++)
    usleep(10000);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1); /* the exporter is now stuck */

  app_job_t job = {3000, 0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, app_thread, &job), 0);
  pthread_join(th, NULL);
  assert_int_equal(job.done, 1);
  /* Still stuck in that first export: the application thread did not wait for it. */
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(oe, &st);
  assert_int_equal(st.batches_exported + st.batches_failed, 0);
  assert_int_equal(peer_stat(&g_peer, "requests"), 1);
  tt_stats_t ts;
  memset(&ts, 0, sizeof ts);
  ts.size = sizeof ts;
  assert_int_equal(tt_stats_get(&ts), 0);
  assert_true(ts.dropped_queue_full + ts.dropped_no_record > 0);

  /* Shutdown's deadline passes inside the hung export: the exporter's cancel hook ends it. */
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 300000000ULL), TT_ETIMEDOUT);
  wait_exporter_thread_gone();
}

static void http_outage_should_not_block_application_threads(void **state) {
  (void)state;
  outage_should_not_block_application_threads(TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
}

static void grpc_outage_should_not_block_application_threads(void **state) {
  (void)state;
  outage_should_not_block_application_threads(TT_OTLP_PROTOCOL_GRPC);
}

static void otlp_should_be_chosen_by_the_environment(void **state) {
  (void)state;
  char ep[128];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", g_peer.http_port);
  setenv("OTEL_TRACES_EXPORTER", "otlp", 1);
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ep, 1); /* generic: /v1/traces gets appended */
  setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=yes", 1);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "env-svc";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  assert_int_equal(tt_init(&to), 0);
  tt_span_end(tt_span_start(NULL, "from-env", NULL));
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 20000000000ULL), 0);
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
  unsetenv("OTEL_TRACES_EXPORTER");
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  assert_has(dump, "name=from-env");
  assert_has(dump, "header n=1 x-from-env=yes");
  assert_has(dump, "resource attr key=service.name value=s:env-svc");
  free(dump);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(http_spans_should_arrive_through_the_public_api, reset_peer),
      cmocka_unit_test_setup(grpc_spans_should_arrive_through_the_public_api, reset_peer),
      cmocka_unit_test_setup(http_outage_should_not_block_application_threads, reset_peer),
      cmocka_unit_test_setup(grpc_outage_should_not_block_application_threads, reset_peer),
      cmocka_unit_test_setup(http_shutdown_should_cancel_a_hung_export, reset_peer),
      cmocka_unit_test_setup(grpc_shutdown_should_cancel_a_hung_export, reset_peer),
      cmocka_unit_test_setup(otlp_should_be_chosen_by_the_environment, reset_peer),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
