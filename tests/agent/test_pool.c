/* The record pool is bounded: when every record is in use, a span start returns NULL and is
 * counted, and tracing recovers as soon as spans end. Its own executable, because the pool's cap
 * only ever grows within a process. */
#include "tt_test_util.h"

#define HELD 2000

static void exhausted_pool_should_drop_new_spans_and_count_them(void **state) {
  (void)state;
  /* Queue 8: the pool is capped at 2 * 8 + 512 records. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 8, 8, 60000);
  static tt_span_t *held[HELD];
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  int nulls = 0;
  for (int i = 0; i < HELD; i++) {
    held[i] = tt_span_start(NULL, "held", NULL);
    nulls += held[i] == NULL;
  }
  tt_stats_get(&b);
  assert_true(nulls >= HELD - 528);
  assert_int_equal(b.dropped_no_record - a.dropped_no_record, nulls);
  assert_int_equal(b.spans_started - a.spans_started, HELD - nulls);
  for (int i = 0; i < HELD; i++)
    tt_span_end(held[i]);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  /* Records came back: new spans work again. */
  tt_span_t *s = tt_span_start(NULL, "after", NULL);
  assert_non_null(s);
  tt_span_end(s);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_non_null(tt_memory_exporter_find(m, "after"));
  tt_stats_get(&b);
  assert_int_equal(b.spans_exported - a.spans_exported + b.dropped_queue_full -
                       a.dropped_queue_full,
                   b.spans_ended - a.spans_ended);
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exhausted_pool_should_drop_new_spans_and_count_them),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
