/* The retry loop and the server-answer decoders, without a network: a scripted fake transport
 * and a sleep function that records instead of sleeping, and hand-built google.rpc.Status /
 * ExportTraceServiceResponse bytes (including every truncation of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "otlp_retry.h"
#include "otlp_transport.h"

/* ---- a scripted transport ---------------------------------------------------------------- */

typedef struct {
  tt__transport_t base;
  tt__export_result_t script[16];
  int n, next;
} fake_t;

static void fake_send(tt__transport_t *t, const uint8_t *b, size_t l, int64_t dl,
                      tt__export_result_t *res) {
  (void)b, (void)l, (void)dl;
  fake_t *f = (fake_t *)t;
  *res = f->script[f->next < f->n ? f->next : f->n - 1];
  f->next++;
}
static void fake_abort(tt__transport_t *t) {
  (void)t;
}
static void fake_destroy(tt__transport_t *t) {
  (void)t;
}
static const tt__transport_ops_t fake_ops = {fake_send, fake_abort, fake_destroy};

static void script(fake_t *f, tt__export_outcome_t o, int64_t retry_after_ms) {
  tt__export_result_t *r = &f->script[f->n++];
  tt__export_result_init(r);
  r->outcome = o;
  r->retry_after_ms = retry_after_ms;
}

typedef struct {
  int64_t waits_ms[16];
  int n;
  int abort_at; /* the sleep call index that reports shutdown; -1 never */
} sleeps_t;

static int record_sleep(void *ud, int64_t until_ns) {
  sleeps_t *s = ud;
  s->waits_ms[s->n] = (until_ns - tt__otlp_now_ns() + 500000) / 1000000;
  return s->n++ == s->abort_at;
}

static const tt__retry_policy_t no_jitter = {100, 1000, 2.0, 0.0};

static void retryable_results_should_back_off_exponentially_up_to_the_cap(void **state) {
  (void)state;
  fake_t f = {{&fake_ops}, {{0}}, 0, 0};
  for (int i = 0; i < 6; i++)
    script(&f, TT__EXPORT_RETRYABLE, -1);
  script(&f, TT__EXPORT_OK, -1);
  sleeps_t s = {{0}, 0, -1};
  uint64_t rng = 1;
  tt__export_result_t res;
  unsigned retries;
  tt__otlp_send_with_retry(&f.base, &no_jitter, (const uint8_t *)"x", 1,
                           tt__otlp_now_ns() + 60000000000LL, record_sleep, &s, &rng, &res,
                           &retries);
  assert_int_equal(res.outcome, TT__EXPORT_OK);
  assert_int_equal(retries, 6);
  assert_int_equal(s.n, 6);
  const int64_t want[] = {100, 200, 400, 800, 1000, 1000};
  for (int i = 0; i < 6; i++)
    assert_true(s.waits_ms[i] >= want[i] - 2 && s.waits_ms[i] <= want[i]);
}

static void server_delay_should_replace_the_backoff(void **state) {
  (void)state;
  fake_t f = {{&fake_ops}, {{0}}, 0, 0};
  script(&f, TT__EXPORT_RETRYABLE, 2500);
  script(&f, TT__EXPORT_OK, -1);
  sleeps_t s = {{0}, 0, -1};
  uint64_t rng = 1;
  tt__export_result_t res;
  unsigned retries;
  tt__otlp_send_with_retry(&f.base, &no_jitter, (const uint8_t *)"x", 1,
                           tt__otlp_now_ns() + 60000000000LL, record_sleep, &s, &rng, &res,
                           &retries);
  assert_int_equal(res.outcome, TT__EXPORT_OK);
  assert_int_equal(s.n, 1);
  assert_true(s.waits_ms[0] >= 2498 && s.waits_ms[0] <= 2500);
}

static void a_retry_past_the_deadline_should_not_be_attempted(void **state) {
  (void)state;
  fake_t f = {{&fake_ops}, {{0}}, 0, 0};
  script(&f, TT__EXPORT_RETRYABLE, 5000); /* server says 5 s; only 1 s left */
  sleeps_t s = {{0}, 0, -1};
  uint64_t rng = 1;
  tt__export_result_t res;
  unsigned retries;
  tt__otlp_send_with_retry(&f.base, &no_jitter, (const uint8_t *)"x", 1,
                           tt__otlp_now_ns() + 1000000000LL, record_sleep, &s, &rng, &res,
                           &retries);
  assert_int_equal(res.outcome, TT__EXPORT_RETRYABLE);
  assert_int_equal(retries, 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(f.next, 1);
}

static void permanent_and_ok_results_should_end_at_once(void **state) {
  (void)state;
  for (int o = 0; o < 2; o++) {
    fake_t f = {{&fake_ops}, {{0}}, 0, 0};
    script(&f, o ? TT__EXPORT_PERMANENT : TT__EXPORT_OK, -1);
    sleeps_t s = {{0}, 0, -1};
    uint64_t rng = 1;
    tt__export_result_t res;
    unsigned retries;
    tt__otlp_send_with_retry(&f.base, &no_jitter, (const uint8_t *)"x", 1,
                             tt__otlp_now_ns() + 60000000000LL, record_sleep, &s, &rng, &res,
                             &retries);
    assert_int_equal(f.next, 1);
    assert_int_equal(s.n, 0);
  }
}

static void shutdown_during_a_backoff_should_abort(void **state) {
  (void)state;
  fake_t f = {{&fake_ops}, {{0}}, 0, 0};
  script(&f, TT__EXPORT_RETRYABLE, -1);
  sleeps_t s = {{0}, 0, 0};
  uint64_t rng = 1;
  tt__export_result_t res;
  unsigned retries;
  tt__otlp_send_with_retry(&f.base, &no_jitter, (const uint8_t *)"x", 1,
                           tt__otlp_now_ns() + 60000000000LL, record_sleep, &s, &rng, &res,
                           &retries);
  assert_int_equal(res.outcome, TT__EXPORT_ABORTED);
  assert_int_equal(f.next, 1);
}

static void jitter_should_stay_within_its_band(void **state) {
  (void)state;
  tt__retry_policy_t p = {1000, 8000, 2.0, 0.5};
  uint64_t rng = 12345;
  int64_t lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 1000; i++) {
    int64_t d = tt__retry_backoff_ms(&p, 2, &rng); /* 4000 before jitter */
    assert_true(d >= 2000 && d <= 4000);
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  assert_true(hi - lo > 1000); /* it does spread */
}

/* ---- decoders ---------------------------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v)
      p[n] |= 0x80;
    n++;
  } while (v);
  return n;
}

static size_t put_bytes(uint8_t *p, uint32_t field, const void *d, size_t len) {
  size_t n = put_varint(p, (uint64_t)field << 3 | 2);
  n += put_varint(p + n, len);
  memcpy(p + n, d, len);
  return n + len;
}

/* google.rpc.Status{code, message, details=[Any(type_url, RetryInfo{Duration{s, ns}})]}. */
static size_t build_status(uint8_t *out, int code, const char *msg, const char *url, int64_t sec,
                           int32_t nanos) {
  uint8_t dur[32], ri[40], any[160];
  size_t dl = 0;
  dl += put_varint(dur + dl, 1 << 3 | 0);
  dl += put_varint(dur + dl, (uint64_t)sec);
  dl += put_varint(dur + dl, 2 << 3 | 0);
  dl += put_varint(dur + dl, (uint64_t)nanos);
  size_t rl = put_bytes(ri, 1, dur, dl);
  size_t al = put_bytes(any, 1, url, strlen(url));
  al += put_bytes(any + al, 2, ri, rl);
  size_t n = put_varint(out, 1 << 3 | 0);
  n += put_varint(out + n, (uint64_t)code);
  n += put_bytes(out + n, 2, msg, strlen(msg));
  /* an unknown field (fixed64, #9) a newer server might add */
  n += put_varint(out + n, 9 << 3 | 1);
  memset(out + n, 0xab, 8);
  n += 8;
  n += put_bytes(out + n, 3, any, al);
  return n;
}

static void rpc_status_should_yield_message_and_retry_info(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n =
      build_status(buf, 8, "slow down", "type.googleapis.com/google.rpc.RetryInfo", 2, 500000000);
  tt__export_result_t res;
  tt__export_result_init(&res);
  int code = -1;
  assert_int_equal(tt__otlp_parse_rpc_status(buf, n, &code, &res), 0);
  assert_int_equal(code, 8);
  assert_string_equal(res.message, "slow down");
  assert_int_equal(res.retry_after_ms, 2500);
}

static void other_details_should_not_count_as_retry_info(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n = build_status(buf, 8, "quota", "type.googleapis.com/google.rpc.QuotaFailure", 2, 0);
  tt__export_result_t res;
  tt__export_result_init(&res);
  assert_int_equal(tt__otlp_parse_rpc_status(buf, n, NULL, &res), 0);
  assert_int_equal(res.retry_after_ms, -1);
}

static void truncated_status_should_never_be_misread(void **state) {
  (void)state;
  uint8_t buf[256];
  size_t n = build_status(buf, 14, "unavailable", "type.googleapis.com/google.rpc.RetryInfo", 1, 0);
  for (size_t cut = 0; cut < n; cut++) {
    /* Copy into an exact-size heap block so ASan catches any read past the end. */
    uint8_t *p = malloc(cut ? cut : 1);
    memcpy(p, buf, cut);
    tt__export_result_t res;
    tt__export_result_init(&res);
    int rc = tt__otlp_parse_rpc_status(p, cut, NULL, &res);
    /* Whatever a prefix yields, RetryInfo only counts when the whole detail arrived. */
    if (rc == 0 && res.retry_after_ms >= 0)
      assert_int_equal(cut, n);
    free(p);
  }
}

static void export_response_should_yield_partial_success(void **state) {
  (void)state;
  uint8_t ps[64], buf[80];
  size_t pl = put_varint(ps, 1 << 3 | 0);
  pl += put_varint(ps + pl, 17);
  pl += put_bytes(ps + pl, 2, "too old", 7);
  size_t n = put_bytes(buf, 1, ps, pl);
  tt__export_result_t res;
  tt__export_result_init(&res);
  assert_int_equal(tt__otlp_parse_export_response(buf, n, &res), 0);
  assert_int_equal(res.rejected_spans, 17);
  assert_string_equal(res.message, "too old");
  for (size_t cut = 0; cut < n; cut++) {
    uint8_t *p = malloc(cut ? cut : 1);
    memcpy(p, buf, cut);
    tt__export_result_init(&res);
    assert_int_equal(tt__otlp_parse_export_response(p, cut, &res), cut == 0 ? 0 : -1);
    free(p);
  }
}

static void export_response_varints_past_64_bits_should_be_refused(void **state) {
  (void)state;
  /* ExportTraceServiceResponse{partial_success{rejected_spans = <raw varint>}}. */
  static const struct {
    uint8_t b[11];
    size_t len;
    int rc;
    int64_t rejected;
  } cases[] = {
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, 0, -1}, /* int64 -1 */
      {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 11, -1, 0},
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10, -1, 0},
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10, -1, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t ps[16], buf[32];
    ps[0] = 1 << 3 | 0;
    memcpy(ps + 1, cases[i].b, cases[i].len);
    size_t n = put_bytes(buf, 1, ps, 1 + cases[i].len);
    tt__export_result_t res;
    tt__export_result_init(&res);
    assert_int_equal(tt__otlp_parse_export_response(buf, n, &res), cases[i].rc);
    if (cases[i].rc == 0)
      assert_int_equal(res.rejected_spans, cases[i].rejected);
  }
}

static void json_answers_should_yield_partial_success_message_and_retry_delay(void **state) {
  (void)state;
  static const char ok[] = "{\n  \"partialSuccess\": {\"rejectedSpans\": \"12\", "
                           "\"errorMessage\": \"too \\\"old\\\"\\u0021\"}}";
  tt__export_result_t res;
  tt__export_result_init(&res);
  assert_int_equal(tt__otlp_parse_json_response(ok, strlen(ok), &res), 0);
  assert_int_equal(res.rejected_spans, 12);
  assert_string_equal(res.message, "too \"old\"!");

  static const char num[] = "{\"partialSuccess\":{\"rejectedSpans\":3}}";
  tt__export_result_init(&res);
  assert_int_equal(tt__otlp_parse_json_response(num, strlen(num), &res), 0);
  assert_int_equal(res.rejected_spans, 3);

  static const char st[] =
      "{\"code\":8,\"message\":\"slow down\",\"details\":[{\"@type\":"
      "\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"1.250s\"}]}";
  tt__export_result_init(&res);
  assert_int_equal(tt__otlp_parse_json_status(st, strlen(st), &res), 0);
  assert_string_equal(res.message, "slow down");
  assert_int_equal(res.retry_after_ms, 1250);

  /* Every truncation: never a read past the end (ASan), never a retry delay from half a value. */
  for (size_t cut = 0; cut < sizeof st - 1; cut++) {
    char *p = malloc(cut ? cut : 1);
    memcpy(p, st, cut);
    tt__export_result_init(&res);
    tt__otlp_parse_json_status(p, cut, &res);
    assert_true(res.retry_after_ms == -1 || res.retry_after_ms == 1250);
    tt__export_result_init(&res);
    tt__otlp_parse_json_response(p, cut, &res);
    free(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(retryable_results_should_back_off_exponentially_up_to_the_cap),
      cmocka_unit_test(server_delay_should_replace_the_backoff),
      cmocka_unit_test(a_retry_past_the_deadline_should_not_be_attempted),
      cmocka_unit_test(permanent_and_ok_results_should_end_at_once),
      cmocka_unit_test(shutdown_during_a_backoff_should_abort),
      cmocka_unit_test(jitter_should_stay_within_its_band),
      cmocka_unit_test(rpc_status_should_yield_message_and_retry_info),
      cmocka_unit_test(other_details_should_not_count_as_retry_info),
      cmocka_unit_test(truncated_status_should_never_be_misread),
      cmocka_unit_test(export_response_should_yield_partial_success),
      cmocka_unit_test(export_response_varints_past_64_bits_should_be_refused),
      cmocka_unit_test(json_answers_should_yield_partial_success_message_and_retry_delay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
