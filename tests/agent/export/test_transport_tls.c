/* OTLP over TLS and mutual TLS, both transports, against the Python receiver serving TLS with a
 * throw-away CA, server and client certificates made by the openssl command at test time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exporter_otlp.h"
#include "peers/otlp_peer.h"
#include "peers/otlp_sample.h"

static char g_dir[64];
static char g_ca[128], g_srv_cert[128], g_srv_key[128], g_cli_cert[128], g_cli_key[128];
static tt_peer_t g_tls;  /* TLS, any client */
static tt_peer_t g_mtls; /* TLS, client certificate required */

static int make_certs(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/tt_tls_XXXXXX");
  if (mkdtemp(g_dir) == NULL)
    return -1;
  char cmd[2048];
  /* EC keys: fast to generate; SAN IP:127.0.0.1 because both clients verify the address. */
  snprintf(cmd, sizeof cmd,
           "cd %s && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout ca.key -out ca.pem -days 2 -subj /CN=tt-test-ca && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout server.key -out server.csr -subj /CN=localhost && "
           "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out server.pem -days 2 -extfile san.ext && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
           "-keyout client.key -out client.csr -subj /CN=tt-client && "
           "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out client.pem -days 2",
           g_dir);
  char quiet[2100];
  snprintf(quiet, sizeof quiet, "(%s) >/dev/null 2>&1", cmd);
  if (system(quiet) != 0) {
    fprintf(stderr, "certificate generation failed: %s\n", cmd);
    return -1;
  }
  snprintf(g_ca, sizeof g_ca, "%s/ca.pem", g_dir);
  snprintf(g_srv_cert, sizeof g_srv_cert, "%s/server.pem", g_dir);
  snprintf(g_srv_key, sizeof g_srv_key, "%s/server.key", g_dir);
  snprintf(g_cli_cert, sizeof g_cli_cert, "%s/client.pem", g_dir);
  snprintf(g_cli_key, sizeof g_cli_key, "%s/client.key", g_dir);
  return 0;
}

static int setup(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (make_certs() != 0)
    return -1;
  const char *a1[] = {"--tls-cert", g_srv_cert, "--tls-key", g_srv_key, NULL};
  if (peer_start(&g_tls, a1) != 0)
    return -1;
  snprintf(g_tls.ca, sizeof g_tls.ca, "%s", g_ca);
  const char *a2[] = {"--tls-cert",      g_srv_cert, "--tls-key", g_srv_key,
                      "--tls-client-ca", g_ca,       NULL};
  if (peer_start(&g_mtls, a2) != 0)
    return -1;
  snprintf(g_mtls.ca, sizeof g_mtls.ca, "%s", g_ca);
  snprintf(g_mtls.cert, sizeof g_mtls.cert, "%s", g_cli_cert);
  snprintf(g_mtls.key, sizeof g_mtls.key, "%s", g_cli_key);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  peer_stop(&g_tls);
  peer_stop(&g_mtls);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static tt__otlp_outcome_t export_one(int expect_ok, int proto, const char *endpoint, const char *ca,
                                     const char *cert, const char *key, int insecure) {
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = proto;
  o.endpoint = endpoint;
  o.certificate = ca;
  o.client_certificate = cert;
  o.client_key = key;
  o.insecure = insecure;
  /* Generous when success is expected (a TLS handshake under TSan is slow); short when failure
   * is, since gRPC retries a failed handshake (UNAVAILABLE) until the timeout. */
  o.timeout_ms = expect_ok ? 30000 : 2000;
  o.retry_initial_ms = 100;
  tt__otlp_exporter_t *e = NULL;
  assert_int_equal(tt__otlp_exporter_new(&o, &e), 0);
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  tt__otlp_outcome_t rc = tt__otlp_exporter_export(e, spans, 2, 0);
  tt__otlp_exporter_destroy(e);
  return rc;
}

static void url(char *buf, size_t cap, const char *scheme, int port, const char *path) {
  snprintf(buf, cap, "%s127.0.0.1:%d%s", scheme, port, path);
}

static void https_should_verify_the_server_against_the_configured_ca(void **state) {
  (void)state;
  char ep[128];
  url(ep, sizeof ep, "https://", g_tls.http_port, "/v1/traces");
  assert_int_equal(export_one(1, TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, g_ca, NULL, NULL, 0),
                   TT__OTLP_OK);
  assert_int_equal(peer_stat(&g_tls, "http"), 1);
  assert_int_equal(peer_stat(&g_tls, "spans"), 2);
  /* Without our CA the server is untrusted: a permanent failure, nothing delivered. */
  assert_int_equal(export_one(0, TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, NULL, NULL, NULL, 0),
                   TT__OTLP_FAIL_PERMANENT);
  assert_int_equal(peer_stat(&g_tls, "http"), 1);
}

static void grpc_tls_should_verify_the_server_against_the_configured_ca(void **state) {
  (void)state;
  char ep[128];
  url(ep, sizeof ep, "https://", g_tls.grpc_port, "");
  assert_int_equal(export_one(1, TT_OTLP_PROTOCOL_GRPC, ep, g_ca, NULL, NULL, 0), TT__OTLP_OK);
  assert_int_equal(peer_stat(&g_tls, "grpc"), 1);
  /* gRPC reports a failed handshake as UNAVAILABLE (retryable) until the timeout. */
  assert_int_not_equal(export_one(0, TT_OTLP_PROTOCOL_GRPC, ep, NULL, NULL, NULL, 0), TT__OTLP_OK);
  assert_int_equal(peer_stat(&g_tls, "grpc"), 1);
}

static void grpc_endpoint_without_scheme_should_follow_the_insecure_flag(void **state) {
  (void)state;
  char ep[128];
  url(ep, sizeof ep, "", g_tls.grpc_port, "");
  long before = peer_stat(&g_tls, "grpc");
  assert_int_equal(
      export_one(1, TT_OTLP_PROTOCOL_GRPC, ep, g_ca, NULL, NULL, TT_OTLP_INSECURE_FALSE),
      TT__OTLP_OK);
  /* insecure=true speaks plaintext, which a TLS server cannot accept. */
  assert_int_not_equal(
      export_one(0, TT_OTLP_PROTOCOL_GRPC, ep, g_ca, NULL, NULL, TT_OTLP_INSECURE_TRUE),
      TT__OTLP_OK);
  assert_int_equal(peer_stat(&g_tls, "grpc"), before + 1);
}

static void mutual_tls_should_present_the_client_certificate(void **state) {
  (void)state;
  char ep[128];
  url(ep, sizeof ep, "https://", g_mtls.http_port, "/v1/traces");
  assert_int_equal(
      export_one(1, TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, g_ca, g_cli_cert, g_cli_key, 0),
      TT__OTLP_OK);
  assert_int_not_equal(export_one(0, TT_OTLP_PROTOCOL_HTTP_PROTOBUF, ep, g_ca, NULL, NULL, 0),
                       TT__OTLP_OK);
  url(ep, sizeof ep, "https://", g_mtls.grpc_port, "");
  assert_int_equal(export_one(1, TT_OTLP_PROTOCOL_GRPC, ep, g_ca, g_cli_cert, g_cli_key, 0),
                   TT__OTLP_OK);
  assert_int_not_equal(export_one(0, TT_OTLP_PROTOCOL_GRPC, ep, g_ca, NULL, NULL, 0), TT__OTLP_OK);
  assert_int_equal(peer_stat(&g_mtls, "http"), 1);
  assert_int_equal(peer_stat(&g_mtls, "grpc"), 1);
  assert_int_equal(peer_stat(&g_mtls, "spans"), 4);
}

static void unreadable_certificate_should_refuse_to_create_the_exporter(void **state) {
  (void)state;
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = TT_OTLP_PROTOCOL_GRPC;
  o.endpoint = "https://127.0.0.1:1";
  o.certificate = "/nonexistent/ca.pem";
  tt__otlp_exporter_t *e = NULL;
  assert_int_equal(tt__otlp_exporter_new(&o, &e), TT_EINVAL);
  assert_null(e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(https_should_verify_the_server_against_the_configured_ca),
      cmocka_unit_test(grpc_tls_should_verify_the_server_against_the_configured_ca),
      cmocka_unit_test(grpc_endpoint_without_scheme_should_follow_the_insecure_flag),
      cmocka_unit_test(mutual_tls_should_present_the_client_certificate),
      cmocka_unit_test(unreadable_certificate_should_refuse_to_create_the_exporter),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
