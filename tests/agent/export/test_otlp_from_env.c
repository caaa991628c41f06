/* OTEL_TRACES_EXPORTER=otlp with nothing but the public API. This file must not reference any
 * OTLP exporter symbol itself: linked against libtailtrace.a, the exporter's object is then
 * pulled in only by the core's own reference, which is what an application linking the static
 * library gets (a weak reference there once left it out, and spans were silently not sent). */
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

static void span_should_reach_the_receiver(const char *protocol, int port, const char *name) {
  char ep[128];
  snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
  setenv("OTEL_TRACES_EXPORTER", "otlp", 1);
  setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol, 1);
  setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ep, 1); /* HTTP: /v1/traces gets appended */
  setenv("OTEL_SERVICE_NAME", "from-env-svc", 1);
  setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
  assert_int_equal(tt_init(NULL), 0);
  tt_span_t *s = tt_span_start(NULL, name, NULL);
  assert_non_null(s);
  tt_span_set_int(s, "answer", 42);
  tt_span_end(s);
  assert_int_equal(tt_shutdown(tt_monotonic_ns() + 30000000000ULL), 0);
  unsetenv("OTEL_TRACES_EXPORTER");
  unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL");
  unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
  unsetenv("OTEL_SERVICE_NAME");
  unsetenv("OTEL_TRACES_SAMPLER");

  tt_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(tt_stats_get(&st), 0);
  assert_int_equal(st.dropped_export_failed, 0);
  assert_int_equal(peer_stat(&g_peer, "spans"), 1);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  char want[128];
  snprintf(want, sizeof want, "name=%s", name);
  assert_non_null(strstr(dump, want));
  assert_non_null(strstr(dump, "key=answer value=i:42"));
  assert_non_null(strstr(dump, "resource attr key=service.name value=s:from-env-svc"));
  free(dump);
}

static void otlp_http_from_the_environment_should_export_with_the_static_library(void **state) {
  (void)state;
  span_should_reach_the_receiver("http/protobuf", g_peer.http_port, "env-http");
  assert_int_equal(peer_stat(&g_peer, "http"), 1);
}

static void otlp_grpc_from_the_environment_should_export_with_the_static_library(void **state) {
  (void)state;
  span_should_reach_the_receiver("grpc", g_peer.grpc_port, "env-grpc");
  assert_int_equal(peer_stat(&g_peer, "grpc"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(otlp_http_from_the_environment_should_export_with_the_static_library,
                             reset_peer),
      cmocka_unit_test_setup(otlp_grpc_from_the_environment_should_export_with_the_static_library,
                             reset_peer),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
