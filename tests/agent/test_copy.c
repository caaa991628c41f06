/* Plain spans leave through their thread's copy slots, not as their records (internal.h,
 * tt__cslot). Its own executable: the first test needs a thread whose ring starts at position 0,
 * and every allocation is poisoned (the allocator hook is set before the first tt_init), so a copy
 * slot line that was never given the defaults reads as garbage, not as lucky zeros. */
#include "tt_test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

/* Refuse the copy array of a 512-slot ring (256 slots of TT__COPY_SIZE, 128 bytes for alignment).
 */
static _Atomic int g_fail_copies;

static void *poison_malloc(size_t n) {
  if (n == 256 * TT__COPY_SIZE + 128 && atomic_load(&g_fail_copies))
    return NULL;
  void *p = malloc(n);
  if (p != NULL)
    memset(p, 0x5a, n);
  return p;
}

static void *poison_realloc(void *p, size_t n) {
  return realloc(p, n);
}

/* A span with an attribute is queued as its record, so its ring position's copy slot is skipped
 * on the thread's first lap. The plain span that reaches that slot a lap later writes only the
 * slot's first two lines: the rest must already hold the defaults. */
static void plain_spans_should_carry_defaults_in_copy_slots_skipped_on_the_first_lap(void **state) {
  (void)state;
  assert_null(tt__tls); /* this thread has ended no span yet: its ring starts at position 0 */
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 256, 256, 60000);
  enum { LAP = 256, SPANS = 3 * LAP };
  int rich = 0;
  for (int i = 0; i < SPANS; i++) {
    int is_rich = i < LAP && i % 3 == 0;
    tt_span_t *s = tt_span_start(NULL, is_rich ? "rich" : "p", NULL);
    if (is_rich) {
      tt_span_set_int(s, "k", i);
      rich++;
    }
    tt_span_end(s);
    if (i == 0)
      assert_int_equal(TT__COPIES(tt__tls), LAP); /* the lap length this test assumes */
    if (i % 128 == 127)
      assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  }
  /* The last two laps were plain spans only, and flushes kept their slots free: all copied. */
  for (uint64_t pos = LAP; pos < SPANS; pos++)
    assert_true(tt__ring_is_copy(atomic_load(&tt__tls->ring[pos & tt__tls->ring_mask])));
  assert_int_equal(tt_memory_exporter_count(m), SPANS);
  int plain = 0;
  for (size_t i = 0; i < tt_memory_exporter_count(m); i++) {
    const tt_span_data_t *d = tt_memory_exporter_get(m, i);
    if (strcmp(d->name, "rich") == 0) {
      assert_int_equal(d->attribute_count, 1);
      continue;
    }
    assert_string_equal(d->name, "p");
    test_assert_plain_span(d);
    plain++;
  }
  assert_int_equal(plain, SPANS - rich);
  test_finish(m);
}

static uint64_t tail_of(const tt__tstate_t *t) {
  return atomic_load_explicit(&t->tail, memory_order_acquire);
}

/* While the exporter thread exports a batch, the copy slots of that batch's spans are still
 * being read. A plain span whose ring position maps to one of them goes as its record instead:
 * it is neither written over a span in flight nor dropped. */
static void plain_span_should_go_as_its_record_while_an_export_holds_its_copy_slot(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 256, 256, 60000);
  tt_memory_exporter_set_delay(m, 300000000ull); /* each export sleeps 300 ms before copying */
  tt_span_end(tt_span_start(NULL, "first", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  tt_memory_exporter_reset(m);
  tt__tstate_t *t = tt__tls;
  assert_int_equal(TT__COPIES(t), 256);
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  uint64_t h0 = atomic_load(&t->head);
  /* "first" counted towards this thread's next wake-up: start the count again (only this thread
   * writes it), so the wake-up comes with the 256th span below and the exporter drains all 256 as
   * one full batch, rather than 255 that it would leave for the 60 s schedule. */
  t->since_wake = 0;
  char name[16];
  /* A full batch: the exporter thread is woken, drains all 256 and sleeps in the export. */
  for (int i = 0; i < 256; i++) {
    snprintf(name, sizeof name, "a%d", i);
    tt_span_end(tt_span_start(NULL, name, NULL));
  }
  for (uint64_t pos = h0; pos < h0 + 256; pos++) /* their slots were free: all copied */
    assert_true(tt__ring_is_copy(atomic_load(&t->ring[pos & t->ring_mask])));
  for (uint64_t until = tt_monotonic_ns() + 20000000000ull; tail_of(t) != h0 + 256;) {
    assert_true(tt_monotonic_ns() < until);
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  assert_true(atomic_load(&t->done) <= h0); /* the export is still in flight */
  for (int i = 0; i < 100; i++) {
    snprintf(name, sizeof name, "b%d", i);
    tt_span_end(tt_span_start(NULL, name, NULL));
  }
  /* Still in flight (100 span ends take far less than the export's 300 ms), so the ring slots
   * below are about held copy slots. */
  assert_true(atomic_load(&t->done) <= h0);
  for (uint64_t pos = h0 + 256; pos < h0 + 356; pos++)
    assert_false(tt__ring_is_copy(atomic_load(&t->ring[pos & t->ring_mask])));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  tt_stats_get(&b);
  assert_int_equal(b.dropped_queue_full - a.dropped_queue_full, 0);
  assert_int_equal(tt_memory_exporter_count(m), 356);
  for (int i = 0; i < 356; i++) {
    snprintf(name, sizeof name, i < 256 ? "a%d" : "b%d", i < 256 ? i : i - 256);
    const tt_span_data_t *d = tt_memory_exporter_find(m, name);
    assert_non_null(d);
    test_assert_plain_span(d);
  }
  tt_memory_exporter_set_delay(m, 0);
  test_finish(m);
}

static tt__tstate_t *g_thread_state;

static void *end_plain_spans(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) /* fewer than the queue holds: none dropped */
    tt_span_end(tt_span_start(NULL, "nocopy", NULL));
  g_thread_state = tt__tls;
  return NULL;
}

/* A thread whose copy array cannot be allocated still traces: its plain spans go as their
 * records. (A thread that never traced gets a new state, and with it a new ring and copy array,
 * as this test's main thread is still alive.) */
static void thread_without_copy_slots_should_queue_its_spans_as_records(void **state) {
  (void)state;
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 256, 256, 60000);
  atomic_store(&g_fail_copies, 1);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, end_plain_spans, NULL), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  atomic_store(&g_fail_copies, 0);
  assert_non_null(g_thread_state);
  assert_int_equal(TT__COPIES(g_thread_state), 0);
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  size_t n = 0;
  for (size_t i = 0; i < tt_memory_exporter_count(m); i++) {
    const tt_span_data_t *d = tt_memory_exporter_get(m, i);
    if (strcmp(d->name, "nocopy") == 0) {
      test_assert_plain_span(d);
      n++;
    }
  }
  assert_int_equal(n, 200);
  test_finish(m);
}

int main(void) {
  if (tt_set_allocator(poison_malloc, poison_realloc, calloc, free) != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      /* First: it needs this thread's ring to start at position 0. */
      cmocka_unit_test(plain_spans_should_carry_defaults_in_copy_slots_skipped_on_the_first_lap),
      cmocka_unit_test(plain_span_should_go_as_its_record_while_an_export_holds_its_copy_slot),
      cmocka_unit_test(thread_without_copy_slots_should_queue_its_spans_as_records),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
