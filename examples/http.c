/* The example services' HTTP plumbing (see http.h). Deliberately small: no keep-alive, no
 * chunked request bodies, bounded header sizes; enough to carry real requests between real
 * processes, which is what the examples need to show propagation. */
#include "http.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ex_parse_addr(const char *addr, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
    return UV_EINVAL;
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535)
    return UV_EINVAL;
  return uv_ip4_addr(host, (int)port, out);
}

int ex_query_param(const char *target, const char *key, char *out, size_t cap) {
  const char *q = strchr(target, '?');
  size_t kl = strlen(key);
  while (q != NULL) {
    q++;
    const char *end = strchr(q, '&');
    size_t len = end ? (size_t)(end - q) : strlen(q);
    if (len > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
      size_t vl = len - kl - 1;
      if (vl >= cap)
        return -1;
      memcpy(out, q + kl + 1, vl);
      out[vl] = '\0';
      return 0;
    }
    q = end;
  }
  return -1;
}

/* ---- server ---- */

typedef struct server_s {
  uv_tcp_t tcp;
  ex_handler_fn handler;
  void *arg;
} server_t;

typedef struct conn_s {
  uv_tcp_t tcp;
  http_parser parser;
  server_t *server;
  ex_request_t req;
  /* A header's name and value may arrive in pieces across reads; they are gathered here and
   * handed to the carrier whole. */
  char name[256], value[8192];
  size_t name_len, value_len;
  int in_value, overflow, complete;
  uv_write_t write;
  char *out;
} conn_t;

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  free(c->out);
  free(c);
}

static void conn_close(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static int append(char *dst, size_t cap, size_t *len, const char *p, size_t n) {
  if (cap - *len <= n)
    return -1;
  memcpy(dst + *len, p, n);
  *len += n;
  dst[*len] = '\0';
  return 0;
}

static void flush_header(conn_t *c) {
  if (c->in_value &&
      tt_headers_append(&c->req.headers, c->name, c->name_len, c->value, c->value_len) != 0)
    c->overflow = 1;
  c->name_len = c->value_len = 0;
  c->in_value = 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  conn_t *c = p->data;
  size_t len = strlen(c->req.target);
  return append(c->req.target, sizeof c->req.target, &len, at, n) ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  conn_t *c = p->data;
  if (c->in_value)
    flush_header(c);
  if (append(c->name, sizeof c->name, &c->name_len, at, n))
    c->overflow = 1;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  conn_t *c = p->data;
  c->in_value = 1;
  if (append(c->value, sizeof c->value, &c->value_len, at, n))
    c->overflow = 1;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  conn_t *c = p->data;
  flush_header(c);
  snprintf(c->req.method, sizeof c->req.method, "%s", http_method_str(p->method));
  return 0;
}

static int on_message_complete(http_parser *p) {
  conn_t *c = p->data;
  c->complete = 1;
  return 0;
}

static const http_parser_settings request_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h;
  (void)hint;
  static char slab[65536]; /* one loop, one read at a time */
  *buf = uv_buf_init(slab, sizeof slab);
}

static void server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  size_t done = http_parser_execute(&c->parser, &request_settings, buf->base, (size_t)n);
  if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || done != (size_t)n) {
    ex_respond(&c->req, 400, NULL, "malformed request\n");
    uv_read_stop(s);
    return;
  }
  if (c->complete) {
    uv_read_stop(s);
    if (c->overflow)
      ex_respond(&c->req, 431, NULL, "request headers too large\n");
    else
      c->server->handler(&c->req);
  }
}

static void server_accept(uv_stream_t *listener, int status) {
  server_t *srv = listener->data;
  if (status < 0)
    return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  c->server = srv;
  c->req.arg = srv->arg;
  tt_headers_init(&c->req.headers, c->req.header_items, EX_MAX_HEADERS, c->req.header_store,
                  sizeof c->req.header_store);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_tcp_init(listener->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, server_read) != 0)
    conn_close(c);
}

int ex_serve(uv_loop_t *loop, const char *addr, ex_handler_fn handler, void *arg) {
  struct sockaddr_in sa;
  int rc = ex_parse_addr(addr, &sa);
  if (rc != 0)
    return rc;
  server_t *srv = calloc(1, sizeof *srv);
  if (srv == NULL)
    return UV_ENOMEM;
  srv->handler = handler;
  srv->arg = arg;
  uv_tcp_init(loop, &srv->tcp);
  srv->tcp.data = srv;
  if ((rc = uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&sa, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&srv->tcp, 128, server_accept)) != 0) {
    uv_close((uv_handle_t *)&srv->tcp, NULL);
    return rc;
  }
  return 0;
}

static void response_written(uv_write_t *w, int status) {
  (void)status;
  conn_close(w->data);
}

static const char *reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    default:
      return status >= 500 ? "Internal Server Error" : "Unknown";
  }
}

void ex_respond(ex_request_t *req, int status, const tt_headers_t *headers, const char *body) {
  conn_t *c = (conn_t *)((char *)req - offsetof(conn_t, req));
  char extra[4096] = "";
  if (headers != NULL && tt_headers_format(headers, extra, sizeof extra) < 0)
    extra[0] = '\0';
  size_t cap = strlen(extra) + strlen(body) + 256;
  c->out = malloc(cap);
  if (c->out == NULL) {
    conn_close(c);
    return;
  }
  int n = snprintf(c->out, cap,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s\r\n%s",
                   status, reason(status), strlen(body), extra, body);
  uv_buf_t buf = uv_buf_init(c->out, (unsigned)n);
  c->write.data = c;
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, response_written) != 0)
    conn_close(c);
}

/* ---- client ---- */

typedef struct client_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_timer_t timer;
  http_parser parser;
  ex_response_fn cb;
  void *arg;
  int status, called, open_handles;
  char *out;
} client_t;

static void client_handle_closed(uv_handle_t *h) {
  client_t *cl = h->data;
  if (--cl->open_handles == 0) {
    free(cl->out);
    free(cl);
  }
}

/* Reports the outcome once, then closes both handles; the client is freed after the second. */
static void client_finish(client_t *cl, int status) {
  if (cl->called)
    return;
  cl->called = 1;
  cl->cb(status, cl->arg);
  uv_close((uv_handle_t *)&cl->tcp, client_handle_closed);
  uv_close((uv_handle_t *)&cl->timer, client_handle_closed);
}

static int on_response_complete(http_parser *p) {
  client_t *cl = p->data;
  client_finish(cl, (int)p->status_code);
  return 0;
}

static const http_parser_settings response_settings = {
    .on_message_complete = on_response_complete,
};

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  client_t *cl = s->data;
  if (cl->called)
    return;
  if (n == UV_EOF) {
    /* A response without a length ends with the connection; tell the parser. */
    http_parser_execute(&cl->parser, &response_settings, NULL, 0);
    client_finish(cl, UV_ECONNRESET);
    return;
  }
  if (n < 0) {
    client_finish(cl, (int)n);
    return;
  }
  http_parser_execute(&cl->parser, &response_settings, buf->base, (size_t)n);
  if (HTTP_PARSER_ERRNO(&cl->parser) != HPE_OK)
    client_finish(cl, UV_EPROTO);
}

static void client_written(uv_write_t *w, int status) {
  client_t *cl = w->data;
  if (status < 0)
    client_finish(cl, status);
  else if (!cl->called)
    uv_read_start((uv_stream_t *)&cl->tcp, alloc_cb, client_read);
}

static void client_connected(uv_connect_t *req, int status) {
  client_t *cl = req->data;
  if (cl->called)
    return;
  if (status < 0) {
    client_finish(cl, status);
    return;
  }
  uv_buf_t buf = uv_buf_init(cl->out, (unsigned)strlen(cl->out));
  cl->write.data = cl;
  if (uv_write(&cl->write, (uv_stream_t *)&cl->tcp, &buf, 1, client_written) != 0)
    client_finish(cl, UV_EIO);
}

static void client_timeout(uv_timer_t *t) {
  client_finish(t->data, UV_ETIMEDOUT);
}

int ex_get(uv_loop_t *loop, const char *addr, const char *target, const tt_headers_t *headers,
           unsigned timeout_ms, ex_response_fn cb, void *arg) {
  struct sockaddr_in sa;
  int rc = ex_parse_addr(addr, &sa);
  if (rc != 0)
    return rc;
  char extra[4096] = "";
  if (headers != NULL && tt_headers_format(headers, extra, sizeof extra) < 0)
    return UV_E2BIG;
  client_t *cl = calloc(1, sizeof *cl);
  size_t cap = strlen(target) + strlen(addr) + strlen(extra) + 128;
  if (cl == NULL || (cl->out = malloc(cap)) == NULL) {
    free(cl);
    return UV_ENOMEM;
  }
  snprintf(cl->out, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n", target, addr,
           extra);
  cl->cb = cb;
  cl->arg = arg;
  http_parser_init(&cl->parser, HTTP_RESPONSE);
  cl->parser.data = cl;
  uv_tcp_init(loop, &cl->tcp);
  uv_timer_init(loop, &cl->timer);
  cl->tcp.data = cl->timer.data = cl->connect.data = cl;
  cl->open_handles = 2;
  uv_timer_start(&cl->timer, client_timeout, timeout_ms, 0);
  rc = uv_tcp_connect(&cl->connect, &cl->tcp, (const struct sockaddr *)&sa, client_connected);
  if (rc != 0) {
    /* The callback is not called for a request that never started. */
    cl->called = 1;
    uv_close((uv_handle_t *)&cl->tcp, client_handle_closed);
    uv_close((uv_handle_t *)&cl->timer, client_handle_closed);
  }
  return rc;
}
