/* Batch processor: schedule, flush and shutdown deadlines, retries, failures, full-queue drops,
 * many producer threads and thread churn. Waits are bounded polls, never timing assertions. */
#include "tt_test_util.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Polls until the exporter holds n spans or 10 s pass. */
static size_t wait_count(tt_memory_exporter_t *m, size_t n) {
  for (int i = 0; i < 1000 && tt_memory_exporter_count(m) < n; i++)
    sleep_ms(10);
  return tt_memory_exporter_count(m);
}

static void stats(tt_stats_t *s) {
  s->size = sizeof *s;
  assert_int_equal(tt_stats_get(s), 0);
}

static void batch_should_export_when_the_schedule_delay_passes(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 20);
  for (int i = 0; i < 3; i++)
    tt_span_end(tt_span_start(NULL, "scheduled", NULL));
  assert_int_equal(wait_count(m, 3), 3);
  test_finish(m);
}

static void batch_should_export_a_full_batch_without_waiting_for_the_schedule(void **state) {
  (void)state;
  /* A one-minute delay: only the full-batch wake-up can export these in time. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 64, 8, 60000);
  for (int i = 0; i < 8; i++)
    tt_span_end(tt_span_start(NULL, "full", NULL));
  assert_int_equal(wait_count(m, 8), 8);
  test_finish(m);
}

static void shutdown_should_export_queued_spans_and_shut_the_exporter_down(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  for (int i = 0; i < 5; i++)
    tt_span_end(tt_span_start(NULL, "queued", NULL));
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 5);
  assert_int_equal(tt_memory_exporter_shutdown_calls(m), 1);
  assert_int_equal(tt_shutdown(test_deadline_ms(100)), 0); /* twice is fine */
  tt_memory_exporter_free(m);
}

static void full_queue_should_drop_new_spans_and_count_them(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 8, 8, 60000);
  tt_stats_t a, b;
  stats(&a);
  /* Park the exporter thread inside a slow export so nothing drains the queue. */
  tt_memory_exporter_set_delay(m, 2000000000ull);
  tt_span_end(tt_span_start(NULL, "first", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(100)), TT_ETIMEDOUT);
  for (int i = 0; i < 20; i++)
    tt_span_end(tt_span_start(NULL, "burst", NULL));
  stats(&b);
  uint64_t dropped = b.dropped_queue_full - a.dropped_queue_full;
  assert_true(dropped >= 12);
  tt_memory_exporter_set_delay(m, 0);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  stats(&b);
  assert_int_equal(b.spans_ended - a.spans_ended, 21);
  assert_int_equal(tt_memory_exporter_count(m) + dropped, 21);
  test_finish(m);
}

static void flush_should_time_out_while_the_exporter_is_slow(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_memory_exporter_set_delay(m, 1000000000ull);
  tt_span_end(tt_span_start(NULL, "slow", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(50)), TT_ETIMEDOUT);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 1);
  tt_memory_exporter_set_delay(m, 0);
  test_finish(m);
}

/* Polls until a new provider can start (the old exporter thread has left), for at most 30 s. */
static int wait_init_none(void) {
  tt_options_t o = {.size = sizeof o};
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  int rc = TT_EBUSY;
  for (int i = 0; i < 3000 && rc == TT_EBUSY; i++) {
    rc = tt_init(&o);
    if (rc == TT_EBUSY)
      sleep_ms(10);
  }
  unsetenv("OTEL_TRACES_EXPORTER");
  return rc;
}

/* The exporter "hangs" for a minute; shutdown's 100 ms deadline passes mid-export and the
 * exporter's cancel hook ends that export, so the thread finishes long before the minute. The
 * ctest timeout (180 s) bounds the test only if cancel really works: without it the last wait
 * would still end, so the counters carry the proof. */
static void shutdown_should_cancel_an_export_in_flight_at_its_deadline(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_stats_t a, b;
  stats(&a);
  tt_memory_exporter_set_delay(m, 60000000000ull);
  tt_span_end(tt_span_start(NULL, "stuck", NULL));
  tt_flush(test_deadline_ms(0)); /* wakes the exporter thread into the slow export */
  for (int i = 0; i < 1000 && tt_memory_exporter_export_calls(m) == 0; i++)
    sleep_ms(10);
  assert_int_equal(tt_memory_exporter_export_calls(m), 1);
  assert_int_equal(tt_shutdown(test_deadline_ms(100)), TT_ETIMEDOUT);
  assert_null(tt_span_start(NULL, "after", NULL)); /* tracing is off at once */
  assert_int_equal(tt_memory_exporter_cancel_calls(m), 1);
  for (int i = 0; i < 3000 && tt_memory_exporter_shutdown_calls(m) == 0; i++)
    sleep_ms(10);
  assert_int_equal(tt_memory_exporter_shutdown_calls(m), 1);
  assert_int_equal(tt_memory_exporter_count(m), 0);
  assert_int_equal(tt_memory_exporter_export_calls(m), 1);
  stats(&b);
  assert_int_equal(b.dropped_export_failed - a.dropped_export_failed, 1);
  assert_int_equal(b.spans_exported - a.spans_exported, 0);
  assert_int_equal(wait_init_none(), 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_memory_exporter_free(m);
}

/* An exporter built against the first tt_exporter_t (no cancel field). What follows it in the
 * caller's memory must never be taken for a cancel callback. */
typedef struct {
  size_t size;
  void *state;
  tt_export_result_t (*export_spans)(void *state, const tt_span_data_t *const *spans, size_t count,
                                     uint64_t deadline_ns, uint64_t *retry_after_ns);
  int (*force_flush)(void *state, uint64_t deadline_ns);
  void (*shutdown)(void *state, uint64_t deadline_ns);
} v1_exporter_t;

static pthread_mutex_t g_v1_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_v1_cv = PTHREAD_COND_INITIALIZER;
static int g_v1_release, g_v1_exports, g_v1_shutdowns, g_v1_poisoned;

static tt_export_result_t v1_export(void *st, const tt_span_data_t *const *spans, size_t n,
                                    uint64_t deadline, uint64_t *retry) {
  (void)st, (void)spans, (void)n, (void)deadline, (void)retry;
  pthread_mutex_lock(&g_v1_mu);
  g_v1_exports++;
  while (!g_v1_release)
    pthread_cond_wait(&g_v1_cv, &g_v1_mu);
  pthread_mutex_unlock(&g_v1_mu);
  return TT_EXPORT_SUCCESS;
}

static void v1_shutdown(void *st, uint64_t deadline) {
  (void)st, (void)deadline;
  pthread_mutex_lock(&g_v1_mu);
  g_v1_shutdowns++;
  pthread_mutex_unlock(&g_v1_mu);
}

static void v1_poison(void *st) {
  (void)st;
  pthread_mutex_lock(&g_v1_mu);
  g_v1_poisoned++;
  pthread_mutex_unlock(&g_v1_mu);
}

static int v1_get(int *v) {
  pthread_mutex_lock(&g_v1_mu);
  int r = *v;
  pthread_mutex_unlock(&g_v1_mu);
  return r;
}

static void exporter_without_cancel_should_still_work_and_time_out(void **state) {
  (void)state;
  struct {
    v1_exporter_t e;
    void (*after)(void *);
  } mem = {{sizeof(v1_exporter_t), NULL, v1_export, NULL, v1_shutdown}, v1_poison};
  assert_int_equal(sizeof(v1_exporter_t), TT_EXPORTER_SIZE_V1);
  tt_options_t o = {.size = sizeof o,
                    .sampler = TT_SAMPLER_ALWAYS_ON,
                    .exporter = (const tt_exporter_t *)&mem.e,
                    .schedule_delay_ms = 60000};
  assert_int_equal(tt_init(&o), 0);
  tt_span_end(tt_span_start(NULL, "v1", NULL));
  tt_flush(test_deadline_ms(0));
  for (int i = 0; i < 1000 && v1_get(&g_v1_exports) == 0; i++)
    sleep_ms(10);
  assert_int_equal(v1_get(&g_v1_exports), 1);
  assert_int_equal(tt_shutdown(test_deadline_ms(100)), TT_ETIMEDOUT);
  /* Nothing could interrupt that export: the old thread still owns the queues. */
  tt_options_t o2 = {.size = sizeof o2};
  assert_int_equal(tt_init(&o2), TT_EBUSY);
  pthread_mutex_lock(&g_v1_mu);
  g_v1_release = 1;
  pthread_cond_broadcast(&g_v1_cv);
  pthread_mutex_unlock(&g_v1_mu);
  for (int i = 0; i < 3000 && v1_get(&g_v1_shutdowns) == 0; i++)
    sleep_ms(10);
  assert_int_equal(v1_get(&g_v1_shutdowns), 1);
  assert_int_equal(v1_get(&g_v1_poisoned), 0);
  assert_int_equal(wait_init_none(), 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
}

static void retryable_failure_should_be_retried_until_success(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_memory_exporter_fail_next(m, 2, TT_EXPORT_RETRYABLE);
  tt_span_end(tt_span_start(NULL, "retried", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 1);
  assert_int_equal(tt_memory_exporter_export_calls(m), 3);
  test_finish(m);
}

static void permanent_failure_should_drop_the_batch_and_count_it(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_stats_t a, b;
  stats(&a);
  tt_memory_exporter_fail_next(m, 1, TT_EXPORT_FAILURE);
  tt_span_end(tt_span_start(NULL, "lost", NULL));
  tt_span_end(tt_span_start(NULL, "lost", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  stats(&b);
  assert_int_equal(b.dropped_export_failed - a.dropped_export_failed, 2);
  assert_int_equal(tt_memory_exporter_count(m), 0);
  assert_int_equal(tt_memory_exporter_export_calls(m), 1);
  test_finish(m);
}

static _Atomic int g_fail_lines, g_other_lines;

static void count_lines(tt_log_level_t level, const char *line, void *arg) {
  (void)arg;
  if (level == TT_LOG_WARN && strstr(line, "export failed") != NULL)
    atomic_fetch_add(&g_fail_lines, 1);
  else
    atomic_fetch_add(&g_other_lines, 1);
}

/* Warnings are on by default, so a backend that fails every batch must not print a line per
 * batch: the first failure is reported, the next ones within 10 s only once they are summed. */
static void repeated_export_failures_should_be_reported_once_not_per_batch(void **state) {
  (void)state;
  tt_set_log_handler(count_lines, NULL, TT_LOG_WARN);
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_memory_exporter_fail_next(m, 5, TT_EXPORT_FAILURE);
  for (int i = 0; i < 5; i++) {
    tt_span_end(tt_span_start(NULL, "lost", NULL));
    assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  }
  assert_int_equal(tt_memory_exporter_export_calls(m), 5);
  assert_int_equal(atomic_load(&g_fail_lines), 1);
  test_finish(m);
  tt_set_log_handler(NULL, NULL, TT_LOG_WARN);
}

static void retries_should_stop_at_the_export_timeout(void **state) {
  (void)state;
  tt_memory_exporter_t *m = tt_memory_exporter_new(100);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {
      .size = sizeof o, .exporter = &e, .schedule_delay_ms = 60000, .export_timeout_ms = 50};
  assert_int_equal(tt_init(&o), 0);
  tt_stats_t a, b;
  stats(&a);
  tt_memory_exporter_fail_next(m, 1000000, TT_EXPORT_RETRYABLE); /* asks for 1 ms retries */
  tt_span_end(tt_span_start(NULL, "never", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  stats(&b);
  assert_int_equal(b.dropped_export_failed - a.dropped_export_failed, 1);
  assert_true(tt_memory_exporter_export_calls(m) > 1);
  assert_int_equal(tt_memory_exporter_count(m), 0);
  tt_memory_exporter_fail_next(m, 0, TT_EXPORT_SUCCESS);
  test_finish(m);
}

#define NTHREADS 8
#define PER_THREAD 3000

static void *producer(void *arg) {
  (void)arg;
  for (int i = 0; i < PER_THREAD; i++) {
    TT_SPAN(outer, "outer");
    tt_span_set_int(outer, "i", i);
    tt_span_t *inner = tt_span_start(NULL, "inner", NULL);
    tt_span_add_event(inner, "tick", NULL, 0);
    tt_span_end(inner);
  }
  return NULL;
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, 8);
}

static void many_threads_should_account_for_every_span(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 4096, 512, 10);
  tt_stats_t a, b;
  stats(&a);
  pthread_t th[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, producer, NULL), 0);
  for (int i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(tt_flush(test_deadline_ms(60000)), 0);
  stats(&b);
  uint64_t total = 2ull * NTHREADS * PER_THREAD;
  uint64_t started = b.spans_started - a.spans_started;
  uint64_t no_record = b.dropped_no_record - a.dropped_no_record;
  uint64_t full = b.dropped_queue_full - a.dropped_queue_full;
  uint64_t exported = b.spans_exported - a.spans_exported;
  assert_int_equal(started + no_record, total);
  assert_int_equal(exported + full, started);
  size_t n = tt_memory_exporter_count(m);
  assert_int_equal(n, exported);
  /* Every exported span id is distinct. */
  uint8_t(*ids)[8] = malloc(n * 8);
  for (size_t i = 0; i < n; i++)
    memcpy(ids[i], tt_memory_exporter_get(m, i)->span_id, 8);
  qsort(ids, n, 8, cmp_id);
  for (size_t i = 1; i < n; i++)
    assert_memory_not_equal(ids[i - 1], ids[i], 8);
  free(ids);
  test_finish(m);
}

static void *one_span(void *arg) {
  (void)arg;
  tt_span_end(tt_span_start(NULL, "churn", NULL));
  return NULL;
}

static void exited_threads_should_still_have_their_spans_exported(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  for (int i = 0; i < 50; i++) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, one_span, NULL), 0);
    pthread_join(t, NULL);
  }
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 50);
  test_finish(m);
}

/* A thread's exported records wait in its ring for it to reuse them (they stay in its cache);
 * once it goes idle the exporter takes all but TT__RET_MAX for the other threads, and all of them
 * once it has exited, so an idle or dead thread never holds more than that hostage. */
static pthread_mutex_t g_idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_idle_cv = PTHREAD_COND_INITIALIZER;
static tt__tstate_t *g_idle_state;
static int g_idle_may_exit;

static void *burst_then_idle(void *arg) {
  (void)arg;
  for (int i = 0; i < 1500; i++)
    tt_span_end(tt_span_start(NULL, "burst", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  pthread_mutex_lock(&g_idle_mu);
  g_idle_state = tt__tls;
  pthread_cond_broadcast(&g_idle_cv);
  while (!g_idle_may_exit)
    pthread_cond_wait(&g_idle_cv, &g_idle_mu);
  pthread_mutex_unlock(&g_idle_mu);
  return NULL;
}

static uint64_t given_back(const tt__tstate_t *t) {
  return atomic_load(&t->done) - atomic_load(&t->taken);
}

static void idle_and_exited_threads_should_hand_back_their_returned_records(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 2048, 512, 60000);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, burst_then_idle, NULL), 0);
  pthread_mutex_lock(&g_idle_mu);
  while (g_idle_state == NULL)
    pthread_cond_wait(&g_idle_cv, &g_idle_mu);
  pthread_mutex_unlock(&g_idle_mu);
  /* The thread is alive and ends nothing more: the next drain reclaims down to TT__RET_MAX. */
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_true(given_back(g_idle_state) <= TT__RET_MAX);
  pthread_mutex_lock(&g_idle_mu);
  g_idle_may_exit = 1;
  pthread_cond_broadcast(&g_idle_cv);
  pthread_mutex_unlock(&g_idle_mu);
  pthread_join(th, NULL);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(given_back(g_idle_state), 0);
  assert_int_equal(tt_memory_exporter_count(m), 1500);
  test_finish(m);
}

/* One drain takes records from several threads' rings into one batch, and a batch boundary cuts
 * a thread's run in two; some spans have extension records. Once exported, every record must be
 * given back to the thread that ended it: each ring's done position reaches its head, no
 * further (each thread here holds far fewer than TT__RET_MAX, so none goes to the pool). */
#define MIX_THREADS 3
#define MIX_SPANS 21
static pthread_mutex_t g_mix_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_mix_cv = PTHREAD_COND_INITIALIZER;
static int g_mix_done, g_mix_may_exit;

typedef struct mix_s {
  tt__tstate_t *t;
  uint64_t given_before;
} mix_t;

static void *mix_thread(void *arg) {
  mix_t *x = arg;
  static char big[3000];
  memset(big, 'v', sizeof big - 1);
  (void)tt_current_span();
  x->t = tt__tls;
  x->given_before = given_back(x->t);
  tt_span_t *s[MIX_SPANS];
  for (int i = 0; i < MIX_SPANS; i++) {
    s[i] = tt_span_start(NULL, "mix", NULL);
    assert_non_null(s[i]);
    if (i % 3 == 0) { /* two 3000-byte values do not fit one record */
      tt_span_set_str(s[i], "a", big);
      tt_span_set_str(s[i], "b", big);
      assert_true(s[i]->n_ext > 0);
    }
  }
  for (int i = 0; i < MIX_SPANS; i++)
    tt_span_end(s[i]);
  pthread_mutex_lock(&g_mix_mu);
  g_mix_done++;
  pthread_cond_broadcast(&g_mix_cv);
  while (!g_mix_may_exit) /* alive and idle: keeps what it is given back */
    pthread_cond_wait(&g_mix_cv, &g_mix_mu);
  pthread_mutex_unlock(&g_mix_mu);
  return NULL;
}

static void records_should_go_back_to_the_thread_that_ended_them_from_mixed_batches(void **state) {
  (void)state;
  /* Batch 50: no thread queues a full batch (no wake-up before the flush), and the flush's drain
   * takes 21 + 21 + 8 records into the first batch and the last 13 into a second one. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 64, 50, 60000);
  mix_t x[MIX_THREADS] = {{0}};
  pthread_t th[MIX_THREADS];
  for (int k = 0; k < MIX_THREADS; k++)
    assert_int_equal(pthread_create(&th[k], NULL, mix_thread, &x[k]), 0);
  pthread_mutex_lock(&g_mix_mu);
  while (g_mix_done < MIX_THREADS)
    pthread_cond_wait(&g_mix_cv, &g_mix_mu);
  pthread_mutex_unlock(&g_mix_mu);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), MIX_THREADS * MIX_SPANS);
  for (int k = 0; k < MIX_THREADS; k++) {
    assert_int_equal(atomic_load(&x[k].t->done), atomic_load(&x[k].t->head));
    assert_int_equal(given_back(x[k].t) - x[k].given_before, MIX_SPANS);
  }
  pthread_mutex_lock(&g_mix_mu);
  g_mix_may_exit = 1;
  pthread_cond_broadcast(&g_mix_cv);
  pthread_mutex_unlock(&g_mix_mu);
  for (int k = 0; k < MIX_THREADS; k++)
    pthread_join(th[k], NULL);
  test_finish(m);
}

/* A thread that ends more spans than it starts (spans handed over by another thread, plus some of
 * its own) and keeps taking records back is not idle to the exporter, so exported records pile
 * up in its ring; before a push would overwrite one it must take some back. Otherwise a slot would
 * be reused while its record is still exported-and-not-taken, and a later take would hand out a
 * record that is still queued, to be overwritten before its export. The two threads run flat out
 * into an exporter that only marks each span's sequence number (the in-memory one is slower
 * than the threads, and a full queue would hide the case); each accepted span must be exported
 * exactly once. */
#define WRAP_ITERS 2000
#define WRAP_HANDED 64
#define WRAP_OWN 32
#define WRAP_TOTAL (WRAP_ITERS * (WRAP_HANDED + WRAP_OWN))
static pthread_mutex_t g_wrap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_wrap_cv = PTHREAD_COND_INITIALIZER;
static tt_span_t *g_wrap_spans[WRAP_HANDED];
static int g_wrap_full; /* g_wrap_spans holds a batch for the ender */
static _Atomic int64_t g_wrap_seq;
/* Exporter thread only, read after the flush. */
static unsigned char g_wrap_seen[WRAP_TOTAL];
static uint64_t g_wrap_exported, g_wrap_twice, g_wrap_bad;

static tt_export_result_t wrap_export(void *st, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry_after) {
  (void)st;
  (void)deadline;
  (void)retry_after;
  for (size_t i = 0; i < n; i++) {
    int64_t seq = spans[i]->attribute_count == 1 ? spans[i]->attributes[0].value.i : -1;
    if (seq < 0 || seq >= WRAP_TOTAL)
      g_wrap_bad++;
    else if (g_wrap_seen[seq]++ != 0)
      g_wrap_twice++;
    g_wrap_exported++;
  }
  return TT_EXPORT_SUCCESS;
}

static void *wrap_ender(void *arg) {
  (void)arg;
  for (int it = 0; it < WRAP_ITERS; it++) {
    tt_span_t *mine[WRAP_HANDED];
    pthread_mutex_lock(&g_wrap_mu);
    while (!g_wrap_full)
      pthread_cond_wait(&g_wrap_cv, &g_wrap_mu);
    memcpy(mine, g_wrap_spans, sizeof mine);
    g_wrap_full = 0;
    pthread_cond_broadcast(&g_wrap_cv);
    pthread_mutex_unlock(&g_wrap_mu);
    for (int i = 0; i < WRAP_HANDED; i++)
      tt_span_end(mine[i]);
    /* Its free list is empty here each round: it takes records back once a round, so the
     * exporter never finds it idle, while three times as many come back to it. */
    for (int i = 0; i < WRAP_OWN; i++) {
      tt_span_t *own = tt_span_start(NULL, "own", NULL);
      tt_span_set_int(own, "seq", atomic_fetch_add(&g_wrap_seq, 1));
      tt_span_end(own);
    }
  }
  return NULL;
}

static void
a_thread_ending_more_than_it_starts_should_take_records_back_before_its_ring_wraps(void **state) {
  (void)state;
  tt_exporter_t e = {.size = sizeof e, .export_spans = wrap_export};
  tt_options_t o = {.size = sizeof o,
                    .service_name = "test-svc",
                    .sampler = TT_SAMPLER_ALWAYS_ON,
                    .exporter = &e,
                    .max_queue_size = 1024, /* a ring of 2048 slots */
                    .max_export_batch_size = 256,
                    .schedule_delay_ms = 60000};
  assert_int_equal(tt_init(&o), 0);
  tt_stats_t before = {.size = sizeof before}, after = {.size = sizeof after};
  tt_stats_get(&before);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wrap_ender, NULL), 0);
  for (int it = 0; it < WRAP_ITERS; it++) {
    tt_span_t *batch[WRAP_HANDED];
    for (int i = 0; i < WRAP_HANDED; i++) {
      batch[i] = tt_span_start(NULL, "handed", NULL);
      tt_span_set_int(batch[i], "seq", atomic_fetch_add(&g_wrap_seq, 1));
    }
    pthread_mutex_lock(&g_wrap_mu);
    while (g_wrap_full)
      pthread_cond_wait(&g_wrap_cv, &g_wrap_mu);
    memcpy(g_wrap_spans, batch, sizeof batch);
    g_wrap_full = 1;
    pthread_cond_broadcast(&g_wrap_cv);
    pthread_mutex_unlock(&g_wrap_mu);
  }
  pthread_join(th, NULL);
  assert_int_equal(tt_shutdown(test_deadline_ms(20000)), 0); /* joins the exporter thread */
  tt_stats_get(&after);
  assert_int_equal(atomic_load(&g_wrap_seq), WRAP_TOTAL);
  /* Dropped spans (full queue, no record) are never exported. */
  uint64_t dropped = (after.dropped_queue_full - before.dropped_queue_full) +
                     (after.dropped_no_record - before.dropped_no_record);
  print_message("exported %llu, dropped %llu\n", (unsigned long long)g_wrap_exported,
                (unsigned long long)dropped);
  assert_int_equal(g_wrap_bad, 0);
  assert_int_equal(g_wrap_twice, 0);
  assert_int_equal(g_wrap_exported + dropped, WRAP_TOTAL);
}

int main(void) {
  /* These tests are about batching, and start providers of many queue sizes in one process: the
   * rings of earlier tests' threads (kept for the life of the process) would otherwise count
   * against each later provider's smaller budget, and a new thread would get the smallest ring.
   * test_memory_budget.c is where the budget binds. */
  setenv("TT_SPAN_MEMORY_MB", "4096", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_should_export_when_the_schedule_delay_passes),
      cmocka_unit_test(batch_should_export_a_full_batch_without_waiting_for_the_schedule),
      cmocka_unit_test(shutdown_should_export_queued_spans_and_shut_the_exporter_down),
      cmocka_unit_test(full_queue_should_drop_new_spans_and_count_them),
      cmocka_unit_test(flush_should_time_out_while_the_exporter_is_slow),
      cmocka_unit_test(shutdown_should_cancel_an_export_in_flight_at_its_deadline),
      cmocka_unit_test(exporter_without_cancel_should_still_work_and_time_out),
      cmocka_unit_test(retryable_failure_should_be_retried_until_success),
      cmocka_unit_test(permanent_failure_should_drop_the_batch_and_count_it),
      cmocka_unit_test(repeated_export_failures_should_be_reported_once_not_per_batch),
      cmocka_unit_test(retries_should_stop_at_the_export_timeout),
      cmocka_unit_test(many_threads_should_account_for_every_span),
      cmocka_unit_test(exited_threads_should_still_have_their_spans_exported),
      cmocka_unit_test(idle_and_exited_threads_should_hand_back_their_returned_records),
      cmocka_unit_test(records_should_go_back_to_the_thread_that_ended_them_from_mixed_batches),
      cmocka_unit_test(
          a_thread_ending_more_than_it_starts_should_take_records_back_before_its_ring_wraps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
