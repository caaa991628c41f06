/* The golden signals' aggregation (collector/signals/red.c): spans are built with protobuf-c (an
 * independent encoder) and scanned by the collector's own span scanner, as the handler does, then
 * counted; the checks read the Prometheus text that /metrics serves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"
#include "red.h"
#include "wire.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;

/* One span's bytes and facts, as the handler has them after its scan. */
typedef struct {
  uint8_t bytes[1024];
  size_t len;
  tt_span_facts_t f;
} span_t;

typedef struct {
  const char *name;
  int kind;            /* OTLP SpanKind */
  int status;          /* 0 unset, 1 ok, 2 error */
  uint64_t dur_ns;     /* end - start */
  const char *route;   /* http.route, or NULL */
  int64_t http_status; /* http.response.status_code, or 0 */
} spec_t;

static void make_span(const spec_t *s, span_t *out) {
  Opentelemetry__Proto__Trace__V1__Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
  uint8_t tid[16], sid[8];
  memset(tid, 0x11, sizeof tid);
  memset(sid, 0x22, sizeof sid);
  sp.trace_id = (ProtobufCBinaryData){16, tid};
  sp.span_id = (ProtobufCBinaryData){8, sid};
  sp.name = (char *)s->name;
  sp.kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
  sp.start_time_unix_nano = 1700000000000000000ull;
  sp.end_time_unix_nano = sp.start_time_unix_nano + s->dur_ns;
  if (s->status != 0) {
    st.code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
    sp.status = &st;
  }
  pb_kv_t kv[3] = {OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT,
                   OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT,
                   OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT};
  pb_any_t av[3] = {OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT,
                    OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT};
  pb_kv_t *attrs[3];
  size_t na = 0;
  /* An attribute no dimension names comes first, so the walk has to skip one. */
  kv[na].key = "thread.id";
  av[na].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
  av[na].int_value = 7;
  kv[na].value = &av[na];
  attrs[na] = &kv[na];
  na++;
  if (s->route != NULL) {
    kv[na].key = "http.route";
    av[na].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av[na].string_value = (char *)s->route;
    kv[na].value = &av[na];
    attrs[na] = &kv[na];
    na++;
  }
  if (s->http_status != 0) {
    kv[na].key = "http.response.status_code";
    av[na].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    av[na].int_value = s->http_status;
    kv[na].value = &av[na];
    attrs[na] = &kv[na];
    na++;
  }
  sp.n_attributes = na;
  sp.attributes = attrs;
  out->len = opentelemetry__proto__trace__v1__span__get_packed_size(&sp);
  assert_true(out->len <= sizeof out->bytes);
  opentelemetry__proto__trace__v1__span__pack(&sp, out->bytes);
  assert_int_equal(tt__wire_scan_span(out->bytes, out->len, &out->f), 0);
}

/* Counts one span of service svc (NULL: no service.name) as a request of its own that was
 * accepted, through the handler's calls. */
static void count(tt_red_t *r, const char *svc, const spec_t *s, bool root) {
  span_t sp;
  make_span(s, &sp);
  tt__red_begin(r);
  tt__red_span(r, &sp.f, sp.bytes, sp.len, (const uint8_t *)svc, svc ? strlen(svc) : 0, root);
  tt__red_commit(r);
}

static char *render(tt_red_t *r) {
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__red_render(r, &b), 0);
  tt__buf_append(&b, "", 1);
  return (char *)b.data;
}

/* The value of the sample whose name and labels are exactly `series`; -1 when absent. */
static long long sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtoll(p + n + 1, NULL, 10);
  return -1;
}

#define SRV 2
#define CLI 3
#define CONS 5
#define MS 1000000ull

static void red_should_count_selected_spans_with_exact_buckets(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  /* SERVER spans: one on each side of a bucket bound (le is inclusive), one past 60 s. */
  const uint64_t durs[] = {MS / 2, MS, MS + 1, 2500 * MS, 70000 * MS};
  for (size_t i = 0; i < 5; i++)
    count(r, "shop", &(spec_t){"GET /cart", SRV, 0, durs[i], NULL, 0}, false);
  /* Errors: status ERROR, and an HTTP 5xx without a status. */
  count(r, "shop", &(spec_t){"GET /cart", SRV, 2, 4 * MS, NULL, 0}, false);
  count(r, "shop", &(spec_t){"GET /cart", SRV, 0, 4 * MS, NULL, 503}, false);
  /* A CLIENT span below a local parent is not counted; a CLIENT root is. */
  count(r, "shop", &(spec_t){"SELECT", CLI, 0, MS, NULL, 0}, false);
  count(r, "shop", &(spec_t){"cron", CLI, 1, 20 * MS, NULL, 0}, true);
  count(r, NULL, &(spec_t){"consume", CONS, 0, 10 * MS, NULL, 0}, false);
  char *t = render(r);
  const char *unset = "service=\"shop\",operation=\"GET /cart\",span_kind=\"SERVER\","
                      "status_code=\"UNSET\"";
  char s[512];
  snprintf(s, sizeof s, "tailtrace_span_requests_total{%s}", unset);
  assert_int_equal(sample(t, s), 6);
  snprintf(s, sizeof s, "tailtrace_span_errors_total{%s}", unset);
  assert_int_equal(sample(t, s), 1);
  static const struct {
    const char *le;
    long long n;
  } want[] = {{"0.001", 2}, {"0.002", 3}, {"0.003", 3}, {"0.005", 4},
              {"2", 4},     {"3", 5},     {"60", 5},    {"+Inf", 6}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    snprintf(s, sizeof s, "tailtrace_span_duration_seconds_bucket{%s,le=\"%s\"}", unset,
             want[i].le);
    assert_int_equal(sample(t, s), want[i].n);
  }
  snprintf(s, sizeof s, "tailtrace_span_duration_seconds_count{%s}", unset);
  assert_int_equal(sample(t, s), 6);
  snprintf(s, sizeof s, "tailtrace_span_duration_seconds_sum{%s} 72.506500001", unset);
  assert_non_null(strstr(t, s));
  const char *err = "service=\"shop\",operation=\"GET /cart\",span_kind=\"SERVER\","
                    "status_code=\"ERROR\"";
  snprintf(s, sizeof s, "tailtrace_span_errors_total{%s}", err);
  assert_int_equal(sample(t, s), 1);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"shop\",operation=\"cron\","
                             "span_kind=\"CLIENT\",status_code=\"OK\"}"),
                   1);
  assert_null(strstr(t, "operation=\"SELECT\""));
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"unknown_service\","
                             "operation=\"consume\",span_kind=\"CONSUMER\",status_code=\"UNSET\"}"),
                   1);
  assert_int_equal(sample(t, "tailtrace_span_signals_series"), 4);
  assert_null(strstr(t, "__overflow__\""));
  free(t);
  tt__red_free(r);
}

static void red_should_label_configured_attributes(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  o.ndims = 2;
  strcpy(o.dims[0], "http.route");
  strcpy(o.dims[1], "http.response.status_code");
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  count(r, "api", &(spec_t){"GET", SRV, 0, MS, "/users/{id}", 200}, false);
  count(r, "api", &(spec_t){"GET", SRV, 0, MS, "/users/{id}", 200}, false);
  count(r, "api", &(spec_t){"GET", SRV, 0, MS, "/say \"hi\"", 0}, false);
  char *t = render(r);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"api\",operation=\"GET\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\",http_route=\"/users/{id}"
                             "\",http_response_status_code=\"200\"}"),
                   2);
  /* Quotes escaped; an absent attribute is an empty label. */
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"api\",operation=\"GET\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\",http_route=\"/say "
                             "\\\"hi\\\"\",http_response_status_code=\"\"}"),
                   1);
  free(t);
  tt__red_free(r);
}

static void red_should_count_values_past_a_label_cap_as_overflow(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  o.max_values = 2;
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  const char *ops[] = {"a", "b", "c", "d", "a"};
  for (size_t i = 0; i < 5; i++)
    count(r, "svc", &(spec_t){ops[i], SRV, 0, MS, NULL, 0}, false);
  char *t = render(r);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"a\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   2);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"__"
                             "overflow__\",span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   2);
  assert_int_equal(sample(t, "tailtrace_span_signals_overflow_spans_total{cap=\"dimension\"}"), 2);
  assert_int_equal(sample(t, "tailtrace_span_signals_overflow_spans_total{cap=\"series\"}"), 0);
  free(t);
  tt__red_free(r);
}

static void red_should_count_label_sets_past_the_series_cap_in_the_overflow_series(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  o.max_series = 3;
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  for (int i = 0; i < 10; i++) {
    char op[16];
    snprintf(op, sizeof op, "op%d", i);
    count(r, "svc", &(spec_t){op, SRV, 0, MS, NULL, 0}, false);
    count(r, "svc", &(spec_t){op, SRV, 0, MS, NULL, 0}, false);
  }
  char *t = render(r);
  const char *ovf = "service=\"__overflow__\",operation=\"__overflow__\",span_kind=\"__overflow__"
                    "\",status_code=\"__overflow__\"";
  char s[256];
  snprintf(s, sizeof s, "tailtrace_span_requests_total{%s}", ovf);
  assert_int_equal(sample(t, s), 14);
  snprintf(s, sizeof s, "tailtrace_span_duration_seconds_bucket{%s,le=\"0.001\"}", ovf);
  assert_int_equal(sample(t, s), 14);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"op2\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   2);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"op3\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   -1);
  assert_int_equal(sample(t, "tailtrace_span_signals_series"), 3);
  assert_int_equal(sample(t, "tailtrace_span_signals_overflow_spans_total{cap=\"series\"}"), 14);
  tt_red_stats_t st;
  tt__red_stats(r, &st);
  assert_int_equal(st.spans, 20);
  free(t);
  tt__red_free(r);
}

typedef struct {
  tt_red_t *r;
  int idx;
} worker_t;

#define THREADS 4
#define PER_THREAD 20000

static void *worker(void *arg) {
  worker_t *w = arg;
  span_t sp[3];
  make_span(&(spec_t){"GET /a", SRV, 0, 2 * MS, NULL, 0}, &sp[0]);
  make_span(&(spec_t){"GET /b", SRV, 2, 40 * MS, NULL, 0}, &sp[1]);
  char name[16];
  snprintf(name, sizeof name, "own%d", w->idx);
  make_span(&(spec_t){name, SRV, 0, MS, NULL, 0}, &sp[2]);
  /* Requests of 100 spans; every seventh is refused after its walk and sent again. */
  for (int i = 0, req = 0; i < PER_THREAD; req++) {
    int n = PER_THREAD - i < 100 ? PER_THREAD - i : 100;
    for (int pass = req % 7 == 0 ? 0 : 1; pass < 2; pass++) {
      tt__red_begin(w->r);
      for (int k = 0; k < n; k++) {
        const span_t *s = &sp[(i + k) % 3];
        tt__red_span(w->r, &s->f, s->bytes, s->len, (const uint8_t *)"svc", 3, false);
      }
      if (pass == 1)
        tt__red_commit(w->r);
    }
    i += n;
  }
  return NULL;
}

/* Receiver threads count into their own tables while the admin thread renders; the sums are
 * exact once they are done (and TSan checks the hand-over). */
static void red_should_sum_every_thread_exactly_while_rendered(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  pthread_t th[THREADS];
  worker_t w[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker_t){r, i};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
  }
  for (int k = 0; k < 20; k++)
    free(render(r));
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  char *t = render(r);
  long long a = (PER_THREAD + 2) / 3, b = (PER_THREAD + 1) / 3, own = PER_THREAD / 3;
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"GET /a\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   THREADS * a);
  assert_int_equal(sample(t, "tailtrace_span_errors_total{service=\"svc\",operation=\"GET /b\","
                             "span_kind=\"SERVER\",status_code=\"ERROR\"}"),
                   THREADS * b);
  assert_int_equal(sample(t, "tailtrace_span_duration_seconds_bucket{service=\"svc\",operation="
                             "\"GET /b\",span_kind=\"SERVER\",status_code=\"ERROR\",le=\"0.03\"}"),
                   0);
  assert_int_equal(sample(t, "tailtrace_span_duration_seconds_bucket{service=\"svc\",operation="
                             "\"GET /b\",span_kind=\"SERVER\",status_code=\"ERROR\",le=\"0.05\"}"),
                   THREADS * b);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"own3\","
                             "span_kind=\"SERVER\",status_code=\"UNSET\"}"),
                   own);
  assert_int_equal(sample(t, "tailtrace_span_signals_series"), 2 + THREADS);
  free(t);
  tt__red_free(r);
}

/* A request refused after its walk (throttled, too large, malformed further on) counts nothing:
 * its sender sends it again, and only the accepted one counts. */
static void red_should_count_only_accepted_requests(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  span_t a, b;
  make_span(&(spec_t){"GET /a", SRV, 2, 4 * MS, NULL, 0}, &a);
  make_span(&(spec_t){"GET /b", SRV, 0, 4 * MS, NULL, 0}, &b);
  tt__red_begin(r); /* refused: never committed */
  tt__red_span(r, &a.f, a.bytes, a.len, (const uint8_t *)"svc", 3, false);
  tt__red_span(r, &a.f, a.bytes, a.len, (const uint8_t *)"svc", 3, false);
  tt__red_span(r, &b.f, b.bytes, b.len, (const uint8_t *)"svc", 3, false);
  char *t = render(r);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"GET /a\","
                             "span_kind=\"SERVER\",status_code=\"ERROR\"}"),
                   0);
  free(t);
  tt__red_begin(r); /* the retry, accepted */
  tt__red_span(r, &a.f, a.bytes, a.len, (const uint8_t *)"svc", 3, false);
  tt__red_span(r, &a.f, a.bytes, a.len, (const uint8_t *)"svc", 3, false);
  tt__red_span(r, &b.f, b.bytes, b.len, (const uint8_t *)"svc", 3, false);
  tt__red_commit(r);
  t = render(r);
  assert_int_equal(sample(t, "tailtrace_span_requests_total{service=\"svc\",operation=\"GET /a\","
                             "span_kind=\"SERVER\",status_code=\"ERROR\"}"),
                   2);
  assert_int_equal(sample(t, "tailtrace_span_errors_total{service=\"svc\",operation=\"GET /a\","
                             "span_kind=\"SERVER\",status_code=\"ERROR\"}"),
                   2);
  assert_int_equal(sample(t, "tailtrace_span_duration_seconds_bucket{service=\"svc\",operation="
                             "\"GET /b\",span_kind=\"SERVER\",status_code=\"UNSET\",le=\"0.005\"}"),
                   1);
  free(t);
  tt__red_free(r);
}

static _Atomic int64_t accounted;
static void account(void *ctx, int64_t delta) {
  (void)ctx;
  accounted += delta;
}

static void red_should_count_its_tables_in_the_memory_budget(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  tt_red_t *r;
  assert_int_equal(tt__red_new(&o, &r), 0);
  accounted = 0;
  tt__red_bind_account(r, account, NULL);
  int64_t before = accounted;
  assert_true(before > 0);
  for (int i = 0; i < 50; i++) {
    char op[16];
    snprintf(op, sizeof op, "op%d", i);
    count(r, "svc", &(spec_t){op, SRV, 0, MS, NULL, 0}, false);
  }
  tt_red_stats_t st;
  tt__red_stats(r, &st);
  assert_true(accounted > before);
  assert_int_equal(st.bytes, accounted);
  char *t = render(r);
  assert_int_equal(sample(t, "tailtrace_span_signals_bytes"), accounted);
  free(t);
  tt__red_free(r);
}

static void red_should_refuse_dimensions_whose_labels_clash(void **state) {
  (void)state;
  tt_red_opts_t o;
  tt__red_opts_default(&o);
  char err[256];
  o.ndims = 2;
  strcpy(o.dims[0], "http.route");
  strcpy(o.dims[1], "http_route");
  assert_int_equal(tt__red_check_opts(&o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "same label http_route"));
  o.ndims = 1;
  strcpy(o.dims[0], "service");
  assert_int_equal(tt__red_check_opts(&o, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "fixed labels"));
  tt_red_t *r = NULL;
  assert_int_equal(tt__red_new(&o, &r), -EINVAL);
  assert_null(r);
}

static void signals_section_should_load_and_name_file_line_and_key_on_errors(void **state) {
  (void)state;
  const char *good = "signals:\n"
                     "  span_kinds: [server, client]\n"
                     "  roots: false\n"
                     "  dimensions: [http.route, rpc.method]\n"
                     "  max_series: 50\n"
                     "  max_values_per_dimension: 7\n";
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(tt__config_load_string(good, strlen(good), "good.yaml", &c, &e), 0);
  assert_true(c.signals.enabled);
  assert_int_equal(c.signals.kinds, (1u << 2) | (1u << 3));
  assert_false(c.signals.roots);
  assert_int_equal(c.signals.ndims, 2);
  assert_string_equal(c.signals.dims[1], "rpc.method");
  assert_int_equal(c.signals.max_series, 50);
  assert_int_equal(c.signals.max_values, 7);
  /* A SIGHUP cannot apply the section: it names it. */
  tt_config_t def;
  assert_int_equal(tt__config_defaults(&def), 0);
  tt_buf_t keys = TT_BUF_INIT;
  assert_int_equal(tt__config_restart_keys(&def, &c, &keys), 1);
  tt__buf_append(&keys, "", 1);
  assert_string_equal((const char *)keys.data, "\"signals\"");
  tt__buf_free(&keys);
  tt__config_free(&def);
  tt__config_free(&c);
  const char *bad = "signals:\n"
                    "  span_kinds: [server, sever]\n"
                    "  dimensions: [http.route, http_route]\n"
                    "  max_series: 0\n"
                    "  max_seris: 3\n";
  assert_int_equal(tt__config_load_string(bad, strlen(bad), "bad.yaml", &c, &e), -EINVAL);
  tt__buf_append(&e, "", 1);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "bad.yaml:2: signals.span_kinds: unknown span kind \"sever\""));
  assert_non_null(strstr(s, "bad.yaml:3: signals.dimensions: dimensions \"http.route\" and "
                            "\"http_route\" give the same label http_route"));
  assert_non_null(strstr(s, "bad.yaml:4: signals.max_series: must be 1 to 100000"));
  assert_non_null(strstr(s, "bad.yaml:5: signals.max_seris: unknown key"));
  assert_non_null(strstr(s, "did you mean \"max_series\"?"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void shipped_config_should_carry_the_signals_defaults(void **state) {
  (void)state;
  const char *src = getenv("TT_SOURCE_DIR");
  if (src == NULL)
    skip();
  char path[512];
  snprintf(path, sizeof path, "%s/deploy/tailtrace-collector.yaml", src);
  tt_config_t file;
  tt_red_opts_t def;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(tt__config_load_file(path, &file, &e), 0);
  tt__red_opts_default(&def);
  assert_memory_equal(&file.signals, &def, sizeof def);
  tt__config_free(&file);
  tt__buf_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(red_should_count_selected_spans_with_exact_buckets),
      cmocka_unit_test(red_should_label_configured_attributes),
      cmocka_unit_test(red_should_count_values_past_a_label_cap_as_overflow),
      cmocka_unit_test(red_should_count_label_sets_past_the_series_cap_in_the_overflow_series),
      cmocka_unit_test(red_should_sum_every_thread_exactly_while_rendered),
      cmocka_unit_test(red_should_count_only_accepted_requests),
      cmocka_unit_test(red_should_count_its_tables_in_the_memory_budget),
      cmocka_unit_test(red_should_refuse_dimensions_whose_labels_clash),
      cmocka_unit_test(signals_section_should_load_and_name_file_line_and_key_on_errors),
      cmocka_unit_test(shipped_config_should_carry_the_signals_defaults),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
