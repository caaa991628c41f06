/* JSON log lines (collector/base/log.c) and refusal reports (collector/base/refusal.c): every
 * line written is checked with a strict JSON parser of its own, whatever the message, the
 * members or their size. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "refusal.h"

/* ---- a strict JSON checker (RFC 8259, no extensions) ---------------------------------------- */

static const char *ws(const char *p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

static const char *value(const char *p, int depth);

static const char *string(const char *p) {
  if (*p++ != '"')
    return NULL;
  while (*p != '"') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20)
      return NULL;
    if (c == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!strchr("0123456789abcdefABCDEF", p[i]) || p[i] == '\0')
            return NULL;
        p += 5;
        continue;
      }
      if (!strchr("\"\\/bfnrt", *p) || *p == '\0')
        return NULL;
    }
    p++;
  }
  return p + 1;
}

static const char *number(const char *p) {
  const char *s = p;
  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (*p >= '0' && *p <= '9')
      p++;
  else
    return NULL;
  if (*p == '.') {
    p++;
    if (!(*p >= '0' && *p <= '9'))
      return NULL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return p > s ? p : NULL;
}

static const char *composite(const char *p, int depth, char close, bool object) {
  p = ws(p + 1);
  if (*p == close)
    return p + 1;
  for (;;) {
    if (object) {
      p = string(p);
      if (p == NULL || *(p = ws(p)) != ':')
        return NULL;
      p = ws(p + 1);
    }
    p = value(p, depth + 1);
    if (p == NULL)
      return NULL;
    p = ws(p);
    if (*p == close)
      return p + 1;
    if (*p != ',')
      return NULL;
    p = ws(p + 1);
  }
}

static const char *value(const char *p, int depth) {
  if (depth > 32)
    return NULL;
  switch (*p) {
    case '{':
      return composite(p, depth, '}', true);
    case '[':
      return composite(p, depth, ']', false);
    case '"':
      return string(p);
    case 't':
      return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
      return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
      return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
      return number(p);
  }
}

/* One object per line, ending in a newline, nothing after it. */
static bool is_json_line(const char *line) {
  const char *end = value(line, 0);
  return line[0] == '{' && end != NULL && end[0] == '\n' && end[1] == '\0';
}

/* ---- capturing the log ---------------------------------------------------------------------- */

static int fds[2];

static int setup(void **state) {
  (void)state;
  if (pipe(fds) != 0)
    return -1;
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  tt__log_set_fd(fds[1]);
  tt__log_set_level(TT_LOG_DEBUG);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tt__log_set_fd(2);
  tt__log_set_level(TT_LOG_INFO);
  close(fds[0]);
  close(fds[1]);
  return 0;
}

/* Every line written since the last call, each checked to be JSON; returns how many. */
static int drain(char lines[][TT_LOG_LINE_MAX + 1], int max) {
  static char buf[1 << 16];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  int k = 0;
  for (char *p = buf, *nl; *p != '\0'; p = nl + 1) {
    nl = strchr(p, '\n');
    assert_non_null(nl);
    assert_true(k < max);
    size_t len = (size_t)(nl - p) + 1;
    assert_true(len <= TT_LOG_LINE_MAX);
    memcpy(lines[k], p, len);
    lines[k][len] = '\0';
    if (!is_json_line(lines[k]))
      fail_msg("not a JSON line: %s", lines[k]);
    k++;
  }
  return k;
}

static char got[16][TT_LOG_LINE_MAX + 1];

static void log_line_without_members_should_have_no_trailing_comma(void **state) {
  (void)state;
  TT_LOG(TT_LOG_ERROR, "SIGHUP: configuration refused; policies unchanged", "%s", "");
  TT_LOG(TT_LOG_INFO, "plain", "%s", "");
  assert_int_equal(drain(got, 16), 2);
  assert_non_null(
      strstr(got[0], "\"msg\":\"SIGHUP: configuration refused; policies unchanged\"}\n"));
  assert_non_null(strstr(got[0], "\"level\":\"error\""));
}

static void log_message_should_escape_quotes_backslashes_and_control_bytes(void **state) {
  (void)state;
  TT_LOG(TT_LOG_WARN, "a \"quoted\" \\path\\ with\ttab\nnewline\x01", "\"n\":%d", 7);
  assert_int_equal(drain(got, 16), 1);
  assert_non_null(
      strstr(got[0], "a \\\"quoted\\\" \\\\path\\\\ with\\u0009tab\\u000anewline\\u0001"));
  assert_non_null(strstr(got[0], ",\"n\":7}\n"));
}

static void log_str_should_make_any_text_safe_inside_a_member(void **state) {
  (void)state;
  char esc[64];
  TT_LOG(TT_LOG_ERROR, "cannot open", "\"path\":\"%s\"",
         tt__log_str(esc, sizeof esc, "/tmp/\"odd\"\\dir\n/file"));
  assert_int_equal(drain(got, 16), 1);
  assert_non_null(strstr(got[0], "\"path\":\"/tmp/\\\"odd\\\"\\\\dir\\u000a/file\""));
  /* Cut at the buffer's end, never in the middle of an escape. */
  char small[8];
  tt__log_str(small, sizeof small, "abcdef\"gh");
  assert_string_equal(small, "abcdef");
  tt__log_str(small, sizeof small, "abcde\"fgh");
  assert_string_equal(small, "abcde\\\"");
  tt__log_str(small, sizeof small, NULL);
  assert_string_equal(small, "");
}

static void log_line_should_stay_json_when_its_members_do_not_fit(void **state) {
  (void)state;
  static char big[3 * TT_LOG_LINE_MAX];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  TT_LOG(TT_LOG_INFO, "big members", "\"blob\":\"%s\"", big);
  TT_LOG(TT_LOG_INFO, big, "\"n\":%d", 1); /* a huge message: cut to half the line */
  assert_int_equal(drain(got, 16), 2);
  assert_non_null(strstr(got[0], "\"msg\":\"big members\",\"truncated\":true}\n"));
  assert_non_null(strstr(got[1], ",\"n\":1}\n"));
}

static void log_level_should_filter_before_formatting(void **state) {
  (void)state;
  tt__log_set_level(TT_LOG_WARN);
  TT_LOG(TT_LOG_INFO, "hidden", "%s", "");
  TT_LOG(TT_LOG_WARN, "shown", "%s", "");
  tt__log_set_level(TT_LOG_DEBUG);
  assert_int_equal(drain(got, 16), 1);
  assert_non_null(strstr(got[0], "\"msg\":\"shown\""));
}

static void refusal_should_warn_first_then_once_an_interval_with_the_unlogged_count(void **state) {
  (void)state;
  tt_refusals_t r;
  memset(&r, 0, sizeof r);
  r.interval_ms = 200;
  tt__refusal_note(&r, TT_REFUSE_MEDIA_TYPE, "otlp_http", "127.0.0.1:5000",
                   "unsupported Content-Type text/plain",
                   "send Content-Type application/x-protobuf or application/json");
  tt__refusal_note(&r, TT_REFUSE_MEDIA_TYPE, "otlp_http", "127.0.0.1:5001", "again", "fix");
  tt__refusal_note(&r, TT_REFUSE_MEDIA_TYPE, "otlp_http", "127.0.0.1:5002", "again", "fix");
  /* Another cause has its own allowance. */
  tt__refusal_note(&r, TT_REFUSE_INVALID, "otlp_grpc", "[::1]:6000", "malformed \"x\"", "fix");
  assert_int_equal(drain(got, 16), 2);
  assert_non_null(strstr(got[0], "\"msg\":\"request refused: unsupported Content-Type "
                                 "text/plain\",\"receiver\":\"otlp_http\",\"peer\":\"127.0.0.1:"
                                 "5000\",\"cause\":\"unsupported_media_type\",\"fix\":\"send "
                                 "Content-Type application/x-protobuf or application/json\","
                                 "\"unlogged\":0}"));
  assert_non_null(strstr(got[1], "\"cause\":\"invalid\""));
  assert_non_null(strstr(got[1], "\"peer\":\"[::1]:6000\""));
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_MEDIA_TYPE), 3);
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_INVALID), 1);

  struct timespec ts = {0, 250 * 1000000};
  nanosleep(&ts, NULL);
  tt__refusal_note(&r, TT_REFUSE_MEDIA_TYPE, "otlp_http", NULL, NULL, "fix");
  assert_int_equal(drain(got, 16), 1);
  assert_non_null(strstr(got[0], "\"msg\":\"request refused: unsupported_media_type\""));
  assert_non_null(strstr(got[0], "\"peer\":\"\""));
  assert_non_null(strstr(got[0], "\"unlogged\":2}"));
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_MEDIA_TYPE), 4);
}

static void refusal_should_count_without_logging_when_warnings_are_off(void **state) {
  (void)state;
  tt_refusals_t r;
  memset(&r, 0, sizeof r);
  tt__log_set_level(TT_LOG_ERROR);
  tt__refusal_note(&r, TT_REFUSE_TLS, "otlp_http", "127.0.0.1:1", "tls", "fix");
  tt__log_set_level(TT_LOG_DEBUG);
  assert_int_equal(drain(got, 16), 0);
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_TLS), 1);
  tt__refusal_note(NULL, TT_REFUSE_TLS, "otlp_http", "127.0.0.1:1", "tls", "fix"); /* no-op */
  /* A refusal counted elsewhere (the pipeline's invalid) is reported, not counted again. */
  tt__refusal_warn(&r, TT_REFUSE_INVALID, "otlp_http", "127.0.0.1:2", "malformed", "fix");
  assert_int_equal(drain(got, 16), 1);
  assert_non_null(strstr(got[0], "\"cause\":\"invalid\""));
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_INVALID), 0);
  assert_string_equal(tt__refuse_cause_name(TT_REFUSE_HTTP2), "http2_on_http1_port");
  assert_string_equal(tt__refuse_cause_name(TT_REFUSE__COUNT), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(log_line_without_members_should_have_no_trailing_comma),
      cmocka_unit_test(log_message_should_escape_quotes_backslashes_and_control_bytes),
      cmocka_unit_test(log_str_should_make_any_text_safe_inside_a_member),
      cmocka_unit_test(log_line_should_stay_json_when_its_members_do_not_fit),
      cmocka_unit_test(log_level_should_filter_before_formatting),
      cmocka_unit_test(refusal_should_warn_first_then_once_an_interval_with_the_unlogged_count),
      cmocka_unit_test(refusal_should_count_without_logging_when_warnings_are_off),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
