/* One process-wide budget bounds span memory (records, and every thread's ring and copy slots),
 * whatever the number of threads: TT_SPAN_MEMORY_MB, else a default from the queue size. Its own
 * executable: records, once allocated, stay for the life of the process. */
#include "tt_test_util.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

#define THREADS 32
#define OPEN 64 /* spans each thread holds open at once: 32 x 64 records wanted, ~990 in 4 MB */
#define ROUNDS 5

static pthread_barrier_t g_barrier;
static _Atomic uint64_t g_attempts;
static _Atomic uint32_t g_hold_seen = UINT32_MAX; /* smallest tt__hold.max seen with all alive */
static _Atomic int g_memory_warned;

static void capture(tt_log_level_t level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  if (strstr(line, "span memory is at its limit (TT_SPAN_MEMORY_MB: 4 MB") != NULL)
    atomic_store(&g_memory_warned, 1);
}

static void *holder(void *arg) {
  (void)arg;
  (void)tt_current_span(); /* this thread's state: it now shares the pool */
  pthread_barrier_wait(&g_barrier);
  uint32_t h = atomic_load(&tt__hold.max);
  if (h < atomic_load(&g_hold_seen))
    atomic_store(&g_hold_seen, h);
  for (int r = 0; r < ROUNDS; r++) {
    tt_span_t *s[OPEN];
    for (int i = 0; i < OPEN; i++) {
      s[i] = tt_span_start(NULL, "held", NULL);
      atomic_fetch_add(&g_attempts, 1);
      tt_span_set_str(s[i], "http.route", "/checkout"); /* not plain: travels as its record */
    }
    for (int i = 0; i < OPEN; i++)
      tt_span_end(s[i]); /* NULL (not started) is a no-op */
  }
  pthread_barrier_wait(&g_barrier);
  return NULL;
}

static void span_memory_should_stay_within_one_budget_whatever_the_thread_count(void **state) {
  (void)state;
  setenv("TT_SPAN_MEMORY_MB", "4", 1);
  tt_set_log_handler(capture, NULL, TT_LOG_WARN);
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 2048, 512, 60000);
  uint64_t budget, reserved, records;
  tt__memory_get(&budget, &reserved, &records);
  assert_int_equal(budget, 4u << 20);
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  pthread_t th[THREADS];
  assert_int_equal(pthread_barrier_init(&g_barrier, NULL, THREADS + 1), 0);
  for (int k = 0; k < THREADS; k++)
    assert_int_equal(pthread_create(&th[k], NULL, holder, NULL), 0);
  pthread_barrier_wait(&g_barrier); /* all alive */
  pthread_barrier_wait(&g_barrier); /* all done, still alive */
  tt__memory_get(&budget, &reserved, &records);
  printf("budget %llu: rings and copy slots %llu, records %llu (%llu bytes), hold %u\n",
         (unsigned long long)budget, (unsigned long long)reserved, (unsigned long long)records,
         (unsigned long long)(records * TT__RECORD_STRIDE), atomic_load(&g_hold_seen));
  /* Rings, copy slots and records together within the budget, but for the smallest ring of each
   * thread past it. */
  uint64_t outside = (THREADS + 1) * TT__RING_FLOOR * sizeof(uintptr_t);
  assert_true(reserved <= budget / 2 + outside);
  assert_true(records * TT__RECORD_STRIDE + reserved <= budget + outside);
  /* With 33 threads sharing ~490 records, each keeps a small share of free records. */
  assert_true(atomic_load(&g_hold_seen) < TT__LOCAL_MAX);
  for (int k = 0; k < THREADS; k++)
    pthread_join(th[k], NULL);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  tt_stats_get(&b);
  /* The budget was what bound: spans that found no record were counted, and told. */
  uint64_t no_record = b.dropped_no_record - a.dropped_no_record;
  assert_true(no_record > 0);
  assert_int_equal(atomic_load(&g_memory_warned), 1);
  assert_int_equal(b.spans_started - a.spans_started + no_record, atomic_load(&g_attempts));
  assert_int_equal(b.spans_exported - a.spans_exported + b.dropped_queue_full -
                       a.dropped_queue_full,
                   b.spans_ended - a.spans_ended);
  assert_int_equal(b.spans_exported - a.spans_exported, tt_memory_exporter_count(m));
  /* Records came back: a span starts again. */
  tt_span_t *s = tt_span_start(NULL, "after", NULL);
  assert_non_null(s);
  tt_span_end(s);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_non_null(tt_memory_exporter_find(m, "after"));
  test_finish(m);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
  unsetenv("TT_SPAN_MEMORY_MB");
}

/* Without TT_SPAN_MEMORY_MB the budget is what one thread used before there was one: twice the
 * queue in records plus 864, and one thread's ring and copy slots. A malformed value keeps the
 * default; one past the largest taken is lowered to it. */
static void span_memory_budget_should_come_from_the_environment_or_the_queue(void **state) {
  (void)state;
  uint64_t budget, reserved, records;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 4096, 512, 60000);
  tt__memory_get(&budget, &reserved, &records);
  assert_int_equal(budget, tt__memory_default_budget(4096));
  assert_int_equal(budget, (2 * 4096 + 864) * (uint64_t)TT__RECORD_STRIDE + 8192 * 8 + 4096 * 256);
  test_finish(m);
  static const struct {
    const char *env;
    uint64_t want;
  } c[] = {{"64", 64ull << 20},
           {" 16 ", 16ull << 20},
           {"12MB", 0},
           {"-1", 0},
           {"0", 0},
           {"100000", (uint64_t)TT__SPAN_MEMORY_MB_MAX << 20}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    setenv("TT_SPAN_MEMORY_MB", c[i].env, 1);
    m = test_init(TT_SAMPLER_ALWAYS_ON, 2048, 512, 60000);
    tt__memory_get(&budget, &reserved, &records);
    assert_int_equal(budget, c[i].want != 0 ? c[i].want : tt__memory_default_budget(2048));
    test_finish(m);
  }
  unsetenv("TT_SPAN_MEMORY_MB");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(span_memory_should_stay_within_one_budget_whatever_the_thread_count),
      cmocka_unit_test(span_memory_budget_should_come_from_the_environment_or_the_queue),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
