/* Internals shared by pipeline.c (the handler and lifecycle) and shard.c (trace tables, timing
 * wheel, decisions, emission). Not for other files. */
#ifndef TT_COLLECTOR_PIPELINE_INT_H
#define TT_COLLECTOR_PIPELINE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "pipeline.h"
#include "buf.h"
#include "dropped.h"
#include "fair.h"

/* Bytes shared by every span of one ResourceSpans (or one ScopeSpans) of one request: the
 * message's fields other than its repeated children (field 2), kept verbatim so re-framing
 * preserves resource, scope, schema_url and unknown fields. Refcounted across shards; the last
 * span to go frees it. */
typedef struct {
  atomic_int refs;
  uint32_t len;
  uint32_t resource_len;
  uint32_t service_len;
  const uint8_t *resource; /* ResourceSpans blobs: the Resource message inside data, or NULL */
  const uint8_t *service;  /* service.name inside data, or NULL */
  /* ResourceSpans blobs: when the request carrying them was received (pipeline clock). A trace's
   * times (first span, root, last span) are its spans' receipt times, not when a shard got to
   * them: a busy shard must not stretch the root grace or hide its lag from the latency figure. */
  uint64_t received_ns;
  uint8_t data[];
} tt_blob_t;

/* One allocation for a run of consecutive spans of one trace in a request: the run's records
 * and bytes follow this header. A block is the unit the shards take and hold: it goes into its
 * shard's inbox, then into its trace's list, and is freed with the trace (or at once, when its
 * trace was decided before it came), so a block never outlives its trace and a run costs one
 * malloc, one trace look-up and one free instead of one a span. The run's times and signals are
 * folded here by the handler, so the shard folds a run into its trace's summary once. Built by
 * the handler before the shard's inbox lock publishes it; from then on only that shard (every
 * span of a trace goes to one) touches it. */
typedef struct span_block {
  struct span_block *next; /* in the shard's inbox, then in the trace's list */
  uint32_t size;           /* bytes allocated, counted against memory.budget until freed */
  uint16_t n;              /* records */
  uint16_t nlive;          /* records not dropped as duplicates (REC_DEAD) */
  uint8_t trace_id[16];
  /* The run's ResourceSpans and ScopeSpans bytes (a run ends where they change): one reference
   * each for the block, not one a span, so shards freeing spans of one request do not all write
   * the blobs' counters. */
  tt_blob_t *res;
  tt_blob_t *scope;
  tt_trace_summary_t sum; /* of the run's spans (policy.h) */
  bool root;              /* a span of the run starts the trace's part here (pipeline.c) */
  bool any_trace_state;   /* a span of the run has a trace_state */
} span_block_t;

/* One held span inside its block: its id, what the policies read of it without its bytes, and
 * its bytes. Records follow each other in the block, each padded to 8 bytes (span_rec_next). */
typedef struct span_rec {
  uint64_t span_id; /* the 8 id bytes as read (never 0: the handler refuses all-zero ids) */
  uint32_t len;
  uint8_t signals; /* TT_SPAN_SIG_* from the handler's scan: the errors policy reads them */
  uint8_t bits;    /* REC_* */
  uint8_t unused[2];
  uint8_t data[];
} span_rec_t;

static inline size_t span_rec_size(uint32_t len) {
  return (sizeof(span_rec_t) + len + 7) & ~(size_t)7;
}

static inline span_rec_t *span_block_first(span_block_t *b) {
  return (span_rec_t *)(void *)((uint8_t *)b + ((sizeof *b + 7) & ~(size_t)7));
}

static inline span_rec_t *span_rec_next(span_rec_t *r) {
  return (span_rec_t *)(void *)((uint8_t *)r + span_rec_size(r->len));
}

/* What else a decision may need from a span, noted by the handler so that the shard builds a
 * span's view from its record alone, without touching its bytes (cold by decision time), unless
 * the span has a trace_state (ot=rv may replace the trace id's randomness) or a policy reads
 * span names. */
#define REC_HAS_PARENT 1u
#define REC_HAS_TRACE_STATE 2u
#define REC_DEAD 4u /* a duplicate of a span its trace already held: not emitted, not counted */

/* HELD: undecided. PENDING: decided, but the decision is not final for decision.drop_delay: the
 * spans stay held, later spans join them, and evidence (a late span a keep policy matches)
 * makes it a keep. KEPT: final; only the record is left, for late spans. DROPPED: final, for the
 * moment the record is freed; the id is then remembered in the shard's dropped set. */
typedef enum { TRACE_HELD = 0, TRACE_PENDING, TRACE_KEPT, TRACE_DROPPED } trace_state_t;

typedef struct trace {
  uint8_t id[16];
  struct trace *hnext;          /* hash chain */
  struct trace *lprev, *lnext;  /* wheel slot while held; decided FIFO afterwards */
  span_block_t *blocks, **tail; /* held spans in their blocks, arrival order */
  uint32_t nspans;              /* live records in the blocks */
  uint32_t hash;                /* of id, keyed (shard.c) */
  uint8_t state;
  uint8_t deadline_trigger;
  uint8_t dkind;     /* pending or final: the decision's policy kind */
  uint8_t dtrig;     /* pending: what triggered the pending decision */
  bool pending_keep; /* pending: the verdict that becomes final when drop_delay ends */
  bool dirty;        /* pending: spans joined it this round (on the shard's dirty list) */
  uint8_t lookup;    /* pending: bus look-ups asked (LOOKUP_START, LOOKUP_FINAL) */
  struct trace *dnext;
  uint64_t bytes;
  /* decided_ns: when the decision was made (pending or final) */
  uint64_t first_seen_ns, last_seen_ns, root_seen_ns, deadline_ns, decided_ns;
  uint64_t threshold;     /* pending or final: the weight's threshold, for late spans */
  tt_trace_summary_t sum; /* of the held spans, for the policies (shard.c, trace_view) */
  bool any_trace_state;   /* a held span has a trace_state */
  char reason[40];        /* pending or final: the reason, for late spans */
  /* Span ids, to drop duplicates (a client retrying a batch we already accepted). Held: an
   * open-addressing set once the trace outgrows a linear scan (NULL before). Kept: a ring of the
   * last ids_cap span ids emitted, so a retried late span is not exported twice. Dropped: NULL. */
  uint64_t *ids;
  uint32_t ids_cap;
  uint32_t ids_n; /* kept: ids ever pushed into the ring */
} trace_t;

/* What a trace's own record costs beside its spans and span-id set: the trace_t and its share of
 * the hash table (the table doubles when full, so while traces arrive it holds one to two buckets a
 * trace; after a burst up to eight, until shard.c's maybe_shrink gives them back). Counted
 * against memory.budget while the trace is held, and again in its tombstone's cost once decided;
 * for many single-span traces it is more than the spans themselves. */
#define TT_TRACE_RECORD_COST (sizeof(trace_t) + 2 * sizeof(trace_t *))

#define TT_WHEEL_SLOTS 1024

/* Spans in a shard's inbox that wake it before its next tick: enough that the shard takes a batch
 * per wake-up, few enough that they are still in cache when it does. */
#define TT_INBOX_WAKE_SPANS 2048

/* Spans waiting in a shard's inbox past which the handler throttles (pipeline.c): about a fifth
 * of a second of a shard's work at its fastest. */
#define TT_INBOX_MAX_SPANS 131072

struct tt_pipeline_s;

/* One shard. `mu` guards the inbox and the control fields; everything under "owned" belongs to
 * the shard thread alone. */
typedef struct shard {
  struct tt_pipeline_s *p;
  unsigned idx;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  pthread_cond_t done;
  span_block_t *in_head, **in_tail;
  size_t in_n;           /* spans in the inbox */
  atomic_size_t backlog; /* in_n, for the handler's check without the lock */
  uint64_t sync_req, sync_done;
  tt_bus_answer_t *ans; /* bus answers for this shard, from the bus thread */
  size_t nans, ans_cap;
  bool stop;
  bool finished;
  /* owned by the shard thread */
  trace_t **buckets;
  size_t nbuckets;
  size_t ntraces; /* held + decided */
  size_t nheld;   /* held + pending */
  size_t npending;
  trace_t *dirty; /* pending traces that spans joined this round */
  trace_t *wheel[TT_WHEEL_SLOTS];
  uint64_t wheel_tick;          /* last tick processed */
  trace_t *dec_head, *dec_tail; /* kept traces' records, oldest first */
  size_t ndecided;
  tt_dropped_t drops;   /* dropped traces' ids (dropped.h) */
  uint64_t cache_bytes; /* what the decided-id cache costs, counted against memory.budget */
  atomic_uint_fast64_t held_bytes; /* written by the shard, read for pressure decisions */
  tt_buf_t out;
  size_t out_spans;
  tt_buf_t scratch, scratch2, scratch3;
  tt_span_view_t *views;
  size_t views_cap;
  /* Capacity of out, the scratch buffers and views at the end of the last round: written by the
   * shard, read by tt__pipeline_buffer_bytes(). Not counted against memory.budget (see
   * trim_buffers in shard.c). */
  atomic_uint_fast64_t buffer_bytes;
  tt_policy_set_t *pol; /* reference held for the current round */
  bool pol_reads_names; /* pol has a policy that reads span names (build_views) */
  bool pol_needs_spans; /* pol has a policy that needs spans, not a summary (trace_view) */
} shard_t;

struct tt_pipeline_s {
  tt_pipeline_opts_t o;
  unsigned nshards;
  shard_t *shards;
  tt_metrics_t metrics;
  /* Everything memory.budget covers: every span record and blob (inboxes included), held traces'
   * records and span-id sets, and the decided-id cache. */
  atomic_int_fast64_t bytes_held;
  atomic_bool stopping;
  atomic_int inflight; /* handler calls in progress */
  atomic_bool pressure;
  pthread_mutex_t pol_mu;
  tt_policy_set_t *policies;
  tt_bus_t *bus;
  uint8_t hash_key[16]; /* keys the shards' hash tables (siphash.h); drawn once per pipeline */
  tt_fair_t *fair;      /* senders' shares of the budget when it runs short */
  tt_sink_counts_t *sink_counts; /* [o.nsinks]: what each sink took */
  int64_t trim_peak;             /* shard 0 only: budget bytes' peak since the last trim */
  uint64_t trim_last_ns;
  bool shut;
};

uint64_t tt__pipeline_now(struct tt_pipeline_s *p);
/* Adds delta to the bytes held for undecided traces (the budget's counter and the gauge). */
void tt__pipeline_account(struct tt_pipeline_s *p, int64_t delta);
/* Adds delta to the decided-id cache's bytes: they count against the budget too. */
void tt__pipeline_account_cache(struct tt_pipeline_s *p, int64_t delta);
void tt__blob_unref(struct tt_pipeline_s *p, tt_blob_t *b);
void tt__span_block_free(struct tt_pipeline_s *p, span_block_t *b);
void *tt__shard_main(void *arg);
void tt__shard_destroy(shard_t *s);

#endif
