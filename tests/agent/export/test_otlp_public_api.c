/* The OTLP exporters through the public header alone: tt_otlp_options_t, the TT_OTLP_*
 * constants, tt_otlp_exporter_new and tt_otlp_json_exporter_new, as an application sees them
 * (no agent/ header is included here). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "peers/otlp_peer.h"
#include "tailtrace.h"

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

static void run_one_span(const tt_exporter_t *x, const char *name) {
  tt_options_t to = {.size = sizeof to,
                     .service_name = "public-api",
                     .sampler = TT_SAMPLER_ALWAYS_ON,
                     .exporter = x};
  assert_int_equal(tt_init(&to), 0);
  tt_span_t *s = tt_span_start(NULL, name, NULL);
  assert_non_null(s);
  tt_span_set_str(s, "via", "options");
  tt_span_end(s);
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 30000000000ULL), 0);
}

static void exporter_from_options_should_send(int protocol, const char *name) {
  char ep[128];
  if (protocol == TT_OTLP_PROTOCOL_GRPC)
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", g_peer.grpc_port);
  else
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", g_peer.http_port);
  tt_otlp_options_t o = {.size = sizeof o,
                         .protocol = protocol,
                         .endpoint = ep,
                         .headers = "x-api-test=yes",
                         .timeout_ms = 20000,
                         .compression = TT_OTLP_COMPRESSION_GZIP};
  tt_exporter_t x;
  assert_int_equal(tt_otlp_exporter_new(&o, &x), 0);
  assert_int_equal(x.size, sizeof x);
  assert_non_null(x.cancel);
  run_one_span(&x, name);
  assert_int_equal(peer_stat(&g_peer, "spans"), 1);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  char want[128];
  snprintf(want, sizeof want, "name=%s", name);
  assert_non_null(strstr(dump, want));
  assert_non_null(strstr(dump, "x-api-test=yes"));
  assert_non_null(strstr(dump, "key=via value=s:options"));
  free(dump);
}

static void otlp_http_exporter_from_public_options_should_send_spans(void **state) {
  (void)state;
  exporter_from_options_should_send(TT_OTLP_PROTOCOL_HTTP_PROTOBUF, "api-http");
  assert_int_equal(peer_stat(&g_peer, "http"), 1);
}

static void otlp_grpc_exporter_from_public_options_should_send_spans(void **state) {
  (void)state;
  exporter_from_options_should_send(TT_OTLP_PROTOCOL_GRPC, "api-grpc");
  assert_int_equal(peer_stat(&g_peer, "grpc"), 1);
}

static void otlp_http_json_exporter_from_public_options_should_send_spans(void **state) {
  (void)state;
  exporter_from_options_should_send(TT_OTLP_PROTOCOL_HTTP_JSON, "api-json");
  assert_int_equal(peer_stat(&g_peer, "http"), 1);
}

static void otlp_exporter_never_given_to_init_should_be_released_by_its_shutdown(void **state) {
  (void)state;
  tt_otlp_options_t o = {.size = sizeof o, .protocol = TT_OTLP_PROTOCOL_GRPC};
  tt_exporter_t x;
  assert_int_equal(tt_otlp_exporter_new(&o, &x), 0);
  x.shutdown(x.state, 0); /* the documented release; ASan reports a leak otherwise */
  assert_int_equal(tt_otlp_exporter_new(&o, NULL), TT_EINVAL);
}

static void json_lines_exporter_should_write_the_batch_to_its_file(void **state) {
  (void)state;
  char path[] = "/tmp/tt_public_api_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  tt_exporter_t x;
  assert_int_equal(tt_otlp_json_exporter_new(path, &x), 0);
  run_one_span(&x, "api-json-lines");
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  unlink(path);
  buf[n] = '\0';
  assert_non_null(strstr(buf, "{\"resourceSpans\":["));
  assert_non_null(strstr(buf, "\"name\":\"api-json-lines\""));
  assert_int_equal(count_substr(buf, "\n"), 1);
  assert_int_equal(tt_otlp_json_exporter_new("/nonexistent-dir/x.jsonl", &x), TT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(otlp_http_exporter_from_public_options_should_send_spans, reset_peer),
      cmocka_unit_test_setup(otlp_grpc_exporter_from_public_options_should_send_spans, reset_peer),
      cmocka_unit_test_setup(otlp_http_json_exporter_from_public_options_should_send_spans,
                             reset_peer),
      cmocka_unit_test(otlp_exporter_never_given_to_init_should_be_released_by_its_shutdown),
      cmocka_unit_test(json_lines_exporter_should_write_the_batch_to_its_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
