/* A collector pipeline under test, shared by test_pipeline.c and test_budget.c: a fake clock
 * drives the timing wheel, a capturing sink takes what is kept, and tt__pipeline_sync() makes
 * each step deterministic. Include after cmocka.h and otlp_fixture.h. */
#ifndef TT_TESTS_PIPELINE_ENV_H
#define TT_TESTS_PIPELINE_ENV_H

#include "pipeline.h"

#define SEC 1000000000ull

/* decision.drop_delay at its default: how long a drop stays pending before it is final. */
static inline uint64_t drop_delay(void) {
  tt_pipeline_opts_t o;
  tt__pipeline_opts_default(&o);
  return o.drop_delay_ns;
}

typedef struct {
  fake_clock_t clock;
  cap_sink_t *sink;
  tt_sink_t *sinks[1];
  tt_pipeline_t *p;
} env_t;

/* Starts a 2-shard pipeline on options o with policies pol (the reference is taken over). */
static inline env_t *env_new_with(tt_pipeline_opts_t *o, tt_policy_set_t *pol) {
  env_t *e = calloc(1, sizeof *e);
  atomic_init(&e->clock.now, 100 * SEC);
  e->sink = cap_new();
  e->sinks[0] = &e->sink->base;
  o->workers = 2;
  o->clock = fake_clock_read;
  o->clock_ctx = &e->clock;
  o->sinks = e->sinks;
  o->nsinks = 1;
  o->policies = pol;
  assert_int_equal(tt__pipeline_new(o, &e->p), 0);
  tt__policy_set_unref(pol);
  return e;
}

static inline void env_free(env_t *e) {
  tt__pipeline_free(e->p);
  e->sink->base.vt->close(&e->sink->base);
  free(e);
}

/* Lets the shards take in what was sent at the current time, then moves the clock. */
static inline void advance(env_t *e, uint64_t ns) {
  tt__pipeline_sync(e->p);
  atomic_fetch_add(&e->clock.now, ns);
  tt__pipeline_sync(e->p);
}

static inline tt_export_result_t send(env_t *e, const span_spec_t *sp, size_t n) {
  size_t len;
  uint8_t *req = fx_request(sp, n, &len);
  tt_export_request_t r = {req, len, "test", 0};
  tt_export_result_t res;
  tt__pipeline_handle(e->p, &r, &res);
  free(req);
  return res;
}

#endif
