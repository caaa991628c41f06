/* fork() in a multi-threaded traced program: the child starts with an empty queue, restarts its
 * exporter thread on demand, draws ids different from the parent's, and does not deadlock even
 * when the fork lands in the middle of an export. */
#include "tt_test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int g_stop, g_started;

static void *busy(void *arg) {
  (void)arg;
  int first = 1;
  while (!atomic_load(&g_stop)) {
    TT_SPAN(s, "worker");
    tt_span_set_int(s, "k", 1);
    if (first) {
      first = 0;
      atomic_fetch_add(&g_started, 1);
    }
  }
  return NULL;
}

/* ASan's allocator and thread registry are not safe across fork (glibc's malloc is): a thread
 * still starting up when another forks can leave one of their locks held in the child, which then
 * hangs in its next malloc or pthread_create. That is the sanitizer's limit, not the library's,
 * so the tests fork only once every thread they started is past its start-up: the exporter thread
 * has answered a flush, and each busy thread has finished a span. */
static void wait_for_busy_threads(int n) {
  struct timespec ms = {0, 1000000};
  while (atomic_load(&g_started) < n)
    nanosleep(&ms, NULL);
}

/* Child side: returns an exit status (0 = every check passed). */
static int child_checks(tt_memory_exporter_t *m, int fd) {
  alarm(30); /* a deadlock becomes a failed test, not a hung one */
  size_t inherited = tt_memory_exporter_count(m);
  tt_stats_t a = {.size = sizeof a};
  tt_stats_get(&a);
  tt_span_t *s = tt_span_start(
      NULL, "in-child",
      &(tt_span_options_t){.size = sizeof(tt_span_options_t), .parent_mode = TT_PARENT_NONE});
  tt_span_context_t c;
  tt_span_get_context(s, &c);
  if (write(fd, c.trace_id, 16) != 16)
    return 10;
  tt_span_end(s);
  int rc = tt_flush(tt_monotonic_ns() + 20000000000ull);
  if (rc != 0)
    return rc == TT_ETIMEDOUT ? 11 : 15;
  if (tt_memory_exporter_find(m, "in-child") == NULL)
    return 12;
  /* Only the child's own span was exported after the fork: the queue started empty. */
  if (tt_memory_exporter_count(m) != inherited + 1)
    return 13;
  if (tt_shutdown(tt_monotonic_ns() + 20000000000ull) != 0)
    return 14;
  return 0;
}

/* ThreadSanitizer refuses to start threads in the child of a multi-threaded fork, which is the
 * very thing under test; these tests run in the plain and ASan builds. */
#if defined(__SANITIZE_THREAD__)
#define SKIP_UNDER_TSAN() skip()
#else
#define SKIP_UNDER_TSAN() (void)0
#endif

static void fork_should_give_the_child_a_clean_working_tracer(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 5);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  atomic_store(&g_stop, 0);
  atomic_store(&g_started, 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, busy, NULL), 0);
  wait_for_busy_threads(3);
  struct timespec ts = {0, 20000000};
  for (int round = 0; round < 5; round++) {
    nanosleep(&ts, NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    tt_memory_exporter_reset(m); /* room for the child's span too: it inherits this exporter */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      _exit(child_checks(m, fds[1]));
    }
    close(fds[1]);
    /* The busy threads fill the memory exporter's 100,000 spans in well under a second on a fast
     * machine, after which it keeps nothing: make room, so that this round's span is among the
     * next two drains' (at most 3 x 2048 queued spans each) and is kept. */
    tt_memory_exporter_reset(m);
    /* The busy threads may hold every record the pool allows while the exporter catches up (a
     * start then returns NULL and counts dropped_no_record): wait for one, at most 10 s. */
    tt_span_t *s = NULL;
    for (int tries = 0; s == NULL && tries < 10000; tries++) {
      s = tt_span_start(
          NULL, "in-parent",
          &(tt_span_options_t){.size = sizeof(tt_span_options_t), .parent_mode = TT_PARENT_NONE});
      if (s == NULL) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
      }
    }
    assert_non_null(s);
    tt_span_context_t mine;
    tt_span_get_context(s, &mine);
    tt_span_end(s);
    uint8_t theirs[16];
    assert_int_equal(read(fds[0], theirs, 16), 16);
    close(fds[0]);
    assert_memory_not_equal(theirs, mine.trace_id, 16);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  atomic_store(&g_stop, 1);
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_non_null(tt_memory_exporter_find(m, "in-parent"));
  test_finish(m);
}

static void fork_during_a_slow_export_should_not_deadlock(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  tt_memory_exporter_set_delay(m, 500000000ull);
  tt_span_end(tt_span_start(NULL, "slow", NULL));
  /* The exporter thread is now inside the exporter, holding no library lock. */
  assert_int_equal(tt_flush(test_deadline_ms(50)), TT_ETIMEDOUT);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    _exit(child_checks(m, fds[1]));
  }
  close(fds[1]);
  uint8_t buf[16];
  assert_int_equal(read(fds[0], buf, 16), 16);
  close(fds[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  tt_memory_exporter_set_delay(m, 0);
  test_finish(m);
}

/* Spans queued at fork go back to the child's pool, their extension records too. Those were used
 * raw (their header bytes hold attribute data), so plain spans the child puts on them must still
 * carry only defaults. The child reports by exit status; addresses show the reuse took place. */
static int child_reuses_extension_records(tt_memory_exporter_t *m, void *const *exts, size_t n) {
  alarm(30);
  tt_memory_exporter_reset(m);
  int reused = 0;
  /* 100 open at once: an ended plain span's record is reused by the next start at once, so
   * only spans open together reach past the thread's free records to the exported ones. */
  for (int round = 0; round < 6; round++) {
    tt_span_t *open[100];
    for (int i = 0; i < 100; i++) {
      tt_span_t *s = open[i] = tt_span_start(NULL, "plain", NULL);
      for (size_t k = 0; k < n; k++)
        reused += (void *)s == exts[k];
    }
    for (int i = 0; i < 100; i++)
      tt_span_end(open[i]);
    if (tt_flush(tt_monotonic_ns() + 20000000000ull) != 0)
      return 20;
  }
  if (reused == 0)
    return 21;
  if (tt_memory_exporter_count(m) != 600)
    return 22;
  for (size_t i = 0; i < 600; i++) {
    const tt_span_data_t *d = tt_memory_exporter_get(m, i);
    if (strcmp(d->name, "plain") != 0 || d->attribute_count != 0 ||
        d->dropped_attributes_count != 0 || d->event_count != 0 || d->link_count != 0 ||
        d->status_code != TT_STATUS_UNSET || strcmp(d->tracestate, "") != 0)
      return 23;
  }
  return tt_shutdown(tt_monotonic_ns() + 20000000000ull) == 0 ? 0 : 24;
}

static void records_queued_at_fork_should_serve_the_child_as_clean_records(void **state) {
  (void)state;
  SKIP_UNDER_TSAN();
  /* The exporter sleeps for a minute and is woken only by a full batch: what ends stays queued. */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0); /* the exporter thread is up */
  static char big[1500];
  memset(big, 'q', sizeof big - 1);
  void *exts[20 * TT__MAX_EXT];
  size_t n = 0;
  for (int i = 0; i < 20; i++) {
    tt_span_t *s = tt_span_start(NULL, "rich", NULL);
    tt_span_set_str(s, "a", big);
    tt_span_set_str(s, "b", big);
    tt_span_set_str(s, "c", big);
    assert_true(s->n_ext > 0);
    for (uint32_t x = 0; x < s->n_ext; x++)
      exts[n++] = TT__EXTS(s)[x];
    tt_span_end(s);
  }
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child_reuses_extension_records(m, exts, n));
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  test_finish(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fork_should_give_the_child_a_clean_working_tracer),
      cmocka_unit_test(fork_during_a_slow_export_should_not_deadlock),
      cmocka_unit_test(records_queued_at_fork_should_serve_the_child_as_clean_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
