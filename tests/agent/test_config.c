/* Set-up from the environment alone: OTEL_TRACES_EXPORTER, OTEL_SDK_DISABLED, OTEL_BSP_*. */
#include "tt_test_util.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_pipe_fd = -1;

/* An exporter that reports how many spans it got through a pipe, so the parent can see what a
 * child exported while it was exiting. */
static tt_export_result_t pipe_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)spans;
  (void)deadline;
  (void)retry;
  uint32_t v = (uint32_t)n;
  if (write(g_pipe_fd, &v, sizeof v) != (ssize_t)sizeof v)
    return TT_EXPORT_FAILURE;
  return TT_EXPORT_SUCCESS;
}

static void shutdown_from_atexit_should_export_queued_spans(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    g_pipe_fd = fds[1];
    tt_exporter_t e = {.size = sizeof e, .export_spans = pipe_export};
    tt_options_t o = {.size = sizeof o, .exporter = &e, .schedule_delay_ms = 60000};
    if (tt_init(&o) != 0)
      _exit(2);
    atexit(tt_shutdown_atexit);
    for (int i = 0; i < 3; i++)
      tt_span_end(tt_span_start(NULL, "at-exit", NULL));
    exit(0); /* runs atexit handlers: the queued spans must leave now */
  }
  close(fds[1]);
  uint32_t total = 0, v;
  while (read(fds[0], &v, sizeof v) == (ssize_t)sizeof v)
    total += v;
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(total, 3);
}

static void init_from_environment_alone_should_trace(void **state) {
  (void)state;
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  assert_int_equal(tt_init(NULL), 0);
  tt_span_t *s = tt_span_start(NULL, "env-only", NULL);
  assert_true(tt_span_is_recording(s));
  tt_span_end(s);
  assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  unsetenv("OTEL_TRACES_EXPORTER");
}

static void sdk_disabled_should_leave_tracing_off(void **state) {
  (void)state;
  setenv("OTEL_SDK_DISABLED", "true", 1);
  assert_int_equal(tt_init(NULL), 0);
  assert_null(tt_span_start(NULL, "nothing", NULL));
  unsetenv("OTEL_SDK_DISABLED");
  assert_int_equal(tt_shutdown(test_deadline_ms(100)), 0);
}

static void bsp_queue_size_should_come_from_the_environment(void **state) {
  (void)state;
  setenv("OTEL_BSP_MAX_QUEUE_SIZE", " 4 ", 1); /* spaces either side are allowed */
  setenv("OTEL_BSP_SCHEDULE_DELAY", "60000", 1);
  setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "bogus", 1); /* warned, default 512, clamped to 4 */
  tt_memory_exporter_t *m = tt_memory_exporter_new(100);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {.size = sizeof o, .exporter = &e};
  assert_int_equal(tt_init(&o), 0);
  unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
  unsetenv("OTEL_BSP_SCHEDULE_DELAY");
  unsetenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
  tt_memory_exporter_set_delay(m, 2000000000ull);
  tt_span_end(tt_span_start(NULL, "park", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(100)), TT_ETIMEDOUT);
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  for (int i = 0; i < 10; i++)
    tt_span_end(tt_span_start(NULL, "x", NULL));
  tt_stats_get(&b);
  assert_true(b.dropped_queue_full - a.dropped_queue_full >= 6);
  tt_memory_exporter_set_delay(m, 0);
  assert_int_equal(tt_shutdown(test_deadline_ms(20000)), 0);
  tt_memory_exporter_free(m);
}

static void *one_span(void *arg) {
  (void)arg;
  tt_span_end(tt_span_start(NULL, "fresh-thread", NULL));
  return NULL;
}

/* Each thread's ring is allocated whole at its first span end: an unbounded queue size made that
 * allocation fail (every span dropped), and an unbounded batch size failed tt_init itself. */
static void oversized_bsp_sizes_should_be_capped_not_break_tracing(void **state) {
  (void)state;
  setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4294967295", 1);
  setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4000000000", 1);
  tt_memory_exporter_t *m = tt_memory_exporter_new(100);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {.size = sizeof o, .exporter = &e};
  int rc = tt_init(&o);
  unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
  unsetenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
  assert_int_equal(rc, 0);
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  pthread_t th; /* a new thread: its ring is sized by this provider's queue */
  assert_int_equal(pthread_create(&th, NULL, one_span, NULL), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(tt_flush(test_deadline_ms(10000)), 0);
  tt_stats_get(&b);
  assert_int_equal(b.dropped_queue_full, a.dropped_queue_full);
  assert_non_null(tt_memory_exporter_find(m, "fresh-thread"));
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_memory_exporter_free(m);
}

/* A program built against an older header passes a smaller struct: what lies past its size is
 * not the caller's (here 0xff bytes) and must read as zero, i.e. as the defaults. */
static void an_older_smaller_options_struct_should_read_only_its_own_fields(void **state) {
  (void)state;
  union {
    tt_options_t o;
    unsigned char bytes[sizeof(tt_options_t)];
  } u;
  memset(u.bytes, 0xff, sizeof u.bytes);
  memset(&u.o, 0, offsetof(tt_options_t, exporter));
  u.o.size = offsetof(tt_options_t, exporter); /* no exporter, queue, batch... fields */
  setenv("OTEL_TRACES_EXPORTER", "none", 1);
  int rc = tt_init(&u.o);
  unsetenv("OTEL_TRACES_EXPORTER");
  assert_int_equal(rc, 0); /* read as-is, 0xff..ff would be an exporter pointer: a crash */
  tt_span_t *s = tt_span_start(NULL, "old-caller", NULL);
  assert_true(tt_span_is_recording(s));
  tt_span_end(s);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
}

static void bad_options_should_be_rejected(void **state) {
  (void)state;
  tt_options_t o = {.size = 0};
  assert_int_equal(tt_init(&o), TT_EINVAL);
  tt_exporter_t e = {.size = sizeof e}; /* no export callback */
  tt_options_t o2 = {.size = sizeof o2, .exporter = &e};
  assert_int_equal(tt_init(&o2), TT_EINVAL);
  tt_options_t o3 = {.size = sizeof o3, .sampler = TT_SAMPLER_TRACEIDRATIO, .sampler_ratio = NAN};
  assert_int_equal(tt_init(&o3), TT_EINVAL);
  o3.sampler = TT_SAMPLER_PARENTBASED_TRACEIDRATIO;
  o3.sampler_ratio = 1.5;
  assert_int_equal(tt_init(&o3), TT_EINVAL);
  assert_null(tt_span_start(NULL, "none", NULL));
}

static void allocator_cannot_change_after_init(void **state) {
  (void)state;
  setenv("OTEL_TRACES_EXPORTER", "console", 1);
  assert_int_equal(tt_init(NULL), 0);
  unsetenv("OTEL_TRACES_EXPORTER");
  assert_int_equal(tt_set_allocator(malloc, realloc, calloc, free), TT_EBUSY);
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      /* First: it forks, and must do so before any test has started a thread. */
      cmocka_unit_test(shutdown_from_atexit_should_export_queued_spans),
      cmocka_unit_test(init_from_environment_alone_should_trace),
      cmocka_unit_test(sdk_disabled_should_leave_tracing_off),
      cmocka_unit_test(bsp_queue_size_should_come_from_the_environment),
      cmocka_unit_test(oversized_bsp_sizes_should_be_capped_not_break_tracing),
      cmocka_unit_test(an_older_smaller_options_struct_should_read_only_its_own_fields),
      cmocka_unit_test(bad_options_should_be_rejected),
      cmocka_unit_test(allocator_cannot_change_after_init),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
