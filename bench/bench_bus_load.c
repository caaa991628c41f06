/* OTLP/HTTP protobuf load generator for bench/bench_bus.py: posts ExportTraceServiceRequests to
 * one collector over keep-alive loopback connections as fast as it can (or at a fixed rate), for
 * a bounded number of spans and a bounded time, and prints what it sent as JSON lines.
 *
 * Each request holds `traces` traces of `per` spans (a root and its children), shaped like
 * bench_collector's span (ids, name, kind, times, 8 string attributes, status; 377 bytes). The
 * request is built once per connection; before each send the trace ids are rewritten in place
 * (splitmix64 of <id_base, connection, counter>, so runs with distinct id bases never share a
 * trace) and the last span of a trace gets status ERROR when the trace is picked by
 * error_permille. A throttled answer (429/503) is counted and the same request sent again after
 * a short pause, so `spans` counts spans the collector accepted.
 *
 * Usage: bench_bus_load PORT [spans (2000000)] [seconds (20)] [conns (2)] [traces (10)]
 *                        [per (10)] [rate spans/s (0: unbounded)] [error_permille (0)]
 *                        [id_base (1)]
 * Figures: load_spans, load_requests, load_seconds, load_spans_per_s, load_throttled,
 * load_request_bytes, load_span_bytes, load_error_traces. Exit status 1 when a connection failed
 * or the collector answered anything but 200/429/503. */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "wire.h"

enum { MAX_CONNS = 64, MAX_IDS = 4096 };

typedef struct {
  int port;
  uint64_t spans_max;
  double seconds;
  unsigned conns, traces, per;
  double rate;
  unsigned error_permille;
  uint64_t id_base;
} opts_t;

/* Written by one connection thread each, read by main after the join. */
typedef struct {
  unsigned idx;
  const opts_t *o;
  uint64_t spans, requests, throttled, error_traces;
  size_t request_bytes, span_bytes;
  int failed;
} conn_t;

static opts_t opts;
static atomic_uint_fast64_t spans_claimed; /* shared budget of spans, claimed a request at a time */
static double t_start;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void kv_str(tt_buf_t *span, const char *k, const char *v) {
  tt_buf_t any = TT_BUF_INIT, kv = TT_BUF_INIT;
  tt__buf_append_lenfield(&any, 1, v, strlen(v));
  tt__buf_append_lenfield(&kv, 1, k, strlen(k));
  tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  tt__buf_append_lenfield(span, 9, kv.data, kv.len);
  tt__buf_free(&any);
  tt__buf_free(&kv);
}

/* One span; *code_off gets the offset (within b) of its status code byte. */
static void make_span(tt_buf_t *b, unsigned span, size_t *code_off) {
  uint8_t tid[16] = {1}, sid[8] = {0}, pid[8] = {0};
  sid[7] = (uint8_t)(span + 1);
  pid[7] = 1;
  tt__buf_append_lenfield(b, 1, tid, 16);
  tt__buf_append_lenfield(b, 2, sid, 8);
  if (span != 0)
    tt__buf_append_lenfield(b, 4, pid, 8);
  tt__buf_append_lenfield(b, 5, "GET /api/orders/{id}", 20);
  tt__buf_append_tag(b, 6, TT_WT_VARINT);
  tt__buf_append_varint(b, 2);
  uint64_t now_ns = (uint64_t)time(NULL) * 1000000000ull;
  tt__buf_append_fixed(b, 7, now_ns, 8);
  tt__buf_append_fixed(b, 8, now_ns + 12000000ull, 8);
  kv_str(b, "http.request.method", "GET");
  kv_str(b, "http.route", "/api/orders/{id}");
  kv_str(b, "url.path", "/api/orders/12345");
  kv_str(b, "server.address", "orders.internal");
  kv_str(b, "network.protocol.version", "1.1");
  kv_str(b, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
  kv_str(b, "client.address", "10.1.2.3");
  kv_str(b, "http.response.status_code", "200");
  /* Status{code = OK}: tag 15/len, length 2, tag 3/varint, code; the code byte is patched. */
  static const uint8_t status[] = {0x7a, 0x02, 0x18, 0x01};
  tt__buf_append(b, status, sizeof status);
  *code_off = b->len - 1;
}

/* The request, the offsets of each span's trace id (span order) and of each trace's last span's
 * status code byte. */
typedef struct {
  tt_buf_t req;
  size_t id_off[MAX_IDS];
  size_t code_off[MAX_IDS];
  size_t span_bytes;
} request_t;

static void make_request(request_t *r, unsigned traces, unsigned per) {
  tt_buf_t spans = TT_BUF_INIT, span = TT_BUF_INIT, ss = TT_BUF_INIT, rs = TT_BUF_INIT,
           res = TT_BUF_INIT, kv = TT_BUF_INIT, any = TT_BUF_INIT;
  size_t span_id_off[MAX_IDS], span_code_off[MAX_IDS], span_start[MAX_IDS];
  unsigned n = 0;
  for (unsigned t = 0; t < traces; t++)
    for (unsigned s = 0; s < per; s++, n++) {
      size_t code;
      tt__buf_reset(&span);
      make_span(&span, s, &code);
      r->span_bytes = span.len;
      /* Within `spans`: tag (1 byte) + varint length, then the span; the trace id is the span's
       * first field (tag 0x0a, length 0x10, then 16 bytes). */
      tt__buf_append_lenfield(&spans, 2, span.data, span.len);
      span_start[n] = spans.len - span.len;
      span_id_off[n] = span_start[n] + 2;
      span_code_off[n] = span_start[n] + code;
    }
  tt__buf_append_lenfield(&ss, 1,
                          "\x0a\x05"
                          "bench",
                          7);
  size_t ss_spans = ss.len;
  tt__buf_append(&ss, spans.data, spans.len);
  tt__buf_append_lenfield(&any, 1, "orders", 6);
  tt__buf_append_lenfield(&kv, 1, "service.name", 12);
  tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  tt__buf_append_lenfield(&res, 1, kv.data, kv.len);
  tt__buf_append_lenfield(&rs, 1, res.data, res.len);
  tt__buf_append_lenfield(&rs, 2, ss.data, ss.len);
  size_t rs_ss = rs.len - ss.len;
  tt__buf_reset(&r->req);
  tt__buf_append_lenfield(&r->req, 1, rs.data, rs.len);
  size_t req_rs = r->req.len - rs.len;
  size_t base = req_rs + rs_ss + ss_spans;
  for (unsigned i = 0; i < n; i++) {
    r->id_off[i] = base + span_id_off[i];
    r->code_off[i] = base + span_code_off[i];
  }
  tt__buf_free(&spans), tt__buf_free(&span), tt__buf_free(&ss), tt__buf_free(&rs);
  tt__buf_free(&res), tt__buf_free(&kv), tt__buf_free(&any);
}

static int connect_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {10, 0}; /* every read and write bounded */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++, n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* Reads one response (headers and a Content-Length body); returns its status or -1. */
static int read_response(int fd, char *buf, size_t cap) {
  size_t have = 0;
  char *end = NULL;
  while (end == NULL) {
    if (have + 1 >= cap)
      return -1;
    ssize_t r = read(fd, buf + have, cap - 1 - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    have += (size_t)r;
    buf[have] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  int status = 0;
  if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
    return -1;
  size_t clen = 0;
  const char *cl = strcasestr(buf, "content-length:");
  if (cl != NULL)
    clen = strtoul(cl + 15, NULL, 10);
  size_t body_have = have - (size_t)(end + 4 - buf);
  while (body_have < clen) {
    char sink[4096];
    size_t want = clen - body_have < sizeof sink ? clen - body_have : sizeof sink;
    ssize_t r = read(fd, sink, want);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    body_have += (size_t)r;
  }
  if (strcasestr(buf, "connection: close") != NULL)
    return -status; /* the caller reconnects */
  return status;
}

static void *conn_main(void *arg) {
  conn_t *c = arg;
  const opts_t *o = c->o;
  request_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    c->failed = 1;
    return NULL;
  }
  make_request(r, o->traces, o->per);
  c->request_bytes = r->req.len;
  c->span_bytes = r->span_bytes;
  unsigned nspans = o->traces * o->per;
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/x-protobuf\r\nContent-Length: %zu\r\n\r\n",
                      r->req.len);
  char resp[8192];
  int fd = connect_port(o->port);
  if (fd < 0) {
    c->failed = 1;
    free(r);
    return NULL;
  }
  double per_conn_rate = o->rate > 0 ? o->rate / o->conns : 0;
  uint64_t counter = 0;
  for (;;) {
    double t = now_s();
    if (t - t_start >= o->seconds)
      break;
    if (atomic_fetch_add(&spans_claimed, nspans) + nspans > o->spans_max)
      break;
    if (per_conn_rate > 0) {
      double due = t_start + (double)c->spans / per_conn_rate;
      if (due > t) {
        struct timespec ts = {(time_t)(due - t),
                              (long)((due - t - (double)(time_t)(due - t)) * 1e9)};
        nanosleep(&ts, NULL);
      }
    }
    for (unsigned tr = 0; tr < o->traces; tr++, counter++) {
      uint64_t seed = (o->id_base << 40) ^ ((uint64_t)c->idx << 34) ^ counter;
      uint64_t hi = splitmix(seed), lo = splitmix(seed ^ 0x5bd1e9955bd1e995ull);
      uint8_t id[16];
      for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(hi >> (8 * i));
        id[8 + i] = (uint8_t)(lo >> (8 * i));
      }
      bool err = o->error_permille > 0 && (splitmix(seed ^ 0xabcdefull) % 1000) < o->error_permille;
      c->error_traces += err;
      for (unsigned s = 0; s < o->per; s++) {
        unsigned k = tr * o->per + s;
        memcpy(r->req.data + r->id_off[k], id, 16);
        r->req.data[r->code_off[k]] = (uint8_t)(err && s == o->per - 1 ? 2 : 1);
      }
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
      struct iovec iov[2] = {{head, (size_t)hlen}, {r->req.data, r->req.len}};
      int st = write_all(fd, iov, 2) == 0 ? read_response(fd, resp, sizeof resp) : -1;
      if (st <= 0) { /* closed or failed: reconnect once per attempt */
        close(fd);
        fd = connect_port(o->port);
        if (fd < 0) {
          c->failed = 1;
          goto out;
        }
        if (st == -1)
          continue;
        st = -st;
      }
      c->requests++;
      if (st == 200) {
        c->spans += nspans;
        break;
      }
      if (st == 429 || st == 503) {
        c->throttled++;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
        continue;
      }
      fprintf(stderr, "bench_bus_load: status %d\n", st);
      c->failed = 1;
      goto out;
    }
  }
out:
  if (fd >= 0)
    close(fd);
  tt__buf_free(&r->req);
  free(r);
  return NULL;
}

static void figure(const char *name, double value, const char *unit) {
  printf("{\"name\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"}\n", name, value, unit);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: %s PORT [spans] [seconds] [conns] [traces] [per] [rate] "
            "[error_permille] [id_base]\n",
            argv[0]);
    return 2;
  }
  opts.port = atoi(argv[1]);
  opts.spans_max = argc > 2 ? strtoull(argv[2], NULL, 10) : 2000000;
  opts.seconds = argc > 3 ? atof(argv[3]) : 20;
  opts.conns = argc > 4 ? (unsigned)atoi(argv[4]) : 2;
  opts.traces = argc > 5 ? (unsigned)atoi(argv[5]) : 10;
  opts.per = argc > 6 ? (unsigned)atoi(argv[6]) : 10;
  opts.rate = argc > 7 ? atof(argv[7]) : 0;
  opts.error_permille = argc > 8 ? (unsigned)atoi(argv[8]) : 0;
  opts.id_base = argc > 9 ? strtoull(argv[9], NULL, 10) : 1;
  if (opts.conns < 1 || opts.conns > MAX_CONNS || opts.traces < 1 || opts.per < 1 ||
      opts.per > 250 || opts.traces * opts.per > MAX_IDS) {
    fprintf(stderr, "bench_bus_load: conns 1..%d, per 1..250, traces*per <= %d\n", MAX_CONNS,
            MAX_IDS);
    return 2;
  }
  conn_t c[MAX_CONNS];
  pthread_t th[MAX_CONNS];
  t_start = now_s();
  for (unsigned i = 0; i < opts.conns; i++) {
    c[i] = (conn_t){.idx = i, .o = &opts};
    pthread_create(&th[i], NULL, conn_main, &c[i]);
  }
  uint64_t spans = 0, requests = 0, throttled = 0, errs = 0;
  int failed = 0;
  for (unsigned i = 0; i < opts.conns; i++) {
    pthread_join(th[i], NULL);
    spans += c[i].spans, requests += c[i].requests, throttled += c[i].throttled;
    errs += c[i].error_traces;
    failed |= c[i].failed;
  }
  double secs = now_s() - t_start;
  figure("load_spans", (double)spans, "spans");
  figure("load_requests", (double)requests, "requests");
  figure("load_seconds", secs, "s");
  figure("load_spans_per_s", (double)spans / secs, "spans/s");
  figure("load_throttled", (double)throttled, "requests");
  figure("load_request_bytes", (double)c[0].request_bytes, "bytes");
  figure("load_span_bytes", (double)c[0].span_bytes, "bytes");
  figure("load_error_traces", (double)errs, "traces");
  return failed;
}
