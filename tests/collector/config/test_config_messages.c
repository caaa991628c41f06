/* Configuration messages read the same in every section: FILE:LINE: KEY: then what was expected,
 * the refused value and examples; enums list their values; an unknown key near a known one
 * offers it ("did you mean"). */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* Loads yaml and returns the error text (a static buffer), asserting that it was refused. */
static const char *refused(const char *yaml) {
  static tt_buf_t e = TT_BUF_INIT;
  tt_config_t c;
  tt__buf_reset(&e);
  int rc = tt__config_load_string(yaml, strlen(yaml), "m.yaml", &c, &e);
  tt__config_free(&c);
  tt__buf_append(&e, "", 1);
  assert_int_equal(rc, -EINVAL);
  return (const char *)e.data;
}

static void has(const char *text, const char *want) {
  if (strstr(text, want) == NULL)
    fail_msg("missing \"%s\" in:\n%s", want, text);
}

static void lacks(const char *text, const char *unwanted) {
  if (strstr(text, unwanted) != NULL)
    fail_msg("unexpected \"%s\" in:\n%s", unwanted, text);
}

static void a_bad_duration_should_read_the_same_at_top_level_and_in_a_policy(void **state) {
  (void)state;
  const char *want = "expected a duration, got \"1 sec\" (e.g. 500ms, 2s, 5m; a bare number is ms)";
  const char *s = refused("decision:\n  root_grace: 1 sec\n");
  has(s, "m.yaml:2: decision.root_grace: ");
  has(s, want);
  s = refused("policies:\n  - type: latency\n    threshold: 1 sec\n");
  has(s, "m.yaml:3: policies[0].threshold: ");
  has(s, want);
  s = refused("policies:\n  - type: latency\n    services:\n      checkout: 1 sec\n");
  has(s, "m.yaml:4: policies[0].services.checkout: ");
  has(s, want);
  s = refused("exporters:\n  - {name: a, endpoint: \"h:1\", timeout: 1 sec}\n");
  has(s, "m.yaml:2: exporters[0].timeout: ");
  has(s, want);
  /* The refusal is the only message: no "needs a threshold" echo of the same mistake. */
  s = refused("policies:\n  - type: latency\n    threshold: 1 sec\n");
  lacks(s, "needs");
}

static void a_bad_size_or_number_should_name_the_value_and_give_examples(void **state) {
  (void)state;
  const char *s = refused("memory:\n  budget: lots\n");
  has(s, "m.yaml:2: memory.budget: expected a size, got \"lots\" (e.g. 4096, 64KiB, 256MiB");
  s = refused("memory:\n  budget: 12\n");
  has(s, "m.yaml:2: memory.budget: must be at least 1MiB, got \"12\"");
  s = refused("workers: many\n");
  has(s, "m.yaml:1: workers: expected an integer, got \"many\" (e.g.");
  s = refused("admin: {enabled: maybe}\n");
  has(s, "m.yaml:1: admin.enabled: expected a bool, got \"maybe\" (true/false, yes/no, on/off)");
  s = refused("policies:\n  - {type: rate_limit, traces_per_second: -3}\n");
  has(s, "m.yaml:2: policies[0].traces_per_second: expected a number greater than zero, got "
         "\"-3\" (e.g. 50");
  s = refused("policies:\n  - {type: errors, http_5xx: sometimes}\n");
  has(s, "m.yaml:2: policies[0].http_5xx: expected a bool, got \"sometimes\"");
  s = refused("policies:\n  - {type: attribute, key: a, op: range, min: low}\n");
  has(s, "m.yaml:2: policies[0].min: expected a number, got \"low\" (e.g.");
}

static void an_enum_error_should_list_every_allowed_value(void **state) {
  (void)state;
  has(refused("log:\n  level: verbose\n"),
      "m.yaml:2: log.level: must be \"debug\", \"info\", \"warn\", \"error\" or \"off\", got "
      "\"verbose\"");
  has(refused("sink: {type: files}\n"),
      "m.yaml:1: sink.type: must be \"file\", \"null\" or \"none\", got \"files\"");
  has(refused("policies:\n  - {type: magic}\n"),
      "m.yaml:2: policies[0].type: must be \"errors\", \"latency\", \"attribute\", \"rate_limit\" "
      "or \"ratio\", got \"magic\"");
  has(refused("policies:\n  - {type: attribute, key: a, op: regexp, value: x}\n"),
      "m.yaml:2: policies[0].op: must be \"equals\", \"regex\", \"range\" or \"exists\", got "
      "\"regexp\"");
  has(refused("policies:\n  - {type: latency, threshold: 1s, measure: span}\n"),
      "policies[0].measure: must be \"trace\" or \"root\", got \"span\"");
  has(refused("policies:\n  - {type: attribute, key: a, value: b, in: trace}\n"),
      "policies[0].in: must be \"any\", \"span\" or \"resource\", got \"trace\"");
  has(refused("policies:\n  - {type: attribute, key: a, value: b, action: sample}\n"),
      "policies[0].action: must be \"keep\" or \"drop\", got \"sample\"");
  has(refused("exporters:\n  - {name: a, endpoint: \"h:1\", protocol: http}\n"),
      "m.yaml:2: exporters[0].protocol: must be \"grpc\" or \"http/protobuf\", got \"http\"");
}

static void an_unknown_key_near_a_known_one_should_offer_it(void **state) {
  (void)state;
  has(refused("decision:\n  idle_timout: 5s\n"),
      "m.yaml:2: decision.idle_timout: unknown key; did you mean \"decision.idle_timeout\"?");
  /* A transposition is one slip. */
  has(refused("decision:\n  root_garce: 5s\n"), "did you mean \"decision.root_grace\"?");
  /* A misspelt section is offered the section. */
  has(refused("decison:\n  tick: 1ms\n"), "m.yaml:1: decison: unknown key; did you mean "
                                          "\"decision\"?");
  has(refused("polices:\n  - {type: errors}\n"), "did you mean \"policies\"?");
  has(refused("policies:\n  - {type: attribute, key: a, value: b, acton: keep}\n"),
      "m.yaml:2: policies[0].acton: unknown key for a policy of type attribute; did you mean "
      "\"action\"?");
  has(refused("exporters:\n  - {name: a, endpoint: \"h:1\", spool: {dri: /tmp/x}}\n"),
      "m.yaml:2: exporters[0].spool.dri: unknown key of an exporter; did you mean "
      "\"spool.dir\"?");
}

static void an_unknown_key_far_from_every_known_one_should_offer_nothing(void **state) {
  (void)state;
  const char *s = refused("decision:\n  colour: blue\n");
  has(s, "m.yaml:2: decision.colour: unknown key");
  lacks(s, "did you mean");
  s = refused("policies:\n  - {type: errors, threshold: 1s}\n");
  has(s, "policies[0].threshold: unknown key for a policy of type errors");
  lacks(s, "did you mean");
}

static void an_exporter_error_should_name_the_key_it_is_about(void **state) {
  (void)state;
  const char *s = refused("exporters:\n  - {protocol: grpc}\n");
  has(s, "m.yaml:2: exporters[0].name: required");
  has(s, "m.yaml:2: exporters[0].endpoint: required (e.g.");
  s = refused("exporters:\n  - name: a\n    protocol: http/protobuf\n    endpoint: \"h:4318\"\n");
  has(s, "m.yaml:4: exporters[0].endpoint: an http/protobuf endpoint is a URL");
  s = refused("exporters:\n  - {name: a, endpoint: \"h:1\"}\n  - name: a\n    endpoint: \"h:2\"\n");
  has(s, "m.yaml:3: exporters[1].name: \"a\" is also exporters[0]'s name");
}

static void a_secret_from_the_environment_should_not_be_echoed_in_a_policy_error(void **state) {
  (void)state;
  setenv("TT_TEST_MSG_SECRET", "hunter2-hunter2", 1);
  const char *s = refused("policies:\n  - {type: ratio, ratio: \"${TT_TEST_MSG_SECRET}\"}\n");
  has(s, "policies[0].ratio: expected a number from 0 to 1, got \"${TT_TEST_MSG_SECRET}\"");
  lacks(s, "hunter2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_bad_duration_should_read_the_same_at_top_level_and_in_a_policy),
      cmocka_unit_test(a_bad_size_or_number_should_name_the_value_and_give_examples),
      cmocka_unit_test(an_enum_error_should_list_every_allowed_value),
      cmocka_unit_test(an_unknown_key_near_a_known_one_should_offer_it),
      cmocka_unit_test(an_unknown_key_far_from_every_known_one_should_offer_nothing),
      cmocka_unit_test(an_exporter_error_should_name_the_key_it_is_about),
      cmocka_unit_test(a_secret_from_the_environment_should_not_be_echoed_in_a_policy_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
