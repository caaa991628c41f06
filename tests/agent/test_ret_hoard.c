/* Exported records waiting in the rings of threads that end spans but never start any must not
 * starve the threads that start them. The pool cap grows by TT__LOCAL_MAX + TT__RET_MAX per
 * thread state, so a thread that holds more than that in its ring takes records from everyone
 * else. Its own
 * executable: the pool cap only ever grows within a process. */
#include "tt_test_util.h"

#include <pthread.h>

#include "internal.h"

#define ENDERS 3
#define ROUNDS 13
#define PER_ROUND 150 /* per ender: 3 x 150 < batch / 4, so no drain switches to polling */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static tt_span_t *g_spans[ENDERS * PER_ROUND];
static tt__tstate_t *g_state[ENDERS];
static int g_registered, g_round, g_ended, g_may_exit;

static void *ender(void *arg) {
  int k = (int)(intptr_t)arg;
  (void)tt_current_span(); /* creates this thread's state: the pool cap grows by its allowance */
  pthread_mutex_lock(&g_mu);
  g_state[k] = tt__tls;
  g_registered++;
  pthread_cond_broadcast(&g_cv);
  for (int r = 1; r <= ROUNDS; r++) {
    while (g_round < r)
      pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < PER_ROUND; i++)
      tt_span_end(g_spans[k * PER_ROUND + i]);
    pthread_mutex_lock(&g_mu);
    g_ended++;
    pthread_cond_broadcast(&g_cv);
  }
  while (!g_may_exit) /* stay alive: a live thread keeps what it was given back */
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

static uint64_t given_back(const tt__tstate_t *t) {
  return atomic_load(&t->done) - atomic_load(&t->taken);
}

static void end_only_threads_should_not_hold_more_than_their_allowance(void **state) {
  (void)state;
  /* Batch = queue and a one-minute delay: only tt_flush drains (no thread queues a full batch), so
   * the test is deterministic. Pool limit: 2 * 2048 + 512 + 4 * (96 + 256) = 6016 records. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 2048, 2048, 60000);
  (void)tt_current_span();
  pthread_t th[ENDERS];
  for (int k = 0; k < ENDERS; k++)
    assert_int_equal(pthread_create(&th[k], NULL, ender, (void *)(intptr_t)k), 0);
  pthread_mutex_lock(&g_mu);
  while (g_registered < ENDERS)
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);

  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  /* This thread starts, the others end (requests handed to a worker pool); the exporter drains
   * once per round, and every ender ended something since the last drain, so none is idle. */
  for (int r = 1; r <= ROUNDS; r++) {
    for (int i = 0; i < ENDERS * PER_ROUND; i++)
      assert_non_null(g_spans[i] = tt_span_start(NULL, "handed-over", NULL));
    pthread_mutex_lock(&g_mu);
    g_round = r;
    pthread_cond_broadcast(&g_cv);
    while (g_ended < r * ENDERS)
      pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  }
  assert_int_equal(tt_memory_exporter_count(m), ROUNDS * ENDERS * PER_ROUND);

  for (int k = 0; k < ENDERS; k++)
    print_message("ender %d holds %llu exported records in its ring (TT__RET_MAX %d)\n", k,
                  (unsigned long long)given_back(g_state[k]), TT__RET_MAX);

  /* The enders will never start a span, yet they hold the records: this thread should still get
   * as many as it had before. */
  static tt_span_t *more[1500];
  for (int i = 0; i < 1500; i++)
    more[i] = tt_span_start(NULL, "more", NULL);
  tt_stats_get(&b);
  print_message("dropped_no_record: %llu\n",
                (unsigned long long)(b.dropped_no_record - a.dropped_no_record));
  for (int k = 0; k < ENDERS; k++)
    assert_true(given_back(g_state[k]) <= TT__RET_MAX);
  assert_int_equal(b.dropped_no_record - a.dropped_no_record, 0);

  for (int i = 0; i < 1500; i++)
    tt_span_end(more[i]);
  pthread_mutex_lock(&g_mu);
  g_may_exit = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int k = 0; k < ENDERS; k++)
    pthread_join(th[k], NULL);
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(end_only_threads_should_not_hold_more_than_their_allowance),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
