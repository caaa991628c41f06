/* The collector pipeline: the export handler the receivers call, N shard threads that hold spans
 * per trace and decide them, and the hand-off of kept traces to the sinks.
 *
 *   receiver thread: tt__pipeline_handle()  scan ids, validate, copy raw span bytes,
 *                                           group by shard (hash of trace id), push to inboxes
 *   shard thread i:  inbox -> trace table -> timing wheel (root+grace | idle | max age)
 *                    -> policies -> kept: re-frame + annotate -> sinks
 *
 * There is no global lock on the span path: a receiver thread takes only the inbox lock of each
 * shard its request touches, once per request. Memory is bounded by a byte budget shared by all
 * shards (one atomic counter); past it the handler answers TT_EXPORT_THROTTLED with a retry delay,
 * and shards decide their costliest traces early. */
#ifndef TT_COLLECTOR_PIPELINE_H
#define TT_COLLECTOR_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "metrics.h"
#include "policy.h"
#include "red.h"
#include "request.h"
#include "sink.h"

typedef struct tt_pipeline_s tt_pipeline_t;

/* Returns the current time in nanoseconds on a monotonic scale. */
typedef uint64_t (*tt_clock_fn)(void *ctx);

/* Makes the pipeline's decision bus; tt__pipeline_new calls it once with the callback that routes
 * answers to the shards. Returns 0 or a negative errno. */
typedef int (*tt_bus_factory_fn)(void *ctx, tt_bus_answer_fn answer, void *answer_ctx,
                                 tt_bus_t **out);

typedef struct {
  unsigned workers;           /* shard threads; 0: one per online core */
  uint64_t root_grace_ns;     /* decide this long after the root span arrived */
  uint64_t idle_timeout_ns;   /* ... or after this long without a new span */
  uint64_t max_trace_age_ns;  /* ... or at the latest this long after the first span */
  uint64_t drop_delay_ns;     /* a drop stays pending this long for late evidence; 0: final */
  uint64_t tick_ns;           /* timing wheel resolution */
  uint64_t memory_budget;     /* bytes held for undecided traces, across shards */
  uint64_t max_trace_bytes;   /* a trace reaching this is decided at once */
  uint32_t retry_after_ms;    /* the delay suggested to throttled senders */
  uint64_t late_cache_traces; /* decided trace ids remembered for late spans, across shards */
  uint64_t late_cache_ttl_ns;
  tt_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
  void *clock_ctx;
  tt_sink_t **sinks; /* borrowed; must outlive the pipeline */
  size_t nsinks;
  tt_policy_set_t *policies; /* the pipeline takes its own reference; NULL: defaults */
  /* The decision bus (NULL: none). With a bus, evidence keeps are shared, and a decision that
   * says nothing about the spans (ratio, rate_limit, no_match; keep or drop) stays pending for
   * drop_delay and is looked up when it becomes pending and when drop_delay ends: another
   * collector's keep replaces it. bus_wait_ns bounds how long the final look-up may take. */
  tt_bus_factory_fn bus_factory;
  void *bus_factory_ctx;
  uint64_t bus_wait_ns; /* 0: 1 s */
  /* Golden signals counted from every accepted span before any decision (NULL: none).
   * Borrowed: must outlive the pipeline; its tables are counted in memory_budget. */
  tt_red_t *red;
} tt_pipeline_opts_t;

/* The golden signals the pipeline counts into (opts.red), or NULL. Any thread. */
tt_red_t *tt__pipeline_red(tt_pipeline_t *p);

/* Fills o with the documented defaults (docs/config.md). */
void tt__pipeline_opts_default(tt_pipeline_opts_t *o);

/* Starts the shard threads. Returns 0 or a negative errno. */
int tt__pipeline_new(const tt_pipeline_opts_t *o, tt_pipeline_t **out);

/* The tt_export_handler_fn: ctx is the pipeline. Any thread, concurrently. */
void tt__pipeline_handle(void *ctx, const tt_export_request_t *req, tt_export_result_t *res);

/* Replaces the policies for every decision from now on (SIGHUP). Takes its own reference. */
void tt__pipeline_set_policies(tt_pipeline_t *p, tt_policy_set_t *s);

/* Waits until every shard has taken in every span handed over before the call and run its timers
 * at the clock's current time. For tests and shutdown; any thread but a shard's. */
void tt__pipeline_sync(tt_pipeline_t *p);

/* Stops accepting (the handler answers TT_EXPORT_UNAVAILABLE), decides every held trace at once
 * with the trigger "shutdown", flushes the sinks and joins the shards. Idempotent. */
void tt__pipeline_shutdown(tt_pipeline_t *p);

/* Shuts down if needed and frees. NULL is a no-op. */
void tt__pipeline_free(tt_pipeline_t *p);

/* Counters, valid while the pipeline lives. */
tt_metrics_t *tt__pipeline_metrics(tt_pipeline_t *p);

/* What sink i (of opts.sinks) took; NULL past the last. Any thread. */
const tt_sink_counts_t *tt__pipeline_sink_counts(tt_pipeline_t *p, size_t i);

/* Appends the per-sink families (tt__metrics_render_sinks), each sink labelled with its name
 * ("file", or an exporter's name). Any thread. */
int tt__pipeline_render_sink_metrics(tt_pipeline_t *p, tt_buf_t *out);

/* Bytes the shards keep between rounds for framing output (batch, scratch and span views), across
 * shards. Outside memory.budget but bounded: each buffer is shrunk back after a big trace. Any
 * thread; a snapshot as of each shard's last round. */
uint64_t tt__pipeline_buffer_bytes(tt_pipeline_t *p);

/* The decision bus, or NULL. Valid while the pipeline lives. */
tt_bus_t *tt__pipeline_bus(tt_pipeline_t *p);

/* True when every sink reports healthy. */
bool tt__pipeline_sinks_healthy(tt_pipeline_t *p);

/* The sinks the pipeline was given (borrowed), for the admin port's per-exporter metrics. */
tt_sink_t *const *tt__pipeline_sinks(tt_pipeline_t *p, size_t *n);

/* Shard index of a trace id, given the shard count (stable: tests and benchmarks use it). */
unsigned tt__pipeline_shard_of(const uint8_t trace_id[16], unsigned nshards);

#endif
