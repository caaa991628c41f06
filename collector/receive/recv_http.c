/* The OTLP/HTTP receiver: content negotiation and status mapping for `POST /v1/traces` on top of
 * http_server.c. The wire-level validation and google.rpc.Status encoding it shares with the
 * gRPC receiver live in otlp/validate.c. */
#include "recv_http.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_json.h"
#include "validate.h"
#include "wire.h"

/* ---- the /v1/traces route ------------------------------------------------------------------ */

enum { CT_UNKNOWN, CT_PROTOBUF, CT_JSON };

/* gRPC codes used in error bodies, so HTTP and gRPC clients see the same google.rpc.Status. */
enum { GRPC_INVALID_ARGUMENT = 3, GRPC_RESOURCE_EXHAUSTED = 8, GRPC_UNAVAILABLE = 14 };

static bool token_is(const char *s, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

/* Parses "type/subtype[; charset=utf-8]". Any other charset is refused: OTLP JSON is UTF-8. */
static int parse_content_type(const char *ct) {
  if (ct == NULL)
    return CT_UNKNOWN;
  const char *semi = strchr(ct, ';');
  size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  int kind = CT_UNKNOWN;
  if (token_is(ct, n, "application/x-protobuf") || token_is(ct, n, "application/protobuf"))
    kind = CT_PROTOBUF;
  else if (token_is(ct, n, "application/json"))
    kind = CT_JSON;
  while (kind != CT_UNKNOWN && semi != NULL) {
    const char *param = semi + 1;
    while (*param == ' ' || *param == '\t')
      param++;
    semi = strchr(param, ';');
    size_t pn = semi ? (size_t)(semi - param) : strlen(param);
    while (pn > 0 && (param[pn - 1] == ' ' || param[pn - 1] == '\t'))
      pn--;
    if (pn >= 8 && strncasecmp(param, "charset=", 8) == 0) {
      const char *cs = param + 8;
      size_t cn = pn - 8;
      if (cn >= 2 && cs[0] == '"' && cs[cn - 1] == '"') {
        cs++;
        cn -= 2;
      }
      if (!token_is(cs, cn, "utf-8") && !token_is(cs, cn, "utf8"))
        return CT_UNKNOWN;
    }
  }
  return kind;
}

static void error_body(tt_http_response_t *res, int kind, int status, int32_t grpc_code,
                       const char *msg, uint32_t retry_ms) {
  tt__http_status_body(res, status, kind != CT_PROTOBUF, grpc_code, msg, retry_ms);
}

/* A request refused before the pipeline: answered with a google.rpc.Status in the request's
 * encoding (JSON when the content type is neither), counted and reported by cause. */
static void refuse(tt_otlp_http_route_ctx_t *rc, const tt_http_request_t *req,
                   tt_http_response_t *res, int kind, int status, tt_refuse_cause_t cause,
                   const char *msg, const char *fix) {
  error_body(res, kind, status, tt__http_status_grpc_code(status), msg, 0);
  tt__refusal_note(rc->refusals, cause, "otlp_http", req->peer_addr, msg, fix);
}

static void success_body(tt_http_response_t *res, int kind, const tt_export_result_t *r) {
  res->status = 200;
  int rc = 0;
  if (kind == CT_JSON) {
    res->content_type = "application/json";
    if (r->rejected_spans > 0 || r->message[0] != '\0') {
      /* int64 is a string in proto3 JSON; every OTLP client accepts that form. */
      rc = tt__buf_appendf(&res->body, "{\"partialSuccess\":{\"rejectedSpans\":\"%lld\"",
                           (long long)r->rejected_spans);
      if (rc == 0 && r->message[0] != '\0') {
        rc = tt__buf_append_str(&res->body, ",\"errorMessage\":");
        rc = rc ? rc : tt__json_append_string(&res->body, r->message, strlen(r->message));
      }
      rc = rc ? rc : tt__buf_append_str(&res->body, "}}");
    } else {
      rc = tt__buf_append_str(&res->body, "{}");
    }
  } else {
    res->content_type = "application/x-protobuf";
    if (r->rejected_spans > 0 || r->message[0] != '\0') {
      tt_buf_t ps = TT_BUF_INIT;
      if (r->rejected_spans > 0) {
        rc = tt__buf_append_tag(&ps, 1, TT_WT_VARINT);
        rc = rc ? rc : tt__buf_append_varint(&ps, (uint64_t)r->rejected_spans);
      }
      size_t mlen = strlen(r->message);
      if (rc == 0 && mlen > 0) {
        rc = tt__buf_append_tag(&ps, 2, TT_WT_LEN);
        rc = rc ? rc : tt__buf_append_varint(&ps, mlen);
        rc = rc ? rc : tt__buf_append(&ps, r->message, mlen);
      }
      rc = rc ? rc : tt__buf_append_lenfield(&res->body, 1, ps.data, ps.len);
      tt__buf_free(&ps);
    }
  }
  if (rc != 0) {
    tt__buf_reset(&res->body);
    res->status = 500;
    res->content_type = NULL;
  }
}

static void retry_after(tt_http_response_t *res, uint32_t ms) {
  unsigned secs = (ms + 999) / 1000;
  snprintf(res->extra_headers, sizeof res->extra_headers, "Retry-After: %u\r\n", secs ? secs : 1);
}

void tt__otlp_http_route(void *route_ctx, const tt_http_request_t *req, tt_http_response_t *res) {
  tt_otlp_http_route_ctx_t *rc = route_ctx;
  int kind = parse_content_type(req->content_type);
  if (strcmp(req->path, "/v1/traces") != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "no such path %.100s: OTLP traces are accepted on POST /v1/traces",
             req->path);
    refuse(rc, req, res, kind, 404, TT_REFUSE_NOT_FOUND, msg,
           "send traces to /v1/traces (an SDK's traces endpoint is http://host:port/v1/traces)");
    return;
  }
  if (strcmp(req->method, "POST") != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "method %s not allowed on /v1/traces: use POST", req->method);
    refuse(rc, req, res, kind, 405, TT_REFUSE_METHOD, msg, "send traces with POST");
    snprintf(res->extra_headers, sizeof res->extra_headers, "Allow: POST\r\n");
    return;
  }
  if (kind == CT_UNKNOWN) {
    char msg[300];
    snprintf(msg, sizeof msg, "unsupported Content-Type %.200s",
             req->content_type ? req->content_type : "(none)");
    refuse(rc, req, res, kind, 415, TT_REFUSE_MEDIA_TYPE, msg,
           "send Content-Type application/x-protobuf or application/json");
    return;
  }
  atomic_fetch_add_explicit(&rc->requests, 1, memory_order_relaxed);

  char err[200];
  tt_buf_t pb = TT_BUF_INIT;
  tt_export_request_t ereq;
  if (kind == CT_JSON) {
    int jr = tt__otlp_json_to_pb((const char *)req->body, req->body_len, &pb, err, sizeof err);
    if (jr != 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "malformed OTLP/JSON: %s", err);
      refuse(rc, req, res, kind, 400, TT_REFUSE_INVALID, msg,
             "send an OTLP/JSON ExportTraceServiceRequest (ids as hex strings)");
      atomic_fetch_add_explicit(&rc->malformed, 1, memory_order_relaxed);
      tt__buf_free(&pb);
      return;
    }
    ereq = (tt_export_request_t){pb.data ? pb.data : (const uint8_t *)"", pb.len, "http/json",
                                 req->peer};
  } else {
    /* The handler checks the body's framing as it walks it (request.h): no walk here. */
    ereq = (tt_export_request_t){req->body, req->body_len, "http/protobuf", req->peer};
  }
  atomic_fetch_add_explicit(&rc->body_bytes, ereq.len, memory_order_relaxed);

  tt_export_result_t r;
  memset(&r, 0, sizeof r);
  rc->handler(rc->ctx, &ereq, &r);
  r.message[sizeof r.message - 1] = '\0';
  tt__buf_free(&pb);

  switch (r.status) {
    case TT_EXPORT_OK:
      atomic_fetch_add_explicit(&rc->accepted, 1, memory_order_relaxed);
      success_body(res, kind, &r);
      return;
    case TT_EXPORT_INVALID:
      error_body(res, kind, 400, GRPC_INVALID_ARGUMENT, r.message[0] ? r.message : "invalid data",
                 0);
      atomic_fetch_add_explicit(&rc->malformed, 1, memory_order_relaxed);
      /* Counted by the pipeline (requests_invalid): only reported here. */
      tt__refusal_warn(rc->refusals, TT_REFUSE_INVALID, "otlp_http", req->peer_addr,
                       r.message[0] ? r.message : "invalid data",
                       kind == CT_JSON
                           ? "send an OTLP/JSON ExportTraceServiceRequest (ids as hex strings)"
                           : "send a protobuf ExportTraceServiceRequest, or Content-Type "
                             "application/json for OTLP/JSON");
      return;
    case TT_EXPORT_TOO_LARGE:
      error_body(res, kind, 413, GRPC_RESOURCE_EXHAUSTED,
                 r.message[0] ? r.message : "request too large", 0);
      break;
    case TT_EXPORT_THROTTLED: {
      /* Same default as the gRPC receiver: a throttled answer always says when to retry. */
      uint32_t ms = r.retry_after_ms ? r.retry_after_ms : 1000;
      error_body(res, kind, 429, GRPC_RESOURCE_EXHAUSTED,
                 r.message[0] ? r.message : "collector is overloaded, retry later", ms);
      retry_after(res, ms);
      break;
    }
    case TT_EXPORT_UNAVAILABLE:
    default:
      error_body(res, kind, 503, GRPC_UNAVAILABLE,
                 r.message[0] ? r.message : "collector is unavailable, retry later", 0);
      retry_after(res, r.retry_after_ms);
      break;
  }
  atomic_fetch_add_explicit(&rc->rejected, 1, memory_order_relaxed);
}

/* ---- receiver lifecycle --------------------------------------------------------------------- */

struct tt_http_receiver_s {
  tt_http_server_t *srv;
  tt_otlp_http_route_ctx_t route; /* read by the server thread; counters are atomics */
  tt_refusals_t own_refusals;     /* when the options bring none */
  char h2_fix[200];
};

int tt__http_receiver_start(const tt_http_receiver_opts_t *o, tt_http_receiver_t **out) {
  *out = NULL;
  if (o == NULL || o->handler == NULL)
    return -EINVAL;
  tt_http_receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  r->route.handler = o->handler;
  r->route.ctx = o->ctx;
  r->route.refusals = o->refusals ? o->refusals : &r->own_refusals;
  if (o->grpc_endpoint != NULL && o->grpc_endpoint[0] != '\0')
    snprintf(r->h2_fix, sizeof r->h2_fix,
             "this port speaks OTLP/HTTP (HTTP/1.1); gRPC clients use the OTLP/gRPC receiver at %s",
             o->grpc_endpoint);
  else
    snprintf(r->h2_fix, sizeof r->h2_fix,
             "this port speaks OTLP/HTTP (HTTP/1.1); gRPC clients need receivers.otlp_grpc");
  tt_http_server_opts_t so = {
      .host = o->host,
      .port = o->port,
      .max_body_bytes = o->max_body_bytes,
      .idle_timeout_ms = o->idle_timeout_ms,
      .header_timeout_ms = o->header_timeout_ms,
      .min_body_rate = o->min_body_rate,
      .max_connections = o->max_connections,
      .max_connections_per_ip = o->max_connections_per_ip,
      .receive_budget_bytes = o->receive_budget_bytes,
      .route = tt__otlp_http_route,
      .ctx = &r->route,
      .name = "otlp-http",
      .refusals = r->route.refusals,
      .receiver = "otlp_http",
      .h2_fix = r->h2_fix,
      .body_size_key = "receivers.otlp_http.max_body_size",
  };
  int rc = tt__http_server_start(&so, &r->srv);
  if (rc != 0) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int tt__http_receiver_port(const tt_http_receiver_t *r) {
  return r ? tt__http_server_port(r->srv) : -1;
}

void tt__http_receiver_stats(const tt_http_receiver_t *r, tt_http_receiver_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (r == NULL)
    return;
  out->requests = atomic_load_explicit(&r->route.requests, memory_order_relaxed);
  out->accepted = atomic_load_explicit(&r->route.accepted, memory_order_relaxed);
  out->malformed = atomic_load_explicit(&r->route.malformed, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&r->route.rejected, memory_order_relaxed);
  out->body_bytes = atomic_load_explicit(&r->route.body_bytes, memory_order_relaxed);
}

void tt__http_receiver_conn_stats(const tt_http_receiver_t *r, tt_http_server_stats_t *out) {
  tt__http_server_stats(r ? r->srv : NULL, out);
}

void tt__http_receiver_stop(tt_http_receiver_t *r) {
  if (r == NULL)
    return;
  tt__http_server_stop(r->srv);
  free(r);
}
