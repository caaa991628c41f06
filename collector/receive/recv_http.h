/* The OTLP/HTTP receiver: `POST /v1/traces` on an http_server.h server.
 *
 * Bodies are `application/x-protobuf` or `application/json` (an optional `; charset=utf-8` is
 * accepted), optionally gzip-compressed, chunked or not. Protobuf bodies are checked to be a
 * well-formed ExportTraceServiceRequest at the wire level (bounds-checked scan, no unpack); JSON
 * bodies are transcoded to protobuf (otlp_json.h). Then the handler of request.h runs, on the
 * receiver's thread, and its result becomes the answer in the request's content type:
 *   OK 200 (ExportTraceServiceResponse; partial_success when spans were rejected),
 *   INVALID 400, THROTTLED 429 + Retry-After, UNAVAILABLE 503 + Retry-After,
 *   malformed body 400, unknown content type 415, body too large 413, other path 404,
 *   other method 405 (+ Allow: POST).
 * Every error body is a google.rpc.Status: protobuf for protobuf requests, proto3 JSON
 * {"code":..,"message":..} for JSON requests and any other content type. The refusals before the
 * handler (400, 404, 405, 413, 415, HTTP/2 or TLS on this port) are noted in refusal.h.
 */
#ifndef TT_COLLECTOR_RECV_HTTP_H
#define TT_COLLECTOR_RECV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_server.h"
#include "request.h"

typedef struct tt_http_receiver_s tt_http_receiver_t;

typedef struct {
  const char *host;           /* bind address; NULL: 127.0.0.1 */
  int port;                   /* 0 picks an ephemeral port (read back with _port) */
  size_t max_body_bytes;      /* applies to wire and inflated size; 0: 20 MiB */
  uint32_t idle_timeout_ms;   /* between requests; 0: 30 s */
  uint32_t header_timeout_ms; /* connection limits: see tt_http_server_opts_t; 0: defaults */
  uint32_t min_body_rate;
  uint32_t max_connections;
  uint32_t max_connections_per_ip;
  size_t receive_budget_bytes;
  tt_export_handler_fn handler; /* required; called on the receiver's thread */
  void *ctx;                    /* passed to handler */
  tt_refusals_t *refusals;      /* where refusals are counted; NULL: the receiver's own */
  const char *grpc_endpoint;    /* said to gRPC clients that reach this port; NULL: none runs */
} tt_http_receiver_opts_t;

/* Counters, read with relaxed atomics: a consistent snapshot is not promised. */
typedef struct {
  uint64_t requests;   /* POSTs to /v1/traces with a supported content type */
  uint64_t accepted;   /* handler answered OK */
  uint64_t malformed;  /* 400 before the handler (bad protobuf or JSON) */
  uint64_t rejected;   /* handler answered INVALID, THROTTLED or UNAVAILABLE */
  uint64_t body_bytes; /* decoded body bytes handed to the handler */
} tt_http_receiver_stats_t;

/* Starts the server thread with its own uv loop. Options are copied. Returns 0 or negative
 * errno. */
int tt__http_receiver_start(const tt_http_receiver_opts_t *o, tt_http_receiver_t **out);

/* The server's connection figures. Any thread. */
void tt__http_receiver_conn_stats(const tt_http_receiver_t *r, tt_http_server_stats_t *out);

/* The bound port. Any thread. */
int tt__http_receiver_port(const tt_http_receiver_t *r);

/* Any thread. */
void tt__http_receiver_stats(const tt_http_receiver_t *r, tt_http_receiver_stats_t *out);

/* Stops accepting, finishes in-flight responses, joins the thread, frees. NULL is a no-op. */
void tt__http_receiver_stop(tt_http_receiver_t *r);

/* The request path behind `POST /v1/traces`, usable without a socket (the HTTP fuzzer drives
 * it through a tt_http_session_t). `route_ctx` is a tt_otlp_http_route_ctx_t the caller owns; the
 * counters are updated with relaxed atomics. */
typedef struct {
  tt_export_handler_fn handler;
  void *ctx;
  tt_refusals_t *refusals; /* NULL: refusals are answered but not counted */
  _Atomic uint64_t requests, accepted, malformed, rejected, body_bytes;
} tt_otlp_http_route_ctx_t;
void tt__otlp_http_route(void *route_ctx, const tt_http_request_t *req, tt_http_response_t *res);

#endif
