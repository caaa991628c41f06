/* app.c: the program the install tests build against an installed libtailtrace, the way a user
 * would (pkg-config, find_package, add_subdirectory; shared and static). It records one span
 * with attributes and exits 0 only when the library did what was asked: with
 * OTEL_TRACES_EXPORTER unset or "otlp", the span must have been accepted by the OTLP endpoint
 * the OTEL_EXPORTER_OTLP_* variables name (the test's receiver then checks it arrived); with
 * "none", it must have been recorded and ended. INSTALL_CHECK_LABEL becomes the span's
 * "check.label" attribute, so the receiver can tell which build sent it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tailtrace.h>

int main(void) {
  const char *which = getenv("OTEL_TRACES_EXPORTER");
  const char *label = getenv("INSTALL_CHECK_LABEL");
  int exporting = which == NULL || *which == '\0' || strcmp(which, "otlp") == 0;

  tt_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.size = sizeof opts;
  opts.service_name = "install-check";
  /* The exporter is made here rather than by tt_init so that a transport that cannot be set up
   * (gRPC without libtailtrace-grpc) is an error this program reports, not a warning. */
  tt_exporter_t exporter;
  if (exporting) {
    int rc = tt_otlp_exporter_new(NULL, &exporter);
    if (rc != 0) {
      fprintf(stderr, "install-check: cannot create the OTLP exporter: %s\n", tt_strerror(rc));
      return 2;
    }
    opts.exporter = &exporter;
  }
  int rc = tt_init(&opts);
  if (rc != 0) {
    fprintf(stderr, "install-check: tt_init: %s\n", tt_strerror(rc));
    return 1;
  }
  {
    TT_SPAN(span, "install-check");
    tt_attribute_t attrs[] = {TT_STR("check.label", label ? label : "unlabelled"),
                              TT_INT("check.answer", 42)};
    tt_span_set_attributes(span, attrs, sizeof attrs / sizeof attrs[0]);
  }
  rc = tt_shutdown(tt_monotonic_ns() + 10000000000ull);
  tt_stats_t st;
  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  tt_stats_get(&st);
  printf("install-check: libtailtrace %s ended=%llu exported=%llu shutdown=%s\n",
         tt_version_string(), (unsigned long long)st.spans_ended,
         (unsigned long long)st.spans_exported, tt_strerror(rc));
  if (rc != 0 || st.spans_ended != 1)
    return 1;
  return exporting && st.spans_exported != 1 ? 1 : 0;
}
