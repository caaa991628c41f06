/* Admin routes: see admin.h. The route runs on the admin server's thread and only reads atomics,
 * so it never waits on the span path. */
#include "admin.h"

#include "sink_otlp.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "process.h"
#include "version.h"

struct tt_admin_s {
  tt_admin_opts_t o;
  tt_http_server_t *srv;
  /* Guards o.http and o.grpc: the receivers stop (and are freed) while this port still answers
   * during shutdown; tt__admin_forget_receivers clears them under it first. */
  pthread_mutex_t recv_mu;
};

typedef struct {
  const char *cause;
  uint64_t v;
} closed_t;

/* One receiver's open connections and the connections it closed, by cause. */
static void render_conns(tt_buf_t *b, const char *name, uint64_t open, const closed_t *c,
                         size_t n) {
  tt__buf_appendf(b, "tailtrace_receiver_connections{receiver=\"%s\"} %llu\n", name,
                  (unsigned long long)open);
  for (size_t i = 0; i < n; i++)
    tt__buf_appendf(b,
                    "tailtrace_receiver_connections_closed_total{receiver=\"%s\",cause=\"%s\"} "
                    "%llu\n",
                    name, c[i].cause, (unsigned long long)c[i].v);
}

/* The same for one HTTP server (the OTLP/HTTP receiver or this admin port). */
static void render_http_conns(tt_buf_t *b, const char *name, const tt_http_server_stats_t *st) {
  const closed_t c[] = {{"limit", st->refused_limit},
                        {"per_ip", st->refused_per_ip},
                        {"evicted", st->evicted},
                        {"header_timeout", st->timeout_header},
                        {"body_timeout", st->timeout_body},
                        {"idle_timeout", st->timeout_idle},
                        {"receive_budget", st->budget_refused}};
  render_conns(b, name, st->connections, c, sizeof c / sizeof c[0]);
}

static void render_receivers(struct tt_admin_s *a, tt_buf_t *b) {
  pthread_mutex_lock(&a->recv_mu);
  tt__buf_append_str(
      b, "# HELP tailtrace_receiver_connections Open connections, by receiver.\n"
         "# TYPE tailtrace_receiver_connections gauge\n"
         "# HELP tailtrace_receiver_connections_closed_total Connections a receiver closed or "
         "refused to protect the others, by cause: limit and per_ip (refused at accept), evicted "
         "(closed to make room), header_timeout, body_timeout, idle_timeout, receive_budget "
         "(request answered 429), slot_reclaimed (gRPC call cancelled).\n"
         "# TYPE tailtrace_receiver_connections_closed_total counter\n");
  tt_http_server_stats_t otlp_http, admin;
  if (a->o.http != NULL) {
    tt__http_receiver_conn_stats(a->o.http, &otlp_http);
    render_http_conns(b, "otlp_http", &otlp_http);
  }
  tt__http_server_stats(a->srv, &admin);
  render_http_conns(b, "admin", &admin);
  if (a->o.grpc != NULL) {
    tt_grpc_receiver_stats_t g;
    tt__grpc_receiver_stats(a->o.grpc, &g);
    const closed_t c[] = {{"limit", g.refused_limit},
                          {"per_ip", g.refused_per_ip},
                          {"evicted", g.evicted},
                          {"slot_reclaimed", g.slots_reclaimed}};
    render_conns(b, "otlp_grpc", g.connections, c, sizeof c / sizeof c[0]);
  }
  if (a->o.http != NULL)
    tt__buf_appendf(b,
                    "# HELP tailtrace_receiver_receiving_bytes Bytes of HTTP request bodies being "
                    "received now (held against receive_budget).\n"
                    "# TYPE tailtrace_receiver_receiving_bytes gauge\n"
                    "tailtrace_receiver_receiving_bytes{receiver=\"otlp_http\"} %llu\n",
                    (unsigned long long)otlp_http.receiving_bytes);
  pthread_mutex_unlock(&a->recv_mu);
}

void tt__admin_forget_receivers(tt_admin_t *a) {
  if (a == NULL)
    return;
  pthread_mutex_lock(&a->recv_mu);
  a->o.http = NULL;
  a->o.grpc = NULL;
  pthread_mutex_unlock(&a->recv_mu);
}

/* Whether the query string holds name=1 (or name=true, or a bare name). */
static bool query_flag(const char *query, const char *name) {
  size_t n = strlen(name);
  for (const char *q = query; q != NULL && *q != '\0'; q = strchr(q, '&'), q = q ? q + 1 : NULL) {
    if (strncmp(q, name, n) != 0)
      continue;
    const char *v = q + n;
    if (*v == '\0' || *v == '&' || strncmp(v, "=1", 2) == 0 || strncmp(v, "=true", 5) == 0)
      return true;
  }
  return false;
}

/* One line per sink: whether it delivers, and for an exporter why not (retrying, with where it
 * holds the batches meanwhile, or refused for good, with the backend's answer). Returns whether
 * every sink delivers. */
static bool render_sinks(struct tt_admin_s *a, tt_buf_t *b) {
  size_t n;
  tt_sink_t *const *sinks = tt__pipeline_sinks(a->o.pipeline, &n);
  bool all = true;
  for (size_t i = 0; i < n; i++) {
    tt_sink_t *s = sinks[i];
    if (!tt__sink_is_otlp(s)) {
      bool ok = s->vt->healthy == NULL || s->vt->healthy(s);
      all = all && ok;
      tt__buf_appendf(b, "sink %s: %s\n", s->vt->name, ok ? "healthy" : "failing (writes fail)");
      continue;
    }
    tt_otlp_sink_stats_t st;
    tt__sink_otlp_stats(s, &st);
    const char *name = tt__sink_otlp_name(s);
    all = all && st.up;
    if (st.up)
      tt__buf_appendf(b, "exporter %s: up\n", name);
    else if (st.refusing)
      tt__buf_appendf(b,
                      "exporter %s: refusing (the backend refused the last batch for good, code "
                      "%d: %s); refused batches are lost\n",
                      name, st.refused_code, st.refused_message[0] ? st.refused_message : "-");
    else
      tt__buf_appendf(b,
                      "exporter %s: down (the backend is failing; retrying, %llu batches in the "
                      "spool, %llu bytes in memory)\n",
                      name, (unsigned long long)st.spool_batches,
                      (unsigned long long)st.queue_bytes);
  }
  return all;
}

/* Readiness means this collector can take spans: its receivers listen and held memory is below
 * the line past which requests start being refused (seven eighths of the budget, where the fair
 * share begins; pipeline.c). A backend that fails does not make it unready: the exporters retry
 * and spool, and a failed readiness probe on a sidecar would take the application's pod out of
 * its Service. Backends are reported in the body, and fail the probe only when asked
 * (?backends=1). */
static void readyz(struct tt_admin_s *a, bool backends, tt_http_response_t *res) {
  tt_buf_t *b = &res->body;
  bool receivers = atomic_load(a->o.ready);
  tt_metrics_t *m = tt__pipeline_metrics(a->o.pipeline);
  uint64_t used = tt__metrics_budget_used(m), budget = m->memory_budget;
  uint64_t line = budget / 8 * 7;
  bool memory = budget == 0 || used < line;
  tt__buf_appendf(b, "receivers: %s\n", receivers ? "up" : "not ready");
  tt__buf_appendf(b, "memory: %s (%llu of %llu bytes held, %.1f%%; not ready from %llu)\n",
                  memory ? "ok" : "over the throttle line", (unsigned long long)used,
                  (unsigned long long)budget, budget ? 100.0 * (double)used / (double)budget : 0.0,
                  (unsigned long long)line);
  bool sinks = render_sinks(a, b);
  tt__buf_appendf(b, "sinks: %s%s\n", sinks ? "healthy" : "failing",
                  backends ? "" : " (not part of readiness; /readyz?backends=1 includes them)");
  /* The bus never fails readiness: without it every collector still decides on its own. */
  tt_bus_t *bus = tt__pipeline_bus(a->o.pipeline);
  if (bus != NULL) {
    tt_bus_stats_t st;
    tt__bus_stats(bus, &st);
    tt__buf_appendf(b, "bus: %s (%u of %u nodes up)%s\n",
                    st.nodes_up == st.nodes ? "up"
                    : st.nodes_up           ? "degraded"
                                            : "down",
                    st.nodes_up, st.nodes,
                    st.nodes_up == st.nodes ? ""
                                            : "; traces on the nodes down are decided locally");
  }
  res->status = receivers && memory && (sinks || !backends) ? 200 : 503;
}

static void route(void *ctx, const tt_http_request_t *req, tt_http_response_t *res) {
  struct tt_admin_s *a = ctx;
  if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
    res->status = 405;
    snprintf(res->extra_headers, sizeof res->extra_headers, "Allow: GET\r\n");
    return;
  }
  res->content_type = "text/plain; charset=utf-8";
  if (strcmp(req->path, "/healthz") == 0) {
    res->status = 200;
    tt__buf_appendf(&res->body, "ok %s\n", tt__collector_version());
  } else if (strcmp(req->path, "/readyz") == 0) {
    readyz(a, query_flag(req->query, "backends"), res);
  } else if (strcmp(req->path, "/metrics") == 0) {
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    tt__metrics_render(tt__pipeline_metrics(a->o.pipeline), &res->body);
    tt__pipeline_render_sink_metrics(a->o.pipeline, &res->body);
    tt__metrics_render_bus(tt__pipeline_bus(a->o.pipeline), tt__pipeline_metrics(a->o.pipeline),
                           &res->body);
    size_t nsinks;
    tt_sink_t *const *sinks = tt__pipeline_sinks(a->o.pipeline, &nsinks);
    tt__sink_otlp_render_metrics(sinks, nsinks, &res->body);
    render_receivers(a, &res->body);
    if (tt__pipeline_red(a->o.pipeline) != NULL)
      tt__red_render(tt__pipeline_red(a->o.pipeline), &res->body);
    tt__process_render(&res->body);
  } else {
    res->status = 404;
    tt__buf_append_str(&res->body, "not found: try /healthz, /readyz or /metrics\n");
  }
}

int tt__admin_start(const tt_admin_opts_t *o, tt_admin_t **out) {
  struct tt_admin_s *a = calloc(1, sizeof *a);
  if (a == NULL)
    return -ENOMEM;
  a->o = *o;
  pthread_mutex_init(&a->recv_mu, NULL);
  tt_http_server_opts_t so;
  memset(&so, 0, sizeof so);
  so.host = o->host;
  so.port = o->port;
  so.max_body_bytes = 4096;
  so.max_connections = 64;
  so.route = route;
  so.ctx = a;
  so.name = "admin";
  int rc = tt__http_server_start(&so, &a->srv);
  if (rc != 0) {
    pthread_mutex_destroy(&a->recv_mu);
    free(a);
    return rc;
  }
  *out = a;
  return 0;
}

int tt__admin_port(const tt_admin_t *a) {
  return tt__http_server_port(a->srv);
}

void tt__admin_stop(tt_admin_t *a) {
  if (a == NULL)
    return;
  tt__http_server_stop(a->srv);
  pthread_mutex_destroy(&a->recv_mu);
  free(a);
}
