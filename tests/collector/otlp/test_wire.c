/* The wire scanner against protobuf-c's encoder: valid spans, unknown fields, wrong wire types,
 * truncation at every length, attributes and events, and UTF-8 in every string field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include "buf.h"
#include "otlp_fixture.h"
#include "wire.h"

/* Packs one span with protobuf-c; its int attribute has the value `status`. */
static uint8_t *pack_span_with_int(const span_spec_t *sp, int64_t status, size_t *len) {
  pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  s.trace_id.data = (uint8_t *)sp->trace_id;
  s.trace_id.len = 16;
  s.span_id.data = (uint8_t *)sp->span_id;
  s.span_id.len = 8;
  if (sp->has_parent) {
    s.parent_span_id.data = (uint8_t *)sp->parent_id;
    s.parent_span_id.len = 8;
  }
  s.name = (char *)sp->name;
  s.start_time_unix_nano = sp->start_ns;
  s.end_time_unix_nano = sp->end_ns;
  s.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
  s.flags = 0x301;
  if (sp->trace_state)
    s.trace_state = (char *)sp->trace_state;
  Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
  if (sp->status) {
    st.code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)sp->status;
    st.message = "boom";
    s.status = &st;
  }
  pb_kv_t *attrs[3];
  attrs[0] = fx_kv_str("http.route", "/api");
  attrs[1] = fx_kv_int("http.response.status_code", status);
  attrs[2] = fx_kv_str("peer.service", "db");
  attrs[2]->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  attrs[2]->value->double_value = 2.5;
  s.n_attributes = 3;
  s.attributes = attrs;
  Opentelemetry__Proto__Trace__V1__Span__Event ev =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
  Opentelemetry__Proto__Trace__V1__Span__Event *evp = &ev;
  ev.name = "exception";
  if (sp->exception_event) {
    s.n_events = 1;
    s.events = &evp;
  }
  *len = opentelemetry__proto__trace__v1__span__get_packed_size(&s);
  uint8_t *out = malloc(*len);
  opentelemetry__proto__trace__v1__span__pack(&s, out);
  for (int i = 0; i < 3; i++)
    fx_kv_free(attrs[i]);
  return out;
}

static uint8_t *pack_span(const span_spec_t *sp, size_t *len) {
  return pack_span_with_int(sp, 503, len);
}

static void scan_should_read_every_decision_field(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 2, 3);
  sp.name = "GET /api";
  sp.start_ns = 111;
  sp.end_ns = 222;
  sp.status = 2;
  sp.trace_state = "a=b";
  size_t len;
  uint8_t *b = pack_span(&sp, &len);
  tt_span_facts_t f;
  assert_int_equal(tt__wire_scan_span(b, len, &f), 0);
  assert_int_equal(f.trace_id_len, 16);
  assert_memory_equal(f.trace_id, sp.trace_id, 16);
  assert_memory_equal(f.span_id, sp.span_id, 8);
  assert_int_equal(f.parent_span_id_len, 8);
  assert_memory_equal(f.parent_span_id, sp.parent_id, 8);
  assert_int_equal(f.name_len, 8);
  assert_memory_equal(f.name, "GET /api", 8);
  assert_int_equal(f.start_ns, 111);
  assert_int_equal(f.end_ns, 222);
  assert_int_equal(f.status_code, 2);
  assert_int_equal(f.kind, 3);
  assert_int_equal(f.flags, 0x301);
  assert_int_equal(f.trace_state_len, 3);
  assert_true(tt__wire_span_ids_valid(&f, NULL));
  free(b);
}

static void scan_should_skip_unknown_fields(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 2, 0);
  size_t len;
  uint8_t *b = pack_span(&sp, &len);
  tt_buf_t x = TT_BUF_INIT;
  tt__buf_append(&x, b, len);
  /* Unknown fields of each wire type, as a newer OTLP version could send. */
  tt__buf_append_tag(&x, 99, TT_WT_VARINT);
  tt__buf_append_varint(&x, 12345);
  tt__buf_append_tag(&x, 100, TT_WT_LEN);
  tt__buf_append_varint(&x, 3);
  tt__buf_append(&x, "xyz", 3);
  tt__buf_append_tag(&x, 101, TT_WT_FIXED32);
  tt__buf_append(&x, "abcd", 4);
  tt__buf_append_tag(&x, 102, TT_WT_FIXED64);
  tt__buf_append(&x, "abcdefgh", 8);
  tt_span_facts_t f;
  assert_int_equal(tt__wire_scan_span(x.data, x.len, &f), 0);
  assert_memory_equal(f.trace_id, sp.trace_id, 16);
  assert_int_equal(f.parent_span_id_len, 0);
  tt__buf_free(&x);
  free(b);
}

static void scan_should_reject_every_truncation(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 2, 3);
  sp.status = 2;
  size_t len;
  uint8_t *b = pack_span(&sp, &len);
  /* The top-level field boundaries, where a cut leaves a valid shorter span. */
  bool boundary[1024] = {false};
  assert_true(len < sizeof boundary);
  tt_wire_reader_t r;
  tt_wire_field_t fl;
  tt__wire_reader_init(&r, b, len);
  boundary[0] = true;
  while (tt__wire_next(&r, &fl) == 1)
    boundary[fl.end - b] = true;
  tt_span_facts_t f;
  for (size_t n = 0; n < len; n++) {
    uint8_t *cut = malloc(n ? n : 1); /* exact size: ASan sees any overread */
    memcpy(cut, b, n);
    int rc = tt__wire_scan_span(cut, n, &f);
    if (boundary[n])
      assert_int_equal(rc, 0);
    else
      assert_int_equal(rc, -EINVAL);
    free(cut);
  }
  free(b);
}

static void scan_should_reject_wrong_wire_types_and_bad_tags(void **state) {
  (void)state;
  tt_span_facts_t f;
  const uint8_t trace_id_as_varint[] = {0x08, 0x01};     /* field 1, varint */
  const uint8_t start_as_fixed32[] = {0x3d, 1, 2, 3, 4}; /* field 7, fixed32 */
  const uint8_t field_zero[] = {0x00, 0x01};
  const uint8_t group[] = {0x0b}; /* field 1, start group */
  const uint8_t long_varint[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  const uint8_t len_past_end[] = {0x0a, 0x10, 0x01};
  assert_int_equal(tt__wire_scan_span(trace_id_as_varint, 2, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(start_as_fixed32, 5, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(field_zero, 2, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(group, 1, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(long_varint, sizeof long_varint, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(len_past_end, 3, &f), -EINVAL);
  assert_int_equal(tt__wire_scan_span(NULL, 0, &f), 0); /* an empty span parses; ids then fail */
  const char *why = NULL;
  assert_false(tt__wire_span_ids_valid(&f, &why));
  assert_non_null(strstr(why, "trace_id"));
}

/* The one varint rule (wire.h): at most ten bytes, the tenth 0x00 or 0x01. */
static void varint_should_refuse_more_than_64_bits(void **state) {
  (void)state;
  static const struct {
    uint8_t b[11];
    size_t len;
  } bad[] = {
      {{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 11}, /* eleven bytes */
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 10},       /* tenth 0x02 */
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 10},       /* tenth 0x7f */
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}, 11}, /* tenth 0x81 */
      {{0xff, 0xff, 0xff}, 3},                                                  /* truncated */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const uint8_t *p = bad[i].b;
    uint64_t v = 42;
    assert_int_equal(tt__wire_varint(&p, bad[i].b + bad[i].len, &v), -EINVAL);
    assert_ptr_equal(p, bad[i].b); /* not advanced */
    assert_int_equal(v, 42);
    /* Behind a tag, the span scanner and the AnyValue reader refuse it too. */
    uint8_t kind[12] = {0x30}, any[12] = {0x18};
    memcpy(kind + 1, bad[i].b, bad[i].len);
    memcpy(any + 1, bad[i].b, bad[i].len);
    tt_span_facts_t f;
    tt_any_t a;
    assert_int_equal(tt__wire_scan_span(kind, 1 + bad[i].len, &f), -EINVAL);
    assert_int_equal(tt__wire_any(any, 1 + bad[i].len, &a), -EINVAL);
  }
}

static void varint_should_accept_ten_bytes_ending_in_zero_or_one(void **state) {
  (void)state;
  /* -1 as an int64 (and a negative int32, sign-extended): ten bytes, the tenth 0x01. */
  const uint8_t minus_one[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  const uint8_t *p = minus_one;
  uint64_t v = 0;
  assert_int_equal(tt__wire_varint(&p, minus_one + sizeof minus_one, &v), 0);
  assert_int_equal(v, UINT64_MAX);
  assert_ptr_equal(p, minus_one + 10);
  /* A padded tenth byte of 0x00 is allowed (Go's protowire too): 2^63 - 1. */
  const uint8_t padded[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  p = padded;
  assert_int_equal(tt__wire_varint(&p, padded + sizeof padded, &v), 0);
  assert_int_equal(v, (uint64_t)INT64_MAX);
  /* INT64_MIN: the tenth byte carries only bit 63. */
  const uint8_t min[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
  p = min;
  assert_int_equal(tt__wire_varint(&p, min + sizeof min, &v), 0);
  assert_int_equal(v, (uint64_t)1 << 63);
  /* The decision path reads a -1 int attribute as -1. */
  uint8_t any[11] = {0x18};
  memcpy(any + 1, minus_one, sizeof minus_one);
  tt_any_t a;
  assert_int_equal(tt__wire_any(any, sizeof any, &a), 0);
  assert_int_equal(a.type, TT_ANY_INT);
  assert_int_equal(a.i, -1);
  span_spec_t sp = fx_span(1, 2, 0);
  size_t len;
  uint8_t *b = pack_span_with_int(&sp, -1, &len);
  assert_int_equal(tt__wire_find_attr(b, len, 9, "http.response.status_code", &a), 1);
  assert_int_equal(a.type, TT_ANY_INT);
  assert_int_equal(a.i, -1);
  free(b);
}

static void ids_should_be_checked_for_length_and_zero(void **state) {
  (void)state;
  tt_span_facts_t f;
  uint8_t tid[16] = {0}, sid[8] = {1}, pid[4] = {1};
  memset(&f, 0, sizeof f);
  f.trace_id = tid;
  f.trace_id_len = 16;
  f.span_id = sid;
  f.span_id_len = 8;
  assert_false(tt__wire_span_ids_valid(&f, NULL)); /* all-zero trace id */
  tid[15] = 1;
  assert_true(tt__wire_span_ids_valid(&f, NULL));
  f.parent_span_id = pid;
  f.parent_span_id_len = 4;
  assert_false(tt__wire_span_ids_valid(&f, NULL));
  f.parent_span_id_len = 0;
  memset(sid, 0, 8);
  assert_false(tt__wire_span_ids_valid(&f, NULL));
}

static void attributes_and_events_should_be_found_by_name(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 2, 0);
  sp.exception_event = true;
  size_t len;
  uint8_t *b = pack_span(&sp, &len);
  tt_any_t v;
  assert_int_equal(tt__wire_find_attr(b, len, 9, "http.route", &v), 1);
  assert_int_equal(v.type, TT_ANY_STRING);
  assert_int_equal(v.slen, 4);
  assert_memory_equal(v.s, "/api", 4);
  assert_int_equal(tt__wire_find_attr(b, len, 9, "http.response.status_code", &v), 1);
  assert_int_equal(v.type, TT_ANY_INT);
  assert_int_equal(v.i, 503);
  assert_int_equal(tt__wire_find_attr(b, len, 9, "peer.service", &v), 1);
  assert_int_equal(v.type, TT_ANY_DOUBLE);
  assert_true(v.d == 2.5);
  assert_int_equal(tt__wire_find_attr(b, len, 9, "http.rout", &v), 0);
  assert_int_equal(tt__wire_span_has_event(b, len, "exception"), 1);
  assert_int_equal(tt__wire_span_has_event(b, len, "retry"), 0);
  free(b);
}

/* ---- UTF-8 of every string a span carries ------------------------------------------------- */

typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array_t;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist_t;

/* The places a string can sit in a span; the scanner must name each when it holds bad UTF-8. */
enum {
  AT_NAME,
  AT_TRACE_STATE,
  AT_STATUS_MESSAGE,
  AT_ATTR_KEY,
  AT_ATTR_VALUE,
  AT_ARRAY_VALUE,
  AT_KVLIST_KEY,
  AT_KVLIST_VALUE,
  AT_EVENT_NAME,
  AT_EVENT_ATTR_KEY,
  AT_EVENT_ATTR_VALUE,
  AT_LINK_TRACE_STATE,
  AT_LINK_ATTR_KEY,
  AT_LINK_ATTR_VALUE,
  AT_COUNT,
  AT_NONE = AT_COUNT
};
static const char *const at_names[AT_COUNT] = {"span name",
                                               "trace_state",
                                               "status message",
                                               "span attribute key",
                                               "span attribute value",
                                               "span attribute value",
                                               "span attribute value",
                                               "span attribute value",
                                               "event name",
                                               "event attribute key",
                                               "event attribute value",
                                               "link trace_state",
                                               "link attribute key",
                                               "link attribute value"};

/* Packs a span (with protobuf-c) with a valid multi-byte string in every place but `bad_at`,
 * which gets `bad`. It also has an int attribute of 503 and a double, so its attributes are
 * not all ASCII bytes and the scanner has to read them. */
static uint8_t *pack_span_strings(int bad_at, const char *bad, size_t *len) {
  const char *good = "Z\xc3\xbcrich \xe2\x82\xac \xf0\x9d\x84\x9e";
#define STR(at) ((char *)(bad_at == (at) ? bad : good))
  span_spec_t sp = fx_span(1, 2, 3);
  pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  s.trace_id.data = sp.trace_id;
  s.trace_id.len = 16;
  s.span_id.data = sp.span_id;
  s.span_id.len = 8;
  s.name = STR(AT_NAME);
  s.trace_state = STR(AT_TRACE_STATE);
  Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
  st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
  st.message = STR(AT_STATUS_MESSAGE);
  s.status = &st;
  /* attributes: {key: value}, {"list": [int, string]}, {"map": {key: string}}, int, double */
  pb_kv_t *attrs[5];
  attrs[0] = fx_kv_str(STR(AT_ATTR_KEY), STR(AT_ATTR_VALUE));
  pb_kv_t *item_kv[2] = {fx_kv_int("", 7), fx_kv_str("", STR(AT_ARRAY_VALUE))};
  pb_any_t *items[2] = {item_kv[0]->value, item_kv[1]->value};
  pb_array_t arr = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
  arr.n_values = 2;
  arr.values = items;
  attrs[1] = fx_kv_str("list", "");
  attrs[1]->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
  attrs[1]->value->array_value = &arr;
  pb_kv_t *inner = fx_kv_str(STR(AT_KVLIST_KEY), STR(AT_KVLIST_VALUE));
  pb_kvlist_t kvl = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
  kvl.n_values = 1;
  kvl.values = &inner;
  attrs[2] = fx_kv_str("map", "");
  attrs[2]->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
  attrs[2]->value->kvlist_value = &kvl;
  attrs[3] = fx_kv_int("http.response.status_code", 503);
  attrs[4] = fx_kv_str("ratio", "");
  attrs[4]->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
  attrs[4]->value->double_value = 0.25;
  s.n_attributes = 5;
  s.attributes = attrs;
  pb_kv_t *ev_attr = fx_kv_str(STR(AT_EVENT_ATTR_KEY), STR(AT_EVENT_ATTR_VALUE));
  Opentelemetry__Proto__Trace__V1__Span__Event ev =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__EVENT__INIT;
  Opentelemetry__Proto__Trace__V1__Span__Event *evp = &ev;
  ev.time_unix_nano = 1700000000000000000ull;
  ev.name = STR(AT_EVENT_NAME);
  ev.n_attributes = 1;
  ev.attributes = &ev_attr;
  s.n_events = 1;
  s.events = &evp;
  pb_kv_t *link_attr = fx_kv_str(STR(AT_LINK_ATTR_KEY), STR(AT_LINK_ATTR_VALUE));
  Opentelemetry__Proto__Trace__V1__Span__Link link =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
  Opentelemetry__Proto__Trace__V1__Span__Link *linkp = &link;
  link.trace_id.data = sp.trace_id;
  link.trace_id.len = 16;
  link.span_id.data = sp.parent_id;
  link.span_id.len = 8;
  link.trace_state = STR(AT_LINK_TRACE_STATE);
  link.n_attributes = 1;
  link.attributes = &link_attr;
  s.n_links = 1;
  s.links = &linkp;
#undef STR
  *len = opentelemetry__proto__trace__v1__span__get_packed_size(&s);
  uint8_t *out = malloc(*len);
  opentelemetry__proto__trace__v1__span__pack(&s, out);
  for (int i = 0; i < 2; i++)
    fx_kv_free(item_kv[i]);
  for (int i = 0; i < 5; i++)
    fx_kv_free(attrs[i]);
  fx_kv_free(inner);
  fx_kv_free(ev_attr);
  fx_kv_free(link_attr);
  return out;
}

/* Bad strings of both shapes the scanner reads differently: short ones, whose attribute the
 * one-byte-length path reads in place, and ones over 127 bytes, which take the general walk. */
static const char *bad_strings(int i, char *buf, size_t cap) {
  static const char *const bad[] = {"\xed\xa0\x80", "a\xc0\xaf", "\xf4\x90\x80\x80", "\xe2\x82",
                                    "\xff"};
  if (i < 5)
    return bad[i];
  memset(buf, 'x', cap - 1);
  buf[cap - 1] = '\0';
  memcpy(buf + cap - 1 - strlen(bad[i - 5]), bad[i - 5], strlen(bad[i - 5]));
  return buf;
}

static void scan_should_refuse_invalid_utf8_in_every_string_of_a_span(void **state) {
  (void)state;
  size_t len;
  tt_span_facts_t f;
  uint8_t *b = pack_span_strings(AT_NONE, NULL, &len);
  assert_int_equal(tt__wire_scan_span(b, len, &f), 0); /* multi-byte strings everywhere: fine */
  assert_int_equal(f.status_code, 2);
  free(b);
  char longbuf[200];
  for (int at = 0; at < AT_COUNT; at++)
    for (int i = 0; i < 10; i++) {
      const char *bad = bad_strings(i, longbuf, sizeof longbuf);
      b = pack_span_strings(at, bad, &len);
      int rc = tt__wire_scan_span(b, len, &f);
      if (rc != -EILSEQ)
        fail_msg("bad string %d in %s: scan returned %d", i, at_names[at], rc);
      assert_string_equal(f.invalid_utf8, at_names[at]);
      free(b);
    }
}

static void scan_should_not_read_bytes_values_or_unknown_fields_as_text(void **state) {
  (void)state;
  span_spec_t sp = fx_span(1, 2, 0);
  size_t len;
  uint8_t *b = pack_span(&sp, &len);
  tt_buf_t x = TT_BUF_INIT;
  tt__buf_append(&x, b, len);
  /* A bytes attribute value {key: "blob", value: {bytes_value: ff fe}} and an unknown field. */
  tt__buf_append(&x,
                 "\x4a\x0c\x0a\x04"
                 "blob\x12\x04\x3a\x02\xff\xfe",
                 14);
  tt__buf_append(&x, "\xa2\x06\x02\xff\xfe", 5); /* field 100, length-delimited */
  tt_span_facts_t f;
  assert_int_equal(tt__wire_scan_span(x.data, x.len, &f), 0);
  /* The same bytes as a string value are refused. */
  x.data[len + 10] = 0x0a; /* bytes_value (7) becomes string_value (1) */
  assert_int_equal(tt__wire_scan_span(x.data, x.len, &f), -EILSEQ);
  assert_string_equal(f.invalid_utf8, "span attribute value");
  tt__buf_free(&x);
  free(b);
}

static void scan_should_refuse_attribute_values_nested_too_deep(void **state) {
  (void)state;
  /* AnyValue{array{AnyValue{array{...}}}} 80 levels deep, inside one non-ASCII attribute. */
  tt_buf_t any = TT_BUF_INIT, next = TT_BUF_INIT;
  tt__buf_append(&any, "\x0a\x02\xc3\xa9", 4);
  for (int i = 0; i < 80; i++) {
    tt_buf_t arr = TT_BUF_INIT;
    tt__buf_append_lenfield(&arr, 1, any.data, any.len);
    tt__buf_reset(&next);
    tt__buf_append_lenfield(&next, 5, arr.data, arr.len);
    tt__buf_free(&arr);
    tt_buf_t t = any;
    any = next;
    next = t;
  }
  tt_buf_t kv = TT_BUF_INIT, span = TT_BUF_INIT;
  tt__buf_append_lenfield(&kv, 1, "k", 1);
  tt__buf_append_lenfield(&kv, 2, any.data, any.len);
  tt__buf_append_lenfield(&span, 9, kv.data, kv.len);
  tt_span_facts_t f;
  assert_int_equal(tt__wire_scan_span(span.data, span.len, &f), -EINVAL);
  tt__buf_free(&any), tt__buf_free(&next), tt__buf_free(&kv), tt__buf_free(&span);
}

/* A ResourceSpans and a ScopeSpans, packed with protobuf-c, with `bad` in place `at` (0: none):
 * resource: 1 attribute key, 2 attribute value, 3 schema_url; scope: 4 name, 5 version,
 * 6 attribute key, 7 attribute value, 8 schema_url; 9: a span's name, which is not theirs. */
static void pack_parents(int at, const char *bad, tt_buf_t *rs_out, tt_buf_t *ss_out) {
  const char *good = "\xc3\xa9t\xc3\xa9";
#define STR(n) ((char *)(at == (n) ? bad : good))
  pb_kv_t *rattr = fx_kv_str(STR(1), STR(2));
  Opentelemetry__Proto__Resource__V1__Resource res =
      OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
  res.n_attributes = 1;
  res.attributes = &rattr;
  pb_kv_t *sattr = fx_kv_str(STR(6), STR(7));
  Opentelemetry__Proto__Common__V1__InstrumentationScope sc =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  sc.name = STR(4);
  sc.version = STR(5);
  sc.n_attributes = 1;
  sc.attributes = &sattr;
  span_spec_t sp = fx_span(1, 2, 0);
  pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  pb_span_t *sptr = &s;
  s.trace_id.data = sp.trace_id;
  s.trace_id.len = 16;
  s.span_id.data = sp.span_id;
  s.span_id.len = 8;
  s.name = STR(9);
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
  ss.scope = &sc;
  ss.n_spans = 1;
  ss.spans = &sptr;
  ss.schema_url = STR(8);
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  rs.schema_url = STR(3);
#undef STR
  tt__buf_reserve(rs_out, opentelemetry__proto__trace__v1__resource_spans__get_packed_size(&rs));
  rs_out->len = opentelemetry__proto__trace__v1__resource_spans__pack(&rs, rs_out->data);
  tt__buf_reserve(ss_out, opentelemetry__proto__trace__v1__scope_spans__get_packed_size(&ss));
  ss_out->len = opentelemetry__proto__trace__v1__scope_spans__pack(&ss, ss_out->data);
  fx_kv_free(rattr);
  fx_kv_free(sattr);
}

static void resource_and_scope_strings_should_be_checked_apart_from_their_spans(void **state) {
  (void)state;
  static const char *const names[] = {NULL,
                                      "resource attribute key",
                                      "resource attribute value",
                                      "resource schema_url",
                                      "scope name",
                                      "scope version",
                                      "scope attribute key",
                                      "scope attribute value",
                                      "scope schema_url"};
  for (int at = 0; at <= 9; at++) {
    tt_buf_t rs = TT_BUF_INIT, ss = TT_BUF_INIT;
    pack_parents(at, "\xed\xbf\xbf", &rs, &ss);
    const char *what = NULL;
    int rrc = tt__wire_resource_spans_check(rs.data, rs.len, &what);
    int src = tt__wire_scope_spans_check(ss.data, ss.len, &what);
    if (at >= 1 && at <= 3) {
      assert_int_equal(rrc, -EILSEQ);
      assert_int_equal(src, 0);
    } else if (at >= 4 && at <= 8) {
      /* The scope sits inside the resource's ScopeSpans: only the scope check sees it. */
      assert_int_equal(rrc, 0);
      assert_int_equal(src, -EILSEQ);
    } else {
      assert_int_equal(rrc, 0); /* at 9 the span's own name is bad: the span scan's business */
      assert_int_equal(src, 0);
    }
    if (at >= 1 && at <= 8)
      assert_string_equal(what, names[at]);
    tt__buf_free(&rs);
    tt__buf_free(&ss);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scan_should_read_every_decision_field),
      cmocka_unit_test(scan_should_skip_unknown_fields),
      cmocka_unit_test(scan_should_reject_every_truncation),
      cmocka_unit_test(scan_should_reject_wrong_wire_types_and_bad_tags),
      cmocka_unit_test(varint_should_refuse_more_than_64_bits),
      cmocka_unit_test(varint_should_accept_ten_bytes_ending_in_zero_or_one),
      cmocka_unit_test(ids_should_be_checked_for_length_and_zero),
      cmocka_unit_test(attributes_and_events_should_be_found_by_name),
      cmocka_unit_test(scan_should_refuse_invalid_utf8_in_every_string_of_a_span),
      cmocka_unit_test(scan_should_not_read_bytes_values_or_unknown_fields_as_text),
      cmocka_unit_test(scan_should_refuse_attribute_values_nested_too_deep),
      cmocka_unit_test(resource_and_scope_strings_should_be_checked_apart_from_their_spans),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
