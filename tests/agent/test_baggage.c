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

static const char *value_of(const char *header, const char *key, size_t *len) {
  static tt_baggage_t b;
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_parse(&b, header, strlen(header)), 0);
  return tt_baggage_get(&b, key, len);
}

#define assert_value(header, key, expected)                                                        \
  do {                                                                                             \
    size_t len_;                                                                                   \
    const char *v_ = value_of((header), (key), &len_);                                             \
    assert_non_null(v_);                                                                           \
    assert_int_equal(len_, sizeof(expected) - 1);                                                  \
    assert_memory_equal(v_, (expected), sizeof(expected) - 1);                                     \
  } while (0)

/* W3C Baggage: "percent-encoded octet sequences that do not match the UTF-8 encoding scheme MUST
 * be replaced with the replacement code point (U+FFFD)". One U+FFFD per maximal ill-formed
 * subpart (Unicode's and WHATWG's rule), the byte that broke a sequence read again. */
#define FFFD "\xEF\xBF\xBD"
static void baggage_should_replace_percent_encoded_bytes_that_are_not_utf8(void **state) {
  (void)state;
  assert_value("k=a%FFb", "k", "a" FFFD "b");
  assert_value("k=%C3%A9t%C3%A9", "k", "\xC3\xA9t\xC3\xA9"); /* valid UTF-8 stays */
  assert_value("k=%F0%9F%98%80", "k", "\xF0\x9F\x98\x80");
  assert_value("k=%C3", "k", FFFD);                         /* cut off at the end */
  assert_value("k=%E2%82x", "k", FFFD "x");                 /* cut off: one U+FFFD, then x */
  assert_value("k=%E2%82%C3%A9", "k", FFFD "\xC3\xA9");     /* the breaking byte starts anew */
  assert_value("k=%C0%AF", "k", FFFD FFFD);                 /* overlong */
  assert_value("k=%E0%80%AF", "k", FFFD FFFD FFFD);         /* overlong three-byte form */
  assert_value("k=%ED%A0%80", "k", FFFD FFFD FFFD);         /* a surrogate */
  assert_value("k=%F4%90%80%80", "k", FFFD FFFD FFFD FFFD); /* past U+10FFFF */
  assert_value("k=%80", "k", FFFD);                         /* a lone continuation byte */
  assert_value("k=%F5x", "k", FFFD "x");
  /* The replaced value travels on as valid UTF-8, percent-encoded. */
  static tt_baggage_t b;
  tt_baggage_init(&b);
  assert_int_equal(tt_baggage_parse(&b, "k=a%FFb", 7), 0);
  char out[64];
  assert_true(tt_baggage_format(&b, out, sizeof out) > 0);
  assert_string_equal(out, "k=a%EF%BF%BDb");
}

/* The W3C grammar case by case: OWS around keys, values and properties; "=" inside a value;
 * empty values; properties with and without values; a stray "%" makes the member invalid. */
static void baggage_should_follow_the_w3c_grammar(void **state) {
  (void)state;
  assert_value(" \tk \t= \tv \t", "k", "v");
  assert_value("k=a=b==", "k", "a=b==");
  assert_value("k=", "k", "");
  assert_value("k=v ; p1 ; p2 = x ;p3=", "k", "v");
  assert_value("k=%2525", "k", "%25");
  assert_value("k=a+b", "k", "a+b"); /* "+" is not a space: RFC 3986 percent-decoding */
  static tt_baggage_t b;
  tt_baggage_init(&b);
  const char *h = "a=1%,b=%4,c=%G0,d=\xC3\xA9,e=x y,f=2";
  assert_int_equal(tt_baggage_parse(&b, h, strlen(h)), 5);
  assert_int_equal(b.count, 1);
  assert_non_null(tt_baggage_get(&b, "f", NULL));
}

/* The specification's limits are minimums: 64 members and 8192 bytes must be propagated. */
static void baggage_should_keep_64_members_within_8192_bytes(void **state) {
  (void)state;
  static tt_baggage_t b;
  static char h[8300];
  tt_baggage_init(&b);
  size_t o = 0;
  for (int i = 0; i < 64; i++) {
    char v[120];
    memset(v, 'a' + i % 26, 115);
    v[115] = '\0';
    o += (size_t)snprintf(h + o, sizeof h - o, "%sk%02d=%s", i ? "," : "", i, v);
  }
  assert_true(o <= 8192);
  assert_int_equal(tt_baggage_parse(&b, h, o), 0);
  assert_int_equal(b.count, 64);
  static char out[8300];
  test_carrier_t *c = calloc(1, sizeof *c);
  assert_int_equal(tt_inject(NULL, &b, test_carrier_set, c), 0);
  assert_string_equal(test_carrier_get(c, "baggage"), h);
  free(c);
  assert_int_equal(tt_baggage_format(&b, out, sizeof out), (int)o);
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
      cmocka_unit_test(baggage_should_replace_percent_encoded_bytes_that_are_not_utf8),
      cmocka_unit_test(baggage_should_follow_the_w3c_grammar),
      cmocka_unit_test(baggage_should_keep_64_members_within_8192_bytes),
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
