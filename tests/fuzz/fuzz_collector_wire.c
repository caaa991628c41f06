/* Fuzzes the wire scanner and everything the span path does with untrusted bytes: the span scan,
 * id checks, attribute and event lookups, the AnyValue reader and span annotation (which
 * re-frames the bytes it scanned). The input is treated as one Span message.
 *
 * The scan's UTF-8 verdict is checked against protobuf-c: when protobuf-c decodes the bytes and
 * one of the span's strings is not UTF-8 by the JSON codec's own decoder (tt__json_utf8_seq, an
 * implementation apart from utf8.c), the scan must not accept the span. Only that direction:
 * protobuf-c keeps the last of repeated scalar fields, while the scan refuses a bad string in any
 * occurrence, as Go's decoder does.
 *
 * The scan's framing verdict is checked against the request validator (validate.h): the span
 * wrapped in a request (ResourceSpans > ScopeSpans > span) is refused by the validator exactly
 * when the scan says -EINVAL, since the receivers rely on the scan alone. Its error signals are
 * checked against the separate event lookup. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"
#include "otlp_json_int.h"
#include "sampling.h"
#include "validate.h"
#include "wire.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;

static bool text_ok(const char *s) {
  size_t n = s ? strlen(s) : 0, i = 0;
  while (i < n) {
    size_t k = tt__json_utf8_seq((const uint8_t *)s + i, n - i);
    if (k == 0)
      return false;
    i += k;
  }
  return true;
}

static bool kvs_ok(kv_t **kv, size_t n);

static bool any_ok(const any_t *v) {
  if (v == NULL)
    return true;
  switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
      return text_ok(v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
      for (size_t i = 0; v->array_value && i < v->array_value->n_values; i++)
        if (!any_ok(v->array_value->values[i]))
          return false;
      return true;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
      return v->kvlist_value == NULL || kvs_ok(v->kvlist_value->values, v->kvlist_value->n_values);
    default:
      return true;
  }
}

static bool kvs_ok(kv_t **kv, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!text_ok(kv[i]->key) || !any_ok(kv[i]->value))
      return false;
  return true;
}

/* protobuf-c leaves a string it never saw pointing at a shared empty default; text_ok of "" is
 * true, so absent fields need no special case. Embedded NULs end a C string early: the bytes
 * after one are not checked here (the scan still checks them). */
static bool span_strings_ok(const Opentelemetry__Proto__Trace__V1__Span *s) {
  if (!text_ok(s->name) || !text_ok(s->trace_state) || !kvs_ok(s->attributes, s->n_attributes))
    return false;
  if (s->status && !text_ok(s->status->message))
    return false;
  for (size_t i = 0; i < s->n_events; i++)
    if (!text_ok(s->events[i]->name) ||
        !kvs_ok(s->events[i]->attributes, s->events[i]->n_attributes))
      return false;
  for (size_t i = 0; i < s->n_links; i++)
    if (!text_ok(s->links[i]->trace_state) ||
        !kvs_ok(s->links[i]->attributes, s->links[i]->n_attributes))
      return false;
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the validator accepts the span inside ExportTraceServiceRequest{ResourceSpans{
 * ScopeSpans{span}}}. */
static bool validator_accepts_span(const uint8_t *data, size_t size) {
  tt_buf_t ss = TT_BUF_INIT, rs = TT_BUF_INIT, req = TT_BUF_INIT;
  if (tt__buf_append_lenfield(&ss, 2, data, size) != 0 ||
      tt__buf_append_lenfield(&rs, 2, ss.data, ss.len) != 0 ||
      tt__buf_append_lenfield(&req, 1, rs.data, rs.len) != 0)
    __builtin_trap();
  bool ok = tt__otlp_validate_export_request(req.data, req.len, NULL, 0) == 0;
  tt__buf_free(&ss);
  tt__buf_free(&rs);
  tt__buf_free(&req);
  return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_span_facts_t f;
  int scan = tt__wire_scan_span(data, size, &f);
  if ((scan == -EINVAL) == validator_accepts_span(data, size))
    __builtin_trap(); /* the scan and the validator disagree about the span's framing */
  if (scan != -EINVAL && ((f.signals & TT_SPAN_SIG_EXCEPTION) != 0) !=
                             (tt__wire_span_has_event(data, size, "exception") == 1))
    __builtin_trap(); /* the scan's exception signal and the event lookup disagree */
  Opentelemetry__Proto__Trace__V1__Span *ref =
      opentelemetry__proto__trace__v1__span__unpack(NULL, size, data);
  if (ref != NULL) {
    if (scan == 0 && !span_strings_ok(ref))
      __builtin_trap(); /* a string that is not UTF-8 got through the scan */
    opentelemetry__proto__trace__v1__span__free_unpacked(ref, NULL);
  }
  if (scan == 0) {
    (void)tt__wire_span_ids_valid(&f, NULL);
    tt_buf_t out = TT_BUF_INIT;
    /* Ratio 0.3: a weight of 3.33, so SampleRate's rounding draws from the trace id. */
    tt_annotation_t a = {tt__threshold_from_ratio(0.3), "ratio", "idle",
                         f.trace_id_len == 16 ? f.trace_id : NULL};
    int rc = tt__span_annotate(data, size, &a, &out);
    /* What we re-framed must scan again: annotation never produces bytes we would refuse. */
    if (rc == 0 && tt__wire_scan_span(out.data, out.len, &f) != 0)
      __builtin_trap();
    tt__buf_free(&out);
  }
  tt_any_t v;
  (void)tt__wire_find_attr(data, size, 9, "http.response.status_code", &v);
  (void)tt__wire_find_attr(data, size, 1, "service.name", &v);
  (void)tt__wire_span_has_event(data, size, "exception");
  (void)tt__wire_any(data, size, &v);
  uint64_t eff;
  tt_buf_t ts = TT_BUF_INIT;
  (void)tt__tracestate_merge(data, size, 0x80000000000000ull, &ts, &eff);
  tt__buf_free(&ts);
  return 0;
}
