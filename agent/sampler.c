/* Head samplers from the OpenTelemetry SDK specification. The ratio samplers follow the
 * specification's consistent probability sampling (consistent_sampling.h, the definitions
 * tailtrace-collector's ratio policy uses too): the randomness R (the parent's `ot=rv:` value, else
 * the trace id's right 56 bits, random under W3C Level 2) is kept when R >= T, with the rejection
 * threshold T = 1 - ratio at the specification's default precision (4 hex digits), and a kept span
 * carries T as `ot=th:` in its tracestate. Every trace kept at a ratio is also kept at any higher
 * one, here and by any collector or SDK that follows the rule. */
#include "internal.h"

#include "consistent_sampling.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The randomness the ratio decision uses: an explicit `ot=rv:` value in the parent's tracestate
 * (a remote parent's, or the local parent's it inherited) takes precedence over the trace id's
 * bits, as the specification asks, so a service that set rv for a trace without random id bits is
 * sampled consistently here too. *explicit says which it was. */
static uint64_t randomness(const uint8_t id[16], const char *parent_ts, int *explicit_rv) {
  uint64_t r;
  *explicit_rv = parent_ts != NULL && parent_ts[0] != '\0' &&
                 tt__tracestate_rv((const uint8_t *)parent_ts, strlen(parent_ts), &r) == 0;
  return *explicit_rv ? r : tt__trace_randomness(id);
}

/* The `th` sub-key of a tracestate's ot member, when there is a well-formed one. */
static int parent_threshold(const char *ts, uint64_t *th) {
  size_t n = 0, pos = 0, kn;
  const uint8_t *ot = tt__tracestate_ot((const uint8_t *)ts, strlen(ts), &n), *k;
  while (tt__cs_next(ot, n, &pos, ';', &k, &kn))
    if (kn > 3 && memcmp(k, "th:", 3) == 0)
      return tt__threshold_parse((const char *)k + 3, kn - 3, th) == 0;
  return 0;
}

/* Writes ts with its ot member's th set to th (has_th) or removed (!has_th) into
 * out[TT_TRACESTATE_MAX_LEN + 1]. The ot member, being modified, moves to the front as W3C Trace
 * Context asks; its other sub-keys (rv above all, which must travel unchanged) and the other
 * members keep their order. If the ot value would pass the 256 characters a tracestate value may
 * have, th is left out (a threshold that cannot be written is no threshold). The result is
 * normalised by tt_tracestate_parse: past 32 members the right-most goes, past 512 characters
 * whole members go by the W3C rule. Returns the length, or -1 (out is then "", nothing kept). */
static int set_threshold(const char *ts, int has_th, uint64_t th, char *out) {
  char tmp[TT_TRACESTATE_MAX_LEN + 300];
  size_t o = 0, n = strlen(ts), otn = 0, pos, kn;
  const uint8_t *ot = tt__tracestate_ot((const uint8_t *)ts, n, &otn), *k;
  memcpy(tmp, "ot=", 3);
  o = 3;
  if (has_th) {
    memcpy(tmp + o, "th:", 3);
    o += 3;
    o += tt__threshold_encode(th, tmp + o);
  }
  pos = 0;
  while (tt__cs_next(ot, otn, &pos, ';', &k, &kn)) {
    if (kn == 0 || (kn >= 3 && memcmp(k, "th:", 3) == 0))
      continue;
    if (o > 3)
      tmp[o++] = ';';
    memcpy(tmp + o, k, kn);
    o += kn;
  }
  if (o - 3 > 256 && has_th)
    return set_threshold(ts, 0, 0, out);
  if (o == 3)
    o = 0; /* an empty ot member is no member */
  int members = o > 0;
  const uint8_t *m;
  size_t mn;
  pos = 0;
  while (tt__cs_next((const uint8_t *)ts, n, &pos, ',', &m, &mn)) {
    tt__cs_trim(&m, &mn);
    if (mn == 0 || (mn >= 3 && memcmp(m, "ot=", 3) == 0))
      continue;
    if (members == 32 || o + 1 + mn > sizeof tmp)
      break;
    if (o > 0)
      tmp[o++] = ',';
    memcpy(tmp + o, m, mn);
    o += mn;
    members++;
  }
  int len = tt_tracestate_parse(tmp, o, out, TT_TRACESTATE_MAX_LEN + 1);
  if (len < 0)
    out[0] = '\0';
  return len;
}

/* Points *ts at the tracestate the span carries: parent_ts when the edit leaves it as it was. */
static void edit_threshold(const char *parent_ts, int has_th, uint64_t th, char *buf,
                           const char **ts) {
  if (!has_th && (parent_ts[0] == '\0' || strstr(parent_ts, "th:") == NULL))
    return; /* nothing to remove */
  if (set_threshold(parent_ts, has_th, th, buf) >= 0 && strcmp(buf, parent_ts) != 0)
    *ts = buf;
}

/* A ratio decision on a trace continued from elsewhere relies on the trace id's randomness; the
 * specification asks for a warning when the parent did not confirm it with the random flag (a W3C
 * Level 1 caller, or an id that is not random) and gave no rv. Once per process. */
static void warn_unconfirmed_randomness(void) {
  static _Atomic int warned;
  if (!atomic_exchange_explicit(&warned, 1, memory_order_relaxed))
    TT_LOG(TT_LOG_WARN, "the traceidratio sampler is presuming trace ids are random, but a parent "
                        "did not set the W3C random trace flag (and gave no ot=rv): consistent "
                        "sampling needs callers on W3C Trace Context Level 2 (reported once)");
}

/* The ratio sampler (the specification's consistent probability sampler): keep when R >= T, and
 * write th:T into the span's tracestate when kept, so whoever receives the span knows its weight
 * (1 / probability); remove any th when dropped, since the spans this decision yields carry no
 * known probability. */
static int ratio_decide(const tt__provider_t *p, const tt_span_context_t *parent, int has_parent,
                        const uint8_t id[16], const char *parent_ts, char *buf, const char **ts) {
  int explicit_rv;
  uint64_t r = randomness(id, parent_ts, &explicit_rv);
  if (has_parent && !explicit_rv && !(parent->trace_flags & TT_TRACE_FLAG_RANDOM))
    warn_unconfirmed_randomness();
  int keep = r >= p->ratio_threshold;
  edit_threshold(parent_ts, keep, p->ratio_threshold, buf, ts);
  return keep;
}

int tt__sample(const tt__provider_t *p, const tt_span_context_t *parent, int has_parent,
               const uint8_t trace_id[16], const char *parent_ts,
               char ts_buf[TT_TRACESTATE_MAX_LEN + 1], const char **ts) {
  if (parent_ts == NULL)
    parent_ts = "";
  *ts = parent_ts;
  switch (p->sampler) {
    case TT_SAMPLER_ALWAYS_ON:
      return 1;
    case TT_SAMPLER_ALWAYS_OFF:
      return 0;
    case TT_SAMPLER_TRACEIDRATIO:
      return ratio_decide(p, parent, has_parent, trace_id, parent_ts, ts_buf, ts);
    case TT_SAMPLER_PARENTBASED_ALWAYS_ON:
    case TT_SAMPLER_PARENTBASED_ALWAYS_OFF:
    case TT_SAMPLER_PARENTBASED_TRACEIDRATIO:
    case TT_SAMPLER_FROM_ENV:
      /* With a parent (local or remote) its sampled flag decides, the spec's default delegates
       * for all four parent cases. */
      if (has_parent) {
        int sampled = (parent->trace_flags & TT_TRACE_FLAG_SAMPLED) != 0;
        /* Parent-based in consistent sampling: the parent's threshold is the span's, unless it
         * is apparently inconsistent (the parent sampled although R < th) or the span is not
         * sampled; then it is erased, as the specification asks. Only the ratio mode edits a
         * tracestate: the always_on/off modes pass it on untouched. */
        if (p->sampler == TT_SAMPLER_PARENTBASED_TRACEIDRATIO) {
          uint64_t th;
          int explicit_rv;
          if (!sampled || (parent_threshold(parent_ts, &th) &&
                           randomness(trace_id, parent_ts, &explicit_rv) < th))
            edit_threshold(parent_ts, 0, 0, ts_buf, ts);
        }
        return sampled;
      }
      if (p->sampler == TT_SAMPLER_PARENTBASED_ALWAYS_OFF)
        return 0;
      if (p->sampler == TT_SAMPLER_PARENTBASED_TRACEIDRATIO)
        return ratio_decide(p, parent, 0, trace_id, parent_ts, ts_buf, ts);
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
