/* Configuration: defaults with no file, every key from YAML, ${ENV} expansion, policies, and
 * errors that name the file, the line and the key; `--validate` on the real binary. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static int load(const char *yaml, tt_config_t *c, tt_buf_t *errs) {
  tt__buf_reset(errs);
  int rc = tt__config_load_string(yaml, strlen(yaml), "test.yaml", c, errs);
  tt__buf_append(errs, "", 1);
  return rc;
}

static void defaults_should_work_with_no_file(void **state) {
  (void)state;
  tt_config_t c;
  assert_int_equal(tt__config_defaults(&c), 0);
  assert_string_equal(c.grpc_endpoint, "127.0.0.1:4317");
  assert_string_equal(c.http_endpoint, "127.0.0.1:4318");
  assert_string_equal(c.admin_endpoint, "127.0.0.1:13133");
  assert_int_equal(c.root_grace_ms, 2000);
  assert_int_equal(c.idle_timeout_ms, 15000);
  assert_int_equal(c.memory_budget, 256u << 20);
  assert_string_equal(c.file_path, "./tailtrace-traces.jsonl");
  assert_int_equal(c.policies->n, 3);
  assert_int_equal(c.policies->items[0].kind, TT_POL_ERRORS);
  assert_int_equal(c.policies->items[1].kind, TT_POL_LATENCY);
  assert_int_equal(c.policies->items[2].kind, TT_POL_RATIO);
  tt__config_free(&c);
}

static void empty_file_should_give_the_defaults(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(load("", &c, &e), 0);
  assert_int_equal(c.idle_timeout_ms, 15000);
  tt__config_free(&c);
  assert_int_equal(load("admin:\ndecision:\n", &c, &e), 0); /* empty sections */
  assert_string_equal(c.admin_endpoint, "127.0.0.1:13133");
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void values_should_parse_with_units(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "workers: 3\n"
                  "decision:\n  root_grace: 500ms\n  idle_timeout: 1m\n"
                  "memory:\n  budget: 64MiB\n  max_trace_size: 1MiB\n"
                  "receivers:\n  otlp_http:\n    enabled: false\n    endpoint: \"[::1]:0\"\n"
                  "sink: {type: null}\nlog: {level: warn}\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_int_equal(c.workers, 3);
  assert_int_equal(c.root_grace_ms, 500);
  assert_int_equal(c.idle_timeout_ms, 60000);
  assert_int_equal(c.memory_budget, 64u << 20);
  assert_false(c.http_enabled);
  assert_string_equal(c.sink_type, "null");
  char host[64];
  int port;
  assert_int_equal(tt__config_split_endpoint(c.http_endpoint, host, sizeof host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 0);
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void env_references_should_expand(void **state) {
  (void)state;
  setenv("TT_TEST_BIND", "0.0.0.0:4999", 1);
  unsetenv("TT_TEST_UNSET");
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(load("receivers:\n  otlp_grpc:\n    endpoint: ${TT_TEST_BIND}\n"
                        "sink:\n  file:\n    path: ${TT_TEST_UNSET:-/tmp/x.jsonl}\n",
                        &c, &e),
                   0);
  assert_string_equal(c.grpc_endpoint, "0.0.0.0:4999");
  assert_string_equal(c.file_path, "/tmp/x.jsonl");
  tt__config_free(&c);
  assert_int_equal(load("admin:\n  endpoint: ${TT_TEST_UNSET}\n", &c, &e), -EINVAL);
  assert_non_null(strstr((char *)e.data, "test.yaml:2: admin.endpoint: environment variable "
                                         "TT_TEST_UNSET is not set"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void errors_should_name_file_line_and_key(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "decision:\n"
                  "  root_grace: soon\n"
                  "  typo_key: 1\n"
                  "memory:\n"
                  "  budget: 12\n"
                  "admin:\n"
                  "  endpoint: nohostport\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "test.yaml:2: decision.root_grace: expected a duration"));
  assert_non_null(strstr(s, "test.yaml:3: decision.typo_key: unknown key"));
  assert_non_null(strstr(s, "test.yaml:5: memory.budget: must be at least 1MiB"));
  assert_non_null(strstr(s, "test.yaml:7: admin.endpoint: expected host:port"));
  /* A refused file leaves the defaults, never a half-applied mix. */
  assert_int_equal(c.root_grace_ms, 2000);
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void a_key_set_twice_should_be_refused_where_it_repeats(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "workers: 1\n"
                  "workers: 2\n"
                  "exporters:\n"
                  "  - name: a\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    name: b\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "test.yaml:2: workers: set twice"));
  assert_non_null(strstr(s, "test.yaml:6: exporters[0].name: set twice"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void yaml_syntax_errors_should_name_the_line(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(load("workers: 1\ndecision: [unclosed\n", &c, &e), -EINVAL);
  assert_non_null(strstr((char *)e.data, "test.yaml:"));
  assert_non_null(strstr((char *)e.data, "(yaml)"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void policies_should_parse_in_order(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "policies:\n"
                  "  - name: drop-health\n    type: attribute\n    key: http.route\n"
                  "    op: regex\n    value: ^/health\n    action: drop\n"
                  "  - type: errors\n    exception_event: false\n"
                  "  - type: latency\n    threshold: 2s\n    measure: root\n"
                  "    services: {checkout: 500ms}\n    operations: {\"SELECT\": 100ms}\n"
                  "  - type: attribute\n    key: user.tier\n    op: equals\n    value: gold\n"
                  "    in: resource\n"
                  "  - type: attribute\n    key: retry.count\n    op: range\n    min: 3\n"
                  "    in: span\n"
                  "  - type: rate_limit\n    traces_per_second: 50\n"
                  "  - type: ratio\n    ratio: 0.25\n";
  assert_int_equal(load(y, &c, &e), 0);
  tt_policy_set_t *s = c.policies;
  assert_int_equal(s->n, 7);
  assert_string_equal(s->items[0].name, "drop-health");
  assert_false(s->items[0].keep);
  assert_int_equal(s->items[0].op, TT_ATTR_REGEX);
  assert_false(s->items[1].exception_event);
  assert_true(s->items[1].http_5xx);
  assert_int_equal(s->items[2].threshold_ns, 2000000000ull);
  assert_true(s->items[2].root_only);
  assert_int_equal(s->items[2].nservices, 1);
  assert_string_equal(s->items[2].services[0].name, "checkout");
  assert_int_equal(s->items[2].operations[0].ns, 100000000ull);
  assert_string_equal(s->items[3].value, "gold");
  assert_int_equal(s->items[3].op, TT_ATTR_EQUALS);
  assert_int_equal(s->items[3].scope, TT_ATTR_IN_RESOURCE);
  assert_int_equal(s->items[0].scope, TT_ATTR_IN_ANY); /* the default */
  assert_true(s->items[4].min == 3.0);
  assert_int_equal(s->items[4].op, TT_ATTR_RANGE);
  assert_int_equal(s->items[4].scope, TT_ATTR_IN_SPAN);
  assert_true(s->items[5].per_second == 50.0);
  assert_string_equal(s->items[6].name, "ratio");
  assert_true(s->items[6].ratio == 0.25);
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void bad_policies_should_be_refused_with_their_index(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "policies:\n"
                  "  - type: ratio\n    ratio: 1.5\n"
                  "  - type: attribute\n    key: a\n    op: regex\n    value: \"([\"\n"
                  "  - type: magic\n"
                  "  - type: errors\n    threshold: 1s\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "test.yaml:3: policies[0].ratio: expected a number from 0 to 1, "
                            "got \"1.5\""));
  assert_non_null(strstr(s, "policies[1]: bad regex"));
  assert_non_null(strstr(s, "test.yaml:8: policies[2].type: must be \"errors\""));
  assert_non_null(
      strstr(s, "test.yaml:10: policies[3].threshold: unknown key for a policy of type errors"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void exporter_spool_mode_should_default_to_on_failure_and_accept_always(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "exporters:\n"
                  "  - {name: a, endpoint: \"127.0.0.1:4317\", spool: {dir: /tmp/a}}\n"
                  "  - name: b\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    spool: {dir: /tmp/b, mode: always}\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_int_equal(c.nexporters, 2);
  assert_string_equal(c.exporters[0].spool_mode, "on_failure");
  assert_string_equal(c.exporters[1].spool_mode, "always");
  assert_string_equal(c.exporters[1].spool_dir, "/tmp/b");
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void max_request_size_should_default_to_4mib_and_refuse_under_64kib(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *ok = "exporters:\n"
                   "  - name: a\n"
                   "    endpoint: \"127.0.0.1:4317\"\n"
                   "  - name: b\n"
                   "    endpoint: \"127.0.0.1:4317\"\n"
                   "    max_request_size: 64KiB\n";
  assert_int_equal(load(ok, &c, &e), 0);
  assert_int_equal(c.nexporters, 2);
  assert_int_equal(c.exporters[0].max_request_bytes, 4ull << 20);
  assert_int_equal(c.exporters[1].max_request_bytes, 64ull << 10);
  tt__config_free(&c);
  const char *bad = "exporters:\n"
                    "  - name: a\n"
                    "    endpoint: \"127.0.0.1:4317\"\n"
                    "    max_request_size: 65535\n";
  assert_int_equal(load(bad, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data,
                         "test.yaml:4: exporters[0].max_request_size: must be at least 64KiB"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void exporter_spool_mode_errors_should_name_file_line_and_key(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "exporters:\n"
                  "  - name: a\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    spool:\n"
                  "      dir: /tmp/a\n"
                  "      mode: sometimes\n"
                  "  - name: b\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    spool: {mode: always}\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "test.yaml:6: exporters[0].spool.mode: must be \"on_failure\" or "
                            "\"always\""));
  assert_non_null(strstr(s, "test.yaml:9: exporters[1].spool.mode: \"always\" needs spool.dir"));
  assert_int_equal(c.nexporters, 0); /* refused whole: the defaults, no exporter */
  tt__config_free(&c);
  tt__buf_free(&e);
}

/* A spool budget under two requests is refused at its key; a spool-less exporter's budget is
 * unused, and the floor follows max_request_size. */
static void
exporter_spool_budget_below_two_requests_should_be_refused_naming_file_line_and_key(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "exporters:\n"
                  "  - name: a\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    spool:\n"
                  "      dir: /tmp/a\n"
                  "      max_size: 7MiB\n"
                  "  - name: b\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    max_request_size: 1MiB\n"
                  "    spool: {dir: /tmp/b, max_size: 2MiB}\n"
                  "  - name: c\n"
                  "    endpoint: \"127.0.0.1:4317\"\n"
                  "    spool: {max_size: 1MiB}\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  const char *s = (const char *)e.data;
  assert_non_null(strstr(s, "test.yaml:6: exporters[0].spool.max_size: must be at least 8MiB, "
                            "twice max_request_size (4MiB)"));
  assert_null(strstr(s, "exporters[1]"));
  assert_null(strstr(s, "exporters[2]"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void describe_should_list_every_key(void **state) {
  (void)state;
  tt_buf_t b = TT_BUF_INIT;
  assert_int_equal(tt__config_describe(&b), 0);
  tt__buf_append(&b, "", 1);
  assert_non_null(strstr((char *)b.data, "`memory.budget` | size | `256MiB`"));
  assert_non_null(strstr((char *)b.data, "`decision.root_grace`"));
  tt__buf_free(&b);
}

static void shipped_config_should_equal_the_defaults(void **state) {
  (void)state;
  const char *src = getenv("TT_SOURCE_DIR");
  if (src == NULL)
    skip();
  char path[512];
  snprintf(path, sizeof path, "%s/deploy/tailtrace-collector.yaml", src);
  tt_config_t file, def;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(tt__config_load_file(path, &file, &e), 0);
  assert_int_equal(tt__config_defaults(&def), 0);
  /* Every scalar key: the struct up to the policy pointer. */
  assert_memory_equal(&file, &def, offsetof(tt_config_t, policies));
  assert_int_equal(file.policies->n, def.policies->n);
  for (size_t i = 0; i < def.policies->n; i++) {
    assert_int_equal(file.policies->items[i].kind, def.policies->items[i].kind);
    assert_string_equal(file.policies->items[i].name, def.policies->items[i].name);
    assert_int_equal(file.policies->items[i].threshold_ns, def.policies->items[i].threshold_ns);
    assert_int_equal(file.policies->items[i].threshold, def.policies->items[i].threshold);
  }
  tt__config_free(&file);
  tt__config_free(&def);
  tt__buf_free(&e);
}

static void docs_should_list_every_key_with_its_default(void **state) {
  (void)state;
  const char *src = getenv("TT_SOURCE_DIR");
  if (src == NULL)
    skip();
  char path[512];
  snprintf(path, sizeof path, "%s/docs/config.md", src);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  tt_buf_t doc = TT_BUF_INIT, table = TT_BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    tt__buf_append(&doc, chunk, n);
  fclose(f);
  tt__buf_append(&doc, "", 1);
  assert_int_equal(tt__config_describe(&table), 0);
  tt__buf_append(&table, "", 1);
  /* Each row of the binary's own table must appear in the docs verbatim. */
  for (char *line = (char *)table.data, *nl; *line != '\0'; line = nl + 1) {
    nl = strchr(line, '\n');
    *nl = '\0';
    if (strstr((char *)doc.data, line) == NULL)
      fail_msg("docs/config.md lacks: %s", line);
  }
  tt__buf_free(&doc);
  tt__buf_free(&table);
}

/* Runs the collector binary; returns its exit status and its stderr+stdout in out. */
static int run_bin(const char *args, char *out, size_t outlen) {
  const char *bin = getenv("TT_COLLECTOR_BIN");
  if (bin == NULL)
    return -1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
  FILE *p = popen(cmd, "r");
  size_t n = fread(out, 1, outlen - 1, p);
  out[n] = '\0';
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void validate_should_report_problems_and_exit_nonzero(void **state) {
  (void)state;
  if (getenv("TT_COLLECTOR_BIN") == NULL)
    skip();
  char path[] = "/tmp/tt-validate-XXXXXX";
  int fd = mkstemp(path);
  const char *bad = "decision:\n  idle_timeout: never\n";
  assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
  close(fd);
  char out[4096], args[256];
  snprintf(args, sizeof args, "--config %s --validate", path);
  assert_int_equal(run_bin(args, out, sizeof out), 2);
  char want[128];
  snprintf(want, sizeof want, "%s:2: decision.idle_timeout: expected a duration", path);
  assert_non_null(strstr(out, want));
  fd = open(path, O_WRONLY | O_TRUNC);
  const char *good = "decision:\n  idle_timeout: 20s\n";
  assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
  close(fd);
  assert_int_equal(run_bin(args, out, sizeof out), 0);
  assert_non_null(strstr(out, "OK"));
  unlink(path);
  assert_int_equal(run_bin("--validate", out, sizeof out), 0);
  assert_int_equal(run_bin("--config /nonexistent/tt.yaml --validate", out, sizeof out), 2);
  assert_non_null(strstr(out, "/nonexistent/tt.yaml:0: (file): cannot open"));
  assert_int_equal(run_bin("--version", out, sizeof out), 0);
  assert_non_null(strstr(out, "tailtrace-collector 0."));
}

static void bus_keys_should_load_and_bad_endpoints_be_refused_with_file_line_and_key(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  setenv("TT_TEST_REDIS_PW", "s3cret", 1);
  const char *y = "bus:\n  type: redis\n  redis:\n"
                  "    endpoints: \"10.0.0.1:6379, [::1]:6380\"\n"
                  "    password: ${TT_TEST_REDIS_PW}\n    timeout: 50ms\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_string_equal(c.bus_type, "redis");
  assert_string_equal(c.bus_password, "s3cret");
  assert_int_equal(c.bus_timeout_ms, 50);
  char buf[1024];
  const char *eps[8];
  assert_int_equal(tt__config_bus_endpoints(c.bus_endpoints, buf, sizeof buf, eps, 8), 2);
  assert_string_equal(eps[0], "10.0.0.1:6379");
  assert_string_equal(eps[1], "[::1]:6380");
  tt_pipeline_opts_t o;
  tt__config_pipeline_opts(&c, &o);
  assert_non_null(o.bus_factory);
  tt__config_free(&c);
  y = "bus:\n  type: redis\n  redis:\n    endpoints: \"127.0.0.1:6379,,x\"\n"
      "    key_ttl: 10ms\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "test.yaml:4: bus.redis.endpoints: expected"));
  tt__config_free(&c);
  y = "bus: {type: kafka}\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "test.yaml:1: bus.type: must be"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void bus_tls_keys_should_load_with_the_password_from_the_environment(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  assert_int_equal(tt__config_defaults(&c), 0);
  assert_false(c.bus_tls);
  assert_false(c.bus_tls_insecure);
  assert_string_equal(c.bus_tls_ca_file, "");
  assert_string_equal(c.bus_tls_server_name, "");
  tt__config_free(&c);
  setenv("TT_TEST_REDIS_TLS_PW", "pw-over-tls", 1);
  /* idle_timeout within root_grace + drop_delay: a configuration with nothing to warn about. */
  const char *y = "decision: {idle_timeout: 5s}\n"
                  "bus:\n  type: redis\n  redis:\n    endpoints: \"redis.internal:6380\"\n"
                  "    password: ${TT_TEST_REDIS_TLS_PW}\n"
                  "    tls:\n      enabled: true\n      ca_file: /etc/tt/ca.pem\n"
                  "      cert_file: /etc/tt/client.pem\n      key_file: /etc/tt/client.key\n"
                  "      server_name: redis.example.com\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_true(c.bus_tls);
  assert_false(c.bus_tls_insecure);
  assert_string_equal(c.bus_password, "pw-over-tls");
  assert_string_equal(c.bus_tls_ca_file, "/etc/tt/ca.pem");
  assert_string_equal(c.bus_tls_cert_file, "/etc/tt/client.pem");
  assert_string_equal(c.bus_tls_key_file, "/etc/tt/client.key");
  assert_string_equal(c.bus_tls_server_name, "redis.example.com");
  tt_pipeline_opts_t o;
  tt__config_pipeline_opts(&c, &o);
  assert_non_null(o.bus_factory);
  tt_buf_t w = TT_BUF_INIT;
  tt__config_warnings(&c, &w);
  assert_int_equal(w.len, 0);
  tt__config_free(&c);

  /* insecure works, and --validate says what it costs. */
  y = "bus:\n  type: redis\n  redis:\n    tls: {enabled: true, insecure: true}\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_true(c.bus_tls_insecure);
  tt__config_warnings(&c, &w);
  tt__buf_append(&w, "", 1);
  assert_non_null(
      strstr((const char *)w.data,
             "bus.redis.tls.insecure: warning: the Redis nodes' certificates are not verified"));
  tt__config_free(&c);

  /* TLS settings without tls.enabled are most likely a mistake: said, not refused. */
  tt__buf_reset(&w);
  y = "bus:\n  type: redis\n  redis:\n    tls: {ca_file: /etc/tt/ca.pem}\n";
  assert_int_equal(load(y, &c, &e), 0);
  assert_false(c.bus_tls);
  tt__config_warnings(&c, &w);
  tt__buf_append(&w, "", 1);
  assert_non_null(
      strstr((const char *)w.data,
             "bus.redis.tls: warning: settings are given but bus.redis.tls.enabled is false"));
  tt__config_free(&c);
  tt__buf_free(&w);
  tt__buf_free(&e);
}

static void
a_bus_certificate_without_its_key_should_be_refused_with_file_line_and_key(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  const char *y = "bus:\n  type: redis\n  redis:\n    tls:\n      enabled: true\n"
                  "      cert_file: /etc/tt/client.pem\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "test.yaml:6: bus.redis.tls.cert_file: needs "
                                               "bus.redis.tls.key_file"));
  tt__config_free(&c);
  y = "bus:\n  redis:\n    tls:\n\n      key_file: /etc/tt/client.key\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "test.yaml:5: bus.redis.tls.key_file: needs "
                                               "bus.redis.tls.cert_file"));
  tt__config_free(&c);
  y = "bus:\n  redis:\n    tls:\n      enabled: maybe\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "test.yaml:4: bus.redis.tls.enabled:"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void validate_should_warn_that_rate_limit_does_not_agree_across_a_bus(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT, w = TT_BUF_INIT;
  const char *y = "policies:\n  - {type: errors}\n  - {type: rate_limit, traces_per_second: 9}\n";
  assert_int_equal(load(y, &c, &e), 0);
  tt__config_warnings(&c, &w); /* no bus: nothing to say */
  assert_int_equal(w.len, 0);
  tt__config_free(&c);
  y = "bus: {type: redis}\npolicies:\n  - {type: errors}\n"
      "  - {type: rate_limit, traces_per_second: 9}\n";
  assert_int_equal(load(y, &c, &e), 0);
  tt__config_warnings(&c, &w);
  tt__buf_append(&w, "", 1);
  assert_non_null(strstr((const char *)w.data,
                         "test.yaml:4: policies[1]: warning: rate_limit (rate_limit) counts only"));
  tt__config_free(&c);
  tt__buf_free(&e);
  tt__buf_free(&w);
}

static void secrets_from_the_environment_should_never_be_echoed_in_errors(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  /* An API key put under the wrong key by mistake. */
  setenv("TT_TEST_SECRET", "sup3r-s3cret-k3y", 1);
  assert_int_equal(load("receivers: {otlp_grpc: {endpoint: \"${TT_TEST_SECRET}\"}}\n", &c, &e),
                   -EINVAL);
  assert_null(strstr((const char *)e.data, "sup3r-s3cret-k3y"));
  assert_non_null(strstr((const char *)e.data, "receivers.otlp_grpc.endpoint"));
  assert_non_null(strstr((const char *)e.data, "${TT_TEST_SECRET}"));
  tt__config_free(&c);
  tt__buf_free(&e);
}

static void header_values_the_transports_would_drop_should_be_refused(void **state) {
  (void)state;
  tt_config_t c;
  tt_buf_t e = TT_BUF_INIT;
  /* A key read from a file with its line break: sent, it would be dropped, and every request
   * would go out unauthenticated. */
  setenv("TT_TEST_API_KEY", "abc123\n", 1);
  const char *y = "exporters:\n  - name: hc\n    protocol: http/protobuf\n"
                  "    endpoint: https://api.honeycomb.io\n"
                  "    headers: {x-honeycomb-team: \"${TT_TEST_API_KEY}\"}\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "header x-honeycomb-team: the value has a control"));
  assert_null(strstr((const char *)e.data, "abc123"));
  tt__config_free(&c);
  y = "exporters:\n  - name: hc\n    protocol: http/protobuf\n"
      "    endpoint: https://api.honeycomb.io\n    headers: {Authorization: \"Bearer x\"}\n";
  assert_int_equal(load(y, &c, &e), -EINVAL);
  assert_non_null(strstr((const char *)e.data, "header names must be lowercase tokens"));
  tt__config_free(&c);
  setenv("TT_TEST_API_KEY", "abc123", 1);
  y = "exporters:\n  - name: hc\n    protocol: http/protobuf\n"
      "    endpoint: https://api.honeycomb.io\n"
      "    headers: {x-honeycomb-team: \"${TT_TEST_API_KEY}\", authorization: \"Bearer a b\"}\n";
  assert_int_equal(load(y, &c, &e), 0);
  tt__config_free(&c);
  tt__buf_free(&e);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_should_work_with_no_file),
      cmocka_unit_test(empty_file_should_give_the_defaults),
      cmocka_unit_test(values_should_parse_with_units),
      cmocka_unit_test(env_references_should_expand),
      cmocka_unit_test(errors_should_name_file_line_and_key),
      cmocka_unit_test(a_key_set_twice_should_be_refused_where_it_repeats),
      cmocka_unit_test(yaml_syntax_errors_should_name_the_line),
      cmocka_unit_test(policies_should_parse_in_order),
      cmocka_unit_test(bad_policies_should_be_refused_with_their_index),
      cmocka_unit_test(exporter_spool_mode_should_default_to_on_failure_and_accept_always),
      cmocka_unit_test(exporter_spool_mode_errors_should_name_file_line_and_key),
      cmocka_unit_test(
          exporter_spool_budget_below_two_requests_should_be_refused_naming_file_line_and_key),
      cmocka_unit_test(max_request_size_should_default_to_4mib_and_refuse_under_64kib),
      cmocka_unit_test(describe_should_list_every_key),
      cmocka_unit_test(shipped_config_should_equal_the_defaults),
      cmocka_unit_test(docs_should_list_every_key_with_its_default),
      cmocka_unit_test(validate_should_report_problems_and_exit_nonzero),
      cmocka_unit_test(bus_keys_should_load_and_bad_endpoints_be_refused_with_file_line_and_key),
      cmocka_unit_test(validate_should_warn_that_rate_limit_does_not_agree_across_a_bus),
      cmocka_unit_test(bus_tls_keys_should_load_with_the_password_from_the_environment),
      cmocka_unit_test(a_bus_certificate_without_its_key_should_be_refused_with_file_line_and_key),
      cmocka_unit_test(secrets_from_the_environment_should_never_be_echoed_in_errors),
      cmocka_unit_test(header_values_the_transports_would_drop_should_be_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
