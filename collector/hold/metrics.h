/* Collector metrics: lock-free counters written by receivers' threads (through the handler) and
 * shard threads, read by the admin port's /metrics in Prometheus text format. */
#ifndef TT_COLLECTOR_METRICS_H
#define TT_COLLECTOR_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "policy.h"
#include "refusal.h"

/* What made a trace be decided when it was. */
typedef enum {
  TT_TRIG_ROOT_GRACE = 0, /* root span seen, grace elapsed */
  TT_TRIG_IDLE,           /* no span for idle_timeout */
  TT_TRIG_MAX_AGE,        /* held for max_trace_age */
  TT_TRIG_TRACE_CAP,      /* early: the trace reached max_trace_bytes */
  TT_TRIG_MEMORY,         /* early: memory pressure, largest size x age first */
  TT_TRIG_SHUTDOWN,       /* decided at shutdown */
  TT_TRIG_LATE_SPAN,      /* a pending drop flipped to keep by a span that arrived later */
  TT_TRIG_REMOTE,         /* a pending decision replaced by another collector's keep (the bus) */
  TT_TRIG__COUNT
} tt_trigger_t;

const char *tt__trigger_name(tt_trigger_t t);

/* Decision latency buckets: a log-spaced ladder from 10 ms to 60 s plus a few around the
 * configured root_grace, where most traces are decided (tt__metrics_init). */
#define TT_LATENCY_BUCKETS_MAX 24

typedef struct {
  atomic_uint_fast64_t requests;
  atomic_uint_fast64_t requests_invalid;
  atomic_uint_fast64_t requests_throttled;
  atomic_uint_fast64_t requests_throttled_share;   /* over the sender's share near the budget */
  atomic_uint_fast64_t requests_throttled_backlog; /* a shard fell behind (pipeline.c) */
  atomic_uint_fast64_t requests_unavailable;
  atomic_uint_fast64_t requests_too_large; /* could never fit memory.budget: refused for good */
  atomic_uint_fast64_t bytes_throttled;
  atomic_uint_fast64_t spans_received;
  atomic_uint_fast64_t spans_accepted;
  atomic_uint_fast64_t spans_refused_invalid; /* invalid ids, or a malformed span */
  atomic_uint_fast64_t spans_refused_utf8;    /* a string of the span, its resource or scope is
                                                 not UTF-8 */
  atomic_uint_fast64_t decisions[TT_POL__COUNT][2][TT_TRIG__COUNT]; /* [kind][kept][trigger] */
  atomic_uint_fast64_t
      traces_rescued[2]; /* pending drops flipped to keep: [0] late_span, [1] remote */
  atomic_uint_fast64_t pending_released; /* pending decisions made final early by memory pressure */
  atomic_int_fast64_t traces_pending;    /* decided, held for drop_delay (part of traces_held) */
  atomic_uint_fast64_t bus_local;        /* pending decisions made final without the bus's answer */
  atomic_uint_fast64_t late_spans_kept;
  atomic_uint_fast64_t late_spans_dropped;
  atomic_uint_fast64_t spans_dropped;   /* spans of traces decided "drop" */
  atomic_uint_fast64_t spans_duplicate; /* spans whose id their trace already held or emitted */
  atomic_uint_fast64_t spans_kept;      /* spans of keep decisions (late ones too), once each */
  atomic_uint_fast64_t memory_trims;    /* free pages handed back to the system after a burst */
  atomic_uint_fast64_t export_bytes;    /* bytes of kept batches handed to the sinks */
  atomic_int_fast64_t traces_held;
  atomic_int_fast64_t bytes_held;
  atomic_int_fast64_t cache_bytes; /* the decided-id cache, also counted against the budget */
  atomic_uint_fast64_t latency_buckets[TT_LATENCY_BUCKETS_MAX]; /* cumulative at render time */
  atomic_uint_fast64_t latency_sum_ms;
  atomic_uint_fast64_t latency_count;
  /* Set once by tt__metrics_init before any shard decides, read-only afterwards. */
  uint64_t latency_bounds_ms[TT_LATENCY_BUCKETS_MAX - 1]; /* upper bounds, ascending; +Inf after */
  unsigned latency_nbounds;
  uint64_t memory_budget; /* memory.budget, for tailtrace_memory_budget_bytes and /readyz */
  /* Requests and connections the receivers refused before the pipeline, by cause; "invalid"
   * is rendered together with requests_invalid. */
  tt_refusals_t refusals;
} tt_metrics_t;

/* Requests throttled because memory ran short (the budget, or the sender's share near it). */
static inline uint64_t tt__metrics_throttled_memory(tt_metrics_t *m) {
  return atomic_load_explicit(&m->requests_throttled, memory_order_relaxed) +
         atomic_load_explicit(&m->requests_throttled_share, memory_order_relaxed);
}

/* Every request throttled: for memory, or because a shard fell behind. */
static inline uint64_t tt__metrics_throttled(tt_metrics_t *m) {
  return tt__metrics_throttled_memory(m) +
         atomic_load_explicit(&m->requests_throttled_backlog, memory_order_relaxed);
}

/* Sets the latency buckets around root_grace_ns and records the memory budget. Called by
 * tt__pipeline_new before its shards start. */
void tt__metrics_init(tt_metrics_t *m, uint64_t root_grace_ns, uint64_t memory_budget);

/* Records the time from a trace's first span to its decision. */
void tt__metrics_observe_latency(tt_metrics_t *m, uint64_t ms);

/* Bytes counted against memory.budget now: held traces plus the decided-trace cache. */
uint64_t tt__metrics_budget_used(tt_metrics_t *m);
/* What one sink took: the batches (and their spans) its submit accepted or refused. */
typedef struct {
  atomic_uint_fast64_t batches_ok, batches_failed, spans_ok, spans_failed;
} tt_sink_counts_t;

/* Appends tailtrace_sink_batches_total{sink,outcome} and tailtrace_sink_spans_total{sink,outcome}
 * (outcome "accepted" or "refused" by the sink's submit: for an exporter that is queued, not
 * delivered) for `n` sinks; `names[i]` labels counts[i]. */
int tt__metrics_render_sinks(const tt_sink_counts_t *counts, const char *const *names, size_t n,
                             tt_buf_t *out);

/* Appends the Prometheus text exposition of every metric. */
int tt__metrics_render(tt_metrics_t *m, tt_buf_t *out);

struct tt_bus_s;
/* Appends the decision bus's families; nothing when bus is NULL (no bus configured). */
int tt__metrics_render_bus(struct tt_bus_s *bus, tt_metrics_t *m, tt_buf_t *out);

#endif
