/* OTLP/JSON <-> protobuf codec (collector/otlp/otlp_json.c), and the JSON flavour of the HTTP
 * route. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "otlp_json.h"
#include "recv_http.h"
#include "validate.h"
#include "test_recv_util.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req_t;

static export_req_t *to_req(const char *json, tt_buf_t *pb) {
  char err[200] = "";
  tt__buf_reset(pb);
  int rc = tt__otlp_json_to_pb(json, strlen(json), pb, err, sizeof err);
  if (rc != 0)
    fail_msg("json_to_pb failed: %s", err);
  export_req_t *r =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
          NULL, pb->len, pb->data);
  assert_non_null(r);
  return r;
}

static void free_req(export_req_t *r) {
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static int bad(const char *json, char *err, size_t errlen) {
  tt_buf_t pb = TT_BUF_INIT;
  tt__buf_append(&pb, "keep", 4);
  int rc = tt__otlp_json_to_pb(json, strlen(json), &pb, err, errlen);
  /* On error the output is left as it was. */
  assert_int_equal(pb.len, 4);
  tt__buf_free(&pb);
  return rc;
}

static const char full[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
    "{\"stringValue\":\"svc\"}}],\"droppedAttributesCount\":1},\"scopeSpans\":[{\"scope\":"
    "{\"name\":\"lib\",\"version\":\"2.0\"},\"spans\":[{\"traceId\":"
    "\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"eee19b7ec3c1b174\",\"parentSpanId\":"
    "\"eee19b7ec3c1b173\",\"traceState\":\"a=b\",\"name\":\"GET /\",\"kind\":2,"
    "\"startTimeUnixNano\":\"1544712660000000000\",\"endTimeUnixNano\":1544712661000000000,"
    "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"-9223372036854775808\"}},"
    "{\"key\":\"d\",\"value\":{\"doubleValue\":-0.5}},{\"key\":\"b\",\"value\":{\"boolValue\":"
    "false}},{\"key\":\"z\",\"value\":{\"intValue\":0}},{\"key\":\"bytes\",\"value\":"
    "{\"bytesValue\":\"aGk=\"}},{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":"
    "[{\"stringValue\":\"x\"},{\"intValue\":5}]}}},{\"key\":\"kv\",\"value\":{\"kvlistValue\":"
    "{\"values\":[{\"key\":\"in\",\"value\":{\"stringValue\":\"ner\"}}]}}}],"
    "\"events\":[{\"timeUnixNano\":\"1544712660500000000\",\"name\":\"ev\",\"attributes\":[]}],"
    "\"links\":[{\"traceId\":\"00000000000000000000000000000001\",\"spanId\":"
    "\"0000000000000002\",\"traceState\":\"x=y\",\"flags\":257}],\"status\":{\"code\":2,"
    "\"message\":\"bad\"},\"flags\":769,\"droppedEventsCount\":3}]}]}]}";

static void full_request_should_transcode_every_field(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r = to_req(full, &pb);
  assert_int_equal(r->n_resource_spans, 1);
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
  assert_string_equal(rs->resource->attributes[0]->key, "service.name");
  assert_string_equal(rs->resource->attributes[0]->value->string_value, "svc");
  assert_int_equal(rs->resource->dropped_attributes_count, 1);
  assert_string_equal(rs->scope_spans[0]->scope->name, "lib");
  assert_string_equal(rs->scope_spans[0]->scope->version, "2.0");
  Opentelemetry__Proto__Trace__V1__Span *s = rs->scope_spans[0]->spans[0];
  const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                           0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
  assert_int_equal(s->trace_id.len, 16);
  assert_memory_equal(s->trace_id.data, tid, 16);
  assert_int_equal(s->span_id.len, 8);
  assert_int_equal(s->span_id.data[7], 0x74);
  assert_int_equal(s->parent_span_id.data[7], 0x73);
  assert_string_equal(s->trace_state, "a=b");
  assert_string_equal(s->name, "GET /");
  assert_int_equal(s->kind, 2);
  assert_int_equal(s->start_time_unix_nano, 1544712660000000000ull);
  assert_int_equal(s->end_time_unix_nano, 1544712661000000000ull);
  assert_int_equal(s->n_attributes, 7);
  assert_int_equal(s->attributes[0]->value->int_value, INT64_MIN);
  assert_true(s->attributes[1]->value->double_value == -0.5);
  /* Zero values inside AnyValue are kept: the oneof case says which type it is. */
  assert_int_equal(s->attributes[2]->value->value_case,
                   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
  assert_int_equal(s->attributes[3]->value->value_case,
                   OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
  assert_int_equal(s->attributes[4]->value->bytes_value.len, 2);
  assert_memory_equal(s->attributes[4]->value->bytes_value.data, "hi", 2);
  assert_int_equal(s->attributes[5]->value->array_value->n_values, 2);
  assert_int_equal(s->attributes[5]->value->array_value->values[1]->int_value, 5);
  assert_string_equal(s->attributes[6]->value->kvlist_value->values[0]->value->string_value, "ner");
  assert_int_equal(s->n_events, 1);
  assert_int_equal(s->events[0]->time_unix_nano, 1544712660500000000ull);
  assert_int_equal(s->n_links, 1);
  assert_int_equal(s->links[0]->flags, 257);
  assert_string_equal(s->links[0]->trace_state, "x=y");
  assert_int_equal(s->status->code, 2);
  assert_string_equal(s->status->message, "bad");
  assert_int_equal(s->flags, 769);
  assert_int_equal(s->dropped_events_count, 3);
  free_req(r);
  tt__buf_free(&pb);
}

static void protobuf_to_json_and_back_should_be_identical(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT, json = TT_BUF_INIT, pb2 = TT_BUF_INIT, json2 = TT_BUF_INIT;
  export_req_t *r = to_req(full, &pb);
  free_req(r);
  assert_int_equal(tt__otlp_json_from_pb(pb.data, pb.len, &json), 0);
  char err[200];
  assert_int_equal(tt__otlp_json_to_pb((const char *)json.data, json.len, &pb2, err, sizeof err),
                   0);
  /* Field order is canonical after one trip, so the second trip is byte-identical. */
  assert_int_equal(tt__otlp_json_from_pb(pb2.data, pb2.len, &json2), 0);
  assert_int_equal(json.len, json2.len);
  assert_memory_equal(json.data, json2.data, json.len);
  tt__buf_append(&json, "", 1);
  /* The OTLP/JSON conventions: hex ids, int64 as strings, integer enums. */
  assert_non_null(strstr((char *)json.data, "\"traceId\":\"5b8efff798038103d269b633813fc60c\""));
  assert_non_null(strstr((char *)json.data, "\"startTimeUnixNano\":\"1544712660000000000\""));
  assert_non_null(strstr((char *)json.data, "\"intValue\":\"-9223372036854775808\""));
  assert_non_null(strstr((char *)json.data, "\"kind\":2"));
  assert_non_null(strstr((char *)json.data, "\"bytesValue\":\"aGk=\""));
  assert_null(strchr((char *)json.data, '\n'));
  tt__buf_free(&pb);
  tt__buf_free(&pb2);
  tt__buf_free(&json);
  tt__buf_free(&json2);
}

static void protobuf_from_the_c_encoder_should_survive_a_json_round_trip(void **state) {
  (void)state;
  size_t len;
  uint8_t *pb = sample_request("round \"trip\"\n\xe2\x98\x83", &len);
  tt_buf_t json = TT_BUF_INIT, back = TT_BUF_INIT;
  assert_int_equal(tt__otlp_json_from_pb(pb, len, &json), 0);
  char err[200];
  assert_int_equal(tt__otlp_json_to_pb((const char *)json.data, json.len, &back, err, sizeof err),
                   0);
  /* protobuf-c writes fields in number order, as our JSON does: the bytes match exactly. */
  assert_int_equal(back.len, len);
  assert_memory_equal(back.data, pb, len);
  free(pb);
  tt__buf_free(&json);
  tt__buf_free(&back);
}

static void snake_case_names_and_numbers_for_int64_should_be_accepted(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r =
      to_req("{\"resource_spans\":[{\"scope_spans\":[{\"spans\":[{\"trace_id\":"
             "\"0102030405060708090a0b0c0d0e0f10\",\"span_id\":\"0102030405060708\",\"name\":\"s\","
             "\"start_time_unix_nano\":18446744073709551615,\"end_time_unix_nano\":1.5e3,"
             "\"kind\":\"SPAN_KIND_CLIENT\",\"status\":{\"code\":\"STATUS_CODE_OK\"},"
             "\"attributes\":[{\"key\":\"n\",\"value\":{\"int_value\":9007199254740993}}]}]}]}]}",
             &pb);
  Opentelemetry__Proto__Trace__V1__Span *s = r->resource_spans[0]->scope_spans[0]->spans[0];
  assert_int_equal(s->start_time_unix_nano, UINT64_MAX);
  assert_int_equal(s->end_time_unix_nano, 1500);
  assert_int_equal(s->kind, 3);
  assert_int_equal(s->status->code, 1);
  /* 2^53 + 1 is not representable as a double: it must not go through one. */
  assert_int_equal(s->attributes[0]->value->int_value, 9007199254740993ll);
  free_req(r);
  tt__buf_free(&pb);
}

static void unknown_fields_should_be_ignored(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r = to_req(
      "{\"future\":{\"a\":[1,2,{\"b\":null}]},\"resourceSpans\":[{\"entityRefs\":[{}],"
      "\"scopeSpans\":[{\"spans\":[{\"name\":\"kept\",\"newField\":\"x\",\"traceId\":null}]}]}]}",
      &pb);
  assert_string_equal(r->resource_spans[0]->scope_spans[0]->spans[0]->name, "kept");
  free_req(r);
  tt__buf_free(&pb);
}

static void bad_ids_should_leave_the_id_empty_not_fail(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r = to_req("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                           "{\"traceId\":\"xyz\",\"spanId\":\"00000000000000zz\",\"name\":\"a\"},"
                           "{\"traceId\":\"AQIDBAUGBwgJCgsMDQ4PEA==\",\"spanId\":\"AQIDBAUGBwg=\","
                           "\"name\":\"b64\"}]}]}]}",
                           &pb);
  Opentelemetry__Proto__Trace__V1__Span **spans = r->resource_spans[0]->scope_spans[0]->spans;
  assert_int_equal(spans[0]->trace_id.len, 0);
  assert_int_equal(spans[0]->span_id.len, 0);
  assert_string_equal(spans[0]->name, "a");
  /* Base64 ids (older exporters) are recognised by their length. */
  assert_int_equal(spans[1]->trace_id.len, 16);
  assert_int_equal(spans[1]->trace_id.data[15], 16);
  assert_int_equal(spans[1]->span_id.len, 8);
  free_req(r);
  tt__buf_free(&pb);
}

static void string_escapes_should_decode_to_utf8(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r = to_req("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":"
                           "\"a\\\"b\\\\c\\/d\\n\\u00e9\\u2603\\ud83d\\ude00\"}]}]}]}",
                           &pb);
  assert_string_equal(r->resource_spans[0]->scope_spans[0]->spans[0]->name,
                      "a\"b\\c/d\n\xc3\xa9\xe2\x98\x83\xf0\x9f\x98\x80");
  free_req(r);
  tt__buf_free(&pb);
}

/* A string that is not UTF-8 does not make the JSON malformed: its bytes reach the protobuf, so
 * the pipeline refuses that span alone, as it does for a protobuf request. */
static void strings_that_are_not_utf8_should_reach_the_protobuf_as_they_are(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT;
  export_req_t *r = to_req("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                           "{\"name\":\"Z\xfcrich\"},"            /* Latin-1 byte */
                           "{\"name\":\"a\\ud800b\"},"            /* lone high surrogate */
                           "{\"name\":\"\\udc00\\u00e9\"},"       /* lone low surrogate */
                           "{\"name\":\"\\ud83d\\ude00\"}]}]}]}", /* a proper pair */
                           &pb);
  Opentelemetry__Proto__Trace__V1__Span **spans = r->resource_spans[0]->scope_spans[0]->spans;
  assert_string_equal(spans[0]->name, "Z\xfcrich");
  assert_string_equal(spans[1]->name, "a\xed\xa0\x80"
                                      "b");
  assert_string_equal(spans[2]->name, "\xed\xb0\x80\xc3\xa9");
  assert_string_equal(spans[3]->name, "\xf0\x9f\x98\x80");
  free_req(r);
  tt__buf_free(&pb);
}

static void malformed_json_should_fail_with_a_message(void **state) {
  (void)state;
  char err[200];
  const char *cases[] = {
      "",
      "[]",
      "{",
      "{\"resourceSpans\":[}",
      "{\"resourceSpans\":{}}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":5}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":\"SERVER\"}]}]}]}",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":-1}]}]}]}",
      ("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"droppedAttributesCount\":4294967296}]}]"
       "}"
       "]}"),
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\nb\"}]}]}]}",
      "{\"x\":01}",
      "{\"x\":tru}",
      "{} trailing",
      "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"startTimeUnixNano\":1.5}]}]}]}",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    err[0] = '\0';
    if (bad(cases[i], err, sizeof err) != -EINVAL)
      fail_msg("case %zu was accepted: %s", i, cases[i]);
    assert_true(strlen(err) > 0);
  }
}

static void deep_nesting_should_be_refused_not_overflow_the_stack(void **state) {
  (void)state;
  tt_buf_t j = TT_BUF_INIT;
  tt__buf_append_str(&j, "{\"x\":");
  for (int i = 0; i < 100000; i++)
    tt__buf_append(&j, "[", 1);
  tt__buf_append(&j, "", 1);
  char err[200];
  assert_int_equal(bad((const char *)j.data, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "nesting"));
  tt__buf_reset(&j);
  /* Deep AnyValue arrays take the typed path, not the skipper: also bounded. */
  tt__buf_append_str(&j, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\","
                         "\"value\":");
  for (int i = 0; i < 200; i++)
    tt__buf_append_str(&j, "{\"arrayValue\":{\"values\":[");
  tt__buf_append(&j, "", 1);
  assert_int_equal(bad((const char *)j.data, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "nesting"));
  tt__buf_free(&j);
}

static void special_doubles_should_round_trip(void **state) {
  (void)state;
  tt_buf_t pb = TT_BUF_INIT, json = TT_BUF_INIT;
  export_req_t *r = to_req("{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                           "{\"key\":\"n\",\"value\":{\"doubleValue\":\"NaN\"}},"
                           "{\"key\":\"i\",\"value\":{\"doubleValue\":\"-Infinity\"}},"
                           "{\"key\":\"p\",\"value\":{\"doubleValue\":0.1}}]}}]}",
                           &pb);
  Opentelemetry__Proto__Common__V1__KeyValue **a = r->resource_spans[0]->resource->attributes;
  assert_true(isnan(a[0]->value->double_value));
  assert_true(isinf(a[1]->value->double_value) && a[1]->value->double_value < 0);
  assert_true(a[2]->value->double_value == 0.1);
  free_req(r);
  assert_int_equal(tt__otlp_json_from_pb(pb.data, pb.len, &json), 0);
  tt__buf_append(&json, "", 1);
  assert_non_null(strstr((char *)json.data, "\"doubleValue\":\"NaN\""));
  assert_non_null(strstr((char *)json.data, "\"doubleValue\":\"-Infinity\""));
  assert_non_null(strstr((char *)json.data, "\"doubleValue\":0.10000000000000001"));
  tt__buf_free(&pb);
  tt__buf_free(&json);
}

static void from_pb_should_refuse_malformed_protobuf(void **state) {
  (void)state;
  tt_buf_t json = TT_BUF_INIT;
  const uint8_t bad_pb[] = {0x0a, 0x10, 0x00};
  assert_int_equal(tt__otlp_json_from_pb(bad_pb, sizeof bad_pb, &json), -EINVAL);
  assert_int_equal(json.len, 0);
  assert_int_equal(tt__otlp_json_from_pb(NULL, 0, &json), 0);
  tt__buf_append(&json, "", 1);
  assert_string_equal((char *)json.data, "{}");
  tt__buf_free(&json);
}

static void from_pb_should_refuse_varints_past_64_bits(void **state) {
  (void)state;
  for (size_t i = 0; i < N_BAD_VARINTS; i++) {
    size_t len;
    uint8_t *pb = request_with_raw_int_attr(bad_varints[i].bytes, bad_varints[i].len, &len);
    tt_buf_t json = TT_BUF_INIT;
    tt__buf_append(&json, "keep", 4);
    if (tt__otlp_json_from_pb(pb, len, &json) != -EINVAL)
      fail_msg("%s: accepted", bad_varints[i].what);
    assert_int_equal(json.len, 4); /* nothing half-written */
    tt__buf_free(&json);
    free(pb);
  }
}

static void negative_int64_and_int32_should_round_trip_through_json(void **state) {
  (void)state;
  /* Raw wire bytes first: -1 as ten bytes with a tenth byte of 0x01. */
  size_t len;
  uint8_t *pb = request_with_raw_int_attr(minus_one_varint, sizeof minus_one_varint, &len);
  tt_buf_t json = TT_BUF_INIT, back = TT_BUF_INIT;
  assert_int_equal(tt__otlp_json_from_pb(pb, len, &json), 0);
  tt__buf_append(&json, "", 1);
  assert_non_null(strstr((char *)json.data, "{\"key\":\"n\",\"value\":{\"intValue\":\"-1\"}}"));
  /* And back: the JSON decoder writes the same ten bytes, so the request is identical. */
  char err[200] = "";
  assert_int_equal(tt__otlp_json_to_pb((char *)json.data, json.len - 1, &back, err, sizeof err), 0);
  assert_int_equal(back.len, len);
  assert_memory_equal(back.data, pb, len);
  free(pb);
  /* A negative int32 (an enum, sign-extended to ten bytes on the wire) and the int64 extreme. */
  const char *in = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"kind\":-1,"
                   "\"attributes\":[{\"key\":\"m\",\"value\":{\"intValue\":"
                   "\"-9223372036854775808\"}}],\"status\":{\"code\":-2}}]}]}]}";
  tt__buf_reset(&back);
  assert_int_equal(tt__otlp_json_to_pb(in, strlen(in), &back, err, sizeof err), 0);
  assert_int_equal(tt__otlp_validate_export_request(back.data, back.len, err, sizeof err), 0);
  tt__buf_reset(&json);
  assert_int_equal(tt__otlp_json_from_pb(back.data, back.len, &json), 0);
  tt__buf_append(&json, "", 1);
  assert_non_null(strstr((char *)json.data, "\"kind\":-1"));
  assert_non_null(strstr((char *)json.data, "\"intValue\":\"-9223372036854775808\""));
  assert_non_null(strstr((char *)json.data, "\"code\":-2"));
  tt__buf_free(&json);
  tt__buf_free(&back);
}

static void json_string_escaping_should_produce_valid_json(void **state) {
  (void)state;
  tt_buf_t out = TT_BUF_INIT;
  assert_int_equal(tt__json_append_string(&out, "a\"\\\x01\n\xff\xc3\xa9", 8), 0);
  tt__buf_append(&out, "", 1);
  assert_string_equal((char *)out.data, "\"a\\\"\\\\\\u0001\\n\xef\xbf\xbd\xc3\xa9\"");
  tt__buf_free(&out);
}

/* The decoder reads every two-character escape, but the encoder writes only \" \\ \n \r \t
 * that way and every other control byte as \u00XX (one table serves both directions). */
static void control_bytes_without_a_common_escape_should_encode_as_u00xx(void **state) {
  (void)state;
  tt_buf_t out = TT_BUF_INIT;
  assert_int_equal(tt__json_append_string(&out, "\b\f\r\t\x1f", 5), 0);
  tt__buf_append(&out, "", 1);
  assert_string_equal((char *)out.data, "\"\\u0008\\u000c\\r\\t\\u001f\"");
  tt__buf_free(&out);
}

/* ---- the JSON flavour of the HTTP route, through a real socket ---- */

static void json_post_should_answer_json(void **state) {
  (void)state;
  recorder_t rec;
  recorder_init(&rec);
  tt_http_receiver_opts_t o = {.handler = recorder_handler, .ctx = &rec};
  tt_http_receiver_t *rx;
  assert_int_equal(tt__http_receiver_start(&o, &rx), 0);
  int port = tt__http_receiver_port(rx);
  http_resp_t r = {0};
  assert_int_equal(http_post(port, "/v1/traces", "application/json; charset=utf-8", NULL, full,
                             strlen(full), &r),
                   0);
  assert_int_equal(r.status, 200);
  char ct[64];
  assert_true(resp_header(&r, "Content-Type", ct, sizeof ct));
  assert_string_equal(ct, "application/json");
  tt__buf_append(&r.body, "", 1);
  assert_string_equal((char *)r.body.data, "{}");
  assert_string_equal(rec.transport, "http/json");
  assert_string_equal(first_span_name(rec.last.data, rec.last.len), "GET /");

  rec.answer.rejected_spans = 2;
  snprintf(rec.answer.message, sizeof rec.answer.message, "two \"bad\" spans");
  assert_int_equal(http_post(port, "/v1/traces", "application/json", NULL, full, strlen(full), &r),
                   0);
  assert_int_equal(r.status, 200);
  tt__buf_append(&r.body, "", 1);
  assert_string_equal((char *)r.body.data,
                      "{\"partialSuccess\":{\"rejectedSpans\":\"2\",\"errorMessage\":"
                      "\"two \\\"bad\\\" spans\"}}");

  assert_int_equal(
      http_post(port, "/v1/traces", "application/json", NULL, "{\"resourceSpans\":", 17, &r), 0);
  assert_int_equal(r.status, 400);
  tt__buf_append(&r.body, "", 1);
  assert_non_null(strstr((char *)r.body.data, "\"code\":3"));
  assert_non_null(strstr((char *)r.body.data, "malformed OTLP/JSON"));

  rec.answer.status = TT_EXPORT_THROTTLED;
  rec.answer.retry_after_ms = 500;
  assert_int_equal(http_post(port, "/v1/traces", "application/json", NULL, full, strlen(full), &r),
                   0);
  assert_int_equal(r.status, 429);
  char ra[8];
  assert_true(resp_header(&r, "Retry-After", ra, sizeof ra));
  assert_string_equal(ra, "1");
  tt__buf_free(&r.body);
  tt__http_receiver_stop(rx);
  recorder_free(&rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(full_request_should_transcode_every_field),
      cmocka_unit_test(protobuf_to_json_and_back_should_be_identical),
      cmocka_unit_test(protobuf_from_the_c_encoder_should_survive_a_json_round_trip),
      cmocka_unit_test(snake_case_names_and_numbers_for_int64_should_be_accepted),
      cmocka_unit_test(unknown_fields_should_be_ignored),
      cmocka_unit_test(bad_ids_should_leave_the_id_empty_not_fail),
      cmocka_unit_test(string_escapes_should_decode_to_utf8),
      cmocka_unit_test(strings_that_are_not_utf8_should_reach_the_protobuf_as_they_are),
      cmocka_unit_test(malformed_json_should_fail_with_a_message),
      cmocka_unit_test(deep_nesting_should_be_refused_not_overflow_the_stack),
      cmocka_unit_test(special_doubles_should_round_trip),
      cmocka_unit_test(from_pb_should_refuse_malformed_protobuf),
      cmocka_unit_test(from_pb_should_refuse_varints_past_64_bits),
      cmocka_unit_test(negative_int64_and_int32_should_round_trip_through_json),
      cmocka_unit_test(json_string_escaping_should_produce_valid_json),
      cmocka_unit_test(control_bytes_without_a_common_escape_should_encode_as_u00xx),
      cmocka_unit_test(json_post_should_answer_json),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
