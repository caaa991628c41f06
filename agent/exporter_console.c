/* Console exporter (OTEL_TRACES_EXPORTER=console): one human-readable line per span on stderr,
 * for debugging a set-up without a collector. */
#include "internal.h"

#include <stdio.h>

static tt_export_result_t console_export(void *state, const tt_span_data_t *const *spans, size_t n,
                                         uint64_t deadline, uint64_t *retry) {
  (void)state;
  (void)deadline;
  (void)retry;
  for (size_t i = 0; i < n; i++) {
    const tt_span_data_t *s = spans[i];
    char tid[33], sid[17], pid[17];
    tt__hex_encode(s->trace_id, 16, tid);
    tt__hex_encode(s->span_id, 8, sid);
    tt__hex_encode(s->parent_span_id, 8, pid);
    fprintf(stderr,
            "span %s trace=%s span=%s parent=%s kind=%d dur_ns=%llu attrs=%u events=%u status=%d\n",
            s->name, tid, sid, s->has_parent ? pid : "-", (int)s->kind,
            (unsigned long long)(s->end_time_unix_ns - s->start_time_unix_ns), s->attribute_count,
            s->event_count, (int)s->status_code);
  }
  return TT_EXPORT_SUCCESS;
}

int tt__exporter_console(tt_exporter_t *out) {
  out->size = sizeof *out;
  out->state = NULL;
  out->export_spans = console_export;
  out->force_flush = NULL;
  out->shutdown = NULL;
  out->cancel = NULL;
  return 0;
}
