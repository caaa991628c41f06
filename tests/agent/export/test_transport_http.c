/* OTLP/HTTP (protobuf over libcurl) against the real Python receiver: the shared transport
 * cases plus what only HTTP has (keep-alive, Retry-After as an HTTP-date). */
#define PROTO TT_OTLP_PROTOCOL_HTTP_PROTOBUF
#define PROTO_NAME "http"
#include "peers/otlp_transport_cases.h"

static void consecutive_exports_should_reuse_one_connection(void **state) {
  (void)state;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  for (int i = 0; i < 3; i++)
    assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  /* The receiver records the client's source port of each request: one connection, one port. */
  char *p1 = strstr(dump, "header n=1 x-tt-client-port=");
  char *p3 = strstr(dump, "header n=3 x-tt-client-port=");
  assert_non_null(p1);
  assert_non_null(p3);
  assert_int_equal(strtol(p1 + strlen("header n=1 x-tt-client-port="), NULL, 10),
                   strtol(p3 + strlen("header n=3 x-tt-client-port="), NULL, 10));
  free(dump);
  tt__otlp_exporter_destroy(e);
}

static void retry_after_http_date_should_be_honoured(void **state) {
  (void)state;
  /* An HTTP-date two seconds ahead (one-second resolution: the wait is 1-2 s). */
  char date[64], fault[160];
  time_t when = time(NULL) + 2;
  struct tm tm;
  gmtime_r(&when, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  snprintf(fault, sizeof fault,
           "{\"proto\":\"http\",\"kind\":\"status\",\"status\":429,\"retry_after\":\"%s\"}", date);
  server_retry_delay_should_be_honoured(fault);
}

static void unparsable_retry_after_should_fall_back_to_backoff(void **state) {
  (void)state;
  assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":503,"
                                       "\"retry_after\":\"soon-ish\"}"),
                   0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.retries, 1);
  tt__otlp_exporter_destroy(e);
}

/* A forked child must not write on the parent's keep-alive connection: it opens its own, and the
 * parent's connection keeps working afterwards. */
static void forked_child_should_export_on_its_own_connection(void **state) {
  (void)state;
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(tt__otlp_exporter_export(e, spans, 1, 0) == TT__OTLP_OK ? 0 : 1);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  char *dump = peer_ctl(&g_peer, "/_control/dump", NULL);
  assert_non_null(dump);
  char *p1 = strstr(dump, "header n=1 x-tt-client-port=");
  char *p2 = strstr(dump, "header n=2 x-tt-client-port=");
  char *p3 = strstr(dump, "header n=3 x-tt-client-port=");
  assert_non_null(p1);
  assert_non_null(p2);
  assert_non_null(p3);
  long port1 = strtol(p1 + strlen("header n=1 x-tt-client-port="), NULL, 10);
  long port2 = strtol(p2 + strlen("header n=2 x-tt-client-port="), NULL, 10);
  long port3 = strtol(p3 + strlen("header n=3 x-tt-client-port="), NULL, 10);
  assert_true(port2 != port1);    /* the child's own connection */
  assert_int_equal(port3, port1); /* the parent's, still alive */
  free(dump);
  tt__otlp_exporter_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TRANSPORT_CASES,
      cmocka_unit_test_setup(consecutive_exports_should_reuse_one_connection, reset_peer),
      cmocka_unit_test_setup(retry_after_http_date_should_be_honoured, reset_peer),
      cmocka_unit_test_setup(unparsable_retry_after_should_fall_back_to_backoff, reset_peer),
      cmocka_unit_test_setup(forked_child_should_export_on_its_own_connection, reset_peer),
  };
  return cmocka_run_group_tests(tests, peer_group_setup, peer_group_teardown);
}
