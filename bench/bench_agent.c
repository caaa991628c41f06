/* libtailtrace hot-path benchmark. Prints one JSON object per figure:
 *   {"name": ..., "value": ..., "unit": ...}
 * Each figure is the median over several timed rounds; spans are exported to a no-op exporter
 * and the queue is flushed between rounds (outside the timed region), so no span is dropped. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tailtrace.h"

#define ROUNDS 31
#define CHUNK 2000

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return v[n / 2];
}

static void emit(const char *name, double value, const char *unit) {
  printf("{\"name\": \"%s\", \"value\": %.2f, \"unit\": \"%s\"}\n", name, value, unit);
  fflush(stdout);
}

static _Atomic uint64_t g_exported;
static tt_export_result_t noop_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)spans;
  (void)deadline;
  (void)retry;
  atomic_fetch_add(&g_exported, n);
  return TT_EXPORT_SUCCESS;
}

static void init(tt_sampler_kind_t sampler) {
  tt_exporter_t e = {.size = sizeof e, .export_spans = noop_export};
  tt_options_t o = {.size = sizeof o,
                    .service_name = "bench",
                    .sampler = sampler,
                    .sampler_ratio = 1.0,
                    .exporter = &e,
                    .max_queue_size = 4096,
                    .max_export_batch_size = 512,
                    .schedule_delay_ms = 100};
  if (tt_init(&o) != 0) {
    fprintf(stderr, "tt_init failed\n");
    exit(1);
  }
}

static void flush(void) {
  tt_flush(tt_monotonic_ns() + 30000000000ull);
}

typedef void (*body_fn)(int n);

/* Median ns per iteration of body over ROUNDS rounds of CHUNK iterations. */
static double measure(body_fn body, int do_flush) {
  double v[ROUNDS];
  body(CHUNK); /* warm-up */
  if (do_flush)
    flush();
  for (int r = 0; r < ROUNDS; r++) {
    uint64_t t0 = now_ns();
    body(CHUNK);
    uint64_t t1 = now_ns();
    v[r] = (double)(t1 - t0) / CHUNK;
    if (do_flush)
      flush();
  }
  return median(v, ROUNDS);
}

static void body_plain(int n) {
  for (int i = 0; i < n; i++)
    tt_span_end(tt_span_start(NULL, "op", NULL));
}

static void body_attrs10(int n) {
  for (int i = 0; i < n; i++) {
    tt_span_t *s = tt_span_start(NULL, "op", NULL);
    tt_span_set_int(s, "a0", i);
    tt_span_set_int(s, "a1", i);
    tt_span_set_int(s, "a2", i);
    tt_span_set_int(s, "a3", i);
    tt_span_set_int(s, "a4", i);
    tt_span_set_str(s, "a5", "GET");
    tt_span_set_str(s, "a6", "/api/v1/items");
    tt_span_set_double(s, "a7", 1.5);
    tt_span_set_bool(s, "a8", 1);
    tt_span_set_int(s, "a9", i);
    tt_span_end(s);
  }
}

static void body_scope(int n) {
  for (int i = 0; i < n; i++) {
    TT_SPAN(s, "op");
  }
}

static void body_clock(int n) {
  struct timespec ts;
  for (int i = 0; i < n; i++)
    clock_gettime(CLOCK_REALTIME, &ts);
}

/* ---- allocations per span (allocator hook counts calls from the measuring thread) ---- */
static pthread_t g_main;
static _Atomic long g_allocs;
static void count(void) {
  if (pthread_equal(pthread_self(), g_main))
    atomic_fetch_add(&g_allocs, 1);
}
static void *c_malloc(size_t n) {
  count();
  return malloc(n);
}
static void *c_realloc(void *p, size_t n) {
  count();
  return realloc(p, n);
}
static void *c_calloc(size_t n, size_t m) {
  count();
  return calloc(n, m);
}

/* ---- threads ---- */
#define THREAD_SPANS 400000
static _Atomic int g_go;
static void *thread_body(void *arg) {
  (void)arg;
  while (!atomic_load(&g_go)) {
  }
  for (int i = 0; i < THREAD_SPANS; i++)
    tt_span_end(tt_span_start(NULL, "op", NULL));
  return NULL;
}

static double throughput(int nthreads) {
  pthread_t th[2];
  atomic_store(&g_go, 0);
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, thread_body, NULL);
  uint64_t t0 = now_ns();
  atomic_store(&g_go, 1);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  uint64_t t1 = now_ns();
  flush();
  return (double)nthreads * THREAD_SPANS / ((double)(t1 - t0) / 1e9);
}

int main(void) {
  g_main = pthread_self();
  tt_set_allocator(c_malloc, c_realloc, c_calloc, free);

  emit("clock_gettime_realtime", measure(body_clock, 0), "ns/op");
  emit("span_no_tracer_installed", measure(body_plain, 0), "ns/span");

  init(TT_SAMPLER_ALWAYS_OFF);
  emit("span_unsampled_start_end", measure(body_plain, 0), "ns/span");
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);

  init(TT_SAMPLER_ALWAYS_ON);
  double base = measure(body_plain, 1);
  emit("span_sampled_start_end_0_attributes", base, "ns/span");
  double with10 = measure(body_attrs10, 1);
  emit("span_per_attribute", (with10 - base) / 10.0, "ns/attribute");
  emit("span_scope_macro_start_end", measure(body_scope, 1), "ns/span");

  long before = atomic_load(&g_allocs);
  for (int r = 0; r < 10; r++) {
    body_attrs10(CHUNK);
    flush();
  }
  emit("heap_allocations_per_span_steady_state",
       (double)(atomic_load(&g_allocs) - before) / (10.0 * CHUNK), "allocs/span");

  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  uint64_t drops_before = st.dropped_queue_full + st.dropped_no_record;
  double t1[3], t2[3];
  for (int r = 0; r < 3; r++) {
    t1[r] = throughput(1);
    t2[r] = throughput(2);
  }
  double one = median(t1, 3), two = median(t2, 3);
  emit("throughput_1_thread", one / 1e6, "Mspans/s");
  emit("throughput_2_threads", two / 1e6, "Mspans/s");
  emit("throughput_2_threads_over_1", two / one, "x");
  tt_stats_get(&st);
  emit("dropped_during_thread_runs",
       (double)(st.dropped_queue_full + st.dropped_no_record - drops_before), "spans");
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}
