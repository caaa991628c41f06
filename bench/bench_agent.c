/* libtailtrace hot-path benchmark. Prints one JSON object per figure:
 *   {"name": ..., "value": ..., "unit": ...}
 * Each figure is the median over several timed rounds; spans are exported to a no-op exporter
 * and the queue is flushed between rounds (outside the timed region), so no span is dropped. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
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
static double g_rate[64], g_per_thread[64];
static tt_export_result_t noop_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)spans;
  (void)deadline;
  (void)retry;
  atomic_fetch_add(&g_exported, n);
  return TT_EXPORT_SUCCESS;
}

static void init_queue(tt_sampler_kind_t sampler, uint32_t queue, uint32_t batch,
                       uint32_t delay_ms) {
  tt_exporter_t e = {.size = sizeof e, .export_spans = noop_export};
  tt_options_t o = {.size = sizeof o,
                    .service_name = "bench",
                    .sampler = sampler,
                    .sampler_ratio = 1.0,
                    .exporter = &e,
                    .max_queue_size = queue,
                    .max_export_batch_size = batch,
                    .schedule_delay_ms = delay_ms};
  if (tt_init(&o) != 0) {
    fprintf(stderr, "tt_init failed\n");
    exit(1);
  }
}

static void init(tt_sampler_kind_t sampler) {
  init_queue(sampler, 4096, 512, 100);
}

static void flush(void) {
  tt_flush(tt_monotonic_ns() + 30000000000ull);
}

typedef void (*body_fn)(int n);

/* Median ns per iteration of body over ROUNDS rounds of CHUNK iterations. */
static double measure(body_fn body, int do_flush) {
  double v[ROUNDS];
  for (int w = 0; w < 5; w++) { /* warm-up: grows the record pool, fills the caches */
    body(CHUNK);
    if (do_flush)
      flush();
  }
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

/* ---- threads ----
 * Scaling of the application-thread hot path: N threads run a chunk of spans at the same time
 * (released by a barrier, timed by the slowest), then the queue is flushed untimed. The batch
 * size is the queue size so the exporter thread sleeps while chunks run: on this 2-core machine
 * it would otherwise take a core from the producers. A second figure runs flat out with the
 * exporter active, where whatever the exporter cannot ship is dropped and counted. */
#define TCHUNK 8000
static int g_nthreads;
#define TROUNDS 31
/* A spinning barrier: a futex wake-up can take longer than a chunk on a loaded machine. */
static _Atomic unsigned g_bar_count, g_bar_gen;
static void bar_wait(void) {
  unsigned gen = atomic_load(&g_bar_gen);
  if (atomic_fetch_add(&g_bar_count, 1) + 1 == (unsigned)g_nthreads) {
    atomic_store(&g_bar_count, 0);
    atomic_fetch_add(&g_bar_gen, 1);
    return;
  }
  while (atomic_load(&g_bar_gen) == gen)
    sched_yield();
}
static uint64_t g_t0[2], g_t1[2];

static void *thread_body(void *arg) {
  int me = (int)(intptr_t)arg;
  for (int r = 0; r < TROUNDS + 1; r++) {
    bar_wait();
    g_t0[me] = now_ns();
    body_plain(TCHUNK);
    g_t1[me] = now_ns();
    bar_wait();
    if (me == 0) {
      flush();
      uint64_t a = g_t0[0], b = g_t1[0];
      for (int i = 1; i < g_nthreads; i++) {
        a = g_t0[i] < a ? g_t0[i] : a;
        b = g_t1[i] > b ? g_t1[i] : b;
      }
      if (r > 0) { /* round 0 warms up */
        g_rate[r - 1] = (double)g_nthreads * TCHUNK / ((double)(b - a) / 1e9);
        g_per_thread[r - 1] = (double)(g_t1[1 % g_nthreads] - g_t0[1 % g_nthreads]) / TCHUNK;
      }
    }
  }
  return NULL;
}

static double throughput(int nthreads) {
  pthread_t th[2];
  g_nthreads = nthreads;
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, thread_body, (void *)(intptr_t)i);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  return median(g_rate, TROUNDS);
}

#define FLAT_SPANS 300000
static void *flat_body(void *arg) {
  (void)arg;
  body_plain(FLAT_SPANS);
  return NULL;
}

static double flat_out(int nthreads) {
  pthread_t th[2];
  uint64_t t0 = now_ns();
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, flat_body, NULL);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  uint64_t t1 = now_ns();
  flush();
  return (double)nthreads * FLAT_SPANS / ((double)(t1 - t0) / 1e9);
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
  (void)measure(body_plain, 1); /* discarded: the first pass after tt_init runs slower */
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

  tt_shutdown(tt_monotonic_ns() + 10000000000ull);

  /* The same span with the exporter thread asleep while timed (batch = queue): the difference
   * from the figure above is the exporter draining on the other core at the same time. */
  init_queue(TT_SAMPLER_ALWAYS_ON, 16384, 16384, 60000);
  emit("span_sampled_start_end_0_attributes_exporter_idle", measure(body_plain, 1), "ns/span");
  double one = throughput(1), two = throughput(2);
  emit("throughput_1_thread", one / 1e6, "Mspans/s");
  emit("throughput_2_threads", two / 1e6, "Mspans/s");
  emit("throughput_2_threads_over_1", two / one, "x");
  emit("span_cost_per_thread_while_2_run", median(g_per_thread, TROUNDS), "ns/span");
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);

  init_queue(TT_SAMPLER_ALWAYS_ON, 2048, 512, 100);
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  uint64_t before_drop = st.dropped_queue_full + st.dropped_no_record;
  uint64_t before_exp = st.spans_exported;
  double f1 = flat_out(1), f2 = flat_out(2);
  tt_stats_get(&st);
  emit("flat_out_1_thread_with_exporter", f1 / 1e6, "Mspans/s");
  emit("flat_out_2_threads_with_exporter", f2 / 1e6, "Mspans/s");
  emit("flat_out_dropped_share",
       100.0 * (double)(st.dropped_queue_full + st.dropped_no_record - before_drop) /
           (3.0 * FLAT_SPANS),
       "%");
  (void)before_exp;
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}
