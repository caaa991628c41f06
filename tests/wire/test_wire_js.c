/* Wire compatibility with the OpenTelemetry JS SDK: node runs tests/js/export_all_fields.js,
 * which exports spans carrying every field kind through the official OTLP exporters (HTTP/protobuf,
 * gRPC, HTTP/JSON; plain and gzip) to our receivers. The handler keeps each request; the test
 * decodes them with the generated protobuf-c code and checks every field came through intact.
 * Missing node or npm packages make the test fail, never skip (run tests/js/install.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "recv_grpc.h"
#include "recv_http.h"
#include "test_recv_util.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req_t;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;

/* ---- a handler that keeps every request ---- */

typedef struct {
  pthread_mutex_t mu;
  tt_buf_t reqs[64];
  char transports[64][32];
  int n;
} store_t;

static store_t store = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void store_handler(void *ctx, const tt_export_request_t *req, tt_export_result_t *res) {
  (void)ctx;
  pthread_mutex_lock(&store.mu);
  if (store.n < 64) {
    tt__buf_append(&store.reqs[store.n], req->data, req->len);
    snprintf(store.transports[store.n], sizeof store.transports[0], "%s", req->transport);
    store.n++;
  }
  pthread_mutex_unlock(&store.mu);
  memset(res, 0, sizeof *res);
}

static void store_clear(void) {
  pthread_mutex_lock(&store.mu);
  for (int i = 0; i < store.n; i++)
    tt__buf_free(&store.reqs[i]);
  store.n = 0;
  pthread_mutex_unlock(&store.mu);
}

/* ---- running node ---- */

static int run_node(const char *protocol, const char *url, const char *compression,
                    const char *tag) {
  const char *src = getenv("TT_SOURCE_DIR");
  assert_non_null(src);
  char script[1024];
  snprintf(script, sizeof script, "%s/tests/js/export_all_fields.js", src);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execlp("node", "node", script, protocol, url, compression, tag, (char *)NULL);
    fprintf(stderr, "test_wire_js: cannot run node: %s\n", strerror(errno));
    _exit(127);
  }
  /* Bounded wait: a hung exporter fails the test instead of eating the ctest timeout. */
  for (int i = 0; i < 60 * 20; i++) {
    int status;
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  fprintf(stderr, "test_wire_js: node did not finish within 60 s\n");
  return -1;
}

/* ---- field helpers ---- */

static const any_t *attr(kv_t **kvs, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(kvs[i]->key, key) == 0)
      return kvs[i]->value;
  fail_msg("attribute %s missing", key);
  return NULL;
}

static void assert_str_attr(kv_t **kvs, size_t n, const char *key, const char *want) {
  const any_t *v = attr(kvs, n, key);
  assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
  assert_string_equal(v->string_value, want);
}

static void assert_int_attr(kv_t **kvs, size_t n, const char *key, int64_t want) {
  const any_t *v = attr(kvs, n, key);
  assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
  assert_int_equal(v->int_value, want);
}

static void assert_bool_attr(kv_t **kvs, size_t n, const char *key, bool want) {
  const any_t *v = attr(kvs, n, key);
  assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  assert_int_equal(!!v->bool_value, want);
}

static void assert_double_attr(kv_t **kvs, size_t n, const char *key, double want) {
  const any_t *v = attr(kvs, n, key);
  assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
  assert_true(v->double_value == want);
}

static const Opentelemetry__Proto__Common__V1__ArrayValue *
array_attr(kv_t **kvs, size_t n, const char *key, size_t count) {
  const any_t *v = attr(kvs, n, key);
  assert_int_equal(v->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
  assert_int_equal(v->array_value->n_values, count);
  return v->array_value;
}

static void assert_hex(ProtobufCBinaryData b, const char *hex) {
  size_t n = strlen(hex) / 2;
  assert_int_equal(b.len, n);
  for (size_t i = 0; i < n; i++) {
    unsigned x;
    sscanf(hex + 2 * i, "%2x", &x);
    assert_int_equal(b.data[i], x);
  }
}

/* ---- the check ---- */

typedef struct {
  span_t *spans[16];
  int n;
  Opentelemetry__Proto__Resource__V1__Resource *resource;
  Opentelemetry__Proto__Common__V1__InstrumentationScope *scope;
} found_t;

static span_t *by_name(found_t *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->spans[i]->name, name) == 0)
      return f->spans[i];
  fail_msg("span %s missing", name);
  return NULL;
}

static void check_everything(const char *tag, const char *transport) {
  export_req_t *unpacked[64];
  found_t f = {0};
  pthread_mutex_lock(&store.mu);
  int nreq = store.n;
  for (int i = 0; i < nreq; i++) {
    assert_string_equal(store.transports[i], transport);
    unpacked[i] = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, store.reqs[i].len, store.reqs[i].data);
    assert_non_null(unpacked[i]);
    for (size_t r = 0; r < unpacked[i]->n_resource_spans; r++) {
      Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = unpacked[i]->resource_spans[r];
      assert_non_null(rs->resource);
      f.resource = rs->resource;
      for (size_t s = 0; s < rs->n_scope_spans; s++) {
        f.scope = rs->scope_spans[s]->scope;
        for (size_t k = 0; k < rs->scope_spans[s]->n_spans && f.n < 16; k++)
          f.spans[f.n++] = rs->scope_spans[s]->spans[k];
      }
    }
  }
  pthread_mutex_unlock(&store.mu);
  assert_int_equal(f.n, 6);

  /* Resource and scope. */
  kv_t **ra = f.resource->attributes;
  size_t rn = f.resource->n_attributes;
  assert_str_attr(ra, rn, "service.name", "wire-test");
  assert_str_attr(ra, rn, "wire.run", tag);
  assert_int_attr(ra, rn, "res.int", 7);
  assert_bool_attr(ra, rn, "res.bool", false);
  assert_double_attr(ra, rn, "res.double", 0.25);
  const Opentelemetry__Proto__Common__V1__ArrayValue *strs = array_attr(ra, rn, "res.strs", 2);
  assert_string_equal(strs->values[0]->string_value, "x");
  assert_string_equal(strs->values[1]->string_value, "y");
  assert_non_null(f.scope);
  assert_string_equal(f.scope->name, "tt-wire");
  assert_string_equal(f.scope->version, "1.2.3");

  /* The span with every field kind. */
  span_t *s = by_name(&f, "all-fields");
  assert_hex(s->trace_id, "0af7651916cd43dd8448eb211c80319c");
  assert_hex(s->parent_span_id, "b7ad6b7169203331");
  assert_int_equal(s->span_id.len, 8);
  assert_string_equal(s->trace_state, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  assert_int_equal(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
  assert_int_equal(s->start_time_unix_nano, 1700000000123456789ull);
  assert_int_equal(s->end_time_unix_nano, 1700000001000000000ull);
  assert_int_equal(s->flags, 0x301); /* sampled, has is_remote, parent is remote */
  kv_t **a = s->attributes;
  size_t an = s->n_attributes;
  assert_int_equal(an, 10);
  assert_int_equal(s->dropped_attributes_count, 0);
  assert_str_attr(a, an, "attr.string", "hello");
  assert_bool_attr(a, an, "attr.bool", true);
  assert_int_attr(a, an, "attr.int", 42);
  assert_int_attr(a, an, "attr.negint", -5);
  assert_double_attr(a, an, "attr.double", 3.5);
  assert_str_attr(a, an, "attr.utf8", "h\xc3\xa9llo \xe2\x98\x83");
  const Opentelemetry__Proto__Common__V1__ArrayValue *arr = array_attr(a, an, "attr.strings", 2);
  assert_string_equal(arr->values[0]->string_value, "a");
  assert_string_equal(arr->values[1]->string_value, "b");
  arr = array_attr(a, an, "attr.bools", 2);
  assert_int_equal(arr->values[0]->value_case,
                   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  assert_true(arr->values[0]->bool_value);
  assert_false(arr->values[1]->bool_value);
  arr = array_attr(a, an, "attr.ints", 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(arr->values[i]->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    assert_int_equal(arr->values[i]->int_value, i + 1);
  }
  arr = array_attr(a, an, "attr.doubles", 2);
  assert_true(arr->values[0]->double_value == 1.5);
  assert_true(arr->values[1]->double_value == 2.5);

  assert_int_equal(s->n_events, 1);
  assert_int_equal(s->dropped_events_count, 0);
  assert_string_equal(s->events[0]->name, "evt");
  assert_int_equal(s->events[0]->time_unix_nano, 1700000000500000000ull);
  assert_int_equal(s->events[0]->n_attributes, 2);
  assert_str_attr(s->events[0]->attributes, 2, "event.attr", "ev");
  assert_int_attr(s->events[0]->attributes, 2, "event.n", 7);

  assert_int_equal(s->n_links, 1);
  assert_int_equal(s->dropped_links_count, 0);
  Opentelemetry__Proto__Trace__V1__Span__Link *l = s->links[0];
  assert_hex(l->trace_id, "11111111111111111111111111111111");
  assert_hex(l->span_id, "2222222222222222");
  assert_string_equal(l->trace_state, "vendor=value");
  assert_int_equal(l->flags, 0x301);
  assert_int_equal(l->n_attributes, 2);
  assert_str_attr(l->attributes, 2, "link.attr", "lv");
  assert_int_attr(l->attributes, 2, "link.n", 9);

  assert_non_null(s->status);
  assert_int_equal(s->status->code,
                   OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
  assert_string_equal(s->status->message, "boom");

  /* Every other kind, as children of the first span. */
  struct {
    const char *name;
    int kind;
  } kinds[] = {
      {"kind-internal", 1}, {"kind-client", 3}, {"kind-producer", 4}, {"kind-consumer", 5}};
  for (size_t i = 0; i < 4; i++) {
    span_t *c = by_name(&f, kinds[i].name);
    assert_int_equal(c->kind, kinds[i].kind);
    assert_memory_equal(c->trace_id.data, s->trace_id.data, 16);
    assert_int_equal(c->parent_span_id.len, 8);
    assert_memory_equal(c->parent_span_id.data, s->span_id.data, 8);
    assert_int_equal(c->flags, 0x101); /* local parent */
    if (kinds[i].kind == 3) {
      assert_non_null(c->status);
      assert_int_equal(c->status->code,
                       OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK);
    }
  }

  /* Dropped counts. */
  span_t *lim = by_name(&f, "limits");
  assert_int_equal(lim->parent_span_id.len, 0);
  assert_int_equal(lim->n_attributes, 16);
  assert_int_equal(lim->dropped_attributes_count, 4);
  assert_int_equal(lim->n_events, 3);
  assert_int_equal(lim->dropped_events_count, 2);
  assert_int_equal(lim->n_links, 2);
  assert_int_equal(lim->dropped_links_count, 1);

  for (int i = 0; i < nreq; i++)
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
        unpacked[i], NULL);
}

/* ---- the runs ---- */

static tt_http_receiver_t *http_rx;
static tt_grpc_receiver_t *grpc_rx;

static int setup(void **state) {
  (void)state;
  tt_http_receiver_opts_t ho = {.handler = store_handler};
  tt_grpc_receiver_opts_t go = {.handler = store_handler};
  if (tt__http_receiver_start(&ho, &http_rx) != 0 || tt__grpc_receiver_start(&go, &grpc_rx) != 0)
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tt__http_receiver_stop(http_rx);
  tt__grpc_receiver_stop(grpc_rx);
  store_clear();
  return 0;
}

static void run_and_check(const char *protocol, const char *compression, const char *transport) {
  store_clear();
  char url[128], tag[64];
  if (strcmp(protocol, "grpc") == 0)
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tt__grpc_receiver_port(grpc_rx));
  else
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/traces", tt__http_receiver_port(http_rx));
  snprintf(tag, sizeof tag, "%s-%s", protocol, compression);
  int rc = run_node(protocol, url, compression, tag);
  if (rc != 0)
    fail_msg("node exited with %d (is node installed and tests/js/install.sh run?)", rc);
  check_everything(tag, transport);
}

static void js_http_protobuf_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("http/protobuf", "none", "http/protobuf");
}

static void js_http_protobuf_gzip_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("http/protobuf", "gzip", "http/protobuf");
}

static void js_grpc_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("grpc", "none", "grpc");
}

static void js_grpc_gzip_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("grpc", "gzip", "grpc");
}

static void js_http_json_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("http/json", "none", "http/json");
}

static void js_http_json_gzip_export_should_carry_every_field(void **state) {
  (void)state;
  run_and_check("http/json", "gzip", "http/json");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(js_http_protobuf_export_should_carry_every_field),
      cmocka_unit_test(js_http_protobuf_gzip_export_should_carry_every_field),
      cmocka_unit_test(js_grpc_export_should_carry_every_field),
      cmocka_unit_test(js_grpc_gzip_export_should_carry_every_field),
      cmocka_unit_test(js_http_json_export_should_carry_every_field),
      cmocka_unit_test(js_http_json_gzip_export_should_carry_every_field),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
