/* The admin port over a real socket: /healthz, /readyz following receivers and sink health,
 * /metrics in Prometheus text with the pipeline's counters, 404 and 405. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"
#include "otlp_fixture.h"

static atomic_bool sink_ok;

static bool flaky_healthy(tt_sink_t *s) {
  (void)s;
  return atomic_load(&sink_ok);
}

static int get(int port, const char *method, const char *path, char *out, size_t outlen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  char req[256];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                   method, path);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t got = 0;
  ssize_t r;
  while (got < outlen - 1 && (r = read(fd, out + got, outlen - 1 - got)) > 0)
    got += (size_t)r;
  out[got] = '\0';
  close(fd);
  int status = 0;
  sscanf(out, "HTTP/1.1 %d", &status);
  return status;
}

static void admin_should_report_health_readiness_and_metrics(void **state) {
  (void)state;
  cap_sink_t *cap = cap_new();
  static tt_sink_vtable_t vt;
  vt = cap_vt;
  vt.healthy = flaky_healthy;
  cap->base.vt = &vt;
  atomic_store(&sink_ok, true);
  tt_sink_t *sinks[1] = {&cap->base};
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = 1;
  o.sinks = sinks;
  o.nsinks = 1;
  tt_pipeline_t *p;
  assert_int_equal(tt__pipeline_new(&o, &p), 0);
  atomic_bool ready;
  atomic_init(&ready, false);
  tt_admin_opts_t ao = {"127.0.0.1", 0, p, &ready, NULL, NULL};
  tt_admin_t *a;
  assert_int_equal(tt__admin_start(&ao, &a), 0);
  int port = tt__admin_port(a);
  assert_true(port > 0);

  static char resp[65536];
  assert_int_equal(get(port, "GET", "/healthz", resp, sizeof resp), 200);
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 503); /* receivers not up */
  atomic_store(&ready, true);
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 200);
  atomic_store(&sink_ok, false);
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 503);
  assert_non_null(strstr(resp, "sinks: failing"));
  atomic_store(&sink_ok, true);

  span_spec_t sp[2] = {fx_span(1, 1, 0), fx_span(2, 1, 0)};
  sp[1].trace_id_len = 5;
  size_t len;
  uint8_t *req = fx_request(sp, 2, &len);
  tt_export_request_t r = {req, len, "test", 0};
  tt_export_result_t res;
  tt__pipeline_handle(p, &r, &res);
  free(req);
  tt__pipeline_sync(p);
  assert_int_equal(get(port, "GET", "/metrics", resp, sizeof resp), 200);
  assert_non_null(strstr(resp, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(resp, "\ntailtrace_spans_accepted_total 1\n"));
  assert_non_null(strstr(resp, "\ntailtrace_spans_refused_total{cause=\"invalid\"} 1\n"));
  assert_non_null(strstr(resp, "\ntailtrace_traces_held 1\n"));
  assert_non_null(strstr(resp, "# TYPE tailtrace_decision_latency_ms histogram"));
  assert_int_equal(get(port, "GET", "/nope", resp, sizeof resp), 404);
  assert_int_equal(get(port, "POST", "/metrics", resp, sizeof resp), 405);

  tt__admin_stop(a);
  tt__pipeline_free(p);
  cap_close(&cap->base);
}

static void healthz_should_answer_when_every_connection_slot_is_held(void **state) {
  (void)state;
  cap_sink_t *cap = cap_new();
  tt_sink_t *sinks[1] = {&cap->base};
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = 1;
  o.sinks = sinks;
  o.nsinks = 1;
  tt_pipeline_t *p;
  assert_int_equal(tt__pipeline_new(&o, &p), 0);
  atomic_bool ready;
  atomic_init(&ready, true);
  tt_admin_opts_t ao = {"127.0.0.1", 0, p, &ready, NULL, NULL};
  tt_admin_t *a;
  assert_int_equal(tt__admin_start(&ao, &a), 0);
  int port = tt__admin_port(a);
  /* 100 silent connections, more than the admin port's 64: a liveness probe must still get
   * its answer (one of them makes room) instead of waiting for their timeouts. */
  enum { N = 100 };
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof sa), 0);
  }
  static char resp[4096];
  for (int i = 0; i < 3; i++)
    assert_int_equal(get(port, "GET", "/healthz", resp, sizeof resp), 200);
  static char metrics[65536];
  assert_int_equal(get(port, "GET", "/metrics", metrics, sizeof metrics), 200);
  const char *key =
      "tailtrace_receiver_connections_closed_total{receiver=\"admin\",cause=\"evicted\"} ";
  const char *at = strstr(metrics, key);
  assert_non_null(at);
  assert_true(strtoull(at + strlen(key), NULL, 10) >= 4); /* 36 over the cap + the probes */
  for (int i = 0; i < N; i++)
    close(fds[i]);
  tt__admin_stop(a);
  tt__pipeline_free(p);
  cap_close(&cap->base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(healthz_should_answer_when_every_connection_slot_is_held),
      cmocka_unit_test(admin_should_report_health_readiness_and_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
