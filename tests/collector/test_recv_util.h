/* Helpers shared by the receiver tests: a recording export handler, a tiny blocking HTTP/1.1
 * client over a real socket, and a sample ExportTraceServiceRequest. Header-only (static
 * functions) so each test executable stays one file plus this. */
#ifndef TT_TEST_RECV_UTIL_H
#define TT_TEST_RECV_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "buf.h"
#include "pipeline.h"
#include "request.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* ---- recording handler ----
 * The receivers hand the handler unchecked bytes and the handler refuses malformed ones
 * (request.h), so the recorder puts each request through a real pipeline's handler first: what
 * that refuses as malformed is answered as such and not recorded; the rest is recorded and
 * answered with `answer`. */

typedef struct {
  pthread_mutex_t mu;
  int calls;
  tt_buf_t last; /* the last request's bytes */
  char transport[32];
  uint64_t peer;             /* the last request's sender identity */
  tt_export_result_t answer; /* what the handler answers */
  pthread_cond_t entered_cv; /* signalled when the handler starts */
  int entered;
  int delay_ms;            /* the handler sleeps this long (outside the lock) before answering */
  tt_pipeline_t *pipeline; /* checks each request as the collector does */
} recorder_t;

static inline void recorder_init(recorder_t *r) {
  memset(r, 0, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->entered_cv, NULL);
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = 1;
  if (tt__pipeline_new(&o, &r->pipeline) != 0)
    abort();
}

static inline void recorder_free(recorder_t *r) {
  tt__pipeline_free(r->pipeline);
  tt__buf_free(&r->last);
  pthread_cond_destroy(&r->entered_cv);
  pthread_mutex_destroy(&r->mu);
}

/* Waits until the handler has been entered at least once. */
static inline void recorder_wait_entered(recorder_t *r) {
  pthread_mutex_lock(&r->mu);
  while (!r->entered)
    pthread_cond_wait(&r->entered_cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

static inline void recorder_handler(void *ctx, const tt_export_request_t *req,
                                    tt_export_result_t *res) {
  recorder_t *r = ctx;
  pthread_mutex_lock(&r->mu);
  r->entered = 1;
  pthread_cond_broadcast(&r->entered_cv);
  int delay = r->delay_ms;
  pthread_mutex_unlock(&r->mu);
  if (delay > 0)
    usleep((useconds_t)delay * 1000);
  tt__pipeline_handle(r->pipeline, req, res);
  if (res->status == TT_EXPORT_INVALID)
    return;
  pthread_mutex_lock(&r->mu);
  r->calls++;
  tt__buf_reset(&r->last);
  tt__buf_append(&r->last, req->data, req->len);
  snprintf(r->transport, sizeof r->transport, "%s", req->transport);
  r->peer = req->peer;
  *res = r->answer;
  pthread_mutex_unlock(&r->mu);
}

static inline int recorder_calls(recorder_t *r) {
  pthread_mutex_lock(&r->mu);
  int n = r->calls;
  pthread_mutex_unlock(&r->mu);
  return n;
}

/* ---- sample request ---- */

/* Packs a request with one resource, one scope and one span named `name`. Caller frees. */
static inline uint8_t *sample_request(const char *name, size_t *len) {
  static uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  Opentelemetry__Proto__Common__V1__AnyValue sv = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  sv.string_value = (char *)"svc";
  Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  kv.key = (char *)"service.name";
  kv.value = &sv;
  Opentelemetry__Proto__Common__V1__KeyValue *kvs[] = {&kv};
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = 1;
  res.attributes = kvs;
  Opentelemetry__Proto__Trace__V1__Span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  span.trace_id = (ProtobufCBinaryData){16, tid};
  span.span_id = (ProtobufCBinaryData){8, sid};
  span.name = (char *)name;
  span.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
  span.start_time_unix_nano = 1000;
  span.end_time_unix_nano = 2000;
  Opentelemetry__Proto__Trace__V1__Span *spans[] = {&span};
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.n_spans = 1;
  ss.spans = spans;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = sss;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.n_resource_spans = 1;
  req.resource_spans = rss;
  size_t n =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
          &req);
  uint8_t *out = malloc(n ? n : 1);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
  *len = n;
  return out;
}

/* Varints that break the one rule (at most ten bytes, a tenth byte of 0x00 or 0x01), for the
 * tests of every entry point: eleven bytes, and a tenth byte of 0x02 and of 0x7f (bits past 64
 * that a lenient reader drops silently). */
typedef struct {
  const char *what;
  uint8_t bytes[11];
  size_t len;
} bad_varint_t;

static const bad_varint_t bad_varints[] = {
    {"eleven bytes", {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 11},
    {"tenth byte 0x02", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10},
    {"tenth byte 0x7f", {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10},
};
#define N_BAD_VARINTS (sizeof bad_varints / sizeof bad_varints[0])

/* -1 as an int64: ten bytes, the tenth 0x01. */
static const uint8_t minus_one_varint[10] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0x01};

/* Frames by hand (protobuf-c cannot write a malformed varint) a request with one span whose
 * attribute "n" is an int_value given as raw varint bytes, so the varint sits five messages
 * deep where only a full scan finds it. Caller frees. */
static inline uint8_t *request_with_raw_int_attr(const uint8_t *varint, size_t vlen, size_t *len) {
  static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t sid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  tt_buf_t any = TT_BUF_INIT, kv = TT_BUF_INIT, span = TT_BUF_INIT, ss = TT_BUF_INIT,
           rs = TT_BUF_INIT, req = TT_BUF_INIT;
  tt__buf_append_tag(&any, 3, 0); /* AnyValue.int_value */
  tt__buf_append(&any, varint, vlen);
  tt__buf_append_lenfield(&kv, 1, "n", 1);
  tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  tt__buf_append_lenfield(&span, 1, tid, sizeof tid);
  tt__buf_append_lenfield(&span, 2, sid, sizeof sid);
  tt__buf_append_lenfield(&span, 5, "raw", 3);
  tt__buf_append_fixed(&span, 7, 1000, 8);
  tt__buf_append_fixed(&span, 8, 2000, 8);
  tt__buf_append_lenfield(&span, 9, kv.data, kv.len);
  tt__buf_append_lenfield(&ss, 2, span.data, span.len);
  tt__buf_append_lenfield(&rs, 2, ss.data, ss.len);
  tt__buf_append_lenfield(&req, 1, rs.data, rs.len);
  tt__buf_free(&any);
  tt__buf_free(&kv);
  tt__buf_free(&span);
  tt__buf_free(&ss);
  tt__buf_free(&rs);
  *len = req.len;
  return req.data;
}

/* Returns the first span's name in a packed request (static buffer), or NULL. */
static inline const char *first_span_name(const uint8_t *pb, size_t len) {
  static char name[128];
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       pb);
  if (req == NULL)
    return NULL;
  const char *res = NULL;
  if (req->n_resource_spans > 0 && req->resource_spans[0]->n_scope_spans > 0 &&
      req->resource_spans[0]->scope_spans[0]->n_spans > 0) {
    snprintf(name, sizeof name, "%s", req->resource_spans[0]->scope_spans[0]->spans[0]->name);
    res = name;
  }
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
  return res;
}

/* ---- tiny HTTP client ---- */

static inline int connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {10, 0}; /* a broken server fails the test instead of hanging it */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static inline int send_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n <= 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

typedef struct {
  int status;
  char headers[4096];
  tt_buf_t body;
  bool closed; /* the server closed the connection after the response */
} http_resp_t;

/* Finds a header value (case-insensitive name) in resp->headers; copies it to out. */
static inline bool resp_header(const http_resp_t *r, const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  const char *p = r->headers;
  while ((p = strstr(p, "\r\n")) != NULL) {
    p += 2;
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ')
        v++;
      const char *e = strstr(v, "\r\n");
      size_t vl = e ? (size_t)(e - v) : strlen(v);
      if (vl >= cap)
        vl = cap - 1;
      memcpy(out, v, vl);
      out[vl] = '\0';
      return true;
    }
  }
  return false;
}

/* Reads one response (status line, headers, Content-Length body); skips 100 Continue. Leftover
 * bytes are kept in `pending` for the next call on the same connection. Returns 0 or -1. */
static inline int read_response(int fd, tt_buf_t *pending, http_resp_t *r) {
  memset(r->headers, 0, sizeof r->headers);
  tt__buf_reset(&r->body);
  r->status = 0;
  r->closed = false;
  for (;;) {
    char *hend = NULL;
    if (pending->len > 0) {
      tt__buf_append(pending, "", 1);
      pending->len--;
      hend = strstr((char *)pending->data, "\r\n\r\n");
    }
    if (hend != NULL) {
      size_t hlen = (size_t)(hend - (char *)pending->data) + 4;
      if (hlen >= sizeof r->headers)
        return -1;
      memcpy(r->headers, pending->data, hlen);
      r->headers[hlen] = '\0';
      memmove(pending->data, pending->data + hlen, pending->len - hlen);
      pending->len -= hlen;
      if (sscanf(r->headers, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
      if (r->status == 100)
        continue;
      char cl[32];
      size_t want = resp_header(r, "Content-Length", cl, sizeof cl) ? strtoul(cl, NULL, 10) : 0;
      while (pending->len < want) {
        char tmp[65536];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0)
          return -1;
        tt__buf_append(pending, tmp, (size_t)n);
      }
      tt__buf_append(&r->body, pending->data, want);
      memmove(pending->data, pending->data + want, pending->len - want);
      pending->len -= want;
      char conn[32];
      if (resp_header(r, "Connection", conn, sizeof conn) && strcasecmp(conn, "close") == 0) {
        /* Confirm the server really closes: the next read must see EOF. */
        char tmp[16];
        r->closed = recv(fd, tmp, sizeof tmp, 0) == 0;
      }
      return 0;
    }
    char tmp[65536];
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0)
      return -1;
    tt__buf_append(pending, tmp, (size_t)n);
  }
}

/* One request on a fresh connection. `extra` holds additional header lines ("X: y\r\n"). */
static inline int http_post(int port, const char *path, const char *ctype, const char *extra,
                            const void *body, size_t len, http_resp_t *r) {
  int fd = connect_local(port);
  if (fd < 0)
    return -1;
  tt_buf_t req = TT_BUF_INIT, pending = TT_BUF_INIT;
  tt__buf_appendf(&req,
                  "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n%s\r\n",
                  path, ctype, len, extra ? extra : "");
  tt__buf_append(&req, body, len);
  int rc = send_all(fd, req.data, req.len);
  if (rc == 0)
    rc = read_response(fd, &pending, r);
  tt__buf_free(&req);
  tt__buf_free(&pending);
  close(fd);
  return rc;
}

/* Decodes google.rpc.Status by hand: code (1), message (2), and whether a RetryInfo detail with
 * the given delay in ms is present. Returns 0 or -1. */
static inline uint64_t util_varint(const uint8_t **p, const uint8_t *e) {
  uint64_t v = 0;
  for (int s = 0; *p < e && s < 64; s += 7) {
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80))
      break;
  }
  return v;
}

typedef struct {
  int code;
  char message[256];
  bool has_retry;
  uint64_t retry_ms;
} rpc_status_t;

static inline int parse_duration(const uint8_t *p, const uint8_t *e, uint64_t *ms) {
  uint64_t s = 0, ns = 0;
  while (p < e) {
    uint64_t k = util_varint(&p, e);
    if ((k & 7) != 0)
      return -1;
    uint64_t v = util_varint(&p, e);
    if (k >> 3 == 1)
      s = v;
    else if (k >> 3 == 2)
      ns = v;
  }
  *ms = s * 1000 + ns / 1000000;
  return 0;
}

static inline int parse_rpc_status(const uint8_t *p, size_t len, rpc_status_t *st) {
  memset(st, 0, sizeof *st);
  const uint8_t *e = p + len;
  while (p < e) {
    uint64_t k = util_varint(&p, e);
    if ((k & 7) == 0) {
      uint64_t v = util_varint(&p, e);
      if (k >> 3 == 1)
        st->code = (int)v;
      continue;
    }
    if ((k & 7) != 2)
      return -1;
    uint64_t n = util_varint(&p, e);
    if (n > (uint64_t)(e - p))
      return -1;
    if (k >> 3 == 2) {
      size_t m = n < sizeof st->message - 1 ? n : sizeof st->message - 1;
      memcpy(st->message, p, m);
    } else if (k >> 3 == 3) { /* Any */
      const uint8_t *a = p, *ae = p + n;
      char type[128] = "";
      const uint8_t *val = NULL;
      size_t vlen = 0;
      while (a < ae) {
        uint64_t ak = util_varint(&a, ae);
        uint64_t an = util_varint(&a, ae);
        if ((ak & 7) != 2 || an > (uint64_t)(ae - a))
          return -1;
        if (ak >> 3 == 1 && an < sizeof type)
          memcpy(type, a, an);
        else if (ak >> 3 == 2) {
          val = a;
          vlen = an;
        }
        a += an;
      }
      if (strcmp(type, "type.googleapis.com/google.rpc.RetryInfo") == 0 && val != NULL) {
        const uint8_t *ve = val + vlen;
        uint64_t rk = util_varint(&val, ve);
        uint64_t rn = util_varint(&val, ve);
        if (rk != ((1 << 3) | 2) || rn > (uint64_t)(ve - val))
          return -1;
        if (parse_duration(val, val + rn, &st->retry_ms) != 0)
          return -1;
        st->has_retry = true;
      }
    }
    p += n;
  }
  return 0;
}

#endif
