/* OTLP exporter configuration: options over OTEL_EXPORTER_OTLP_TRACES_* over OTEL_EXPORTER_OTLP_*
 * over defaults, and bad values ignored with a warning. The environment is a fake table passed to
 * tt__otlp_config_resolve, so tests never touch the process environment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "otlp_config.h"

typedef struct {
  const char *kv[32]; /* name, value, name, value, ..., NULL */
} fake_env_t;

static const char *fake_getenv(const char *name, void *ud) {
  fake_env_t *e = ud;
  for (int i = 0; e->kv[i]; i += 2)
    if (strcmp(e->kv[i], name) == 0)
      return e->kv[i + 1];
  return NULL;
}

static void resolve(tt__otlp_config_t *cfg, const tt_otlp_options_t *o, fake_env_t *env) {
  assert_int_equal(tt__otlp_config_resolve(cfg, o, fake_getenv, env), 0);
}

static void defaults_should_follow_the_specification(void **state) {
  (void)state;
  fake_env_t env = {{NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
  assert_string_equal(c.endpoint, "http://localhost:4318/v1/traces");
  assert_int_equal(c.timeout_ms, 10000);
  assert_int_equal(c.gzip, 0);
  assert_int_equal(c.insecure, 0);
  assert_int_equal(c.n_headers, 0);
  assert_null(c.certificate);
  assert_int_equal(c.warnings, 0);
  tt__otlp_config_free(&c);

  fake_env_t j = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", NULL}};
  resolve(&c, NULL, &j);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_HTTP_JSON);
  assert_string_equal(c.endpoint, "http://localhost:4318/v1/traces");
  tt__otlp_config_free(&c);

  fake_env_t g = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", NULL}};
  resolve(&c, NULL, &g);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_GRPC);
  assert_string_equal(c.endpoint, "http://localhost:4317");
  tt__otlp_config_free(&c);
}

static void generic_endpoint_should_get_the_signal_path_appended_for_http(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_string_equal(c.endpoint, "https://collector:4318/v1/traces");
  tt__otlp_config_free(&c);

  fake_env_t base = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:1234/prefix", NULL}};
  resolve(&c, NULL, &base);
  assert_string_equal(c.endpoint, "http://h:1234/prefix/v1/traces");
  tt__otlp_config_free(&c);
}

static void per_signal_endpoint_should_be_used_as_given(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318",
                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom/path", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_string_equal(c.endpoint, "http://traces:9999/custom/path");
  tt__otlp_config_free(&c);
}

static void grpc_endpoint_should_be_used_as_given(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT",
                     "collector:4317", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_string_equal(c.endpoint, "collector:4317");
  tt__otlp_config_free(&c);
}

static void headers_should_be_parsed_as_baggage_and_percent_decoded(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_HEADERS",
                     " x-honeycomb-team = abc%3D%3D , Authorization=Bearer%20t0k;meta ,,", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.n_headers, 2);
  assert_string_equal(c.headers[0].name, "x-honeycomb-team");
  assert_string_equal(c.headers[0].value, "abc==");
  assert_string_equal(c.headers[1].name, "authorization");
  assert_string_equal(c.headers[1].value, "Bearer t0k");
  assert_int_equal(c.warnings, 0);
  tt__otlp_config_free(&c);
}

static void per_signal_headers_should_replace_generic_ones(void **state) {
  (void)state;
  fake_env_t env = {
      {"OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.n_headers, 1);
  assert_string_equal(c.headers[0].name, "c");
  tt__otlp_config_free(&c);
}

static void malformed_header_entries_should_be_skipped_with_a_warning(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_HEADERS", "novalue,=empty-key,ok=1,zz=%4", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.n_headers, 2);
  assert_string_equal(c.headers[0].name, "ok");
  /* A '%' not followed by two hex digits stays literal rather than failing the header. */
  assert_string_equal(c.headers[1].name, "zz");
  assert_string_equal(c.headers[1].value, "%4");
  assert_int_equal(c.warnings, 2);
  tt__otlp_config_free(&c);
}

/* Found by fuzz_agent_otlp_headers: percent-decoding could yield CR/LF (an extra HTTP header
 * line), NUL (a silently cut value) or a name gRPC refuses (every export then fails). */
static void headers_that_no_transport_can_send_should_be_skipped_with_a_warning(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_HEADERS",
                     "a=x%0D%0AX-Injected: 1,b=x%00y,c%20d=1,%zz=1,e=caf%C3%A9,f=tab%09,"
                     "Good-Name_1.x=still%20fine",
                     NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.n_headers, 1);
  assert_string_equal(c.headers[0].name, "good-name_1.x");
  assert_string_equal(c.headers[0].value, "still fine");
  assert_int_equal(c.warnings, 6);
  tt__otlp_config_free(&c);
}

static void unparsable_values_should_be_ignored_with_a_warning(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s", "OTEL_EXPORTER_OTLP_COMPRESSION", "zstd",
                     "OTEL_EXPORTER_OTLP_INSECURE", "yes", "OTEL_EXPORTER_OTLP_PROTOCOL",
                     "http/xml", "OTEL_EXPORTER_OTLP_ENDPOINT", "not a url", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.timeout_ms, 10000);
  assert_int_equal(c.gzip, 0);
  assert_int_equal(c.insecure, 0);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
  assert_string_equal(c.endpoint, "http://localhost:4318/v1/traces");
  assert_int_equal(c.warnings, 5);
  tt__otlp_config_free(&c);

  fake_env_t neg = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "-5", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                     "99999999999", NULL}};
  resolve(&c, NULL, &neg);
  assert_int_equal(c.timeout_ms, 10000);
  assert_int_equal(c.warnings, 1); /* the per-signal value is the one read, and it overflows */
  tt__otlp_config_free(&c);
}

static void valid_values_should_be_read(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500", "OTEL_EXPORTER_OTLP_COMPRESSION",
                     "gzip", "OTEL_EXPORTER_OTLP_INSECURE", "TRUE",
                     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_CERTIFICATE",
                     "/etc/ca.pem", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/c.pem",
                     "OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/k.pem", NULL}};
  tt__otlp_config_t c;
  resolve(&c, NULL, &env);
  assert_int_equal(c.timeout_ms, 2500);
  assert_int_equal(c.gzip, 1);
  assert_int_equal(c.insecure, 1);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_GRPC);
  assert_string_equal(c.certificate, "/etc/ca.pem");
  assert_string_equal(c.client_certificate, "/etc/c.pem");
  assert_string_equal(c.client_key, "/etc/k.pem");
  assert_int_equal(c.warnings, 0);
  tt__otlp_config_free(&c);
}

static void options_should_win_over_the_environment(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT",
                     "http://env:4317", "OTEL_EXPORTER_OTLP_HEADERS", "env=1",
                     "OTEL_EXPORTER_OTLP_TIMEOUT", "100", "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip",
                     NULL}};
  tt_otlp_options_t o;
  memset(&o, 0, sizeof o);
  o.size = sizeof o;
  o.protocol = TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  o.endpoint = "http://opt:1/x";
  o.headers = "opt=2";
  o.timeout_ms = 700;
  o.compression = TT_OTLP_COMPRESSION_NONE;
  o.retry_initial_ms = 5;
  tt__otlp_config_t c;
  resolve(&c, &o, &env);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_HTTP_PROTOBUF);
  assert_string_equal(c.endpoint, "http://opt:1/x");
  assert_int_equal(c.n_headers, 1);
  assert_string_equal(c.headers[0].name, "opt");
  assert_int_equal(c.timeout_ms, 700);
  assert_int_equal(c.gzip, 0);
  assert_int_equal(c.retry_initial_ms, 5);
  tt__otlp_config_free(&c);
}

static void options_from_an_older_caller_should_be_read_by_their_size(void **state) {
  (void)state;
  fake_env_t env = {{"OTEL_EXPORTER_OTLP_TIMEOUT", "1234", NULL}};
  tt_otlp_options_t o;
  memset(&o, 0xff, sizeof o); /* garbage past the declared size must not be read */
  o.size = offsetof(tt_otlp_options_t, timeout_ms);
  o.protocol = TT_OTLP_PROTOCOL_GRPC;
  o.endpoint = "dns:///collector:4317";
  o.headers = NULL;
  tt__otlp_config_t c;
  resolve(&c, &o, &env);
  assert_int_equal(c.protocol, TT_OTLP_PROTOCOL_GRPC);
  assert_string_equal(c.endpoint, "dns:///collector:4317");
  assert_int_equal(c.timeout_ms, 1234);
  assert_int_equal(c.retry_initial_ms, 1000);
  tt__otlp_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_should_follow_the_specification),
      cmocka_unit_test(generic_endpoint_should_get_the_signal_path_appended_for_http),
      cmocka_unit_test(per_signal_endpoint_should_be_used_as_given),
      cmocka_unit_test(grpc_endpoint_should_be_used_as_given),
      cmocka_unit_test(headers_should_be_parsed_as_baggage_and_percent_decoded),
      cmocka_unit_test(per_signal_headers_should_replace_generic_ones),
      cmocka_unit_test(malformed_header_entries_should_be_skipped_with_a_warning),
      cmocka_unit_test(headers_that_no_transport_can_send_should_be_skipped_with_a_warning),
      cmocka_unit_test(unparsable_values_should_be_ignored_with_a_warning),
      cmocka_unit_test(valid_values_should_be_read),
      cmocka_unit_test(options_should_win_over_the_environment),
      cmocka_unit_test(options_from_an_older_caller_should_be_read_by_their_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
