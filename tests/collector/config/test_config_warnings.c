/* What a valid configuration sets that works but probably not as meant is said, never refused,
 * as "FILE:LINE: KEY: warning: message": an empty policy list, a policy after one that decides
 * every trace, two policies with one name, an exporter header that expands to nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* Loads yaml, which must be accepted, and returns its warnings (a static buffer). */
static const char *warnings(const char *yaml) {
  static tt_buf_t w = TT_BUF_INIT;
  tt_buf_t e = TT_BUF_INIT;
  tt_config_t c;
  int rc = tt__config_load_string(yaml, strlen(yaml), "w.yaml", &c, &e);
  tt__buf_append(&e, "", 1);
  if (rc != 0)
    fail_msg("refused:\n%s", (const char *)e.data);
  tt__buf_free(&e);
  tt__buf_reset(&w);
  tt__config_warnings(&c, &w);
  tt__config_free(&c);
  tt__buf_append(&w, "", 1);
  return (const char *)w.data;
}

static void has(const char *text, const char *want) {
  if (strstr(text, want) == NULL)
    fail_msg("missing \"%s\" in:\n%s", want, text);
}

static void an_empty_policy_list_should_warn_that_every_trace_is_dropped(void **state) {
  (void)state;
  has(warnings("workers: 1\npolicies: []\n"),
      "w.yaml:2: policies: warning: the list is empty: no policy matches, so every trace is "
      "dropped");
}

static void a_keep_policy_after_a_chance_policy_should_warn_that_it_is_never_reached(void **state) {
  (void)state;
  const char *s = warnings("policies:\n"
                           "  - {type: ratio, ratio: 0.1}\n"
                           "  - {type: errors}\n"
                           "  - name: vip\n    type: attribute\n    key: tier\n    value: gold\n");
  has(s, "w.yaml:3: policies[1]: warning: errors (errors) is never reached: policies[0] (ratio, "
         "line 2) is a ratio policy");
  has(s, "w.yaml:4: policies[2]: warning: vip (attribute) is never reached");
  s = warnings("policies:\n  - {type: latency, threshold: 1s}\n"
               "  - {type: rate_limit, traces_per_second: 5}\n  - {type: errors}\n");
  has(s, "w.yaml:4: policies[2]: warning: errors (errors) is never reached: policies[1] "
         "(rate_limit, line 3) is a rate_limit policy");
}

static void two_policies_with_one_name_should_warn_at_the_second(void **state) {
  (void)state;
  /* The name defaults to the type, so two unnamed policies of one type collide too. */
  const char *s = warnings("policies:\n"
                           "  - {type: latency, threshold: 1s}\n"
                           "  - {type: latency, services: {db: 100ms}}\n"
                           "  - {name: slow, type: errors}\n"
                           "  - {name: slow, type: latency, threshold: 5s}\n");
  has(s, "w.yaml:3: policies[1]: warning: the name \"latency\" is also policies[0]'s (line 2)");
  has(s, "w.yaml:5: policies[3]: warning: the name \"slow\" is also policies[2]'s (line 4)");
}

static void an_exporter_header_that_expands_to_nothing_should_warn(void **state) {
  (void)state;
  setenv("TT_TEST_EMPTY_KEY", "", 1);
  const char *s = warnings("sink: {type: none}\n"
                           "exporters:\n"
                           "  - name: hc\n"
                           "    endpoint: api.honeycomb.io:443\n"
                           "    headers:\n"
                           "      x-honeycomb-team: ${TT_TEST_EMPTY_KEY}\n");
  has(s, "w.yaml:6: exporters[0].headers: warning: header x-honeycomb-team is empty: "
         "${TT_TEST_EMPTY_KEY} expands to nothing");
  s = warnings("exporters:\n  - name: b\n    endpoint: \"h:1\"\n    headers: {x-key: \"\"}\n");
  has(s, "w.yaml:4: exporters[0].headers: warning: header x-key is empty");
}

static void a_well_ordered_policy_list_should_warn_of_nothing(void **state) {
  (void)state;
  setenv("TT_TEST_FULL_KEY", "k", 1);
  const char *s = warnings("policies:\n"
                           "  - {name: drop-health, type: attribute, key: r, value: /h, "
                           "action: drop}\n"
                           "  - {type: errors}\n"
                           "  - {type: latency, threshold: 2s}\n"
                           "  - {type: rate_limit, traces_per_second: 50}\n"
                           "exporters:\n  - {name: a, endpoint: \"h:1\", headers: {x-k: "
                           "\"${TT_TEST_FULL_KEY}\"}}\n");
  assert_string_equal(s, "");
  /* The built-in policies (no policies: key) say nothing either. */
  assert_string_equal(warnings("workers: 2\n"), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(an_empty_policy_list_should_warn_that_every_trace_is_dropped),
      cmocka_unit_test(a_keep_policy_after_a_chance_policy_should_warn_that_it_is_never_reached),
      cmocka_unit_test(two_policies_with_one_name_should_warn_at_the_second),
      cmocka_unit_test(an_exporter_header_that_expands_to_nothing_should_warn),
      cmocka_unit_test(a_well_ordered_policy_list_should_warn_of_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
