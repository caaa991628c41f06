/* Admin routes: see admin.h. The route runs on the admin server's thread and only reads atomics,
 * so it never waits on the span path. */
#include "admin.h"

#include "sink_otlp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "version.h"

struct tt_admin_s {
  tt_admin_opts_t o;
  tt_http_server_t *srv;
};

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
    bool ready = atomic_load(a->o.ready);
    bool sinks = tt__pipeline_sinks_healthy(a->o.pipeline);
    res->status = ready && sinks ? 200 : 503;
    tt__buf_appendf(&res->body, "receivers: %s\nsinks: %s\n", ready ? "up" : "not ready",
                    sinks ? "healthy" : "failing");
    /* The bus never fails readiness: without it every collector still decides on its own. */
    tt_bus_t *bus = tt__pipeline_bus(a->o.pipeline);
    if (bus != NULL) {
      tt_bus_stats_t st;
      tt__bus_stats(bus, &st);
      tt__buf_appendf(&res->body, "bus: %s (%u of %u nodes up)%s\n",
                      st.nodes_up == st.nodes ? "up"
                      : st.nodes_up           ? "degraded"
                                              : "down",
                      st.nodes_up, st.nodes,
                      st.nodes_up == st.nodes ? ""
                                              : "; traces on the nodes down are decided locally");
    }
  } else if (strcmp(req->path, "/metrics") == 0) {
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    tt__metrics_render(tt__pipeline_metrics(a->o.pipeline), &res->body);
    tt__metrics_render_bus(tt__pipeline_bus(a->o.pipeline), tt__pipeline_metrics(a->o.pipeline),
                           &res->body);
    size_t nsinks;
    tt_sink_t *const *sinks = tt__pipeline_sinks(a->o.pipeline, &nsinks);
    tt__sink_otlp_render_metrics(sinks, nsinks, &res->body);
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
  free(a);
}
