/* Golden signals (RED: rate, errors, duration) from every accepted span, before any decision.
 *
 * Tail sampling keeps few normal traces, so rates and percentiles computed downstream from kept
 * spans are biased or noisy; the receiver sees every span first, so it counts them here, per
 * series: service (resource service.name), operation (span name), span kind, status code, and
 * configured attributes. Each series has a request count, an error count and a duration
 * histogram; docs/signals.md has the metric names and the bucket choice.
 *
 * Ownership: main builds one tt_red_t and lends it to the pipeline (which counts) and the admin
 * port (which renders). Counting takes no lock: each receiver thread counts into its own table,
 * whose counters only it writes (relaxed atomics, so the admin thread may read them at any
 * time); a label set a thread has not seen before is looked up once in the shared registry under
 * its mutex, which also applies the cardinality caps. A scrape takes that mutex and sums the
 * threads' tables. */
#ifndef TT_COLLECTOR_RED_H
#define TT_COLLECTOR_RED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

#define TT_RED_MAX_DIMS 8
#define TT_RED_DIM_KEY_MAX 128

/* What to count (the `signals:` section, docs/config.md). */
typedef struct {
  bool enabled;
  uint32_t kinds; /* bit k set: spans of OTLP SpanKind k (0 unspecified ... 5 consumer) count */
  bool roots;     /* spans without a parent in this process count whatever their kind */
  uint32_t ndims;
  char dims[TT_RED_MAX_DIMS][TT_RED_DIM_KEY_MAX]; /* span attribute keys, one label each */
  uint32_t max_series;                            /* label sets, the overflow series not included */
  uint32_t max_values; /* distinct values of one label (service, operation, each dim) */
} tt_red_opts_t;

typedef struct tt_red_s tt_red_t;

/* Adds delta bytes to the collector's memory accounting; any thread. */
typedef void (*tt_red_account_fn)(void *ctx, int64_t delta);

/* Fills o with the defaults: enabled, SERVER and CONSUMER spans and roots, no extra dimension,
 * 1000 series, 200 values per label. */
void tt__red_opts_default(tt_red_opts_t *o);

/* Builds the aggregation (nothing counted yet). Returns 0, -EINVAL (bad options), -ENOMEM. The
 * options are copied. Main thread. */
int tt__red_new(const tt_red_opts_t *o, tt_red_t **out);

/* Frees it; no thread may count or render any more. NULL is a no-op. */
void tt__red_free(tt_red_t *r);

/* Sends the memory the tables take from now on (and what they took so far) to fn. Call before
 * any span is counted; fn must outlive the counting. */
void tt__red_bind_account(tt_red_t *r, tt_red_account_fn fn, void *ctx);

/* The slow part of tt__red_span: counts one selected span. */
void tt__red_count(tt_red_t *r, const tt_span_facts_t *f, const uint8_t *span, size_t len,
                   const uint8_t *service, size_t service_len);

/* The selection the span path reads without a call: the first member of struct tt_red_s, set
 * by tt__red_new, then read-only. */
typedef struct {
  uint32_t kinds;
  bool roots;
} tt_red_select_t;

static inline const tt_red_select_t *tt__red_select(const tt_red_t *r) {
  return (const tt_red_select_t *)(const void *)r;
}

/* Checks options (dimension keys, their label names, caps); 0, or -EINVAL with err saying what
 * is wrong. tt__red_new and the configuration loader both apply it. */
int tt__red_check_opts(const tt_red_opts_t *o, char *err, size_t errlen);

/* The Prometheus label name of an attribute key: every character other than [A-Za-z0-9_]
 * becomes '_', and a leading digit gets a '_' before it ("http.route" -> "http_route"). */
void tt__red_label_name(const char *key, char *out, size_t outlen);

/* Counts one accepted span, pending until tt__red_commit, if the configuration selects it: f as
 * tt__wire_scan_span filled it (signals included), span/len its bytes (read for dimension
 * attributes), service the resource's service.name (NULL: absent), root whether its parent is not
 * in this process. Inline so that a span that is not counted costs a test or two. Receiver threads;
 * r may be NULL (off). */
static inline void tt__red_span(tt_red_t *r, const tt_span_facts_t *f, const uint8_t *span,
                                size_t len, const uint8_t *service, size_t service_len, bool root) {
  if (r == NULL)
    return;
  const tt_red_select_t *s = tt__red_select(r);
  if (((f->kind < 32 ? s->kinds >> f->kind : 0) & 1u) == 0 && !(root && s->roots))
    return;
  tt__red_count(r, f, span, len, service, service_len);
}

/* A request's counts become visible only once it is accepted: a request refused after its spans
 * were scanned (throttled, too large, malformed further on) comes back, or never counts. The
 * handler calls tt__red_begin before its walk over a request's spans (it drops what a refused
 * request on this thread left pending) and tt__red_commit once the request is accepted. Receiver
 * threads; r may be NULL. */
void tt__red_begin_slow(tt_red_t *r);
void tt__red_commit_slow(tt_red_t *r);
static inline void tt__red_begin(tt_red_t *r) {
  if (r != NULL)
    tt__red_begin_slow(r);
}
static inline void tt__red_commit(tt_red_t *r) {
  if (r != NULL)
    tt__red_commit_slow(r);
}

/* Appends the families in Prometheus text format (docs/signals.md). Any thread; takes the
 * registry mutex for the time of the render (new label sets wait, counting does not). Returns 0
 * or -ENOMEM. */
int tt__red_render(tt_red_t *r, tt_buf_t *out);

/* Totals, for tests and the docs' figures. */
typedef struct {
  uint64_t series;         /* label sets registered, the overflow series not included */
  uint64_t spans;          /* spans counted */
  uint64_t overflow_dim;   /* spans with at least one label value replaced by __overflow__ */
  uint64_t overflow_total; /* spans counted in the all-__overflow__ series (max_series reached) */
  int64_t bytes;           /* memory the tables take, as accounted */
} tt_red_stats_t;
void tt__red_stats(tt_red_t *r, tt_red_stats_t *out);

/* The histogram's upper bounds in nanoseconds (the +Inf bucket not included). */
const uint64_t *tt__red_bounds_ns(size_t *n);

#endif
