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

static tt_export_result_t noop_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)spans;
  (void)deadline;
  (void)retry;
  (void)n;
  return TT_EXPORT_SUCCESS;
}

/* An exporter that reads what an encoder would read of each span (ids, times, name), so the
 * lines a span wrote leave its core, as with a real exporter. */
static _Atomic uint64_t g_read_sum;
static tt_export_result_t reading_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                         uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)deadline;
  (void)retry;
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) {
    const tt_span_data_t *d = spans[i];
    uint64_t id;
    memcpy(&id, d->span_id, 8);
    sum += id ^ d->start_time_unix_ns ^ d->end_time_unix_ns ^ (uint64_t)d->kind ^
           (uint64_t)strlen(d->name) ^ d->attribute_count;
  }
  atomic_fetch_add_explicit(&g_read_sum, sum, memory_order_relaxed);
  return TT_EXPORT_SUCCESS;
}
static int g_reading; /* `threads ... read`: use reading_export */

static void init_queue(tt_sampler_kind_t sampler, uint32_t queue, uint32_t batch,
                       uint32_t delay_ms) {
  tt_exporter_t e = {.size = sizeof e, .export_spans = g_reading ? reading_export : noop_export};
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
 * Throughput of application threads running spans flat out for a fixed time, with the exporter
 * thread active as in a real program: records circulate (ended, drained, given back, reused),
 * nothing is flushed in between, and only spans the queue accepted count (a dropped span is
 * cheaper than an exported one, so counting drops would flatter the figure). Each window first
 * runs WARM_MS untimed so the record pool and the poll interval settle. One and two threads
 * alternate window by window so drift on the machine hits both alike; the figure is the median
 * ratio. On a 2-core machine the exporter thread takes its share of the same two cores. */
#define WINDOWS 9
#define WARM_MS 60
#define WINDOW_MS 200
static _Atomic int g_run;

static void *flat_body(void *arg) {
  (void)arg;
  while (atomic_load_explicit(&g_run, memory_order_relaxed))
    body_plain(256);
  return NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static uint64_t accepted(uint64_t *dropped) {
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  *dropped = st.dropped_queue_full + st.dropped_no_record + st.dropped_shutdown;
  return st.spans_ended - st.dropped_queue_full - st.dropped_shutdown;
}

/* Spans accepted per second by nthreads threads over one window; adds drops to *drops and
 * accepted spans to *total. */
static double window(int nthreads, uint64_t *drops, uint64_t *total) {
  pthread_t th[2];
  atomic_store(&g_run, 1);
  for (int i = 0; i < nthreads; i++)
    pthread_create(&th[i], NULL, flat_body, NULL);
  sleep_ms(WARM_MS);
  uint64_t d0, d1;
  uint64_t a0 = accepted(&d0), t0 = now_ns();
  sleep_ms(WINDOW_MS);
  uint64_t a1 = accepted(&d1), t1 = now_ns();
  atomic_store(&g_run, 0);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  flush();
  *drops += d1 - d0;
  *total += a1 - a0;
  return (double)(a1 - a0) / ((double)(t1 - t0) / 1e9);
}

static void threads(void) {
  double one[WINDOWS], two[WINDOWS], ratio[WINDOWS];
  uint64_t drops = 0, total = 0;
  for (int w = 0; w < WINDOWS; w++) {
    one[w] = window(1, &drops, &total);
    two[w] = window(2, &drops, &total);
    ratio[w] = two[w] / one[w];
  }
  double r = median(ratio, WINDOWS), o = median(one, WINDOWS), t = median(two, WINDOWS);
  emit("throughput_1_thread", o / 1e6, "Mspans/s");
  emit("throughput_2_threads", t / 1e6, "Mspans/s");
  emit("throughput_2_threads_over_1", r, "x");
  emit("span_cost_per_thread_while_2_run", 2e9 / t, "ns/span");
  emit("throughput_dropped_share", 100.0 * (double)drops / (double)(drops + total), "%");
}

/* ---- semconv: realistic spans over millions of spans ----
 * A server span with 8 semantic-convention attributes (4 strings, 2 ints, a double, a bool), run
 * back to back on one thread with the exporter thread live at the default batch (512) and delay
 * (5 s), never flushed: the record pool, the rings and the caches are in their steady state, as
 * in a busy service, not the warm rounds of the figures above. Spans the queue drops are counted
 * and reported beside the times (a dropped span is cheaper than a queued one). The two loops are
 * their own functions so callgrind can count their instructions alone
 * (bench_agent_callgrind.py). */
static __attribute__((noinline)) void semconv_spans(long n) {
  for (long i = 0; i < n; i++) {
    tt_span_t *s = tt_span_start(NULL, "GET /api/cart/{id}", NULL);
    tt_span_set_str(s, "http.request.method", "GET");
    tt_span_set_str(s, "url.path", "/api/cart/8812");
    tt_span_set_str(s, "server.address", "shop.example.com");
    tt_span_set_str(s, "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)");
    tt_span_set_int(s, "http.response.status_code", 200);
    tt_span_set_int(s, "server.port", 8443);
    tt_span_set_double(s, "app.cart.total", 129.95);
    tt_span_set_bool(s, "app.cache.hit", i & 1);
    tt_span_end(s);
  }
}

static __attribute__((noinline)) void plain_spans(long n) {
  for (long i = 0; i < n; i++)
    tt_span_end(tt_span_start(NULL, "GET /api/cart/{id}", NULL));
}

/* ns per span of fn over n spans, and the share of them dropped (queue full or no record). */
static double semconv_run(void (*fn)(long), long n, double *dropped_pct) {
  tt_stats_t a = {.size = sizeof a}, b = {.size = sizeof b};
  tt_stats_get(&a);
  uint64_t t0 = now_ns();
  fn(n);
  uint64_t t1 = now_ns();
  tt_stats_get(&b);
  uint64_t dropped =
      b.dropped_queue_full - a.dropped_queue_full + b.dropped_no_record - a.dropped_no_record;
  *dropped_pct = 100.0 * (double)dropped / (double)n;
  return (double)(t1 - t0) / (double)n;
}

/* `bench_agent semconv [queue] [spans]` (defaults 2048 and 2,000,000): 8-attribute spans, then
 * plain ones, each after a warm-up of a tenth as many; prints ns per span, per attribute, and
 * the drop shares, then the number of spans each loop ran (what callgrind's counts divide by). */
static int semconv_only(int argc, char **argv) {
  uint32_t q = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 2048;
  long n = argc > 3 ? strtol(argv[3], NULL, 10) : 2000000;
  if (q == 0 || n < 10) {
    fprintf(stderr, "usage: %s semconv [queue] [spans >= 10]\n", argv[0]);
    return 2;
  }
  init_queue(TT_SAMPLER_ALWAYS_ON, q, q < 512 ? q : 512, 5000);
  char name[96];
  double d8, d0;
  semconv_spans(n / 10);
  double a8 = semconv_run(semconv_spans, n, &d8);
  plain_spans(n / 10);
  double a0 = semconv_run(plain_spans, n, &d0);
  snprintf(name, sizeof name, "semconv_span_8_attributes_queue_%u", q);
  emit(name, a8, "ns/span");
  snprintf(name, sizeof name, "semconv_span_0_attributes_queue_%u", q);
  emit(name, a0, "ns/span");
  snprintf(name, sizeof name, "semconv_per_attribute_queue_%u", q);
  emit(name, (a8 - a0) / 8.0, "ns/attribute");
  snprintf(name, sizeof name, "semconv_dropped_8_attributes_queue_%u", q);
  emit(name, d8, "%");
  snprintf(name, sizeof name, "semconv_dropped_0_attributes_queue_%u", q);
  emit(name, d0, "%");
  printf("{\"name\": \"semconv_spans_per_loop\", \"value\": %ld, \"unit\": \"spans\"}\n",
         n + n / 10);
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}

/* `bench_agent threads [queue] [batch] [read]` runs only the threads figures, with the queue and
 * batch sizes given (defaults 16384 and 512): what A/B runs of two library builds use. With
 * `read`, the exporter reads each span as an encoder would instead of ignoring it. */
static int threads_only(int argc, char **argv) {
  uint32_t q = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 16384;
  uint32_t b = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 512;
  g_reading = argc > 4 && strcmp(argv[4], "read") == 0;
  if (q == 0 || b == 0 || b > q || (argc > 4 && !g_reading)) {
    fprintf(stderr, "usage: %s threads [queue] [batch <= queue] [read]\n", argv[0]);
    return 2;
  }
  init_queue(TT_SAMPLER_ALWAYS_ON, q, b, 100);
  threads();
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "threads") == 0)
    return threads_only(argc, argv);
  if (argc > 1 && strcmp(argv[1], "semconv") == 0)
    return semconv_only(argc, argv);
  if (argc > 1) {
    fprintf(stderr, "usage: %s [threads [queue] [batch] [read] | semconv [queue] [spans]]\n",
            argv[0]);
    return 2;
  }
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
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);

  /* The specification's default batch size, and a queue that holds a few poll intervals of a
   * thread running spans back to back (the default 2048 drops some at 12 M spans/s). */
  init_queue(TT_SAMPLER_ALWAYS_ON, 16384, 512, 100);
  threads();
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}
