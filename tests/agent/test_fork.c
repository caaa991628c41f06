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

static _Atomic int g_stop;

static void *busy(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    TT_SPAN(s, "worker");
    tt_span_set_int(s, "k", 1);
  }
  return NULL;
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
  atomic_store(&g_stop, 0);
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    assert_int_equal(pthread_create(&th[i], NULL, busy, NULL), 0);
  struct timespec ts = {0, 20000000};
  for (int round = 0; round < 5; round++) {
    nanosleep(&ts, NULL);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      _exit(child_checks(m, fds[1]));
    }
    close(fds[1]);
    tt_span_t *s = tt_span_start(
        NULL, "in-parent",
        &(tt_span_options_t){.size = sizeof(tt_span_options_t), .parent_mode = TT_PARENT_NONE});
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fork_should_give_the_child_a_clean_working_tracer),
      cmocka_unit_test(fork_during_a_slow_export_should_not_deadlock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
