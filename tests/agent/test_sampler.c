/* Head samplers: built-in kinds from options and from OTEL_TRACES_SAMPLER(_ARG). */
#include "tt_test_util.h"

#include "consistent_sampling.h"

static tt_remote_context_t g_rc;

static const tt_remote_context_t *remote(const char *tp) {
  memset(&g_rc, 0, sizeof g_rc);
  assert_int_equal(tt_traceparent_parse(tp, strlen(tp), &g_rc.span_context), 0);
  return &g_rc;
}

static tt_span_t *child_of(const tt_remote_context_t *rc) {
  tt_span_options_t o = {.size = sizeof o, .parent_mode = TT_PARENT_REMOTE, .remote = rc};
  return tt_span_start(NULL, "child", &o);
}

static tt_span_t *root(void) {
  tt_span_options_t o = {.size = sizeof o, .parent_mode = TT_PARENT_NONE};
  return tt_span_start(NULL, "root", &o);
}

static tt_memory_exporter_t *init_ratio(tt_sampler_kind_t kind, double ratio) {
  tt_memory_exporter_t *m = tt_memory_exporter_new(10000);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {.size = sizeof o, .sampler = kind, .sampler_ratio = ratio, .exporter = &e};
  assert_int_equal(tt_init(&o), 0);
  return m;
}

static void always_off_should_return_non_recording_spans_that_still_propagate(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_OFF, 0, 0, 0);
  tt_span_t *s = tt_span_start(NULL, "off", NULL);
  assert_non_null(s);
  assert_false(tt_span_is_recording(s));
  tt_span_context_t c;
  tt_span_get_context(s, &c);
  assert_true(tt_span_context_is_valid(&c));
  assert_false(tt_span_context_is_sampled(&c));
  tt_span_t *prev = tt_make_current(s);
  tt_span_t *child = tt_span_start(NULL, "off-child", NULL);
  tt_span_context_t cc;
  tt_span_get_context(child, &cc);
  assert_memory_equal(cc.trace_id, c.trace_id, 16);
  test_carrier_t *car = calloc(1, sizeof *car);
  tt_inject(child, NULL, test_carrier_set, car);
  const char *tp = test_carrier_get(car, "traceparent");
  assert_non_null(tp);
  assert_string_equal(tp + 53, "02"); /* random, not sampled */
  free(car);
  tt_span_set_int(child, "k", 1); /* no-op */
  tt_span_end(child);
  tt_restore_current(prev);
  tt_span_end(s);
  assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 0);
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  assert_true(st.spans_unsampled >= 2);
  test_finish(m);
}

static void parentbased_should_follow_the_remote_parent_flag(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_PARENTBASED_ALWAYS_ON, 0);
  tt_span_t *a = child_of(remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  assert_false(tt_span_is_recording(a));
  tt_span_t *b = child_of(remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  assert_true(tt_span_is_recording(b));
  tt_span_t *r = root();
  assert_true(tt_span_is_recording(r));
  tt_span_end(a);
  tt_span_end(b);
  tt_span_end(r);
  test_finish(m);
  m = init_ratio(TT_SAMPLER_PARENTBASED_ALWAYS_OFF, 0);
  r = root();
  assert_false(tt_span_is_recording(r));
  b = child_of(remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  assert_true(tt_span_is_recording(b));
  tt_span_end(r);
  tt_span_end(b);
  test_finish(m);
}

static void traceidratio_should_keep_ids_at_or_above_the_spec_threshold(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.5);
  /* Not parent-based: the parent's flag is ignored, only the id's right 7 bytes count. At 0.5
   * the specification's rejection threshold is (1 - 0.5) * 2^56 = 0x80000000000000: R just below
   * it is dropped, R at it is kept (the rule tailtrace-collector's ratio policy applies too). */
  tt_span_t *below = child_of(remote("00-4bf92f3577b34da6a37fffffffffffff-00f067aa0ba902b7-01"));
  tt_span_t *at = child_of(remote("00-4bf92f3577b34da6a380000000000000-00f067aa0ba902b7-00"));
  tt_span_t *lo = child_of(remote("00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-01"));
  tt_span_t *hi = child_of(remote("00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-00"));
  assert_false(tt_span_is_recording(below));
  assert_true(tt_span_is_recording(at));
  assert_false(tt_span_is_recording(lo));
  assert_true(tt_span_is_recording(hi));
  tt_span_end(below);
  tt_span_end(at);
  tt_span_end(lo);
  tt_span_end(hi);
  test_finish(m);
  /* At 0.1 the threshold is 1 - 0.1 at the specification's default precision of 4 hex digits,
   * 0xe666 followed by zeros: the threshold the sampler writes as th:e666. */
  m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.1);
  below = child_of(remote("00-4bf92f3577b34da6a3e665ffffffffff-00f067aa0ba902b7-01"));
  at = child_of(remote("00-4bf92f3577b34da6a3e6660000000000-00f067aa0ba902b7-00"));
  assert_false(tt_span_is_recording(below));
  assert_true(tt_span_is_recording(at));
  tt_span_end(below);
  tt_span_end(at);
  int sampled = 0;
  for (int i = 0; i < 2000; i++) {
    tt_span_t *s = root();
    sampled += tt_span_is_recording(s);
    tt_span_end(s);
  }
  /* Binomial(2000, 0.1): mean 200, sd 13.4; 120-280 is six standard deviations either side. */
  assert_in_range(sampled, 120, 280);
  test_finish(m);
}

static const tt_remote_context_t *remote_ts(const char *tp, const char *tracestate) {
  remote(tp);
  snprintf(g_rc.tracestate, sizeof g_rc.tracestate, "%s", tracestate);
  return &g_rc;
}

/* The consistent probability specification: an explicit randomness value (ot=rv) in the
 * tracestate takes precedence over the trace id's bits, so a trace whose first service set rv is
 * sampled the same everywhere (tailtrace-collector's ratio policy reads it too). A malformed rv is
 * ignored, and the id's bits decide. */
static void traceidratio_should_use_the_parents_rv_over_the_trace_id(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.5);
  const char *id_low = "00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-01";
  const char *id_high = "00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-01";
  tt_span_t *kept = child_of(remote_ts(id_low, "vendor=x,ot=th:8;rv:80000000000000"));
  assert_true(tt_span_is_recording(kept));
  tt_span_t *dropped = child_of(remote_ts(id_high, "ot=rv:7fffffffffffff"));
  assert_false(tt_span_is_recording(dropped));
  tt_span_t *bad_rv = child_of(remote_ts(id_high, "ot=rv:7fffffffffffZZ"));
  assert_true(tt_span_is_recording(bad_rv));
  tt_span_t *short_rv = child_of(remote_ts(id_low, "ot=rv:ffff"));
  assert_false(tt_span_is_recording(short_rv));
  /* A local child inherits the tracestate, and with it the rv. */
  tt_span_t *local = tt_span_start(NULL, "local",
                                   &(tt_span_options_t){.size = sizeof(tt_span_options_t),
                                                        .parent_mode = TT_PARENT_SPAN,
                                                        .parent = kept});
  assert_true(tt_span_is_recording(local));
  tt_span_end(local);
  tt_span_end(kept);
  tt_span_end(dropped);
  tt_span_end(bad_rv);
  tt_span_end(short_rv);
  test_finish(m);
}

static char g_th[16];
static const char *th_of(double ratio, int precision) {
  tt__threshold_encode(tt__threshold_from_ratio_prec(ratio, precision), g_th);
  return g_th;
}

/* The specification's table ("Converting floating-point probability to threshold value"), all
 * three precisions, and its worked 1% example at 5 digits (fd70a4). */
static void threshold_should_match_the_specifications_table(void **state) {
  (void)state;
  static const struct {
    double p;
    const char *th[3]; /* precision 3, 4, 5 */
  } t[] = {
      {1, {"0", "0", "0"}},
      {0.5, {"8", "8", "8"}},
      {1.0 / 3, {"aab", "aaab", "aaaab"}},
      {0.25, {"c", "c", "c"}},
      {0.2, {"ccd", "cccd", "ccccd"}},
      {0.125, {"e", "e", "e"}},
      {0.1, {"e66", "e666", "e6666"}},
      {0.0625, {"f", "f", "f"}},
      {0.01, {"fd71", "fd70a", "fd70a4"}},
      {0.001, {"ffbe7", "ffbe77", "ffbe76d"}},
      {0.0001, {"fff972", "fff9724", "fff97247"}},
      {0.00001, {"ffff584", "ffff583a", "ffff583a5"}},
      {0.000001, {"ffffef4", "ffffef39", "ffffef391"}},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    for (int k = 0; k < 3; k++)
      assert_string_equal(th_of(t[i].p, 3 + k), t[i].th[k]);
  assert_int_equal(tt__threshold_from_ratio_prec(0, 4), TT_TH_MAX); /* never */
  assert_int_equal(tt__threshold_from_ratio_prec(0.1, 4), 0xe6660000000000ull);
}

/* What a span's tracestate carries, as tt_inject sends it ("" when none). */
static char g_ts[TT_TRACESTATE_MAX_LEN + 1];
static const char *ts_of(const tt_span_t *s) {
  test_carrier_t *c = calloc(1, sizeof *c);
  tt_inject(s, NULL, test_carrier_set, c);
  const char *v = test_carrier_get(c, "tracestate");
  snprintf(g_ts, sizeof g_ts, "%s", v != NULL ? v : "");
  free(c);
  return g_ts;
}

/* The consistent probability sampler writes its threshold into the OpenTelemetry tracestate
 * member (ot=th:T) of every span it keeps, so a collector or backend knows each span's weight
 * (1 / probability). A trace the sampler starts gets "ot=th:<T>" alone; the exported span carries
 * it too. */
static void ratio_samplers_should_write_their_threshold_into_tracestate(void **state) {
  (void)state;
  static const struct {
    double ratio;
    const char *ts;
  } t[] = {{1.0, "ot=th:0"},        {0.5, "ot=th:8"},    {0.25, "ot=th:c"},
           {1.0 / 3, "ot=th:aaab"}, {0.1, "ot=th:e666"}, {0.01, "ot=th:fd70a"}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    for (int kind = 0; kind < 2; kind++) {
      tt_memory_exporter_t *m = init_ratio(
          kind ? TT_SAMPLER_PARENTBASED_TRACEIDRATIO : TT_SAMPLER_TRACEIDRATIO, t[i].ratio);
      tt_span_t *s = NULL;
      for (int n = 0; n < 100000 && s == NULL; n++) { /* the first root the ratio keeps */
        s = root();
        if (!tt_span_is_recording(s)) {
          assert_string_equal(ts_of(s), ""); /* a dropped root carries no threshold */
          tt_span_end(s);
          s = NULL;
        }
      }
      assert_non_null(s);
      assert_string_equal(ts_of(s), t[i].ts);
      /* A local child inherits it. */
      tt_span_t *prev = tt_make_current(s);
      tt_span_t *child = tt_span_start(NULL, "child", NULL);
      assert_string_equal(ts_of(child), t[i].ts);
      tt_span_end(child);
      tt_restore_current(prev);
      tt_span_end(s);
      assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
      const tt_span_data_t *d = tt_memory_exporter_find(m, "root");
      assert_non_null(d);
      assert_string_equal(d->tracestate, t[i].ts);
      test_finish(m);
    }
  }
}

/* A remote parent's tracestate: the ot member, modified, moves to the front with th set or
 * replaced; its rv and other sub-keys and the other members travel unchanged, in order. A span
 * the sampler drops loses th (its probability is not known downstream) and keeps the rest. */
static void ratio_sampler_should_set_th_beside_the_parents_members_and_rv(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.25);
  const char *id_hi = "00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-03";
  const char *id_lo = "00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-03";
  tt_span_t *a = child_of(remote_ts(id_hi, "vendor=x,ot=th:8;foo:bar,b@c=2"));
  assert_true(tt_span_is_recording(a));
  assert_string_equal(ts_of(a), "ot=th:c;foo:bar,vendor=x,b@c=2");
  tt_span_t *b = child_of(remote_ts(id_lo, "vendor=x,ot=rv:c0000000000000"));
  assert_true(tt_span_is_recording(b)); /* rv = th: kept, rv travels unchanged */
  assert_string_equal(ts_of(b), "ot=th:c;rv:c0000000000000,vendor=x");
  tt_span_t *c = child_of(remote_ts(id_lo, "vendor=x,ot=th:0;rv:bfffffffffffff"));
  assert_false(tt_span_is_recording(c));
  assert_string_equal(ts_of(c), "ot=rv:bfffffffffffff,vendor=x");
  tt_span_t *d = child_of(remote_ts(id_lo, "ot=th:0"));
  assert_false(tt_span_is_recording(d));
  assert_string_equal(ts_of(d), "");
  tt_span_end(a);
  tt_span_end(b);
  tt_span_end(c);
  tt_span_end(d);
  test_finish(m);
}

/* Parent-based: the parent's decision and threshold are the span's; a threshold the parent's own
 * randomness contradicts (sampled although R < th) is erased, and so is one on a span that is not
 * sampled. */
static void parentbased_ratio_should_keep_a_consistent_parent_threshold_only(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_PARENTBASED_TRACEIDRATIO, 0.5);
  const char *hi = "00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-03";
  const char *lo = "00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-03";
  const char *lo_unsampled = "00-4bf92f3577b34da6a300000000000001-00f067aa0ba902b7-02";
  tt_span_t *a = child_of(remote_ts(hi, "x=1,ot=th:f;rv:ffffffffffffff"));
  assert_true(tt_span_is_recording(a));
  assert_string_equal(ts_of(a), "x=1,ot=th:f;rv:ffffffffffffff"); /* untouched */
  tt_span_t *b = child_of(remote_ts(lo, "x=1,ot=th:f"));
  assert_true(tt_span_is_recording(b)); /* the parent's flag decides */
  assert_string_equal(ts_of(b), "x=1"); /* but R < th: the threshold is not believed */
  tt_span_t *c = child_of(remote_ts(lo_unsampled, "ot=th:0;rv:01234567890abc,x=1"));
  assert_false(tt_span_is_recording(c));
  assert_string_equal(ts_of(c), "ot=rv:01234567890abc,x=1");
  tt_span_t *d = child_of(remote_ts(lo, "x=1"));
  assert_true(tt_span_is_recording(d));
  assert_string_equal(ts_of(d), "x=1"); /* no threshold came, none is made up */
  tt_span_end(a);
  tt_span_end(b);
  tt_span_end(c);
  tt_span_end(d);
  test_finish(m);
  /* The other parent-based modes pass a tracestate on as it came. */
  m = init_ratio(TT_SAMPLER_PARENTBASED_ALWAYS_ON, 0);
  b = child_of(remote_ts(lo, "x=1,ot=th:f"));
  assert_string_equal(ts_of(b), "x=1,ot=th:f");
  tt_span_end(b);
  test_finish(m);
}

static int g_random_warnings;
static void count_random_warning(tt_log_level_t level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  if (strstr(line, "random trace flag") != NULL)
    g_random_warnings++;
}

/* The specification asks for a warning when a ratio decision relies on trace id randomness the
 * parent did not confirm with the W3C random flag (and gave no rv): once per process. */
static void
ratio_sampler_should_warn_once_when_the_parent_does_not_confirm_randomness(void **state) {
  (void)state;
  tt_set_log_handler(count_random_warning, NULL, TT_LOG_WARN);
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.5);
  tt_span_t *a = child_of(remote("00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-03"));
  tt_span_t *b = child_of(
      remote_ts("00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-01", "ot=rv:ffffffffffffff"));
  tt_span_t *r = root();
  assert_int_equal(g_random_warnings, 0);
  tt_span_t *c = child_of(remote("00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-01"));
  tt_span_t *d = child_of(remote("00-4bf92f3577b34da6a3ffffffffffffff-00f067aa0ba902b7-00"));
  assert_int_equal(g_random_warnings, 1);
  tt_span_end(a);
  tt_span_end(b);
  tt_span_end(r);
  tt_span_end(c);
  tt_span_end(d);
  test_finish(m);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
}

static void ratio_zero_and_one_should_be_never_and_always(void **state) {
  (void)state;
  tt_memory_exporter_t *m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 0.0);
  for (int i = 0; i < 100; i++) {
    tt_span_t *s = root();
    assert_false(tt_span_is_recording(s));
    tt_span_end(s);
  }
  test_finish(m);
  m = init_ratio(TT_SAMPLER_TRACEIDRATIO, 1.0);
  for (int i = 0; i < 100; i++) {
    tt_span_t *s = root();
    assert_true(tt_span_is_recording(s));
    tt_span_end(s);
  }
  test_finish(m);
}

static void sampler_should_come_from_the_environment(void **state) {
  (void)state;
  setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
  setenv("OTEL_TRACES_SAMPLER_ARG", "0", 1);
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_FROM_ENV, 0, 0, 0);
  tt_span_t *r = root();
  assert_false(tt_span_is_recording(r));
  tt_span_t *b = child_of(remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
  assert_true(tt_span_is_recording(b));
  tt_span_end(r);
  tt_span_end(b);
  test_finish(m);
  /* Unknown names and bad arguments fall back to the defaults. */
  setenv("OTEL_TRACES_SAMPLER", "no_such_sampler", 1);
  m = test_init(TT_SAMPLER_FROM_ENV, 0, 0, 0);
  r = root();
  assert_true(tt_span_is_recording(r));
  tt_span_end(r);
  test_finish(m);
  setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
  setenv("OTEL_TRACES_SAMPLER_ARG", "1.5", 1);
  m = test_init(TT_SAMPLER_FROM_ENV, 0, 0, 0);
  r = root();
  assert_true(tt_span_is_recording(r));
  tt_span_end(r);
  test_finish(m);
  setenv("OTEL_TRACES_SAMPLER", "always_off", 1);
  m = test_init(TT_SAMPLER_FROM_ENV, 0, 0, 0);
  r = root();
  assert_false(tt_span_is_recording(r));
  tt_span_end(r);
  test_finish(m);
  unsetenv("OTEL_TRACES_SAMPLER");
  unsetenv("OTEL_TRACES_SAMPLER_ARG");
}

static void default_sampler_should_be_parentbased_always_on(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_FROM_ENV, 0, 0, 0);
  tt_span_t *r = root();
  assert_true(tt_span_is_recording(r));
  tt_span_t *a = child_of(remote("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
  assert_false(tt_span_is_recording(a));
  tt_span_end(a);
  tt_span_end(r);
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First: the warning is given once per process, and later tests would use it up. */
      cmocka_unit_test(ratio_sampler_should_warn_once_when_the_parent_does_not_confirm_randomness),
      cmocka_unit_test(always_off_should_return_non_recording_spans_that_still_propagate),
      cmocka_unit_test(parentbased_should_follow_the_remote_parent_flag),
      cmocka_unit_test(traceidratio_should_use_the_parents_rv_over_the_trace_id),
      cmocka_unit_test(traceidratio_should_keep_ids_at_or_above_the_spec_threshold),
      cmocka_unit_test(threshold_should_match_the_specifications_table),
      cmocka_unit_test(ratio_samplers_should_write_their_threshold_into_tracestate),
      cmocka_unit_test(ratio_sampler_should_set_th_beside_the_parents_members_and_rv),
      cmocka_unit_test(parentbased_ratio_should_keep_a_consistent_parent_threshold_only),
      cmocka_unit_test(ratio_zero_and_one_should_be_never_and_always),
      cmocka_unit_test(sampler_should_come_from_the_environment),
      cmocka_unit_test(default_sampler_should_be_parentbased_always_on),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
