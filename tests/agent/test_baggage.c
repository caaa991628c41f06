/* W3C baggage parsing, encoding and the fixed-capacity set. */
#include "tt_test_util.h"

static void baggage_should_parse_and_percent_decode(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  const char *h = "userId=alice, serverNode = DF%2028 ,isProduction=false;p=1";
  assert_int_equal(tt_baggage_parse(&b, h, strlen(h)), 0);
  size_t len;
  const char *v = tt_baggage_get(&b, "userId", &len);
  assert_int_equal(len, 5);
  assert_memory_equal(v, "alice", 5);
  v = tt_baggage_get(&b, "serverNode", &len);
  assert_int_equal(len, 5);
  assert_memory_equal(v, "DF 28", 5);
  v = tt_baggage_get(&b, "isProduction", &len);
  assert_memory_equal(v, "false", 5);
  assert_int_equal(b.count, 3);
}

static void baggage_should_skip_invalid_members_only(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  const char *h = "good=1,no-equals,bad key=2,pct=%zz,quote=a\"b,also=ok";
  assert_int_equal(tt_baggage_parse(&b, h, strlen(h)), 4);
  assert_int_equal(b.count, 2);
  assert_non_null(tt_baggage_get(&b, "good", NULL));
  assert_non_null(tt_baggage_get(&b, "also", NULL));
}

static void baggage_should_replace_existing_key(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_set(&b, "a", "1", NULL), 0);
  assert_int_equal(tt_baggage_set(&b, "b", "2", NULL), 0);
  assert_int_equal(tt_baggage_set(&b, "a", "three", NULL), 0);
  size_t len;
  const char *v = tt_baggage_get(&b, "a", &len);
  assert_int_equal(len, 5);
  assert_memory_equal(v, "three", 5);
  assert_int_equal(b.count, 2);
  assert_int_equal(tt_baggage_remove(&b, "b"), 0);
  assert_null(tt_baggage_get(&b, "b", NULL));
  assert_int_equal(tt_baggage_remove(&b, "b"), TT_ENOTFOUND);
  v = tt_baggage_get(&b, "a", &len);
  assert_memory_equal(v, "three", 5);
}

static void baggage_should_reject_invalid_key_on_set(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_set(&b, "bad key", "1", NULL), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "", "1", NULL), TT_EINVAL);
}

static void baggage_should_format_with_percent_encoding_and_round_trip(void **state) {
  (void)state;
  static tt_baggage_t b, c;
  tt_baggage_init(&b);
  tt_baggage_set(&b, "k", "a b,c;d%e\"", NULL);
  tt_baggage_set(&b, "m", "v", "prop=1");
  char out[256];
  int n = tt_baggage_format(&b, out, sizeof out);
  assert_true(n > 0);
  assert_string_equal(out, "k=a%20b%2Cc%3Bd%25e%22,m=v;prop=1");
  tt_baggage_init(&c);
  assert_int_equal(tt_baggage_parse(&c, out, (size_t)n), 0);
  size_t len;
  const char *v = tt_baggage_get(&c, "k", &len);
  assert_int_equal(len, strlen("a b,c;d%e\""));
  assert_memory_equal(v, "a b,c;d%e\"", len);
}

static void baggage_should_stop_at_entry_limit(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  static char h[8192];
  size_t o = 0;
  for (int i = 0; i < 200; i++)
    o += (size_t)snprintf(h + o, sizeof h - o, "%sk%d=v", i ? "," : "", i);
  assert_true(tt_baggage_parse(&b, h, o) >= 0);
  assert_int_equal(b.count, TT_BAGGAGE_MAX_ENTRIES);
  assert_int_equal(tt_baggage_set(&b, "one_more", "v", NULL), TT_ENOSPC);
}

static void baggage_format_should_report_small_buffer(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  tt_baggage_set(&b, "key", "value", NULL);
  char out[4];
  assert_int_equal(tt_baggage_format(&b, out, sizeof out), TT_ENOSPC);
}

static void baggage_set_that_does_not_fit_should_keep_the_entry_it_would_replace(void **state) {
  (void)state;
  static tt_baggage_t b;
  static char big[TT_BAGGAGE_MAX_BYTES];
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_set(&b, "a", "1", NULL), 0);
  assert_int_equal(tt_baggage_set(&b, "b", "2", NULL), 0);
  /* A value of the whole capacity cannot fit even with "a" freed ("a" + "b" + "2" stay). */
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  assert_int_equal(tt_baggage_set(&b, "a", big, NULL), TT_ENOSPC);
  size_t len;
  const char *v = tt_baggage_get(&b, "a", &len);
  assert_non_null(v);
  assert_int_equal(len, 1);
  assert_memory_equal(v, "1", 1);
  assert_int_equal(b.count, 2);
  char out[64];
  assert_true(tt_baggage_format(&b, out, sizeof out) > 0);
  assert_string_equal(out, "a=1,b=2");
  /* With the buffer exactly full, a same-size replacement still fits: the old entry's bytes count
   * as free. */
  big[TT_BAGGAGE_MAX_BYTES - 4] = '\0'; /* "a" "1" "b" "2" + "c" take the other 5 bytes */
  assert_int_equal(tt_baggage_set(&b, "c", big + 1, NULL), 0);
  assert_int_equal(tt_baggage_set(&b, "c", big + 1, NULL), 0);
  assert_int_equal(b.count, 3);
}

static void baggage_set_should_reject_metadata_that_is_not_w3c_properties(void **state) {
  (void)state;
  static tt_baggage_t b, c;
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_set(&b, "k", "v", NULL), 0);
  /* The ',' would otherwise make a second member, role=admin, on the receiving side. */
  assert_int_equal(tt_baggage_set(&b, "k", "p,role=admin", NULL), 0);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "p,role=admin"), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "bad key=1"), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "p=a\"b"), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "p=1;;q"), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "=1"), TT_EINVAL);
  assert_int_equal(tt_baggage_set(&b, "u", "v", "p\r\nx-admin: 1"), TT_EINVAL);
  assert_null(tt_baggage_get(&b, "u", NULL));
  assert_int_equal(b.count, 1);
  char out[256];
  int n = tt_baggage_format(&b, out, sizeof out);
  assert_true(n > 0);
  tt_baggage_init(&c);
  assert_int_equal(tt_baggage_parse(&c, out, (size_t)n), 0);
  assert_null(tt_baggage_get(&c, "role", NULL));
  assert_int_equal(c.count, 1);
  /* Well-formed properties, with optional whitespace, are kept as given. */
  assert_int_equal(tt_baggage_set(&b, "m", "v", "p=1;flag ; q = %41"), 0);
  n = tt_baggage_format(&b, out, sizeof out);
  assert_string_equal(out, "k=p%2Crole=admin,m=v;p=1;flag ; q = %41");
}

static void baggage_parse_should_skip_members_whose_properties_are_malformed(void **state) {
  (void)state;
  static tt_baggage_t b;
  tt_baggage_init(&b);
  const char *h = "a=1;p=x y,b=2;p=1;flag,c=3;;q,d=4;";
  assert_int_equal(tt_baggage_parse(&b, h, strlen(h)), 2);
  assert_null(tt_baggage_get(&b, "a", NULL));
  assert_non_null(tt_baggage_get(&b, "b", NULL));
  assert_null(tt_baggage_get(&b, "c", NULL));
  assert_non_null(tt_baggage_get(&b, "d", NULL)); /* an empty property list is tolerated */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(baggage_should_parse_and_percent_decode),
      cmocka_unit_test(baggage_should_skip_invalid_members_only),
      cmocka_unit_test(baggage_should_replace_existing_key),
      cmocka_unit_test(baggage_should_reject_invalid_key_on_set),
      cmocka_unit_test(baggage_should_format_with_percent_encoding_and_round_trip),
      cmocka_unit_test(baggage_should_stop_at_entry_limit),
      cmocka_unit_test(baggage_format_should_report_small_buffer),
      cmocka_unit_test(baggage_set_that_does_not_fit_should_keep_the_entry_it_would_replace),
      cmocka_unit_test(baggage_set_should_reject_metadata_that_is_not_w3c_properties),
      cmocka_unit_test(baggage_parse_should_skip_members_whose_properties_are_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
