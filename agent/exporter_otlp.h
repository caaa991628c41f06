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

/* Creates an exporter from options (NULL: environment and defaults only). 0, -EINVAL (bad
 * endpoint or TLS file) or -ENOMEM. The options' strings are copied. */
int tt__otlp_exporter_new(const tt_otlp_options_t *opts, tt__otlp_exporter_t **out);

/* The resolved configuration (read-only, lives as long as the exporter). */
const tt__otlp_config_t *tt__otlp_exporter_config(const tt__otlp_exporter_t *e);

/* Encodes and sends one batch, retrying within min(now + timeout, deadline_ns) (deadline_ns 0:
 * the export timeout alone). Blocks the calling (exporter) thread at most until then. Returns 0
 * when the batch was accepted (partial success included), -EPROTO on a permanent rejection,
 * -ETIMEDOUT when still failing at the deadline, -ECANCELED after cancel, -EINVAL/-ENOMEM when
 * the batch could not be encoded. The spans are only read during the call. */
int tt__otlp_exporter_export(tt__otlp_exporter_t *e, const tt__otlp_span_t *spans, size_t n,
                             int64_t deadline_ns);

/* Makes the export in flight (request or backoff wait) and every later one return -ECANCELED
 * promptly. Sticky: used at shutdown once the flush deadline has passed. Any thread. */
void tt__otlp_exporter_cancel(tt__otlp_exporter_t *e);

void tt__otlp_exporter_get_stats(const tt__otlp_exporter_t *e, tt__otlp_stats_t *out);

/* Frees the exporter. Exporter thread, after the last export returned; no concurrent cancel. */
void tt__otlp_exporter_destroy(tt__otlp_exporter_t *e);

#endif /* TT_EXPORTER_OTLP_H */
