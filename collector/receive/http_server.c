/* A small HTTP/1.1 server: a socket-less session (http-parser framing, limits, gzip, response
 * serialisation) driven by a libuv layer (accept, read, write, idle timers, shutdown).
 *
 * Threads: everything below the "uv layer" line runs on the server's own thread, except
 * tt__http_server_start (controlling thread, before the thread exists), tt__http_server_port
 * (immutable after start) and tt__http_server_stop (controlling thread; it only signals the loop
 * through a uv_async and joins). */
#define _GNU_SOURCE
#include "http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <uv.h>

#include "inflate.h"
#include "log.h"
#include "otlp_json.h"
#include "peers.h"
#include "sniff.h"
#include "validate.h"

#define DEFAULT_MAX_BODY (20u * 1024 * 1024)
#define DEFAULT_MAX_HEADER (16u * 1024)
#define DEFAULT_IDLE_MS 30000u
#define DEFAULT_HEADER_MS 10000u
#define DEFAULT_MIN_BODY_RATE (16u * 1024)
#define DEFAULT_MAX_CONNS 1024u
#define DEFAULT_RECEIVE_BUDGET (64u * 1024 * 1024)
/* A client that pipelines requests without reading answers is paused above this much unsent
 * output, so its responses cannot pile up in memory. */
#define WRITE_HIGH_WATER (4u * 1024 * 1024)
/* How long stop() lets pending responses drain before closing connections regardless. */
#define STOP_GRACE_MS 2000

/* ---- session: one connection's protocol state, no socket ----------------------------------- */

enum { ENC_IDENTITY, ENC_GZIP, ENC_DEFLATE };

struct tt_http_session_s {
  http_parser parser;
  const tt_http_server_opts_t *o; /* for the refusal reports */
  size_t max_body, max_header;
  tt_http_route_fn route;
  void *ctx;

  tt_buf_t url;
  tt_buf_t field; /* current header name, accumulated across callbacks */
  tt_buf_t value; /* current header value */
  bool in_value;
  size_t header_bytes;
  char content_type[256];
  char user_agent[256];
  int encoding;
  bool bad_encoding;
  bool expect_continue;
  bool in_headers; /* between the first byte of a request and the end of its headers */
  bool in_body;    /* between the end of the headers and the end of the request */
  tt_buf_t body;   /* wire body */
  /* The receive budget shared by the server's connections: bytes of bodies being received.
   * `reserved` is this request's part of it (its Content-Length, or what a chunked body has
   * brought so far). */
  _Atomic size_t *budget_used;
  size_t budget_max;
  size_t reserved;
  uint64_t peer;
  char peer_addr[64];
  bool started; /* the connection's first bytes were looked at (HTTP/2, TLS) */
  tt_buf_t inflated;

  tt_buf_t *out;       /* where responses go during a feed() */
  bool closing;        /* a response decided the connection ends; ignore further input */
  bool budget_refused; /* the request was answered 429 for want of receive budget */
  bool answered;       /* the current error was already answered (parser stopped on purpose) */
  int oom;
};

static const char *reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

int tt__http_response_write(tt_buf_t *o, const tt_http_response_t *res, bool close, bool head) {
  int status = res->status ? res->status : 500;
  int rc = tt__buf_appendf(o, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, reason(status),
                           res->body.len);
  if (rc == 0 && res->content_type != NULL)
    rc = tt__buf_appendf(o, "Content-Type: %s\r\n", res->content_type);
  if (rc == 0 && res->extra_headers[0] != '\0')
    rc = tt__buf_append_str(o, res->extra_headers);
  if (rc == 0 && close)
    rc = tt__buf_append_str(o, "Connection: close\r\n");
  if (rc == 0)
    rc = tt__buf_append(o, "\r\n", 2);
  if (rc == 0 && !head)
    rc = tt__buf_append(o, res->body.data, res->body.len);
  return rc;
}

static void write_response(tt_http_session_t *ss, tt_http_response_t *res, bool close, bool head) {
  int rc = tt__http_response_write(ss->out, res, close, head);
  if (rc != 0)
    ss->oom = rc;
}

int32_t tt__http_status_grpc_code(int status) {
  switch (status) {
    case 400:
    case 415:
      return 3; /* INVALID_ARGUMENT */
    case 401:
      return 16; /* UNAUTHENTICATED */
    case 403:
      return 7; /* PERMISSION_DENIED */
    case 404:
      return 5; /* NOT_FOUND */
    case 405:
    case 505:
      return 12; /* UNIMPLEMENTED */
    case 413:
    case 429:
    case 431:
      return 8; /* RESOURCE_EXHAUSTED */
    case 503:
      return 14; /* UNAVAILABLE */
    default:
      return 13; /* INTERNAL */
  }
}

void tt__http_status_body(tt_http_response_t *res, int status, bool json, int32_t grpc_code,
                          const char *msg, uint32_t retry_ms) {
  res->status = status;
  int rc;
  tt__buf_reset(&res->body);
  if (json) {
    res->content_type = "application/json";
    rc = tt__buf_appendf(&res->body, "{\"code\":%d,\"message\":", (int)grpc_code);
    rc = rc ? rc : tt__json_append_string(&res->body, msg, strlen(msg));
    rc = rc ? rc : tt__buf_append_str(&res->body, "}");
  } else {
    res->content_type = "application/x-protobuf";
    rc = tt__rpc_status_encode(&res->body, grpc_code, msg, retry_ms);
  }
  if (rc != 0) {
    tt__buf_reset(&res->body);
    res->status = 500;
    res->content_type = NULL;
  }
}

/* An error answer's encoding follows the request's Content-Type: protobuf for a protobuf
 * request, JSON for anything else (a JSON client, a person with curl, no header yet). */
static bool wants_json(const char *content_type) {
  return strncasecmp(content_type, "application/x-protobuf", 22) != 0 &&
         strncasecmp(content_type, "application/protobuf", 20) != 0;
}

static void note(tt_http_session_t *ss, tt_refuse_cause_t cause, const char *detail,
                 const char *fix) {
  tt__refusal_note(ss->o->refusals, cause, ss->o->receiver ? ss->o->receiver : ss->o->name,
                   ss->peer_addr, detail, fix);
}

/* Answers an error found by the server itself (not a route) and ends the connection: the rest of
 * the request is never read, which is the point for 413 and 431. `cause` is counted and logged
 * (refusal.h) unless it is -1: a request refused for want of room is counted on its own. */
static void fail(tt_http_session_t *ss, int status, int cause, const char *msg, const char *fix) {
  tt_http_response_t res = {.status = status};
  tt__http_status_body(&res, status, wants_json(ss->content_type),
                       tt__http_status_grpc_code(status), msg,
                       status == 429 || status == 503 ? 1000 : 0);
  if (status == 429 || status == 503)
    snprintf(res.extra_headers, sizeof res.extra_headers, "Retry-After: 1\r\n");
  if (cause >= 0)
    note(ss, (tt_refuse_cause_t)cause, msg, fix);
  write_response(ss, &res, true, false);
  tt__buf_free(&res.body);
  ss->closing = true;
  ss->answered = true;
}

static void release(tt_http_session_t *ss) {
  if (ss->reserved > 0 && ss->budget_used != NULL)
    atomic_fetch_sub_explicit(ss->budget_used, ss->reserved, memory_order_relaxed);
  ss->reserved = 0;
}

/* Takes `n` more bytes of the receive budget for the current request, or answers 429 (the client
 * retries later, as OTLP says) when the connections' bodies already hold the budget. */
static int reserve(tt_http_session_t *ss, size_t n) {
  if (ss->budget_used == NULL)
    return 0;
  size_t used = atomic_load_explicit(ss->budget_used, memory_order_relaxed);
  if (n > ss->budget_max || used > ss->budget_max - n) {
    fail(ss, 429, -1, "the collector is receiving too many request bodies at once; retry later",
         NULL);
    ss->budget_refused = true;
    return -1;
  }
  atomic_fetch_add_explicit(ss->budget_used, n, memory_order_relaxed);
  ss->reserved += n;
  return 0;
}

static int on_message_begin(http_parser *p) {
  tt_http_session_t *ss = p->data;
  release(ss);
  tt__buf_reset(&ss->url);
  tt__buf_reset(&ss->field);
  tt__buf_reset(&ss->value);
  tt__buf_reset(&ss->body);
  ss->in_value = false;
  ss->header_bytes = 0;
  ss->content_type[0] = ss->user_agent[0] = '\0';
  ss->encoding = ENC_IDENTITY;
  ss->bad_encoding = false;
  ss->expect_continue = false;
  ss->in_headers = true;
  ss->in_body = false;
  return 0;
}

static int count_header(tt_http_session_t *ss, size_t n) {
  ss->header_bytes += n;
  if (ss->header_bytes > ss->max_header) {
    fail(ss, 431, TT_REFUSE_HEADERS_TOO_LARGE, "request headers too large",
         "send fewer or smaller headers");
    return -1;
  }
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  tt_http_session_t *ss = p->data;
  if (count_header(ss, n) != 0)
    return -1;
  return tt__buf_append(&ss->url, at, n) == 0 ? 0 : (ss->oom = -ENOMEM, -1);
}

static void copy_value(char *dst, size_t cap, const tt_buf_t *v) {
  size_t n = v->len < cap - 1 ? v->len : cap - 1;
  memcpy(dst, v->data, n);
  dst[n] = '\0';
}

static bool value_is(const tt_buf_t *v, const char *s) {
  size_t n = strlen(s);
  return v->len == n && strncasecmp((const char *)v->data, s, n) == 0;
}

/* Only the few headers the server or its routes act on are kept; the rest are counted against
 * the header limit and dropped. */
static void finish_header(tt_http_session_t *ss) {
  if (!ss->in_value)
    return;
  tt_buf_t *f = &ss->field, *v = &ss->value;
  /* Trim trailing whitespace in the value (http-parser already skips leading spaces). */
  while (v->len > 0 && (v->data[v->len - 1] == ' ' || v->data[v->len - 1] == '\t'))
    v->len--;
  if (value_is(f, "content-type")) {
    copy_value(ss->content_type, sizeof ss->content_type, v);
  } else if (value_is(f, "user-agent")) {
    copy_value(ss->user_agent, sizeof ss->user_agent, v);
  } else if (value_is(f, "content-encoding")) {
    if (value_is(v, "gzip") || value_is(v, "x-gzip"))
      ss->encoding = ENC_GZIP;
    else if (value_is(v, "deflate"))
      ss->encoding = ENC_DEFLATE;
    else if (!value_is(v, "identity") && v->len > 0)
      ss->bad_encoding = true;
  } else if (value_is(f, "expect")) {
    ss->expect_continue = value_is(v, "100-continue");
  }
  tt__buf_reset(f);
  tt__buf_reset(v);
  ss->in_value = false;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  tt_http_session_t *ss = p->data;
  if (count_header(ss, n) != 0)
    return -1;
  finish_header(ss);
  return tt__buf_append(&ss->field, at, n) == 0 ? 0 : (ss->oom = -ENOMEM, -1);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  tt_http_session_t *ss = p->data;
  if (count_header(ss, n) != 0)
    return -1;
  ss->in_value = true;
  return tt__buf_append(&ss->value, at, n) == 0 ? 0 : (ss->oom = -ENOMEM, -1);
}

/* 413: says the limit and the key that sets it. */
static void too_large(tt_http_session_t *ss, const char *what) {
  char msg[256], fix[256];
  const char *key = ss->o->body_size_key ? ss->o->body_size_key : "the body size limit";
  snprintf(msg, sizeof msg, "%s larger than %s (%zu bytes)", what, key, ss->max_body);
  snprintf(fix, sizeof fix, "send smaller batches (the SDK's max export batch size) or raise %s",
           key);
  fail(ss, 413, TT_REFUSE_BODY_TOO_LARGE, msg, fix);
}

static int on_headers_complete(http_parser *p) {
  tt_http_session_t *ss = p->data;
  finish_header(ss);
  ss->in_headers = false;
  if (p->upgrade) {
    fail(ss, 400, TT_REFUSE_BAD_HTTP, "protocol upgrade is not supported",
         "send plain HTTP/1.1 requests without Upgrade");
    return -1;
  }
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > ss->max_body) {
    too_large(ss, "request body");
    return -1;
  }
  if (ss->bad_encoding) {
    fail(ss, 415, TT_REFUSE_MEDIA_TYPE, "unsupported Content-Encoding",
         "send Content-Encoding gzip, deflate or identity");
    return -1;
  }
  /* A declared body takes its whole size from the budget before a byte of it is read, so a
   * request that could not finish is refused while the client can still retry elsewhere. */
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 &&
      reserve(ss, (size_t)p->content_length) != 0)
    return -1;
  ss->in_body = true;
  /* Small declared bodies are allocated once. Large ones still grow with the bytes actually
   * received, so a client cannot reserve 20 MiB per connection by only sending headers. */
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > 0 &&
      tt__buf_reserve(&ss->body,
                      (size_t)(p->content_length < 262144 ? p->content_length : 262144)) != 0) {
    ss->oom = -ENOMEM;
    return -1;
  }
  if (ss->expect_continue && tt__buf_append_str(ss->out, "HTTP/1.1 100 Continue\r\n\r\n") != 0)
    ss->oom = -ENOMEM;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  tt_http_session_t *ss = p->data;
  if (n > ss->max_body - ss->body.len) {
    too_large(ss, "request body");
    return -1;
  }
  /* A chunked body takes from the budget as it arrives. */
  if (ss->body.len + n > ss->reserved && reserve(ss, ss->body.len + n - ss->reserved) != 0)
    return -1;
  return tt__buf_append(&ss->body, at, n) == 0 ? 0 : (ss->oom = -ENOMEM, -1);
}

static int on_message_complete(http_parser *p) {
  tt_http_session_t *ss = p->data;
  ss->in_body = false;
  const uint8_t *body = ss->body.data;
  size_t body_len = ss->body.len;
  if (ss->encoding != ENC_IDENTITY && body_len > 0) {
    int rc = tt__inflate_bounded(ss->body.data, ss->body.len,
                                 ss->encoding == ENC_GZIP ? TT_INFLATE_GZIP : TT_INFLATE_AUTO,
                                 ss->max_body, &ss->inflated);
    if (rc == -EFBIG) {
      too_large(ss, "request body once decompressed");
      return -1;
    }
    if (rc == -ENOMEM) {
      ss->oom = -ENOMEM;
      fail(ss, 500, -1, "out of memory", NULL);
      return -1;
    }
    if (rc != 0) {
      fail(ss, 400, TT_REFUSE_INVALID, "body is not valid compressed data",
           "send a valid gzip body with Content-Encoding: gzip, or none");
      return -1;
    }
    body = ss->inflated.data;
    body_len = ss->inflated.len;
  }
  if (tt__buf_append(&ss->url, "", 1) != 0) { /* NUL-terminate for the route */
    ss->oom = -ENOMEM;
    return -1;
  }
  char *path = (char *)ss->url.data;
  char *query = strchr(path, '?');
  if (query != NULL)
    *query++ = '\0';
  tt_http_request_t req = {
      .method = http_method_str((enum http_method)p->method),
      .path = path,
      .query = query,
      .content_type = ss->content_type[0] ? ss->content_type : NULL,
      .user_agent = ss->user_agent[0] ? ss->user_agent : NULL,
      .body = body != NULL ? body : (const uint8_t *)"",
      .body_len = body_len,
      .wire_body_len = ss->body.len,
      .peer = ss->peer,
      .peer_addr = ss->peer_addr,
  };
  tt_http_response_t res = {0};
  ss->route(ss->ctx, &req, &res);
  bool close = res.close || !http_should_keep_alive(p);
  write_response(ss, &res, close, p->method == HTTP_HEAD);
  tt__buf_free(&res.body);
  /* Large bodies are not kept between requests on a keep-alive connection. */
  if (ss->body.cap > 65536)
    tt__buf_free(&ss->body);
  if (ss->inflated.cap > 65536)
    tt__buf_free(&ss->inflated);
  release(ss);
  if (close) {
    ss->closing = true;
    ss->answered = true;
    return -1;
  }
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

tt_http_session_t *tt__http_session_new(const tt_http_server_opts_t *opts) {
  tt_http_session_t *ss = calloc(1, sizeof *ss);
  if (ss == NULL)
    return NULL;
  ss->max_body = opts->max_body_bytes ? opts->max_body_bytes : DEFAULT_MAX_BODY;
  ss->max_header = opts->max_header_bytes ? opts->max_header_bytes : DEFAULT_MAX_HEADER;
  ss->route = opts->route;
  ss->ctx = opts->ctx;
  ss->o = opts;
  http_parser_init(&ss->parser, HTTP_REQUEST);
  ss->parser.data = ss;
  return ss;
}

void tt__http_session_set_budget(tt_http_session_t *ss, _Atomic size_t *used, size_t max) {
  ss->budget_used = used;
  ss->budget_max = max;
}

void tt__http_session_set_peer(tt_http_session_t *ss, uint64_t peer) {
  ss->peer = peer;
}

void tt__http_session_set_peer_addr(tt_http_session_t *ss, const char *addr) {
  snprintf(ss->peer_addr, sizeof ss->peer_addr, "%s", addr ? addr : "");
}

void tt__http_session_free(tt_http_session_t *ss) {
  if (ss == NULL)
    return;
  release(ss);
  tt__buf_free(&ss->url);
  tt__buf_free(&ss->field);
  tt__buf_free(&ss->value);
  tt__buf_free(&ss->body);
  tt__buf_free(&ss->inflated);
  free(ss);
}

static int execute(tt_http_session_t *ss, const uint8_t *data, size_t len, tt_buf_t *out) {
  if (ss->closing)
    return 1;
  ss->out = out;
  size_t used = http_parser_execute(&ss->parser, &settings, (const char *)data, len);
  enum http_errno err = HTTP_PARSER_ERRNO(&ss->parser);
  int rc = 0;
  if (ss->closing) {
    rc = 1;
  } else if (err != HPE_OK || (len > 0 && used != len)) {
    /* At EOF mid-request nobody is left to answer; otherwise say what was wrong. */
    if (len > 0 && !ss->oom) {
      if (err == HPE_HEADER_OVERFLOW)
        fail(ss, 431, TT_REFUSE_HEADERS_TOO_LARGE, "request headers too large",
             "send fewer or smaller headers");
      else
        fail(ss, 400, TT_REFUSE_BAD_HTTP, http_errno_description(err),
             "send HTTP/1.1 requests: POST /v1/traces");
    }
    ss->closing = true;
    rc = 1;
  }
  ss->out = NULL;
  return ss->oom ? ss->oom : rc;
}

/* Answers an HTTP/2 client (a gRPC client, or curl --http2-prior-knowledge) in HTTP/1.1: 505
 * with a google.rpc.Status saying where to go, then the connection closes. gRPC clients report
 * "Trying to connect an http1.x server" and back off as after any failed connection. An HTTP/2
 * GOAWAY (HTTP_1_1_REQUIRED) would be the protocol's own answer, but gRPC clients take the
 * connection for a working one and retry at once, thousands of times a second. */
static void refuse_h2(tt_http_session_t *ss) {
  const char *fix = ss->o->h2_fix
                        ? ss->o->h2_fix
                        : "this port speaks HTTP/1.1 only; HTTP/2 and gRPC are not served";
  char msg[300];
  snprintf(msg, sizeof msg, "HTTP/2 is not served on this port: %s", fix);
  tt_http_response_t res = {0};
  tt__http_status_body(&res, 505, true, tt__http_status_grpc_code(505), msg, 0);
  write_response(ss, &res, true, false);
  tt__buf_free(&res.body);
  note(ss, TT_REFUSE_HTTP2, "an HTTP/2 connection (a gRPC client?) on an HTTP/1.1 port", fix);
}

/* A TLS ClientHello on this plain-text port: a fatal handshake_failure alert, which TLS clients
 * report, then the connection is closed. */
static void refuse_tls(tt_http_session_t *ss, tt_buf_t *out) {
  static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};
  if (tt__buf_append(out, alert, sizeof alert) != 0)
    ss->oom = -ENOMEM;
  note(ss, TT_REFUSE_TLS, "a TLS handshake on a plain-text HTTP port",
       "this port speaks plain HTTP: use an http:// endpoint, not https://, or put a TLS proxy "
       "in front");
}

int tt__http_session_feed(tt_http_session_t *ss, const uint8_t *data, size_t len, tt_buf_t *out) {
  if (len == 0)
    return ss->closing ? 1 : 0;
  if (!ss->started && !ss->closing) {
    /* Only a connection's first bytes can say it speaks another protocol. A preface cut
     * before its fourth byte goes to the HTTP parser and is answered 400. */
    ss->started = true;
    tt_sniff_t proto = tt__sniff(data, len);
    if (proto == TT_SNIFF_TLS || proto == TT_SNIFF_HTTP2) {
      ss->out = out;
      if (proto == TT_SNIFF_TLS)
        refuse_tls(ss, out);
      else
        refuse_h2(ss);
      ss->out = NULL;
      ss->closing = true;
      return ss->oom ? ss->oom : 1;
    }
  }
  return execute(ss, data, len, out);
}

int tt__http_session_eof(tt_http_session_t *ss, tt_buf_t *out) {
  int rc = execute(ss, NULL, 0, out);
  return rc < 0 ? rc : 1;
}

/* ---- uv layer: everything from here runs on the server thread ------------------------------ */

typedef struct conn_s conn_t;

struct tt_http_server_s {
  tt_http_server_opts_t o; /* copy; o.host and o.name point into the arrays below */
  char host[64];
  char name[32];
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t stop_async;
  uv_timer_t stop_timer;
  uv_thread_t thread;
  int port;
  conn_t *conns; /* doubly linked list of open connections, newest first */
  uint32_t nconns;
  tt_peer_table_t *peers; /* open connections per client address */
  bool stopping;
  bool warned_full;           /* the first connection refused or evicted at a cap was logged */
  _Atomic size_t budget_used; /* bytes of request bodies being received, all connections */
  _Atomic uint64_t open, refused_limit, refused_per_ip, evicted, timeout_header, timeout_body,
      timeout_idle, budget_refused;
  char readbuf[65536]; /* one buffer serves all reads: read_cb consumes it synchronously */
};

/* Where a connection is, which decides its deadline:
 *   IDLE     between requests (or writing an answer): idle_timeout after it became idle;
 *   HEADERS  from the request's first byte: header_timeout, never extended, so a client that
 *            trickles a byte at a time gets one period for the whole header block;
 *   BODY     header_timeout from the end of the headers, plus one second per min_body_rate
 *            bytes received: a body must keep coming at that average rate, however it is cut. */
typedef enum { PHASE_IDLE, PHASE_HEADERS, PHASE_BODY } phase_t;

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  tt_http_server_t *srv;
  tt_http_session_t *ss;
  conn_t *prev, *next;
  tt_peer_addr_t peer;
  bool counted_peer; /* `peer` is in srv->peers */
  int open_handles;
  unsigned pending_writes;
  bool close_after_write;
  bool closing;
  bool paused;
  phase_t phase;
  uint64_t phase_start; /* uv_now when the phase began */
};

typedef struct {
  uv_write_t req;
  conn_t *c;
  tt_buf_t data;
} write_req_t;

static void on_handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0)
    return;
  free(c); /* conn_release freed the session already */
}

/* Lets go of what a connection holds: its address's count, its session (and with it its share of
 * the receive budget: that goes now, not when the handles finish closing, for the next request
 * that arrives) and its two handles. */
static void conn_release(conn_t *c) {
  if (c->counted_peer)
    tt__peer_table_remove(c->srv->peers, &c->peer);
  c->counted_peer = false;
  tt__http_session_free(c->ss);
  c->ss = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void conn_close(conn_t *c) {
  if (c->closing)
    return;
  c->closing = true;
  tt_http_server_t *srv = c->srv;
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
  atomic_store_explicit(&srv->open, srv->nconns, memory_order_relaxed);
  conn_release(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  buf->base = c->srv->readbuf;
  buf->len = sizeof c->srv->readbuf;
}

static uint64_t deadline(const conn_t *c) {
  const tt_http_server_opts_t *o = &c->srv->o;
  switch (c->phase) {
    case PHASE_HEADERS:
      return c->phase_start + o->header_timeout_ms;
    case PHASE_BODY:
      return c->phase_start + o->header_timeout_ms +
             (uint64_t)c->ss->body.len * 1000 / o->min_body_rate;
    case PHASE_IDLE:
    default:
      return c->phase_start + o->idle_timeout_ms;
  }
}

static void on_deadline(uv_timer_t *t);

/* Follows the session into its current phase and arms the timer for that phase's deadline. */
static void conn_track(conn_t *c) {
  if (c->closing || c->ss == NULL)
    return;
  phase_t ph = c->ss->in_headers ? PHASE_HEADERS : c->ss->in_body ? PHASE_BODY : PHASE_IDLE;
  uint64_t now = uv_now(&c->srv->loop);
  if (ph != c->phase) {
    c->phase = ph;
    c->phase_start = now;
  }
  uint64_t d = deadline(c);
  uv_timer_start(&c->timer, on_deadline, d > now ? d - now : 0, 0);
}

static void on_deadline(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->closing)
    return;
  if (deadline(c) > uv_now(&c->srv->loop)) { /* moved on since the timer was armed */
    conn_track(c);
    return;
  }
  tt_http_server_t *srv = c->srv;
  atomic_fetch_add_explicit(c->phase == PHASE_HEADERS ? &srv->timeout_header
                            : c->phase == PHASE_BODY  ? &srv->timeout_body
                                                      : &srv->timeout_idle,
                            1, memory_order_relaxed);
  conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *w, int status) {
  write_req_t *wr = (write_req_t *)w;
  conn_t *c = wr->c;
  tt__buf_free(&wr->data);
  free(wr);
  c->pending_writes--;
  if (c->closing)
    return;
  if (status < 0 || (c->close_after_write && c->pending_writes == 0)) {
    conn_close(c);
    return;
  }
  if (c->paused && c->tcp.write_queue_size < WRITE_HIGH_WATER / 2) {
    c->paused = false;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

/* Sends `out` (ownership moves to the write request) and applies the session's verdict. */
static void conn_send(conn_t *c, tt_buf_t *out, int verdict) {
  if (out->len > 0) {
    write_req_t *wr = calloc(1, sizeof *wr);
    if (wr == NULL) {
      tt__buf_free(out);
      conn_close(c);
      return;
    }
    wr->c = c;
    wr->data = *out;
    *out = (tt_buf_t)TT_BUF_INIT;
    uv_buf_t b = uv_buf_init((char *)wr->data.data, (unsigned)wr->data.len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
      tt__buf_free(&wr->data);
      free(wr);
      conn_close(c);
      return;
    }
    c->pending_writes++;
  }
  if (verdict != 0) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (verdict < 0 || c->pending_writes == 0)
      conn_close(c);
    else
      c->close_after_write = true;
    return;
  }
  if (c->tcp.write_queue_size > WRITE_HIGH_WATER) {
    c->paused = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread == 0 || c->closing || c->close_after_write)
    return;
  tt_buf_t out = TT_BUF_INIT;
  int verdict;
  if (nread < 0)
    verdict = tt__http_session_eof(c->ss, &out);
  else
    verdict = tt__http_session_feed(c->ss, (const uint8_t *)buf->base, (size_t)nread, &out);
  if (c->ss->budget_refused) {
    c->ss->budget_refused = false;
    atomic_fetch_add_explicit(&c->srv->budget_refused, 1, memory_order_relaxed);
  }
  conn_send(c, &out, verdict);
  tt__buf_free(&out);
  conn_track(c);
}

/* At the connection cap, the connection that costs the others most and does least makes room:
 * the longest idle between requests, else the one longest in its headers. Connections receiving
 * a body or writing an answer are never chosen; they are bounded by their own deadlines. */
static conn_t *pick_victim(tt_http_server_t *srv) {
  conn_t *best = NULL;
  for (conn_t *c = srv->conns; c != NULL; c = c->next) {
    if (c->closing || c->pending_writes > 0 || c->phase == PHASE_BODY)
      continue;
    if (best == NULL || (c->phase == PHASE_IDLE && best->phase != PHASE_IDLE) ||
        (c->phase == best->phase && c->phase_start <= best->phase_start))
      best = c;
  }
  return best;
}

/* A cap that starts to bite is worth one line, not one per connection: the counters on /metrics
 * (tailtrace_receiver_connections_closed_total) carry the rest. */
static void warn_full_once(tt_http_server_t *srv, const char *cause) {
  if (srv->warned_full)
    return;
  srv->warned_full = true;
  TT_LOG(TT_LOG_WARN, "connection cap reached; further refusals are only counted",
         "\"server\":\"%s\",\"cause\":\"%s\",\"max_connections\":%u,"
         "\"max_connections_per_ip\":%u",
         srv->name, cause, srv->o.max_connections, srv->o.max_connections_per_ip);
}

static void on_connection(uv_stream_t *l, int status) {
  tt_http_server_t *srv = l->data;
  if (status < 0 || srv->stopping)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  c->srv = srv;
  uv_tcp_init(&srv->loop, &c->tcp);
  uv_timer_init(&srv->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->open_handles = 2;
  c->closing = true; /* not in the list yet: closing it must not unlink it */
  c->ss = tt__http_session_new(&srv->o);
  /* Refused clients are accepted and closed at once: refusing to accept would leave them in the
   * kernel backlog and the listener readable, spinning the loop. */
  if (c->ss == NULL || uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
    conn_release(c);
    return;
  }
  struct sockaddr_storage sa;
  int salen = sizeof sa;
  bool refuse = false;
  char addr[64] = "";
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
    tt__peer_sockaddr_format((struct sockaddr *)&sa, addr, sizeof addr);
    tt__http_session_set_peer_addr(c->ss, addr);
  }
  if (addr[0] != '\0' && tt__peer_addr_from_sockaddr((struct sockaddr *)&sa, &c->peer) == 0) {
    uint32_t n = tt__peer_table_count(srv->peers, &c->peer);
    if (srv->o.max_connections_per_ip && n >= srv->o.max_connections_per_ip) {
      atomic_fetch_add_explicit(&srv->refused_per_ip, 1, memory_order_relaxed);
      warn_full_once(srv, "per_ip");
      refuse = true;
    } else if (tt__peer_table_add(srv->peers, &c->peer) != 0) {
      c->counted_peer = true;
    }
  }
  if (!refuse && srv->nconns >= srv->o.max_connections) {
    conn_t *victim = pick_victim(srv);
    if (victim != NULL) {
      atomic_fetch_add_explicit(&srv->evicted, 1, memory_order_relaxed);
      warn_full_once(srv, "evicted");
      conn_close(victim);
    } else {
      atomic_fetch_add_explicit(&srv->refused_limit, 1, memory_order_relaxed);
      warn_full_once(srv, "limit");
      refuse = true;
    }
  }
  if (refuse) {
    conn_release(c);
    return;
  }
  c->closing = false;
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  atomic_store_explicit(&srv->open, srv->nconns, memory_order_relaxed);
  tt__http_session_set_budget(c->ss, &srv->budget_used, srv->o.receive_budget_bytes);
  if (c->counted_peer)
    tt__http_session_set_peer(c->ss, tt__peer_addr_hash(&c->peer));
  uv_tcp_nodelay(&c->tcp, 1);
  /* A new connection's first request must start within the header timeout too: a client that
   * connects and says nothing is as idle as one trickling. */
  c->phase = PHASE_HEADERS;
  c->phase_start = uv_now(&srv->loop);
  uv_timer_start(&c->timer, on_deadline, srv->o.header_timeout_ms, 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_stop_timer(uv_timer_t *t) {
  tt_http_server_t *srv = t->data;
  while (srv->conns)
    conn_close(srv->conns);
  uv_close((uv_handle_t *)&srv->stop_timer, NULL);
}

static void on_stop(uv_async_t *a) {
  tt_http_server_t *srv = a->data;
  srv->stopping = true;
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_close((uv_handle_t *)&srv->stop_async, NULL);
  /* Connections idle between requests close now; ones with a response still being written close
   * after it (or when the grace timer fires). Requests half received are abandoned. */
  for (conn_t *c = srv->conns, *next; c != NULL; c = next) {
    next = c->next;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->pending_writes == 0)
      conn_close(c);
    else
      c->close_after_write = true;
  }
  uv_timer_start(&srv->stop_timer, on_stop_timer, STOP_GRACE_MS, 0);
  uv_unref((uv_handle_t *)&srv->stop_timer);
}

static void server_thread(void *arg) {
  tt_http_server_t *srv = arg;
#ifdef __linux__
  char tname[16];
  snprintf(tname, sizeof tname, "tt-%.12s", srv->name);
  pthread_setname_np(pthread_self(), tname);
#endif
  uv_run(&srv->loop, UV_RUN_DEFAULT);
  /* The grace timer is unref'd so the loop ends as soon as the last connection closes; close it
   * if it never fired, then let the close callbacks run. */
  if (!uv_is_closing((uv_handle_t *)&srv->stop_timer))
    uv_close((uv_handle_t *)&srv->stop_timer, NULL);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
}

int tt__http_server_start(const tt_http_server_opts_t *opts, tt_http_server_t **out) {
  *out = NULL;
  if (opts == NULL || opts->route == NULL || opts->port < 0 || opts->port > 65535)
    return -EINVAL;
  tt_http_server_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return -ENOMEM;
  srv->o = *opts;
  snprintf(srv->host, sizeof srv->host, "%s", opts->host ? opts->host : "127.0.0.1");
  snprintf(srv->name, sizeof srv->name, "%s", opts->name ? opts->name : "http");
  srv->o.host = srv->host;
  srv->o.name = srv->name;
  if (!srv->o.max_body_bytes)
    srv->o.max_body_bytes = DEFAULT_MAX_BODY;
  if (!srv->o.max_header_bytes)
    srv->o.max_header_bytes = DEFAULT_MAX_HEADER;
  if (!srv->o.idle_timeout_ms)
    srv->o.idle_timeout_ms = DEFAULT_IDLE_MS;
  if (!srv->o.max_connections)
    srv->o.max_connections = DEFAULT_MAX_CONNS;
  if (!srv->o.header_timeout_ms)
    srv->o.header_timeout_ms = DEFAULT_HEADER_MS;
  if (!srv->o.min_body_rate)
    srv->o.min_body_rate = DEFAULT_MIN_BODY_RATE;
  if (!srv->o.receive_budget_bytes)
    srv->o.receive_budget_bytes = DEFAULT_RECEIVE_BUDGET;
  srv->peers = tt__peer_table_new(srv->o.max_connections);
  if (srv->peers == NULL) {
    free(srv);
    return -ENOMEM;
  }

  int rc = uv_loop_init(&srv->loop);
  if (rc != 0) {
    tt__peer_table_free(srv->peers);
    free(srv);
    return rc;
  }
  struct sockaddr_storage addr;
  if (uv_ip4_addr(srv->host, opts->port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(srv->host, opts->port, (struct sockaddr_in6 *)&addr) != 0) {
    rc = -EINVAL;
    goto fail_loop;
  }
  uv_tcp_init(&srv->loop, &srv->listener);
  srv->listener.data = srv;
  rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
  if (rc != 0)
    goto fail_listener;
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
  srv->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  uv_async_init(&srv->loop, &srv->stop_async, on_stop);
  srv->stop_async.data = srv;
  uv_timer_init(&srv->loop, &srv->stop_timer);
  srv->stop_timer.data = srv;
  uv_unref((uv_handle_t *)&srv->stop_timer);
  /* Published before the thread starts: a route may use the handle (the admin port reads its
   * own server's figures) as soon as the first request arrives. */
  *out = srv;
  rc = uv_thread_create(&srv->thread, server_thread, srv);
  if (rc != 0) {
    *out = NULL;
    uv_close((uv_handle_t *)&srv->stop_async, NULL);
    uv_close((uv_handle_t *)&srv->stop_timer, NULL);
    goto fail_listener;
  }
  return 0;

fail_listener:
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
fail_loop:
  uv_loop_close(&srv->loop);
  tt__peer_table_free(srv->peers);
  free(srv);
  return rc;
}

int tt__http_server_port(const tt_http_server_t *s) {
  return s ? s->port : -1;
}

void tt__http_server_stop(tt_http_server_t *s) {
  if (s == NULL)
    return;
  uv_async_send(&s->stop_async);
  uv_thread_join(&s->thread);
  uv_loop_close(&s->loop);
  tt__peer_table_free(s->peers);
  free(s);
}

void tt__http_server_stats(const tt_http_server_t *s, tt_http_server_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (s == NULL)
    return;
  out->connections = atomic_load_explicit(&s->open, memory_order_relaxed);
  out->refused_limit = atomic_load_explicit(&s->refused_limit, memory_order_relaxed);
  out->refused_per_ip = atomic_load_explicit(&s->refused_per_ip, memory_order_relaxed);
  out->evicted = atomic_load_explicit(&s->evicted, memory_order_relaxed);
  out->timeout_header = atomic_load_explicit(&s->timeout_header, memory_order_relaxed);
  out->timeout_body = atomic_load_explicit(&s->timeout_body, memory_order_relaxed);
  out->timeout_idle = atomic_load_explicit(&s->timeout_idle, memory_order_relaxed);
  out->budget_refused = atomic_load_explicit(&s->budget_refused, memory_order_relaxed);
  out->receiving_bytes = atomic_load_explicit(&s->budget_used, memory_order_relaxed);
}
