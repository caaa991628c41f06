/* RESP2 encoder and incremental reply parser (collector/decide/resp.c): exact encoding, every
 * reply type, the same replies whatever the byte boundaries between feeds, nil bulk and nil
 * array, protocol errors (sticky until reset), and the limits: a huge announced length or a deep
 * nesting is refused from its header, before any memory of that size is asked for. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp.h"

/* One line per node ("type depth len integer str"), so replies compare as text. */
static void describe(const tt_resp_parser_t *p, tt_buf_t *out) {
  for (size_t i = 0; i < p->nnodes; i++) {
    const tt_resp_node_t *n = &p->nodes[i];
    tt__buf_appendf(out, "%u %u %zu %lld ", n->type, n->depth, n->len, (long long)n->integer);
    if (n->type == TT_RESP_STATUS || n->type == TT_RESP_ERROR || n->type == TT_RESP_BULK)
      tt__buf_append(out, tt__resp_str(p, i), n->len);
    tt__buf_append(out, "\n", 1);
  }
  tt__buf_append(out, "--\n", 3);
}

/* Feeds len bytes in chunks whose sizes come from cut() and describes every reply completed.
 * Returns the first error (negative), or 0 with the stream ending between replies, or 1 when it
 * ends inside a reply. */
static int parse_all(const tt_resp_limits_t *lim, const char *s, size_t len,
                     size_t (*cut)(size_t at, void *ctx), void *ctx, tt_buf_t *out) {
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, lim);
  size_t at = 0;
  int rc = 0, last = 1;
  while (at < len) {
    size_t n = cut(at, ctx);
    if (n == 0 || n > len - at)
      n = len - at;
    size_t off = 0;
    while (off < n) {
      size_t used = 0;
      rc = tt__resp_feed(&p, s + at + off, n - off, &used);
      assert_true(used <= n - off);
      off += used;
      if (rc < 0)
        goto done;
      last = rc;
      if (rc == 1)
        describe(&p, out);
    }
    at += n;
  }
  rc = len == 0 || last == 1 ? 0 : 1;
done:
  tt__resp_parser_free(&p);
  return rc;
}

static size_t whole(size_t at, void *ctx) {
  (void)at;
  (void)ctx;
  return 0;
}

static size_t one_byte(size_t at, void *ctx) {
  (void)at;
  (void)ctx;
  return 1;
}

/* First chunk ends at *split, the second takes the rest. */
static size_t at_split(size_t at, void *ctx) {
  size_t split = *(size_t *)ctx;
  return at < split ? split - at : 0;
}

static void encode_should_write_arrays_of_bulk_strings(void **state) {
  (void)state;
  tt_buf_t b = TT_BUF_INIT;
  const char *argv[] = {"SET", "tt:k:ab", "1;ff;error", "EX", "300", "NX"};
  size_t lens[] = {3, 7, 10, 2, 3, 2};
  const char want[] = "*6\r\n$3\r\nSET\r\n$7\r\ntt:k:ab\r\n$10\r\n1;ff;error\r\n$2\r\nEX\r\n"
                      "$3\r\n300\r\n$2\r\nNX\r\n";
  assert_int_equal(tt__resp_encode(&b, 6, argv, lens), sizeof want - 1);
  assert_int_equal(b.len, sizeof want - 1);
  assert_memory_equal(b.data, want, sizeof want - 1);

  /* Arguments are binary-safe, may be empty, and append after what the buffer holds. */
  const char bin[] = {'a', '\r', '\n', '\0', 'b'};
  const char *argv2[] = {bin, ""};
  size_t lens2[] = {sizeof bin, 0};
  const char want2[] = "*2\r\n$5\r\na\r\n\0b\r\n$0\r\n\r\n";
  assert_int_equal(tt__resp_encode(&b, 2, argv2, lens2), sizeof want2 - 1);
  assert_int_equal(b.len, sizeof want - 1 + sizeof want2 - 1);
  assert_memory_equal(b.data + sizeof want - 1, want2, sizeof want2 - 1);

  /* Twelve arguments: a two-digit count. */
  const char *many[12];
  size_t ml[12];
  for (int i = 0; i < 12; i++) {
    many[i] = "k";
    ml[i] = 1;
  }
  tt__buf_reset(&b);
  assert_int_equal(tt__resp_encode(&b, 12, many, ml), 5 + 12 * 7);
  assert_memory_equal(b.data, "*12\r\n$1\r\nk\r\n", 12);

  assert_int_equal(tt__resp_encode(&b, 0, argv, lens), -EINVAL);
  tt__buf_free(&b);
}

static void an_encoded_command_should_parse_back_as_an_array_of_bulks(void **state) {
  (void)state;
  tt_buf_t b = TT_BUF_INIT;
  const char *argv[] = {"MGET", "x", ""};
  size_t lens[] = {4, 1, 0};
  assert_true(tt__resp_encode(&b, 3, argv, lens) > 0);
  tt_buf_t got = TT_BUF_INIT;
  assert_int_equal(parse_all(NULL, (const char *)b.data, b.len, whole, NULL, &got), 0);
  tt__buf_append(&got, "", 1);
  assert_string_equal((const char *)got.data, "6 0 3 0 \n4 1 4 0 MGET\n4 1 1 0 x\n4 1 0 0 \n--\n");
  tt__buf_free(&b);
  tt__buf_free(&got);
}

static void every_reply_type_should_parse(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"+OK\r\n", "1 0 2 0 OK\n--\n"},
      {"+\r\n", "1 0 0 0 \n--\n"},
      {"-ERR wrong number of arguments\r\n", "2 0 29 0 ERR wrong number of arguments\n--\n"},
      {":0\r\n", "3 0 0 0 \n--\n"},
      {":-42\r\n", "3 0 0 -42 \n--\n"},
      {":9223372036854775807\r\n", "3 0 0 9223372036854775807 \n--\n"},
      {":-9223372036854775808\r\n", "3 0 0 -9223372036854775808 \n--\n"},
      {":007\r\n", "3 0 0 7 \n--\n"},
      {"$3\r\nfoo\r\n", "4 0 3 0 foo\n--\n"},
      {"$0\r\n\r\n", "4 0 0 0 \n--\n"},
      {"$4\r\na\r\nb\r\n", "4 0 4 0 a\r\nb\n--\n"},
      {"$-1\r\n", "5 0 0 0 \n--\n"},
      {"*-1\r\n", "5 0 0 0 \n--\n"},
      {"*0\r\n", "6 0 0 0 \n--\n"},
      {"*3\r\n$1\r\na\r\n$-1\r\n:5\r\n", "6 0 3 0 \n4 1 1 0 a\n5 1 0 0 \n3 1 0 5 \n--\n"},
      {"*2\r\n*2\r\n+a\r\n*0\r\n-e\r\n",
       "6 0 2 0 \n6 1 2 0 \n1 2 1 0 a\n6 2 0 0 \n2 1 1 0 e\n--\n"},
      {"*1\r\n*1\r\n*1\r\n:1\r\n", "6 0 1 0 \n6 1 1 0 \n6 2 1 0 \n3 3 0 1 \n--\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tt_buf_t got = TT_BUF_INIT;
    assert_int_equal(parse_all(NULL, cases[i].in, strlen(cases[i].in), whole, NULL, &got), 0);
    tt__buf_append(&got, "", 1);
    if (strcmp((const char *)got.data, cases[i].want) != 0)
      fail_msg("case %zu: got\n%s\nwant\n%s", i, (const char *)got.data, cases[i].want);
    tt__buf_free(&got);
  }
}

static void nil_bulk_and_nil_array_should_be_nil_values(void **state) {
  (void)state;
  /* An MGET reply with a miss in the middle, then a nil array (a timed-out blocking command). */
  const char in[] = "*3\r\n$5\r\n1;f;x\r\n$-1\r\n$5\r\n1;0;y\r\n*-1\r\n";
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  size_t used = 0;
  assert_int_equal(tt__resp_feed(&p, in, sizeof in - 1, &used), 1);
  assert_int_equal(p.nnodes, 4);
  assert_int_equal(p.nodes[0].type, TT_RESP_ARRAY);
  assert_int_equal(p.nodes[0].len, 3);
  assert_int_equal(p.nodes[1].type, TT_RESP_BULK);
  assert_string_equal(tt__resp_str(&p, 1), "1;f;x");
  assert_int_equal(p.nodes[2].type, TT_RESP_NIL);
  assert_string_equal(tt__resp_str(&p, 2), "");
  assert_int_equal(p.nodes[3].type, TT_RESP_BULK);
  assert_string_equal(tt__resp_str(&p, 3), "1;0;y");
  size_t off = used;
  assert_int_equal(tt__resp_feed(&p, in + off, sizeof in - 1 - off, &used), 1);
  assert_int_equal(off + used, sizeof in - 1);
  assert_int_equal(p.nnodes, 1);
  assert_int_equal(p.nodes[0].type, TT_RESP_NIL);
  assert_int_equal(p.nodes[0].depth, 0);
  tt__resp_parser_free(&p);
}

static void replies_should_parse_the_same_split_at_every_byte_boundary(void **state) {
  (void)state;
  const char in[] = "+OK\r\n$-1\r\n-ERR x\r\n:-12345\r\n*3\r\n$10\r\n1;ff;a\r\nbc\r\n$-1\r\n$0\r\n"
                    "\r\n*2\r\n*1\r\n:1\r\n*-1\r\n$3\r\nend\r\n";
  size_t len = sizeof in - 1;
  tt_buf_t ref = TT_BUF_INIT;
  assert_int_equal(parse_all(NULL, in, len, whole, NULL, &ref), 0);
  tt_buf_t got = TT_BUF_INIT;
  assert_int_equal(parse_all(NULL, in, len, one_byte, NULL, &got), 0);
  assert_int_equal(got.len, ref.len);
  assert_memory_equal(got.data, ref.data, ref.len);
  for (size_t split = 1; split < len; split++) {
    tt__buf_reset(&got);
    assert_int_equal(parse_all(NULL, in, len, at_split, &split, &got), 0);
    if (got.len != ref.len || memcmp(got.data, ref.data, ref.len) != 0)
      fail_msg("split at %zu parses differently", split);
  }
  /* Every proper prefix ends inside a reply or between two: never an error. */
  for (size_t cut = 1; cut < len; cut++) {
    tt__buf_reset(&got);
    assert_true(parse_all(NULL, in, cut, whole, NULL, &got) >= 0);
  }
  tt__buf_free(&ref);
  tt__buf_free(&got);
}

static void a_reply_should_leave_the_next_bytes_unconsumed(void **state) {
  (void)state;
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  size_t used = 0;
  assert_int_equal(tt__resp_feed(&p, "+OK\r\n:1\r\n", 10, &used), 1);
  assert_int_equal(used, 5);
  assert_int_equal(tt__resp_feed(&p, "", 0, &used), 0); /* nothing: the reply stays readable */
  assert_int_equal(used, 0);
  assert_string_equal(tt__resp_str(&p, 0), "OK");
  assert_int_equal(tt__resp_feed(&p, ":1\r\n", 4, &used), 1);
  assert_int_equal(p.nnodes, 1);
  assert_int_equal(p.nodes[0].integer, 1);
  tt__resp_parser_free(&p);
}

static void malformed_replies_should_be_protocol_errors_until_reset(void **state) {
  (void)state;
  static const char *const bad[] = {
      "_\r\n",                     /* RESP3 null */
      "%1\r\n+a\r\n+b\r\n",        /* RESP3 map */
      ",1.5\r\n",                  /* RESP3 double */
      "PONG\r\n",                  /* inline */
      "+OK\n",                     /* no CR */
      "+OK\rX",                    /* CR without LF */
      "+a\nb\r\n",                 /* LF inside a line */
      ":\r\n",                     /* no digits */
      ":-\r\n",                    /* a sign alone */
      ":1-2\r\n",                  /* sign inside */
      ":--1\r\n",                  /* two signs */
      ": 1\r\n",                   /* space */
      ":+1\r\n",                   /* plus */
      ":9223372036854775808\r\n",  /* past INT64_MAX */
      ":-9223372036854775809\r\n", /* past INT64_MIN */
      ":12345678901234567890\r\n", /* 20 digits */
      "$-2\r\n",                   /* only -1 is nil */
      "$-0\r\n",                   /* idem */
      "*-5\r\n",                   /* idem */
      "$3\r\nabcd\r\n",            /* bulk longer than announced */
      "$3\r\nab\r\n\r\n",          /* bulk shorter than announced */
      "$x\r\n",                    /* not a number */
      "*1\r\n\r\n",                /* an empty element */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tt_buf_t got = TT_BUF_INIT;
    int rc = parse_all(NULL, bad[i], strlen(bad[i]), whole, NULL, &got);
    if (rc != -EPROTO)
      fail_msg("case %zu (%s): %d, want -EPROTO", i, bad[i], rc);
    tt__buf_reset(&got);
    rc = parse_all(NULL, bad[i], strlen(bad[i]), one_byte, NULL, &got);
    if (rc != -EPROTO)
      fail_msg("case %zu byte by byte: %d, want -EPROTO", i, rc);
    tt__buf_free(&got);
  }

  /* Sticky: a broken stream cannot be resynchronised. Reset starts over. */
  tt_resp_parser_t p;
  tt__resp_parser_init(&p, NULL);
  size_t used = 0;
  assert_int_equal(tt__resp_feed(&p, "?", 1, &used), -EPROTO);
  assert_int_equal(tt__resp_feed(&p, "+OK\r\n", 5, &used), -EPROTO);
  assert_int_equal(used, 0);
  tt__resp_parser_reset(&p);
  assert_int_equal(tt__resp_feed(&p, "+OK\r\n", 5, &used), 1);
  assert_string_equal(tt__resp_str(&p, 0), "OK");
  tt__resp_parser_free(&p);
}

static void huge_announced_lengths_should_be_refused_before_any_allocation(void **state) {
  (void)state;
  tt_resp_limits_t lim = {
      .max_bulk = 1024, .max_elements = 100, .max_depth = 4, .max_nodes = 1000, .max_bytes = 4096};
  static const char *const huge[] = {
      "$1025\r\n", "$4294967296\r\n", "$9999999999999999999\r\n",
      "*101\r\n",  "*2147483648\r\n", "*9999999999999999999\r\n",
  };
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    tt_resp_parser_t p;
    tt__resp_parser_init(&p, &lim);
    size_t used = 0;
    assert_int_equal(tt__resp_feed(&p, huge[i], strlen(huge[i]), &used), -E2BIG);
    /* Refused from the header: no memory was asked for the announced size. */
    assert_true(p.data_cap == 0 && p.nodes_cap == 0);
    tt__resp_parser_free(&p);
  }

  /* Exactly at the limits is fine. */
  tt_buf_t s = TT_BUF_INIT;
  tt__buf_append_str(&s, "$1024\r\n");
  for (int i = 0; i < 1024; i++)
    tt__buf_append(&s, "x", 1);
  tt__buf_append_str(&s, "\r\n");
  tt_buf_t got = TT_BUF_INIT;
  assert_int_equal(parse_all(&lim, (const char *)s.data, s.len, whole, NULL, &got), 0);

  /* A status line past max_bulk. */
  tt__buf_reset(&s);
  tt__buf_append_str(&s, "+");
  for (int i = 0; i < 1025; i++)
    tt__buf_append(&s, "y", 1);
  tt__buf_append_str(&s, "\r\n");
  assert_int_equal(parse_all(&lim, (const char *)s.data, s.len, one_byte, NULL, &got), -E2BIG);

  /* Bulks each within max_bulk but together past max_bytes (five of 1000 bytes > 4096). */
  tt__buf_reset(&s);
  tt__buf_append_str(&s, "*5\r\n");
  for (int k = 0; k < 5; k++) {
    tt__buf_append_str(&s, "$1000\r\n");
    for (int i = 0; i < 1000; i++)
      tt__buf_append(&s, "z", 1);
    tt__buf_append_str(&s, "\r\n");
  }
  assert_int_equal(parse_all(&lim, (const char *)s.data, s.len, whole, NULL, &got), -E2BIG);

  /* More values than max_nodes, each array within max_elements. */
  lim.max_nodes = 50;
  assert_int_equal(parse_all(&lim, "*60\r\n", 5, whole, NULL, &got), -E2BIG);
  tt__buf_reset(&s);
  tt__buf_append_str(&s, "*2\r\n*30\r\n");
  for (int i = 0; i < 30; i++)
    tt__buf_append_str(&s, ":1\r\n");
  tt__buf_append_str(&s, "*30\r\n");
  assert_int_equal(parse_all(&lim, (const char *)s.data, s.len, whole, NULL, &got), -E2BIG);
  tt__buf_free(&s);
  tt__buf_free(&got);
}

static void nesting_deeper_than_the_limit_should_be_refused(void **state) {
  (void)state;
  tt_resp_limits_t lim = {.max_depth = 3};
  tt_buf_t got = TT_BUF_INIT;
  const char ok[] = "*1\r\n*1\r\n*1\r\n:7\r\n";
  assert_int_equal(parse_all(&lim, ok, sizeof ok - 1, whole, NULL, &got), 0);
  const char deep[] = "*1\r\n*1\r\n*1\r\n*1\r\n:7\r\n";
  assert_int_equal(parse_all(&lim, deep, sizeof deep - 1, whole, NULL, &got), -E2BIG);
  const char deep_empty[] = "*1\r\n*1\r\n*1\r\n*0\r\n";
  assert_int_equal(parse_all(&lim, deep_empty, sizeof deep_empty - 1, whole, NULL, &got), -E2BIG);
  /* A nil array opens nothing. */
  const char nil[] = "*1\r\n*1\r\n*1\r\n*-1\r\n";
  assert_int_equal(parse_all(&lim, nil, sizeof nil - 1, whole, NULL, &got), 0);

  /* Limits above the parser's stack are lowered to it; 1 allows flat arrays only. */
  tt_buf_t s = TT_BUF_INIT;
  for (int i = 0; i < TT_RESP_DEPTH_MAX + 1; i++)
    tt__buf_append_str(&s, "*1\r\n");
  tt__buf_append_str(&s, ":1\r\n");
  lim.max_depth = 1000;
  assert_int_equal(parse_all(&lim, (const char *)s.data, s.len, whole, NULL, &got), -E2BIG);
  assert_int_equal(parse_all(&lim, (const char *)s.data + 4, s.len - 4, whole, NULL, &got), 0);
  lim.max_depth = 1;
  assert_int_equal(parse_all(&lim, "*2\r\n:1\r\n:2\r\n", 12, whole, NULL, &got), 0);
  assert_int_equal(parse_all(&lim, "*1\r\n*0\r\n", 8, whole, NULL, &got), -E2BIG);
  tt__buf_free(&s);
  tt__buf_free(&got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(encode_should_write_arrays_of_bulk_strings),
      cmocka_unit_test(an_encoded_command_should_parse_back_as_an_array_of_bulks),
      cmocka_unit_test(every_reply_type_should_parse),
      cmocka_unit_test(nil_bulk_and_nil_array_should_be_nil_values),
      cmocka_unit_test(replies_should_parse_the_same_split_at_every_byte_boundary),
      cmocka_unit_test(a_reply_should_leave_the_next_bytes_unconsumed),
      cmocka_unit_test(malformed_replies_should_be_protocol_errors_until_reset),
      cmocka_unit_test(huge_announced_lengths_should_be_refused_before_any_allocation),
      cmocka_unit_test(nesting_deeper_than_the_limit_should_be_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
