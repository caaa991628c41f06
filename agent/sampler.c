/* Head samplers from the OpenTelemetry SDK specification. The ratio sampler follows the
 * specification's consistent probability sampling: the trace id's right 56 bits R (random under
 * W3C Level 2) are kept when R >= T, with the rejection threshold T = (1 - ratio) * 2^56. An SDK
 * or collector that follows the same rule (tailtrace-collector's ratio policy does, in
 * collector/sampling.c) keeps the same traces at the same ratio, and every trace kept at a ratio
 * is also kept at any higher one. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

uint64_t tt__ratio_threshold(double ratio) {
  const uint64_t max = 1ull << 56;
  if (!(ratio > 0.0))
    return max; /* R never reaches 2^56: nothing is kept */
  if (ratio >= 1.0)
    return 0;
  /* Rounds the kept share, as the collector does: 1 - ratio would lose a small ratio's low bits. */
  uint64_t keep = (uint64_t)llround(ldexp(ratio, 56));
  return keep >= max ? 0 : max - keep;
}

static int ratio_says_yes(uint64_t threshold, const uint8_t id[16]) {
  uint64_t r = 0;
  for (int i = 9; i < 16; i++)
    r = r << 8 | id[i];
  return r >= threshold;
}

int tt__sample(const tt__provider_t *p, const tt_span_context_t *parent, int has_parent,
               const uint8_t trace_id[16]) {
  switch (p->sampler) {
    case TT_SAMPLER_ALWAYS_ON:
      return 1;
    case TT_SAMPLER_ALWAYS_OFF:
      return 0;
    case TT_SAMPLER_TRACEIDRATIO:
      return ratio_says_yes(p->ratio_threshold, trace_id);
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
        return ratio_says_yes(p->ratio_threshold, trace_id);
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
