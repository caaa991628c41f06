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

static void tracestate_should_reject_invalid_keys(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("Rojo=1", out, sizeof out), TT_EPARSE); /* uppercase */
  assert_int_equal(ts("1abc=1", out, sizeof out), TT_EPARSE); /* simple key starts with digit */
  assert_int_equal(ts("a@=1", out, sizeof out), TT_EPARSE);   /* empty system id */
  assert_int_equal(ts("a@sys-too-long-id=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a b=1", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("=1", out, sizeof out), TT_EPARSE);
}

static void tracestate_should_reject_invalid_values(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("a=", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a=b=c", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a=\x7f", out, sizeof out), TT_EPARSE);
  assert_int_equal(ts("a", out, sizeof out), TT_EPARSE);
}

static void tracestate_should_reject_duplicate_keys(void **state) {
  (void)state;
  char out[600];
  assert_int_equal(ts("a=1,b=2,a=3", out, sizeof out), TT_EPARSE);
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
      cmocka_unit_test(tracestate_should_reject_invalid_keys),
      cmocka_unit_test(tracestate_should_reject_invalid_values),
      cmocka_unit_test(tracestate_should_reject_duplicate_keys),
      cmocka_unit_test(tracestate_should_reject_more_than_32_members),
      cmocka_unit_test(tracestate_should_drop_long_members_first_beyond_512_chars),
      cmocka_unit_test(tracestate_should_accept_empty_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
