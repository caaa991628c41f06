/* OTLP forwarding sink: its entry points; the delivery contract is in sink_otlp.h.
 *
 * Ownership: shard threads call submit, which only appends to the memory queue under `mu` and
 * signals. Everything else, sending, retrying, spilling to and replaying from the spool, is done
 * by the sink's own threads (sink_otlp_delivery.c), so a shard thread never waits on network I/O.
 *
 * The transports are libtailtrace's own (agent/export/transport_http.c,
 * agent/grpc/transport_grpc.c, compiled into the collector too): one OTLP client implementation
 * serves both programs. */
#include "sink_otlp.h"

#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "otlp_split.h"
#include "sink_otlp_int.h"

#define DEFAULT_QUEUE_BYTES (64ull << 20)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_CLOSE_MS 5000
#define DEFAULT_MAX_REQUEST (4ull << 20)

static void spool_report(void *ctx, const char *msg) {
  otlp_sink_t *s = ctx;
  TT_LOG(TT_LOG_WARN, msg, "\"exporter\":\"%s\"", s->name);
}

/* The spool's budget dropped a record: its first 4 bytes are the span count (the record format
 * of sink_otlp_delivery.c's spill). Runs under the spool's lock, maybe with mu held: an atomic
 * counter needs neither. */
static void spool_dropped(void *ctx, const uint8_t *head, size_t n) {
  otlp_sink_t *s = ctx;
  if (n < 4)
    return;
  uint64_t spans = (uint64_t)head[0] | (uint64_t)head[1] << 8 | (uint64_t)head[2] << 16 |
                   (uint64_t)head[3] << 24;
  atomic_fetch_add_explicit(&s->spans_dropped_budget, spans, memory_order_relaxed);
}

static batch_t *batch_new(const uint8_t *req, size_t len, size_t nspans) {
  batch_t *b = malloc(sizeof *b + len);
  if (b == NULL)
    return NULL;
  b->next = NULL;
  b->spill_failed = 0;
  b->nspans = nspans;
  b->len = len;
  memcpy(b->data, req, len);
  return b;
}

/* The pieces of one submitted batch, linked in order before they are queued together. */
typedef struct {
  batch_t *head, *tail;
  size_t n, nspans;
  uint64_t bytes;
} piece_list_t;

static int add_piece(void *ctx, const uint8_t *req, size_t len, size_t nspans) {
  piece_list_t *l = ctx;
  batch_t *b = batch_new(req, len, nspans);
  if (b == NULL)
    return -ENOMEM;
  if (l->tail)
    l->tail->next = b;
  else
    l->head = b;
  l->tail = b;
  l->n++;
  l->nspans += nspans;
  l->bytes += len;
  return 0;
}

static void free_pieces(piece_list_t *l) {
  for (batch_t *b = l->head, *n; b != NULL; b = n) {
    n = b->next;
    free(b);
  }
  *l = (piece_list_t){0};
}

/* Runs on a shard thread: splitting a batch over max_req here (wire scanning and copying, no
 * I/O) means every queued or spooled batch is at most one request, whatever path sends it. */
static int otlp_submit(tt_sink_t *base, const uint8_t *req, size_t len, size_t nspans) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  piece_list_t l = {0};
  tt_otlp_split_stats_t sp = {0};
  if (len > s->max_req) {
    int rc = tt__otlp_split(req, len, s->max_req, add_piece, &l, &sp);
    if (rc == -ENOMEM) {
      free_pieces(&l);
      return rc;
    }
    if (rc != 0) {
      /* Cannot happen with what the shards frame; the backend decides on the whole. */
      free_pieces(&l);
      TT_LOG(TT_LOG_WARN, "cannot split a malformed batch over max_request_size; sent whole",
             "\"exporter\":\"%s\",\"bytes\":%zu", s->name, len);
    }
  }
  if (l.n == 0 && add_piece(&l, req, len, nspans) != 0)
    return -ENOMEM;
  pthread_mutex_lock(&s->mu);
  /* All pieces or none: a trace is not queued in part. */
  if (s->stopping || s->queue_bytes + l.bytes > s->queue_cap) {
    s->st.batches_dropped_queue_full += l.n;
    s->st.spans_dropped_queue_full += l.nspans;
    pthread_mutex_unlock(&s->mu);
    free_pieces(&l);
    return -ENOBUFS;
  }
  if (sp.oversized > 0) {
    s->st.requests_oversized += sp.oversized;
    if (!s->oversize_logged) {
      s->oversize_logged = 1;
      TT_LOG(TT_LOG_WARN, "a span bigger than max_request_size is sent alone in a request over it",
             "\"exporter\":\"%s\",\"max_request_size\":%zu", s->name, s->max_req);
    }
  }
  if (s->tail)
    s->tail->next = l.head;
  else
    s->head = l.head;
  s->tail = l.tail;
  s->queue_bytes += l.bytes;
  s->queue_spans += l.nspans;
  pthread_cond_signal(s->always ? &s->spool_wake : &s->wake);
  pthread_mutex_unlock(&s->mu);
  return 0;
}

/* Waits until everything queued was handed to the backend, up to one export timeout, and never
 * past the stop_by deadline: at shutdown, a backend that holds a request without answering must
 * not use up the time left to spool what it holds. */
static int otlp_flush(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  int64_t until = now_ns() + (int64_t)s->cfg.timeout_ms * 1000000;
  if (s->stop_by_ns != 0 && until > s->stop_by_ns)
    until = s->stop_by_ns;
  struct timespec ts;
  abs_deadline(&ts, until);
  /* While the backend is failing nothing can be delivered; waiting would only stall shutdown.
   * What is queued stays queued (and spooled, with a spool) for when it returns. */
  int rc = s->st.degraded ? -EAGAIN : 0;
  while (rc == 0) {
    if (s->head == NULL && !s->sending) {
      /* The spool is asked without mu, so that a caller here never holds up submit behind
       * the spool's lock; idle_gen catches the sender going idle meanwhile. */
      uint64_t gen = s->idle_gen;
      pthread_mutex_unlock(&s->mu);
      int pending = tt__sink_otlp_spool_has_data(s);
      pthread_mutex_lock(&s->mu);
      if (!pending && s->head == NULL && !s->sending)
        break;
      if (gen != s->idle_gen)
        continue;
    }
    if (pthread_cond_timedwait(&s->idle, &s->mu, &ts) == ETIMEDOUT)
      rc = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static bool otlp_healthy(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  bool ok = !s->st.degraded && !s->st.refusing;
  pthread_mutex_unlock(&s->mu);
  return ok;
}

static void otlp_free(otlp_sink_t *s) {
  while (s->head) {
    batch_t *n = s->head->next;
    free(s->head);
    s->head = n;
  }
  tt__transport_destroy(s->transport);
  tt__spool_close(s->spool);
  tt__otlp_config_free(&s->cfg);
  pthread_cond_destroy(&s->wake);
  pthread_cond_destroy(&s->idle);
  pthread_cond_destroy(&s->spool_wake);
  pthread_mutex_destroy(&s->mu);
  free(s->name);
  free(s);
}

/* Gives the sender until the close deadline to deliver what is queued, then aborts the
 * request in flight so close never waits longer than that (plus the spill to disk). */
static void otlp_close(tt_sink_t *base) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  s->close_deadline_ns =
      s->stop_by_ns != 0 ? s->stop_by_ns : now_ns() + (int64_t)s->close_ms * 1000000;
  pthread_cond_broadcast(&s->wake);
  pthread_cond_broadcast(&s->spool_wake);
  struct timespec ts;
  abs_deadline(&ts, s->close_deadline_ns);
  while (!s->finished && pthread_cond_timedwait(&s->idle, &s->mu, &ts) != ETIMEDOUT) {
  }
  int finished = s->finished;
  pthread_mutex_unlock(&s->mu);
  if (!finished)
    tt__transport_abort(s->transport);
  pthread_join(s->thread, NULL);
  if (s->always)
    pthread_join(s->spooler, NULL); /* done already: the sender waited for it */
  otlp_free(s);
}

void tt__sink_otlp_stats(tt_sink_t *base, tt_otlp_sink_stats_t *out) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  out->queue_bytes = s->queue_bytes;
  out->queue_spans = s->queue_spans;
  out->up = !out->degraded && !out->refusing;
  pthread_mutex_unlock(&s->mu);
  /* The spool has its own lock; asking it without mu keeps a metrics scrape from holding up
   * submit while the spool is busy. */
  if (s->spool != NULL) {
    tt_spool_stats_t ss;
    tt__spool_stats(s->spool, &ss);
    out->spool_bytes = ss.waiting_bytes;
    out->spool_budget_bytes = ss.budget_bytes;
    out->spool_batches = ss.records;
    out->spool_corrupt_records = ss.corrupt_records;
    out->spool_truncated_bytes = ss.truncated_bytes;
    out->batches_dropped_spool_budget = ss.dropped_records;
    out->spans_dropped_spool_budget =
        atomic_load_explicit(&s->spans_dropped_budget, memory_order_relaxed);
    uint64_t now = unix_ms();
    out->oldest_spooled_age_ms =
        ss.records > 0 && ss.oldest_unix_ms <= now ? now - ss.oldest_unix_ms : 0;
  }
}

void tt__sink_otlp_set_close_deadline(tt_sink_t *base, int32_t ms) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  s->close_ms = ms;
  pthread_mutex_unlock(&s->mu);
}

void tt__sink_otlp_stop_by(tt_sink_t *base, int64_t stop_by_ns) {
  otlp_sink_t *s = (otlp_sink_t *)base;
  pthread_mutex_lock(&s->mu);
  s->stop_by_ns = stop_by_ns > 0 ? stop_by_ns : 1;
  pthread_cond_broadcast(&s->wake); /* a backoff or an idle wait re-reads it */
  pthread_mutex_unlock(&s->mu);
}

static const tt_sink_vtable_t otlp_vtable = {
    .name = "otlp",
    .submit = otlp_submit,
    .flush = otlp_flush,
    .healthy = otlp_healthy,
    .close = otlp_close,
};

/* The collector's settings come from its YAML file, never from OTEL_* variables meant for the
 * applications next to it: resolve against an empty environment. */
static const char *no_env(const char *name, void *ud) {
  (void)name;
  (void)ud;
  return NULL;
}

bool tt__sink_is_otlp(const tt_sink_t *s) {
  return s != NULL && s->vt == &otlp_vtable;
}

const char *tt__sink_otlp_name(const tt_sink_t *s) {
  return ((const otlp_sink_t *)s)->name;
}

int tt__sink_otlp_open(const tt_otlp_sink_opts_t *o, tt_sink_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (o->endpoint == NULL || o->endpoint[0] == '\0') {
    snprintf(err, errlen, "exporter %s: no endpoint", o->name ? o->name : "?");
    return -EINVAL;
  }
  otlp_sink_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->base.vt = &otlp_vtable;
  atomic_init(&s->spans_dropped_budget, 0);
  s->name = strdup(o->name ? o->name : "otlp");
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wake, &ca);
  pthread_cond_init(&s->idle, &ca);
  pthread_cond_init(&s->spool_wake, &ca);
  pthread_condattr_destroy(&ca);
  s->queue_cap = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE_BYTES;
  s->max_req = o->max_request_bytes ? (size_t)o->max_request_bytes : DEFAULT_MAX_REQUEST;
  s->close_ms = DEFAULT_CLOSE_MS;
  s->rng = (uint64_t)now_ns() | 1;

  tt_otlp_options_t opts = {0};
  opts.size = sizeof opts;
  opts.protocol =
      o->protocol == TT_FWD_PROTOCOL_GRPC ? TT_OTLP_PROTOCOL_GRPC : TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  opts.endpoint = o->endpoint;
  opts.headers = o->headers;
  opts.timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  opts.compression = o->gzip ? TT_OTLP_COMPRESSION_GZIP : TT_OTLP_COMPRESSION_NONE;
  opts.insecure = o->insecure ? TT_OTLP_INSECURE_TRUE : TT_OTLP_INSECURE_FALSE;
  opts.certificate = o->ca_file;
  opts.client_certificate = o->cert_file;
  opts.client_key = o->key_file;
  int rc = s->name ? tt__otlp_config_resolve(&s->cfg, &opts, no_env, NULL) : -ENOMEM;
  if (rc != 0) {
    snprintf(err, errlen, "exporter %s: cannot resolve its settings", o->name ? o->name : "?");
    otlp_free(s);
    return rc;
  }
  s->retry.initial_ms = o->retry_initial_ms > 0 ? o->retry_initial_ms : 1000;
  s->retry.max_ms = o->retry_max_ms > 0 ? o->retry_max_ms : 30000;
  s->retry.multiplier = 1.5;
  s->retry.jitter = 0.2;
  rc = s->cfg.protocol == TT_OTLP_PROTOCOL_GRPC ? tt__transport_grpc_new(&s->cfg, &s->transport)
                                                : tt__transport_http_new(&s->cfg, &s->transport);
  if (rc != 0) {
    snprintf(err, errlen, "exporter %s: invalid endpoint or TLS files (%s)", s->name, o->endpoint);
    otlp_free(s);
    return rc;
  }
  if (o->spool_dir != NULL && o->spool_dir[0] != '\0') {
    tt_spool_opts_t so = {0};
    so.dir = o->spool_dir;
    so.max_bytes = o->spool_bytes;
    so.fsync = o->spool_fsync;
    so.report = spool_report;
    so.dropped = spool_dropped;
    so.report_ctx = s;
    char serr[256] = "";
    rc = tt__spool_open(&so, &s->spool, serr, sizeof serr);
    if (rc != 0) {
      snprintf(err, errlen, "exporter %s: %s", s->name, serr);
      otlp_free(s);
      return rc;
    }
  }
  if (o->spool_always && s->spool == NULL) {
    snprintf(err, errlen, "exporter %s: spool mode always needs a spool directory", s->name);
    otlp_free(s);
    return -EINVAL;
  }
  s->always = o->spool_always;
  if (s->spool != NULL) {
    tt_spool_stats_t ss;
    tt__spool_stats(s->spool, &ss);
    if (ss.records > 0) {
      /* Before the threads start: nothing else reads `draining` yet. */
      s->draining = 1;
      TT_LOG(TT_LOG_INFO, "spool draining: batches from the previous run",
             "\"exporter\":\"%s\",\"batches\":%llu,\"bytes\":%llu", s->name,
             (unsigned long long)ss.records, (unsigned long long)ss.bytes);
    }
  }
  if (s->always && pthread_create(&s->spooler, NULL, tt__sink_otlp_spooler_main, s) != 0) {
    snprintf(err, errlen, "exporter %s: cannot start its spool thread", s->name);
    otlp_free(s);
    return -EAGAIN;
  }
  if (pthread_create(&s->thread, NULL, tt__sink_otlp_sender_main, s) != 0) {
    snprintf(err, errlen, "exporter %s: cannot start its thread", s->name);
    if (s->always) {
      pthread_mutex_lock(&s->mu);
      s->stopping = 1;
      pthread_cond_broadcast(&s->spool_wake);
      pthread_mutex_unlock(&s->mu);
      pthread_join(s->spooler, NULL);
    }
    otlp_free(s);
    return -EAGAIN;
  }
  *out = &s->base;
  return 0;
}
