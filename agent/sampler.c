/* Head samplers from the OpenTelemetry SDK specification. The ratio sampler follows the
 * specification's consistent probability sampling (consistent_sampling.h, the one definition
 * tailtrace-collector's ratio policy uses too): the randomness R (the parent's `ot=rv:` value, else
 * the trace id's right 56 bits, random under W3C Level 2) is kept when R >= T, with the rejection
 * threshold T = 2^56 - round(ratio * 2^56). So the library and the collector keep the same traces
 * at the same ratio, and every trace kept at a ratio is also kept at any higher one. */
#include "internal.h"

#include "consistent_sampling.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The randomness the ratio decision uses: an explicit `ot=rv:` value in the parent's tracestate
 * (a remote parent's, or the local parent's it inherited) takes precedence over the trace id's
 * bits, as the specification asks, so a service that set rv for a trace without random id bits is
 * sampled consistently here too. */
static int ratio_says_yes(uint64_t threshold, const uint8_t id[16], const char *parent_ts) {
  uint64_t r;
  if (parent_ts == NULL || parent_ts[0] == '\0' ||
      tt__tracestate_rv((const uint8_t *)parent_ts, strlen(parent_ts), &r) != 0)
    r = tt__trace_randomness(id);
  return r >= threshold;
}

int tt__sample(const tt__provider_t *p, const tt_span_context_t *parent, int has_parent,
               const uint8_t trace_id[16], const char *parent_ts) {
  switch (p->sampler) {
    case TT_SAMPLER_ALWAYS_ON:
      return 1;
    case TT_SAMPLER_ALWAYS_OFF:
      return 0;
    case TT_SAMPLER_TRACEIDRATIO:
      return ratio_says_yes(p->ratio_threshold, trace_id, parent_ts);
    case TT_SAMPLER_PARENTBASED_ALWAYS_ON:
    case TT_SAMPLER_PARENTBASED_ALWAYS_OFF:
    case TT_SAMPLER_PARENTBASED_TRACEIDRATIO:
    case TT_SAMPLER_FROM_ENV:
      /* With a parent (local or remote) its sampled flag decides, the spec's default delegates
       * for all four parent cases. */
      if (has_parent)
        return (parent->trace_flags & TT_TRACE_FLAG_SAMPLED) != 0;
      if (p->sampler == TT_SAMPLER_PARENTBASED_ALWAYS_OFF)
        return 0;
      if (p->sampler == TT_SAMPLER_PARENTBASED_TRACEIDRATIO)
        return ratio_says_yes(p->ratio_threshold, trace_id, parent_ts);
      return 1;
  }
  return 1;
}

/* Reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG. Unknown names fall back to the default
 * with a warning rather than failing start-up: tracing must never stop the host. */
int tt__sampler_from_env(tt_sampler_kind_t *kind, double *ratio) {
  static const struct {
    const char *name;
    tt_sampler_kind_t kind;
  } names[] = {
      {"always_on", TT_SAMPLER_ALWAYS_ON},
      {"always_off", TT_SAMPLER_ALWAYS_OFF},
      {"traceidratio", TT_SAMPLER_TRACEIDRATIO},
      {"parentbased_always_on", TT_SAMPLER_PARENTBASED_ALWAYS_ON},
      {"parentbased_always_off", TT_SAMPLER_PARENTBASED_ALWAYS_OFF},
      {"parentbased_traceidratio", TT_SAMPLER_PARENTBASED_TRACEIDRATIO},
  };
  *kind = TT_SAMPLER_PARENTBASED_ALWAYS_ON;
  *ratio = 1.0;
  const char *s = getenv("OTEL_TRACES_SAMPLER");
  if (s != NULL && *s != '\0') {
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
      if (strcmp(s, names[i].name) == 0)
        break;
    if (i == sizeof names / sizeof names[0]) {
      TT_LOG(TT_LOG_WARN, "OTEL_TRACES_SAMPLER=%s is not supported; using parentbased_always_on",
             s);
    } else {
      *kind = names[i].kind;
    }
  }
  const char *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
  if (arg != NULL && *arg != '\0' &&
      (*kind == TT_SAMPLER_TRACEIDRATIO || *kind == TT_SAMPLER_PARENTBASED_TRACEIDRATIO)) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
      TT_LOG(TT_LOG_WARN, "OTEL_TRACES_SAMPLER_ARG=%s is not a ratio in [0,1]; using 1.0", arg);
    } else {
      *ratio = v;
    }
  }
  return 0;
}
