/* The admin port over a real socket: /healthz, /readyz following the receivers and held memory
 * (sinks in its body, and in its answer with ?backends=1), /metrics in Prometheus text with the
 * pipeline's counters, the decision latency buckets around root_grace and the process_* families,
 * 404 and 405. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"
#include "otlp_fixture.h"
#include "version.h"

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

/* The value of the sample line `key` (name and labels as rendered); fails when absent. */
static double metric(const char *text, const char *key) {
  char pat[256];
  snprintf(pat, sizeof pat, "\n%s ", key);
  const char *at = strstr(text, pat);
  if (at == NULL)
    fail_msg("no %s in /metrics", key);
  return strtod(at + strlen(pat), NULL);
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
  assert_int_equal(get(port, "GET", "/readyz?backends=1", resp, sizeof resp), 200);
  assert_non_null(strstr(resp, "sink capture: healthy\n"));
  /* A failing sink is reported, and fails the probe only when backends are asked for. */
  atomic_store(&sink_ok, false);
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 200);
  assert_non_null(strstr(resp, "sink capture: failing"));
  assert_non_null(strstr(resp, "sinks: failing (not part of readiness"));
  assert_int_equal(get(port, "GET", "/readyz?backends=1", resp, sizeof resp), 503);
  assert_non_null(strstr(resp, "sinks: failing\n"));
  assert_int_equal(get(port, "GET", "/readyz?backends=0", resp, sizeof resp), 200);
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
  assert_non_null(strstr(resp, "# TYPE tailtrace_decision_latency_seconds histogram"));
  assert_true(metric(resp, "tailtrace_held_bytes") > 0);
  assert_true(metric(resp, "tailtrace_memory_budget_bytes") == (double)o.memory_budget);
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

/* A request of `n` root spans of new traces, numbered from `first`. */
static uint8_t *roots(uint64_t first, size_t n, size_t *len) {
  span_spec_t *sp = calloc(n, sizeof *sp);
  for (size_t i = 0; i < n; i++)
    sp[i] = fx_span(first + i, 1, 0);
  uint8_t *req = fx_request(sp, n, len);
  free(sp);
  return req;
}

/* Held memory at seven eighths of the budget (where senders start being refused) makes the
 * collector unready: it cannot take spans. Traces are held (a long grace) and the pipeline's
 * early decisions start only past 90 %, so the line is crossed and stays crossed. */
static void readyz_should_fail_when_held_memory_reaches_the_throttle_line(void **state) {
  (void)state;
  cap_sink_t *cap = cap_new();
  tt_sink_t *sinks[1] = {&cap->base};
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = 1;
  o.sinks = sinks;
  o.nsinks = 1;
  o.memory_budget = 1 << 20;
  o.max_trace_bytes = 1 << 16;
  o.root_grace_ns = 600 * 1000000000ull;
  tt_pipeline_t *p;
  assert_int_equal(tt__pipeline_new(&o, &p), 0);
  atomic_bool ready;
  atomic_init(&ready, true);
  tt_admin_opts_t ao = {"127.0.0.1", 0, p, &ready, NULL, NULL};
  tt_admin_t *a;
  assert_int_equal(tt__admin_start(&ao, &a), 0);
  int port = tt__admin_port(a);
  static char resp[65536];
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 200);
  assert_non_null(strstr(resp, "memory: ok"));

  tt_metrics_t *m = tt__pipeline_metrics(p);
  uint64_t line = o.memory_budget / 8 * 7;
  for (uint64_t t = 1; tt__metrics_budget_used(m) < line; t += 8) {
    size_t len;
    uint8_t *req = roots(t, 8, &len);
    tt_export_request_t r = {req, len, "test", 0};
    tt_export_result_t res;
    tt__pipeline_handle(p, &r, &res);
    free(req);
    assert_int_equal(res.status, TT_EXPORT_OK);
    tt__pipeline_sync(p);
  }
  assert_true(tt__metrics_budget_used(m) < o.memory_budget / 10 * 9);
  assert_int_equal(get(port, "GET", "/readyz", resp, sizeof resp), 503);
  assert_non_null(strstr(resp, "memory: over the throttle line"));
  assert_non_null(strstr(resp, "receivers: up"));

  tt__admin_stop(a);
  tt__pipeline_free(p);
  cap_close(&cap->base);
}

/* Fine buckets around root_grace (where most traces are decided) on a 10 ms .. 60 s ladder, in
 * seconds; an observation lands in the first bucket at or above it, and sum is in seconds. */
static void decision_latency_should_have_fine_buckets_around_the_grace(void **state) {
  (void)state;
  static tt_metrics_t m;
  tt__metrics_init(&m, 2000 * 1000000ull, 1 << 20);
  tt__metrics_observe_latency(&m, 2050); /* root + grace + one tick */
  tt__metrics_observe_latency(&m, 2000);
  tt__metrics_observe_latency(&m, 15000);
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__metrics_render(&m, &b), 0);
  assert_int_equal(tt__buf_append(&b, "", 1), 0);
  const char *t = (const char *)b.data;
  static const char *const les[] = {"0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                    "1",    "1.5",   "2",    "2.1", "2.2",  "2.5",
                                    "3",    "5",     "10",   "30",  "60",   "+Inf"};
  static const double want[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3};
  const char *at = strstr(t, "tailtrace_decision_latency_seconds_bucket");
  for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
    char key[128];
    snprintf(key, sizeof key, "tailtrace_decision_latency_seconds_bucket{le=\"%s\"}", les[i]);
    assert_non_null(at);
    assert_true(strncmp(at, key, strlen(key)) == 0); /* in this order, nothing in between */
    assert_true(strtod(at + strlen(key), NULL) == want[i]);
    at = strstr(at + 1, "tailtrace_decision_latency_seconds_bucket");
  }
  assert_true(metric(t, "tailtrace_decision_latency_seconds_sum") == 19.05);
  assert_true(metric(t, "tailtrace_decision_latency_seconds_count") == 3);
  tt__buf_free(&b);

  /* Another grace moves the fine buckets with it. */
  static tt_metrics_t m2;
  tt__metrics_init(&m2, 500 * 1000000ull, 1 << 20);
  assert_true(m2.latency_nbounds <= TT_LATENCY_BUCKETS_MAX - 1);
  bool found = false;
  for (unsigned i = 0; i < m2.latency_nbounds; i++)
    found = found || m2.latency_bounds_ms[i] == 525;
  assert_true(found);
}

/* The process families named as Prometheus client libraries name them, with true values, and
 * the build's version. */
static void metrics_should_include_process_figures_and_build_info(void **state) {
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
  static char resp[131072];
  assert_int_equal(get(tt__admin_port(a), "GET", "/metrics", resp, sizeof resp), 200);
  assert_non_null(strstr(resp, "# TYPE process_cpu_seconds_total counter\n"));
  assert_true(metric(resp, "process_cpu_seconds_total") >= 0);
  double rss = metric(resp, "process_resident_memory_bytes");
  assert_true(rss > 1 << 20 && rss < 1e11);
  double fds = metric(resp, "process_open_fds"), max = metric(resp, "process_max_fds");
  assert_true(fds >= 3 && fds <= max);
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur != RLIM_INFINITY)
    assert_true(max == (double)rl.rlim_cur);
  double start = metric(resp, "process_start_time_seconds"), now = (double)time(NULL);
  assert_true(start <= now + 1 && start > now - 24 * 3600);
  char build[160];
  snprintf(build, sizeof build, "\ntailtrace_build_info{version=\"%s\",compiler=\"",
           tt__collector_version());
  assert_non_null(strstr(resp, build));
  tt__admin_stop(a);
  tt__pipeline_free(p);
  cap_close(&cap->base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(readyz_should_fail_when_held_memory_reaches_the_throttle_line),
      cmocka_unit_test(decision_latency_should_have_fine_buckets_around_the_grace),
      cmocka_unit_test(metrics_should_include_process_figures_and_build_info),
      cmocka_unit_test(healthz_should_answer_when_every_connection_slot_is_held),
      cmocka_unit_test(admin_should_report_health_readiness_and_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
