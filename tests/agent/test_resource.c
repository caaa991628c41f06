/* Resource detection: SDK attributes, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES (decoded; a
 * malformed value discarded whole, with a warning), options and the unknown_service fallback. */
#define _GNU_SOURCE /* program_invocation_short_name */

#include "tt_test_util.h"

#include "internal.h"

#include <errno.h>
#include <unistd.h>

static const tt_attribute_t *res_attr(const tt_span_data_t *d, const char *key) {
  for (uint32_t i = 0; i < d->resource->attribute_count; i++)
    if (strcmp(d->resource->attributes[i].key, key) == 0)
      return &d->resource->attributes[i];
  return NULL;
}

/* Starts a provider with options o, exports one span and returns its copy. */
static const tt_span_data_t *one_span(tt_memory_exporter_t **mp, tt_options_t *o) {
  tt_memory_exporter_t *m = tt_memory_exporter_new(10);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  o->exporter = &e;
  assert_int_equal(tt_init(o), 0);
  tt_span_end(tt_span_start(NULL, "r", NULL));
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  *mp = m;
  return tt_memory_exporter_get(m, 0);
}

static void resource_should_carry_sdk_process_and_host_attributes(void **state) {
  (void)state;
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o, .service_name = "svc"};
  const tt_span_data_t *d = one_span(&m, &o);
  assert_string_equal(res_attr(d, "service.name")->value.str.ptr, "svc");
  assert_string_equal(res_attr(d, "telemetry.sdk.name")->value.str.ptr, "tailtrace");
  assert_string_equal(res_attr(d, "telemetry.sdk.language")->value.str.ptr, "c");
  assert_string_equal(res_attr(d, "telemetry.sdk.version")->value.str.ptr, tt_version_string());
  assert_int_equal(res_attr(d, "process.pid")->value.i, getpid());
  char host[256];
  gethostname(host, sizeof host);
  assert_string_equal(res_attr(d, "host.name")->value.str.ptr, host);
  tt_memory_exporter_free(m);
}

static void resource_attributes_env_should_be_percent_decoded(void **state) {
  (void)state;
  setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod, team = a%20b%2Cc ,x=", 1);
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o};
  const tt_span_data_t *d = one_span(&m, &o);
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  assert_string_equal(res_attr(d, "deployment.environment")->value.str.ptr, "prod");
  assert_string_equal(res_attr(d, "team")->value.str.ptr, "a b,c");
  assert_string_equal(res_attr(d, "x")->value.str.ptr, "");
  tt_memory_exporter_free(m);
}

static int g_warnings;
static void count_warnings(tt_log_level_t level, const char *line, void *arg) {
  (void)arg;
  if (level == TT_LOG_WARN && strstr(line, "OTEL_RESOURCE_ATTRIBUTES") != NULL)
    g_warnings++;
}

static void malformed_resource_attributes_should_be_discarded_whole_with_a_warning(void **s) {
  (void)s;
  tt_set_log_handler(count_warnings, NULL, TT_LOG_WARN);
  setenv("OTEL_RESOURCE_ATTRIBUTES", "good=1,bad%zz=2", 1);
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o};
  const tt_span_data_t *d = one_span(&m, &o);
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  tt_set_log_handler(NULL, NULL, TT_LOG_OFF);
  assert_null(res_attr(d, "good"));
  assert_int_equal(g_warnings, 1);
  tt_memory_exporter_free(m);
}

static void service_name_should_prefer_options_then_env_then_resource_attributes(void **state) {
  (void)state;
  setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs", 1);
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o};
  const tt_span_data_t *d = one_span(&m, &o);
  assert_string_equal(res_attr(d, "service.name")->value.str.ptr, "from-attrs");
  tt_memory_exporter_free(m);
  setenv("OTEL_SERVICE_NAME", "from-env", 1);
  d = one_span(&m, &o);
  assert_string_equal(res_attr(d, "service.name")->value.str.ptr, "from-env");
  tt_memory_exporter_free(m);
  o.service_name = "from-options";
  d = one_span(&m, &o);
  assert_string_equal(res_attr(d, "service.name")->value.str.ptr, "from-options");
  tt_memory_exporter_free(m);
  unsetenv("OTEL_SERVICE_NAME");
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
}

static void service_name_should_fall_back_to_unknown_service_and_exe(void **state) {
  (void)state;
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o};
  const tt_span_data_t *d = one_span(&m, &o);
  /* The executable's own name, whatever the build calls it. */
  char want[256];
  snprintf(want, sizeof want, "unknown_service:%s", program_invocation_short_name);
  assert_string_equal(res_attr(d, "service.name")->value.str.ptr, want);
  tt_memory_exporter_free(m);
}

static void option_resource_attributes_should_override_env(void **state) {
  (void)state;
  setenv("OTEL_RESOURCE_ATTRIBUTES", "k=env", 1);
  tt_attribute_t ra[] = {TT_STR("k", "opt"), TT_INT("n", 5)};
  tt_memory_exporter_t *m;
  tt_options_t o = {.size = sizeof o, .resource_attributes = ra, .resource_attribute_count = 2};
  const tt_span_data_t *d = one_span(&m, &o);
  unsetenv("OTEL_RESOURCE_ATTRIBUTES");
  assert_string_equal(res_attr(d, "k")->value.str.ptr, "opt");
  assert_int_equal(res_attr(d, "n")->value.i, 5);
  tt_memory_exporter_free(m);
}

static void count_pair(void *arg, const char *k, const char *v) {
  (void)k;
  (void)v;
  (*(int *)arg)++;
}

static void resource_parser_should_reject_each_malformed_shape(void **state) {
  (void)state;
  const char *bad[] = {"noequals", "=v", "a=1,=2", "a=%4", "a=%g0", "k=%00"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int n = 0;
    assert_int_equal(tt__resource_attrs_parse(bad[i], strlen(bad[i]), count_pair, &n), TT_EPARSE);
    assert_int_equal(n, 0);
  }
  int n = 0;
  assert_int_equal(tt__resource_attrs_parse("a=1,,b=2,", 9, count_pair, &n), 2);
  assert_int_equal(n, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resource_should_carry_sdk_process_and_host_attributes),
      cmocka_unit_test(resource_attributes_env_should_be_percent_decoded),
      cmocka_unit_test(malformed_resource_attributes_should_be_discarded_whole_with_a_warning),
      cmocka_unit_test(service_name_should_prefer_options_then_env_then_resource_attributes),
      cmocka_unit_test(service_name_should_fall_back_to_unknown_service_and_exe),
      cmocka_unit_test(option_resource_attributes_should_override_env),
      cmocka_unit_test(resource_parser_should_reject_each_malformed_shape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
