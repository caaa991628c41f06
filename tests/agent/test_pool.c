/* The record pool is bounded: when every record is in use, a span start returns NULL and is
 * counted, and tracing recovers as soon as spans end. Its own executable, because the pool's cap
 * only ever grows within a process. */
#include "tt_test_util.h"

#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

#define HELD 2000

static void exhausted_pool_should_drop_new_spans_and_count_them(void **state) {
  (void)state;
  /* Queue 8: the default span memory budget is (2 * 8 + 864) records plus one thread's ring;
   * no ring is taken before the first span ends, so records may have all of it. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 8, 8, 60000);
  uint64_t budget, reserved, records;
  tt__memory_get(&budget, &reserved, &records);
  assert_int_equal(budget, tt__memory_default_budget(8));
  static tt_span_t *held[HELD];
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  int nulls = 0;
  for (int i = 0; i < HELD; i++) {
    held[i] = tt_span_start(NULL, "held", NULL);
    nulls += held[i] == NULL;
  }
  tt_stats_get(&b);
  assert_true(nulls >= HELD - (int)(budget / TT__RECORD_STRIDE));
  tt__memory_get(&budget, &reserved, &records);
  assert_true(records * TT__RECORD_STRIDE <= budget);
  assert_int_equal(records, HELD - nulls); /* every record allocated is one of the held spans */
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

/* Record slabs with the default allocator are mapped directly and trimmed: the pages just
 * before and after a 2 MB slab are not reserved (msync answers ENOMEM for an unmapped range),
 * where 4 MB through malloc reserved a second 2 MB around every slab. */
static void slabs_should_reserve_only_their_own_size_with_the_default_allocator(void **state) {
  (void)state;
  const size_t mb2 = (size_t)2 << 20;
  for (int i = 0; i < 4; i++) {
    void *raw;
    char *b = tt__alloc_aligned_forever(mb2, mb2, &raw);
    assert_non_null(b);
    assert_null(raw); /* a mapping: nothing for the caller to keep reachable */
    assert_int_equal((uintptr_t)b % mb2, 0);
    b[0] = 1; /* usable from its first byte to its last */
    b[mb2 - 1] = 2;
    errno = 0;
    assert_int_equal(msync(b - 4096, 4096, MS_ASYNC), -1);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_int_equal(msync(b + mb2, 4096, MS_ASYNC), -1);
    assert_int_equal(errno, ENOMEM);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exhausted_pool_should_drop_new_spans_and_count_them),
      cmocka_unit_test(slabs_should_reserve_only_their_own_size_with_the_default_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
