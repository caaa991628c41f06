/* Forwarding throughput: how many spans per second one OTLP exporter sink (sink_otlp.c) moves to
 * a receiver on loopback, over OTLP/HTTP-protobuf and OTLP/gRPC, with and without gzip.
 *
 * The receiver is real and in the same process: the collector's own OTLP receivers
 * (recv_http.c on 127.0.0.1 via libuv, recv_grpc.c via gRPC's C core) with a counting handler
 * behind them that walks every received request and counts its spans. Every span the producer
 * submits must be reported sent by the sink and counted by the receiver; if not, the run fails
 * with exit status 1.
 *
 * Batches are shaped like the collector's kept batches: an ExportTraceServiceRequest of one
 * ResourceSpans with one ScopeSpans of 512 spans (random ids, a handful of names and routes,
 * 5 attributes, status), each re-framed by tt__span_annotate exactly as a kept span is
 * (ot=th: tracestate, SampleRate, decision reason and trigger).
 *
 * Figures (one JSON object a line), per configuration <c> in http, http_gzip, grpc, grpc_gzip:
 *   fwd_<c>_spans_per_sec     median over rounds: spans acknowledged / (first submit .. flush)
 *   fwd_<c>_spans_per_sec_min / _max   the slowest and fastest round
 *   fwd_<c>_mb_per_sec        the same in uncompressed request bytes (1 MB = 10^6 bytes)
 *   fwd_<c>_cpu_cores_busy    process CPU time / wall time over the rounds (2.0 = both cores)
 *   fwd_<c>_latency_p50_us    one batch on an idle sink: submit .. flush returns (sent and
 *   fwd_<c>_latency_p99_us      acknowledged); no queueing
 *   fwd_<c>_spans_sent / _spans_received   totals, rounds and latency phase together
 * plus the batch's shape and the cost of its parts done in isolation (gzip, inflate, the
 * receiver's wire validation).
 *
 * Usage: bench_forward [seconds_per_round (default 2)] [rounds (default 3)]
 *                      [all|http|grpc (default all)] */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "recv_grpc.h"
#include "recv_http.h"
#include "validate.h"
#include "sampling.h"
#include "sink_otlp.h"
#include "wire.h"

enum {
  BATCH_SPANS = 512, /* spans per request */
  NBATCHES = 16,     /* distinct requests submitted in turn */
  WINDOW = 8,        /* batches kept queued in the sink while measuring throughput */
  MAX_LAT = 4096,    /* latency samples kept per configuration */
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void figure(const char *name, double value, const char *unit) {
  printf("{\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n", name, value, unit);
  fflush(stdout);
}

static void figuref(const char *cfg, const char *what, double value, const char *unit) {
  char name[128];
  snprintf(name, sizeof name, "fwd_%s_%s", cfg, what);
  figure(name, value, unit);
}

/* ---- batch construction ------------------------------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return rng_state = x;
}

static void rnd_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rnd() >> 56);
}

static void kv_any(tt_buf_t *msg, uint32_t field, const char *k, const tt_buf_t *any) {
  tt_buf_t kv = TT_BUF_INIT;
  tt__buf_append_lenfield(&kv, 1, k, strlen(k));
  tt__buf_append_lenfield(&kv, 2, any->data, any->len);
  tt__buf_append_lenfield(msg, field, kv.data, kv.len);
  tt__buf_free(&kv);
}

static void kv_str(tt_buf_t *msg, uint32_t field, const char *k, const char *v) {
  tt_buf_t any = TT_BUF_INIT;
  tt__buf_append_lenfield(&any, 1, v, strlen(v)); /* AnyValue.string_value */
  kv_any(msg, field, k, &any);
  tt__buf_free(&any);
}

static void kv_int(tt_buf_t *msg, uint32_t field, const char *k, int64_t v) {
  tt_buf_t any = TT_BUF_INIT;
  tt__buf_append_tag(&any, 3, TT_WT_VARINT); /* AnyValue.int_value */
  tt__buf_append_varint(&any, (uint64_t)v);
  kv_any(msg, field, k, &any);
  tt__buf_free(&any);
}

static const char *const routes[][2] = {
    {"GET", "/api/orders/{id}"},     {"POST", "/api/orders"},
    {"GET", "/api/users/{id}/cart"}, {"PUT", "/api/cart/{id}/items"},
    {"GET", "/api/catalog/search"},  {"DELETE", "/api/sessions/{id}"},
};
/* One server span with the attributes an HTTP instrumentation records (5 of them). */
static void make_span(tt_buf_t *b, const uint8_t tid[16]) {
  uint8_t sid[8], pid[8];
  rnd_bytes(sid, 8);
  rnd_bytes(pid, 8);
  unsigned r = (unsigned)(rnd() % 6);
  int error = rnd() % 50 == 0;
  char name[64], path[64], client[32];
  snprintf(name, sizeof name, "%s %s", routes[r][0], routes[r][1]);
  snprintf(path, sizeof path, "%.12s%u", routes[r][1], (unsigned)(rnd() % 1000000));
  uint64_t x = rnd();
  snprintf(client, sizeof client, "10.%u.%u.%u", (unsigned)(x >> 8 & 255),
           (unsigned)(x >> 16 & 255), (unsigned)(x >> 24 & 255));
  tt__buf_append_lenfield(b, 1, tid, 16);
  tt__buf_append_lenfield(b, 2, sid, 8);
  tt__buf_append_lenfield(b, 4, pid, 8);
  tt__buf_append_lenfield(b, 5, name, strlen(name));
  tt__buf_append_tag(b, 6, TT_WT_VARINT);
  tt__buf_append_varint(b, 2); /* SERVER */
  uint64_t start = 1763848800000000000ull + rnd() % 3600000000000ull;
  tt__buf_append_fixed(b, 7, start, 8);
  tt__buf_append_fixed(b, 8, start + 200000 + rnd() % 400000000, 8);
  kv_str(b, 9, "http.request.method", routes[r][0]);
  kv_str(b, 9, "http.route", routes[r][1]);
  kv_str(b, 9, "url.path", path);
  kv_str(b, 9, "client.address", client);
  kv_int(b, 9, "http.response.status_code", error ? 500 : 200);
  tt_buf_t st = TT_BUF_INIT;
  if (error)
    tt__buf_append_lenfield(&st, 2, "upstream timeout", 16);
  tt__buf_append_tag(&st, 3, TT_WT_VARINT);
  tt__buf_append_varint(&st, error ? 2 : 1);
  tt__buf_append_lenfield(b, 15, st.data, st.len);
  tt__buf_free(&st);
}

/* ExportTraceServiceRequest{ResourceSpans{resource, ScopeSpans{scope, spans}}} of `n` spans,
 * traces of 1-8 spans, every span annotated as a kept one. */
static void make_request(tt_buf_t *req, int n, size_t *span_bytes) {
  tt_buf_t spans = TT_BUF_INIT, raw = TT_BUF_INIT, kept = TT_BUF_INIT, ss = TT_BUF_INIT,
           rs = TT_BUF_INIT, res = TT_BUF_INIT, scope = TT_BUF_INIT;
  tt_annotation_t a = {tt__threshold_from_ratio(0.1), "ratio", "root_grace", NULL};
  uint8_t tid[16];
  int left = 0;
  tt__buf_reset(req);
  for (int i = 0; i < n; i++) {
    if (left == 0) {
      rnd_bytes(tid, 16);
      left = 1 + (int)(rnd() % 8);
    }
    left--;
    tt__buf_reset(&raw);
    tt__buf_reset(&kept);
    make_span(&raw, tid);
    if (tt__span_annotate(raw.data, raw.len, &a, &kept) != 0) {
      fprintf(stderr, "bench_forward: tt__span_annotate failed\n");
      exit(1);
    }
    *span_bytes += kept.len;
    tt__buf_append_lenfield(&spans, 2, kept.data, kept.len);
  }
  tt__buf_append_lenfield(&scope, 1, "io.opentelemetry.tomcat-10.0", 28);
  tt__buf_append_lenfield(&scope, 2, "2.10.0", 6);
  tt__buf_append_lenfield(&ss, 1, scope.data, scope.len);
  tt__buf_append(&ss, spans.data, spans.len);
  kv_str(&res, 1, "service.name", "orders");
  kv_str(&res, 1, "service.version", "1.42.3");
  kv_str(&res, 1, "host.name", "orders-7d9f8c6b5-x2x4q");
  kv_str(&res, 1, "telemetry.sdk.language", "java");
  tt__buf_append_lenfield(&rs, 1, res.data, res.len);
  tt__buf_append_lenfield(&rs, 2, ss.data, ss.len);
  tt__buf_append_lenfield(req, 1, rs.data, rs.len);
  tt__buf_free(&spans), tt__buf_free(&raw), tt__buf_free(&kept), tt__buf_free(&ss);
  tt__buf_free(&rs), tt__buf_free(&res), tt__buf_free(&scope);
}

/* Spans in a request at the wire level; -1 if malformed. */
static long count_spans(const uint8_t *p, size_t len) {
  long n = 0;
  tt_wire_reader_t r1, r2, r3;
  tt_wire_field_t f1, f2, f3;
  int rc1, rc2, rc3;
  tt__wire_reader_init(&r1, p, len);
  while ((rc1 = tt__wire_next(&r1, &f1)) == 1) {
    if (f1.field != 1 || f1.wt != TT_WT_LEN)
      continue;
    tt__wire_reader_init(&r2, f1.p, f1.len);
    while ((rc2 = tt__wire_next(&r2, &f2)) == 1) {
      if (f2.field != 2 || f2.wt != TT_WT_LEN)
        continue;
      tt__wire_reader_init(&r3, f2.p, f2.len);
      while ((rc3 = tt__wire_next(&r3, &f3)) == 1)
        if (f3.field == 2 && f3.wt == TT_WT_LEN)
          n++;
      if (rc3 < 0)
        return -1;
    }
    if (rc2 < 0)
      return -1;
  }
  return rc1 < 0 ? -1 : n;
}

/* ---- the receiving end ---------------------------------------------------------------------- */

typedef struct {
  _Atomic uint64_t requests, spans, bytes, malformed;
} counter_t;

static void counting_handler(void *ctx, const tt_export_request_t *req, tt_export_result_t *res) {
  counter_t *c = ctx;
  long n = count_spans(req->data, req->len);
  memset(res, 0, sizeof *res);
  if (n < 0) {
    atomic_fetch_add(&c->malformed, 1);
    res->status = TT_EXPORT_INVALID;
    snprintf(res->message, sizeof res->message, "malformed request");
    return;
  }
  atomic_fetch_add(&c->requests, 1);
  atomic_fetch_add(&c->spans, (uint64_t)n);
  atomic_fetch_add(&c->bytes, req->len);
  res->status = TT_EXPORT_OK;
}

/* ---- one configuration ---------------------------------------------------------------------- */

typedef struct {
  tt_buf_t req[NBATCHES];
  size_t total_bytes; /* over the NBATCHES requests */
} batches_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double percentile(double *sorted, int n, double p) {
  int i = (int)(p * (double)n + 0.999999) - 1;
  if (i < 0)
    i = 0;
  if (i >= n)
    i = n - 1;
  return sorted[i];
}

/* Waits until the sink's memory queue holds fewer than `window` batches' bytes. */
static void wait_window(tt_sink_t *s, uint64_t window_bytes) {
  tt_otlp_sink_stats_t st;
  for (;;) {
    tt__sink_otlp_stats(s, &st);
    if (st.queue_bytes < window_bytes)
      return;
    struct timespec ts = {0, 100000}; /* 100 µs; a batch round trip is far longer */
    nanosleep(&ts, NULL);
  }
}

/* Returns 0 when every submitted span was sent and received, 1 otherwise. */
static int run_config(const char *cfg, int grpc, int gzip, const batches_t *bt, double secs,
                      int rounds) {
  counter_t cnt;
  atomic_init(&cnt.requests, 0);
  atomic_init(&cnt.spans, 0);
  atomic_init(&cnt.bytes, 0);
  atomic_init(&cnt.malformed, 0);
  tt_http_receiver_t *hr = NULL;
  tt_grpc_receiver_t *gr = NULL;
  char ep[128];
  int rc;
  if (grpc) {
    tt_grpc_receiver_opts_t o = {.port = 0, .handler = counting_handler, .ctx = &cnt};
    rc = tt__grpc_receiver_start(&o, &gr);
    if (rc == 0)
      snprintf(ep, sizeof ep, "127.0.0.1:%d", tt__grpc_receiver_port(gr));
  } else {
    tt_http_receiver_opts_t o = {.port = 0, .handler = counting_handler, .ctx = &cnt};
    rc = tt__http_receiver_start(&o, &hr);
    if (rc == 0)
      snprintf(ep, sizeof ep, "http://127.0.0.1:%d/v1/traces", tt__http_receiver_port(hr));
  }
  if (rc != 0) {
    fprintf(stderr, "bench_forward: %s: cannot start the receiver: %s\n", cfg, strerror(-rc));
    return 1;
  }
  tt_otlp_sink_opts_t so;
  memset(&so, 0, sizeof so);
  so.name = cfg;
  so.protocol = grpc ? TT_FWD_PROTOCOL_GRPC : TT_FWD_PROTOCOL_HTTP_PROTOBUF;
  so.endpoint = ep;
  so.insecure = 1;
  so.gzip = gzip;
  so.timeout_ms = 10000;
  tt_sink_t *s = NULL;
  char err[256] = "";
  rc = tt__sink_otlp_open(&so, &s, err, sizeof err);
  if (rc != 0) {
    fprintf(stderr, "bench_forward: %s: %s\n", cfg, err);
    tt__grpc_receiver_stop(gr);
    tt__http_receiver_stop(hr);
    return 1;
  }

  uint64_t submitted_spans = 0, submitted_bytes = 0;
  size_t next = 0;
  int failed = 0;
  uint64_t window = (uint64_t)WINDOW * (bt->total_bytes / NBATCHES);

  /* Warm-up: connection set-up (TCP, HTTP/2 settings) is not what we measure. */
  for (int i = 0; i < 4; i++) {
    const tt_buf_t *b = &bt->req[next++ % NBATCHES];
    if (s->vt->submit(s, b->data, b->len, BATCH_SPANS) == 0)
      submitted_spans += BATCH_SPANS, submitted_bytes += b->len;
  }
  if (s->vt->flush(s) != 0)
    failed = 1;

  double rate[64], mbs[64], wall_total = 0, cpu_total = 0;
  if (rounds > 64)
    rounds = 64;
  for (int r = 0; r < rounds && !failed; r++) {
    tt_otlp_sink_stats_t st0, st1;
    tt__sink_otlp_stats(s, &st0);
    uint64_t bytes0 = submitted_bytes;
    double c0 = cpu_s(), t0 = now_s(), t;
    do {
      wait_window(s, window);
      const tt_buf_t *b = &bt->req[next++ % NBATCHES];
      rc = s->vt->submit(s, b->data, b->len, BATCH_SPANS);
      if (rc != 0) {
        fprintf(stderr, "bench_forward: %s: submit failed: %s\n", cfg, strerror(-rc));
        failed = 1;
        break;
      }
      submitted_spans += BATCH_SPANS;
      submitted_bytes += b->len;
    } while ((t = now_s()) - t0 < secs);
    rc = s->vt->flush(s);
    if (rc != 0) {
      fprintf(stderr, "bench_forward: %s: flush failed: %s\n", cfg, strerror(-rc));
      failed = 1;
    }
    t = now_s();
    cpu_total += cpu_s() - c0;
    wall_total += t - t0;
    tt__sink_otlp_stats(s, &st1);
    rate[r] = (double)(st1.spans_sent - st0.spans_sent) / (t - t0);
    mbs[r] = (double)(submitted_bytes - bytes0) / 1e6 / (t - t0);
  }

  /* Latency: one batch at a time on an idle sink, bounded by time and count. */
  double *lat = malloc(MAX_LAT * sizeof *lat);
  int nlat = 0;
  double tl0 = now_s();
  while (!failed && lat != NULL && nlat < MAX_LAT && now_s() - tl0 < secs) {
    const tt_buf_t *b = &bt->req[next++ % NBATCHES];
    double t0 = now_s();
    if (s->vt->submit(s, b->data, b->len, BATCH_SPANS) != 0 || s->vt->flush(s) != 0) {
      failed = 1;
      break;
    }
    lat[nlat++] = (now_s() - t0) * 1e6;
    submitted_spans += BATCH_SPANS;
  }

  tt_otlp_sink_stats_t st;
  tt__sink_otlp_stats(s, &st);
  tt__sink_otlp_set_close_deadline(s, 10000);
  s->vt->close(s);
  tt__grpc_receiver_stop(gr);
  tt__http_receiver_stop(hr);

  if (!failed && rounds > 0) {
    figuref(cfg, "spans_per_sec", median(rate, rounds), "spans/s");
    figuref(cfg, "spans_per_sec_min", rate[0], "spans/s"); /* sorted by median() */
    figuref(cfg, "spans_per_sec_max", rate[rounds - 1], "spans/s");
    figuref(cfg, "mb_per_sec", median(mbs, rounds), "MB/s");
    figuref(cfg, "cpu_cores_busy", cpu_total / wall_total, "cores");
  }
  if (!failed && nlat > 0) {
    qsort(lat, (size_t)nlat, sizeof *lat, cmp_double);
    figuref(cfg, "latency_p50_us", percentile(lat, nlat, 0.50), "us");
    figuref(cfg, "latency_p99_us", percentile(lat, nlat, 0.99), "us");
    figuref(cfg, "latency_samples", (double)nlat, "batches");
  }
  free(lat);
  uint64_t received = atomic_load(&cnt.spans);
  figuref(cfg, "spans_submitted", (double)submitted_spans, "spans");
  figuref(cfg, "spans_sent", (double)st.spans_sent, "spans");
  figuref(cfg, "spans_received", (double)received, "spans");
  fprintf(stderr,
          "bench_forward: %s: submitted %llu, sent %llu, received %llu spans (%llu requests); "
          "retried %llu, failed %llu, dropped %llu, malformed %llu\n",
          cfg, (unsigned long long)submitted_spans, (unsigned long long)st.spans_sent,
          (unsigned long long)received, (unsigned long long)atomic_load(&cnt.requests),
          (unsigned long long)st.batches_retried, (unsigned long long)st.spans_failed_permanent,
          (unsigned long long)st.spans_dropped_queue_full,
          (unsigned long long)atomic_load(&cnt.malformed));
  if (failed || submitted_spans != st.spans_sent || st.spans_sent != received ||
      st.batches_retried != 0 || atomic_load(&cnt.malformed) != 0) {
    fprintf(stderr, "bench_forward: %s: FAILED: sent and received differ or errors occurred\n",
            cfg);
    return 1;
  }
  return 0;
}

/* ---- the parts in isolation ----------------------------------------------------------------- */

static size_t gzip_once(const tt_buf_t *in, uint8_t *out, size_t cap) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* What transport_http.c does: default level, gzip wrapper. */
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  zs.next_in = in->data;
  zs.avail_in = (uInt)in->len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  int rc = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? n : 0;
}

static int gunzip_once(const uint8_t *in, size_t len, uint8_t *out, size_t cap) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 15 + 16) != Z_OK)
    return -1;
  zs.next_in = (uint8_t *)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  int rc = inflate(&zs, Z_FINISH);
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? 0 : -1;
}

/* Returns 0, or 1 when a part failed (the batch would not round-trip). */
static int bench_parts(const batches_t *bt, double secs) {
  size_t cap = compressBound((uLong)bt->req[0].len) + 64;
  uint8_t *z = malloc(cap), *plain = malloc(bt->req[0].len + 64);
  int bad = z == NULL || plain == NULL;
  size_t zbytes = 0, zlen0 = 0;
  int n = 0;
  double t0 = now_s(), t = t0;
  while (!bad && (t = now_s()) - t0 < secs) {
    size_t zn = gzip_once(&bt->req[n % NBATCHES], z, cap);
    bad = zn == 0;
    zbytes += zn;
    n++;
  }
  if (!bad && n > 0) {
    figure("batch_gzip_bytes", (double)zbytes / n, "bytes");
    figure("gzip_us_per_batch", (t - t0) * 1e6 / n, "us");
    zlen0 = gzip_once(&bt->req[0], z, cap);
    bad = zlen0 == 0;
  }
  n = 0;
  t0 = t = now_s();
  while (!bad && (t = now_s()) - t0 < secs) {
    bad = gunzip_once(z, zlen0, plain, bt->req[0].len + 64) != 0;
    n++;
  }
  if (!bad && n > 0)
    figure("gunzip_us_per_batch", (t - t0) * 1e6 / n, "us");
  char errbuf[128] = "";
  n = 0;
  t0 = t = now_s();
  while (!bad && (t = now_s()) - t0 < secs) {
    const tt_buf_t *b = &bt->req[n % NBATCHES];
    bad = tt__otlp_validate_export_request(b->data, b->len, errbuf, sizeof errbuf) != 0 ||
          count_spans(b->data, b->len) != BATCH_SPANS;
    n++;
  }
  if (!bad && n > 0)
    figure("receiver_validate_and_count_us_per_batch", (t - t0) * 1e6 / n, "us");
  if (bad)
    fprintf(stderr, "bench_forward: gzip/gunzip/validate of a batch failed %s\n", errbuf);
  free(z);
  free(plain);
  return bad;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 2.0;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  const char *only = argc > 3 ? argv[3] : "all";
  if (secs <= 0 || rounds < 1 || rounds > 64 ||
      (strcmp(only, "all") != 0 && strcmp(only, "http") != 0 && strcmp(only, "grpc") != 0)) {
    fprintf(stderr, "usage: bench_forward [seconds_per_round] [rounds 1..64] [all|http|grpc]\n");
    return 2;
  }

  batches_t bt;
  memset(&bt, 0, sizeof bt);
  size_t span_bytes = 0;
  for (int i = 0; i < NBATCHES; i++) {
    make_request(&bt.req[i], BATCH_SPANS, &span_bytes);
    bt.total_bytes += bt.req[i].len;
    /* The batch must be what it claims: a valid request of BATCH_SPANS spans, to protobuf-c
     * as well as to the receivers' own checks. */
    char errbuf[128] = "";
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *m =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
            NULL, bt.req[i].len, bt.req[i].data);
    int ok = m != NULL && m->n_resource_spans == 1 && m->resource_spans[0]->n_scope_spans == 1 &&
             m->resource_spans[0]->scope_spans[0]->n_spans == BATCH_SPANS &&
             tt__otlp_validate_export_request(bt.req[i].data, bt.req[i].len, errbuf,
                                              sizeof errbuf) == 0 &&
             count_spans(bt.req[i].data, bt.req[i].len) == BATCH_SPANS;
    if (m != NULL)
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(m,
                                                                                              NULL);
    if (!ok) {
      fprintf(stderr, "bench_forward: generated request %d is not valid (%s)\n", i, errbuf);
      return 1;
    }
  }
  figure("batch_spans", BATCH_SPANS, "spans");
  figure("batch_bytes", (double)bt.total_bytes / NBATCHES, "bytes");
  figure("span_bytes_avg", (double)span_bytes / (NBATCHES * BATCH_SPANS), "bytes");
  int bad = bench_parts(&bt, secs < 1 ? secs : 1);
  if (strcmp(only, "grpc") != 0) {
    bad |= run_config("http", 0, 0, &bt, secs, rounds);
    bad |= run_config("http_gzip", 0, 1, &bt, secs, rounds);
  }
  if (strcmp(only, "http") != 0) {
    bad |= run_config("grpc", 1, 0, &bt, secs, rounds);
    bad |= run_config("grpc_gzip", 1, 1, &bt, secs, rounds);
  }
  for (int i = 0; i < NBATCHES; i++)
    tt__buf_free(&bt.req[i]);
  return bad ? 1 : 0;
}
