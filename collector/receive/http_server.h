/* A small HTTP/1.1 server: one thread running its own libuv loop, http-parser for framing.
 *
 * It is the transport under the OTLP/HTTP receiver (recv_http.c) and the admin port
 * (/healthz, /readyz, /metrics). It handles the HTTP-level work so routes never see it:
 * keep-alive, chunked request bodies, `Expect: 100-continue`, `Content-Encoding: gzip` (inflated
 * before the route runs, with the body limit applied to the inflated size too), and per-connection
 * limits (header bytes, body bytes, idle timeout, connection count) so a slow or hostile client
 * cannot hold memory. A body over the limit is answered 413 as soon as the limit is known to be
 * exceeded (from Content-Length, or while chunks arrive) and the connection is closed without
 * reading the rest.
 *
 * Threads: tt__http_server_start/port/stop are called from one controlling thread. The route
 * callback runs on the server's own thread, one request at a time, and must not block for long. */
#ifndef TT_COLLECTOR_HTTP_SERVER_H
#define TT_COLLECTOR_HTTP_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "refusal.h"

typedef struct tt_http_server_s tt_http_server_t;

/* One complete request as a route sees it. Everything is borrowed for the call only. Header
 * values are NULL when the header was absent. */
typedef struct {
  const char *method;       /* "GET", "POST", ... */
  const char *path;         /* path part of the URL, without the query string */
  const char *query;        /* after '?', or NULL */
  const char *content_type; /* raw Content-Type value, e.g. "application/json; charset=utf-8" */
  const char *user_agent;   /* raw User-Agent value */
  const uint8_t *body;      /* the decoded body (already inflated when it was gzip) */
  size_t body_len;
  size_t wire_body_len;  /* bytes on the wire, before inflation */
  uint64_t peer;         /* the client (tt__peer_addr_hash of its address); 0: unknown */
  const char *peer_addr; /* the client as "192.0.2.1:50312" (for logs); "" when unknown */
} tt_http_request_t;

/* What a route fills in. The server sends it and then resets it. */
typedef struct {
  int status;               /* HTTP status code; 0 is answered as 500 */
  const char *content_type; /* static string or NULL (no Content-Type) */
  char extra_headers[256];  /* "Name: value\r\n" lines, NUL-terminated; may be empty */
  tt_buf_t body;            /* owned by the server; the route appends to it */
  int close;                /* nonzero: close the connection after this response */
} tt_http_response_t;

typedef void (*tt_http_route_fn)(void *ctx, const tt_http_request_t *req, tt_http_response_t *res);

typedef struct {
  const char *host;           /* bind address, e.g. "127.0.0.1" or "0.0.0.0"; NULL: 127.0.0.1 */
  int port;                   /* 0 picks an ephemeral port; read it back with _port() */
  size_t max_body_bytes;      /* limit on both wire and inflated body; 0: 20 MiB */
  size_t max_header_bytes;    /* limit on the request line plus headers; 0: 16 KiB */
  uint32_t idle_timeout_ms;   /* close a connection idle between requests this long; 0: 30 s */
  uint32_t header_timeout_ms; /* a request's line and headers must arrive within this from its
                                 first byte (a new connection's first request: from accept);
                                 the body gets the same period plus min_body_rate; 0: 10 s */
  uint32_t min_body_rate;     /* bytes/s a body must average; 0: 16 KiB/s */
  uint32_t max_connections;   /* at the cap a new connection closes the longest-idle one (or the
                                 one longest in its headers); when every connection is busy the
                                 new one is closed; 0: 1024 */
  uint32_t max_connections_per_ip; /* a client address over this is closed at once; 0: no cap
                                      but max_connections */
  size_t receive_budget_bytes;     /* bodies being received, all connections together; a request
                                      that would pass it is answered 429 + Retry-After and the
                                      connection closed; 0: 64 MiB */
  tt_http_route_fn route;          /* required */
  void *ctx;                       /* passed to route */
  const char *name;                /* short name for the thread and logs ("otlp-http", "admin") */
  /* Where the server notes what it refuses itself (bodies or headers over their limits, bytes
   * that are not HTTP/1.1, HTTP/2 or TLS on this port); NULL: not counted or logged. Routes note
   * their own refusals. */
  tt_refusals_t *refusals;
  const char *receiver;      /* the "receiver" of those log lines, e.g. "otlp_http" */
  const char *h2_fix;        /* what an HTTP/2 client should change; NULL: a generic text */
  const char *body_size_key; /* the configuration key of max_body_bytes, said in a 413 */
} tt_http_server_opts_t;

/* Fills res with an error answer: `status`, and a google.rpc.Status {code: grpc_code, message:
 * msg} body as OTLP/HTTP says, protobuf (application/x-protobuf) or, with `json`, proto3 JSON
 * {"code":..,"message":..}. retry_ms > 0 adds a RetryInfo detail (protobuf only). On allocation
 * failure the answer is a bare 500. */
void tt__http_status_body(tt_http_response_t *res, int status, bool json, int32_t grpc_code,
                          const char *msg, uint32_t retry_ms);

/* Appends res to o as an HTTP/1.1 response: status line, Content-Length, Content-Type, the extra
 * headers, `Connection: close` when `close`, and the body unless `head` (the answer to a HEAD
 * request has no body, or a keep-alive client would read it as the next response). Returns 0 or
 * -ENOMEM. */
int tt__http_response_write(tt_buf_t *o, const tt_http_response_t *res, bool close, bool head);

/* The gRPC code an HTTP error status stands for, per the gRPC HTTP mapping (400 ->
 * INVALID_ARGUMENT, 404 -> NOT_FOUND, 413/429/431 -> RESOURCE_EXHAUSTED, ...). */
int32_t tt__http_status_grpc_code(int status);

/* Binds, listens and starts the server thread. The options are copied (host and name too).
 * Returns 0, or a negative errno (-EADDRINUSE, -EINVAL, -ENOMEM, ...). */
int tt__http_server_start(const tt_http_server_opts_t *opts, tt_http_server_t **out);

/* The bound TCP port (useful when opts.port was 0). Any thread. */
int tt__http_server_port(const tt_http_server_t *s);

typedef struct {
  uint64_t connections;    /* open now */
  uint64_t refused_limit;  /* closed at once: at max_connections with nothing to evict */
  uint64_t refused_per_ip; /* closed at once: over max_connections_per_ip */
  uint64_t evicted;        /* idle or stalled connections closed to make room */
  uint64_t timeout_header, timeout_body, timeout_idle; /* closed by a deadline */
  uint64_t budget_refused;  /* requests answered 429 for want of receive budget */
  uint64_t receiving_bytes; /* receive budget in use now */
} tt_http_server_stats_t;

/* Any thread. */
void tt__http_server_stats(const tt_http_server_t *s, tt_http_server_stats_t *out);

/* Stops accepting, lets responses already being written finish, closes every connection, joins
 * the thread and frees the server. NULL is a no-op. Not from the server's own thread. */
void tt__http_server_stop(tt_http_server_t *s);

/* ---- Socket-less core, for the fuzzer and unit tests ---------------------------------------
 * A session is one connection's protocol state without a socket: bytes in, bytes out. The uv
 * layer drives exactly this code, so fuzzing it covers the server's parsing. */
typedef struct tt_http_session_s tt_http_session_t;

/* `opts` must outlive the session; only the limits, route and ctx are used. */
tt_http_session_t *tt__http_session_new(const tt_http_server_opts_t *opts);
void tt__http_session_free(tt_http_session_t *ss);

/* Feeds received bytes; any response bytes produced are appended to `out`. Returns 0 to keep the
 * connection, 1 when the connection must be closed once `out` is written (error, limit,
 * `Connection: close`), or a negative errno on allocation failure. After 1 further input is
 * ignored. */
int tt__http_session_feed(tt_http_session_t *ss, const uint8_t *data, size_t len, tt_buf_t *out);

/* Makes the session take its bodies from a shared receive budget: `*used` bytes of `max`. */
void tt__http_session_set_budget(tt_http_session_t *ss, _Atomic size_t *used, size_t max);

/* The client's identity, passed to routes as tt_http_request_t.peer. */
void tt__http_session_set_peer(tt_http_session_t *ss, uint64_t peer);

/* The client's address as text, passed to routes as tt_http_request_t.peer_addr (copied). */
void tt__http_session_set_peer_addr(tt_http_session_t *ss, const char *addr);

/* Tells the session the peer closed its side (EOF); returns as _feed does. */
int tt__http_session_eof(tt_http_session_t *ss, tt_buf_t *out);

#endif
