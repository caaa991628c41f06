/* W3C tracestate validation, normalisation and limits. */
#include "tt_test_util.h"

static int ts(const char *in, char *out, size_t cap) {
  return tt_tracestate_parse(in, strlen(in), out, cap);
}

static void tracestate_should_normalise_whitespace_and_empty_members(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts(" rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t,", out, sizeof out), 39);
  assert_string_equal(out, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

static void tracestate_should_accept_multi_tenant_keys(void **state) {
  (void)state;
  char out[600];
  assert_true(ts("fw529a3039@dt=abc,1tenant@sys=x", out, sizeof out) > 0);
  assert_string_equal(out, "fw529a3039@dt=abc,1tenant@sys=x");
}

/* W3C Trace Context Level 2: key = (lcalpha / DIGIT) 0*255(keychar), "@" being a keychar. The
 * cases are the W3C test suite's (test_tracestate_key_illegal_vendor_format and
 * test_tracestate_key_length_limit). */
static void tracestate_should_accept_level_2_keys(void **state) {
  (void)state;
  char out[1200];
  assert_true(ts("foo@=1,bar=2", out, sizeof out) > 0);
  assert_string_equal(out, "foo@=1,bar=2");
  assert_true(ts("foo@@bar=1,bar=2", out, sizeof out) > 0);
  assert_string_equal(out, "foo@@bar=1,bar=2");
  assert_true(ts("foo@bar@baz=1,bar=2", out, sizeof out) > 0);
  assert_string_equal(out, "foo@bar@baz=1,bar=2");
  assert_true(ts("1foo=1", out, sizeof out) > 0); /* a digit may start any key */
  assert_string_equal(out, "1foo=1");
  assert_true(ts("a/b*c_d-e=1", out, sizeof out) > 0);

  char key[300], in[600];
  memset(key, 't', 242); /* a tenant part of 242: Level 1's limit was 241 */
  memcpy(key + 242, "@v", 3);
  snprintf(in, sizeof in, "foo=1,%s=1", key);
  assert_true(ts(in, out, sizeof out) > 0);
  assert_string_equal(out, in);
  memcpy(key, "t@", 2);
  memset(key + 2, 'v', 15); /* a system part of 15: Level 1's limit was 14 */
  key[17] = '\0';
  snprintf(in, sizeof in, "foo=1,%s=1", key);
  assert_true(ts(in, out, sizeof out) > 0);
  assert_string_equal(out, in);
}

static void tracestate_key_should_be_at_most_256_characters(void **state) {
  (void)state;
  char key[300], in[600], out[600];
  memset(key, 'z', 256);
  key[256] = '\0';
  snprintf(in, sizeof in, "foo=1,%s=1", key);
  assert_true(ts(in, out, sizeof out) > 0);
  assert_string_equal(out, in);
  memset(key, 'z', 257);
  key[257] = '\0';
  snprintf(in, sizeof in, "foo=1,%s=1", key);
  assert_int_equal(ts(in, out, sizeof out), TT_EPARSE);
}

static void tracestate_should_reject_invalid_keys(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("Rojo=1", out, sizeof out), TT_EPARSE);       /* uppercase */
  assert_int_equal(ts("@foo=1,bar=2", out, sizeof out), TT_EPARSE); /* "@" cannot start a key */
  assert_int_equal(ts("_a=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("foo.bar=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("foo =1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a b=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("t`x=1", out, sizeof out), TT_EPARSE);
}

static void tracestate_should_reject_invalid_values(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("a=", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("foo=,bar=3", out, sizeof out), TT_EPARSE); /* the W3C suite's case */
  assert_int_equal(ts("a=b=c", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a=\x7f", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a=b\tc", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a", out, sizeof out), TT_EPARSE);
}

static void tracestate_value_should_keep_leading_spaces_and_allow_256_characters(void **state) {
  (void)state;
  char v[300], in[600], out[600];
  assert_true(ts("a=  x y", out, sizeof out) > 0);
  assert_string_equal(out, "a=  x y");
  memset(v, 'x', 256);
  v[256] = '\0';
  snprintf(in, sizeof in, "a=%s", v);
  assert_true(ts(in, out, sizeof out) > 0);
  v[256] = 'x';
  v[257] = '\0';
  snprintf(in, sizeof in, "a=%s", v);
  assert_int_equal(ts(in, out, sizeof out), TT_EPARSE);
}

/* The specification lets a vendor drop duplicates it did not generate; the left-most is the
 * latest (an updated member moves left), so later ones go and every other member stays. */
static void tracestate_should_keep_the_first_of_duplicate_keys_and_the_other_members(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("foo=1,foo=1", out, sizeof out), 5);
  assert_string_equal(out, "foo=1");
  assert_true(ts("foo=1,foo=2", out, sizeof out) > 0);
  assert_string_equal(out, "foo=1");
  assert_true(ts("a=1,foo=1,b=2,foo=2", out, sizeof out) > 0);
  assert_string_equal(out, "a=1,foo=1,b=2");
  /* Two tracestate header fields joined with "," by the carrier, as RFC 9110 asks. */
  assert_true(ts("foo=1,bar=2,foo=1", out, sizeof out) > 0);
  assert_string_equal(out, "foo=1,bar=2");
}

static void tracestate_should_reject_more_than_32_members(void **state) {
  (void)state;
  char in[1024], out[1024];
  size_t o = 0;
  for (int i = 0; i < 33; i++)
    o += (size_t)snprintf(in + o, sizeof in - o, "%sk%d=v", i ? "," : "", i);
  assert_int_equal(ts(in, out, sizeof out), TT_EPARSE);
  /* 32 is fine. */
  in[strlen(in) - strlen(",k32=v")] = '\0';
  assert_true(ts(in, out, sizeof out) > 0);
  assert_string_equal(out, in);
  /* Empty members are not members. */
  char in2[1100];
  snprintf(in2, sizeof in2, ",, %s ,\t,", in);
  assert_true(ts(in2, out, sizeof out) > 0);
  assert_string_equal(out, in);
}

static void tracestate_should_drop_long_members_first_beyond_512_chars(void **state) {
  (void)state;
  char in[2048], out[2048], big[200];
  memset(big, 'x', 150);
  big[150] = '\0';
  /* Five 105-char members (525 chars) plus one 152-char member: over 512 in total. */
  size_t o = 0;
  o += (size_t)snprintf(in + o, sizeof in - o, "big=%s", big);
  for (int i = 0; i < 4; i++) {
    char v[101];
    memset(v, 'a' + i, 100);
    v[100] = '\0';
    o += (size_t)snprintf(in + o, sizeof in - o, ",k%d=%s", i, v);
  }
  int n = ts(in, out, sizeof out);
  assert_true(n > 0 && n <= TT_TRACESTATE_MAX_LEN);
  assert_null(strstr(out, "big="));
  assert_non_null(strstr(out, "k0="));
  assert_non_null(strstr(out, "k3="));
}

static void tracestate_should_accept_empty_header(void **state) {
  (void)state;
  char out[8];
  assert_int_equal(ts("", out, sizeof out), 0);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(tracestate_should_normalise_whitespace_and_empty_members),
      cmocka_unit_test(tracestate_should_accept_multi_tenant_keys),
      cmocka_unit_test(tracestate_should_accept_level_2_keys),
      cmocka_unit_test(tracestate_key_should_be_at_most_256_characters),
      cmocka_unit_test(tracestate_should_reject_invalid_keys),
      cmocka_unit_test(tracestate_should_reject_invalid_values),
      cmocka_unit_test(tracestate_value_should_keep_leading_spaces_and_allow_256_characters),
      cmocka_unit_test(tracestate_should_keep_the_first_of_duplicate_keys_and_the_other_members),
      cmocka_unit_test(tracestate_should_reject_more_than_32_members),
      cmocka_unit_test(tracestate_should_drop_long_members_first_beyond_512_chars),
      cmocka_unit_test(tracestate_should_accept_empty_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
