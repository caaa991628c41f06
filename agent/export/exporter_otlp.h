/* exporter_otlp.h: the OTLP exporter object: configuration, one transport (HTTP/protobuf or
 * gRPC), the retry loop and statistics. Internal to libtailtrace; the core's exporter interface
 * wraps it (see docs/exporters.md).
 *
 * Threading: new/export/destroy on the exporter thread (one at a time); tt__otlp_exporter_cancel
 * and tt__otlp_exporter_get_stats from any thread. */
#ifndef TT_EXPORTER_OTLP_H
#define TT_EXPORTER_OTLP_H

#include <stdint.h>

#include "otlp_config.h"
#include "otlp_encode.h"
#include "tailtrace.h"

typedef struct tt__otlp_exporter_s tt__otlp_exporter_t;

/* Counters since creation; read with tt__otlp_exporter_get_stats (a consistent-enough snapshot
 * of independent relaxed atomics). Spans are counted once per batch outcome, not per attempt. */
typedef struct tt__otlp_stats_s {
  uint64_t batches_exported; /* accepted, fully or partially */
  uint64_t spans_exported;   /* accepted spans (a partial success's rejected ones excluded) */
  uint64_t bytes_sent;       /* uncompressed request bytes of successful exports */
  uint64_t attempts;         /* requests sent, retries included */
  uint64_t retries;          /* attempts after the first */
  uint64_t batches_retried;  /* batches that needed at least one retry */
  uint64_t partial_successes;
  uint64_t spans_rejected; /* partial_success.rejected_spans: dropped by the server, not retried */
  uint64_t batches_failed;
  uint64_t spans_failed;           /* sum of the four reasons below */
  uint64_t spans_failed_permanent; /* 400, UNAUTHENTICATED, ...: dropped without retry */
  uint64_t spans_failed_timeout;   /* still retryable when the export timeout ran out */
  uint64_t spans_failed_shutdown;  /* cancelled by shutdown */
  uint64_t spans_failed_encode;    /* could not be encoded (bad record or out of memory) */
  int last_code;                   /* last HTTP/gRPC status seen (0: none) */
} tt__otlp_stats_t;

/* How one export ended (tt__otlp_exporter_export). */
typedef enum {
  TT__OTLP_OK = 0,             /* accepted (partial success included) */
  TT__OTLP_FAIL_PERMANENT = 1, /* rejected (400, INVALID_ARGUMENT, 401...): not retried */
  TT__OTLP_FAIL_TIMEOUT = 2,   /* still retryable when the deadline came */
  TT__OTLP_FAIL_CANCELLED = 3, /* tt__otlp_exporter_cancel */
  TT__OTLP_FAIL_ENCODE = 4,    /* the batch could not be encoded */
} tt__otlp_outcome_t;

/* Creates an exporter from options (NULL: environment and defaults only). 0, TT_EINVAL (bad
 * endpoint or TLS file) or TT_ENOMEM. The options' strings are copied. */
int tt__otlp_exporter_new(const tt_otlp_options_t *opts, tt__otlp_exporter_t **out);

/* The resolved configuration (read-only, lives as long as the exporter). */
const tt__otlp_config_t *tt__otlp_exporter_config(const tt__otlp_exporter_t *e);

/* Encodes and sends one batch, retrying within min(now + timeout, deadline_ns) (deadline_ns 0:
 * the export timeout alone; CLOCK_MONOTONIC ns as tt_monotonic_ns). Blocks the calling
 * (exporter) thread at most until then. The spans are only read during the call. */
tt__otlp_outcome_t tt__otlp_exporter_export(tt__otlp_exporter_t *e,
                                            const tt_span_data_t *const *spans, size_t n,
                                            int64_t deadline_ns);

/* Makes the export in flight (request or backoff wait) and every later one return -ECANCELED
 * promptly. Sticky: used at shutdown once the flush deadline has passed. Any thread. */
void tt__otlp_exporter_cancel(tt__otlp_exporter_t *e);

void tt__otlp_exporter_get_stats(const tt__otlp_exporter_t *e, tt__otlp_stats_t *out);

/* Frees the exporter. Exporter thread, after the last export returned; no concurrent cancel. */
void tt__otlp_exporter_destroy(tt__otlp_exporter_t *e);

/* tt_otlp_exporter_new and tt_otlp_json_exporter_new, which plug these into the core's
 * tt_exporter_t, are public: include/tailtrace.h. */

/* One batch as an OTLP/JSON line (TracesData, "\n"-terminated) in a tt__malloc'd string; NULL
 * when out of memory. What tt_otlp_json_exporter_new writes; exposed for tests. */
char *tt__otlp_json_encode(const tt_span_data_t *const *spans, size_t n);

/* The OTLP exporter object behind an exporter made by tt_otlp_exporter_new (its state). */
static inline tt__otlp_exporter_t *tt__otlp_exporter_of(const tt_exporter_t *x) {
  return (tt__otlp_exporter_t *)x->state;
}

#endif /* TT_EXPORTER_OTLP_H */
