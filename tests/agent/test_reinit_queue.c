/* A thread's ring is sized once, for the provider of its first span end, and kept across
 * tt_shutdown and tt_init. A later provider with a bigger queue (or a batch bigger than the old
 * ring's half) gets the old ring's limit, and the thread must still wake the exporter when that
 * limit is full, not wait for a batch the ring can never hold. Its own executable: the ring's size
 * depends on the first provider this process's threads saw. */
#include "tt_test_util.h"

#include "internal.h"

static void a_ring_from_a_smaller_queue_should_still_wake_the_exporter_when_full(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 128, 128, 60000);
  tt_span_end(tt_span_start(NULL, "sizes-the-ring", NULL));
  test_finish(m);
  assert_int_equal(tt__tls->ring_mask + 1, 512); /* the smallest ring: a 256-span limit */

  /* Queue 4096, batch 512, and a one-minute schedule: only a wake-up exports before then. */
  m = test_init(TT_SAMPLER_ALWAYS_ON, 4096, 512, 60000);
  tt_stats_t before = {.size = sizeof before}, after = {.size = sizeof after};
  tt_stats_get(&before);
  for (int i = 0; i < 256; i++)
    tt_span_end(tt_span_start(NULL, "after-reinit", NULL));
  tt_stats_get(&after);
  assert_int_equal(after.dropped_queue_full - before.dropped_queue_full, 0);
  uint64_t deadline = test_deadline_ms(20000);
  while (tt_memory_exporter_count(m) < 256 && tt_monotonic_ns() < deadline) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(tt_memory_exporter_count(m), 256);
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_ring_from_a_smaller_queue_should_still_wake_the_exporter_when_full),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
