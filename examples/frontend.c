/* shop: the example front end. GET /checkout?user=ID validates the cart, asks the orders
 * service for the user's orders over HTTP, and answers. It extracts traceparent and baggage from
 * the request (or starts a trace), puts the user id in the baggage, injects both into its call
 * to orders, and returns the trace in a traceresponse header so a caller can find it. The query
 * parameters fail=1 and slow=1 are passed on to orders, which then fails or is slow.
 *
 *   shop --listen 127.0.0.1:8080 --orders 127.0.0.1:8081
 * Tracing is configured by the OTEL_* environment (OTEL_EXPORTER_OTLP_ENDPOINT, ...). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tailtrace.h>
#include <uv.h>

#include "http.h"

#define ORDERS_TIMEOUT_MS 5000

static tt_tracer_t *tracer;
static const char *orders_addr = "127.0.0.1:8081";

/* A checkout waiting for orders. Its spans outlive the callback that started them. */
typedef struct checkout_s {
  ex_request_t *req;
  tt_span_t *server, *client;
} checkout_t;

static void orders_answered(int status, void *arg) {
  checkout_t *c = arg;
  if (status < 0) {
    /* No answer at all: the client span says why. */
    tt_span_record_error(c->client, "ConnectionError", uv_strerror(status), NULL);
  } else {
    tt_span_set_int(c->client, "http.response.status_code", status);
    if (status >= 500)
      tt_span_set_status(c->client, TT_STATUS_ERROR, "orders answered with a server error");
  }
  tt_span_end(c->client);

  int ok = status == 200;
  tt_span_set_int(c->server, "http.response.status_code", ok ? 200 : 502);
  if (!ok)
    tt_span_set_status(c->server, TT_STATUS_ERROR, "orders unavailable");
  else
    tt_span_add_event(c->server, "checkout complete", NULL, 0);

  /* traceresponse (W3C Trace Context Level 2) tells the caller which trace served it. */
  tt_span_context_t ctx;
  tt_span_get_context(c->server, &ctx);
  char tp[56];
  tt_traceparent_format(&ctx, tp);
  tt_header_t items[1];
  char store[96];
  tt_headers_t out;
  tt_headers_init(&out, items, 1, store, sizeof store);
  tt_headers_set(&out, "traceresponse", tp);
  ex_respond(c->req, ok ? 200 : 502, &out, ok ? "checkout ok\n" : "orders unavailable\n");
  tt_span_end(c->server);
  free(c);
}

static void handle(ex_request_t *req) {
  if (strncmp(req->target, "/checkout", 9) != 0 ||
      (req->target[9] != '\0' && req->target[9] != '?')) {
    ex_respond(req, 404, NULL, "not found\n");
    return;
  }
  checkout_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    ex_respond(req, 500, NULL, "out of memory\n");
    return;
  }
  c->req = req;

  /* The incoming context: a caller's traceparent (else a new trace) and its baggage. */
  tt_remote_context_t remote; /* the parent: ids and tracestate, ~550 bytes */
  tt_extract(tt_headers_carrier_get, &req->headers, &remote);
  static tt_baggage_t baggage; /* up to 8 KB: one loop thread, used before the next request */
  tt_extract_baggage(tt_headers_carrier_get, &req->headers, &baggage);
  tt_attribute_t attrs[] = {TT_STR("http.request.method", req->method),
                            TT_STR("http.route", "/checkout"), TT_STR("url.path", "/checkout")};
  tt_span_options_t so = {.size = sizeof so,
                          .kind = TT_SPAN_KIND_SERVER,
                          .parent_mode = TT_PARENT_REMOTE,
                          .remote = &remote,
                          .attributes = attrs,
                          .attribute_count = 3};
  c->server = tt_span_start(tracer, "GET /checkout", &so);

  /* Baggage travels to every service downstream: the user id, unless a caller set it. */
  char user[64];
  if (tt_baggage_get(&baggage, "user.id", NULL) == NULL &&
      ex_query_param(req->target, "user", user, sizeof user) == 0)
    tt_baggage_set(&baggage, "user.id", user, NULL);
  size_t len;
  const char *uid = tt_baggage_get(&baggage, "user.id", &len);
  if (uid != NULL)
    tt_span_set_strn(c->server, "enduser.id", uid, len);

  /* Synchronous work as a child of the server span, with the scope macro. */
  tt_span_t *previous = tt_make_current(c->server);
  {
    TT_SPAN_EX(validate, tracer, "validate cart", NULL);
    tt_attribute_t ev[] = {TT_INT("cart.items", 3), TT_DOUBLE("cart.total", 59.90)};
    tt_span_add_event(validate, "cart validated", ev, 2);
  }
  tt_restore_current(previous);

  /* The call to orders: a CLIENT span whose context and our baggage go in its headers. */
  char target[1024];
  const char *query = strchr(req->target, '?');
  snprintf(target, sizeof target, "/orders%s", query != NULL ? query : "");
  tt_span_options_t co = {.size = sizeof co,
                          .kind = TT_SPAN_KIND_CLIENT,
                          .parent_mode = TT_PARENT_SPAN,
                          .parent = c->server};
  c->client = tt_span_start(tracer, "GET /orders", &co);
  char url[1100];
  snprintf(url, sizeof url, "http://%s%s", orders_addr, target);
  tt_span_set_str(c->client, "http.request.method", "GET");
  tt_span_set_str(c->client, "url.full", url);

  tt_header_t items[8];
  char store[TT_BAGGAGE_MAX_BYTES + 1024];
  tt_headers_t headers;
  tt_headers_init(&headers, items, 8, store, sizeof store);
  tt_headers_set(&headers, "Accept", "text/plain");
  tt_inject(c->client, &baggage, tt_headers_carrier_set, &headers);
  if (headers.error != 0)
    tt_span_add_event(c->client, "trace context not propagated", NULL, 0);

  int rc = ex_get(req->arg, orders_addr, target, &headers, ORDERS_TIMEOUT_MS, orders_answered, c);
  if (rc != 0)
    orders_answered(rc, c);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)signum;
  uv_stop(s->loop);
}

int main(int argc, char **argv) {
  const char *listen = "127.0.0.1:8080";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else if (strcmp(argv[i], "--orders") == 0 && i + 1 < argc) {
      orders_addr = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--listen HOST:PORT] [--orders HOST:PORT]\n", argv[0]);
      return 2;
    }
  }
  tt_options_t o = {.size = sizeof o};
  if (getenv("OTEL_SERVICE_NAME") == NULL)
    o.service_name = "shop";
  int rc = tt_init(&o);
  if (rc != 0) {
    fprintf(stderr, "shop: tracing: %s\n", tt_strerror(rc));
    return 1;
  }
  tracer = tt_tracer_get("shop.frontend", "1.0.0");

  uv_loop_t *loop = uv_default_loop();
  if ((rc = ex_serve(loop, listen, handle, loop)) != 0) {
    fprintf(stderr, "shop: cannot listen on %s: %s\n", listen, uv_strerror(rc));
    tt_shutdown(tt_monotonic_ns() + 1000000000ull);
    return 1;
  }
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  printf("shop: listening on %s, orders at %s\n", listen, orders_addr);
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  tt_shutdown(tt_monotonic_ns() + 5000000000ull);
  return 0;
}
