/* What the library says when it drops spans: a full queue is told at once, then summed at most
 * once per interval; OTEL_TRACES_EXPORTER=none is no export failure. */
#include "tt_test_util.h"

#include "internal.h"

#include <stdatomic.h>
#include <time.h>

/* The handler runs on the application thread (the at-once warning) and on the exporter thread
 * (the summaries): it keeps what it saw under a lock. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_first, g_summaries;
static unsigned long long g_summed;

static void capture(tt_log_level_t level, const char *line, void *arg) {
  (void)level;
  (void)arg;
  pthread_mutex_lock(&g_mu);
  unsigned long long n;
  const char *p;
  if (strstr(line, "span queue is full (OTEL_BSP_MAX_QUEUE_SIZE=") != NULL)
    g_first++;
  else if ((p = strstr(line, "warn: ")) != NULL && sscanf(p + 6, "%llu spans dropped", &n) == 1 &&
           strstr(line, "queue was full") != NULL) {
    g_summaries++;
    g_summed += n;
  }
  pthread_mutex_unlock(&g_mu);
}

static void reset_capture(void) {
  pthread_mutex_lock(&g_mu);
  g_first = g_summaries = 0;
  g_summed = 0;
  pthread_mutex_unlock(&g_mu);
}

static int first_warnings(void) {
  pthread_mutex_lock(&g_mu);
  int n = g_first;
  pthread_mutex_unlock(&g_mu);
  return n;
}

static void burst(int n) {
  for (int i = 0; i < n; i++)
    tt_span_end(tt_span_start(NULL, "burst", NULL));
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static tt_stats_t stats(void) {
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  return st;
}

/* 40,000 spans on one thread at the default queue (2048): most are dropped. The first drop is
 * told at once, on the thread that dropped it, even before any export; the count comes in one
 * summary (the interval is 10 s, so at shutdown), and it is the count tt_stats_get gives. */
static void queue_full_burst_should_warn_at_once_and_then_sum_up(void **state) {
  (void)state;
  reset_capture();
  tt_set_log_handler(capture, NULL, TT_LOG_DEBUG);
  tt_stats_t before = stats();
  tt_memory_exporter_t *m = tt_memory_exporter_new(100000);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {.size = sizeof o, .sampler = TT_SAMPLER_ALWAYS_ON, .exporter = &e};
  assert_int_equal(tt_init(&o), 0);
  burst(40000);
  assert_int_equal(first_warnings(), 1);
  tt_stats_t mid = stats();
  uint64_t dropped = mid.dropped_queue_full - before.dropped_queue_full;
  assert_true(dropped > 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_stats_t after = stats();
  assert_int_equal(after.dropped_queue_full - before.dropped_queue_full, dropped);
  assert_int_equal(after.spans_exported - before.spans_exported + dropped, 40000);
  pthread_mutex_lock(&g_mu);
  assert_int_equal(g_first, 1);
  assert_true(g_summaries >= 1);
  assert_int_equal(g_summed, dropped);
  pthread_mutex_unlock(&g_mu);
  tt_memory_exporter_free(m);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
}

/* Drops that go on: at most one summary per interval, together counting every drop; after an
 * interval without drops, the next drop is told at once again. */
static void queue_full_summaries_should_be_rate_limited_and_count_every_drop(void **state) {
  (void)state;
  reset_capture();
  tt_set_log_handler(capture, NULL, TT_LOG_WARN);
  atomic_store(&tt__drop_report_ns, 300000000ull); /* 300 ms */
  tt_stats_t before = stats();
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 256, 64, 50);
  uint64_t t0 = tt_monotonic_ns();
  for (int i = 0; i < 30; i++) { /* 1.5 s of bursts, every one over the queue */
    burst(2000);
    sleep_ms(50);
  }
  uint64_t busy_ms = (tt_monotonic_ns() - t0) / 1000000u;
  pthread_mutex_lock(&g_mu);
  int during = g_summaries;
  pthread_mutex_unlock(&g_mu);
  assert_true(during >= 2);
  assert_true((uint64_t)during <= busy_ms / 300 + 2);
  assert_int_equal(first_warnings(), 1);
  sleep_ms(2000); /* quiet intervals: the at-once warning is armed again */
  burst(2000);
  assert_int_equal(first_warnings(), 2);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_stats_t after = stats();
  pthread_mutex_lock(&g_mu);
  assert_int_equal(g_summed, after.dropped_queue_full - before.dropped_queue_full);
  pthread_mutex_unlock(&g_mu);
  atomic_store(&tt__drop_report_ns, 10000000000ull);
  tt_memory_exporter_free(m);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
}

/* OTEL_TRACES_EXPORTER=none asks for no export: the spans it does not send are no failure. */
static void exporter_none_should_not_count_export_failures(void **state) {
  (void)state;
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  tt_stats_t before = stats();
  assert_int_equal(tt_init(NULL), 0);
  burst(100);
  assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_stats_t after = stats();
  assert_int_equal(after.spans_ended - before.spans_ended, 100);
  assert_int_equal(after.dropped_export_failed, before.dropped_export_failed);
  assert_int_equal(after.spans_exported, before.spans_exported);
  /* A name the library does not know is a failure to export, and counted as one. */
  setenv("OTEL_TRACES_EXPORTER", "no_such_exporter", 1);
  assert_int_equal(tt_init(NULL), 0);
  burst(10);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  assert_int_equal(stats().dropped_export_failed - after.dropped_export_failed, 10);
  unsetenv("OTEL_TRACES_EXPORTER");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(queue_full_burst_should_warn_at_once_and_then_sum_up),
      cmocka_unit_test(queue_full_summaries_should_be_rate_limited_and_count_every_drop),
      cmocka_unit_test(exporter_none_should_not_count_export_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
