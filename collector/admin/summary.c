/* The periodic summary and the memory-pressure lines: see summary.h. */
#include "summary.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sink_otlp.h"

#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))

/* The counters a summary subtracts from: the values the previous summary saw. Owned by whoever
 * calls tt__summary_members (the summary thread). */
typedef struct {
  uint64_t spans_received, spans_accepted, spans_kept, spans_dropped;
  uint64_t decisions[TT_POL__COUNT][2];
  uint64_t throttled, refused[TT_REFUSE__COUNT], unavailable, too_large, invalid_pipeline;
  uint64_t *sink_ok, *sink_failed;      /* per sink */
  uint64_t *delivered, *deliver_failed; /* per sink; exporters only */
} snap_t;

struct tt_summary_s {
  tt_summary_opts_t o;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* CLOCK_MONOTONIC */
  bool stopping;     /* guarded by mu */
  snap_t prev;
  size_t nsinks;
  bool pressure;           /* summary thread: the last line said "on" */
  uint64_t last_throttled; /* summary thread: requests throttled at the last check */
};

static void snapshot(tt_summary_t *s, snap_t *n) {
  tt_metrics_t *m = tt__pipeline_metrics(s->o.pipeline);
  n->spans_received = LOAD(m->spans_received);
  n->spans_accepted = LOAD(m->spans_accepted);
  n->spans_kept = LOAD(m->spans_kept);
  n->spans_dropped = LOAD(m->spans_dropped);
  for (int k = 0; k < TT_POL__COUNT; k++)
    for (int kept = 0; kept < 2; kept++) {
      uint64_t sum = 0;
      for (int t = 0; t < TT_TRIG__COUNT; t++)
        sum += LOAD(m->decisions[k][kept][t]);
      n->decisions[k][kept] = sum;
    }
  n->throttled = tt__metrics_throttled(m);
  n->unavailable = LOAD(m->requests_unavailable);
  n->too_large = LOAD(m->requests_too_large);
  n->invalid_pipeline = LOAD(m->requests_invalid);
  for (int c = 0; c < TT_REFUSE__COUNT; c++)
    n->refused[c] = tt__refusal_count(&m->refusals, (tt_refuse_cause_t)c);
  size_t ns;
  tt_sink_t *const *sinks = tt__pipeline_sinks(s->o.pipeline, &ns);
  for (size_t i = 0; i < s->nsinks && i < ns; i++) {
    const tt_sink_counts_t *c = tt__pipeline_sink_counts(s->o.pipeline, i);
    n->sink_ok[i] = c ? LOAD(c->spans_ok) : 0;
    n->sink_failed[i] = c ? LOAD(c->spans_failed) : 0;
    n->delivered[i] = n->deliver_failed[i] = 0;
    if (tt__sink_is_otlp(sinks[i])) {
      tt_otlp_sink_stats_t st;
      tt__sink_otlp_stats(sinks[i], &st);
      n->delivered[i] = st.spans_sent;
      n->deliver_failed[i] = st.spans_failed_permanent + st.spans_dropped_queue_full +
                             st.spans_dropped_spool_budget + st.spans_lost_at_shutdown;
    }
  }
}

/* {"a":1,"b":2} of the non-zero deltas, names escaped; {} when all are zero. */
static int by_name(tt_buf_t *out, const char *key, const char *const *names, const uint64_t *now,
                   const uint64_t *before, size_t n) {
  int rc = tt__buf_appendf(out, ",\"%s\":{", key);
  bool first = true;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    uint64_t d = now[i] - before[i];
    if (d == 0)
      continue;
    char esc[128];
    rc = tt__buf_appendf(out, "%s\"%s\":%llu", first ? "" : ",",
                         tt__log_str(esc, sizeof esc, names[i]), (unsigned long long)d);
    first = false;
  }
  return rc ? rc : tt__buf_append_str(out, "}");
}

int tt__summary_members(tt_summary_t *s, tt_buf_t *out) {
  snap_t n = {0};
  size_t ns = s->nsinks ? s->nsinks : 1;
  uint64_t *arrays = calloc(4 * ns, sizeof *arrays);
  if (arrays == NULL)
    return -ENOMEM;
  n.sink_ok = arrays;
  n.sink_failed = arrays + ns;
  n.delivered = arrays + 2 * ns;
  n.deliver_failed = arrays + 3 * ns;
  snapshot(s, &n);
  snap_t *p = &s->prev;
  tt_metrics_t *m = tt__pipeline_metrics(s->o.pipeline);
  int rc = tt__buf_appendf(
      out,
      "\"interval_ms\":%u,\"spans_received\":%llu,\"spans_accepted\":%llu,\"spans_kept\":%llu,"
      "\"spans_dropped\":%llu",
      s->o.interval_ms, (unsigned long long)(n.spans_received - p->spans_received),
      (unsigned long long)(n.spans_accepted - p->spans_accepted),
      (unsigned long long)(n.spans_kept - p->spans_kept),
      (unsigned long long)(n.spans_dropped - p->spans_dropped));
  const char *kinds[TT_POL__COUNT];
  uint64_t now_k[2][TT_POL__COUNT], before_k[2][TT_POL__COUNT];
  for (int k = 0; k < TT_POL__COUNT; k++) {
    kinds[k] = tt__policy_kind_name((tt_policy_kind_t)k);
    for (int kept = 0; kept < 2; kept++) {
      now_k[kept][k] = n.decisions[k][kept];
      before_k[kept][k] = p->decisions[k][kept];
    }
  }
  rc = rc ? rc : by_name(out, "traces_kept", kinds, now_k[1], before_k[1], TT_POL__COUNT);
  rc = rc ? rc : by_name(out, "traces_dropped", kinds, now_k[0], before_k[0], TT_POL__COUNT);
  rc = rc ? rc
          : tt__buf_appendf(out, ",\"traces_held\":%lld,\"bytes_held\":%lld,\"throttled\":%llu",
                            (long long)atomic_load(&m->traces_held),
                            (long long)atomic_load(&m->bytes_held),
                            (unsigned long long)(n.throttled - p->throttled));
  /* Refused, by cause: the receivers' causes, with the pipeline's own invalid, too_large and
   * unavailable beside them, as tailtrace_requests_refused_total has them. */
  const char *causes[TT_REFUSE__COUNT + 2];
  uint64_t now_c[TT_REFUSE__COUNT + 2], before_c[TT_REFUSE__COUNT + 2];
  for (int c = 0; c < TT_REFUSE__COUNT; c++) {
    causes[c] = tt__refuse_cause_name((tt_refuse_cause_t)c);
    now_c[c] = n.refused[c];
    before_c[c] = p->refused[c];
  }
  now_c[TT_REFUSE_INVALID] += n.invalid_pipeline;
  before_c[TT_REFUSE_INVALID] += p->invalid_pipeline;
  causes[TT_REFUSE__COUNT] = "too_large";
  now_c[TT_REFUSE__COUNT] = n.too_large;
  before_c[TT_REFUSE__COUNT] = p->too_large;
  causes[TT_REFUSE__COUNT + 1] = "unavailable";
  now_c[TT_REFUSE__COUNT + 1] = n.unavailable;
  before_c[TT_REFUSE__COUNT + 1] = p->unavailable;
  rc = rc ? rc : by_name(out, "refused", causes, now_c, before_c, TT_REFUSE__COUNT + 2);
  /* Per sink: spans handed over (and refused by the sink's queue); per exporter also spans the
   * backend took and spans lost for good. */
  size_t nsk;
  tt_sink_t *const *sinks = tt__pipeline_sinks(s->o.pipeline, &nsk);
  rc = rc ? rc : tt__buf_append_str(out, ",\"sinks\":{");
  for (size_t i = 0; rc == 0 && i < s->nsinks && i < nsk; i++) {
    char esc[128];
    bool otlp = tt__sink_is_otlp(sinks[i]);
    const char *name = otlp ? tt__sink_otlp_name(sinks[i]) : sinks[i]->vt->name;
    rc = tt__buf_appendf(
        out, "%s\"%s\":{\"spans_in\":%llu,\"spans_refused\":%llu", i ? "," : "",
        tt__log_str(esc, sizeof esc, name),
        (unsigned long long)(n.sink_ok[i] - (p->sink_ok ? p->sink_ok[i] : 0)),
        (unsigned long long)(n.sink_failed[i] - (p->sink_failed ? p->sink_failed[i] : 0)));
    if (rc == 0 && otlp) {
      tt_otlp_sink_stats_t st;
      tt__sink_otlp_stats(sinks[i], &st);
      rc = tt__buf_appendf(
          out,
          ",\"spans_delivered\":%llu,\"spans_lost\":%llu,\"backend\":\"%s\",\"spool_batches\":%llu",
          (unsigned long long)(n.delivered[i] - (p->delivered ? p->delivered[i] : 0)),
          (unsigned long long)(n.deliver_failed[i] -
                               (p->deliver_failed ? p->deliver_failed[i] : 0)),
          st.degraded ? "down" : "up", (unsigned long long)st.spool_batches);
    }
    rc = rc ? rc : tt__buf_append_str(out, "}");
  }
  rc = rc ? rc : tt__buf_append_str(out, "}");
  /* The new snapshot becomes the base of the next summary. */
  uint64_t *old = p->sink_ok;
  s->prev = n;
  free(old);
  return rc;
}

/* Memory pressure: the pipeline throttled a request since the last check, or holds more than
 * 90% of memory.budget (where the shards start deciding early). It ends when neither holds and
 * less than 70% is held (where they stop). */
static void check_pressure(tt_summary_t *s) {
  tt_metrics_t *m = tt__pipeline_metrics(s->o.pipeline);
  uint64_t throttled = tt__metrics_throttled_memory(m);
  int64_t held = atomic_load(&m->bytes_held);
  uint64_t bytes = held > 0 ? (uint64_t)held : 0;
  uint64_t budget = s->o.memory_budget;
  bool throttling = throttled != s->last_throttled;
  uint64_t delta = throttled - s->last_throttled;
  s->last_throttled = throttled;
  if (budget == 0)
    return;
  if (!s->pressure && (throttling || bytes > budget / 10 * 9)) {
    s->pressure = true;
    TT_LOG(TT_LOG_WARN, "memory pressure on: deciding traces early and throttling senders",
           "\"bytes_held\":%llu,\"memory_budget\":%llu,\"throttled\":%llu",
           (unsigned long long)bytes, (unsigned long long)budget, (unsigned long long)delta);
  } else if (s->pressure && !throttling && bytes < budget / 10 * 7) {
    s->pressure = false;
    TT_LOG(TT_LOG_INFO, "memory pressure off", "\"bytes_held\":%llu,\"memory_budget\":%llu",
           (unsigned long long)bytes, (unsigned long long)budget);
  }
}

static void *summary_thread(void *arg) {
  tt_summary_t *s = arg;
  uint32_t poll = s->o.poll_ms ? s->o.poll_ms : 1000;
  struct timespec next_summary;
  clock_gettime(CLOCK_MONOTONIC, &next_summary);
  next_summary.tv_sec += s->o.interval_ms / 1000;
  next_summary.tv_nsec += (long)(s->o.interval_ms % 1000) * 1000000;
  if (next_summary.tv_nsec >= 1000000000) {
    next_summary.tv_sec++;
    next_summary.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&s->mu);
  while (!s->stopping) {
    struct timespec now, until;
    clock_gettime(CLOCK_MONOTONIC, &now);
    until = now;
    until.tv_sec += poll / 1000;
    until.tv_nsec += (long)(poll % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &until);
    if (s->stopping)
      break;
    pthread_mutex_unlock(&s->mu);
    check_pressure(s);
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->o.interval_ms > 0 &&
        (now.tv_sec > next_summary.tv_sec ||
         (now.tv_sec == next_summary.tv_sec && now.tv_nsec >= next_summary.tv_nsec))) {
      next_summary.tv_sec += s->o.interval_ms / 1000;
      next_summary.tv_nsec += (long)(s->o.interval_ms % 1000) * 1000000;
      if (next_summary.tv_nsec >= 1000000000) {
        next_summary.tv_sec++;
        next_summary.tv_nsec -= 1000000000;
      }
      tt_buf_t b = TT_BUF_INIT;
      if (tt__summary_members(s, &b) == 0 && tt__buf_append(&b, "", 1) == 0)
        TT_LOG(TT_LOG_INFO, "summary", "%s", (const char *)b.data);
      tt__buf_free(&b);
    }
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

int tt__summary_start(const tt_summary_opts_t *o, tt_summary_t **out) {
  *out = NULL;
  tt_summary_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->o = *o;
  tt__pipeline_sinks(o->pipeline, &s->nsinks);
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  /* The first summary counts from now: the base is taken here, before the thread runs. */
  tt_buf_t scratch = TT_BUF_INIT;
  int rc = tt__summary_members(s, &scratch);
  tt__buf_free(&scratch);
  tt_metrics_t *m = tt__pipeline_metrics(o->pipeline);
  s->last_throttled = tt__metrics_throttled_memory(m);
  if (rc == 0)
    rc = -pthread_create(&s->thread, NULL, summary_thread, s);
  if (rc != 0) {
    free(s->prev.sink_ok);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

void tt__summary_stop(tt_summary_t *s) {
  if (s == NULL)
    return;
  pthread_mutex_lock(&s->mu);
  s->stopping = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  free(s->prev.sink_ok);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
