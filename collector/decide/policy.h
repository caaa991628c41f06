/* Tail-sampling policies: an ordered list evaluated against one whole trace, first match wins.
 *
 *   errors     keep when a span has status ERROR (optionally: an `exception` event, or an HTTP
 *              status attribute >= 500)
 *   latency    keep when the trace (earliest start to latest end), or its root span, lasts at
 *              least threshold; or a span of a listed service / with a listed name lasts at least
 *              that entry's threshold
 *   attribute  keep or drop when a span (or its resource) has an attribute that equals a string,
 *              matches a regex, lies in a numeric range, or is present
 *   rate_limit sample consistently at ratio = min(1, limit / traces (or spans) seen per second),
 *              the rate re-estimated every second; always matches, kept traces carry 1/ratio
 *   ratio      keep the consistent-probability share `ratio`, drop the rest (always matches)
 *
 * A trace no policy matches is dropped with reason "no_match". A policy set is immutable once
 * built apart from rate-limit windows (which lock themselves), and refcounted so that SIGHUP can
 * swap in a new set while shards finish decisions with the old one. */
#ifndef TT_COLLECTOR_POLICY_H
#define TT_COLLECTOR_POLICY_H

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

typedef enum {
  TT_POL_ERRORS = 0,
  TT_POL_LATENCY,
  TT_POL_ATTRIBUTE,
  TT_POL_RATE_LIMIT,
  TT_POL_RATIO,
  TT_POL_NO_MATCH, /* not a policy: the reason for traces nothing matched */
  TT_POL_REMOTE,   /* not a policy: kept because another collector kept it (the decision bus) */
  TT_POL__COUNT
} tt_policy_kind_t;

typedef enum { TT_ATTR_EQUALS = 0, TT_ATTR_REGEX, TT_ATTR_RANGE, TT_ATTR_EXISTS } tt_attr_op_t;
typedef enum { TT_ATTR_IN_ANY = 0, TT_ATTR_IN_SPAN, TT_ATTR_IN_RESOURCE } tt_attr_scope_t;

typedef struct {
  char *name; /* owned */
  uint64_t ns;
} tt_named_threshold_t;

typedef struct {
  tt_policy_kind_t kind;
  char name[64]; /* the decision reason written on kept spans and in metrics */
  bool keep;     /* attribute rules: keep (true) or drop (false); other kinds keep */
  /* errors */
  bool exception_event;
  bool http_5xx;
  /* latency */
  uint64_t threshold_ns; /* 0: no trace-level threshold */
  bool root_only;
  tt_named_threshold_t *services;
  size_t nservices;
  tt_named_threshold_t *operations;
  size_t noperations;
  /* attribute */
  char *key;   /* owned */
  char *value; /* owned; equals / regex pattern */
  tt_attr_op_t op;
  tt_attr_scope_t scope;
  double min, max;
  regex_t re;
  bool re_ready;
  /* rate_limit */
  double per_second;
  bool count_spans;
  pthread_mutex_t mu; /* guards the window below: every shard decides through one policy */
  bool mu_ready;
  uint64_t window_start_ns; /* 0: no trace seen yet */
  double seen_cur;          /* traces (spans) that reached the policy in the current window */
  double seen_prev;         /* ... in the window before it; 0 when it was idle */
  /* ratio */
  double ratio;
  uint64_t threshold;
} tt_policy_t;

typedef struct tt_policy_set_s {
  atomic_int refs;
  size_t n;
  tt_policy_t *items;
} tt_policy_set_t;

/* One span of the trace being decided. All pointers borrow from the held span. */
typedef struct {
  const uint8_t *data;
  size_t len;
  const uint8_t *resource; /* the Resource message, or NULL */
  size_t resource_len;
  const uint8_t *service; /* service.name, not NUL-terminated, or NULL */
  size_t service_len;
  tt_span_facts_t facts;
} tt_span_view_t;

/* What the default policies read of a whole trace, kept up to date as its spans arrive (the
 * shard does, while each span's record is in cache), so that deciding most traces reads no span
 * at all. The duration terms are those of match_latency: the earliest non-zero start, the latest
 * end, and the duration of the last span without a parent. */
typedef struct {
  uint64_t min_start_ns; /* UINT64_MAX: no span had a start */
  uint64_t max_end_ns;
  uint64_t root_dur_ns;
  bool have_root;
  uint32_t signals; /* TT_SPAN_SIG_* of every span, or'ed */
} tt_trace_summary_t;

typedef struct {
  const uint8_t *trace_id; /* 16 bytes */
  size_t n;                /* spans */
  /* Either the spans (n views), or spans NULL and sum set: the latter only for a set that does
   * not need spans (tt__policy_set_needs_spans) and a trace without trace_state. */
  const tt_span_view_t *spans;
  const tt_trace_summary_t *sum;
} tt_trace_view_t;

typedef struct {
  bool keep;
  uint64_t threshold; /* sampling threshold for the weight (0: weight 1) */
  tt_policy_kind_t kind;
  const char *reason; /* the policy's name; static or owned by the set */
} tt_decision_t;

/* An empty set of n zeroed policies (refs 1). Returns NULL on allocation failure. */
tt_policy_set_t *tt__policy_set_new(size_t n);
/* Finishes policy i after its fields were filled: compiles regexes, derives thresholds. Returns 0
 * or -EINVAL with a message in err. */
int tt__policy_prepare(tt_policy_t *p, char *err, size_t errlen);
/* The built-in default: errors, latency >= 1 s, ratio 0.1. */
tt_policy_set_t *tt__policy_set_default(void);
void tt__policy_set_ref(tt_policy_set_t *s);
/* Drops a reference; the last one frees the set. NULL is a no-op. */
void tt__policy_set_unref(tt_policy_set_t *s);

/* The rate-limit policy's counting window. */
#define TT_RATE_WINDOW_NS 1000000000ull

/* Whether a policy of s reads span names (latency thresholds per operation). The other facts a
 * policy reads are ids, times, the parent's presence, status, signals and trace_state. */
bool tt__policy_set_reads_names(const tt_policy_set_t *s);

/* Whether a policy of s needs the spans themselves, not a summary: attribute rules, latency
 * thresholds per service or operation. */
bool tt__policy_set_needs_spans(const tt_policy_set_t *s);

/* Folds one span into a summary (start with tt__trace_summary_init). */
void tt__trace_summary_init(tt_trace_summary_t *sum);
void tt__trace_summary_add(tt_trace_summary_t *sum, uint64_t start_ns, uint64_t end_ns, bool root,
                           uint32_t signals);
/* Folds the summary of later spans into sum: the same as adding each of them, in order. */
void tt__trace_summary_merge(tt_trace_summary_t *sum, const tt_trace_summary_t *later);

/* Decides one trace. Any thread; rate-limit windows lock internally. */
void tt__policy_decide(tt_policy_set_t *s, const tt_trace_view_t *t, uint64_t now_ns,
                       tt_decision_t *d);

/* Whether the spans alone make the trace a keep: the policies in order up to the first chance
 * policy (rate_limit, ratio), first match wins, so a drop rule listed before a keep rule still
 * wins. Fills d and returns d->keep; a trace that reaches a chance policy is no keep (kind
 * TT_POL_NO_MATCH). Counts nothing in rate-limit windows. Used for late evidence: a trace whose
 * drop is pending flips to keep when a span that arrives later makes this true. Any thread. */
bool tt__policy_evidence(tt_policy_set_t *s, const tt_trace_view_t *t, tt_decision_t *d);

/* A decision of this kind says nothing about the trace's spans (rate_limit, ratio, no_match):
 * another collector that holds other spans of the trace may know better. */
bool tt__policy_kind_is_chance(tt_policy_kind_t k);

const char *tt__policy_kind_name(tt_policy_kind_t k);
/* Parses a kind name; returns -1 when unknown. */
int tt__policy_kind_parse(const char *s);

#endif
