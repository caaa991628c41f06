/* The UTF-8 validator of protobuf strings: Unicode's well-formed sequences and nothing else
 * (overlong forms, surrogates, code points past U+10FFFF, truncated and stray bytes refused), at
 * every position relative to the eight-byte ASCII fast path, and against a reference decoder on
 * every sequence of up to three bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

typedef struct {
  const char *s;
  size_t n; /* 0: strlen */
} sample_t;

static bool valid(const sample_t *c) {
  return tt__utf8_valid((const uint8_t *)c->s, c->n ? c->n : strlen(c->s));
}

static void utf8_should_accept_well_formed_sequences_of_every_length(void **state) {
  (void)state;
  static const sample_t ok[] = {
      {"", 0},
      {"GET /api/orders", 0},
      {"\x00", 1},                                        /* NUL is a valid code point */
      {"\xc2\x80", 0},                                    /* U+0080, the first two-byte one */
      {"\xdf\xbf", 0},                                    /* U+07FF */
      {"\xe0\xa0\x80", 0},                                /* U+0800, the first three-byte one */
      {"\xed\x9f\xbf", 0},                                /* U+D7FF, just below the surrogates */
      {"\xee\x80\x80", 0},                                /* U+E000, just above them */
      {"\xef\xbf\xbf", 0},                                /* U+FFFF */
      {"\xf0\x90\x80\x80", 0},                            /* U+10000, the first four-byte one */
      {"\xf4\x8f\xbf\xbf", 0},                            /* U+10FFFF, the last code point */
      {"Z\xc3\xbcrich \xe2\x82\xac \xf0\x9d\x84\x9e", 0}, /* mixed */
      {"abcdefg\xc3\xa9", 0},      /* a sequence right after a full ASCII word */
      {"abcdefgh\xe2\x82\xac", 0}, /* and one starting on the next word */
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    if (!valid(&ok[i]))
      fail_msg("sample %zu refused", i);
  }
}

static void assert_all_refused(const sample_t *bad, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (valid(&bad[i]))
      fail_msg("sample %zu accepted", i);
    /* Also after a run of ASCII that the word loop skips, and before more ASCII. */
    char buf[64];
    size_t len = bad[i].n ? bad[i].n : strlen(bad[i].s);
    memcpy(buf, "0123456789abc", 13);
    memcpy(buf + 13, bad[i].s, len);
    memcpy(buf + 13 + len, "xyz", 3);
    if (tt__utf8_valid((const uint8_t *)buf, 13 + len + 3))
      fail_msg("sample %zu accepted inside ASCII", i);
  }
}

static void utf8_should_refuse_overlong_forms(void **state) {
  (void)state;
  static const sample_t bad[] = {
      {"\xc0\x80", 0},         /* NUL in two bytes (modified UTF-8) */
      {"\xc1\xbf", 0},         /* U+007F in two bytes */
      {"\xe0\x80\x80", 0},     /* NUL in three bytes */
      {"\xe0\x9f\xbf", 0},     /* U+07FF in three bytes */
      {"\xf0\x80\x80\x80", 0}, /* NUL in four bytes */
      {"\xf0\x8f\xbf\xbf", 0}, /* U+FFFF in four bytes */
      {"\xc0\xaf", 0},         /* '/' in two bytes, the classic path-traversal form */
  };
  assert_all_refused(bad, sizeof bad / sizeof bad[0]);
}

static void utf8_should_refuse_surrogates(void **state) {
  (void)state;
  static const sample_t bad[] = {
      {"\xed\xa0\x80", 0},             /* U+D800 */
      {"\xed\xad\xbf", 0},             /* U+DB7F */
      {"\xed\xb0\x80", 0},             /* U+DC00 */
      {"\xed\xbf\xbf", 0},             /* U+DFFF */
      {"\xed\xa0\xbd\xed\xb8\x80", 0}, /* a surrogate pair written as CESU-8 */
  };
  assert_all_refused(bad, sizeof bad / sizeof bad[0]);
}

static void utf8_should_refuse_code_points_past_10ffff(void **state) {
  (void)state;
  static const sample_t bad[] = {
      {"\xf4\x90\x80\x80", 0}, /* U+110000 */
      {"\xf5\x80\x80\x80", 0}, /* F5..F7 would start U+140000 and up */
      {"\xf7\xbf\xbf\xbf", 0},
      {"\xf8\x88\x80\x80\x80", 0},     /* five-byte form (old RFC 2279) */
      {"\xfc\x84\x80\x80\x80\x80", 0}, /* six-byte form */
      {"\xfe", 0},
      {"\xff", 0},
  };
  assert_all_refused(bad, sizeof bad / sizeof bad[0]);
}

static void utf8_should_refuse_truncated_sequences_and_stray_bytes(void **state) {
  (void)state;
  static const sample_t bad[] = {
      {"\xc3", 0},         /* lead byte at the end */
      {"\xe2\x82", 0},     /* three-byte sequence cut after two */
      {"\xf0\x9f\x98", 0}, /* four-byte sequence cut after three */
      {"\x80", 0},         /* continuation byte with no lead */
      {"\xbf", 0},
      {"\xc3\x41", 0},         /* lead byte followed by ASCII */
      {"\xe2\x28\xa1", 0},     /* second byte not a continuation */
      {"\xe2\x82\x28", 0},     /* third byte not a continuation */
      {"\xf0\x90\x28\x80", 0}, /* third byte of four */
      {"\xf0\x90\x80\x28", 0}, /* fourth byte of four */
      {"\xc3\xa9\xa9", 0},     /* one continuation too many */
  };
  assert_all_refused(bad, sizeof bad / sizeof bad[0]);
}

static void utf8_should_find_one_bad_byte_at_any_position_of_an_ascii_string(void **state) {
  (void)state;
  uint8_t buf[40];
  for (size_t len = 1; len <= sizeof buf; len++)
    for (size_t at = 0; at < len; at++) {
      memset(buf, 'a', sizeof buf);
      assert_true(tt__utf8_valid(buf, len));
      assert_true(tt__utf8_ascii(buf, len));
      buf[at] = 0xff;
      if (tt__utf8_valid(buf, len))
        fail_msg("0xff at %zu of %zu accepted", at, len);
      if (tt__utf8_ascii(buf, len))
        fail_msg("0xff at %zu of %zu called ASCII", at, len);
      buf[at] = 0xc3; /* a valid two-byte sequence only where a byte follows */
      if (at + 1 < len) {
        buf[at + 1] = 0xa9;
        assert_true(tt__utf8_valid(buf, len));
        assert_false(tt__utf8_ascii(buf, len));
      } else {
        assert_false(tt__utf8_valid(buf, len));
      }
    }
  assert_true(tt__utf8_valid(NULL, 0));
  assert_true(tt__utf8_ascii(NULL, 0));
}

/* A decoder written for clarity, not speed: the code point, then the rules on it. */
static bool reference_valid(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = cp << 6 | (s[i + k] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

static void utf8_should_agree_with_a_reference_decoder_on_every_short_sequence(void **state) {
  (void)state;
  uint8_t b[4];
  size_t disagree = 0;
  /* Every string of one, two and three bytes (16.8 million), and four-byte strings with every
   * lead and second byte and a spread of third and fourth bytes. */
  for (uint32_t v = 0; v < (1u << 24); v++) {
    b[0] = (uint8_t)(v >> 16), b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)v;
    disagree += tt__utf8_valid(b, 3) != reference_valid(b, 3);
    if (v < (1u << 16))
      disagree += tt__utf8_valid(b + 1, 2) != reference_valid(b + 1, 2);
  }
  static const uint8_t tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  for (uint32_t v = 0; v < (1u << 16); v++)
    for (size_t t3 = 0; t3 < sizeof tails; t3++)
      for (size_t t4 = 0; t4 < sizeof tails; t4++) {
        b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v, b[2] = tails[t3], b[3] = tails[t4];
        disagree += tt__utf8_valid(b, 4) != reference_valid(b, 4);
      }
  assert_int_equal(disagree, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(utf8_should_accept_well_formed_sequences_of_every_length),
      cmocka_unit_test(utf8_should_refuse_overlong_forms),
      cmocka_unit_test(utf8_should_refuse_surrogates),
      cmocka_unit_test(utf8_should_refuse_code_points_past_10ffff),
      cmocka_unit_test(utf8_should_refuse_truncated_sequences_and_stray_bytes),
      cmocka_unit_test(utf8_should_find_one_bad_byte_at_any_position_of_an_ascii_string),
      cmocka_unit_test(utf8_should_agree_with_a_reference_decoder_on_every_short_sequence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
