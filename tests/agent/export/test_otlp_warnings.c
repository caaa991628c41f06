/* What the OTLP exporter says when a batch is lost: the endpoint and the protocol in every
 * report, a hint for the two misconfigurations whose symptoms name neither cause (an HTTP URL
 * without /v1/traces answered 404, gRPC without a scheme against a plaintext port failing in the
 * TLS handshake), and one report, not one per batch, while a backend keeps failing. Real peers:
 * the Python receiver (HTTP and gRPC) and a closed port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exporter_otlp.h"
#include "internal.h"
#include "peers/otlp_peer.h"
#include "peers/otlp_sample.h"

static tt_peer_t g_peer;
static char g_log[8][1024];
static int g_nlog;

static void capture(tt_log_level_t level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  if (g_nlog < 8)
    snprintf(g_log[g_nlog], sizeof g_log[g_nlog], "%s", line);
  g_nlog++;
}

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  tt_set_log_handler(capture, NULL, TT_LOG_WARN);
  return peer_start(&g_peer, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  peer_stop(&g_peer);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
  return 0;
}

/* Exports `batches` batches of 4 sample spans to endpoint; returns the number of log lines. */
static int export_to(int protocol, const char *endpoint, int batches) {
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = protocol;
  o.endpoint = endpoint;
  o.timeout_ms = 1500;
  o.retry_initial_ms = 20;
  o.retry_max_ms = 100;
  tt__otlp_exporter_t *e;
  assert_int_equal(tt__otlp_exporter_new(&o, &e), 0);
  static sample_batch_t b;
  const tt_span_data_t *const *spans = sample_spans(&b, 4);
  g_nlog = 0;
  for (int i = 0; i < batches; i++)
    assert_int_not_equal(tt__otlp_exporter_export(e, spans, 4, 0), TT__OTLP_OK);
  tt__otlp_exporter_destroy(e);
  return g_nlog;
}

static void assert_has(const char *line, const char *needle) {
  if (strstr(line, needle) == NULL) {
    fprintf(stderr, "missing \"%s\" in: %s\n", needle, line);
    fail();
  }
}

static void export_failure_should_name_the_endpoint_and_the_protocol(void **state) {
  (void)state;
  int port = closed_port();
  assert_true(port > 0);
  char ep[128];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", port);
  assert_int_equal(export_to(TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, 1), 1);
  assert_has(g_log[0], ep);
  assert_has(g_log[0], "(http/protobuf)");
  assert_has(g_log[0], "4 spans in 1 batches dropped");
  assert_has(g_log[0], "no answer, gave up after");
  assert_null(strstr(g_log[0], "hint"));
}

static void http_404_without_the_signal_path_should_hint_at_v1_traces(void **state) {
  (void)state;
  char ep[128];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", g_peer.http_port);
  assert_int_equal(export_to(TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, 1), 1);
  assert_has(g_log[0], ep);
  assert_has(g_log[0], "HTTP 404");
  assert_has(g_log[0], "/v1/traces");
  assert_has(g_log[0], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  /* With the path, a 404 is the server's business: no hint. */
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/elsewhere/v1/traces", g_peer.http_port);
  assert_int_equal(export_to(TT_OTLP_PROTOCOL_HTTP_JSON, ep, 1), 1);
  assert_has(g_log[0], "HTTP 404");
  assert_has(g_log[0], "(http/json)");
  assert_null(strstr(g_log[0], "hint"));
}

static void grpc_without_a_scheme_to_a_plaintext_port_should_hint_at_http(void **state) {
  (void)state;
  char ep[128];
  snprintf(ep, sizeof ep, "127.0.0.1:%d", g_peer.grpc_port);
  assert_int_equal(export_to(TT_OTLP_PROTOCOL_GRPC, ep, 1), 1);
  assert_has(g_log[0], ep);
  assert_has(g_log[0], "(grpc)");
  assert_has(g_log[0], "hint: without a scheme the gRPC endpoint uses TLS");
  assert_has(g_log[0], "http://host:port");
}

/* A backend that is down fails every batch: one line at once, then at most one every 10 s. */
static void repeated_failures_should_be_reported_once_per_interval(void **state) {
  (void)state;
  int port = closed_port();
  assert_true(port > 0);
  char ep[128];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", port);
  assert_int_equal(export_to(TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, 5), 1);
  assert_has(g_log[0], "4 spans in 1 batches dropped");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(export_failure_should_name_the_endpoint_and_the_protocol),
      cmocka_unit_test(http_404_without_the_signal_path_should_hint_at_v1_traces),
      cmocka_unit_test(grpc_without_a_scheme_to_a_plaintext_port_should_hint_at_http),
      cmocka_unit_test(repeated_failures_should_be_reported_once_per_interval),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
