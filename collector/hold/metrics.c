/* Prometheus text rendering of the collector's counters: see metrics.h. */
#include "metrics.h"

#include <stdlib.h>

#include "bus.h"

static const char *const trigger_names[TT_TRIG__COUNT] = {
    "root_grace",      "idle",     "max_age",   "trace_cap",
    "memory_pressure", "shutdown", "late_span", "remote",
};

const char *tt__trigger_name(tt_trigger_t t) {
  return (unsigned)t < TT_TRIG__COUNT ? trigger_names[t] : "unknown";
}

/* A log-spaced ladder from 10 ms to 60 s (1, 2.5, 5 per decade up to 10 s, then 30 and 60):
 * idle and max_age decisions, early ones and the drop_delay wait land somewhere on it. */
static const uint64_t ladder_ms[] = {10,   25,   50,   100,   250,   500,
                                     1000, 2500, 5000, 10000, 30000, 60000};
/* Around root_grace, in percent of it: most traces are decided one grace (plus up to a wheel
 * tick) after their root, and these tell a healthy grace from one that slips. */
static const unsigned grace_pct[] = {50, 75, 100, 105, 110, 125, 150};

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void tt__metrics_init(tt_metrics_t *m, uint64_t root_grace_ns, uint64_t memory_budget) {
  uint64_t all[sizeof ladder_ms / sizeof ladder_ms[0] + sizeof grace_pct / sizeof grace_pct[0]];
  size_t n = 0;
  for (size_t i = 0; i < sizeof ladder_ms / sizeof ladder_ms[0]; i++)
    all[n++] = ladder_ms[i];
  uint64_t grace_ms = root_grace_ns / 1000000;
  for (size_t i = 0; grace_ms > 0 && i < sizeof grace_pct / sizeof grace_pct[0]; i++)
    all[n++] = grace_ms * grace_pct[i] / 100;
  qsort(all, n, sizeof all[0], cmp_u64);
  unsigned k = 0;
  for (size_t i = 0; i < n && k < TT_LATENCY_BUCKETS_MAX - 1; i++)
    if (all[i] > 0 && (k == 0 || all[i] != m->latency_bounds_ms[k - 1]))
      m->latency_bounds_ms[k++] = all[i];
  m->latency_nbounds = k;
  m->memory_budget = memory_budget;
}

void tt__metrics_observe_latency(tt_metrics_t *m, uint64_t ms) {
  unsigned i = 0;
  while (i < m->latency_nbounds && ms > m->latency_bounds_ms[i])
    i++;
  atomic_fetch_add_explicit(&m->latency_buckets[i], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->latency_sum_ms, ms, memory_order_relaxed);
  atomic_fetch_add_explicit(&m->latency_count, 1, memory_order_relaxed);
}

uint64_t tt__metrics_budget_used(tt_metrics_t *m) {
  int64_t v = atomic_load_explicit(&m->bytes_held, memory_order_relaxed) +
              atomic_load_explicit(&m->cache_bytes, memory_order_relaxed);
  return v > 0 ? (uint64_t)v : 0;
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static int counter(tt_buf_t *o, const char *name, const char *help, unsigned long long v) {
  return tt__buf_appendf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
                         v);
}

int tt__metrics_render_sinks(const tt_sink_counts_t *c, const char *const *names, size_t n,
                             tt_buf_t *o) {
  int rc = tt__buf_append_str(
      o, "# HELP tailtrace_sink_batches_total Batches of kept spans handed to each sink, by "
         "whether its submit accepted them: written for the file sink, queued for an exporter "
         "(delivery is tailtrace_exporter_spans_total).\n"
         "# TYPE tailtrace_sink_batches_total counter\n");
  for (size_t i = 0; i < n; i++)
    rc |= tt__buf_appendf(o,
                          "tailtrace_sink_batches_total{sink=\"%s\",outcome=\"accepted\"} %llu\n"
                          "tailtrace_sink_batches_total{sink=\"%s\",outcome=\"refused\"} %llu\n",
                          names[i], LOAD(c[i].batches_ok), names[i], LOAD(c[i].batches_failed));
  rc |= tt__buf_append_str(o, "# HELP tailtrace_sink_spans_total Kept spans handed to each sink, "
                              "by whether its submit accepted them (queued, for an exporter).\n"
                              "# TYPE tailtrace_sink_spans_total counter\n");
  for (size_t i = 0; i < n; i++)
    rc |= tt__buf_appendf(o,
                          "tailtrace_sink_spans_total{sink=\"%s\",outcome=\"accepted\"} %llu\n"
                          "tailtrace_sink_spans_total{sink=\"%s\",outcome=\"refused\"} %llu\n",
                          names[i], LOAD(c[i].spans_ok), names[i], LOAD(c[i].spans_failed));
  return rc;
}

int tt__metrics_render(tt_metrics_t *m, tt_buf_t *o) {
  int rc = 0;
  rc |= counter(o, "tailtrace_requests_total", "Export requests received.", LOAD(m->requests));
  rc |= tt__buf_appendf(
      o,
      "# HELP tailtrace_requests_refused_total Export requests refused, by "
      "cause.\n# TYPE tailtrace_requests_refused_total counter\n"
      "tailtrace_requests_refused_total{cause=\"invalid\"} %llu\n"
      "tailtrace_requests_refused_total{cause=\"throttled\"} %llu\n"
      "tailtrace_requests_refused_total{cause=\"unavailable\"} %llu\n"
      "tailtrace_requests_refused_total{cause=\"too_large\"} %llu\n"
      "tailtrace_requests_refused_total{cause=\"fair_share\"} %llu\n"
      "tailtrace_requests_refused_total{cause=\"backlog\"} %llu\n",
      LOAD(m->requests_invalid) + tt__refusal_count(&m->refusals, TT_REFUSE_INVALID),
      LOAD(m->requests_throttled), LOAD(m->requests_unavailable), LOAD(m->requests_too_large),
      LOAD(m->requests_throttled_share), LOAD(m->requests_throttled_backlog));
  /* What the receivers refused before the pipeline, beyond "invalid" above (refusal.h). */
  for (int c = TT_REFUSE_INVALID + 1; c < TT_REFUSE__COUNT; c++)
    rc |=
        tt__buf_appendf(o, "tailtrace_requests_refused_total{cause=\"%s\"} %llu\n",
                        tt__refuse_cause_name((tt_refuse_cause_t)c),
                        (unsigned long long)tt__refusal_count(&m->refusals, (tt_refuse_cause_t)c));
  rc |= counter(o, "tailtrace_throttled_bytes_total",
                "Request bytes refused with a retry delay under memory pressure.",
                LOAD(m->bytes_throttled));
  rc |= counter(o, "tailtrace_spans_received_total",
                "Spans seen in well-formed requests (accepted + refused one by one).",
                LOAD(m->spans_received));
  rc |= counter(o, "tailtrace_spans_accepted_total", "Spans accepted and held.",
                LOAD(m->spans_accepted));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_spans_refused_total Spans refused one by one, reported "
                        "via partial_success, by cause.\n# TYPE tailtrace_spans_refused_total "
                        "counter\n"
                        "tailtrace_spans_refused_total{cause=\"invalid\"} %llu\n"
                        "tailtrace_spans_refused_total{cause=\"invalid_utf8\"} %llu\n",
                        LOAD(m->spans_refused_invalid), LOAD(m->spans_refused_utf8));
  rc |= tt__buf_appendf(o, "# HELP tailtrace_traces_decided_total Traces decided, by decision, "
                           "reason kind and trigger.\n# TYPE tailtrace_traces_decided_total "
                           "counter\n");
  for (int k = 0; k < TT_POL__COUNT; k++)
    for (int d = 0; d < 2; d++)
      for (int t = 0; t < TT_TRIG__COUNT; t++) {
        unsigned long long v = LOAD(m->decisions[k][d][t]);
        if (v == 0)
          continue;
        rc |= tt__buf_appendf(o,
                              "tailtrace_traces_decided_total{decision=\"%s\",reason=\"%s\","
                              "trigger=\"%s\"} %llu\n",
                              d ? "keep" : "drop", tt__policy_kind_name((tt_policy_kind_t)k),
                              trigger_names[t], v);
      }
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_late_spans_total Spans arriving after their trace's "
                        "decision was final.\n# TYPE tailtrace_late_spans_total counter\n"
                        "tailtrace_late_spans_total{decision=\"keep\"} %llu\n"
                        "tailtrace_late_spans_total{decision=\"drop\"} %llu\n",
                        LOAD(m->late_spans_kept), LOAD(m->late_spans_dropped));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_traces_rescued_total Traces whose pending drop became "
                        "a keep during decision.drop_delay, by what brought the evidence.\n"
                        "# TYPE tailtrace_traces_rescued_total counter\n"
                        "tailtrace_traces_rescued_total{trigger=\"late_span\"} %llu\n"
                        "tailtrace_traces_rescued_total{trigger=\"remote\"} %llu\n",
                        LOAD(m->traces_rescued[0]), LOAD(m->traces_rescued[1]));
  rc |= counter(o, "tailtrace_pending_released_total",
                "Pending decisions made final before decision.drop_delay ended, to relieve "
                "memory pressure.",
                LOAD(m->pending_released));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_traces_pending Traces decided but still held for "
                        "decision.drop_delay (counted in tailtrace_traces_held too).\n# TYPE "
                        "tailtrace_traces_pending gauge\ntailtrace_traces_pending %lld\n",
                        (long long)atomic_load(&m->traces_pending));
  unsigned long long early = 0;
  for (int k = 0; k < TT_POL__COUNT; k++)
    for (int d = 0; d < 2; d++)
      early +=
          LOAD(m->decisions[k][d][TT_TRIG_MEMORY]) + LOAD(m->decisions[k][d][TT_TRIG_TRACE_CAP]);
  rc |= counter(o, "tailtrace_early_decisions_total",
                "Traces decided early under memory pressure or at the per-trace cap.", early);
  rc |= counter(o, "tailtrace_spans_dropped_total", "Spans of traces decided drop.",
                LOAD(m->spans_dropped));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_traces_held Traces held undecided.\n# TYPE "
                        "tailtrace_traces_held gauge\ntailtrace_traces_held %lld\n"
                        "# HELP tailtrace_held_bytes Bytes of held traces (pending ones "
                        "included), counted against memory.budget.\n# TYPE "
                        "tailtrace_held_bytes gauge\ntailtrace_held_bytes %lld\n",
                        (long long)atomic_load(&m->traces_held),
                        (long long)atomic_load(&m->bytes_held));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_decided_cache_bytes Bytes of the decided-trace cache "
                        "(counted against memory.budget).\n# TYPE tailtrace_decided_cache_bytes "
                        "gauge\ntailtrace_decided_cache_bytes %lld\n",
                        (long long)atomic_load(&m->cache_bytes));
  rc |= counter(o, "tailtrace_spans_duplicate_total",
                "Spans dropped because their trace already held or emitted their span id.",
                LOAD(m->spans_duplicate));
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_memory_budget_bytes memory.budget: what held traces and "
                        "the decided-trace cache may use together.\n# TYPE "
                        "tailtrace_memory_budget_bytes gauge\ntailtrace_memory_budget_bytes %llu\n",
                        (unsigned long long)m->memory_budget);
  rc |= tt__buf_appendf(o, "# HELP tailtrace_decision_latency_seconds Time from a trace's first "
                           "span to its decision.\n# TYPE tailtrace_decision_latency_seconds "
                           "histogram\n");
  unsigned long long cum = 0;
  for (unsigned i = 0; i <= m->latency_nbounds; i++) {
    cum += LOAD(m->latency_buckets[i]);
    if (i < m->latency_nbounds)
      rc |= tt__buf_appendf(o, "tailtrace_decision_latency_seconds_bucket{le=\"%g\"} %llu\n",
                            (double)m->latency_bounds_ms[i] / 1000, cum);
    else
      rc |=
          tt__buf_appendf(o, "tailtrace_decision_latency_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
  }
  rc |= tt__buf_appendf(o,
                        "tailtrace_decision_latency_seconds_sum %.3f\n"
                        "tailtrace_decision_latency_seconds_count %llu\n",
                        (double)LOAD(m->latency_sum_ms) / 1000, LOAD(m->latency_count));
  rc |= counter(o, "tailtrace_memory_trims_total",
                "Times free memory was handed back to the system after held bytes fell.",
                LOAD(m->memory_trims));
  rc |= counter(o, "tailtrace_spans_kept_total",
                "Spans of traces decided keep (late spans included), counted once whatever the "
                "number of sinks.",
                LOAD(m->spans_kept));
  rc |= counter(o, "tailtrace_sink_bytes_total",
                "OTLP bytes of kept batches handed to the sinks (once, whatever their number).",
                LOAD(m->export_bytes));
  return rc ? -12 : 0;
}

int tt__metrics_render_bus(struct tt_bus_s *bus, tt_metrics_t *m, tt_buf_t *o) {
  if (bus == NULL)
    return 0;
  tt_bus_stats_t st;
  tt__bus_stats(bus, &st);
  int rc = 0;
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_bus_nodes Decision bus nodes configured.\n"
                        "# TYPE tailtrace_bus_nodes gauge\ntailtrace_bus_nodes %u\n",
                        st.nodes);
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_bus_nodes_up Decision bus nodes connected.\n"
                        "# TYPE tailtrace_bus_nodes_up gauge\ntailtrace_bus_nodes_up %u\n",
                        st.nodes_up);
  rc |= counter(o, "tailtrace_bus_decisions_shared_total",
                "Keep decisions this collector shared on the bus (stored, or already there).",
                (unsigned long long)st.published);
  rc |= counter(o, "tailtrace_bus_decisions_shared_dropped_total",
                "Keep decisions that could not be shared (queue full or bus down).",
                (unsigned long long)st.publish_dropped);
  rc |= tt__buf_appendf(
      o,
      "# HELP tailtrace_bus_lookups_total Look-ups of pending traces on the bus, by result.\n"
      "# TYPE tailtrace_bus_lookups_total counter\n"
      "tailtrace_bus_lookups_total{result=\"found\"} %llu\n"
      "tailtrace_bus_lookups_total{result=\"not_found\"} %llu\n"
      "tailtrace_bus_lookups_total{result=\"failed\"} %llu\n",
      (unsigned long long)st.lookups_found,
      (unsigned long long)(st.lookups - st.lookups_found - st.lookups_failed),
      (unsigned long long)(st.lookups_failed + st.lookups_refused));
  rc |= counter(o, "tailtrace_bus_local_decisions_total",
                "Pending decisions made final here because the bus could not answer in time.",
                LOAD(m->bus_local));
  rc |= counter(o, "tailtrace_bus_errors_total",
                "Bus I/O and protocol errors (failed connects and AUTH included).",
                (unsigned long long)st.errors);
  rc |= counter(o, "tailtrace_bus_reconnects_total", "Bus reconnections after a node was lost.",
                (unsigned long long)st.reconnects);
  rc |= counter(o, "tailtrace_bus_commands_total", "Commands sent to the bus's store.",
                (unsigned long long)st.commands);
  rc |= counter(o, "tailtrace_bus_keys_total", "Keys written and read on the bus's store.",
                (unsigned long long)st.keys);
  rc |= tt__buf_appendf(o,
                        "# HELP tailtrace_bus_bytes_total Bytes exchanged with the bus's store.\n"
                        "# TYPE tailtrace_bus_bytes_total counter\n"
                        "tailtrace_bus_bytes_total{direction=\"sent\"} %llu\n"
                        "tailtrace_bus_bytes_total{direction=\"received\"} %llu\n",
                        (unsigned long long)st.bytes_sent, (unsigned long long)st.bytes_received);
  static const uint64_t bounds[TT_BUS_RTT_BUCKETS] = TT_BUS_RTT_BOUNDS_US;
  rc |= tt__buf_appendf(o, "# HELP tailtrace_bus_batch_rtt_seconds Round trip of one pipelined "
                           "batch to a bus node.\n# TYPE tailtrace_bus_batch_rtt_seconds "
                           "histogram\n");
  unsigned long long cum = 0;
  for (int i = 0; i < TT_BUS_RTT_BUCKETS; i++) {
    cum += st.rtt_us_buckets[i];
    if (bounds[i] == UINT64_MAX)
      rc |= tt__buf_appendf(o, "tailtrace_bus_batch_rtt_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    else
      rc |= tt__buf_appendf(o, "tailtrace_bus_batch_rtt_seconds_bucket{le=\"%g\"} %llu\n",
                            (double)bounds[i] / 1e6, cum);
  }
  rc |= tt__buf_appendf(o,
                        "tailtrace_bus_batch_rtt_seconds_sum %.6f\n"
                        "tailtrace_bus_batch_rtt_seconds_count %llu\n",
                        (double)st.rtt_us_sum / 1e6, (unsigned long long)st.rtt_count);
  return rc ? -12 : 0;
}
