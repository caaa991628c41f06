/* otlp_sample.h: a fixed, fully populated batch of span views for exporter tests, plus the lines
 * the receiver's /_control/dump must show for it. Header-only. */
#ifndef TT_TEST_OTLP_SAMPLE_H
#define TT_TEST_OTLP_SAMPLE_H

#include <string.h>

#include "otlp_encode.h"

static const tt__otlp_attr_t sample_res_attrs[] = {
    {"service.name", {.type = TT__OTLP_V_STRING, .u.s = "checkout"}},
    {"service.instance.id", {.type = TT__OTLP_V_STRING, .u.s = "i-42"}},
};
static const tt__otlp_resource_t sample_resource = {sample_res_attrs, 2, 0, NULL};
static const tt__otlp_scope_t sample_scope_a = {"tailtrace.test", "1.2.3", NULL};
static const tt__otlp_scope_t sample_scope_b = {"db.client", "0.9", NULL};

static const tt__otlp_value_t sample_array_items[] = {
    {.type = TT__OTLP_V_STRING, .u.s = "a"},
    {.type = TT__OTLP_V_STRING, .u.s = "b"},
};
static const uint8_t sample_bytes[] = {0xde, 0xad, 0xbe, 0xef};
static const tt__otlp_attr_t sample_attrs[] = {
    {"http.method", {.type = TT__OTLP_V_STRING, .u.s = "GET"}},
    {"http.status_code", {.type = TT__OTLP_V_INT, .u.i = 503}},
    {"retry", {.type = TT__OTLP_V_BOOL, .u.b = 1}},
    {"ratio", {.type = TT__OTLP_V_DOUBLE, .u.d = 0.25}},
    {"blob", {.type = TT__OTLP_V_BYTES, .u.bytes = {sample_bytes, 4}}},
    {"tags", {.type = TT__OTLP_V_ARRAY, .u.array = {sample_array_items, 2}}},
    {"SampleRate", {.type = TT__OTLP_V_INT, .u.i = -7}},
};
static const tt__otlp_attr_t sample_event_attrs[] = {
    {"exception.message", {.type = TT__OTLP_V_STRING, .u.s = "boom \xe2\x9c\x93"}},
};
static const tt__otlp_event_t sample_events[] = {
    {"exception", 1700000000000000500ULL, sample_event_attrs, 1, 0},
};
static const tt__otlp_link_t sample_links[] = {
    {{0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01},
     {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
     "vendor=x",
     0x301,
     NULL,
     0,
     0},
};

/* Fills spans[0..n) (n <= 1000): span i has span id 0x..i, the first is a server root with
 * every field set, the others children in two scopes. */
static void sample_spans(tt__otlp_span_t *spans, size_t n) {
  static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                  0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  for (size_t i = 0; i < n; i++) {
    tt__otlp_span_t *s = &spans[i];
    memset(s, 0, sizeof *s);
    s->resource = &sample_resource;
    s->scope = (i % 2 == 0) ? &sample_scope_a : &sample_scope_b;
    memcpy(s->trace_id, tid, 16);
    s->span_id[0] = 0x00;
    s->span_id[1] = 0xf0;
    s->span_id[6] = (uint8_t)(i >> 8);
    s->span_id[7] = (uint8_t)(i & 0xff);
    s->name = i == 0 ? "GET /checkout" : "child";
    s->kind = i == 0 ? 2 : 1;
    s->start_unix_nano = 1700000000000000000ULL + i;
    s->end_unix_nano = 1700000000123456789ULL + i;
    s->flags = i == 0 ? 0x301 : 0x101;
    if (i > 0) {
      s->has_parent = 1;
      s->parent_span_id[1] = 0xf0; /* the root */
    }
  }
  if (n > 0) {
    tt__otlp_span_t *r = &spans[0];
    r->trace_state = "ot=th:8;rv:ab,congo=t61rcWkgMzE";
    r->attrs = sample_attrs;
    r->n_attrs = sizeof sample_attrs / sizeof sample_attrs[0];
    r->dropped_attrs = 3;
    r->events = sample_events;
    r->n_events = 1;
    r->dropped_events = 1;
    r->links = sample_links;
    r->n_links = 1;
    r->dropped_links = 2;
    r->status_code = 2;
    r->status_message = "upstream unavailable";
  }
}

/* Lines (exact substrings) /_control/dump shows for the root span of sample_spans. */
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
    "attr span_id=00f0000000000000 key=blob value=x:deadbeef",
    "attr span_id=00f0000000000000 key=tags value=a:[s:a,s:b]",
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
