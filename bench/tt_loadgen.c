/* tt_loadgen: OTLP trace load for a collector on this host (127.0.0.1 only), over OTLP/HTTP
 * protobuf or OTLP/gRPC, from several connections, at a target rate or as fast as the collector
 * answers, bounded by a span count and a time. Prints what it sent and what came back as JSON
 * lines ({"name", "value", "unit", ...}), like the other bench tools.
 *
 * The shape (tt_loadgen_shape.c): traces of --spans-per-trace spans with --attrs attributes each,
 * spread out of order over --spread requests of about --request-spans spans; --error-fraction of
 * the traces carry one span with status ERROR, --slow-fraction (others) a root lasting --slow-ms.
 * Trace ids never repeat within a run, nor across runs with distinct --seed values (the default
 * seed is random and printed).
 *
 * Refusals: a retryable answer (HTTP 429/502/503/504, gRPC UNAVAILABLE, RESOURCE_EXHAUSTED with
 * RetryInfo, ...) sends the same request again after the server's Retry-After / RetryInfo delay,
 * or after an exponential backoff with jitter (50 ms doubling to 2 s) when it gave none; the wait
 * never runs past the run's end. With --rate, a connection that fell behind (a backoff, a slow
 * answer) does not catch up in a burst: its schedule moves on. Permanent refusals are counted by
 * cause and make the exit status 1, as does a lost connection.
 *
 * --gzip-bomb MIB sends one request only: a valid ExportTraceServiceRequest whose single unknown
 * field holds MIB MiB of zeros, gzip-compressed (about 1000:1); the exit status is 0 when the
 * collector refused it, 1 when it accepted it. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "tt_loadgen.h"

enum { MAX_CONNS = 256, MAX_CAUSES = 12, HIST_BUCKETS = 200 };

typedef struct {
  char cause[32];
  uint64_t n;
  bool retried;
} cause_t;

/* One connection's counters: written by its thread only, read by main after the join. */
typedef struct {
  unsigned idx;
  uint64_t spans_sent, spans_accepted, spans_rejected, spans_refused, spans_abandoned;
  uint64_t requests, requests_ok, bytes, bytes_first;
  uint64_t traces, error_traces, slow_traces, traces_ok, error_traces_ok, slow_traces_ok;
  uint64_t retries;
  double backoff_s, behind_s;
  cause_t causes[MAX_CAUSES];
  unsigned ncauses;
  uint64_t hist[HIST_BUCKETS]; /* request round trips, log-spaced (see hist_bucket) */
  int failed;                  /* 1: lost connection or permanent refusal */
  char error[256];
} conn_t;

static lg_opts_t opts;
static atomic_uint_fast64_t spans_claimed;
static double t_start;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
  if (s <= 0)
    return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Buckets of 1/16 of a doubling from 10 us: bucket b holds [10us * 2^(b/16), next). */
static unsigned hist_bucket(double s) {
  double us = s * 1e6;
  if (us <= 10)
    return 0;
  double b = 16.0 * log2(us / 10.0);
  return b >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (unsigned)b;
}

static double hist_value(unsigned b) {
  return 10e-6 * pow(2.0, (b + 1) / 16.0); /* the bucket's upper bound */
}

static void count_causes(conn_t *c, const char *cause, bool retried, uint64_t n) {
  for (unsigned i = 0; i < c->ncauses; i++)
    if (strcmp(c->causes[i].cause, cause) == 0 && c->causes[i].retried == retried) {
      c->causes[i].n += n;
      return;
    }
  if (c->ncauses < MAX_CAUSES) {
    snprintf(c->causes[c->ncauses].cause, sizeof c->causes[0].cause, "%s", cause);
    c->causes[c->ncauses].retried = retried;
    c->causes[c->ncauses++].n = n;
  }
}

static void count_cause(conn_t *c, const char *cause, bool retried) {
  count_causes(c, cause, retried, 1);
}

static int gzip_buf(const uint8_t *in, size_t len, tt_buf_t *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  size_t bound = deflateBound(&z, len) + 32;
  tt__buf_reset(out);
  if (tt__buf_reserve(out, bound) != 0) {
    deflateEnd(&z);
    return -1;
  }
  z.next_in = (uint8_t *)in, z.avail_in = (uInt)len;
  z.next_out = out->data, z.avail_out = (uInt)bound;
  int rc = deflate(&z, Z_FINISH);
  out->len = bound - z.avail_out;
  deflateEnd(&z);
  return rc == Z_STREAM_END ? 0 : -1;
}

/* Sends one request until accepted, refused for good, or out of time. Returns 1 accepted, 0 not
 * accepted (counted), -1 the connection is lost. */
static int send_request(conn_t *c, lg_link_t *l, const uint8_t *body, size_t len, bool gz,
                        unsigned nspans, double hard_end) {
  double backoff = 0.05;
  lg_outcome_t out;
  for (bool first = true;; first = false) {
    double t0 = now_s();
    lg_link_send(l, body, len, gz, &out);
    double t1 = now_s();
    if (out.result == LG_CONN_FAIL) {
      snprintf(c->error, sizeof c->error, "connection lost: %.31s %.150s", out.cause, out.message);
      c->failed = 1;
      return -1;
    }
    c->requests++;
    c->bytes += len;
    if (first)
      c->bytes_first += len, c->spans_sent += nspans;
    c->hist[hist_bucket(t1 - t0)]++;
    if (out.result == LG_OK) {
      if (out.rejected_spans < 0 || out.rejected_spans > (int64_t)nspans)
        out.rejected_spans = nspans; /* a nonsensical count: take the request as refused */
      c->requests_ok++;
      c->spans_accepted += nspans - (uint64_t)out.rejected_spans;
      c->spans_rejected += (uint64_t)out.rejected_spans;
      if (out.rejected_spans > 0)
        count_cause(c, "partial_success", false);
      return out.rejected_spans > 0 ? 0 : 1;
    }
    if (out.result == LG_REFUSED) {
      count_cause(c, out.cause, false);
      c->spans_refused += nspans;
      c->failed = 1;
      snprintf(c->error, sizeof c->error, "refused: %.31s %.150s", out.cause, out.message);
      return 0;
    }
    count_cause(c, out.cause, true);
    double wait = out.retry_ms >= 0 ? (double)out.retry_ms / 1000.0 : backoff;
    if (out.retry_ms < 0) {
      wait *= 0.8 + 0.4 * (double)(lg_mix((uint64_t)(t1 * 1e9)) % 1000) / 1000.0;
      backoff = backoff * 2 > 2.0 ? 2.0 : backoff * 2;
    }
    double end = t_start + opts.seconds < hard_end ? t_start + opts.seconds : hard_end;
    if (t1 + wait > end) { /* the run ends first: wait for its end, then give up */
      if (end > t1) {
        sleep_s(end - t1);
        c->backoff_s += end - t1;
      }
      c->spans_abandoned += nspans;
      return 0;
    }
    sleep_s(wait);
    c->backoff_s += wait;
    c->retries++;
  }
}

static void *conn_main(void *arg) {
  conn_t *c = arg;
  lg_shape_t shape;
  lg_link_t *link = NULL;
  tt_buf_t gz = TT_BUF_INIT;
  if (lg_shape_init(&shape, &opts, c->idx) != 0) {
    snprintf(c->error, sizeof c->error, "out of memory");
    c->failed = 1;
    return NULL;
  }
  if (lg_link_open(&opts, &link, c->error, sizeof c->error) != 0) {
    c->failed = 1;
    lg_shape_free(&shape);
    return NULL;
  }
  unsigned group = lg_group_spans(&shape);
  unsigned spread = opts.spread < opts.per_trace ? opts.spread : opts.per_trace;
  double per_conn_rate = opts.rate > 0 ? opts.rate / opts.conns : 0;
  double pace_base = t_start, hard_end = t_start + opts.seconds + 10;
  uint64_t paced_spans = 0;
  while (!c->failed && now_s() - t_start < opts.seconds) {
    if (atomic_fetch_add(&spans_claimed, group) + group > opts.spans_max)
      break;
    uint64_t errs = 0, slow = 0;
    lg_shape_next_group(&shape, &errs, &slow);
    c->traces += shape.ntraces, c->error_traces += errs, c->slow_traces += slow;
    bool all_ok = true;
    for (unsigned j = 0; j < spread; j++) {
      unsigned n;
      if (lg_shape_request(&shape, j, &n) != 0) {
        snprintf(c->error, sizeof c->error, "out of memory");
        c->failed = 1;
        break;
      }
      if (per_conn_rate > 0) {
        double due = pace_base + (double)paced_spans / per_conn_rate, t = now_s();
        if (t - due > 0.25) { /* behind: move the schedule on rather than burst */
          pace_base += t - due;
          c->behind_s += t - due;
        } else {
          sleep_s(due - t);
        }
        paced_spans += n;
      }
      const uint8_t *body = shape.req.data;
      size_t len = shape.req.len;
      if (opts.gzip) {
        if (gzip_buf(body, len, &gz) != 0) {
          snprintf(c->error, sizeof c->error, "gzip failed");
          c->failed = 1;
          break;
        }
        body = gz.data, len = gz.len;
      }
      int r = send_request(c, link, body, len, opts.gzip, n, hard_end);
      if (r < 0)
        goto out;
      all_ok &= r == 1;
    }
    if (all_ok && !c->failed) {
      c->traces_ok += shape.ntraces, c->error_traces_ok += errs, c->slow_traces_ok += slow;
    }
  }
out:
  lg_link_close(link);
  lg_shape_free(&shape);
  tt__buf_free(&gz);
  return NULL;
}

/* ---- the gzip bomb ------------------------------------------------------------------------- */

/* Feeds in[0..len) to z, appending what comes out to out; with Z_FINISH, until the end. */
static int deflate_feed(z_stream *z, const uint8_t *in, size_t len, int flush, tt_buf_t *out) {
  uint8_t chunk[65536];
  z->next_in = (uint8_t *)in, z->avail_in = (uInt)len;
  for (;;) {
    z->next_out = chunk, z->avail_out = sizeof chunk;
    int rc = deflate(z, flush);
    if (rc == Z_STREAM_ERROR || tt__buf_append(out, chunk, sizeof chunk - z->avail_out) != 0)
      return -1;
    if (flush == Z_FINISH ? rc == Z_STREAM_END : z->avail_in == 0 && z->avail_out != 0)
      return 0;
  }
}

/* ExportTraceServiceRequest{15: <mib MiB of zeros>}: valid protobuf (an unknown field), so only
 * a size limit on the inflated bytes can refuse it. Deflated in 1 MiB steps: the zeros are never
 * held whole. */
static int make_bomb(double mib, tt_buf_t *out, uint64_t *inflated) {
  uint64_t n = (uint64_t)(mib * 1048576.0);
  uint8_t head[16];
  size_t hl = 0;
  head[hl++] = (15 << 3) | 2;
  for (uint64_t v = n;; v >>= 7) {
    head[hl++] = (uint8_t)(v < 0x80 ? v : (v & 0x7f) | 0x80);
    if (v < 0x80)
      break;
  }
  *inflated = n + hl;
  static uint8_t zeros[1 << 20];
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    return -1;
  int rc = deflate_feed(&z, head, hl, Z_NO_FLUSH, out);
  for (uint64_t left = n; rc == 0 && left > 0;) {
    size_t take = left > sizeof zeros ? sizeof zeros : (size_t)left;
    left -= take;
    rc = deflate_feed(&z, zeros, take, Z_NO_FLUSH, out);
  }
  if (rc == 0)
    rc = deflate_feed(&z, NULL, 0, Z_FINISH, out);
  deflateEnd(&z);
  return rc;
}

static void figure(const char *name, double value, const char *unit, const char *extra);

static int run_bomb(void) {
  tt_buf_t body = TT_BUF_INIT;
  uint64_t inflated = 0;
  if (make_bomb(opts.bomb_mib, &body, &inflated) != 0) {
    fprintf(stderr, "tt_loadgen: cannot build the gzip bomb\n");
    return 2;
  }
  lg_link_t *l;
  char err[200];
  if (lg_link_open(&opts, &l, err, sizeof err) != 0) {
    fprintf(stderr, "tt_loadgen: %s\n", err);
    tt__buf_free(&body);
    return 1;
  }
  lg_outcome_t out;
  double t0 = now_s();
  lg_link_send(l, body.data, body.len, true, &out);
  double t1 = now_s();
  lg_link_close(l);
  char extra[400];
  snprintf(extra, sizeof extra, ",\"status\":\"%s\",\"message\":\"%.120s\"", out.cause,
           out.message);
  for (char *p = extra; *p; p++)
    if (*p == '\\' || (unsigned char)*p < 0x20)
      *p = ' ';
  figure("loadgen_bomb_wire_bytes", (double)body.len, "bytes", extra);
  figure("loadgen_bomb_inflated_bytes", (double)inflated, "bytes", extra);
  figure("loadgen_bomb_refused", out.result == LG_REFUSED || out.result == LG_RETRY, "bool", extra);
  figure("loadgen_bomb_answer_seconds", t1 - t0, "s", extra);
  tt__buf_free(&body);
  if (out.result == LG_CONN_FAIL) {
    fprintf(stderr, "tt_loadgen: connection failed during the bomb: %s\n", out.message);
    return 1;
  }
  return out.result == LG_OK ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------------------- */

static char ctx[512]; /* the run's settings, appended to every figure */

static void figure(const char *name, double value, const char *unit, const char *extra) {
  printf("{\"name\":\"%s\",\"value\":%.3f,\"unit\":\"%s\"%s%s}\n", name, value, unit, ctx,
         extra ? extra : "");
}

static void usage(FILE *f) {
  fprintf(f, "usage: tt_loadgen --port PORT [options]   (always 127.0.0.1)\n"
             "  --protocol http|grpc     OTLP/HTTP protobuf (default) or OTLP/gRPC\n"
             "  --conns N                connections, one request in flight each (2)\n"
             "  --rate SPANS_PER_S       offered rate over all connections; 0 = max (0)\n"
             "  --spans N                stop after N spans (whole groups; 1000000)\n"
             "  --seconds S              stop after S seconds (10)\n"
             "  --spans-per-trace N      (10)   --attrs N  attributes a span (8)\n"
             "  --request-spans N        spans a request, about (100)\n"
             "  --spread N               requests a trace is spread over, out of order (3)\n"
             "  --error-fraction F       traces with an ERROR span (0.01)\n"
             "  --slow-fraction F        traces with a slow root, never errors too (0.01)\n"
             "  --slow-ms MS             a slow root's duration (1500)\n"
             "  --seed N                 trace id seed (default: random, printed)\n"
             "  --gzip                   compress requests (gzip level 1)\n"
             "  --timeout-ms MS          one request's deadline (10000)\n"
             "  --gzip-bomb MIB          send one gzip bomb of MIB MiB and report the answer\n");
}

static int parse(int argc, char **argv) {
  opts = (lg_opts_t){.proto = LG_HTTP,
                     .conns = 2,
                     .spans_max = 1000000,
                     .seconds = 10,
                     .per_trace = 10,
                     .attrs = 8,
                     .request_spans = 100,
                     .spread = 3,
                     .error_fraction = 0.01,
                     .slow_fraction = 0.01,
                     .slow_ms = 1500,
                     .timeout_ms = 10000};
  bool seeded = false;
  static const struct option lo[] = {{"protocol", 1, 0, 'P'},
                                     {"port", 1, 0, 'p'},
                                     {"conns", 1, 0, 'c'},
                                     {"rate", 1, 0, 'r'},
                                     {"spans", 1, 0, 'n'},
                                     {"seconds", 1, 0, 's'},
                                     {"spans-per-trace", 1, 0, 't'},
                                     {"attrs", 1, 0, 'a'},
                                     {"request-spans", 1, 0, 'q'},
                                     {"spread", 1, 0, 'd'},
                                     {"error-fraction", 1, 0, 'e'},
                                     {"slow-fraction", 1, 0, 'w'},
                                     {"slow-ms", 1, 0, 'W'},
                                     {"seed", 1, 0, 'S'},
                                     {"gzip", 0, 0, 'z'},
                                     {"timeout-ms", 1, 0, 'T'},
                                     {"gzip-bomb", 1, 0, 'B'},
                                     {"help", 0, 0, 'h'},
                                     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
      case 'P':
        if (strcmp(optarg, "http") == 0 || strcmp(optarg, "http/protobuf") == 0)
          opts.proto = LG_HTTP;
        else if (strcmp(optarg, "grpc") == 0)
          opts.proto = LG_GRPC;
        else
          return -1;
        break;
      case 'p':
        opts.port = atoi(optarg);
        break;
      case 'c':
        opts.conns = (unsigned)atoi(optarg);
        break;
      case 'r':
        opts.rate = atof(optarg);
        break;
      case 'n':
        opts.spans_max = strtoull(optarg, NULL, 10);
        break;
      case 's':
        opts.seconds = atof(optarg);
        break;
      case 't':
        opts.per_trace = (unsigned)atoi(optarg);
        break;
      case 'a':
        opts.attrs = (unsigned)atoi(optarg);
        break;
      case 'q':
        opts.request_spans = (unsigned)atoi(optarg);
        break;
      case 'd':
        opts.spread = (unsigned)atoi(optarg);
        break;
      case 'e':
        opts.error_fraction = atof(optarg);
        break;
      case 'w':
        opts.slow_fraction = atof(optarg);
        break;
      case 'W':
        opts.slow_ms = (unsigned)atoi(optarg);
        break;
      case 'S':
        opts.seed = strtoull(optarg, NULL, 0), seeded = true;
        break;
      case 'z':
        opts.gzip = true;
        break;
      case 'T':
        opts.timeout_ms = (unsigned)atoi(optarg);
        break;
      case 'B':
        opts.bomb_mib = atof(optarg);
        break;
      case 'h':
        usage(stdout);
        exit(0);
      default:
        return -1;
    }
  }
  if (optind != argc || opts.port <= 0 || opts.port > 65535 || opts.conns < 1 ||
      opts.conns > MAX_CONNS || opts.per_trace < 1 || opts.per_trace > 1000 || opts.attrs > 64 ||
      opts.request_spans < 1 || opts.request_spans > 100000 || opts.spread < 1 ||
      opts.error_fraction < 0 || opts.slow_fraction < 0 ||
      opts.error_fraction + opts.slow_fraction > 1 || opts.seconds <= 0 || opts.rate < 0 ||
      opts.timeout_ms < 1 || opts.bomb_mib < 0 || opts.bomb_mib > 4096)
    return -1;
  if (!seeded && getrandom(&opts.seed, sizeof opts.seed, 0) != sizeof opts.seed)
    opts.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  return 0;
}

int main(int argc, char **argv) {
  if (parse(argc, argv) != 0) {
    usage(stderr);
    return 2;
  }
  snprintf(ctx, sizeof ctx, ",\"protocol\":\"%s\",\"conns\":%u,\"rate\":%.0f,\"seed\":\"%llu\"%s",
           opts.proto == LG_HTTP ? "http" : "grpc", opts.conns, opts.rate,
           (unsigned long long)opts.seed, opts.gzip ? ",\"gzip\":true" : "");
  lg_links_global_init(&opts);
  if (opts.bomb_mib > 0) {
    int rc = run_bomb();
    lg_links_global_shutdown(&opts);
    return rc;
  }
  conn_t *c = calloc(opts.conns, sizeof *c);
  pthread_t *th = calloc(opts.conns, sizeof *th);
  if (c == NULL || th == NULL)
    return 2;
  t_start = now_s();
  for (unsigned i = 0; i < opts.conns; i++) {
    c[i].idx = i;
    pthread_create(&th[i], NULL, conn_main, &c[i]);
  }
  conn_t tot;
  memset(&tot, 0, sizeof tot);
  int failed = 0;
  for (unsigned i = 0; i < opts.conns; i++) {
    pthread_join(th[i], NULL);
    conn_t *x = &c[i];
    tot.spans_sent += x->spans_sent, tot.spans_accepted += x->spans_accepted;
    tot.spans_rejected += x->spans_rejected, tot.spans_refused += x->spans_refused;
    tot.spans_abandoned += x->spans_abandoned;
    tot.requests += x->requests, tot.requests_ok += x->requests_ok;
    tot.bytes += x->bytes, tot.bytes_first += x->bytes_first;
    tot.traces += x->traces, tot.error_traces += x->error_traces;
    tot.slow_traces += x->slow_traces, tot.traces_ok += x->traces_ok;
    tot.error_traces_ok += x->error_traces_ok, tot.slow_traces_ok += x->slow_traces_ok;
    tot.retries += x->retries, tot.backoff_s += x->backoff_s, tot.behind_s += x->behind_s;
    for (unsigned k = 0; k < HIST_BUCKETS; k++)
      tot.hist[k] += x->hist[k];
    for (unsigned k = 0; k < x->ncauses; k++)
      count_causes(&tot, x->causes[k].cause, x->causes[k].retried, x->causes[k].n);
    if (x->failed) {
      failed = 1;
      fprintf(stderr, "tt_loadgen: connection %u: %s\n", i, x->error);
    }
  }
  double secs = now_s() - t_start;
  lg_links_global_shutdown(&opts);

  figure("loadgen_seconds", secs, "s", NULL);
  figure("loadgen_spans_sent", (double)tot.spans_sent, "spans", NULL);
  figure("loadgen_spans_accepted", (double)tot.spans_accepted, "spans", NULL);
  figure("loadgen_spans_rejected", (double)tot.spans_rejected, "spans",
         ",\"means\":\"partial_success.rejected_spans\"");
  figure("loadgen_spans_refused", (double)tot.spans_refused, "spans",
         ",\"means\":\"in requests refused for good\"");
  figure("loadgen_spans_abandoned", (double)tot.spans_abandoned, "spans",
         ",\"means\":\"in requests still refused for now when the run ended\"");
  figure("loadgen_accepted_spans_per_s", (double)tot.spans_accepted / secs, "spans/s", NULL);
  figure("loadgen_sent_spans_per_s", (double)tot.spans_sent / secs, "spans/s", NULL);
  figure("loadgen_requests", (double)tot.requests, "requests",
         ",\"means\":\"every attempt, retries included\"");
  figure("loadgen_requests_accepted", (double)tot.requests_ok, "requests", NULL);
  figure("loadgen_retries", (double)tot.retries, "requests", NULL);
  for (unsigned k = 0; k < tot.ncauses; k++) {
    char extra[96];
    snprintf(extra, sizeof extra, ",\"cause\":\"%s\",\"retried\":%s", tot.causes[k].cause,
             tot.causes[k].retried ? "true" : "false");
    figure("loadgen_requests_refused", (double)tot.causes[k].n, "requests", extra);
  }
  figure("loadgen_bytes_sent", (double)tot.bytes, "bytes",
         ",\"means\":\"request bodies as sent, retries included\"");
  figure("loadgen_wire_bytes_per_span",
         tot.spans_sent ? (double)tot.bytes_first / (double)tot.spans_sent : 0, "bytes",
         opts.gzip ? ",\"means\":\"gzip'd body bytes / spans, first attempts\""
                   : ",\"means\":\"protobuf body bytes / spans, first attempts\"");
  figure("loadgen_request_bytes_mean", tot.requests ? (double)tot.bytes / (double)tot.requests : 0,
         "bytes", NULL);
  figure("loadgen_traces_sent", (double)tot.traces, "traces", NULL);
  figure("loadgen_error_traces_sent", (double)tot.error_traces, "traces", NULL);
  figure("loadgen_slow_traces_sent", (double)tot.slow_traces, "traces", NULL);
  figure("loadgen_traces_accepted", (double)tot.traces_ok, "traces",
         ",\"means\":\"every fragment accepted\"");
  figure("loadgen_error_traces_accepted", (double)tot.error_traces_ok, "traces", NULL);
  figure("loadgen_slow_traces_accepted", (double)tot.slow_traces_ok, "traces", NULL);
  figure("loadgen_backoff_seconds", tot.backoff_s, "s", ",\"means\":\"summed over connections\"");
  figure("loadgen_behind_schedule_seconds", tot.behind_s, "s",
         ",\"means\":\"--rate schedule skipped, summed over connections\"");
  uint64_t nh = 0;
  for (unsigned k = 0; k < HIST_BUCKETS; k++)
    nh += tot.hist[k];
  static const double qs[] = {0.5, 0.99};
  for (unsigned qi = 0; qi < 2 && nh > 0; qi++) {
    uint64_t rank = (uint64_t)ceil(qs[qi] * (double)nh), cum = 0;
    unsigned k = 0;
    for (; k < HIST_BUCKETS; k++)
      if ((cum += tot.hist[k]) >= rank)
        break;
    char name[48];
    snprintf(name, sizeof name, "loadgen_request_ms_p%d", (int)(qs[qi] * 100));
    figure(name, hist_value(k) * 1000, "ms", ",\"means\":\"bucket upper bound, +9%\"");
  }
  free(c);
  free(th);
  return failed;
}
