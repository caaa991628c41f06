/* OTLP/gRPC (gRPC C core) against the real Python receiver: the shared transport cases. For
 * gRPC, "retry_after_seconds_should_be_honoured" is RESOURCE_EXHAUSTED carrying a
 * google.rpc.RetryInfo in grpc-status-details-bin, and the permanent-throttling case is
 * RESOURCE_EXHAUSTED without it. */
#define PROTO TT_OTLP_PROTOCOL_GRPC
#define PROTO_NAME "grpc"
#include "peers/otlp_transport_cases.h"

static void unimplemented_and_unauthenticated_should_not_be_retried(void **state) {
  (void)state;
  assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                       "\"UNIMPLEMENTED\"}"),
                   0);
  assert_int_equal(peer_fault(&g_peer, "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":"
                                       "\"PERMISSION_DENIED\"}"),
                   0);
  char ep[128];
  tt_otlp_options_t o;
  base_options(&o, ep, sizeof ep);
  tt__otlp_exporter_t *e = make_exporter(&o);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), TT__OTLP_FAIL_PERMANENT);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), TT__OTLP_FAIL_PERMANENT);
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  assert_int_equal(st.attempts, 2);
  assert_int_equal(st.spans_failed_permanent, 2);
  assert_int_equal(st.last_code, 7);
  tt__otlp_exporter_destroy(e);
}

/* gRPC's core does not survive fork without its own fork support: a child's export must fail
 * fast and be counted, never hang; the parent's channel keeps working. */
static void forked_child_should_drop_without_hanging(void **state) {
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
  if (pid == 0) {
    int ok = tt__otlp_exporter_export(e, spans, 1, 0) == TT__OTLP_FAIL_PERMANENT;
    tt__otlp_stats_t st;
    tt__otlp_exporter_get_stats(e, &st);
    _exit(ok && st.spans_failed_permanent == 1 ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(tt__otlp_exporter_export(e, spans, 1, 0), 0);
  assert_int_equal(peer_stat(&g_peer, "grpc"), 2);
  tt__otlp_exporter_destroy(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      TRANSPORT_CASES,
      cmocka_unit_test_setup(unimplemented_and_unauthenticated_should_not_be_retried, reset_peer),
      cmocka_unit_test_setup(forked_child_should_drop_without_hanging, reset_peer),
  };
  return cmocka_run_group_tests(tests, peer_group_setup, peer_group_teardown);
}
