/* libtailtrace's memory at 1, 16 and 256 threads, default settings. Prints one JSON object per
 * thread count:
 *   {"name": "rss_threads", "threads": T, "rss_mb": ..., "peak_rss_mb": ..., "base_rss_mb": ...,
 *    "spans": ..., "exported": ..., "dropped_queue_full": ..., "dropped_no_record": ...}
 * Each thread count runs in a fresh child process (memory taken by records is never returned to
 * the system, so one process per figure): tt_init with the environment's settings and a no-op
 * exporter, then T threads each run spans back to back, half plain and half with two attributes
 * (a plain span is copied into its thread's copy slots; one with attributes travels as its 4 KB
 * record), all threads at once, and stay alive until the RSS is read. base_rss_mb is the process
 * before tracing started; rss_mb after every thread ran its spans and the queue was flushed (the
 * threads alive), peak_rss_mb the high-water mark (VmHWM). Thread stacks are in all three: each
 * thread touches a few pages of its own, outside the library.
 *
 * Usage: bench_agent_memory [--quick] [threads...]   (default 1 16 256; --quick: fewer spans)
 * Exits 1 when a figure cannot be taken or the span accounting does not add up (every span ended
 * is exported or counted as dropped). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tailtrace.h"

static uint64_t g_spans_per_thread;
static pthread_barrier_t g_start;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_done, g_may_exit;

static tt_export_result_t noop_export(void *s, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline_ns, uint64_t *retry_after_ns) {
  (void)s;
  (void)spans;
  (void)n;
  (void)deadline_ns;
  (void)retry_after_ns;
  return TT_EXPORT_SUCCESS;
}

/* VmRSS or VmHWM of this process, in MB; -1 when /proc cannot be read. */
static double proc_mb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  char line[256];
  double kb = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      kb = strtod(line + n + 1, NULL);
  fclose(f);
  return kb < 0 ? -1 : kb / 1024.0;
}

static void *worker(void *arg) {
  (void)arg;
  pthread_barrier_wait(&g_start);
  for (uint64_t i = 0; i < g_spans_per_thread; i++) {
    tt_span_t *s = tt_span_start(NULL, "GET /checkout", NULL);
    if (i & 1) {
      tt_span_set_str(s, "http.route", "/checkout");
      tt_span_set_int(s, "http.response.status_code", 200);
    }
    tt_span_end(s);
  }
  pthread_mutex_lock(&g_mu);
  g_done++;
  pthread_cond_broadcast(&g_cv);
  while (!g_may_exit) /* alive while the RSS is read: its state, ring and free list count */
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  return NULL;
}

/* One figure, in this (child) process. Returns the exit status. */
static int measure(int threads) {
  double base = proc_mb("VmRSS");
  tt_exporter_t e = {.size = sizeof e, .export_spans = noop_export};
  tt_options_t o = {.size = sizeof o, .service_name = "bench-memory", .exporter = &e};
  if (tt_init(&o) != 0) {
    fprintf(stderr, "tt_init failed\n");
    return 1;
  }
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  if (th == NULL || pthread_barrier_init(&g_start, NULL, (unsigned)threads) != 0)
    return 1;
  for (int i = 0; i < threads; i++) {
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 256 << 10); /* 256 threads of the default 8 MB is 2 GB mapped */
    if (pthread_create(&th[i], &a, worker, NULL) != 0) {
      fprintf(stderr, "pthread_create failed at thread %d\n", i);
      return 1;
    }
    pthread_attr_destroy(&a);
  }
  pthread_mutex_lock(&g_mu);
  while (g_done < threads)
    pthread_cond_wait(&g_cv, &g_mu);
  pthread_mutex_unlock(&g_mu);
  int frc = tt_flush(tt_monotonic_ns() + 30000000000ull);
  double rss = proc_mb("VmRSS"), peak = proc_mb("VmHWM");
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  pthread_mutex_lock(&g_mu);
  g_may_exit = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  free(th);
  tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  uint64_t spans = (uint64_t)threads * g_spans_per_thread;
  printf("{\"name\": \"rss_threads\", \"threads\": %d, \"rss_mb\": %.1f, \"peak_rss_mb\": %.1f, "
         "\"base_rss_mb\": %.1f, \"spans\": %llu, \"exported\": %llu, \"dropped_queue_full\": "
         "%llu, \"dropped_no_record\": %llu}\n",
         threads, rss, peak, base, (unsigned long long)spans, (unsigned long long)st.spans_exported,
         (unsigned long long)st.dropped_queue_full, (unsigned long long)st.dropped_no_record);
  fflush(stdout);
  if (frc != 0 || rss < 0 || peak < 0) {
    fprintf(stderr, "flush %d, rss %.1f, peak %.1f: no figure\n", frc, rss, peak);
    return 1;
  }
  /* A span that did not start (no record) was never ended; every other one must be exported or
   * counted as dropped on a full queue. */
  if (st.spans_started + st.dropped_no_record != spans ||
      st.spans_exported + st.dropped_queue_full != st.spans_ended) {
    fprintf(stderr,
            "accounting: started %llu + no_record %llu of %llu; exported %llu + "
            "queue_full %llu of ended %llu\n",
            (unsigned long long)st.spans_started, (unsigned long long)st.dropped_no_record,
            (unsigned long long)spans, (unsigned long long)st.spans_exported,
            (unsigned long long)st.dropped_queue_full, (unsigned long long)st.spans_ended);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  int quick = 0, counts[16], n = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
    } else {
      char *end;
      long t = strtol(argv[i], &end, 10);
      if (*end != '\0' || t < 1 || t > 4096 || n == 16) {
        fprintf(stderr, "usage: bench_agent_memory [--quick] [threads (1-4096)...]\n");
        return 2;
      }
      counts[n++] = (int)t;
    }
  }
  if (n == 0) {
    counts[n++] = 1;
    counts[n++] = 16;
    counts[n++] = 256;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    /* Enough spans that every thread cycles through its whole queue (2048) several times. */
    g_spans_per_thread = quick ? 5000 : 20000;
    pid_t pid = fork();
    if (pid < 0)
      return 1;
    if (pid == 0)
      _exit(measure(counts[i]));
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      rc = 1;
  }
  return rc;
}
