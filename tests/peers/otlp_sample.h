/* otlp_sample.h: a fixed, fully populated batch of finished spans (tt_span_data_t, as the core
 * hands them to exporters) for exporter tests, plus the lines the receiver's /_control/dump
 * must show for it. Header-only. */
#ifndef TT_TEST_OTLP_SAMPLE_H
#define TT_TEST_OTLP_SAMPLE_H

#include <string.h>

#include "tailtrace.h"

static const tt_attribute_t sample_res_attrs[] = {
    {.key = "service.name", .type = TT_ATTR_STRING, .value.str = {"checkout", 8}},
    {.key = "service.instance.id", .type = TT_ATTR_STRING, .value.str = {"i-42", 4}},
};
static const tt_resource_t sample_resource = {sample_res_attrs, 2, 0, ""};
static const tt_scope_t sample_scope_a = {"tailtrace.test", "1.2.3", ""};
static const tt_scope_t sample_scope_b = {"db.client", "0.9", ""};

static const char *const sample_tags[] = {"a", "b"};
static const int64_t sample_ints[] = {1, -2, 3};
static const uint8_t sample_bools[] = {1, 0};
static const double sample_doubles[] = {0.5, -1.25};
static const tt_attribute_t sample_attrs[] = {
    {.key = "http.method", .type = TT_ATTR_STRING, .value.str = {"GET", 3}},
    {.key = "http.status_code", .type = TT_ATTR_INT, .value.i = 503},
    {.key = "retry", .type = TT_ATTR_BOOL, .value.b = 1},
    {.key = "ratio", .type = TT_ATTR_DOUBLE, .value.d = 0.25},
    {.key = "tags", .type = TT_ATTR_STRING_ARRAY, .value.array = {sample_tags, 2}},
    {.key = "ints", .type = TT_ATTR_INT_ARRAY, .value.array = {sample_ints, 3}},
    {.key = "bools", .type = TT_ATTR_BOOL_ARRAY, .value.array = {sample_bools, 2}},
    {.key = "doubles", .type = TT_ATTR_DOUBLE_ARRAY, .value.array = {sample_doubles, 2}},
    {.key = "SampleRate", .type = TT_ATTR_INT, .value.i = -7},
};
static const tt_attribute_t sample_event_attrs[] = {
    {.key = "exception.message", .type = TT_ATTR_STRING, .value.str = {"boom \xe2\x9c\x93", 8}},
};
static const tt_event_t sample_events[] = {
    {"exception", 1700000000000000500ULL, sample_event_attrs, 1, 0},
};
static const tt_link_t sample_links[] = {
    {{{0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01},
      {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
      0x01,
      1},
     "vendor=x",
     NULL,
     0,
     0},
};

typedef struct {
  tt_span_data_t data[1000];
  const tt_span_data_t *ptrs[1000];
} sample_batch_t;

/* Fills b with n (<= 1000) spans: span i has span id 00f0..i; the first is a server root with
 * every field set, the others its children, alternating between two scopes. */
static const tt_span_data_t *const *sample_spans(sample_batch_t *b, size_t n) {
  static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  for (size_t i = 0; i < n; i++) {
    tt_span_data_t *s = &b->data[i];
    memset(s, 0, sizeof *s);
    s->resource = &sample_resource;
    s->scope = (i % 2 == 0) ? &sample_scope_a : &sample_scope_b;
    memcpy(s->trace_id, tid, 16);
    s->span_id[1] = 0xf0;
    s->span_id[6] = (uint8_t)(i >> 8);
    s->span_id[7] = (uint8_t)(i & 0xff);
    s->name = i == 0 ? "GET /checkout" : "child";
    s->kind = i == 0 ? TT_SPAN_KIND_SERVER : TT_SPAN_KIND_INTERNAL;
    s->start_time_unix_ns = 1700000000000000000ULL + i;
    s->end_time_unix_ns = 1700000000123456789ULL + i;
    s->flags = i == 0 ? 0x301 : 0x101;
    s->tracestate = "";
    s->status_message = "";
    if (i > 0) {
      s->has_parent = 1;
      s->parent_span_id[1] = 0xf0; /* the root */
    }
    b->ptrs[i] = s;
  }
  if (n > 0) {
    tt_span_data_t *r = &b->data[0];
    r->tracestate = "ot=th:8;rv:ab,congo=t61rcWkgMzE";
    r->attributes = sample_attrs;
    r->attribute_count = sizeof sample_attrs / sizeof sample_attrs[0];
    r->dropped_attributes_count = 3;
    r->events = sample_events;
    r->event_count = 1;
    r->dropped_events_count = 1;
    r->links = sample_links;
    r->link_count = 1;
    r->dropped_links_count = 2;
    r->status_code = TT_STATUS_ERROR;
    r->status_message = "upstream unavailable";
  }
  return b->ptrs;
}

/* Lines (exact substrings) /_control/dump shows for the first two spans of sample_spans. */
static const char *const sample_root_expect[] = {
    "resource attr key=service.name value=s:checkout",
    "resource attr key=service.instance.id value=s:i-42",
    "scope name=tailtrace.test version=1.2.3",
    "span trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f0000000000000 parent_span_id= "
    "name=GET /checkout kind=2 start=1700000000000000000 end=1700000000123456789 flags=769 "
    "trace_state=ot=th:8;rv:ab,congo=t61rcWkgMzE status_code=2 status_message=upstream "
    "unavailable dropped_attrs=3 dropped_events=1 dropped_links=2 scope=tailtrace.test",
    "attr span_id=00f0000000000000 key=http.method value=s:GET",
    "attr span_id=00f0000000000000 key=http.status_code value=i:503",
    "attr span_id=00f0000000000000 key=retry value=b:true",
    "attr span_id=00f0000000000000 key=ratio value=d:0.25",
    "attr span_id=00f0000000000000 key=tags value=a:[s:a,s:b]",
    "attr span_id=00f0000000000000 key=ints value=a:[i:1,i:-2,i:3]",
    "attr span_id=00f0000000000000 key=bools value=a:[b:true,b:false]",
    "attr span_id=00f0000000000000 key=doubles value=a:[d:0.5,d:-1.25]",
    "attr span_id=00f0000000000000 key=SampleRate value=i:-7",
    "event span_id=00f0000000000000 name=exception time=1700000000000000500 attrs=1",
    "event_attr span_id=00f0000000000000 event=exception key=exception.message value=s:boom "
    "\xe2\x9c\x93",
    "link span_id=00f0000000000000 trace_id=aabbccdd000000000000000000000001 "
    "link_span_id=1122334455667788 trace_state=vendor=x flags=769 attrs=0",
    "span trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f0000000000001 "
    "parent_span_id=00f0000000000000 name=child kind=1 start=1700000000000000001 "
    "end=1700000000123456790 flags=257",
    "scope name=db.client version=0.9",
    NULL,
};

#endif /* TT_TEST_OTLP_SAMPLE_H */
