/* W3C traceparent parsing and formatting, rule by rule. */
#include "tt_test_util.h"

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, tt_span_context_t *c) {
  return tt_traceparent_parse(s, strlen(s), c);
}

static void traceparent_should_parse_valid_version_00(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse(TP_OK, &c), 0);
  char t[33], s[17];
  tt_trace_id_hex(&c, t);
  tt_span_id_hex(&c, s);
  assert_string_equal(t, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_string_equal(s, "00f067aa0ba902b7");
  assert_int_equal(c.trace_flags, 1);
  assert_int_equal(c.is_remote, 1);
  assert_true(tt_span_context_is_sampled(&c));
}

static void traceparent_should_reject_uppercase_hex(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A", &c), TT_EPARSE);
  assert_int_equal(parse("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), TT_EPARSE);
}

static void traceparent_should_reject_version_ff(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), TT_EPARSE);
}

static void traceparent_should_reject_all_zero_ids(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", &c), TT_EPARSE);
  assert_false(tt_span_context_is_valid(&c));
}

static void traceparent_should_reject_wrong_length_for_version_00(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse(TP_OK "-extra", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("", &c), TT_EPARSE);
}

static void traceparent_should_reject_bad_separators_and_non_hex(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", &c), TT_EPARSE);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", &c), TT_EPARSE);
}

static void traceparent_should_accept_future_version_with_more_fields(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the", &c),
                   0);
  assert_int_equal(c.trace_flags, 1);
  assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
  /* After the 55 characters a later version must continue with a dash. */
  assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", &c),
                   TT_EPARSE);
}

static void traceparent_should_ignore_surrounding_whitespace(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse(" \t" TP_OK "\t ", &c), 0);
}

static void traceparent_should_keep_unknown_flag_bits(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", &c), 0);
  assert_int_equal(c.trace_flags, 0xff);
  assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
  assert_false(tt_span_context_is_sampled(&c));
}

static void traceparent_should_round_trip_through_format(void **state) {
  (void)state;
  tt_span_context_t c;
  assert_int_equal(parse(TP_OK, &c), 0);
  char out[56];
  tt_traceparent_format(&c, out);
  assert_string_equal(out, TP_OK);
}

static void traceparent_should_not_read_past_a_short_buffer(void **state) {
  (void)state;
  tt_span_context_t c;
  /* Length given explicitly: the parser must not look at the terminating NUL or beyond. */
  char *buf = malloc(54);
  memcpy(buf, TP_OK, 54);
  assert_int_equal(tt_traceparent_parse(buf, 54, &c), TT_EPARSE);
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(traceparent_should_parse_valid_version_00),
      cmocka_unit_test(traceparent_should_reject_uppercase_hex),
      cmocka_unit_test(traceparent_should_reject_version_ff),
      cmocka_unit_test(traceparent_should_reject_all_zero_ids),
      cmocka_unit_test(traceparent_should_reject_wrong_length_for_version_00),
      cmocka_unit_test(traceparent_should_reject_bad_separators_and_non_hex),
      cmocka_unit_test(traceparent_should_accept_future_version_with_more_fields),
      cmocka_unit_test(traceparent_should_ignore_surrounding_whitespace),
      cmocka_unit_test(traceparent_should_keep_unknown_flag_bits),
      cmocka_unit_test(traceparent_should_round_trip_through_format),
      cmocka_unit_test(traceparent_should_not_read_past_a_short_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
