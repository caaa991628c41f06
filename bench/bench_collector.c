/* Collector benchmarks, one JSON object per figure on stdout:
 *   wire_scan            decision-field scan of an 8-attribute span (what the span path does)
 *   protobuf_c_unpack    protobuf-c full unpack + free of the same span (the alternative)
 *   span_annotate        re-framing a kept span with tracestate, SampleRate and reason
 *   pipeline             handler -> shards -> timing wheel -> policies -> re-frame -> null sink
 *   held_*               memory per span held undecided (budget accounting and process RSS)
 * Usage: bench_collector [seconds_per_figure (default 1)] [workers (default: cores)]
 * [scan|pipeline|memory] (the last argument runs one group only, e.g. under perf) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "pipeline.h"
#include "sampling.h"
#include "wire.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void figure(const char *name, double value, const char *unit) {
  printf("{\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n", name, value, unit);
  fflush(stdout);
}

static void kv_field(tt_buf_t *msg, uint32_t field, const char *k, const char *v) {
  tt_buf_t any = TT_BUF_INIT, kv = TT_BUF_INIT;
  tt__buf_append_lenfield(&any, 1, v, strlen(v));
  tt__buf_append_lenfield(&kv, 1, k, strlen(k));
  tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  tt__buf_append_lenfield(msg, field, kv.data, kv.len);
  tt__buf_free(&any);
  tt__buf_free(&kv);
}

static void kv_str(tt_buf_t *span, const char *k, const char *v) {
  kv_field(span, 9, k, v);
}

/* A realistic server span: ids, name, kind, times, 8 attributes, status. */
static void make_span(tt_buf_t *b, uint64_t trace, uint64_t span, uint64_t parent) {
  uint8_t tid[16], sid[8], pid[8];
  uint64_t x = trace * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < 16; i++) {
    x ^= x >> 13, x *= 0xff51afd7ed558ccdull;
    tid[i] = (uint8_t)(x >> 56);
  }
  tid[0] |= 1;
  /* Distinct span ids (the collector drops a repeated span id within a trace as a duplicate). */
  for (int i = 0; i < 8; i++) {
    sid[i] = (uint8_t)((span + 1) >> (8 * (7 - i)));
    pid[i] = (uint8_t)((parent + 1) >> (8 * (7 - i)));
  }
  tt__buf_append_lenfield(b, 1, tid, 16);
  tt__buf_append_lenfield(b, 2, sid, 8);
  if (parent != 0)
    tt__buf_append_lenfield(b, 4, pid, 8);
  tt__buf_append_lenfield(b, 5, "GET /api/orders/{id}", 20);
  tt__buf_append_tag(b, 6, TT_WT_VARINT);
  tt__buf_append_varint(b, 2);
  tt__buf_append_fixed(b, 7, 1700000000000000000ull, 8);
  tt__buf_append_fixed(b, 8, 1700000000012000000ull, 8);
  kv_str(b, "http.request.method", "GET");
  kv_str(b, "http.route", "/api/orders/{id}");
  kv_str(b, "url.path", "/api/orders/12345");
  kv_str(b, "server.address", "orders.internal");
  kv_str(b, "network.protocol.version", "1.1");
  kv_str(b, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
  kv_str(b, "client.address", "10.1.2.3");
  kv_str(b, "http.response.status_code", "200");
  tt_buf_t st = TT_BUF_INIT;
  tt__buf_append_tag(&st, 3, TT_WT_VARINT);
  tt__buf_append_varint(&st, 1);
  tt__buf_append_lenfield(b, 15, st.data, st.len);
  tt__buf_free(&st);
}

/* ExportTraceServiceRequest{ResourceSpans{resource, ScopeSpans{scope, spans}}}: `traces` traces
 * of `per` spans each (a root and its children), trace numbers from `first`. */
static void make_request(tt_buf_t *req, uint64_t first, int traces, int per) {
  tt_buf_t spans = TT_BUF_INIT, span = TT_BUF_INIT, ss = TT_BUF_INIT, rs = TT_BUF_INIT,
           res = TT_BUF_INIT;
  tt__buf_reset(req);
  for (int t = 0; t < traces; t++)
    for (int s = 0; s < per; s++) {
      tt__buf_reset(&span);
      make_span(&span, first + (uint64_t)t, (uint64_t)s + 1, s == 0 ? 0 : 1);
      tt__buf_append_lenfield(&spans, 2, span.data, span.len);
    }
  tt__buf_append_lenfield(&ss, 1,
                          "\x0a\x05"
                          "bench",
                          7); /* InstrumentationScope{name} */
  tt__buf_append(&ss, spans.data, spans.len);
  kv_field(&res, 1, "service.name", "orders"); /* Resource.attributes is field 1 */
  tt__buf_append_lenfield(&rs, 1, res.data, res.len);
  tt__buf_append_lenfield(&rs, 2, ss.data, ss.len);
  tt__buf_append_lenfield(req, 1, rs.data, rs.len);
  tt__buf_free(&spans), tt__buf_free(&span), tt__buf_free(&ss), tt__buf_free(&rs);
  tt__buf_free(&res);
}

/* Offsets of every span's trace id inside a request, in span order, so one request can be
 * reused with fresh trace ids (building requests would otherwise dominate the figure). */
static size_t find_trace_ids(const tt_buf_t *req, size_t *offs, size_t max) {
  size_t n = 0;
  tt_wire_reader_t r1, r2, r3, r4;
  tt_wire_field_t f1, f2, f3, f4;
  tt__wire_reader_init(&r1, req->data, req->len);
  while (tt__wire_next(&r1, &f1) == 1) {
    tt__wire_reader_init(&r2, f1.p, f1.len);
    while (tt__wire_next(&r2, &f2) == 1) {
      if (f2.field != 2)
        continue;
      tt__wire_reader_init(&r3, f2.p, f2.len);
      while (tt__wire_next(&r3, &f3) == 1) {
        if (f3.field != 2)
          continue;
        tt__wire_reader_init(&r4, f3.p, f3.len);
        while (tt__wire_next(&r4, &f4) == 1)
          if (f4.field == 1 && n < max)
            offs[n++] = (size_t)(f4.p - req->data);
      }
    }
  }
  return n;
}

static void set_trace_id(uint8_t *p, uint64_t trace) {
  uint64_t x = trace * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < 16; i++) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    p[i] = (uint8_t)(x >> 56);
  }
  p[0] |= 1;
}

static volatile uint64_t sink_hole;

static void bench_scan(double secs, const tt_buf_t *span) {
  tt_span_facts_t f;
  uint64_t n = 0;
  double t0 = now_s(), t;
  do {
    for (int i = 0; i < 10000; i++) {
      tt__wire_scan_span(span->data, span->len, &f);
      sink_hole += f.start_ns;
    }
    n += 10000;
  } while ((t = now_s()) - t0 < secs);
  figure("wire_scan_spans_per_sec", (double)n / (t - t0), "spans/s");
  figure("wire_scan_ns_per_span", (t - t0) * 1e9 / (double)n, "ns");
  n = 0;
  t0 = now_s();
  do {
    for (int i = 0; i < 1000; i++) {
      Opentelemetry__Proto__Trace__V1__Span *s =
          opentelemetry__proto__trace__v1__span__unpack(NULL, span->len, span->data);
      sink_hole += s->start_time_unix_nano;
      opentelemetry__proto__trace__v1__span__free_unpacked(s, NULL);
    }
    n += 1000;
  } while ((t = now_s()) - t0 < secs);
  figure("protobuf_c_unpack_free_ns_per_span", (t - t0) * 1e9 / (double)n, "ns");
  tt_buf_t out = TT_BUF_INIT;
  tt_annotation_t a = {tt__threshold_from_ratio(0.1), "ratio", "root_grace", NULL};
  n = 0;
  t0 = now_s();
  do {
    for (int i = 0; i < 1000; i++) {
      tt__buf_reset(&out);
      tt__span_annotate(span->data, span->len, &a, &out);
    }
    n += 1000;
  } while ((t = now_s()) - t0 < secs);
  figure("span_annotate_ns_per_span", (t - t0) * 1e9 / (double)n, "ns");
  tt__buf_free(&out);
}

static void bench_pipeline(double secs, unsigned workers) {
  tt_sink_t *null = tt__sink_null_new();
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = workers;
  o.root_grace_ns = 1000000;     /* 1 ms: decide as soon as possible to measure throughput */
  o.idle_timeout_ns = 100000000; /* 100 ms */
  o.tick_ns = 1000000;
  o.sinks = &null;
  o.nsinks = 1;
  tt_pipeline_t *p;
  if (tt__pipeline_new(&o, &p) != 0)
    return;
  tt_buf_t req = TT_BUF_INIT;
  uint64_t spans = 0, throttled = 0, trace = 1;
  enum { traces = 10, per = 10 };
  size_t offs[traces * per];
  make_request(&req, 1, traces, per);
  size_t nids = find_trace_ids(&req, offs, (size_t)(traces * per));
  double t0 = now_s(), t;
  do {
    for (size_t i = 0; i < nids; i++)
      set_trace_id(req.data + offs[i], trace + i / (size_t)per);
    trace += traces;
    tt_export_request_t r = {req.data, req.len, "bench", 0};
    tt_export_result_t res;
    tt__pipeline_handle(p, &r, &res);
    if (res.status == TT_EXPORT_OK)
      spans += (uint64_t)(traces * per);
    else
      throttled++;
  } while ((t = now_s()) - t0 < secs);
  double t_in = t - t0;
  tt__pipeline_shutdown(p); /* decides what is still held: all spans accounted for */
  t = now_s();
  tt_metrics_t *m = tt__pipeline_metrics(p);
  uint64_t kept = tt__sink_null_spans(null);
  figure("pipeline_spans_per_sec_end_to_end", (double)spans / (t - t0), "spans/s");
  figure("pipeline_handler_spans_per_sec", (double)spans / t_in, "spans/s");
  figure("pipeline_kept_share_percent", 100.0 * (double)kept / (double)(spans ? spans : 1), "%");
  figure("pipeline_throttled_requests", (double)throttled, "requests");
  figure("pipeline_spans_duplicate", (double)atomic_load(&m->spans_duplicate), "spans");
  figure("pipeline_spans_dropped_plus_kept_plus_duplicate_minus_accepted",
         (double)(atomic_load(&m->spans_dropped) + kept + atomic_load(&m->spans_duplicate)) -
             (double)atomic_load(&m->spans_accepted),
         "spans");
  tt__pipeline_free(p);
  null->vt->close(null);
  tt__buf_free(&req);
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * 4;
}

/* Holds 100 000 spans undecided (long grace) and reports what the budget counts per span and what
 * the process's resident memory grew by per span. */
static void bench_memory(unsigned workers) {
  tt_sink_t *null = tt__sink_null_new();
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.workers = workers;
  o.root_grace_ns = 600000000000ull;
  o.idle_timeout_ns = 600000000000ull;
  o.max_trace_age_ns = 600000000000ull;
  o.memory_budget = 1ull << 30;
  o.sinks = &null;
  o.nsinks = 1;
  tt_pipeline_t *p;
  if (tt__pipeline_new(&o, &p) != 0)
    return;
  enum { traces = 10, per = 10, requests = 1000 };
  tt_buf_t req = TT_BUF_INIT;
  size_t offs[traces * per];
  make_request(&req, 1, traces, per);
  size_t nids = find_trace_ids(&req, offs, (size_t)(traces * per));
  long before = rss_kib();
  for (uint64_t r = 0; r < requests; r++) {
    for (size_t i = 0; i < nids; i++)
      set_trace_id(req.data + offs[i], 1 + r * traces + i / (size_t)per);
    tt_export_request_t rq = {req.data, req.len, "bench", 0};
    tt_export_result_t res;
    tt__pipeline_handle(p, &rq, &res);
  }
  tt__pipeline_sync(p);
  long after = rss_kib();
  tt_metrics_t *m = tt__pipeline_metrics(p);
  double spans = (double)atomic_load(&m->spans_accepted);
  figure("held_spans", spans, "spans");
  figure("held_budget_bytes_per_span", (double)atomic_load(&m->bytes_held) / spans, "bytes");
  figure("held_rss_bytes_per_span", (double)(after - before) * 1024.0 / spans, "bytes");
  tt__pipeline_free(p);
  null->vt->close(null);
  tt__buf_free(&req);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1.0;
  unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
  tt_buf_t span = TT_BUF_INIT;
  make_span(&span, 42, 2, 1);
  const char *only = argc > 3 ? argv[3] : "";
  figure("bench_span_bytes", (double)span.len, "bytes");
  if (strcmp(only, "pipeline") != 0 && strcmp(only, "memory") != 0)
    bench_scan(secs, &span);
  if (strcmp(only, "scan") != 0 && strcmp(only, "memory") != 0)
    bench_pipeline(secs, workers);
  if (strcmp(only, "scan") != 0 && strcmp(only, "pipeline") != 0)
    bench_memory(workers);
  tt__buf_free(&span);
  return 0;
}
