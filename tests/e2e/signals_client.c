/* A libtailtrace program with known traffic for tests/e2e/test_signals_e2e.py: SERVER spans of
 * exact durations (on bucket bounds and one nanosecond past them), some failed, each with a
 * CLIENT child the golden signals must not count. Exports over OTLP as configured by the OTEL_*
 * environment, then writes what it sent (the spans the collector should count) as JSON.
 *
 * Usage: signals_client TRACES MANIFEST */
#include <stdio.h>
#include <stdlib.h>
#include <tailtrace.h>

/* Durations in nanoseconds: bounds of the collector's buckets (le is inclusive), a nanosecond
 * past them, and values in between; the last is past 60 s (the +Inf bucket). */
static const uint64_t durs[] = {
    1000000ull,     1000001ull,     1999999ull,   7500000ull,    7500001ull,
    42000000ull,    250000000ull,   999999999ull, 1000000000ull, 2750000000ull,
    60000000000ull, 60000000001ull, 300000ull,    14999999ull,
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: signals_client TRACES MANIFEST\n");
    return 2;
  }
  int n = atoi(argv[1]);
  FILE *m = fopen(argv[2], "w");
  if (n <= 0 || m == NULL) {
    fprintf(stderr, "signals_client: bad TRACES or cannot write %s\n", argv[2]);
    return 2;
  }
  int rc = tt_init(NULL);
  if (rc != 0) {
    fprintf(stderr, "tt_init: %s\n", tt_strerror(rc));
    return 1;
  }
  fprintf(m, "{\"spans\":[");
  uint64_t base = tt_unix_ns() - 120000000000ull;
  for (int i = 0; i < n; i++) {
    uint64_t d = durs[i % (sizeof durs / sizeof durs[0])];
    uint64_t start = base + (uint64_t)i * 1000ull;
    tt_span_options_t o = {.size = sizeof o,
                           .kind = TT_SPAN_KIND_SERVER,
                           .parent_mode = TT_PARENT_NONE,
                           .start_time_unix_ns = start};
    tt_span_t *root = tt_span_start(NULL, "POST /orders", &o);
    tt_span_set_str(root, "http.route", "/orders");
    tt_span_set_str(root, "http.request.method", "POST");
    int failed = i % 5 == 0;
    if (failed)
      tt_span_set_status(root, TT_STATUS_ERROR, "payment declined");
    tt_span_options_t co = {.size = sizeof co,
                            .kind = TT_SPAN_KIND_CLIENT,
                            .parent_mode = TT_PARENT_SPAN,
                            .parent = root,
                            .start_time_unix_ns = start + 10};
    tt_span_t *child = tt_span_start(NULL, "INSERT orders", &co);
    tt_span_end_at(child, start + 20);
    tt_span_end_at(root, start + d);
    fprintf(m,
            "%s{\"service\":\"tt-sig-c\",\"operation\":\"POST /orders\",\"kind\":\"SERVER\","
            "\"status\":\"%s\",\"error\":%s,\"route\":\"/orders\",\"dur_ns\":%llu}",
            i ? "," : "", failed ? "ERROR" : "UNSET", failed ? "true" : "false",
            (unsigned long long)d);
  }
  fprintf(m, "],\"sent\":%d}\n", 2 * n);
  fclose(m);
  /* Everything must reach the collector: the test counts exactly. */
  rc = tt_flush(tt_monotonic_ns() + 20000000000ull);
  tt_stats_t st = {.size = sizeof st};
  tt_stats_get(&st);
  tt_shutdown(tt_monotonic_ns() + 5000000000ull);
  if (rc != 0 || st.spans_exported != (uint64_t)(2 * n)) {
    fprintf(stderr,
            "signals_client: flush %s, %llu of %d spans exported (queue full %llu, export "
            "failed %llu)\n",
            tt_strerror(rc), (unsigned long long)st.spans_exported, 2 * n,
            (unsigned long long)st.dropped_queue_full,
            (unsigned long long)st.dropped_export_failed);
    return 1;
  }
  return 0;
}
