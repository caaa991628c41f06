/* orders: the example back end. GET /orders looks up a user's orders in a (pretend) database.
 * It continues the caller's trace from the traceparent and baggage headers, and shows a server
 * span, an internal child made with the TT_SPAN scope macro (TT_SPAN_EX names the tracer), and a
 * database client span with the semantic-convention attributes. The fake query fails with ?fail=1
 * and takes 1.2 s with ?slow=1, so a test (or `make demo`) can ask for an error or a slow trace.
 *
 *   orders --listen 127.0.0.1:8081
 * Tracing is configured by the OTEL_* environment (OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tailtrace.h>
#include <uv.h>

#include "http.h"

#define SLOW_QUERY_MS 1200
#define QUERY_MS 4

static tt_tracer_t *tracer;

/* One request in flight: the spans outlive the callback that started them, so they live here
 * (TT_SPAN only suits work that ends before its block does). */
typedef struct query_s {
  uv_timer_t timer;
  ex_request_t *req;
  tt_span_t *server, *db;
  int fail;
} query_t;

static void query_freed(uv_handle_t *h) {
  free(h->data);
}

static void query_done(uv_timer_t *t) {
  query_t *q = t->data;
  int status = 200;
  if (q->fail) {
    /* The exception event and status ERROR go on the span where it happened; the server span
     * says what the caller saw. */
    tt_span_record_exception(q->db, "DeadlockDetected",
                             "deadlock detected while locking table orders", NULL);
    tt_span_set_str(q->db, "db.response.status_code", "40P01");
    status = 500;
    tt_span_set_status(q->server, TT_STATUS_ERROR, "order lookup failed");
  } else {
    tt_span_set_int(q->db, "db.response.returned_rows", 3);
  }
  tt_span_end(q->db);
  tt_span_set_int(q->server, "http.response.status_code", status);
  ex_respond(q->req, status, NULL, status == 200 ? "3 orders\n" : "order lookup failed\n");
  tt_span_end(q->server);
  uv_close((uv_handle_t *)&q->timer, query_freed);
}

static void handle(ex_request_t *req) {
  if (strncmp(req->target, "/orders", 7) != 0 ||
      (req->target[7] != '\0' && req->target[7] != '?')) {
    ex_respond(req, 404, NULL, "not found\n");
    return;
  }
  query_t *q = calloc(1, sizeof *q);
  if (q == NULL) {
    ex_respond(req, 500, NULL, "out of memory\n");
    return;
  }
  q->req = req;
  char v[16];
  q->fail = ex_query_param(req->target, "fail", v, sizeof v) == 0 && strcmp(v, "1") == 0;
  int slow = ex_query_param(req->target, "slow", v, sizeof v) == 0 && strcmp(v, "1") == 0;

  /* Continue the caller's trace: traceparent, tracestate and baggage from the request headers.
   * Without a valid traceparent the server span starts a new trace. */
  tt_remote_context_t remote; /* the parent: ids and tracestate, ~550 bytes */
  tt_extract(tt_headers_carrier_get, &req->headers, &remote);
  static tt_baggage_t baggage; /* up to 8 KB: one loop thread, used before the next request */
  tt_extract_baggage(tt_headers_carrier_get, &req->headers, &baggage);
  tt_attribute_t attrs[] = {TT_STR("http.request.method", req->method),
                            TT_STR("http.route", "/orders"), TT_STR("url.path", "/orders")};
  tt_span_options_t so = {.size = sizeof so,
                          .kind = TT_SPAN_KIND_SERVER,
                          .parent_mode = TT_PARENT_REMOTE,
                          .remote = &remote,
                          .attributes = attrs,
                          .attribute_count = 3};
  q->server = tt_span_start(tracer, "GET /orders", &so);
  size_t len;
  const char *user = tt_baggage_get(&baggage, "user.id", &len);
  if (user != NULL)
    tt_span_set_strn(q->server, "enduser.id", user, len);

  /* Synchronous work under the server span: make it current, and the scope macro's span is its
   * child, ended (and the current span restored) when the block exits. */
  tt_span_t *previous = tt_make_current(q->server);
  {
    TT_SPAN_EX(plan, tracer, "plan order query", NULL);
    tt_attribute_t ev[] = {TT_STR("cache.key", "orders:by-user"), TT_BOOL("cache.hit", 0)};
    tt_span_add_event(plan, "cache lookup", ev, 2);
  }
  /* The query is asynchronous: a CLIENT span, child of the current (server) span, ended when
   * the database answers. */
  tt_span_options_t dbo = {.size = sizeof dbo, .kind = TT_SPAN_KIND_CLIENT};
  q->db = tt_span_start(tracer, "SELECT shop.orders", &dbo);
  tt_restore_current(previous);
  tt_attribute_t db[] = {TT_STR("db.system", "postgresql"),
                         TT_STR("db.namespace", "shop"),
                         TT_STR("db.collection.name", "orders"),
                         TT_STR("db.operation.name", "SELECT"),
                         TT_STR("db.query.text", "SELECT id, total FROM orders WHERE user_id = $1"),
                         TT_STR("server.address", "db.internal"),
                         TT_INT("server.port", 5432)};
  tt_span_set_attributes(q->db, db, sizeof db / sizeof db[0]);

  uv_timer_init(req->arg, &q->timer);
  q->timer.data = q;
  uv_timer_start(&q->timer, query_done, slow ? SLOW_QUERY_MS : QUERY_MS, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:8081";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--listen HOST:PORT]\n", argv[0]);
      return 2;
    }
  }
  tt_options_t o = {.size = sizeof o};
  if (getenv("OTEL_SERVICE_NAME") == NULL)
    o.service_name = "orders";
  int rc = tt_init(&o);
  if (rc != 0) {
    fprintf(stderr, "orders: tracing: %s\n", tt_strerror(rc));
    return 1;
  }
  tracer = tt_tracer_get("shop.orders", "1.0.0");

  uv_loop_t *loop = uv_default_loop();
  if ((rc = ex_serve(loop, listen, handle, loop)) != 0) {
    fprintf(stderr, "orders: cannot listen on %s: %s\n", listen, uv_strerror(rc));
    tt_shutdown(tt_monotonic_ns() + 1000000000ull);
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("orders: listening on %s\n", listen);
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  /* Export what is still queued before exiting (spans of requests in flight are not ended). */
  tt_shutdown(tt_monotonic_ns() + 5000000000ull);
  return 0;
}
