/* What memory.budget counts: a held trace's own record beside its spans, the decided-id cache, and
 * nothing left over once every trace is decided and forgotten; and the shards' framing buffers,
 * which stay outside the budget but must not keep what one big trace grew them to. A fake clock
 * drives the timing wheel and tt__pipeline_sync() makes each step deterministic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_fixture.h"
#include "pipeline_env.h"
/* For sizeof(trace_t), sizeof(span_block_t) and sizeof(span_rec_t): the test checks the budget
 * against the real structures, not against the constant the code uses. */
#include "pipeline_int.h"

#define MIB (1024ull * 1024ull)

/* A ratio policy alone: 1.0 keeps every trace, 0.5 keeps some and drops the rest. */
static tt_policy_set_t *policies_ratio(double ratio) {
  tt_policy_set_t *s = tt__policy_set_new(1);
  char err[128];
  s->items[0].kind = TT_POL_RATIO;
  s->items[0].ratio = ratio;
  assert_int_equal(tt__policy_prepare(&s->items[0], err, sizeof err), 0);
  return s;
}

/* The budget tests' timing: 2 s root grace, 10 s idle, 10 ms ticks. */
static env_t *env_new_ratio(tt_pipeline_opts_t *o, double ratio) {
  o->root_grace_ns = 2 * SEC;
  o->idle_timeout_ns = 10 * SEC;
  o->tick_ns = 10000000ull;
  return env_new_with(o, policies_ratio(ratio));
}

/* The bytes of one fixture span as the collector holds them: two spans under one resource and
 * scope differ from one by exactly the span's tag, length byte and bytes. */
static size_t fixture_span_len(void) {
  span_spec_t sp[2] = {fx_span(1, 1, 0), fx_span(2, 1, 0)};
  size_t one, two;
  free(fx_request(sp, 1, &one));
  free(fx_request(sp, 2, &two));
  assert_true(two - one > 2 && two - one < 128 + 2); /* one length byte */
  return two - one - 2;
}

/* What one held single-span trace costs at the least: its record, its span's block, record and
 * bytes (its share of the hash table and of the shared resource and scope come on top). */
static uint64_t tiny_trace_floor(void) {
  return sizeof(trace_t) + sizeof(span_block_t) + sizeof(span_rec_t) + fixture_span_len();
}

static void tiny_traces_should_each_count_their_record_beside_their_span(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  env_t *e = env_new_ratio(&o, 1.0);
  enum { N = 200 };
  span_spec_t batch[N];
  for (uint64_t i = 0; i < N; i++)
    batch[i] = fx_span(10000 + i, 1, 0);
  assert_int_equal(send(e, batch, N).status, TT_EXPORT_OK);
  tt__pipeline_sync(e->p);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->traces_held), N);
  int64_t held = atomic_load(&m->bytes_held);
  assert_true((uint64_t)held >= N * tiny_trace_floor());
  env_free(e);
}

static void tiny_traces_should_meet_the_budget_at_their_true_cost(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 256 * 1024;
  env_t *e = env_new_ratio(&o, 1.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  enum { PER_REQ = 50, REQS = 60 };
  span_spec_t batch[PER_REQ];
  for (uint64_t r = 0; r < REQS; r++) {
    for (uint64_t i = 0; i < PER_REQ; i++)
      batch[i] = fx_span(20000 + r * PER_REQ + i, 1, 0);
    tt_export_result_t res = send(e, batch, PER_REQ);
    assert_true(res.status == TT_EXPORT_OK || res.status == TT_EXPORT_THROTTLED);
    tt__pipeline_sync(e->p); /* shards run their pressure checks */
    /* However many traces are held, their true cost fits the budget. */
    assert_true((uint64_t)atomic_load(&m->traces_held) * tiny_trace_floor() <= o.memory_budget);
    assert_true((uint64_t)(atomic_load(&m->bytes_held) + atomic_load(&m->cache_bytes)) <=
                o.memory_budget);
  }
  uint64_t early = 0;
  for (int k = 0; k < TT_POL__COUNT; k++)
    for (int d = 0; d < 2; d++)
      early += atomic_load(&m->decisions[k][d][TT_TRIG_MEMORY]);
  assert_true(early > 0);
  env_free(e);
}

static void
request_of_tiny_traces_should_be_refused_when_their_records_cross_the_budget(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 64 * 1024;
  env_t *e = env_new_ratio(&o, 1.0);
  enum { N = 400 };
  span_spec_t *batch = calloc(N, sizeof *batch);
  assert_non_null(batch);
  for (uint64_t i = 0; i < N; i++)
    batch[i] = fx_span(30000 + i, 1, 0);
  size_t len;
  free(fx_request(batch, N, &len));
  /* Twice its size fits, its true cost does not: even on an idle collector it could never be
   * taken, so it is refused for good rather than throttled into retrying forever. */
  assert_true(len * 2 <= o.memory_budget);
  assert_true(N * tiny_trace_floor() > o.memory_budget);
  tt_export_result_t r = send(e, batch, N);
  assert_int_equal(r.status, TT_EXPORT_TOO_LARGE);
  assert_non_null(strstr(r.message, "memory.budget (65536 bytes)"));
  tt__pipeline_sync(e->p);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_int_equal(atomic_load(&m->spans_accepted), 0);
  assert_int_equal(atomic_load(&m->bytes_held), 0);
  /* A quarter of it fits and is taken. */
  r = send(e, batch, N / 4);
  assert_int_equal(r.status, TT_EXPORT_OK);
  free(batch);
  env_free(e);
}

static void held_and_cache_bytes_should_return_to_zero_once_everything_is_forgotten(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.late_cache_ttl_ns = drop_delay() + 2 * SEC; /* kept ids outlive the drops' delay */
  o.max_trace_bytes = 8192;
  env_t *e = env_new_ratio(&o, 0.5); /* some kept, some dropped */
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  enum { TINY = 100, WIDE = 6, WIDE_SPANS = 30 };
  span_spec_t batch[TINY];
  for (uint64_t i = 0; i < TINY; i++)
    batch[i] = fx_span(40000 + i, 1, 0);
  assert_int_equal(send(e, batch, TINY).status, TT_EXPORT_OK);
  /* Wide traces outgrow the linear duplicate scan and get a span-id set. */
  span_spec_t wide[WIDE_SPANS];
  for (uint64_t t = 0; t < WIDE; t++) {
    for (uint64_t k = 0; k < WIDE_SPANS; k++)
      wide[k] = fx_span(50000 + t, k + 1, k ? 1 : 0);
    assert_int_equal(send(e, wide, WIDE_SPANS).status, TT_EXPORT_OK);
  }
  assert_int_equal(send(e, wide, WIDE_SPANS).status, TT_EXPORT_OK); /* a retried batch */
  /* A trace past max_trace_bytes is decided at once; the rest of its spans arrive late. */
  span_spec_t big[120];
  for (uint64_t k = 0; k < 120; k++)
    big[k] = fx_span(60000, k + 1, k ? 1 : 0);
  assert_int_equal(send(e, big, 120).status, TT_EXPORT_OK);
  tt__pipeline_sync(e->p);
  assert_true(atomic_load(&m->bytes_held) > 0);
  assert_true(atomic_load(&m->spans_duplicate) > 0);

  advance(e, 3 * SEC);      /* every root's grace is over: all decided */
  advance(e, drop_delay()); /* and every drop final */
  assert_int_equal(atomic_load(&m->traces_held), 0);
  assert_true(atomic_load(&m->cache_bytes) > 0);
  /* Late spans, to kept and dropped traces alike, and a duplicate of an emitted one. */
  for (uint64_t i = 0; i < TINY; i++)
    batch[i] = fx_span(40000 + i, 2, 1);
  assert_int_equal(send(e, batch, TINY).status, TT_EXPORT_OK);
  assert_int_equal(send(e, batch, 1).status, TT_EXPORT_OK);
  advance(e, 0);
  assert_true(atomic_load(&m->late_spans_kept) > 0);
  assert_true(atomic_load(&m->late_spans_dropped) > 0);
  assert_int_equal(atomic_load(&m->bytes_held), 0);

  advance(e, o.late_cache_ttl_ns); /* past the cache's ttl: every id is forgotten */
  assert_int_equal(atomic_load(&m->traces_held), 0);
  assert_int_equal(atomic_load(&m->bytes_held), 0);
  assert_int_equal(atomic_load(&m->cache_bytes), 0);
  env_free(e);
}

static void big_trace_should_not_leave_megabytes_of_framing_buffers(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0; /* ratio keeps final at once, as the timing below expects */
  env_t *e = env_new_ratio(&o, 1.0);
  /* About 5 MiB in one kept trace: framing it grows the batch and two scratch buffers past that. */
  enum { SPANS = 640 };
  static char blob[8192];
  memset(blob, 'x', sizeof blob - 1);
  span_spec_t *sp = calloc(SPANS, sizeof *sp);
  assert_non_null(sp);
  for (uint64_t k = 0; k < SPANS; k++) {
    sp[k] = fx_span(70000, k + 1, k ? 1 : 0);
    sp[k].attr_key = "payload";
    sp[k].attr_str = blob;
  }
  assert_int_equal(send(e, sp, SPANS).status, TT_EXPORT_OK);
  free(sp);
  advance(e, 3 * SEC);
  assert_int_equal(atomic_load(&e->sink->spans), SPANS);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  assert_true(atomic_load(&m->export_bytes) > 5 * MIB);
  /* What stays: at most a megabyte a buffer (batch, three scratch, span views) a shard. */
  uint64_t kept = tt__pipeline_buffer_bytes(e->p);
  assert_true(kept > 0);
  assert_true(kept <= 2 * 5 * MIB);
  env_free(e);
}

static void
traces_should_still_be_found_after_a_burst_is_forgotten_and_the_table_shrinks(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0; /* ratio keeps final at once, as the timing below expects */
  o.late_cache_ttl_ns = 1 * SEC;
  env_t *e = env_new_ratio(&o, 1.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  /* Rootless traces stay held (idle timeout 10 s) through the burst and the shrink. */
  enum { LIVE = 200 };
  span_spec_t live[LIVE];
  for (uint64_t i = 0; i < LIVE; i++)
    live[i] = fx_span(190000 + i, 2, 1);
  assert_int_equal(send(e, live, LIVE).status, TT_EXPORT_OK);
  /* 6000 traces over two shards grow each table past its first 1024 buckets. */
  enum { PER_REQ = 100, REQS = 60 };
  span_spec_t batch[PER_REQ];
  for (uint64_t r = 0; r < REQS; r++) {
    for (uint64_t i = 0; i < PER_REQ; i++)
      batch[i] = fx_span(80000 + r * PER_REQ + i, 1, 0);
    assert_int_equal(send(e, batch, PER_REQ).status, TT_EXPORT_OK);
  }
  advance(e, 3 * SEC); /* the burst is decided */
  advance(e, 2 * SEC); /* and forgotten: the tables shrink around the live traces */
  assert_int_equal(atomic_load(&m->traces_held), LIVE);
  /* The live traces are found again: their next spans join them instead of starting new ones. */
  for (uint64_t i = 0; i < LIVE; i++)
    live[i] = fx_span(190000 + i, 3, 1);
  assert_int_equal(send(e, live, LIVE).status, TT_EXPORT_OK);
  advance(e, 0);
  assert_int_equal(atomic_load(&m->traces_held), LIVE);
  advance(e, 11 * SEC); /* idle */
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_IDLE]), LIVE);
  assert_int_equal(atomic_load(&m->decisions[TT_POL_RATIO][1][TT_TRIG_ROOT_GRACE]), REQS * PER_REQ);
  assert_int_equal(atomic_load(&m->late_spans_kept), 0);
  assert_int_equal(atomic_load(&e->sink->spans), REQS * PER_REQ + 2 * LIVE);
  assert_int_equal(atomic_load(&m->bytes_held), 0);
  env_free(e);
}

static uint64_t early_decisions(tt_metrics_t *m) {
  uint64_t early = 0;
  for (int k = 0; k < TT_POL__COUNT; k++)
    for (int d = 0; d < 2; d++)
      early += atomic_load(&m->decisions[k][d][TT_TRIG_MEMORY]);
  return early;
}

static void
memory_pressure_should_release_pending_drops_before_deciding_held_traces_early(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 256 * 1024;
  env_t *e = env_new_ratio(&o, 0.0); /* every trace is a drop, pending for drop_delay */
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  enum { PER_REQ = 20 };
  span_spec_t batch[PER_REQ];
  uint64_t next = 80000;
  /* Half the budget in traces whose drop is pending. */
  while ((uint64_t)atomic_load(&m->bytes_held) < o.memory_budget / 2) {
    for (uint64_t i = 0; i < PER_REQ; i++)
      batch[i] = fx_span(next++, 1, 0);
    assert_int_equal(send(e, batch, PER_REQ).status, TT_EXPORT_OK);
    tt__pipeline_sync(e->p);
  }
  advance(e, 3 * SEC);
  int64_t pending = atomic_load(&m->traces_pending);
  assert_true(pending > 0);
  assert_int_equal(atomic_load(&m->traces_pending), atomic_load(&m->traces_held));
  /* New, undecided traces push the pipeline past its high watermark. */
  for (int r = 0; r < 200 && atomic_load(&m->pending_released) == 0; r++) {
    for (uint64_t i = 0; i < PER_REQ; i++)
      batch[i] = fx_span(next++, 1, 0);
    tt_export_result_t res = send(e, batch, PER_REQ);
    assert_true(res.status == TT_EXPORT_OK || res.status == TT_EXPORT_THROTTLED);
    tt__pipeline_sync(e->p);
  }
  assert_true(atomic_load(&m->pending_released) > 0);
  assert_true(atomic_load(&m->traces_pending) < pending);
  /* The pending drops made room: no undecided trace was decided early. */
  assert_int_equal(early_decisions(m), 0);
  assert_true((uint64_t)(atomic_load(&m->bytes_held) + atomic_load(&m->cache_bytes)) <=
              o.memory_budget);
  env_free(e);
}

static tt_export_result_t send_as(env_t *e, uint64_t peer, const span_spec_t *sp, size_t n) {
  size_t len;
  uint8_t *req = fx_request(sp, n, &len);
  tt_export_request_t r = {req, len, "test", peer};
  tt_export_result_t res;
  tt__pipeline_handle(e->p, &r, &res);
  free(req);
  return res;
}

static void
near_the_budget_a_sender_over_its_share_should_wait_while_a_light_one_is_served(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 1 * MIB;
  env_t *e = env_new_ratio(&o, 1.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  const uint64_t soft = o.memory_budget - o.memory_budget / 8;
  /* The heavy sender alone fills the budget up to its last eighth: one-span traces, the clock
   * still, so nothing is decided and nothing frees. */
  uint64_t id = 1;
  size_t len;
  span_spec_t one = fx_span(id, 1, 0);
  free(fx_request(&one, 1, &len));
  while ((uint64_t)atomic_load(&m->bytes_held) + 2 * len <= soft) {
    one = fx_span(++id, 1, 0);
    assert_int_equal(send_as(e, 1, &one, 1).status, TT_EXPORT_OK);
    tt__pipeline_sync(e->p);
  }
  /* Alone it keeps its whole budget: past the line it is still served. */
  one = fx_span(++id, 1, 0);
  assert_int_equal(send_as(e, 1, &one, 1).status, TT_EXPORT_OK);
  /* A second sender arrives and is served: it has had nothing yet. */
  one = fx_span(++id, 1, 0);
  assert_int_equal(send_as(e, 2, &one, 1).status, TT_EXPORT_OK);
  /* Now the heavy one is over its share of the last eighth and waits... */
  one = fx_span(++id, 1, 0);
  tt_export_result_t r = send_as(e, 1, &one, 1);
  assert_int_equal(r.status, TT_EXPORT_THROTTLED);
  assert_non_null(strstr(r.message, "more than its share"));
  assert_true(r.retry_after_ms > 0);
  assert_int_equal(atomic_load(&m->requests_throttled_share), 1);
  assert_int_equal(atomic_load(&m->requests_throttled), 0);
  /* ...while the light one, still far under its share, keeps being served. */
  for (int i = 0; i < 5; i++) {
    one = fx_span(++id, 1, 0);
    assert_int_equal(send_as(e, 2, &one, 1).status, TT_EXPORT_OK);
  }
  assert_true((uint64_t)atomic_load(&m->bytes_held) <= o.memory_budget);
  env_free(e);
}

static void free_memory_should_be_handed_back_once_after_a_burst_is_decided(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.drop_delay_ns = 0;
  env_t *e = env_new_ratio(&o, 0.0); /* everything dropped: nothing piles up in the sink */
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  enum { PER = 500 };
  span_spec_t *batch = calloc(PER, sizeof *batch);
  uint64_t id = 1;
  while (atomic_load(&m->bytes_held) < 24 * (int64_t)MIB) {
    for (int i = 0; i < PER; i++)
      batch[i] = fx_span(id++, 1, 0);
    assert_int_equal(send(e, batch, PER).status, TT_EXPORT_OK);
    tt__pipeline_sync(e->p);
  }
  assert_int_equal(atomic_load(&m->memory_trims), 0); /* nothing has fallen yet */
  advance(e, 3 * SEC);                                /* past the root grace: all decided */
  advance(e, 10000000ull);
  assert_int_equal(atomic_load(&m->traces_held), 0);
  assert_int_equal(atomic_load(&m->memory_trims), 1);
  advance(e, 20 * SEC); /* no new burst, no new trim */
  assert_int_equal(atomic_load(&m->memory_trims), 1);
  free(batch);
  env_free(e);
}

/* A shard that stops taking its inbox (here: stuck waiting for the policy lock, which each round
 * takes after it swaps the inbox out) must push back on senders once TT_INBOX_MAX_SPANS spans
 * wait, long before memory would; when it catches up, requests are taken again. */
static void a_shard_that_falls_behind_should_throttle_senders_before_memory_does(void **state) {
  (void)state;
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  o.memory_budget = 1ull << 30;
  env_t *e = env_new_ratio(&o, 1.0);
  tt_metrics_t *m = tt__pipeline_metrics(e->p);
  struct tt_pipeline_s *p = (struct tt_pipeline_s *)e->p;
  pthread_mutex_lock(&p->pol_mu);
  span_spec_t batch[100];
  uint64_t id = 1;
  tt_export_result_t r = {0};
  size_t sent = 0;
  /* The two shards share the spans; each takes at most one more inbox once the lock is held. */
  while (sent < 4 * TT_INBOX_MAX_SPANS + 200) {
    for (int i = 0; i < 100; i++)
      batch[i] = fx_span(id++, 1, 0);
    r = send(e, batch, 100);
    if (r.status != TT_EXPORT_OK)
      break;
    sent += 100;
  }
  assert_int_equal(r.status, TT_EXPORT_THROTTLED);
  assert_non_null(strstr(r.message, "behind"));
  assert_true(r.retry_after_ms > 0);
  assert_true(sent >= TT_INBOX_MAX_SPANS);
  assert_int_equal(atomic_load(&m->requests_throttled_backlog), 1);
  assert_int_equal(atomic_load(&m->requests_throttled), 0);
  /* Far from the budget: memory had no part in it. */
  assert_true((uint64_t)atomic_load(&m->bytes_held) < o.memory_budget / 4);
  pthread_mutex_unlock(&p->pol_mu);
  tt__pipeline_sync(e->p);
  for (int i = 0; i < 100; i++)
    batch[i] = fx_span(id++, 1, 0);
  assert_int_equal(send(e, batch, 100).status, TT_EXPORT_OK);
  env_free(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tiny_traces_should_each_count_their_record_beside_their_span),
      cmocka_unit_test(tiny_traces_should_meet_the_budget_at_their_true_cost),
      cmocka_unit_test(
          request_of_tiny_traces_should_be_refused_when_their_records_cross_the_budget),
      cmocka_unit_test(held_and_cache_bytes_should_return_to_zero_once_everything_is_forgotten),
      cmocka_unit_test(
          memory_pressure_should_release_pending_drops_before_deciding_held_traces_early),
      cmocka_unit_test(big_trace_should_not_leave_megabytes_of_framing_buffers),
      cmocka_unit_test(free_memory_should_be_handed_back_once_after_a_burst_is_decided),
      cmocka_unit_test(
          near_the_budget_a_sender_over_its_share_should_wait_while_a_light_one_is_served),
      cmocka_unit_test(
          traces_should_still_be_found_after_a_burst_is_forgotten_and_the_table_shrinks),
      cmocka_unit_test(a_shard_that_falls_behind_should_throttle_senders_before_memory_does),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
