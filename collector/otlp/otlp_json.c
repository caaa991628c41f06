/* OTLP/JSON codec, the parts both directions share: the schema table (otlp_json_int.h) and JSON
 * string escaping. The transcoders are otlp_json_decode.c (JSON -> protobuf) and
 * otlp_json_encode.c (protobuf -> JSON). */
#include "otlp_json_int.h"

#include <errno.h>
#include <stdbool.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* JSON's two-character escapes, one table for both directions: the decoder reads every one; the
 * encoder writes the short form only where `written` and spells other control bytes \u00XX (it
 * never escapes '/'), so its output stays byte for byte what sinks have always received. */
static const struct {
  char esc; /* the character after the backslash */
  char raw; /* the byte it stands for */
  bool written;
} escapes[] = {{'"', '"', true},   {'\\', '\\', true}, {'/', '/', false}, {'b', '\b', false},
               {'f', '\f', false}, {'n', '\n', true},  {'r', '\r', true}, {'t', '\t', true}};

int tt__json_unescape(char esc) {
  for (size_t i = 0; i < N(escapes); i++) {
    if (escapes[i].esc == esc)
      return (uint8_t)escapes[i].raw;
  }
  return -1;
}

size_t tt__json_utf8_seq(const uint8_t *s, size_t n) {
  uint8_t c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0) {
    len = 2;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    len = 3;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8. */
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

int tt__json_append_string(tt_buf_t *out, const char *str, size_t len) {
  const uint8_t *s = (const uint8_t *)str;
  int rc = tt__buf_reserve(out, len + 2);
  if (rc != 0)
    return rc;
  out->data[out->len++] = '"';
  size_t i = 0;
  while (i < len) {
    size_t run = i;
    /* Copy the longest run that needs no escaping in one append. */
    while (run < len && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
      run++;
    if (run > i && (rc = tt__buf_append(out, s + i, run - i)) != 0)
      return rc;
    i = run;
    if (i >= len)
      break;
    uint8_t c = s[i];
    if (c >= 0x80) {
      size_t n = tt__json_utf8_seq(s + i, len - i);
      if (n == 0) {
        rc = tt__buf_append(out, "\xef\xbf\xbd", 3);
        i++;
      } else {
        rc = tt__buf_append(out, s + i, n);
        i += n;
      }
    } else {
      size_t k = 0;
      while (k < N(escapes) && !(escapes[k].written && (uint8_t)escapes[k].raw == c))
        k++;
      if (k < N(escapes)) {
        char two[2] = {'\\', escapes[k].esc};
        rc = tt__buf_append(out, two, 2);
      } else {
        rc = tt__buf_appendf(out, "\\u%04x", c);
      }
      i++;
    }
    if (rc != 0)
      return rc;
  }
  return tt__buf_append(out, "\"", 1);
}

/* ---- the schema, shared by both directions (see otlp_json_int.h) ---------------------------- */

static const jfield_t f_req[] = {
    {"resourceSpans", "resource_spans", 1, J_MSG, JM_RSPANS, F_REPEATED, 0}};
static const jfield_t f_rspans[] = {
    {"resource", "resource", 1, J_MSG, JM_RESOURCE, 0, 0},
    {"scopeSpans", "scope_spans", 2, J_MSG, JM_SSPANS, F_REPEATED, 0},
    {"schemaUrl", "schema_url", 3, J_STRING, 0, 0, 0}};
static const jfield_t f_resource[] = {
    {"attributes", "attributes", 1, J_MSG, JM_KV, F_REPEATED, 0},
    {"droppedAttributesCount", "dropped_attributes_count", 2, J_U32, 0, 0, 0}};
static const jfield_t f_sspans[] = {{"scope", "scope", 1, J_MSG, JM_SCOPE, 0, 0},
                                    {"spans", "spans", 2, J_MSG, JM_SPAN, F_REPEATED, 0},
                                    {"schemaUrl", "schema_url", 3, J_STRING, 0, 0, 0}};
static const jfield_t f_scope[] = {
    {"name", "name", 1, J_STRING, 0, 0, 0},
    {"version", "version", 2, J_STRING, 0, 0, 0},
    {"attributes", "attributes", 3, J_MSG, JM_KV, F_REPEATED, 0},
    {"droppedAttributesCount", "dropped_attributes_count", 4, J_U32, 0, 0, 0}};
static const jfield_t f_span[] = {
    {"traceId", "trace_id", 1, J_ID, 0, 0, 16},
    {"spanId", "span_id", 2, J_ID, 0, 0, 8},
    {"traceState", "trace_state", 3, J_STRING, 0, 0, 0},
    {"parentSpanId", "parent_span_id", 4, J_ID, 0, 0, 8},
    {"name", "name", 5, J_STRING, 0, 0, 0},
    {"kind", "kind", 6, J_KIND, 0, 0, 0},
    {"startTimeUnixNano", "start_time_unix_nano", 7, J_F64, 0, 0, 0},
    {"endTimeUnixNano", "end_time_unix_nano", 8, J_F64, 0, 0, 0},
    {"attributes", "attributes", 9, J_MSG, JM_KV, F_REPEATED, 0},
    {"droppedAttributesCount", "dropped_attributes_count", 10, J_U32, 0, 0, 0},
    {"events", "events", 11, J_MSG, JM_EVENT, F_REPEATED, 0},
    {"droppedEventsCount", "dropped_events_count", 12, J_U32, 0, 0, 0},
    {"links", "links", 13, J_MSG, JM_LINK, F_REPEATED, 0},
    {"droppedLinksCount", "dropped_links_count", 14, J_U32, 0, 0, 0},
    {"status", "status", 15, J_MSG, JM_STATUS, 0, 0},
    {"flags", "flags", 16, J_F32, 0, 0, 0}};
static const jfield_t f_event[] = {
    {"timeUnixNano", "time_unix_nano", 1, J_F64, 0, 0, 0},
    {"name", "name", 2, J_STRING, 0, 0, 0},
    {"attributes", "attributes", 3, J_MSG, JM_KV, F_REPEATED, 0},
    {"droppedAttributesCount", "dropped_attributes_count", 4, J_U32, 0, 0, 0}};
static const jfield_t f_link[] = {
    {"traceId", "trace_id", 1, J_ID, 0, 0, 16},
    {"spanId", "span_id", 2, J_ID, 0, 0, 8},
    {"traceState", "trace_state", 3, J_STRING, 0, 0, 0},
    {"attributes", "attributes", 4, J_MSG, JM_KV, F_REPEATED, 0},
    {"droppedAttributesCount", "dropped_attributes_count", 5, J_U32, 0, 0, 0},
    {"flags", "flags", 6, J_F32, 0, 0, 0}};
static const jfield_t f_status[] = {{"message", "message", 2, J_STRING, 0, 0, 0},
                                    {"code", "code", 3, J_STATUS, 0, 0, 0}};
static const jfield_t f_kv[] = {{"key", "key", 1, J_STRING, 0, 0, 0},
                                {"value", "value", 2, J_MSG, JM_ANY, 0, 0}};
static const jfield_t f_any[] = {{"stringValue", "string_value", 1, J_STRING, 0, F_ONEOF, 0},
                                 {"boolValue", "bool_value", 2, J_BOOL, 0, F_ONEOF, 0},
                                 {"intValue", "int_value", 3, J_I64, 0, F_ONEOF, 0},
                                 {"doubleValue", "double_value", 4, J_DOUBLE, 0, F_ONEOF, 0},
                                 {"arrayValue", "array_value", 5, J_MSG, JM_ARRAY, F_ONEOF, 0},
                                 {"kvlistValue", "kvlist_value", 6, J_MSG, JM_KVLIST, F_ONEOF, 0},
                                 {"bytesValue", "bytes_value", 7, J_BYTES, 0, F_ONEOF, 0}};
static const jfield_t f_array[] = {{"values", "values", 1, J_MSG, JM_ANY, F_REPEATED, 0}};
static const jfield_t f_kvlist[] = {{"values", "values", 1, J_MSG, JM_KV, F_REPEATED, 0}};

const jmsg_t tt__otlp_json_schema[JM_COUNT] = {
    [JM_REQ] = {"ExportTraceServiceRequest", f_req, N(f_req)},
    [JM_RSPANS] = {"ResourceSpans", f_rspans, N(f_rspans)},
    [JM_RESOURCE] = {"Resource", f_resource, N(f_resource)},
    [JM_SSPANS] = {"ScopeSpans", f_sspans, N(f_sspans)},
    [JM_SCOPE] = {"InstrumentationScope", f_scope, N(f_scope)},
    [JM_SPAN] = {"Span", f_span, N(f_span)},
    [JM_EVENT] = {"Span.Event", f_event, N(f_event)},
    [JM_LINK] = {"Span.Link", f_link, N(f_link)},
    [JM_STATUS] = {"Status", f_status, N(f_status)},
    [JM_KV] = {"KeyValue", f_kv, N(f_kv)},
    [JM_ANY] = {"AnyValue", f_any, N(f_any)},
    [JM_ARRAY] = {"ArrayValue", f_array, N(f_array)},
    [JM_KVLIST] = {"KeyValueList", f_kvlist, N(f_kvlist)},
};
