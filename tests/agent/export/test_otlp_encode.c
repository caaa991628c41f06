/* OTLP protobuf encoding of finished spans, checked by decoding the bytes back with protobuf-c
 * (the Python receiver checks the same bytes independently in test_transport_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp_encode.h"
#include "peers/otlp_sample.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req_t;

static req_t *encode_decode(const tt_span_data_t *const *spans, size_t n) {
  uint8_t *buf;
  size_t len;
  assert_int_equal(tt__otlp_encode_request(spans, n, &buf, &len), 0);
  assert_true(len > 0);
  req_t *r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
      NULL, len, buf);
  tt__free(buf);
  assert_non_null(r);
  return r;
}

static void batch_should_round_trip_every_field(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  req_t *r = encode_decode(spans, 2);
  assert_int_equal(r->n_resource_spans, 1);
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[0];
  assert_int_equal(rs->resource->n_attributes, 2);
  assert_string_equal(rs->resource->attributes[0]->key, "service.name");
  assert_string_equal(rs->resource->attributes[0]->value->string_value, "checkout");
  assert_int_equal(rs->n_scope_spans, 2);
  assert_string_equal(rs->scope_spans[0]->scope->name, "tailtrace.test");
  assert_string_equal(rs->scope_spans[0]->scope->version, "1.2.3");
  assert_int_equal(rs->scope_spans[0]->n_spans, 1);
  Opentelemetry__Proto__Trace__V1__Span *s = rs->scope_spans[0]->spans[0];
  assert_memory_equal(s->trace_id.data, sb.data[0].trace_id, 16);
  assert_int_equal(s->trace_id.len, 16);
  assert_memory_equal(s->span_id.data, sb.data[0].span_id, 8);
  assert_int_equal(s->parent_span_id.len, 0); /* a root has no parent field at all */
  assert_string_equal(s->name, "GET /checkout");
  assert_int_equal(s->kind, 2);
  assert_int_equal(s->start_time_unix_nano, 1700000000000000000ULL);
  assert_int_equal(s->end_time_unix_nano, 1700000000123456789ULL);
  assert_int_equal(s->flags, 0x301);
  assert_string_equal(s->trace_state, "ot=th:8;rv:ab,congo=t61rcWkgMzE");
  assert_int_equal(s->dropped_attributes_count, 3);
  assert_int_equal(s->dropped_events_count, 1);
  assert_int_equal(s->dropped_links_count, 2);
  assert_int_equal(s->status->code, 2);
  assert_string_equal(s->status->message, "upstream unavailable");
  assert_int_equal(s->n_attributes, 9);
  assert_int_equal(s->attributes[1]->value->int_value, 503);
  assert_true(s->attributes[2]->value->bool_value);
  assert_true(s->attributes[3]->value->double_value == 0.25);
  Opentelemetry__Proto__Common__V1__ArrayValue *ints = s->attributes[5]->value->array_value;
  assert_int_equal(ints->n_values, 3);
  assert_int_equal(ints->values[1]->int_value, -2);
  assert_int_equal(s->n_events, 1);
  assert_string_equal(s->events[0]->name, "exception");
  assert_int_equal(s->events[0]->time_unix_nano, 1700000000000000500ULL);
  assert_string_equal(s->events[0]->attributes[0]->value->string_value, "boom \xe2\x9c\x93");
  assert_int_equal(s->n_links, 1);
  assert_int_equal(s->links[0]->flags, 0x301); /* sampled | has-is-remote | is-remote */
  assert_string_equal(s->links[0]->trace_state, "vendor=x");
  Opentelemetry__Proto__Trace__V1__Span *c = rs->scope_spans[1]->spans[0];
  assert_int_equal(c->parent_span_id.len, 8);
  assert_memory_equal(c->parent_span_id.data, sb.data[0].span_id, 8);
  assert_null(c->status); /* UNSET with no message is omitted */
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static void spans_should_be_grouped_by_resource_then_scope_in_first_seen_order(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 7);
  static const tt_resource_t other = {NULL, 0, 0, "https://schema/1"};
  sb.data[3].resource = &other; /* scope b */
  sb.data[4].resource = &other; /* scope a */
  req_t *r = encode_decode(spans, 7);
  assert_int_equal(r->n_resource_spans, 2);
  Opentelemetry__Proto__Trace__V1__ResourceSpans *r0 = r->resource_spans[0];
  Opentelemetry__Proto__Trace__V1__ResourceSpans *r1 = r->resource_spans[1];
  assert_int_equal(r0->n_scope_spans, 2);
  assert_int_equal(r0->scope_spans[0]->n_spans, 3); /* spans 0, 2, 6 */
  assert_int_equal(r0->scope_spans[1]->n_spans, 2); /* spans 1, 5 */
  assert_int_equal(r0->scope_spans[0]->spans[2]->span_id.data[7], 6);
  assert_string_equal(r1->schema_url, "https://schema/1");
  assert_int_equal(r1->n_scope_spans, 2);
  assert_string_equal(r1->scope_spans[0]->scope->name, "db.client");
  assert_int_equal(r1->scope_spans[0]->spans[0]->span_id.data[7], 3);
  assert_int_equal(r1->scope_spans[1]->spans[0]->span_id.data[7], 4);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

static void invalid_batches_should_be_refused(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 2);
  uint8_t *buf = (uint8_t *)"x";
  size_t len = 9;
  assert_int_equal(tt__otlp_encode_request(spans, 0, &buf, &len), TT_EINVAL);
  assert_null(buf);
  sb.data[1].scope = NULL;
  assert_int_equal(tt__otlp_encode_request(spans, 2, &buf, &len), TT_EINVAL);
  sb.data[1].scope = &sample_scope_a;
  static const tt_attribute_t bad = {.key = "k", .type = (tt_attr_type_t)99};
  sb.data[1].attributes = &bad;
  sb.data[1].attribute_count = 1;
  assert_int_equal(tt__otlp_encode_request(spans, 2, &buf, &len), TT_EINVAL);
  assert_null(buf);
}

static void large_batches_should_encode(void **state) {
  (void)state;
  static sample_batch_t sb;
  const tt_span_data_t *const *spans = sample_spans(&sb, 1000);
  req_t *r = encode_decode(spans, 1000);
  size_t total = 0;
  for (size_t i = 0; i < r->n_resource_spans; i++)
    for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
      total += r->resource_spans[i]->scope_spans[j]->n_spans;
  assert_int_equal(total, 1000);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_should_round_trip_every_field),
      cmocka_unit_test(spans_should_be_grouped_by_resource_then_scope_in_first_seen_order),
      cmocka_unit_test(invalid_batches_should_be_refused),
      cmocka_unit_test(large_batches_should_encode),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
