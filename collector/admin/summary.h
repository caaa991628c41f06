/* The periodic summary and the state-change lines that come from the pipeline's counters.
 *
 * A thread of its own wakes every second. Every `interval_ms` it logs one info line, "summary",
 * with what happened since the previous one: spans in, traces kept and dropped by reason (the
 * policy kind), requests throttled and refused by cause, spans handed to each sink and delivered
 * by each exporter; and what is held now. Each second it also checks memory pressure and logs a
 * line when it starts ("memory pressure on") and when it ends ("memory pressure off"), once per
 * change. The exporters log their own changes (backend down and up, spool draining and drained).
 *
 * Threads: start and stop from the controlling thread; the summary thread only reads atomics
 * and the sinks' stats, which are safe from any thread. */
#ifndef TT_COLLECTOR_SUMMARY_H
#define TT_COLLECTOR_SUMMARY_H

#include <stdint.h>

#include "pipeline.h"

typedef struct tt_summary_s tt_summary_t;

typedef struct {
  tt_pipeline_t *pipeline; /* borrowed; must outlive the summary */
  uint64_t memory_budget;  /* memory.budget, for the pressure lines */
  uint32_t interval_ms;    /* between two summaries; 0: no summary (pressure lines still) */
  uint32_t poll_ms;        /* between two pressure checks; 0: 1000 */
} tt_summary_opts_t;

/* Starts the thread. Returns 0 or a negative errno. */
int tt__summary_start(const tt_summary_opts_t *o, tt_summary_t **out);

/* Appends the summary's JSON members for what changed since the previous call (the first call:
 * since start) to out, without braces, as the "summary" line carries them. For tests; the
 * thread calls it too. Not concurrently with itself. */
int tt__summary_members(tt_summary_t *s, tt_buf_t *out);

/* Stops and joins the thread, frees. NULL is a no-op. */
void tt__summary_stop(tt_summary_t *s);

#endif
