/* The OTLP exporter sinks' Prometheus families (tailtrace_exporter_*), rendered for the admin
 * endpoint from each sink's stats snapshot; one table names every family, its type, help and
 * label, so adding a counter is one row. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sink_otlp.h"

typedef struct {
  const char *name, *type, *help;
  size_t off; /* of a uint64_t in tt_otlp_sink_stats_t */
  const char *label;
} family_t;

#define SOFF(f) offsetof(tt_otlp_sink_stats_t, f)

static const family_t families[] = {
    {"tailtrace_exporter_up", "gauge",
     "1 while the exporter's backend takes its batches; 0 while it is failing (retrying, "
     "spooling) or refusing them for good.",
     SOFF(up), NULL},
    {"tailtrace_exporter_refusing", "gauge",
     "1 while the backend refuses batches for good (401, 403, 400, ...): they are lost.",
     SOFF(refusing), NULL},
    {"tailtrace_exporter_batches_total", "counter",
     "Batches by outcome, per exporter: delivered once the backend acknowledged them.",
     SOFF(batches_sent), "outcome=\"delivered\""},
    {"tailtrace_exporter_batches_total", NULL, NULL, SOFF(batches_retried), "outcome=\"retried\""},
    {"tailtrace_exporter_batches_total", NULL, NULL, SOFF(batches_failed_permanent),
     "outcome=\"failed_permanent\""},
    {"tailtrace_exporter_batches_total", NULL, NULL, SOFF(batches_dropped_queue_full),
     "outcome=\"dropped_queue_full\""},
    {"tailtrace_exporter_batches_total", NULL, NULL, SOFF(batches_dropped_spool_budget),
     "outcome=\"dropped_spool_budget\""},
    {"tailtrace_exporter_batches_total", NULL, NULL, SOFF(batches_lost_at_shutdown),
     "outcome=\"lost_at_shutdown\""},
    {"tailtrace_exporter_spans_total", "counter",
     "Spans by final outcome, per exporter: delivered once the backend acknowledged them; every "
     "other outcome is lost.",
     SOFF(spans_sent), "outcome=\"delivered\""},
    {"tailtrace_exporter_spans_total", NULL, NULL, SOFF(spans_failed_permanent),
     "outcome=\"failed_permanent\""},
    {"tailtrace_exporter_spans_total", NULL, NULL, SOFF(spans_rejected),
     "outcome=\"rejected_partial\""},
    {"tailtrace_exporter_spans_total", NULL, NULL, SOFF(spans_dropped_queue_full),
     "outcome=\"dropped_queue_full\""},
    {"tailtrace_exporter_spans_total", NULL, NULL, SOFF(spans_dropped_spool_budget),
     "outcome=\"dropped_spool_budget\""},
    {"tailtrace_exporter_spans_total", NULL, NULL, SOFF(spans_lost_at_shutdown),
     "outcome=\"lost_at_shutdown\""},
    {"tailtrace_exporter_oversized_requests_total", "counter",
     "Requests over max_request_size: one span too big to split, sent alone.",
     SOFF(requests_oversized), NULL},
    {"tailtrace_exporter_spool_errors_total", "counter",
     "Spool writes, reads and consumed marks that failed.", SOFF(spool_errors), NULL},
    {"tailtrace_exporter_spool_corrupt_records_total", "counter",
     "Corrupt spool records found at start; each loses the rest of its segment file.",
     SOFF(spool_corrupt_records), NULL},
    {"tailtrace_exporter_spool_truncated_bytes_total", "counter",
     "Bytes of torn segment tails (a write cut short by a crash) dropped at start.",
     SOFF(spool_truncated_bytes), NULL},
    {"tailtrace_exporter_spooled_spans_total", "counter",
     "Spans written to the disk spool while the backend was failing (or every span, with "
     "spool.mode always).",
     SOFF(spans_spooled), NULL},
    {"tailtrace_exporter_queue_bytes", "gauge", "Bytes in the memory queue.", SOFF(queue_bytes),
     NULL},
    {"tailtrace_exporter_queue_spans", "gauge",
     "Spans in the memory queue, not delivered yet (the request in flight included).",
     SOFF(queue_spans), NULL},
    {"tailtrace_exporter_spool_bytes", "gauge",
     "Bytes of the batches waiting in the disk spool (0 once it is drained).", SOFF(spool_bytes),
     NULL},
    {"tailtrace_exporter_spool_budget_bytes", "gauge",
     "What may wait in the disk spool (spool.max_size less one segment) before its oldest "
     "batches are dropped; 0 without a spool.",
     SOFF(spool_budget_bytes), NULL},
    {"tailtrace_exporter_spool_batches", "gauge", "Batches waiting in the disk spool.",
     SOFF(spool_batches), NULL},
    {"tailtrace_exporter_oldest_spooled_age_seconds", "gauge", "Age of the oldest spooled batch.",
     SOFF(oldest_spooled_age_ms), NULL},
};

int tt__sink_otlp_render_metrics(tt_sink_t *const *sinks, size_t n, tt_buf_t *out) {
  size_t nf = sizeof families / sizeof families[0];
  tt_otlp_sink_stats_t *st = calloc(n ? n : 1, sizeof *st);
  if (st == NULL)
    return -ENOMEM;
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    if (tt__sink_is_otlp(sinks[i])) {
      tt__sink_otlp_stats(sinks[i], &st[i]);
      count++;
    }
  int rc = 0;
  for (size_t f = 0; count > 0 && f < nf; f++) {
    const family_t *fam = &families[f];
    if (fam->type != NULL)
      rc |= tt__buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
                            fam->type);
    for (size_t i = 0; i < n; i++) {
      if (!tt__sink_is_otlp(sinks[i]))
        continue;
      uint64_t v;
      memcpy(&v, (const char *)&st[i] + fam->off, sizeof v);
      const char *name = tt__sink_otlp_name(sinks[i]);
      if (fam->off == SOFF(oldest_spooled_age_ms))
        rc |= tt__buf_appendf(out, "%s{exporter=\"%s\"} %.3f\n", fam->name, name, (double)v / 1000);
      else
        rc |= tt__buf_appendf(out, "%s{exporter=\"%s\"%s%s} %llu\n", fam->name, name,
                              fam->label ? "," : "", fam->label ? fam->label : "",
                              (unsigned long long)v);
    }
  }
  free(st);
  return rc ? -ENOMEM : 0;
}
