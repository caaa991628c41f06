/* Tail-sampling policy evaluation: see policy.h. */
#include "policy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"

static const char *const kind_names[TT_POL__COUNT] = {
    "errors", "latency", "attribute", "rate_limit", "ratio", "no_match", "remote",
};

const char *tt__policy_kind_name(tt_policy_kind_t k) {
  return (unsigned)k < TT_POL__COUNT ? kind_names[k] : "unknown";
}

int tt__policy_kind_parse(const char *s) {
  for (int i = 0; i < TT_POL_NO_MATCH; i++)
    if (strcmp(s, kind_names[i]) == 0)
      return i;
  return -1;
}

tt_policy_set_t *tt__policy_set_new(size_t n) {
  tt_policy_set_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return NULL;
  s->items = calloc(n ? n : 1, sizeof *s->items);
  if (s->items == NULL) {
    free(s);
    return NULL;
  }
  s->n = n;
  atomic_init(&s->refs, 1);
  for (size_t i = 0; i < n; i++)
    s->items[i].keep = true;
  return s;
}

/* glibc's regcomp copies a repeated group once per repetition it must spell out (a{3} is aaa,
 * a+ is aa*), and stacked repetitions multiply: "2+++...+" or "((a{255}){255}){255}" from one
 * line of YAML take gigabytes before regcomp returns. Policies are configuration, but a
 * configuration error must not take the daemon down, so patterns are checked first: stacked
 * repetition operators (undefined in POSIX ERE anyway) are refused, and the size the pattern
 * spells out, counting each atom once per copy, must stay under REGEX_MAX_COST. */
#define REGEX_MAX_LEN 1024
#define REGEX_MAX_COST 20000.0
#define REGEX_MAX_DEPTH 32

/* Parses the repetition at *pp (after an atom of cost `atom`); returns the atom's cost with it,
 * or -1 with err set. Moves *pp past the repetition. */
static double regex_repeat(const char **pp, double atom, char *err, size_t errlen) {
  const char *p = *pp;
  int reps = 0;
  for (;;) {
    double mult;
    if (*p == '*' || *p == '?') {
      mult = 1;
      p++;
    } else if (*p == '+') {
      mult = 2;
      p++;
    } else if (*p == '{') {
      char *end;
      unsigned long m = strtoul(p + 1, &end, 10), n = m;
      if (end == p + 1) /* "{" not followed by a count is a literal in glibc's ERE */
        break;
      if (*end == ',') {
        const char *q = end + 1;
        n = strtoul(q, &end, 10);
        if (end == q)
          n = m + 1;
      }
      if (*end != '}')
        break; /* malformed: regcomp reports it */
      mult = (double)(m > n ? m : n);
      if (mult < 1)
        mult = 1;
      p = end + 1;
    } else {
      break;
    }
    if (++reps > 1) {
      snprintf(err, errlen, "bad regex: repetition operators directly after another");
      return -1;
    }
    atom *= mult;
  }
  *pp = p;
  return atom;
}

/* The cost of the alternation starting at *pp up to ')' or the end; moves *pp there. */
static double regex_alt(const char **pp, int depth, char *err, size_t errlen) {
  double total = 0, seq = 0;
  const char *p = *pp;
  if (depth > REGEX_MAX_DEPTH) {
    snprintf(err, errlen, "bad regex: groups nested deeper than %d", REGEX_MAX_DEPTH);
    return -1;
  }
  while (*p != '\0' && *p != ')') {
    double atom = 1;
    if (*p == '|') {
      total += seq;
      seq = 0;
      p++;
      continue;
    }
    if (*p == '(') {
      p++;
      atom = regex_alt(&p, depth + 1, err, errlen);
      if (atom < 0)
        return -1;
      if (*p == ')')
        p++;
      atom += 1;
    } else if (*p == '[') {
      p++;
      if (*p == '^')
        p++;
      if (*p == ']')
        p++;
      while (*p != '\0' && *p != ']') {
        if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
          const char *close = strchr(p + 2, p[1]);
          p = close != NULL && close[1] == ']' ? close + 2 : p + 1;
        } else {
          p++;
        }
      }
      if (*p == ']')
        p++;
    } else if (*p == '\\' && p[1] != '\0') {
      p += 2;
    } else {
      p++;
    }
    atom = regex_repeat(&p, atom, err, errlen);
    if (atom < 0)
      return -1;
    seq += atom;
    if (seq + total > REGEX_MAX_COST) {
      snprintf(err, errlen, "bad regex: spells out too many repetitions (limit %.0f atoms)",
               REGEX_MAX_COST);
      return -1;
    }
  }
  *pp = p;
  return total + seq;
}

static int regex_check(const char *pat, char *err, size_t errlen) {
  if (strlen(pat) > REGEX_MAX_LEN) {
    snprintf(err, errlen, "bad regex: longer than %d characters", REGEX_MAX_LEN);
    return -EINVAL;
  }
  const char *p = pat;
  while (*p != '\0') {
    if (regex_alt(&p, 0, err, errlen) < 0)
      return -EINVAL;
    if (*p == ')')
      p++; /* unbalanced: regcomp reports it */
  }
  return 0;
}

int tt__policy_prepare(tt_policy_t *p, char *err, size_t errlen) {
  if (p->name[0] == '\0')
    snprintf(p->name, sizeof p->name, "%s", tt__policy_kind_name(p->kind));
  switch (p->kind) {
    case TT_POL_ATTRIBUTE:
      if (p->key == NULL || p->key[0] == '\0') {
        snprintf(err, errlen, "attribute policy needs a key");
        return -EINVAL;
      }
      if ((p->op == TT_ATTR_EQUALS || p->op == TT_ATTR_REGEX) && p->value == NULL) {
        snprintf(err, errlen, "attribute policy with op equals/regex needs a value");
        return -EINVAL;
      }
      if (p->op == TT_ATTR_REGEX) {
        if (regex_check(p->value, err, errlen) != 0)
          return -EINVAL;
        int rc = regcomp(&p->re, p->value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
          char msg[128];
          regerror(rc, &p->re, msg, sizeof msg);
          snprintf(err, errlen, "bad regex: %s", msg);
          return -EINVAL;
        }
        p->re_ready = true;
      }
      if (p->op == TT_ATTR_RANGE && !(p->min <= p->max)) {
        snprintf(err, errlen, "attribute range needs min <= max");
        return -EINVAL;
      }
      break;
    case TT_POL_RATE_LIMIT:
      if (!(p->per_second > 0)) {
        snprintf(err, errlen, "rate_limit needs a positive per_second");
        return -EINVAL;
      }
      pthread_mutex_init(&p->mu, NULL);
      p->mu_ready = true;
      break;
    case TT_POL_RATIO:
      if (!(p->ratio >= 0.0 && p->ratio <= 1.0)) {
        snprintf(err, errlen, "ratio must be between 0 and 1");
        return -EINVAL;
      }
      p->threshold = tt__threshold_from_ratio(p->ratio);
      break;
    case TT_POL_LATENCY:
      if (p->threshold_ns == 0 && p->nservices == 0 && p->noperations == 0) {
        snprintf(err, errlen, "latency policy needs threshold, services or operations");
        return -EINVAL;
      }
      break;
    default:
      break;
  }
  return 0;
}

tt_policy_set_t *tt__policy_set_default(void) {
  tt_policy_set_t *s = tt__policy_set_new(3);
  if (s == NULL)
    return NULL;
  char err[64];
  s->items[0].kind = TT_POL_ERRORS;
  s->items[0].http_5xx = true;
  s->items[0].exception_event = true;
  s->items[1].kind = TT_POL_LATENCY;
  s->items[1].threshold_ns = 1000000000ull;
  s->items[2].kind = TT_POL_RATIO;
  s->items[2].ratio = 0.1;
  for (size_t i = 0; i < s->n; i++)
    tt__policy_prepare(&s->items[i], err, sizeof err);
  return s;
}

void tt__policy_set_ref(tt_policy_set_t *s) {
  atomic_fetch_add(&s->refs, 1);
}

static void free_named(tt_named_threshold_t *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i].name);
  free(v);
}

void tt__policy_set_unref(tt_policy_set_t *s) {
  if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  for (size_t i = 0; i < s->n; i++) {
    tt_policy_t *p = &s->items[i];
    free_named(p->services, p->nservices);
    free_named(p->operations, p->noperations);
    free(p->key);
    free(p->value);
    if (p->re_ready)
      regfree(&p->re);
    if (p->mu_ready)
      pthread_mutex_destroy(&p->mu);
  }
  free(s->items);
  free(s);
}

/* The span scan found its error signals (wire.h, TT_SPAN_SIG_*): status ERROR, an HTTP status of
 * 500 or more, an exception event; the policy says which of the last two count. */
static bool error_signal(const tt_policy_t *p, uint32_t sig);

static bool span_has_error_signal(const tt_policy_t *p, const tt_span_view_t *sv) {
  return sv->facts.status_code == 2 || error_signal(p, sv->facts.signals);
}

bool tt__policy_set_reads_names(const tt_policy_set_t *s) {
  for (size_t i = 0; s != NULL && i < s->n; i++)
    if (s->items[i].kind == TT_POL_LATENCY && s->items[i].noperations > 0)
      return true;
  return false;
}

bool tt__policy_set_needs_spans(const tt_policy_set_t *s) {
  for (size_t i = 0; s != NULL && i < s->n; i++) {
    const tt_policy_t *p = &s->items[i];
    if (p->kind == TT_POL_ATTRIBUTE ||
        (p->kind == TT_POL_LATENCY && (p->noperations > 0 || p->nservices > 0)))
      return true;
  }
  return false;
}

void tt__trace_summary_init(tt_trace_summary_t *sum) {
  memset(sum, 0, sizeof *sum);
  sum->min_start_ns = UINT64_MAX;
}

void tt__trace_summary_add(tt_trace_summary_t *sum, uint64_t start_ns, uint64_t end_ns, bool root,
                           uint32_t signals) {
  if (start_ns != 0 && start_ns < sum->min_start_ns)
    sum->min_start_ns = start_ns;
  if (end_ns > sum->max_end_ns)
    sum->max_end_ns = end_ns;
  if (root) {
    sum->have_root = true;
    sum->root_dur_ns = end_ns > start_ns ? end_ns - start_ns : 0;
  }
  sum->signals |= signals;
}

void tt__trace_summary_merge(tt_trace_summary_t *sum, const tt_trace_summary_t *later) {
  if (later->min_start_ns < sum->min_start_ns)
    sum->min_start_ns = later->min_start_ns;
  if (later->max_end_ns > sum->max_end_ns)
    sum->max_end_ns = later->max_end_ns;
  if (later->have_root) {
    sum->have_root = true;
    sum->root_dur_ns = later->root_dur_ns;
  }
  sum->signals |= later->signals;
}

/* The error signals the policy counts, among those a span (or a summary) carries. */
static bool error_signal(const tt_policy_t *p, uint32_t sig) {
  return (sig & TT_SPAN_SIG_STATUS_ERROR) || ((sig & TT_SPAN_SIG_HTTP_5XX) && p->http_5xx) ||
         ((sig & TT_SPAN_SIG_EXCEPTION) && p->exception_event);
}

static bool match_errors(const tt_policy_t *p, const tt_trace_view_t *t) {
  if (t->sum != NULL)
    return error_signal(p, t->sum->signals);
  /* Status first across the whole trace: it costs nothing, the facts are already scanned. */
  for (size_t i = 0; i < t->n; i++)
    if (t->spans[i].facts.status_code == 2)
      return true;
  for (size_t i = 0; i < t->n; i++)
    if (span_has_error_signal(p, &t->spans[i]))
      return true;
  return false;
}

static uint64_t span_duration(const tt_span_facts_t *f) {
  return f->end_ns > f->start_ns ? f->end_ns - f->start_ns : 0;
}

static const tt_named_threshold_t *find_named(const tt_named_threshold_t *v, size_t n,
                                              const uint8_t *s, size_t len) {
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (strlen(v[i].name) == len && memcmp(v[i].name, s, len) == 0)
      return &v[i];
  return NULL;
}

static bool match_latency(const tt_policy_t *p, const tt_trace_view_t *t) {
  uint64_t min_start = UINT64_MAX, max_end = 0, root = 0;
  bool have_root = false;
  if (t->sum != NULL) {
    min_start = t->sum->min_start_ns;
    max_end = t->sum->max_end_ns;
    root = t->sum->root_dur_ns;
    have_root = t->sum->have_root;
  }
  for (size_t i = 0; t->spans != NULL && i < t->n; i++) {
    const tt_span_facts_t *f = &t->spans[i].facts;
    uint64_t d = span_duration(f);
    if (f->start_ns != 0 && f->start_ns < min_start)
      min_start = f->start_ns;
    if (f->end_ns > max_end)
      max_end = f->end_ns;
    if (f->parent_span_id_len == 0) {
      have_root = true;
      root = d;
    }
    const tt_named_threshold_t *s =
        find_named(p->services, p->nservices, t->spans[i].service, t->spans[i].service_len);
    if (s != NULL && d >= s->ns)
      return true;
    const tt_named_threshold_t *o = find_named(p->operations, p->noperations, f->name, f->name_len);
    if (o != NULL && d >= o->ns)
      return true;
  }
  if (p->threshold_ns == 0)
    return false;
  /* Without its root, a root-only policy falls back to the trace's span: the best we know. */
  uint64_t dur = (p->root_only && have_root) ? root
                 : (max_end > min_start)     ? max_end - min_start
                                             : 0;
  return dur >= p->threshold_ns;
}

static bool value_matches(const tt_policy_t *p, const tt_any_t *v) {
  switch (p->op) {
    case TT_ATTR_EXISTS:
      return true;
    case TT_ATTR_EQUALS: {
      if (v->type == TT_ANY_STRING)
        return strlen(p->value) == v->slen && memcmp(p->value, v->s, v->slen) == 0;
      char tmp[32];
      if (v->type == TT_ANY_INT)
        snprintf(tmp, sizeof tmp, "%lld", (long long)v->i);
      else if (v->type == TT_ANY_BOOL)
        snprintf(tmp, sizeof tmp, "%s", v->i ? "true" : "false");
      else
        return false;
      return strcmp(tmp, p->value) == 0;
    }
    case TT_ATTR_REGEX: {
      if (v->type != TT_ANY_STRING)
        return false;
      char small[256];
      char *s = v->slen < sizeof small ? small : malloc(v->slen + 1);
      if (s == NULL)
        return false;
      memcpy(s, v->s, v->slen);
      s[v->slen] = '\0';
      bool m = regexec(&p->re, s, 0, NULL, 0) == 0;
      if (s != small)
        free(s);
      return m;
    }
    case TT_ATTR_RANGE: {
      double x;
      if (v->type == TT_ANY_INT)
        x = (double)v->i;
      else if (v->type == TT_ANY_DOUBLE)
        x = v->d;
      else
        return false;
      return x >= p->min && x <= p->max;
    }
  }
  return false;
}

static bool match_attribute(const tt_policy_t *p, const tt_trace_view_t *t) {
  const uint8_t *last_res = NULL;
  for (size_t i = 0; t->spans != NULL && i < t->n; i++) {
    const tt_span_view_t *sv = &t->spans[i];
    tt_any_t v;
    if (p->scope != TT_ATTR_IN_RESOURCE &&
        tt__wire_find_attr(sv->data, sv->len, 9, p->key, &v) == 1 && value_matches(p, &v))
      return true;
    /* Spans of one request share a resource: look at each distinct one once in a row. */
    if (p->scope != TT_ATTR_IN_SPAN && sv->resource != NULL && sv->resource != last_res) {
      last_res = sv->resource;
      if (tt__wire_find_attr(sv->resource, sv->resource_len, 1, p->key, &v) == 1 &&
          value_matches(p, &v))
        return true;
    }
  }
  return false;
}

/* The randomness a consistent decision compares with its threshold: an explicit randomness value
 * (ot=rv:) replaces the trace id's bits, as the consistent sampling spec says; the root's wins,
 * else the first span carrying one. */
static uint64_t trace_randomness(const tt_trace_view_t *t) {
  uint64_t r = tt__trace_randomness(t->trace_id), rv;
  bool found = false;
  for (size_t k = 0; t->spans != NULL && k < t->n; k++) {
    const tt_span_facts_t *f = &t->spans[k].facts;
    if ((!found || f->parent_span_id_len == 0) &&
        tt__tracestate_rv(f->trace_state, f->trace_state_len, &rv) == 0) {
      r = rv;
      found = true;
      if (f->parent_span_id_len == 0)
        break;
    }
  }
  return r;
}

/* The threshold a rate-limited trace is sampled with. The rate is estimated, not enforced: over
 * one-second windows we count what reaches the policy and sample at limit / seen, so each kept
 * trace's weight is the inverse of the probability it really had and weighted counts stay
 * unbiased (a token bucket keeps the first N and drops the rest, which no weight can correct).
 * The count is the larger of the previous window's and the current window's so far: a burst from
 * idle is thinned as it grows instead of kept whole for a second. Either way a trace's
 * probability depends only on how many traces came before it, never on their randomness, so
 * 1/probability remains its honest weight. */
static uint64_t rate_threshold(tt_policy_t *p, const tt_trace_view_t *t, uint64_t now_ns) {
  double cost = p->count_spans ? (double)t->n : 1.0;
  pthread_mutex_lock(&p->mu);
  if (p->window_start_ns == 0) {
    p->window_start_ns = now_ns ? now_ns : 1;
  } else if (now_ns >= p->window_start_ns + TT_RATE_WINDOW_NS) {
    uint64_t k = (now_ns - p->window_start_ns) / TT_RATE_WINDOW_NS;
    /* After an idle window the old count says nothing about the present. */
    p->seen_prev = k == 1 ? p->seen_cur : 0;
    p->seen_cur = 0;
    p->window_start_ns += k * TT_RATE_WINDOW_NS;
  }
  /* Shards read the clock on their own: a slightly older `now` belongs to the current window. */
  p->seen_cur += cost;
  double seen = p->seen_prev > p->seen_cur ? p->seen_prev : p->seen_cur;
  double limit = p->per_second * ((double)TT_RATE_WINDOW_NS / 1e9);
  pthread_mutex_unlock(&p->mu);
  return seen <= limit ? 0 : tt__threshold_from_ratio(limit / seen);
}

/* Chance policies (rate_limit, ratio) always match and end the list. With evidence_only they end
 * it without a verdict and without counting the trace in a rate window: what is asked then is
 * whether the spans alone make the trace a keep. */
static void decide(tt_policy_set_t *s, const tt_trace_view_t *t, uint64_t now_ns, tt_decision_t *d,
                   bool evidence_only) {
  for (size_t i = 0; i < s->n; i++) {
    tt_policy_t *p = &s->items[i];
    bool matched = false;
    d->keep = true;
    d->threshold = 0;
    if (evidence_only && (p->kind == TT_POL_RATE_LIMIT || p->kind == TT_POL_RATIO))
      break;
    switch (p->kind) {
      case TT_POL_ERRORS:
        matched = match_errors(p, t);
        break;
      case TT_POL_LATENCY:
        matched = match_latency(p, t);
        break;
      case TT_POL_ATTRIBUTE:
        matched = match_attribute(p, t);
        d->keep = p->keep;
        break;
      case TT_POL_RATE_LIMIT:
        matched = true;
        d->threshold = rate_threshold(p, t, now_ns);
        d->keep = d->threshold == 0 || trace_randomness(t) >= d->threshold;
        break;
      case TT_POL_RATIO:
        matched = true;
        d->threshold = p->threshold;
        d->keep = trace_randomness(t) >= p->threshold;
        break;
      default:
        break;
    }
    if (matched) {
      d->kind = p->kind;
      d->reason = p->name;
      return;
    }
  }
  d->keep = false;
  d->threshold = 0;
  d->kind = TT_POL_NO_MATCH;
  d->reason = "no_match";
}

void tt__policy_decide(tt_policy_set_t *s, const tt_trace_view_t *t, uint64_t now_ns,
                       tt_decision_t *d) {
  decide(s, t, now_ns, d, false);
}

bool tt__policy_evidence(tt_policy_set_t *s, const tt_trace_view_t *t, tt_decision_t *d) {
  decide(s, t, 0, d, true);
  return d->keep;
}

bool tt__policy_kind_is_chance(tt_policy_kind_t k) {
  return k == TT_POL_RATE_LIMIT || k == TT_POL_RATIO || k == TT_POL_NO_MATCH;
}
