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

#define DEFAULT_MAX_BODY (20u * 1024 * 1024)
#define DEFAULT_MAX_HEADER (16u * 1024)
#define DEFAULT_IDLE_MS 30000u
#define DEFAULT_MAX_CONNS 1024u
/* A client that pipelines requests without reading answers is paused above this much unsent
 * output, so its responses cannot pile up in memory. */
#define WRITE_HIGH_WATER (4u * 1024 * 1024)
/* How long stop() lets pending responses drain before closing connections regardless. */
#define STOP_GRACE_MS 2000

/* ---- session: one connection's protocol state, no socket ----------------------------------- */

enum { ENC_IDENTITY, ENC_GZIP, ENC_DEFLATE };

struct tt_http_session_s {
  http_parser parser;
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
  tt_buf_t body;   /* wire body */
  tt_buf_t inflated;

  tt_buf_t *out; /* where responses go during a feed() */
  bool closing;  /* a response decided the connection ends; ignore further input */
  bool answered; /* the current error was already answered (parser stopped on purpose) */
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
    default:
      return "Unknown";
  }
}

/* `head`: the answer to a HEAD request carries the headers (Content-Length included) but never
 * a body, or a keep-alive client would read the body as the next response. */
static void write_response(tt_http_session_t *ss, tt_http_response_t *res, bool close, bool head) {
  int status = res->status ? res->status : 500;
  tt_buf_t *o = ss->out;
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
  if (rc != 0)
    ss->oom = rc;
}

/* Answers an error found by the server itself (not a route) and ends the connection: the rest of
 * the request is never read, which is the point for 413 and 431. */
static void fail(tt_http_session_t *ss, int status, const char *msg) {
  tt_http_response_t res = {.status = status, .content_type = "text/plain; charset=utf-8"};
  if (tt__buf_appendf(&res.body, "%s\n", msg) != 0)
    ss->oom = -ENOMEM;
  write_response(ss, &res, true, false);
  tt__buf_free(&res.body);
  ss->closing = true;
  ss->answered = true;
}

static int on_message_begin(http_parser *p) {
  tt_http_session_t *ss = p->data;
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
  return 0;
}

static int count_header(tt_http_session_t *ss, size_t n) {
  ss->header_bytes += n;
  if (ss->header_bytes > ss->max_header) {
    fail(ss, 431, "request headers too large");
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

static int on_headers_complete(http_parser *p) {
  tt_http_session_t *ss = p->data;
  finish_header(ss);
  ss->in_headers = false;
  if (p->upgrade) {
    fail(ss, 400, "protocol upgrade is not supported");
    return -1;
  }
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > ss->max_body) {
    fail(ss, 413, "request body too large");
    return -1;
  }
  if (ss->bad_encoding) {
    fail(ss, 415, "unsupported Content-Encoding (use gzip, deflate or identity)");
    return -1;
  }
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
    fail(ss, 413, "request body too large");
    return -1;
  }
  return tt__buf_append(&ss->body, at, n) == 0 ? 0 : (ss->oom = -ENOMEM, -1);
}

static int on_message_complete(http_parser *p) {
  tt_http_session_t *ss = p->data;
  const uint8_t *body = ss->body.data;
  size_t body_len = ss->body.len;
  if (ss->encoding != ENC_IDENTITY && body_len > 0) {
    int rc = tt__inflate_bounded(ss->body.data, ss->body.len,
                                 ss->encoding == ENC_GZIP ? TT_INFLATE_GZIP : TT_INFLATE_AUTO,
                                 ss->max_body, &ss->inflated);
    if (rc == -EFBIG) {
      fail(ss, 413, "request body too large once decompressed");
      return -1;
    }
    if (rc == -ENOMEM) {
      ss->oom = -ENOMEM;
      fail(ss, 500, "out of memory");
      return -1;
    }
    if (rc != 0) {
      fail(ss, 400, "body is not valid compressed data");
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
  http_parser_init(&ss->parser, HTTP_REQUEST);
  ss->parser.data = ss;
  return ss;
}

void tt__http_session_free(tt_http_session_t *ss) {
  if (ss == NULL)
    return;
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
    if (len > 0 && !ss->oom)
      fail(ss, err == HPE_HEADER_OVERFLOW ? 431 : 400, http_errno_description(err));
    ss->closing = true;
    rc = 1;
  }
  ss->out = NULL;
  return ss->oom ? ss->oom : rc;
}

int tt__http_session_feed(tt_http_session_t *ss, const uint8_t *data, size_t len, tt_buf_t *out) {
  if (len == 0)
    return ss->closing ? 1 : 0;
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
  conn_t *conns; /* doubly linked list of open connections */
  uint32_t nconns;
  bool stopping;
  char readbuf[65536]; /* one buffer serves all reads: read_cb consumes it synchronously */
};

struct conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  tt_http_server_t *srv;
  tt_http_session_t *ss;
  conn_t *prev, *next;
  int open_handles;
  unsigned pending_writes;
  bool close_after_write;
  bool closing;
  bool paused;
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
  tt__http_session_free(c->ss);
  free(c);
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
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  buf->base = c->srv->readbuf;
  buf->len = sizeof c->srv->readbuf;
}

static void on_idle(uv_timer_t *t) {
  conn_t *c = t->data;
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
  if (nread < 0) {
    verdict = tt__http_session_eof(c->ss, &out);
  } else {
    /* Reads restart the idle timer, except while headers arrive: a client trickling header
     * bytes gets one idle period for the whole header block, not one per byte. */
    if (!c->ss->in_headers)
      uv_timer_again(&c->timer);
    verdict = tt__http_session_feed(c->ss, (const uint8_t *)buf->base, (size_t)nread, &out);
  }
  conn_send(c, &out, verdict);
  tt__buf_free(&out);
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
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  c->ss = tt__http_session_new(&srv->o);
  /* Over the connection cap the client is accepted and closed at once: refusing to accept would
   * leave it in the kernel backlog and the listener readable, spinning the loop. */
  if (c->ss == NULL || uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
      srv->nconns > srv->o.max_connections) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  uint32_t idle = srv->o.idle_timeout_ms;
  uv_timer_start(&c->timer, on_idle, idle, idle);
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

  int rc = uv_loop_init(&srv->loop);
  if (rc != 0) {
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
  rc = uv_thread_create(&srv->thread, server_thread, srv);
  if (rc != 0) {
    uv_close((uv_handle_t *)&srv->stop_async, NULL);
    uv_close((uv_handle_t *)&srv->stop_timer, NULL);
    goto fail_listener;
  }
  *out = srv;
  return 0;

fail_listener:
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
fail_loop:
  uv_loop_close(&srv->loop);
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
  free(s);
}
