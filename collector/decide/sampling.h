/* Sampling weights and the annotation of kept spans.
 *
 * Ratio decisions follow the OpenTelemetry consistent-probability sampling spec: the randomness
 * R is the trace id's last 7 bytes (56 bits, W3C trace context level 2), the rejection threshold
 * is T = round((1 - ratio) * 2^56), and a trace is kept when R >= T. Any collector, and any late
 * span, reaches the same answer from the trace id alone. A kept span carries T in tracestate
 * (`ot=th:<hex>`) and its weight 2^56 / (2^56 - T) as the integer attribute `SampleRate`,
 * randomly rounded per trace so that weighted counts stay unbiased (tt__sample_rate).
 * Pure functions; any thread. */
#ifndef TT_COLLECTOR_SAMPLING_H
#define TT_COLLECTOR_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
/* TT_TH_MAX, tt__threshold_from_ratio, tt__trace_randomness, tt__threshold_parse and
 * tt__tracestate_rv: libtailtrace's head sampler uses the same definitions. */
#include "consistent_sampling.h"

/* The consistent ratio decision. */
bool tt__ratio_keeps(const uint8_t trace_id[16], uint64_t threshold);
/* Integer weight (>= 1) of a trace kept with threshold T, for backends that take whole numbers
 * (Honeycomb's SampleRate). The exact weight w = 2^56 / (2^56 - T) is rounded down or up at
 * random, up with probability w - floor(w), the draw being a hash of the trace id: every span
 * of a trace, late ones too, gets the same weight, and the expected weight is exactly w, so a
 * sum of SampleRate over kept traces estimates the count offered without bias (rounding to the
 * nearest made ratio 0.4 weigh 3 instead of 2.5: counts 20 % high). A whole w is exact.
 * trace_id NULL: rounded to the nearest. */
int64_t tt__sample_rate(uint64_t threshold, const uint8_t *trace_id);
/* The threshold of a keep that follows an independent upstream one of weight `weight` (a
 * SampleRate attribute): the keep probabilities multiply, so the result's keep share is
 * (2^56 - threshold) / weight, rounded to the nearest (at least 1), at full 56-bit precision so
 * that the weight read back from it is the product's: SampleRate 10 and threshold 0 give
 * e6666666666666. A weight that is not above 1, or is infinite or NaN, leaves threshold as it is.
 */
uint64_t tt__threshold_compose_weight(uint64_t threshold, double weight);
/* Writes T as the spec's th value (up to 14 hex digits, trailing zeros removed, "0" for 0) into
 * out (at least 15 bytes). */
void tt__threshold_format(uint64_t threshold, char *out);

/* Rewrites a W3C tracestate so that its `ot` member carries th:<threshold>, keeping the ot
 * member's other sub-keys and every other member; the ot member moves to the front, as W3C asks
 * for a modified entry. When the existing ot member already holds a larger threshold (the span was
 * sampled upstream with a lower probability) that one is kept, since consistent samplers compose
 * by taking the maximum. *effective receives the threshold written. Appends to out. */
int tt__tracestate_merge(const uint8_t *ts, size_t len, uint64_t threshold, tt_buf_t *out,
                         uint64_t *effective);

typedef struct {
  uint64_t threshold;      /* our decision's threshold (0 for keep-all reasons) */
  const char *reason;      /* tailtrace.decision.reason, e.g. "errors" */
  const char *trigger;     /* tailtrace.decision.trigger, e.g. "root_grace"; NULL to omit */
  const uint8_t *trace_id; /* 16 bytes: draws SampleRate's rounding (tt__sample_rate) */
} tt_annotation_t;

/* Appends to out the span re-framed for export: every field copied through unchanged except
 * trace_state (field 3), which is replaced by the merged tracestate, and any earlier SampleRate
 * or tailtrace.decision.* attributes, which are replaced by ours (appended as extra field-9
 * entries). The span's own incoming weight combines with a->threshold: a well-formed `ot=th` in
 * its tracestate by the stricter threshold (consistent decisions on the same randomness are
 * nested), else an int or double SampleRate attribute above 1 by the product of the weights
 * (tt__threshold_compose_weight); the SampleRate written and the th written then agree. Each span
 * is weighed on its own, so spans of one trace that arrive with different weights leave with
 * different weights. Returns 0, -EINVAL for a malformed span, -ENOMEM. */
int tt__span_annotate(const uint8_t *span, size_t len, const tt_annotation_t *a, tt_buf_t *out);

#endif
