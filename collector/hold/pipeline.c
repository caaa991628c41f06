/* The export handler and the pipeline's lifecycle: see pipeline.h. The handler runs on receiver
 * threads; it never touches a trace table, only shard inboxes. */
#include "pipeline_int.h"
#include "sink_otlp.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "siphash.h"
#include "validate.h"
#include "wire.h"

void tt__pipeline_opts_default(tt_pipeline_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->workers = 0;
  o->root_grace_ns = 2000000000ull;
  o->idle_timeout_ns = 15000000000ull;
  o->max_trace_age_ns = 60000000000ull;
  o->drop_delay_ns = 6000000000ull;
  o->tick_ns = 20000000ull;
  o->memory_budget = 256ull << 20;
  o->max_trace_bytes = 16ull << 20;
  o->retry_after_ms = 1000;
  o->late_cache_traces = 200000;
  o->late_cache_ttl_ns = 300000000000ull;
}

static uint64_t mono_clock(void *ctx) {
  (void)ctx;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tt__pipeline_now(struct tt_pipeline_s *p) {
  return p->o.clock(p->o.clock_ctx);
}

unsigned tt__pipeline_shard_of(const uint8_t id[16], unsigned nshards) {
  uint64_t a, b;
  memcpy(&a, id, 8);
  memcpy(&b, id + 8, 8);
  uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
  return (unsigned)((h >> 32) % nshards);
}

static void account(struct tt_pipeline_s *p, int64_t delta) {
  atomic_fetch_add_explicit(&p->bytes_held, delta, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.bytes_held, delta, memory_order_relaxed);
}

void tt__pipeline_account(struct tt_pipeline_s *p, int64_t delta) {
  account(p, delta);
}

void tt__pipeline_account_cache(struct tt_pipeline_s *p, int64_t delta) {
  atomic_fetch_add_explicit(&p->bytes_held, delta, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.cache_bytes, delta, memory_order_relaxed);
}

/* The golden signals' tables are held memory too (not span bytes, so not in bytes_held's
 * gauge): they count against the budget that throttles senders. */
static void red_account(void *ctx, int64_t delta) {
  struct tt_pipeline_s *p = ctx;
  atomic_fetch_add_explicit(&p->bytes_held, delta, memory_order_relaxed);
}

void tt__blob_unref(struct tt_pipeline_s *p, tt_blob_t *b) {
  if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
    return;
  account(p, -(int64_t)(sizeof *b + b->len));
  free(b);
}

void tt__span_block_free(struct tt_pipeline_s *p, span_block_t *b) {
  tt__blob_unref(p, b->res);
  tt__blob_unref(p, b->scope);
  account(p, -(int64_t)b->size);
  free(b);
}

/* Copies the fields of a ResourceSpans / ScopeSpans other than field 2 into a new blob. */
static tt_blob_t *make_blob(struct tt_pipeline_s *p, const uint8_t *msg, size_t len,
                            bool is_resource, uint64_t received_ns) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  size_t total = 0;
  tt__wire_reader_init(&r, msg, len);
  while (tt__wire_next(&r, &f) == 1)
    if (f.field != 2)
      total += (size_t)(f.end - f.start);
  tt_blob_t *b = malloc(sizeof *b + total);
  if (b == NULL)
    return NULL;
  atomic_init(&b->refs, 1);
  b->len = (uint32_t)total;
  b->resource = b->service = NULL;
  b->resource_len = b->service_len = 0;
  b->received_ns = received_ns;
  size_t off = 0;
  tt__wire_reader_init(&r, msg, len);
  while (tt__wire_next(&r, &f) == 1) {
    if (f.field == 2)
      continue;
    size_t n = (size_t)(f.end - f.start);
    memcpy(b->data + off, f.start, n);
    if (is_resource && f.field == 1 && f.wt == TT_WT_LEN) {
      b->resource = b->data + off + (size_t)(f.p - f.start);
      b->resource_len = (uint32_t)f.len;
    }
    off += n;
  }
  if (b->resource != NULL) {
    tt_any_t v;
    if (tt__wire_find_attr(b->resource, b->resource_len, 1, "service.name", &v) == 1 &&
        v.type == TT_ANY_STRING) {
      b->service = v.s;
      b->service_len = (uint32_t)v.slen;
    }
  }
  account(p, (int64_t)(sizeof *b + total));
  return b;
}

/* Per-request staging: spans grouped by shard before one push per shard. */
typedef struct {
  span_block_t *head;
  span_block_t **tail;
  size_t n; /* spans */
} stage_t;

/* What a request's scan found: spans accepted, and runs of consecutive spans sharing a trace id,
 * an upper bound on how many new traces (each a record on top of its spans) the request can
 * start. */
/* An accepted span waiting for its run to end: the run's spans then get one block. */
typedef struct {
  const uint8_t *p; /* the span's bytes in the request */
  uint32_t len;
  bool root;
  uint8_t signals, bits;
  uint64_t span_id, start_ns, end_ns;
} pend_t;

#define RUN_MAX 64

typedef struct {
  uint64_t accepted;
  uint64_t bad_utf8; /* of the rejected spans, those refused for a string that is not UTF-8 */
  uint64_t runs;
  uint64_t bytes; /* what the accepted spans and their shared blobs added to bytes_held */
  uint8_t last_trace[16];
  uint64_t received_ns; /* the request's receipt time, stamped on its blobs */
  pend_t run[RUN_MAX];  /* the current run: spans of trace last_trace */
  size_t nrun;
  tt_blob_t *run_res, *run_scope; /* the run's blobs (not referenced until flushed) */
} scan_count_t;

/* Gives the current run its block and stages it for its shard. Returns 0 or -ENOMEM (the run's
 * blob references are then released). */
static int flush_run(struct tt_pipeline_s *p, scan_count_t *cnt, stage_t *stages) {
  if (cnt->nrun == 0)
    return 0;
  size_t size = (sizeof(span_block_t) + 7) & ~(size_t)7;
  for (size_t i = 0; i < cnt->nrun; i++)
    size += span_rec_size(cnt->run[i].len);
  span_block_t *b = malloc(size);
  if (b == NULL) {
    cnt->nrun = 0;
    return -ENOMEM;
  }
  b->next = NULL;
  b->size = (uint32_t)size;
  b->n = b->nlive = (uint16_t)cnt->nrun;
  memcpy(b->trace_id, cnt->last_trace, 16);
  atomic_fetch_add(&cnt->run_res->refs, 1);
  atomic_fetch_add(&cnt->run_scope->refs, 1);
  b->res = cnt->run_res;
  b->scope = cnt->run_scope;
  b->root = b->any_trace_state = false;
  tt__trace_summary_init(&b->sum);
  span_rec_t *rec = span_block_first(b);
  for (size_t i = 0; i < cnt->nrun; i++, rec = span_rec_next(rec)) {
    const pend_t *e = &cnt->run[i];
    rec->span_id = e->span_id;
    rec->len = e->len;
    rec->signals = e->signals;
    rec->bits = e->bits;
    memcpy(rec->data, e->p, e->len);
    tt__trace_summary_add(&b->sum, e->start_ns, e->end_ns, !(e->bits & REC_HAS_PARENT), e->signals);
    b->root |= e->root;
    b->any_trace_state |= (e->bits & REC_HAS_TRACE_STATE) != 0;
  }
  stage_t *st = &stages[tt__pipeline_shard_of(b->trace_id, p->nshards)];
  *st->tail = b;
  st->tail = &b->next;
  st->n += cnt->nrun;
  account(p, (int64_t)size);
  cnt->bytes += size;
  cnt->nrun = 0;
  return 0;
}

static void note_reject(tt_export_result_t *res, const char *why) {
  if (res->rejected_spans++ == 0)
    snprintf(res->message, sizeof res->message, "%s", why);
}

/* A string that is not UTF-8 refuses n spans: one span's own string, or a resource's or scope's,
 * which every span under it carries. Backends that decode with Go's protobuf would refuse the
 * whole batch those spans are later forwarded in, so they never reach a sink. */
static void note_bad_utf8(tt_export_result_t *res, scan_count_t *cnt, const char *what,
                          uint64_t n) {
  if (n == 0)
    return;
  if (res->rejected_spans == 0)
    snprintf(res->message, sizeof res->message,
             "invalid UTF-8 in %s: protobuf strings must be valid UTF-8", what);
  res->rejected_spans += (int64_t)n;
  cnt->bad_utf8 += n;
}

/* Checks every span (field 2) of a ScopeSpans payload whose spans are all refused for a string
 * their scope or resource shares: they are still walked, since malformed bytes in any of them
 * refuse the whole request. Returns how many there are, or -EINVAL. */
static int64_t check_refused_spans(const uint8_t *ss, size_t len) {
  const char *what;
  if (tt__wire_scope_spans_check(ss, len, &what) == -EINVAL)
    return -EINVAL;
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  int64_t n = 0;
  tt__wire_reader_init(&r, ss, len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 2)
      continue;
    tt_span_facts_t sf;
    if (f.wt != TT_WT_LEN || tt__wire_scan_span(f.p, f.len, &sf) == -EINVAL)
      return -EINVAL;
    n++;
  }
  return rc < 0 ? -EINVAL : n;
}

/* Scans one ScopeSpans; appends valid spans to the stages. Returns 0, -EINVAL, -ENOMEM. */
static int scan_scope(struct tt_pipeline_s *p, const uint8_t *msg, size_t len, tt_blob_t **res,
                      const uint8_t *rs, size_t rslen, stage_t *stages, tt_export_result_t *res_out,
                      scan_count_t *cnt) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  tt_blob_t *scope = NULL;
  const char *what;
  int urc = tt__wire_scope_spans_check(msg, len, &what);
  if (urc == -EILSEQ) {
    int64_t n = check_refused_spans(msg, len);
    if (n < 0)
      return -EINVAL;
    note_bad_utf8(res_out, cnt, what, (uint64_t)n);
    return 0;
  }
  if (urc != 0)
    return -EINVAL;
  tt__wire_reader_init(&r, msg, len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 2)
      continue;
    if (f.wt != TT_WT_LEN) {
      rc = -EINVAL;
      break;
    }
    tt_span_facts_t sf;
    const char *why = "malformed span";
    int src = tt__wire_scan_span(f.p, f.len, &sf);
    if (src == -EINVAL) {
      rc = -EINVAL;
      break;
    }
    if (src == -EILSEQ) {
      note_bad_utf8(res_out, cnt, sf.invalid_utf8, 1);
      continue;
    }
    if (!tt__wire_span_ids_valid(&sf, &why)) {
      /* One bad span is refused alone; its neighbours are still accepted. */
      note_reject(res_out, why);
      continue;
    }
    if (*res == NULL) {
      if ((*res = make_blob(p, rs, rslen, true, cnt->received_ns)) == NULL) {
        rc = -ENOMEM;
        break;
      }
      cnt->bytes += sizeof **res + (*res)->len;
    }
    if (scope == NULL) {
      if ((scope = make_blob(p, msg, len, false, cnt->received_ns)) == NULL) {
        rc = -ENOMEM;
        break;
      }
      cnt->bytes += sizeof *scope + scope->len;
    }
    bool same = cnt->accepted > 0 && memcmp(cnt->last_trace, sf.trace_id, 16) == 0;
    bool same_blobs = cnt->run_res == *res && cnt->run_scope == scope;
    if ((!same || !same_blobs || cnt->nrun == RUN_MAX) && flush_run(p, cnt, stages) != 0) {
      rc = -ENOMEM;
      break;
    }
    if (!same) {
      cnt->runs++;
      memcpy(cnt->last_trace, sf.trace_id, 16);
    }
    cnt->accepted++;
    pend_t *e = &cnt->run[cnt->nrun++];
    e->p = f.p;
    e->len = (uint32_t)f.len;
    memcpy(&e->span_id, sf.span_id, 8);
    e->start_ns = sf.start_ns;
    e->end_ns = sf.end_ns;
    e->signals = (uint8_t)sf.signals;
    e->bits = (uint8_t)((sf.parent_span_id_len ? REC_HAS_PARENT : 0) |
                        (sf.trace_state_len ? REC_HAS_TRACE_STATE : 0));
    /* A span whose parent is in another process starts this process's part of the trace: for a
     * sidecar that sees one service, it is the root it will ever see, so it starts the grace
     * timer as a root does (OTLP span flags: context has is_remote, and is remote). */
    e->root = sf.parent_span_id_len == 0 ||
              (sf.flags & (TT_SPAN_FLAGS_HAS_IS_REMOTE | TT_SPAN_FLAGS_IS_REMOTE)) ==
                  (TT_SPAN_FLAGS_HAS_IS_REMOTE | TT_SPAN_FLAGS_IS_REMOTE);
    cnt->run_res = *res;
    cnt->run_scope = scope;
    tt__red_span(p->o.red, &sf, f.p, f.len, (*res)->service, (*res)->service_len, e->root);
  }
  /* The run gets its block while the scope blob is alive (a run never crosses scopes); then the
   * scan's own reference goes: the blocks hold theirs. */
  if (rc >= 0 && flush_run(p, cnt, stages) != 0)
    rc = -ENOMEM;
  tt__blob_unref(p, scope);
  return rc < 0 ? (rc == -ENOMEM ? -ENOMEM : -EINVAL) : 0;
}

/* Walks the request once: framing (as the request validator checks it), UTF-8, span facts. */
static int scan_request(struct tt_pipeline_s *p, const tt_export_request_t *req, stage_t *stages,
                        tt_export_result_t *res, scan_count_t *cnt) {
  tt_wire_reader_t r;
  tt_wire_field_t f;
  int rc;
  tt__wire_reader_init(&r, req->data, req->len);
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    if (f.field != 1)
      continue;
    if (f.wt != TT_WT_LEN)
      return -EINVAL;
    const char *what;
    int urc = tt__wire_resource_spans_check(f.p, f.len, &what);
    if (urc == -EINVAL)
      return -EINVAL;
    tt_blob_t *rb = NULL;
    tt_wire_reader_t rr;
    tt_wire_field_t rf;
    int rrc;
    uint64_t refused = 0;
    tt__wire_reader_init(&rr, f.p, f.len);
    while ((rrc = tt__wire_next(&rr, &rf)) == 1) {
      if (rf.field != 2)
        continue;
      int src;
      if (urc == -EILSEQ) {
        /* The resource is every one of its spans' own: all of them are refused. */
        int64_t n = check_refused_spans(rf.p, rf.len);
        src = n < 0 ? -EINVAL : 0;
        refused += n < 0 ? 0 : (uint64_t)n;
      } else {
        src = scan_scope(p, rf.p, rf.len, &rb, f.p, f.len, stages, res, cnt);
      }
      if (src != 0) {
        tt__blob_unref(p, rb);
        return src;
      }
    }
    tt__blob_unref(p, rb);
    if (rrc < 0)
      return -EINVAL;
    if (urc == -EILSEQ)
      note_bad_utf8(res, cnt, what, refused);
  }
  /* Every run was flushed at the end of its ScopeSpans (scan_scope). */
  return rc < 0 ? -EINVAL : 0;
}

static void free_stages(struct tt_pipeline_s *p, stage_t *st) {
  for (unsigned i = 0; i < p->nshards; i++)
    for (span_block_t *b = st[i].head, *n; b != NULL; b = n) {
      n = b->next;
      tt__span_block_free(p, b);
    }
  free(st);
}

/* Answers TT_EXPORT_THROTTLED and asks the shards to make room; ends the handler's call. */
typedef enum { THROTTLE_MEMORY, THROTTLE_SHARE, THROTTLE_BACKLOG } throttle_t;

static void throttle(struct tt_pipeline_s *p, const tt_export_request_t *req,
                     tt_export_result_t *res, throttle_t why) {
  if (why != THROTTLE_BACKLOG)
    atomic_store(&p->pressure, true);
  for (unsigned i = 0; i < p->nshards; i++)
    pthread_cond_signal(&p->shards[i].wake);
  atomic_fetch_sub(&p->inflight, 1);
  atomic_fetch_add_explicit(why == THROTTLE_SHARE     ? &p->metrics.requests_throttled_share
                            : why == THROTTLE_BACKLOG ? &p->metrics.requests_throttled_backlog
                                                      : &p->metrics.requests_throttled,
                            1, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.bytes_throttled, req->len, memory_order_relaxed);
  memset(res, 0, sizeof *res);
  res->status = TT_EXPORT_THROTTLED;
  res->retry_after_ms = p->o.retry_after_ms;
  snprintf(res->message, sizeof res->message, "%s",
           why == THROTTLE_SHARE
               ? "memory budget nearly reached and this sender has had more than its share; "
                 "retry later"
           : why == THROTTLE_BACKLOG ? "the collector is behind on deciding; retry later"
                                     : "memory budget reached; retry later");
}

/* Back-pressure from the shards: one whose inbox has grown by TT_INBOX_MAX_SPANS since it last
 * took it is falling behind what the receivers accept, and senders wait before memory has to
 * make them. */
static bool shards_behind(struct tt_pipeline_s *p) {
  for (unsigned i = 0; i < p->nshards; i++)
    if (atomic_load_explicit(&p->shards[i].backlog, memory_order_relaxed) >= TT_INBOX_MAX_SPANS)
      return true;
  return false;
}

/* A request that alone would cross the budget can never be taken, however long its sender
 * waits: answering THROTTLED would make it retry forever. It is refused for good, the limit named.
 */
static void too_large(struct tt_pipeline_s *p, tt_export_result_t *res, uint64_t cost) {
  atomic_fetch_sub(&p->inflight, 1);
  atomic_fetch_add_explicit(&p->metrics.requests_too_large, 1, memory_order_relaxed);
  memset(res, 0, sizeof *res);
  res->status = TT_EXPORT_TOO_LARGE;
  snprintf(res->message, sizeof res->message,
           "request needs about %llu bytes held, more than memory.budget (%llu bytes): split it "
           "into smaller requests",
           (unsigned long long)cost, (unsigned long long)p->o.memory_budget);
}

void tt__pipeline_handle(void *ctx, const tt_export_request_t *req, tt_export_result_t *res) {
  struct tt_pipeline_s *p = ctx;
  memset(res, 0, sizeof *res);
  atomic_fetch_add(&p->inflight, 1);
  atomic_fetch_add_explicit(&p->metrics.requests, 1, memory_order_relaxed);
  if (atomic_load(&p->stopping)) {
    atomic_fetch_sub(&p->inflight, 1);
    atomic_fetch_add_explicit(&p->metrics.requests_unavailable, 1, memory_order_relaxed);
    res->status = TT_EXPORT_UNAVAILABLE;
    res->retry_after_ms = p->o.retry_after_ms;
    snprintf(res->message, sizeof res->message, "collector is shutting down");
    return;
  }
  /* Held bytes cost about the request's size plus per-span overhead: refuse before copying when
   * that would cross the budget, and ask the shards to make room. The sender retries; nothing
   * is lost. */
  int64_t held = atomic_load_explicit(&p->bytes_held, memory_order_relaxed);
  if (req->len * 2 > p->o.memory_budget) {
    too_large(p, res, req->len * 2);
    return;
  }
  uint64_t now_ns = tt__pipeline_now(p), now_ms = now_ns / 1000000;
  if ((uint64_t)held + req->len * 2 > p->o.memory_budget) {
    tt__fair_seen(p->fair, req->peer, now_ms);
    throttle(p, req, res, THROTTLE_MEMORY);
    return;
  }
  /* The last eighth of the budget goes to senders within their share, so one that retries at
   * once cannot take every byte the shards free from one that waits as told (fair.h). */
  if ((uint64_t)held + req->len * 2 > p->o.memory_budget - p->o.memory_budget / 8) {
    if (!tt__fair_admit(p->fair, req->peer, req->len, now_ms)) {
      throttle(p, req, res, THROTTLE_SHARE);
      return;
    }
  } else {
    tt__fair_note(p->fair, req->peer, req->len, now_ms);
  }
  if (shards_behind(p)) {
    throttle(p, req, res, THROTTLE_BACKLOG);
    return;
  }
  stage_t *st = calloc(p->nshards, sizeof *st);
  if (st == NULL) {
    atomic_fetch_sub(&p->inflight, 1);
    res->status = TT_EXPORT_UNAVAILABLE;
    res->retry_after_ms = p->o.retry_after_ms;
    snprintf(res->message, sizeof res->message, "out of memory");
    return;
  }
  for (unsigned i = 0; i < p->nshards; i++)
    st[i].tail = &st[i].head;
  scan_count_t cnt;
  cnt.accepted = cnt.bad_utf8 = cnt.runs = cnt.bytes = 0;
  cnt.nrun = 0;
  cnt.run_res = cnt.run_scope = NULL;
  cnt.received_ns = now_ns;
  tt__red_begin(p->o.red);
  int rc = scan_request(p, req, st, res, &cnt);
  uint64_t accepted = cnt.accepted;
  /* Twice the request's size is a fair guess for ordinary spans, but a request of many tiny
   * single-span traces costs more than five times its size once each trace has its record. The
   * scan has counted its spans and blobs in bytes_held by now; add a record a run of trace ids
   * (at least one a new trace) and refuse what would cross the budget rather than overshoot it. */
  uint64_t own = cnt.bytes + cnt.runs * TT_TRACE_RECORD_COST;
  if (rc == 0 && own > p->o.memory_budget) {
    free_stages(p, st);
    too_large(p, res, own);
    return;
  }
  if (rc == 0 && (uint64_t)atomic_load_explicit(&p->bytes_held, memory_order_relaxed) +
                         cnt.runs * TT_TRACE_RECORD_COST >
                     p->o.memory_budget) {
    free_stages(p, st);
    throttle(p, req, res, THROTTLE_MEMORY);
    return;
  }
  if (rc != 0) {
    free_stages(p, st);
    atomic_fetch_sub(&p->inflight, 1);
    if (rc == -EINVAL) {
      atomic_fetch_add_explicit(&p->metrics.requests_invalid, 1, memory_order_relaxed);
      res->status = TT_EXPORT_INVALID;
      res->rejected_spans = 0;
      /* The walk knows only that the bytes are malformed; the validator says where and how. */
      char err[200];
      if (tt__otlp_validate_export_request(req->data, req->len, err, sizeof err) == 0)
        snprintf(err, sizeof err, "protobuf wire error");
      snprintf(res->message, sizeof res->message, "malformed ExportTraceServiceRequest: %s", err);
    } else {
      res->status = TT_EXPORT_UNAVAILABLE;
      res->retry_after_ms = p->o.retry_after_ms;
      snprintf(res->message, sizeof res->message, "out of memory");
    }
    return;
  }
  /* Accepted: the golden signals count its spans (a refused request comes back). */
  tt__red_commit(p->o.red);
  for (unsigned i = 0; i < p->nshards; i++) {
    if (st[i].head == NULL)
      continue;
    shard_t *s = &p->shards[i];
    pthread_mutex_lock(&s->mu);
    *s->in_tail = st[i].head;
    s->in_tail = st[i].tail;
    /* The shard takes its inbox every tick; it is woken early only for a long inbox. A wake-up
     * per request cost more than the spans it brought (two context switches, cold caches). */
    size_t before = s->in_n;
    s->in_n += st[i].n;
    atomic_store_explicit(&s->backlog, s->in_n, memory_order_relaxed);
    if (before < TT_INBOX_WAKE_SPANS && s->in_n >= TT_INBOX_WAKE_SPANS)
      pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
  }
  free(st);
  /* Counted once per request, not per span: the counters' cache lines are shared by every
   * receiver thread. */
  atomic_fetch_add_explicit(&p->metrics.spans_received, accepted + (uint64_t)res->rejected_spans,
                            memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.spans_refused_invalid,
                            (uint64_t)res->rejected_spans - cnt.bad_utf8, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.spans_refused_utf8, cnt.bad_utf8, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.spans_accepted, accepted, memory_order_relaxed);
  res->status = TT_EXPORT_OK;
  atomic_fetch_sub(&p->inflight, 1);
}

/* The bus thread's answers go to the shard that asked (owner), in one lock per shard and batch;
 * the shard takes them in its next round. The array is bounded by the look-ups the shards asked
 * for, which the bus's own queue bounds. */
static void bus_answer(void *ctx, const tt_bus_answer_t *a, size_t n) {
  struct tt_pipeline_s *p = ctx;
  for (size_t i = 0; i < n;) {
    unsigned owner = a[i].owner < p->nshards ? a[i].owner : 0;
    size_t j = i + 1;
    while (j < n && a[j].owner == a[i].owner)
      j++;
    shard_t *s = &p->shards[owner];
    pthread_mutex_lock(&s->mu);
    if (s->nans + (j - i) > s->ans_cap) {
      size_t cap = s->ans_cap ? s->ans_cap : 64;
      while (cap < s->nans + (j - i))
        cap *= 2;
      tt_bus_answer_t *grown = realloc(s->ans, cap * sizeof *grown);
      if (grown == NULL) {
        /* The traces stay pending and are decided locally when their wait ends. */
        pthread_mutex_unlock(&s->mu);
        i = j;
        continue;
      }
      s->ans = grown;
      s->ans_cap = cap;
    }
    memcpy(s->ans + s->nans, a + i, (j - i) * sizeof *a);
    s->nans += j - i;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
    i = j;
  }
}

int tt__pipeline_new(const tt_pipeline_opts_t *o, tt_pipeline_t **out) {
  struct tt_pipeline_s *p = calloc(1, sizeof *p);
  if (p == NULL)
    return -ENOMEM;
  p->o = *o;
  tt__metrics_init(&p->metrics, o->root_grace_ns, o->memory_budget);
  tt__siphash_key(p->hash_key);
  p->fair = tt__fair_new();
  p->sink_counts = calloc(o->nsinks ? o->nsinks : 1, sizeof *p->sink_counts);
  if (p->fair == NULL || p->sink_counts == NULL) {
    tt__fair_free(p->fair);
    free(p->sink_counts);
    free(p);
    return -ENOMEM;
  }
  if (p->o.red != NULL)
    tt__red_bind_account(p->o.red, red_account, p);
  if (p->o.clock == NULL)
    p->o.clock = mono_clock;
  if (p->o.tick_ns == 0)
    p->o.tick_ns = 20000000ull;
  unsigned n = o->workers;
  if (n == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (unsigned)c : 1;
  }
  p->nshards = n;
  pthread_mutex_init(&p->pol_mu, NULL);
  if (o->policies != NULL) {
    tt__policy_set_ref(o->policies);
    p->policies = o->policies;
  } else {
    p->policies = tt__policy_set_default();
  }
  p->o.policies = NULL;
  p->shards = calloc(n, sizeof *p->shards);
  if (p->shards == NULL || p->policies == NULL) {
    tt__policy_set_unref(p->policies);
    free(p->shards);
    free(p);
    return -ENOMEM;
  }
  for (unsigned i = 0; i < n; i++) {
    shard_t *s = &p->shards[i];
    s->p = p;
    s->idx = i;
    pthread_mutex_init(&s->mu, NULL);
    /* Shards wait with timeouts on the monotonic clock: a wall-clock step must not stall the
     * timing wheel. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->done, NULL);
    s->in_tail = &s->in_head;
  }
  if (o->bus_factory != NULL) {
    int rc = o->bus_factory(o->bus_factory_ctx, bus_answer, p, &p->bus);
    if (rc != 0) {
      p->bus = NULL;
      tt__pipeline_free(p);
      return rc;
    }
  }
  if (p->o.bus_wait_ns == 0)
    p->o.bus_wait_ns = 1000000000ull;
  for (unsigned i = 0; i < n; i++) {
    if (pthread_create(&p->shards[i].thread, NULL, tt__shard_main, &p->shards[i]) != 0) {
      tt__pipeline_free(p);
      return -EAGAIN;
    }
    p->shards[i].started = true;
  }
  *out = p;
  return 0;
}

tt_bus_t *tt__pipeline_bus(tt_pipeline_t *p) {
  return p->bus;
}

void tt__pipeline_set_policies(tt_pipeline_t *p, tt_policy_set_t *s) {
  tt__policy_set_ref(s);
  pthread_mutex_lock(&p->pol_mu);
  tt_policy_set_t *old = p->policies;
  p->policies = s;
  pthread_mutex_unlock(&p->pol_mu);
  tt__policy_set_unref(old);
}

void tt__pipeline_sync(tt_pipeline_t *p) {
  for (unsigned i = 0; i < p->nshards; i++) {
    shard_t *s = &p->shards[i];
    pthread_mutex_lock(&s->mu);
    uint64_t target = ++s->sync_req;
    pthread_cond_signal(&s->wake);
    while (s->sync_done < target && !s->finished)
      pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
  }
}

void tt__pipeline_shutdown(tt_pipeline_t *p) {
  if (p->shut)
    return;
  p->shut = true;
  atomic_store(&p->stopping, true);
  /* Requests already past the stopping check finish their push before the shards stop, so their
   * spans are decided too rather than stranded in an inbox. */
  while (atomic_load(&p->inflight) > 0)
    sched_yield();
  for (unsigned i = 0; i < p->nshards; i++) {
    shard_t *s = &p->shards[i];
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->mu);
  }
  for (unsigned i = 0; i < p->nshards; i++)
    if (p->shards[i].started) {
      pthread_join(p->shards[i].thread, NULL);
      p->shards[i].started = false;
    }
  for (size_t i = 0; i < p->o.nsinks; i++)
    if (p->o.sinks[i]->vt->flush != NULL)
      p->o.sinks[i]->vt->flush(p->o.sinks[i]);
}

void tt__pipeline_free(tt_pipeline_t *p) {
  if (p == NULL)
    return;
  tt__pipeline_shutdown(p);
  /* After the shards, and not in shutdown, where the admin port may still read the bus's
   * counters: the keeps the shards shared while deciding everything at shutdown are flushed to
   * the store (bounded by its timeout), and look-ups still queued are answered into arrays that
   * tt__shard_destroy frees. */
  tt__bus_free(p->bus);
  p->bus = NULL;
  for (unsigned i = 0; i < p->nshards; i++) {
    shard_t *s = &p->shards[i];
    tt__shard_destroy(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
  }
  free(p->shards);
  tt__policy_set_unref(p->policies);
  pthread_mutex_destroy(&p->pol_mu);
  tt__fair_free(p->fair);
  free(p->sink_counts);
  free(p);
}

tt_red_t *tt__pipeline_red(tt_pipeline_t *p) {
  return p->o.red;
}

tt_metrics_t *tt__pipeline_metrics(tt_pipeline_t *p) {
  return &p->metrics;
}

const tt_sink_counts_t *tt__pipeline_sink_counts(tt_pipeline_t *p, size_t i) {
  return i < p->o.nsinks ? &p->sink_counts[i] : NULL;
}

int tt__pipeline_render_sink_metrics(tt_pipeline_t *p, tt_buf_t *out) {
  const char *small[8] = {0};
  const char **names = p->o.nsinks <= 8 ? small : malloc(p->o.nsinks * sizeof *names);
  if (names == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < p->o.nsinks; i++)
    names[i] = tt__sink_is_otlp(p->o.sinks[i]) ? tt__sink_otlp_name(p->o.sinks[i])
                                               : p->o.sinks[i]->vt->name;
  int rc = tt__metrics_render_sinks(p->sink_counts, names, p->o.nsinks, out);
  if (names != small)
    free(names);
  return rc;
}

uint64_t tt__pipeline_buffer_bytes(tt_pipeline_t *p) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < p->nshards; i++)
    sum += atomic_load_explicit(&p->shards[i].buffer_bytes, memory_order_relaxed);
  return sum;
}

tt_sink_t *const *tt__pipeline_sinks(tt_pipeline_t *p, size_t *n) {
  *n = p->o.nsinks;
  return p->o.sinks;
}

bool tt__pipeline_sinks_healthy(tt_pipeline_t *p) {
  for (size_t i = 0; i < p->o.nsinks; i++)
    if (p->o.sinks[i]->vt->healthy != NULL && !p->o.sinks[i]->vt->healthy(p->o.sinks[i]))
      return false;
  return true;
}
