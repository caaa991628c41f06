/* A shard: one thread that owns a trace table, a timing wheel and a cache of decided trace ids.
 * Nothing here is shared with other threads except the inbox (under shard->mu), the byte
 * counters (atomics) and the policy set (refcounted). */
#include "pipeline_int.h"

#include <errno.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sampling.h"
#include "siphash.h"
#include "wire.h"

#define OUT_FLUSH_BYTES (4u << 20)
/* What each framing buffer may keep between rounds: see trim_buffers. */
#define BUF_KEEP_BYTES (1u << 20)
/* The hash table's first size, and the smallest it shrinks to. */
#define MIN_BUCKETS 1024

/* ---- trace table ---------------------------------------------------------------------------- */

/* Trace ids come from clients: keyed (siphash.h), so that crafted ids cannot share a bucket.
 * Computed once a span (and kept in the trace for rehashing and removal): 32 bits index tables
 * of up to 2^32 buckets. */
static uint32_t hash_id(const shard_t *s, const uint8_t id[16]) {
  return (uint32_t)tt__siphash(s->p->hash_key, id, 16);
}

static trace_t *lookup(shard_t *s, const uint8_t id[16], uint32_t h) {
  if (s->nbuckets == 0)
    return NULL;
  for (trace_t *t = s->buckets[h & (s->nbuckets - 1)]; t != NULL; t = t->hnext)
    if (t->hash == h && memcmp(t->id, id, 16) == 0)
      return t;
  return NULL;
}

static int rehash(shard_t *s, size_t n) {
  trace_t **b = calloc(n, sizeof *b);
  if (b == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < s->nbuckets; i++)
    for (trace_t *t = s->buckets[i], *next; t != NULL; t = next) {
      next = t->hnext;
      size_t h = t->hash & (n - 1);
      t->hnext = b[h];
      b[h] = t;
    }
  free(s->buckets);
  s->buckets = b;
  s->nbuckets = n;
  return 0;
}

static int grow(shard_t *s) {
  return rehash(s, s->nbuckets ? s->nbuckets * 2 : MIN_BUCKETS);
}

/* A burst of traces doubles the table; once they are decided and forgotten, a table eight times
 * too big goes back to a quarter (load under 1/2 again, so the next insert does not grow it).
 * Without this the buckets of the largest burst would stay for good, beyond what the traces'
 * records count for the table. A failed shrink keeps the bigger table. */
static void maybe_shrink(shard_t *s) {
  if (s->nbuckets > MIN_BUCKETS && s->ntraces < s->nbuckets / 8)
    rehash(s, s->nbuckets / 4 > MIN_BUCKETS ? s->nbuckets / 4 : MIN_BUCKETS);
}

static trace_t *insert(shard_t *s, const uint8_t id[16], uint32_t hash) {
  if (s->ntraces >= s->nbuckets && grow(s) != 0 && s->nbuckets == 0)
    return NULL;
  trace_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return NULL;
  memcpy(t->id, id, 16);
  t->tail = &t->blocks;
  tt__trace_summary_init(&t->sum);
  t->hash = hash;
  size_t h = hash & (s->nbuckets - 1);
  t->hnext = s->buckets[h];
  s->buckets[h] = t;
  s->ntraces++;
  return t;
}

static void remove_trace(shard_t *s, trace_t *t) {
  trace_t **pp = &s->buckets[t->hash & (s->nbuckets - 1)];
  while (*pp != t)
    pp = &(*pp)->hnext;
  *pp = t->hnext;
  s->ntraces--;
  free(t);
}

/* ---- timing wheel --------------------------------------------------------------------------- */
/* A hashed wheel: slot = deadline tick mod slots; an entry further than one revolution away waits
 * in its slot for later rounds. Rescheduling on every span is O(1); expiring is O(due entries +
 * entries sharing their slots), never a scan of the table. */

static void wheel_unlink(shard_t *s, trace_t *t) {
  if (t->lprev != NULL)
    t->lprev->lnext = t->lnext;
  else
    s->wheel[(t->deadline_ns / s->p->o.tick_ns) % TT_WHEEL_SLOTS] = t->lnext;
  if (t->lnext != NULL)
    t->lnext->lprev = t->lprev;
  t->lprev = t->lnext = NULL;
}

static void wheel_link(shard_t *s, trace_t *t) {
  trace_t **slot = &s->wheel[(t->deadline_ns / s->p->o.tick_ns) % TT_WHEEL_SLOTS];
  t->lprev = NULL;
  t->lnext = *slot;
  if (*slot != NULL)
    (*slot)->lprev = t;
  *slot = t;
}

static void schedule(shard_t *s, trace_t *t, bool linked) {
  const tt_pipeline_opts_t *o = &s->p->o;
  uint64_t d = t->last_seen_ns + o->idle_timeout_ns;
  uint8_t trig = TT_TRIG_IDLE;
  if (t->first_seen_ns + o->max_trace_age_ns < d) {
    d = t->first_seen_ns + o->max_trace_age_ns;
    trig = TT_TRIG_MAX_AGE;
  }
  if (t->root_seen_ns != 0 && t->root_seen_ns + o->root_grace_ns < d) {
    d = t->root_seen_ns + o->root_grace_ns;
    trig = TT_TRIG_ROOT_GRACE;
  }
  /* Times are receipt times, so a shard that lags may find a deadline already behind its wheel;
   * the wheel's current slot is the earliest it will still visit. */
  uint64_t floor = s->wheel_tick * o->tick_ns;
  if (s->wheel_tick != 0 && d < floor)
    d = floor;
  if (linked && d == t->deadline_ns) {
    t->deadline_trigger = trig;
    return;
  }
  if (linked)
    wheel_unlink(s, t);
  t->deadline_ns = d;
  t->deadline_trigger = trig;
  wheel_link(s, t);
}

/* ---- span ids: duplicates ------------------------------------------------------------------- */
/* A client that retries a batch we already accepted (its answer was lost, or it timed out) sends
 * spans we hold. A held trace checks each new span id: by a linear scan while it is small, then
 * through an open-addressing set whose bytes count against the budget like the spans. A kept
 * trace's tombstone remembers only its last LATE_IDS emitted span ids (a retried batch is
 * usually the latest one), so the cache stays small; an older duplicate arriving late is
 * exported again. */

/* Up to 16 spans the scan is cheap (a run's records share one block, so the list is mostly
 * contiguous) and a set would cost a typical 10-span trace 256 bytes, 26 a span. */
#define LINEAR_IDS 16
#define LATE_IDS 16

/* Span ids come from clients too: keyed like trace ids. */
static uint32_t id_slot(const uint8_t key[16], uint64_t id, uint32_t cap) {
  return (uint32_t)tt__siphash(key, &id, sizeof id) & (cap - 1);
}

/* Adds id to the set; returns false when it was already there. 0 marks an empty slot. */
static bool idset_add(const uint8_t key[16], uint64_t *set, uint32_t cap, uint64_t id) {
  for (uint32_t i = id_slot(key, id, cap);; i = (i + 1) & (cap - 1)) {
    if (set[i] == id)
      return false;
    if (set[i] == 0) {
      set[i] = id;
      return true;
    }
  }
}

static void idset_free(shard_t *s, trace_t *t) {
  if (t->ids == NULL)
    return;
  tt__pipeline_account(s->p, -(int64_t)(t->ids_cap * sizeof *t->ids));
  free(t->ids);
  t->ids = NULL;
  t->ids_cap = 0;
}

/* Whether id is among t's live records; of block `cur` only the first `upto` records count (the
 * rest are not taken yet). */
static bool ids_scan(const trace_t *t, uint64_t id, const span_block_t *cur, uint32_t upto) {
  for (span_block_t *b = t->blocks; b != NULL; b = b->next) {
    uint32_t n = b == cur ? upto : b->n;
    span_rec_t *r = span_block_first(b);
    for (uint32_t i = 0; i < n; i++, r = span_rec_next(r))
      if (r->span_id == id && !(r->bits & REC_DEAD))
        return true;
  }
  return false;
}

/* Returns true when a held trace already holds span id `id`; otherwise records it. Records of
 * block `cur` from `upto` on are not taken yet. */
static bool held_duplicate(shard_t *s, trace_t *t, uint64_t id, const span_block_t *cur,
                           uint32_t upto) {
  if (t->ids == NULL && t->nspans < LINEAR_IDS)
    return ids_scan(t, id, cur, upto);
  if (t->ids == NULL || (t->nspans + 1) * 2 > t->ids_cap) {
    /* Rebuilt from the blocks at double the size: amortised O(1) a span, load <= 1/2. */
    uint32_t cap = t->ids_cap ? t->ids_cap * 2 : 4 * LINEAR_IDS;
    uint64_t *set = calloc(cap, sizeof *set);
    if (set == NULL) {
      /* Without memory for the set, the scan still gives the right answer, only slower. */
      return ids_scan(t, id, cur, upto);
    }
    for (span_block_t *b = t->blocks; b != NULL; b = b->next) {
      uint32_t n = b == cur ? upto : b->n;
      span_rec_t *r = span_block_first(b);
      for (uint32_t i = 0; i < n; i++, r = span_rec_next(r))
        if (!(r->bits & REC_DEAD))
          idset_add(s->p->hash_key, set, cap, r->span_id);
    }
    int64_t delta = (int64_t)((cap - t->ids_cap) * sizeof *set);
    free(t->ids);
    t->ids = set;
    t->ids_cap = cap;
    t->bytes += (uint64_t)delta;
    atomic_fetch_add_explicit(&s->held_bytes, (uint64_t)delta, memory_order_relaxed);
    tt__pipeline_account(s->p, delta);
  }
  return !idset_add(s->p->hash_key, t->ids, t->ids_cap, id);
}

static void ring_push(trace_t *t, uint64_t id) {
  if (t->ids_cap == 0)
    return;
  t->ids[t->ids_n % t->ids_cap] = id;
  t->ids_n++;
}

static bool ring_has(const trace_t *t, uint64_t id) {
  uint32_t n = t->ids_n < t->ids_cap ? t->ids_n : t->ids_cap;
  for (uint32_t i = 0; i < n; i++)
    if (t->ids[i] == id)
      return true;
  return false;
}

/* ---- decided-id cache ----------------------------------------------------------------------- */
/* A tombstone costs its trace_t, its share of the hash table's buckets and its span-id ring. Those
 * bytes count against memory.budget, and the cache may use at most a quarter of it: past that (or
 * past late_spans.cache_traces ids, or the ttl) the oldest ids are forgotten first. */

static uint64_t tombstone_cost(const trace_t *t) {
  return TT_TRACE_RECORD_COST + t->ids_cap * sizeof *t->ids;
}

static void decided_push(shard_t *s, trace_t *t) {
  t->lnext = NULL;
  t->lprev = s->dec_tail;
  if (s->dec_tail != NULL)
    s->dec_tail->lnext = t;
  else
    s->dec_head = t;
  s->dec_tail = t;
  s->ndecided++;
  uint64_t cost = tombstone_cost(t);
  s->cache_bytes += cost;
  tt__pipeline_account_cache(s->p, (int64_t)cost);
}

/* The most ids the shard remembers, kept and dropped together. */
static size_t cache_cap(const shard_t *s) {
  return (size_t)(s->p->o.late_cache_traces / s->p->nshards);
}

/* Remembers a dropped trace's id in place of its record; counts the difference in the cache. */
static void remember_dropped(shard_t *s, const uint8_t id[16], uint32_t hash, uint64_t now) {
  uint32_t before = s->drops.n;
  size_t cap = cache_cap(s);
  if (tt__dropped_add(&s->drops, id, hash, now, cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap) != 0)
    return; /* without memory, the id is forgotten: its late spans are held as a new trace */
  int64_t delta = ((int64_t)s->drops.n - (int64_t)before) * (int64_t)TT_DROPPED_ENTRY_COST;
  s->cache_bytes += (uint64_t)delta;
  tt__pipeline_account_cache(s->p, delta);
}

static void forget_oldest_dropped(shard_t *s) {
  tt__dropped_pop(&s->drops);
  s->cache_bytes -= TT_DROPPED_ENTRY_COST;
  tt__pipeline_account_cache(s->p, -(int64_t)TT_DROPPED_ENTRY_COST);
}

/* Forgets decided traces, the oldest first (kept records and dropped ids by when they were
 * decided), past the cache's count or byte cap or its ttl. */
static void decided_expire(shard_t *s, uint64_t now) {
  const tt_pipeline_opts_t *o = &s->p->o;
  size_t cap = cache_cap(s);
  uint64_t cap_bytes = o->memory_budget / 4 / s->p->nshards;
  for (;;) {
    uint64_t dropped_ns = 0;
    bool have_dropped = tt__dropped_oldest(&s->drops, &dropped_ns);
    if (s->dec_head == NULL && !have_dropped)
      break;
    bool take_dropped =
        have_dropped && (s->dec_head == NULL || dropped_ns <= s->dec_head->decided_ns);
    uint64_t oldest = take_dropped ? dropped_ns : s->dec_head->decided_ns;
    if (s->ndecided + s->drops.n <= cap && s->cache_bytes <= cap_bytes &&
        oldest + o->late_cache_ttl_ns > now)
      break;
    if (take_dropped) {
      forget_oldest_dropped(s);
      continue;
    }
    trace_t *t = s->dec_head;
    s->dec_head = t->lnext;
    if (s->dec_head != NULL)
      s->dec_head->lprev = NULL;
    else
      s->dec_tail = NULL;
    s->ndecided--;
    uint64_t cost = tombstone_cost(t);
    s->cache_bytes -= cost;
    tt__pipeline_account_cache(s->p, -(int64_t)cost);
    free(t->ids);
    remove_trace(s, t);
  }
  maybe_shrink(s);
}

/* ---- emission ------------------------------------------------------------------------------- */

static bool blob_same(const tt_blob_t *a, const tt_blob_t *b) {
  return a == b || (a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

static void flush_out(shard_t *s) {
  struct tt_pipeline_s *p = s->p;
  if (s->out.len == 0)
    return;
  atomic_fetch_add_explicit(&p->metrics.spans_kept, s->out_spans, memory_order_relaxed);
  atomic_fetch_add_explicit(&p->metrics.export_bytes, s->out.len, memory_order_relaxed);
  for (size_t i = 0; i < p->o.nsinks; i++) {
    tt_sink_t *k = p->o.sinks[i];
    tt_sink_counts_t *c = &p->sink_counts[i];
    if (k->vt->submit(k, s->out.data, s->out.len, s->out_spans) == 0) {
      atomic_fetch_add_explicit(&c->batches_ok, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&c->spans_ok, s->out_spans, memory_order_relaxed);
    } else {
      atomic_fetch_add_explicit(&c->batches_failed, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&c->spans_failed, s->out_spans, memory_order_relaxed);
    }
  }
  tt__buf_reset(&s->out);
  s->out_spans = 0;
}

/* Appends ResourceSpans{res header, ScopeSpans{scope header, spans}} for the live records of
 * blocks[0..n), grouped by their resource and scope bytes, annotated with `a`. Several ScopeSpans
 * of one resource are framed under one ResourceSpans. `done` marks blocks already emitted.
 * Returns 0 or -ENOMEM. */
static int emit_blocks(shard_t *s, span_block_t **blocks, size_t n, bool *done,
                       const tt_annotation_t *a) {
  tt_buf_t *rs = &s->scratch, *ss = &s->scratch2, *sp = &s->scratch3;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (done[i])
      continue;
    tt_blob_t *res = blocks[i]->res;
    tt__buf_reset(rs);
    rc |= tt__buf_append(rs, res->data, res->len);
    /* Every scope under this resource. */
    for (size_t j = i; j < n && rc == 0; j++) {
      if (done[j] || !blob_same(blocks[j]->res, res))
        continue;
      tt_blob_t *scope = blocks[j]->scope;
      tt__buf_reset(ss);
      rc |= tt__buf_append(ss, scope->data, scope->len);
      for (size_t k = j; k < n && rc == 0; k++) {
        if (done[k] || !blob_same(blocks[k]->res, res) || !blob_same(blocks[k]->scope, scope))
          continue;
        span_rec_t *r = span_block_first(blocks[k]);
        for (uint32_t m = 0; m < blocks[k]->n && rc == 0; m++, r = span_rec_next(r)) {
          if (r->bits & REC_DEAD)
            continue;
          tt__buf_reset(sp);
          int arc = tt__span_annotate(r->data, r->len, a, sp);
          if (arc == -ENOMEM)
            rc = arc;
          else if (arc == 0)
            rc |= tt__buf_append_lenfield(ss, 2, sp->data, sp->len);
          s->out_spans++;
        }
        done[k] = true;
      }
      rc |= tt__buf_append_lenfield(rs, 2, ss->data, ss->len);
    }
    rc |= tt__buf_append_lenfield(&s->out, 1, rs->data, rs->len);
  }
  return rc ? -ENOMEM : 0;
}

/* ---- decisions ------------------------------------------------------------------------------ */

static void free_spans(shard_t *s, trace_t *t) {
  for (span_block_t *b = t->blocks, *n; b != NULL; b = n) {
    n = b->next;
    tt__span_block_free(s->p, b);
  }
  t->blocks = NULL;
  t->tail = &t->blocks;
}

/* Fills the shard's span views for t's spans. Returns the number of views, or -1 without memory
 * for them. */
static long build_views(shard_t *s, trace_t *t) {
  if (t->nspans > s->views_cap) {
    size_t cap = t->nspans * 2;
    tt_span_view_t *v = realloc(s->views, cap * sizeof *v);
    if (v == NULL)
      return -1;
    s->views = v;
    s->views_cap = cap;
  }
  long n = 0;
  for (span_block_t *b = t->blocks; b != NULL; b = b->next) {
    span_rec_t *r = span_block_first(b);
    for (uint32_t i = 0; i < b->n; i++, r = span_rec_next(r)) {
      if (r->bits & REC_DEAD)
        continue;
      tt_span_view_t *v = &s->views[n++];
      /* The handler checked these bytes: read again without checks. */
      tt__wire_span_facts(r->data, r->len, &v->facts);
      v->facts.signals = r->signals;
      v->data = r->data;
      v->len = r->len;
      v->resource = b->res->resource;
      v->resource_len = b->res->resource_len;
      v->service = b->res->service;
      v->service_len = b->res->service_len;
    }
  }
  return n;
}

/* The view the policies decide t on: its summary alone when they need no span and no span has a
 * trace_state (whose ot=rv would replace the trace id's randomness), which reads no span's
 * record; else every span's view. Returns false without memory for the views. */
static bool trace_view(shard_t *s, trace_t *t, tt_trace_view_t *tv) {
  memset(tv, 0, sizeof *tv);
  tv->trace_id = t->id;
  if (!s->pol_needs_spans && !t->any_trace_state) {
    tv->n = t->nspans;
    tv->sum = &t->sum;
    return true;
  }
  long n = build_views(s, t);
  if (n < 0)
    return false;
  tv->n = (size_t)n;
  tv->spans = s->views;
  return true;
}

static void log_decision(const trace_t *t, bool keep, tt_trigger_t trig, bool pending,
                         uint64_t now) {
  if (atomic_load_explicit(&tt__log_min_level, memory_order_relaxed) > TT_LOG_DEBUG)
    return;
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", t->id[i]);
  tt__log_write(TT_LOG_DEBUG, pending ? "trace decided, pending" : "trace decided",
                "\"trace_id\":\"%s\",\"decision\":\"%s\",\"reason\":\"%s\",\"trigger\":\"%s\","
                "\"spans\":%u,\"bytes\":%llu,\"held_ms\":%llu",
                hex, keep ? "keep" : "drop", t->reason, tt__trigger_name(trig), t->nspans,
                (unsigned long long)t->bytes,
                (unsigned long long)((now - t->first_seen_ns) / 1000000ull));
}

/* Bus look-ups of a pending trace: when it becomes pending (an earlier keep elsewhere flips it
 * at once) and when drop_delay ends (any keep shared meanwhile). */
enum { LOOKUP_NONE = 0, LOOKUP_START = 1, LOOKUP_FINAL = 2 };

static bool ask_bus(shard_t *s, trace_t *t, uint8_t which) {
  if (s->p->bus == NULL)
    return false;
  t->lookup = which;
  return tt__bus_lookup(s->p->bus, s->idx, t->id, which) == 0;
}

/* A keep made here on the trace's own spans is shared, so collectors holding other spans of the
 * trace keep them too. Keeps by chance need no message (every collector computes the ratio from
 * the trace id), and keeps taken from the bus are not shared again. */
static void share_keep(shard_t *s, const trace_t *t, tt_trigger_t trig) {
  if (s->p->bus == NULL || tt__policy_kind_is_chance((tt_policy_kind_t)t->dkind) ||
      t->dkind == TT_POL_REMOTE || trig == TT_TRIG_REMOTE)
    return;
  tt_bus_keep_t k;
  memcpy(k.trace_id, t->id, 16);
  k.threshold = t->threshold;
  snprintf(k.reason, sizeof k.reason, "%s", t->reason);
  (void)tt__bus_publish(s->p->bus, &k); /* a full queue or a down bus is counted by the bus */
}

/* Makes d final for t: kept spans are annotated and framed for the sinks, dropped ones counted;
 * the spans are freed and the trace becomes a tombstone in the decided-id cache. */
static void finish(shard_t *s, trace_t *t, const tt_decision_t *d, tt_trigger_t trig,
                   uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  atomic_fetch_add_explicit(&p->metrics.decisions[d->kind][d->keep][trig], 1, memory_order_relaxed);
  if (d->reason != t->reason)
    snprintf(t->reason, sizeof t->reason, "%s", d->reason);
  t->threshold = d->threshold;
  t->dkind = (uint8_t)d->kind;
  log_decision(t, d->keep, trig, false, now);
  bool keep = d->keep;
  if (keep) {
    size_t nb = 0;
    for (span_block_t *b = t->blocks; b != NULL; b = b->next)
      nb++;
    bool small[64];
    bool *done = nb <= 64 ? small : calloc(nb, sizeof *done);
    span_block_t *arr_small[64];
    span_block_t **arr = nb <= 64 ? arr_small : malloc(nb * sizeof *arr);
    if (done == NULL || arr == NULL) {
      if (done != small)
        free(done);
      if (arr != arr_small)
        free(arr);
      /* Without memory to frame it we still must not keep holding: the trace is lost. */
      TT_LOG(TT_LOG_ERROR, "out of memory framing a kept trace; dropped", "\"shard\":%u", s->idx);
      atomic_fetch_add_explicit(&p->metrics.spans_dropped, t->nspans, memory_order_relaxed);
      keep = false;
    } else {
      size_t i = 0;
      for (span_block_t *b = t->blocks; b != NULL; b = b->next)
        arr[i++] = b;
      memset(done, 0, nb * sizeof *done);
      tt_annotation_t a = {d->threshold, t->reason, tt__trigger_name(trig), t->id};
      if (emit_blocks(s, arr, nb, done, &a) != 0)
        TT_LOG(TT_LOG_ERROR, "out of memory framing a kept trace", "\"shard\":%u", s->idx);
      if (done != small)
        free(done);
      if (arr != arr_small)
        free(arr);
      if (s->out.len >= OUT_FLUSH_BYTES)
        flush_out(s);
    }
  } else {
    atomic_fetch_add_explicit(&p->metrics.spans_dropped, t->nspans, memory_order_relaxed);
  }
  if (t->state == TRACE_PENDING) {
    s->npending--;
    atomic_fetch_sub_explicit(&p->metrics.traces_pending, 1, memory_order_relaxed);
  }
  if (keep)
    share_keep(s, t, trig);
  t->state = keep ? TRACE_KEPT : TRACE_DROPPED;
  wheel_unlink(s, t);
  /* t->bytes holds the record, the spans and the span-id set. The spans give back their own
   * bytes as they are freed and the set in idset_free; the record moves from the held bytes to
   * the cache's, which decided_push counts as part of the tombstone. */
  atomic_fetch_sub_explicit(&s->held_bytes, t->bytes, memory_order_relaxed);
  tt__pipeline_account(p, -(int64_t)TT_TRACE_RECORD_COST);
  idset_free(s, t);
  if (t->state == TRACE_KEPT) {
    /* The tombstone's ring of emitted span ids: small traces get a small ring. */
    uint32_t cap = t->nspans < 4 ? 4 : t->nspans < LATE_IDS ? t->nspans : LATE_IDS;
    t->ids = malloc(cap * sizeof *t->ids);
    if (t->ids != NULL) {
      t->ids_cap = cap;
      for (span_block_t *b = t->blocks; b != NULL; b = b->next) {
        span_rec_t *r = span_block_first(b);
        for (uint32_t i = 0; i < b->n; i++, r = span_rec_next(r))
          if (!(r->bits & REC_DEAD))
            ring_push(t, r->span_id);
      }
    }
  }
  free_spans(s, t);
  t->decided_ns = now;
  s->nheld--;
  atomic_fetch_sub_explicit(&p->metrics.traces_held, 1, memory_order_relaxed);
  if (keep) {
    decided_push(s, t);
    return;
  }
  /* A dropped trace leaves only its id (dropped.h). */
  uint8_t id[16];
  memcpy(id, t->id, 16);
  uint32_t hash = t->hash;
  remove_trace(s, t);
  remember_dropped(s, id, hash, now);
}

/* Makes a pending trace's own decision final (drop_delay is over, memory pressure, shutdown). */
static void settle(shard_t *s, trace_t *t, uint64_t now) {
  tt_decision_t d = {.keep = t->pending_keep,
                     .threshold = t->threshold,
                     .kind = (tt_policy_kind_t)t->dkind,
                     .reason = t->reason};
  finish(s, t, &d, (tt_trigger_t)t->dtrig, now);
}

/* Whether d waits drop_delay before it is final. Drops do, so that evidence arriving late (an
 * error span from a process whose SDK exports on a 5 s timer) can still make them keeps. Keeps
 * made on the trace's own spans are final at once. Keeps by chance (ratio, rate_limit) wait too:
 * a late error would otherwise go out under the ratio's weight (4 at ratio 0.25), and errored
 * traces would be over-counted by every one that the ratio happened to pick first; waiting, the
 * error's keep (weight 1) replaces it, here or from another collector through the bus. Decisions
 * forced early (trace cap, memory pressure, shutdown) are final. */
static bool defer(const shard_t *s, const tt_decision_t *d, tt_trigger_t trig) {
  if (s->p->o.drop_delay_ns == 0 || (d->keep && !tt__policy_kind_is_chance(d->kind)))
    return false;
  return trig == TT_TRIG_ROOT_GRACE || trig == TT_TRIG_IDLE || trig == TT_TRIG_MAX_AGE;
}

static void decide(shard_t *s, trace_t *t, tt_trigger_t trig, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  tt_trace_view_t tv;
  if (!trace_view(s, t, &tv)) {
    /* Without memory to decide we still must not keep holding: count the trace as dropped. */
    TT_LOG(TT_LOG_ERROR, "out of memory deciding a trace; dropped", "\"shard\":%u", s->idx);
    tt_decision_t none = {.keep = false, .kind = TT_POL_NO_MATCH, .reason = "no_match"};
    finish(s, t, &none, trig, now);
    return;
  }
  tt_decision_t d;
  tt__policy_decide(s->pol, &tv, now, &d);
  tt__metrics_observe_latency(&p->metrics, (now - t->first_seen_ns) / 1000000ull);
  if (!defer(s, &d, trig)) {
    finish(s, t, &d, trig, now);
    return;
  }
  snprintf(t->reason, sizeof t->reason, "%s", d.reason);
  t->threshold = d.threshold;
  t->dkind = (uint8_t)d.kind;
  t->dtrig = (uint8_t)trig;
  t->pending_keep = d.keep;
  t->state = TRACE_PENDING;
  t->decided_ns = now;
  wheel_unlink(s, t);
  t->deadline_ns = now + p->o.drop_delay_ns;
  wheel_link(s, t);
  s->npending++;
  atomic_fetch_add_explicit(&p->metrics.traces_pending, 1, memory_order_relaxed);
  log_decision(t, d.keep, trig, true, now);
  t->lookup = LOOKUP_NONE;
  ask_bus(s, t, LOOKUP_START);
}

/* drop_delay is over for a pending trace. Without a bus its decision is final. With one, the
 * final look-up is asked and the trace waits for its answer at most bus_wait_ns; a bus that
 * cannot answer (down, queue full, too slow) leaves the decision to this collector, counted. */
static void pending_due(shard_t *s, trace_t *t, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  if (p->bus != NULL && t->lookup != LOOKUP_FINAL) {
    if (ask_bus(s, t, LOOKUP_FINAL)) {
      wheel_unlink(s, t);
      t->deadline_ns = now + p->o.bus_wait_ns;
      wheel_link(s, t);
      return;
    }
    atomic_fetch_add_explicit(&p->metrics.bus_local, 1, memory_order_relaxed);
  } else if (p->bus != NULL) {
    atomic_fetch_add_explicit(&p->metrics.bus_local, 1, memory_order_relaxed);
  }
  settle(s, t, now);
}

/* An answer of the bus for a trace of this shard. A keep found elsewhere replaces the pending
 * decision: the spans go out with that collector's reason and weight, trigger remote. An answer
 * to the final look-up that finds nothing makes the pending decision final; a failed one does
 * too, counted as decided locally. Answers for traces no longer pending are stale. */
static void take_answer(shard_t *s, const tt_bus_answer_t *a, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  trace_t *t = lookup(s, a->trace_id, hash_id(s, a->trace_id));
  if (t == NULL || t->state != TRACE_PENDING)
    return;
  if (a->status == 0 && a->found) {
    if (!t->pending_keep)
      atomic_fetch_add_explicit(&p->metrics.traces_rescued[1], 1, memory_order_relaxed);
    tt_decision_t d = {.keep = true,
                       .threshold = a->keep.threshold,
                       .kind = TT_POL_REMOTE,
                       .reason = a->keep.reason};
    finish(s, t, &d, TT_TRIG_REMOTE, now);
    return;
  }
  if (a->cookie != LOOKUP_FINAL || t->lookup != LOOKUP_FINAL)
    return;
  if (a->status != 0)
    atomic_fetch_add_explicit(&p->metrics.bus_local, 1, memory_order_relaxed);
  settle(s, t, now);
}

/* Spans joined these pending traces this round: when the spans now make the trace a keep (an
 * error, a slow span, a keep rule; a drop rule listed first still wins), the keep is final at
 * once, with the policy that matched and the trigger late_span. Run once a round, not per span,
 * so a burst of late spans costs one evaluation. */
static void check_dirty(shard_t *s, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  while (s->dirty != NULL) {
    trace_t *t = s->dirty;
    s->dirty = t->dnext;
    t->dnext = NULL;
    t->dirty = false;
    if (t->state != TRACE_PENDING)
      continue;
    tt_trace_view_t tv;
    tt_decision_t d;
    if (trace_view(s, t, &tv)) {
      if (tt__policy_evidence(s->pol, &tv, &d)) {
        atomic_fetch_add_explicit(&p->metrics.traces_rescued[0], 1, memory_order_relaxed);
        finish(s, t, &d, TT_TRIG_LATE_SPAN, now);
        continue;
      }
    }
    if (t->bytes >= p->o.max_trace_bytes)
      settle(s, t, now);
  }
}

/* Spans whose trace was decided follow the decision: kept traces' late spans go straight out
 * with the same weight and reason; dropped traces' late spans (t NULL: only the id is left) are
 * counted and freed. */
static void late_block(shard_t *s, trace_t *t, span_block_t *b) {
  struct tt_pipeline_s *p = s->p;
  if (t != NULL && t->state == TRACE_KEPT) {
    uint32_t dups = 0;
    span_rec_t *r = span_block_first(b);
    for (uint32_t i = 0; i < b->n; i++, r = span_rec_next(r)) {
      if (ring_has(t, r->span_id)) {
        r->bits |= REC_DEAD;
        dups++;
      } else {
        ring_push(t, r->span_id);
      }
    }
    b->nlive = (uint16_t)(b->n - dups);
    if (b->nlive > 0) {
      bool done = false;
      tt_annotation_t a = {t->threshold, t->reason, "late", t->id};
      emit_blocks(s, &b, 1, &done, &a);
      atomic_fetch_add_explicit(&p->metrics.late_spans_kept, b->nlive, memory_order_relaxed);
    }
    if (dups)
      atomic_fetch_add_explicit(&p->metrics.spans_duplicate, dups, memory_order_relaxed);
  } else {
    atomic_fetch_add_explicit(&p->metrics.late_spans_dropped, b->n, memory_order_relaxed);
    /* A dropped span is dropped whenever it arrives: spans_dropped_total counts it too. */
    atomic_fetch_add_explicit(&p->metrics.spans_dropped, b->n, memory_order_relaxed);
  }
  tt__span_block_free(p, b);
}

static void take_block(shard_t *s, span_block_t *b, uint64_t now) {
  /* The spans' times are when they were received (pipeline_int.h, tt_blob_t.received_ns); the
   * shard's clock only bounds them, for spans queued before a clock step in tests. */
  if (b->res != NULL && b->res->received_ns != 0 && b->res->received_ns < now)
    now = b->res->received_ns;
  const uint8_t *tid = b->trace_id;
  uint32_t h = hash_id(s, tid);
  trace_t *t = lookup(s, tid, h);
  if (t != NULL && (t->state == TRACE_KEPT || t->state == TRACE_DROPPED)) {
    late_block(s, t, b);
    return;
  }
  if (t == NULL && tt__dropped_has(&s->drops, tid, h)) {
    late_block(s, NULL, b);
    return;
  }
  bool fresh = t == NULL;
  if (fresh) {
    t = insert(s, tid, h);
    if (t == NULL) {
      TT_LOG(TT_LOG_ERROR, "out of memory holding a span; dropped", "\"shard\":%u", s->idx);
      atomic_fetch_add_explicit(&s->p->metrics.spans_dropped, b->n, memory_order_relaxed);
      tt__span_block_free(s->p, b);
      return;
    }
    t->first_seen_ns = now;
    /* The record counts like the spans: for tiny single-span traces it is most of the cost. */
    t->bytes = TT_TRACE_RECORD_COST;
    atomic_fetch_add_explicit(&s->held_bytes, TT_TRACE_RECORD_COST, memory_order_relaxed);
    tt__pipeline_account(s->p, (int64_t)TT_TRACE_RECORD_COST);
    s->nheld++;
    atomic_fetch_add_explicit(&s->p->metrics.traces_held, 1, memory_order_relaxed);
  }
  /* Linked first, so that a span id repeated inside the block is found like any other. */
  span_block_t **link = t->tail;
  b->next = NULL;
  *link = b;
  t->tail = &b->next;
  uint32_t dups = 0;
  span_rec_t *r = span_block_first(b);
  for (uint32_t i = 0; i < b->n; i++, r = span_rec_next(r)) {
    if ((!fresh || i > 0) && held_duplicate(s, t, r->span_id, b, i)) {
      r->bits |= REC_DEAD;
      dups++;
      continue;
    }
    t->nspans++;
  }
  if (dups > 0) {
    atomic_fetch_add_explicit(&s->p->metrics.spans_duplicate, dups, memory_order_relaxed);
    b->nlive = (uint16_t)(b->n - dups);
    if (b->nlive == 0) {
      /* A retried batch's run: nothing new (never a fresh trace: its first span is new). */
      *link = NULL;
      t->tail = link;
      tt__span_block_free(s->p, b);
      return;
    }
  }
  /* A duplicate's times and signals are folded in with its run's: a retry carries the same. */
  tt__trace_summary_merge(&t->sum, &b->sum);
  t->any_trace_state |= b->any_trace_state;
  t->bytes += b->size;
  atomic_fetch_add_explicit(&s->held_bytes, b->size, memory_order_relaxed);
  t->last_seen_ns = now;
  if (b->root && t->root_seen_ns == 0)
    t->root_seen_ns = now ? now : 1;
  if (t->state == TRACE_PENDING) {
    /* Its deadline is the end of drop_delay, whatever arrives; the evidence is checked at the
     * end of the round (check_dirty). */
    if (!t->dirty) {
      t->dirty = true;
      t->dnext = s->dirty;
      s->dirty = t;
    }
    return;
  }
  schedule(s, t, !fresh);
  if (t->bytes >= s->p->o.max_trace_bytes)
    decide(s, t, TT_TRIG_TRACE_CAP, now);
}

static void advance_wheel(shard_t *s, uint64_t now) {
  uint64_t tick = s->p->o.tick_ns;
  uint64_t now_tick = now / tick;
  if (s->wheel_tick == 0 || now_tick < s->wheel_tick) {
    /* First round: start from one revolution back so nothing scheduled is skipped. */
    s->wheel_tick = now_tick > TT_WHEEL_SLOTS ? now_tick - TT_WHEEL_SLOTS : 0;
  }
  uint64_t steps = now_tick - s->wheel_tick;
  if (steps > TT_WHEEL_SLOTS)
    steps = TT_WHEEL_SLOTS;
  for (uint64_t i = 0; i <= steps; i++) {
    uint64_t slot = (now_tick - steps + i) % TT_WHEEL_SLOTS;
    for (trace_t *t = s->wheel[slot], *next; t != NULL; t = next) {
      next = t->lnext;
      if (t->deadline_ns > now)
        continue;
      if (t->state == TRACE_PENDING)
        pending_due(s, t, now);
      else
        decide(s, t, (tt_trigger_t)t->deadline_trigger, now);
    }
  }
  s->wheel_tick = now_tick;
}

typedef struct {
  double score;
  trace_t *t;
} cand_t;

static int cand_cmp(const void *a, const void *b) {
  double x = ((const cand_t *)a)->score, y = ((const cand_t *)b)->score;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Under memory pressure, pending decisions are made final first, the oldest first: they are
 * decided already and only wait for late evidence. Then the undecided traces that cost most,
 * bytes held times age, are decided early. A full scan is acceptable here because it runs only
 * past the high watermark, and each run brings the shard well below it. */
static void relieve_pressure(shard_t *s, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  uint64_t budget = p->o.memory_budget, share = budget / p->nshards;
  uint64_t own = atomic_load_explicit(&s->held_bytes, memory_order_relaxed);
  int64_t g = atomic_load(&p->bytes_held);
  uint64_t global = g > 0 ? (uint64_t)g : 1;
  bool over_global = global > budget / 10 * 9 || atomic_load(&p->pressure);
  if (!(over_global || own > share / 10 * 9) || s->nheld == 0)
    return;
  uint64_t target = share / 10 * 7;
  /* Shared resource and scope bytes count globally but belong to no shard: shrink this shard by
   * the factor the whole pipeline must shrink by, so blob-heavy traffic still finds room. */
  if (over_global && global > budget / 10 * 7) {
    uint64_t scaled = (uint64_t)((double)own * (double)(budget / 10 * 7) / (double)global);
    if (scaled < target)
      target = scaled;
  }
  if (own <= target)
    return;
  cand_t *c = malloc(s->nheld * sizeof *c);
  if (c == NULL)
    return;
  for (int pass = 0; pass < 2 && atomic_load(&s->held_bytes) > target; pass++) {
    trace_state_t want = pass == 0 ? TRACE_PENDING : TRACE_HELD;
    size_t n = 0;
    for (size_t i = 0; i < s->nbuckets; i++)
      for (trace_t *t = s->buckets[i]; t != NULL; t = t->hnext)
        if (t->state == want && n < s->nheld)
          c[n++] = (cand_t){want == TRACE_PENDING
                                ? (double)(now - t->decided_ns + 1)
                                : (double)t->bytes * (double)(now - t->first_seen_ns + 1),
                            t};
    qsort(c, n, sizeof *c, cand_cmp);
    for (size_t i = 0; i < n && atomic_load(&s->held_bytes) > target; i++) {
      if (want == TRACE_PENDING) {
        atomic_fetch_add_explicit(&p->metrics.pending_released, 1, memory_order_relaxed);
        settle(s, c[i].t, now);
      } else {
        decide(s, c[i].t, TT_TRIG_MEMORY, now);
      }
    }
  }
  free(c);
}

/* out and the scratch buffers grow to the largest batch or trace framed (a trace may reach
 * memory.max_trace_size, 16 MiB, and out then holds it on top of a nearly full batch), and the
 * span views to twice the most spans a trace had. Counting that capacity against memory.budget
 * would misfire: decisions cannot free it, so pressure would decide held traces early for memory
 * that is not theirs, and it sits idle between rounds anyway. So instead each buffer goes back
 * to BUF_KEEP_BYTES at the end of a round that grew it past that: a shard keeps at most about
 * 5 MiB between rounds, whatever it framed. Buffers under the limit are left alone, so steady
 * traffic of ordinary traces never reallocates; a round that frames more again regrows by
 * doubling from 1 MiB, a few reallocs next to the framing itself. */
static void trim_buffers(shard_t *s) {
  /* out was just flushed; the scratch buffers still hold the last framing, which is dead. */
  tt__buf_reset(&s->scratch);
  tt__buf_reset(&s->scratch2);
  tt__buf_reset(&s->scratch3);
  tt__buf_shrink(&s->out, BUF_KEEP_BYTES);
  tt__buf_shrink(&s->scratch, BUF_KEEP_BYTES);
  tt__buf_shrink(&s->scratch2, BUF_KEEP_BYTES);
  tt__buf_shrink(&s->scratch3, BUF_KEEP_BYTES);
  if (s->views_cap * sizeof *s->views > BUF_KEEP_BYTES) {
    size_t cap = BUF_KEEP_BYTES / sizeof *s->views;
    tt_span_view_t *v = realloc(s->views, cap * sizeof *v);
    if (v != NULL) {
      s->views = v;
      s->views_cap = cap;
    }
  }
  uint64_t n = s->out.cap + s->scratch.cap + s->scratch2.cap + s->scratch3.cap +
               s->views_cap * sizeof *s->views;
  atomic_store_explicit(&s->buffer_bytes, n, memory_order_relaxed);
}

/* After a burst, the allocator keeps the pages of what was freed: glibc returns memory to the
 * system only from the top of its heaps, so the collector's RSS would stay at the burst's peak.
 * Once the held bytes have fallen by a quarter of their peak since the last trim, and by 16 MiB
 * or more, shard 0 asks glibc to hand free pages back, at most every 5 s (pipeline clock); a
 * burst that drains over several rounds gets a trim for each step. */
static void return_memory(shard_t *s, uint64_t now) {
  struct tt_pipeline_s *p = s->p;
  if (s->idx != 0)
    return;
  /* Held bytes alone: a decided trace's record moves to the decided cache, which stays. */
  int64_t held = atomic_load_explicit(&p->metrics.bytes_held, memory_order_relaxed);
  if (held > p->trim_peak)
    p->trim_peak = held;
  if (p->trim_peak - held < (16 << 20) || held > p->trim_peak / 4 * 3 ||
      now - p->trim_last_ns < 5000000000ull)
    return;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  p->trim_last_ns = now;
  p->trim_peak = held;
  atomic_fetch_add_explicit(&p->metrics.memory_trims, 1, memory_order_relaxed);
}

static void decide_all(shard_t *s, uint64_t now) {
  for (size_t i = 0; i < s->nbuckets; i++)
    for (trace_t *t = s->buckets[i], *next; t != NULL; t = next) {
      next = t->hnext;
      if (t->state == TRACE_HELD)
        decide(s, t, TT_TRIG_SHUTDOWN, now);
      else if (t->state == TRACE_PENDING)
        settle(s, t, now);
    }
}

void *tt__shard_main(void *arg) {
  shard_t *s = arg;
  struct tt_pipeline_s *p = s->p;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    if (s->in_head == NULL && s->nans == 0 && !s->stop && s->sync_req == s->sync_done) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      uint64_t ns = (uint64_t)ts.tv_nsec + p->o.tick_ns;
      ts.tv_sec += (time_t)(ns / 1000000000ull);
      ts.tv_nsec = (long)(ns % 1000000000ull);
      pthread_cond_timedwait(&s->wake, &s->mu, &ts);
    }
    span_block_t *in = s->in_head;
    s->in_head = NULL;
    s->in_tail = &s->in_head;
    s->in_n = 0;
    atomic_store_explicit(&s->backlog, 0, memory_order_relaxed);
    /* The answers are swapped out with their array, so the bus thread never waits on a round. */
    tt_bus_answer_t *ans = s->ans;
    size_t nans = s->nans;
    s->ans = NULL;
    s->nans = s->ans_cap = 0;
    bool stop = s->stop;
    uint64_t sync_target = s->sync_req;
    pthread_mutex_unlock(&s->mu);

    pthread_mutex_lock(&p->pol_mu);
    s->pol = p->policies;
    tt__policy_set_ref(s->pol);
    pthread_mutex_unlock(&p->pol_mu);
    s->pol_reads_names = tt__policy_set_reads_names(s->pol);
    s->pol_needs_spans = tt__policy_set_needs_spans(s->pol);

    uint64_t now = tt__pipeline_now(p);
    for (span_block_t *b = in, *next; b != NULL; b = next) {
      next = b->next;
      take_block(s, b, now);
    }
    check_dirty(s, now);
    for (size_t i = 0; i < nans; i++)
      take_answer(s, &ans[i], now);
    free(ans);
    advance_wheel(s, now);
    relieve_pressure(s, now);
    if (stop)
      decide_all(s, now);
    decided_expire(s, now);
    flush_out(s);
    trim_buffers(s);
    return_memory(s, now);
    tt__policy_set_unref(s->pol);
    s->pol = NULL;

    pthread_mutex_lock(&s->mu);
    s->sync_done = sync_target;
    if (stop)
      s->finished = true;
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    if (stop)
      break;
    if (s->idx == 0 && atomic_load(&p->pressure) &&
        (uint64_t)atomic_load(&p->bytes_held) < p->o.memory_budget / 10 * 7)
      atomic_store(&p->pressure, false);
  }
  return NULL;
}

void tt__shard_destroy(shard_t *s) {
  for (span_block_t *b = s->in_head, *n; b != NULL; b = n) {
    n = b->next;
    tt__span_block_free(s->p, b);
  }
  s->in_head = NULL;
  free(s->ans);
  s->ans = NULL;
  s->nans = s->ans_cap = 0;
  for (size_t i = 0; i < s->nbuckets; i++)
    for (trace_t *t = s->buckets[i], *n; t != NULL; t = n) {
      n = t->hnext;
      free_spans(s, t);
      free(t->ids);
      free(t);
    }
  free(s->buckets);
  s->buckets = NULL;
  s->nbuckets = 0;
  tt__dropped_free(&s->drops);
  tt__buf_free(&s->out);
  tt__buf_free(&s->scratch);
  tt__buf_free(&s->scratch2);
  tt__buf_free(&s->scratch3);
  free(s->views);
}
