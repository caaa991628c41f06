/* First-bytes protocol detection (sniff.h), shared by both receivers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sniff.h"

static tt_sniff_t sniff_str(const char *s) {
  return tt__sniff((const uint8_t *)s, strlen(s));
}

static void the_http2_preface_should_be_told_from_its_fourth_byte(void **state) {
  (void)state;
  assert_int_equal(sniff_str("PRI "), TT_SNIFF_HTTP2);
  assert_int_equal(tt__sniff((const uint8_t *)tt__h2_preface, TT_H2_PREFACE_LEN), TT_SNIFF_HTTP2);
  /* The preface and a SETTINGS frame in one segment, as gRPC clients send them. */
  uint8_t seg[TT_H2_PREFACE_LEN + 9] = {0};
  memcpy(seg, tt__h2_preface, TT_H2_PREFACE_LEN);
  seg[TT_H2_PREFACE_LEN + 3] = 4;
  assert_int_equal(tt__sniff(seg, sizeof seg), TT_SNIFF_HTTP2);
  /* "P", "PR", "PRI" could still be a method such as PRINT or PUT. */
  assert_int_equal(sniff_str("P"), TT_SNIFF_MORE);
  assert_int_equal(sniff_str("PR"), TT_SNIFF_MORE);
  assert_int_equal(sniff_str("PRI"), TT_SNIFF_MORE);
  /* PRI is no HTTP/1 method: whatever follows "PRI " is HTTP/2's to refuse. */
  assert_int_equal(sniff_str("PRI * HTTP/1.1\r\n"), TT_SNIFF_HTTP2);
}

static void request_lines_should_read_as_http1(void **state) {
  (void)state;
  assert_int_equal(sniff_str("POST /v1/traces HTTP/1.1\r\n"), TT_SNIFF_HTTP1);
  assert_int_equal(sniff_str("GET / HTTP/1.0\r\n"), TT_SNIFF_HTTP1);
  assert_int_equal(sniff_str("PUT "), TT_SNIFF_HTTP1);
  assert_int_equal(sniff_str("OPTIONS * HTTP/1.1\r\n"), TT_SNIFF_HTTP1);
  /* A method cut short: more bytes are needed. */
  assert_int_equal(sniff_str("POS"), TT_SNIFF_MORE);
  assert_int_equal(sniff_str("UPDATEREDIRECTREF"), TT_SNIFF_MORE);
  assert_int_equal(sniff_str("UPDATEREDIRECTREF /x"), TT_SNIFF_HTTP1);
}

static void a_client_hello_should_read_as_tls(void **state) {
  (void)state;
  static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
  assert_int_equal(tt__sniff(hello, sizeof hello), TT_SNIFF_TLS);
  assert_int_equal(tt__sniff(hello, 1), TT_SNIFF_TLS);
}

static void other_bytes_should_be_neither(void **state) {
  (void)state;
  assert_int_equal(tt__sniff(NULL, 0), TT_SNIFF_MORE);
  assert_int_equal(sniff_str(" GET"), TT_SNIFF_OTHER);           /* no method before the space */
  assert_int_equal(sniff_str("get / HTTP/1.1"), TT_SNIFF_OTHER); /* methods are case-sensitive */
  static const uint8_t bin[] = {0x00, 0x00, 0x12, 0x04};
  assert_int_equal(tt__sniff(bin, sizeof bin), TT_SNIFF_OTHER);
  /* A token too long to be a method never reads as one, so the answer comes within 21 bytes. */
  assert_int_equal(sniff_str("ABCDEFGHIJKLMNOPQRSTU"), TT_SNIFF_OTHER);
  assert_int_equal(sniff_str("ABCDEFGHIJKLMNOPQRSTU /"), TT_SNIFF_OTHER);
}

static void more_bytes_should_never_change_a_verdict(void **state) {
  (void)state;
  /* Every prefix of these inputs answers MORE or the full input's verdict. */
  const char *inputs[] = {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                          "POST /v1/traces HTTP/1.1\r\n",
                          "PATCH / HTTP/1.1",
                          "PRI * HTTP/1.1",
                          "PUT /",
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"};
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    size_t n = strlen(inputs[i]);
    tt_sniff_t full = tt__sniff((const uint8_t *)inputs[i], n);
    assert_int_not_equal(full, TT_SNIFF_MORE);
    for (size_t k = 0; k <= n; k++) {
      tt_sniff_t v = tt__sniff((const uint8_t *)inputs[i], k);
      if (v != TT_SNIFF_MORE)
        assert_int_equal(v, full);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_http2_preface_should_be_told_from_its_fourth_byte),
      cmocka_unit_test(request_lines_should_read_as_http1),
      cmocka_unit_test(a_client_hello_should_read_as_tls),
      cmocka_unit_test(other_bytes_should_be_neither),
      cmocka_unit_test(more_bytes_should_never_change_a_verdict),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
