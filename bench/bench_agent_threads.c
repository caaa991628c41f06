/* Where the time goes when application threads run spans flat out with the exporter active:
 * per-thread CPU time per span, involuntary context switches, and the exporter thread's CPU.
 * Prints one JSON object per figure. Usage: bench_agent_threads [threads (1-8)] [milliseconds]
 * Companion to bench_agent's throughput figures (docs/benchmarks-agent.md). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "tailtrace.h"

static _Atomic int g_run = 1;

typedef struct result_s {
  uint64_t spans;
  double cpu_s;
  long involuntary;
} result_t;

static tt_export_result_t noop_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline, uint64_t *retry) {
  (void)s;
  (void)spans;
  (void)n;
  (void)deadline;
  (void)retry;
  return TT_EXPORT_SUCCESS;
}

static void *body(void *arg) {
  result_t *r = arg;
  uint64_t n = 0;
  while (atomic_load_explicit(&g_run, memory_order_relaxed)) {
    for (int i = 0; i < 256; i++)
      tt_span_end(tt_span_start(NULL, "op", NULL));
    n += 256;
  }
  struct timespec c;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  r->spans = n;
  r->cpu_s = (double)c.tv_sec + (double)c.tv_nsec / 1e9;
  r->involuntary = ru.ru_nivcsw;
  return NULL;
}

static void emit(const char *name, double value, const char *unit) {
  printf("{\"name\": \"%s\", \"value\": %.2f, \"unit\": \"%s\"}\n", name, value, unit);
}

int main(int argc, char **argv) {
  int nt = argc > 1 ? atoi(argv[1]) : 2;
  int ms = argc > 2 ? atoi(argv[2]) : 2000;
  if (nt < 1 || nt > 8 || ms < 1) {
    fprintf(stderr, "usage: %s [threads 1-8] [milliseconds]\n", argv[0]);
    return 2;
  }
  tt_exporter_t e = {.size = sizeof e, .export_spans = noop_export};
  tt_options_t o = {.size = sizeof o,
                    .service_name = "bench",
                    .sampler = TT_SAMPLER_ALWAYS_ON,
                    .exporter = &e,
                    .max_queue_size = 16384,
                    .max_export_batch_size = 512,
                    .schedule_delay_ms = 100};
  if (tt_init(&o) != 0)
    return 1;
  struct rusage before;
  getrusage(RUSAGE_SELF, &before);
  pthread_t th[8];
  result_t res[8] = {{0}};
  struct timespec t0, t1, pause = {ms / 1000, (long)(ms % 1000) * 1000000};
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < nt; i++)
    pthread_create(&th[i], NULL, body, &res[i]);
  nanosleep(&pause, NULL);
  atomic_store(&g_run, 0);
  for (int i = 0; i < nt; i++)
    pthread_join(th[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage after;
  getrusage(RUSAGE_SELF, &after);
  double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double app_cpu = 0,
         process_cpu = (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec) +
                       (double)(after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
                       (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6 +
                       (double)(after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
  uint64_t spans = 0;
  char name[64];
  for (int i = 0; i < nt; i++) {
    spans += res[i].spans;
    app_cpu += res[i].cpu_s;
    snprintf(name, sizeof name, "thread_%d_cpu_per_span", i);
    emit(name, res[i].cpu_s * 1e9 / (double)res[i].spans, "ns/span");
    snprintf(name, sizeof name, "thread_%d_involuntary_switches", i);
    emit(name, (double)res[i].involuntary, "switches");
  }
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  emit("spans_per_second", (double)spans / wall / 1e6, "Mspans/s");
  emit("application_threads_share_of_cores", 100.0 * app_cpu / (wall * 2.0), "% of 2 cores");
  /* The process's CPU not spent in the application threads: the exporter thread and main. */
  emit("exporter_cpu_per_span", (process_cpu - app_cpu) * 1e9 / (double)spans, "ns/span");
  emit("dropped_queue_full", (double)st.dropped_queue_full, "spans");
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  return 0;
}
