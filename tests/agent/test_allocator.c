/* Allocator hook, and the zero-allocation promise: after warm-up, starting and ending spans with
 * attributes and events allocates nothing on the application thread. */
#include "tt_test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "internal.h"

static pthread_t g_main;
static _Atomic long g_main_allocs, g_any_allocs;

static void note(void) {
  atomic_fetch_add(&g_any_allocs, 1);
  if (pthread_equal(pthread_self(), g_main))
    atomic_fetch_add(&g_main_allocs, 1);
}
/* malloc promises nothing about the bytes it returns: these are not zero, so code that trusts
 * fresh memory to read as zero (or as a record's "clean" flag) is caught. */
static void *my_malloc(size_t n) {
  note();
  void *p = malloc(n);
  if (p != NULL)
    memset(p, 0x01, n);
  return p;
}
static void *my_realloc(void *p, size_t n) {
  note();
  return realloc(p, n);
}
static void *my_calloc(size_t n, size_t m) {
  note();
  return calloc(n, m);
}
static void my_free(void *p) {
  free(p);
}

static void work(int n) {
  for (int i = 0; i < n; i++) {
    TT_SPAN(s, "steady");
    tt_span_set_int(s, "i", i);
    tt_span_set_str(s, "http.method", "GET");
    tt_attribute_t ea[] = {TT_INT("n", 1)};
    tt_span_add_event(s, "ev", ea, 1);
  }
}

static void allocator_hook_should_serve_every_library_allocation(void **state) {
  (void)state;
  g_main = pthread_self();
  assert_int_equal(tt_set_allocator(NULL, realloc, calloc, free), TT_EINVAL);
  assert_int_equal(tt_set_allocator(my_malloc, my_realloc, my_calloc, my_free), 0);
  tt_memory_exporter_t *m = test_init(TT_SAMPLER_ALWAYS_ON, 0, 0, 60000);
  assert_true(atomic_load(&g_any_allocs) > 0);
  /* The first records come from the hook, full of 0x01 bytes: plain spans on them must still
   * carry every default. */
  for (int i = 0; i < 40; i++)
    tt_span_end(tt_span_start(NULL, "fresh", NULL));
  assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  assert_int_equal(tt_memory_exporter_count(m), 40);
  for (size_t i = 0; i < 40; i++) {
    const tt_span_data_t *d = tt_memory_exporter_get(m, i);
    assert_string_equal(d->name, "fresh");
    assert_string_equal(d->tracestate, "");
    assert_int_equal(d->attribute_count + d->event_count + d->link_count, 0);
    assert_int_equal(d->status_code, TT_STATUS_UNSET);
    assert_string_equal(d->status_message, "");
  }
  tt_memory_exporter_reset(m);
  /* Warm up: the thread state, its ring and the record pool are created here. */
  for (int round = 0; round < 5; round++) {
    work(300);
    assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  }
  long before = atomic_load(&g_main_allocs);
  for (int round = 0; round < 20; round++) {
    work(300);
    assert_int_equal(tt_flush(test_deadline_ms(20000)), 0);
  }
  assert_int_equal(atomic_load(&g_main_allocs) - before, 0);
  assert_int_equal(tt_memory_exporter_count(m), 25 * 300);
  test_finish(m);
}

/* With a hook set, record slabs come from it too (asked for 4 MB, aligned inside), never from
 * a mapping of the library's own. */
static void slabs_should_come_from_the_hook_when_one_is_set(void **state) {
  (void)state;
  const size_t mb2 = (size_t)2 << 20;
  long before = atomic_load(&g_any_allocs);
  void *raw;
  char *b = tt__alloc_aligned_forever(mb2, mb2, &raw);
  assert_non_null(b);
  assert_non_null(raw);
  assert_int_equal(atomic_load(&g_any_allocs) - before, 1);
  assert_int_equal((uintptr_t)b % mb2, 0);
  assert_true(b >= (char *)raw && b + mb2 <= (char *)raw + 2 * mb2);
  b[0] = 1;
  b[mb2 - 1] = 2;
  tt__free(raw);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(allocator_hook_should_serve_every_library_allocation),
      cmocka_unit_test(slabs_should_come_from_the_hook_when_one_is_set),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
