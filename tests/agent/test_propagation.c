/* Inject/extract through caller callbacks, and OTEL_PROPAGATORS. */
#include "tt_test_util.h"

static test_carrier_t *carrier(void) {
  return calloc(1, sizeof(test_carrier_t));
}

static void extract_should_read_traceparent_tracestate_and_baggage(void **state) {
  (void)state;
  tt_remote_context_t rc; /* on the stack, as a server would hold it */
  static tt_baggage_t bag;
  test_carrier_t *c = carrier();
  test_carrier_set(c, "TraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  test_carrier_set(c, "tracestate", "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7");
  test_carrier_set(c, "baggage", "user=alice%21,n=1");
  assert_int_equal(tt_extract(test_carrier_get, c, &rc), 0);
  assert_true(tt_span_context_is_valid(&rc.span_context));
  assert_true(rc.span_context.is_remote);
  assert_string_equal(rc.tracestate, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  assert_int_equal(tt_extract_baggage(test_carrier_get, c, &bag), 0);
  size_t len;
  const char *v = tt_baggage_get(&bag, "user", &len);
  assert_int_equal(len, 6);
  assert_memory_equal(v, "alice!", 6);
  free(c);
}

static void bad_tracestate_should_not_invalidate_traceparent(void **state) {
  (void)state;
  static tt_remote_context_t rc;
  test_carrier_t *c = carrier();
  test_carrier_set(c, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  test_carrier_set(c, "tracestate", "a=1,Bad=2");
  assert_int_equal(tt_extract(test_carrier_get, c, &rc), 0);
  assert_true(tt_span_context_is_valid(&rc.span_context));
  assert_string_equal(rc.tracestate, "");
  free(c);
}

static void invalid_traceparent_should_be_ignored_but_baggage_kept(void **state) {
  (void)state;
  static tt_remote_context_t rc;
  test_carrier_t *c = carrier();
  test_carrier_set(c, "traceparent", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01");
  test_carrier_set(c, "tracestate", "a=1");
  test_carrier_set(c, "baggage", "k=v");
  assert_int_equal(tt_extract(test_carrier_get, c, &rc), TT_ENOTFOUND);
  assert_false(tt_span_context_is_valid(&rc.span_context));
  assert_string_equal(rc.tracestate, "");
  static tt_baggage_t bag;
  assert_int_equal(tt_extract_baggage(test_carrier_get, c, &bag), 0);
  assert_non_null(tt_baggage_get(&bag, "k", NULL));
  free(c);
}

/* The remote parent fits a small stack: its baggage lives where the caller puts it. */
static void remote_context_should_be_small_enough_for_a_stack(void **state) {
  (void)state;
  assert_true(sizeof(tt_remote_context_t) <= 600);
  assert_true(sizeof(tt_remote_context_t) >= TT_TRACESTATE_MAX_LEN + sizeof(tt_span_context_t));
}

/* Baggage extraction starts from an empty set, counts invalid members, and says when there is
 * nothing to read. */
static void extract_baggage_should_replace_count_and_report_absence(void **state) {
  (void)state;
  static tt_baggage_t bag;
  tt_baggage_init(&bag);
  assert_int_equal(tt_baggage_set(&bag, "stale", "1", NULL), 0);
  test_carrier_t *c = carrier();
  test_carrier_set(c, "baggage", "a=1,=bad,b=2");
  assert_int_equal(tt_extract_baggage(test_carrier_get, c, &bag), 1);
  assert_null(tt_baggage_get(&bag, "stale", NULL));
  assert_int_equal(bag.count, 2);
  test_carrier_t *empty = carrier();
  assert_int_equal(tt_extract_baggage(test_carrier_get, empty, &bag), TT_ENOTFOUND);
  assert_int_equal(bag.count, 0);
  assert_int_equal(tt_extract_baggage(NULL, c, &bag), TT_EINVAL);
  assert_int_equal(tt_extract_baggage(test_carrier_get, c, NULL), TT_EINVAL);
  free(c);
  free(empty);
}

static void inject_should_write_what_extract_reads(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
  static tt_remote_context_t in, out;
  test_carrier_t *c = carrier();
  test_carrier_set(c, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03");
  test_carrier_set(c, "tracestate", "rojo=1");
  assert_int_equal(tt_extract(test_carrier_get, c, &in), 0);
  tt_span_options_t o = {.size = sizeof o, .parent_mode = TT_PARENT_REMOTE, .remote = &in};
  tt_span_t *s = tt_span_start(NULL, "client", &o);
  static tt_baggage_t bag;
  tt_baggage_init(&bag);
  tt_baggage_set(&bag, "tenant", "a b", NULL);
  test_carrier_t *d = carrier();
  assert_int_equal(tt_inject(s, &bag, test_carrier_set, d), 0);
  assert_int_equal(tt_extract(test_carrier_get, d, &out), 0);
  tt_span_context_t sc;
  tt_span_get_context(s, &sc);
  assert_memory_equal(out.span_context.trace_id, sc.trace_id, 16);
  assert_memory_equal(out.span_context.span_id, sc.span_id, 8);
  assert_int_equal(out.span_context.trace_flags, 3); /* sampled + random inherited */
  assert_string_equal(out.tracestate, "rojo=1");
  assert_string_equal(test_carrier_get(d, "baggage"), "tenant=a%20b");
  tt_span_end(s);
  free(c);
  free(d);
  test_finish(m);
}

/* A repeated key loses only its later occurrences; the other members travel on. */
static void extract_should_keep_tracestate_members_beside_a_duplicate_key(void **state) {
  (void)state;
  static tt_remote_context_t rc;
  test_carrier_t *c = carrier();
  test_carrier_set(c, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  test_carrier_set(c, "tracestate", "a=1,foo=1,b=2,foo=2,1x@@y=3");
  assert_int_equal(tt_extract(test_carrier_get, c, &rc), 0);
  assert_string_equal(rc.tracestate, "a=1,foo=1,b=2,1x@@y=3");
  free(c);
}

static const char *child_flags(const char *traceparent, char flags[3]) {
  static tt_remote_context_t in;
  test_carrier_t *c = carrier(), *d = carrier();
  test_carrier_set(c, "traceparent", traceparent);
  assert_int_equal(tt_extract(test_carrier_get, c, &in), 0);
  tt_span_options_t o = {.size = sizeof o, .parent_mode = TT_PARENT_REMOTE, .remote = &in};
  tt_span_t *s = tt_span_start(NULL, "child", &o);
  assert_int_equal(tt_inject(s, NULL, test_carrier_set, d), 0);
  const char *tp = test_carrier_get(d, "traceparent");
  assert_non_null(tp);
  assert_memory_equal(tp + 3, traceparent + 3, 32); /* same trace id */
  memcpy(flags, tp + 53, 3);
  tt_span_end(s);
  free(c);
  free(d);
  return flags;
}

/* W3C Level 2: a trace continued with the same trace id keeps the incoming random flag, set or
 * unset; flags this version does not define go out as zero; a trace the library starts has
 * random ids and says so. */
static void random_flag_should_be_propagated_as_received_and_set_on_new_traces(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_PARENTBASED_ALWAYS_ON, 0, 0, 0);
  char f[3];
  assert_string_equal(child_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", f),
                      "03");
  assert_string_equal(child_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", f),
                      "01");
  assert_string_equal(child_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02", f),
                      "02");
  assert_string_equal(child_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", f),
                      "03");
  assert_string_equal(child_flags("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fc", f),
                      "00");
  tt_span_options_t o = {.size = sizeof o, .parent_mode = TT_PARENT_NONE};
  tt_span_t *root = tt_span_start(NULL, "root", &o);
  test_carrier_t *d = carrier();
  tt_inject(root, NULL, test_carrier_set, d);
  assert_string_equal(test_carrier_get(d, "traceparent") + 53, "03");
  tt_span_end(root);
  free(d);
  test_finish(m);
}

static void otel_propagators_should_select_what_is_injected(void **state) {
  (void)state;
  static tt_baggage_t bag;
  tt_baggage_init(&bag);
  tt_baggage_set(&bag, "k", "v", NULL);
  const char *settings[] = {"baggage", "tracecontext", "none", "b3,tracecontext"};
  int want_tp[] = {0, 1, 0, 1}, want_bg[] = {1, 0, 0, 0};
  for (int i = 0; i < 4; i++) {
    setenv("OTEL_PROPAGATORS", settings[i], 1);
    tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
    tt_span_t *s = tt_span_start(NULL, "p", NULL);
    test_carrier_t *c = carrier();
    tt_inject(s, &bag, test_carrier_set, c);
    assert_int_equal(test_carrier_get(c, "traceparent") != NULL, want_tp[i]);
    assert_int_equal(test_carrier_get(c, "baggage") != NULL, want_bg[i]);
    /* Extraction follows the same setting. */
    static tt_baggage_t got;
    tt_remote_context_t rc;
    test_carrier_t *both = carrier();
    test_carrier_set(both, "traceparent",
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    test_carrier_set(both, "baggage", "k=v");
    assert_int_equal(tt_extract(test_carrier_get, both, &rc), want_tp[i] ? 0 : TT_ENOTFOUND);
    assert_int_equal(tt_extract_baggage(test_carrier_get, both, &got),
                     want_bg[i] ? 0 : TT_ENOTFOUND);
    assert_int_equal(got.count, want_bg[i]);
    free(both);
    free(c);
    tt_span_end(s);
    test_finish(m);
  }
  unsetenv("OTEL_PROPAGATORS");
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 0);
  test_carrier_t *c = carrier();
  tt_span_t *s = tt_span_start(NULL, "p", NULL);
  tt_inject(s, &bag, test_carrier_set, c);
  assert_non_null(test_carrier_get(c, "traceparent"));
  assert_non_null(test_carrier_get(c, "baggage"));
  free(c);
  tt_span_end(s);
  test_finish(m);
}

static void inject_of_null_span_should_write_only_baggage(void **state) {
  (void)state;
  static tt_baggage_t bag;
  tt_baggage_init(&bag);
  tt_baggage_set(&bag, "k", "v", NULL);
  test_carrier_t *c = carrier();
  assert_int_equal(tt_inject(NULL, &bag, test_carrier_set, c), 0);
  assert_null(test_carrier_get(c, "traceparent"));
  assert_string_equal(test_carrier_get(c, "baggage"), "k=v");
  assert_int_equal(tt_inject(NULL, NULL, NULL, c), TT_EINVAL);
  free(c);
}

/* Keeps the whole injected baggage header, however long, unlike test_carrier_t's fixed slots. */
static char g_header[TT_BAGGAGE_MAX_BYTES * 4];
static size_t g_header_len;
static void capture_baggage(void *carrier, const char *key, const char *value) {
  (void)carrier;
  if (strcmp(key, "baggage") == 0) {
    g_header_len = strlen(value);
    snprintf(g_header, sizeof g_header, "%s", value);
  }
}

static int g_left_out_warnings;
static void note_left_out(tt_log_level_t level, const char *line, void *arg) {
  (void)arg;
  if (level == TT_LOG_WARN && strstr(line, "members left out") != NULL)
    g_left_out_warnings += strstr(line, "baggage: 1 of 3 members left out") != NULL ? 1 : 100;
}

static void inject_should_keep_the_baggage_header_within_8192_encoded_bytes(void **state) {
  (void)state;
  static tt_baggage_t bag;
  static char spaces[8001];
  tt_baggage_init(&bag);
  /* 8000 spaces are 8000 bytes stored but 24000 on the wire: this member can never go. */
  memset(spaces, ' ', 8000);
  spaces[8000] = '\0';
  assert_int_equal(tt_baggage_set(&bag, "first", "1", NULL), 0);
  assert_int_equal(tt_baggage_set(&bag, "huge", spaces, NULL), 0);
  assert_int_equal(tt_baggage_set(&bag, "last", "2", NULL), 0);
  g_header_len = 0;
  g_left_out_warnings = 0;
  tt_set_log_handler(note_left_out, NULL, TT_LOG_WARN);
  assert_int_equal(tt_inject(NULL, &bag, capture_baggage, NULL), 0);
  assert_string_equal(g_header, "first=1,last=2");

  /* "a=" and 2730 encoded spaces are exactly 8192 bytes: that member goes and nothing after it
   * does, not even a cut piece of one. The count left out was logged for the first inject only:
   * inject runs on every request, so the warning is given once. */
  tt_baggage_init(&bag);
  spaces[2730] = '\0';
  assert_int_equal(tt_baggage_set(&bag, "a", spaces, NULL), 0);
  assert_int_equal(tt_baggage_set(&bag, "b", "1", NULL), 0);
  assert_int_equal(tt_baggage_set(&bag, "c", "", NULL), 0);
  assert_int_equal(tt_baggage_set(&bag, "d", "", "p"), 0);
  assert_int_equal(tt_inject(NULL, &bag, capture_baggage, NULL), 0);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
  assert_int_equal(g_header_len, TT_BAGGAGE_MAX_BYTES);
  assert_memory_equal(g_header, "a=%20%20", 8);
  assert_null(strchr(g_header, ','));
  assert_int_equal(g_left_out_warnings, 1);

  /* The member limit holds too: all 180 small members go. */
  tt_baggage_init(&bag);
  char k[16];
  for (int i = 0; i < TT_BAGGAGE_MAX_ENTRIES; i++) {
    snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(tt_baggage_set(&bag, k, "v", NULL), 0);
  }
  assert_int_equal(tt_inject(NULL, &bag, capture_baggage, NULL), 0);
  int commas = 0;
  for (size_t i = 0; i < g_header_len; i++)
    commas += g_header[i] == ',';
  assert_int_equal(commas + 1, TT_BAGGAGE_MAX_ENTRIES);
  assert_true(g_header_len <= TT_BAGGAGE_MAX_BYTES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(extract_should_read_traceparent_tracestate_and_baggage),
      cmocka_unit_test(bad_tracestate_should_not_invalidate_traceparent),
      cmocka_unit_test(invalid_traceparent_should_be_ignored_but_baggage_kept),
      cmocka_unit_test(inject_should_write_what_extract_reads),
      cmocka_unit_test(remote_context_should_be_small_enough_for_a_stack),
      cmocka_unit_test(extract_baggage_should_replace_count_and_report_absence),
      cmocka_unit_test(extract_should_keep_tracestate_members_beside_a_duplicate_key),
      cmocka_unit_test(random_flag_should_be_propagated_as_received_and_set_on_new_traces),
      cmocka_unit_test(otel_propagators_should_select_what_is_injected),
      cmocka_unit_test(inject_of_null_span_should_write_only_baggage),
      cmocka_unit_test(inject_should_keep_the_baggage_header_within_8192_encoded_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
