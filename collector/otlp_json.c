/* OTLP/JSON <-> protobuf transcoding (see otlp_json.h). */
#include "otlp_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recv_http.h" /* tt__otlp_validate_export_request */

/* Returns the length of the valid UTF-8 sequence at s (1-4), or 0 when it is invalid. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
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
      size_t n = utf8_seq(s + i, len - i);
      if (n == 0) {
        rc = tt__buf_append(out, "\xef\xbf\xbd", 3);
        i++;
      } else {
        rc = tt__buf_append(out, s + i, n);
        i += n;
      }
    } else {
      switch (c) {
        case '"':
          rc = tt__buf_append(out, "\\\"", 2);
          break;
        case '\\':
          rc = tt__buf_append(out, "\\\\", 2);
          break;
        case '\n':
          rc = tt__buf_append(out, "\\n", 2);
          break;
        case '\r':
          rc = tt__buf_append(out, "\\r", 2);
          break;
        case '\t':
          rc = tt__buf_append(out, "\\t", 2);
          break;
        default:
          rc = tt__buf_appendf(out, "\\u%04x", c);
          break;
      }
      i++;
    }
    if (rc != 0)
      return rc;
  }
  return tt__buf_append(out, "\"", 1);
}

/* ---- the schema, shared by both directions ---------------------------------------------------
 * One row per field, in field-number order: JSON name (lowerCamelCase), the snake_case name the
 * protobuf JSON mapping also allows, field number, kind, nested message and flags. */

enum {
  J_STRING,
  J_ID,    /* trace/span id: hex in OTLP/JSON (base64 of the right length is also accepted) */
  J_BYTES, /* bytes: base64 (proto3 JSON mapping) */
  J_MSG,
  J_U32,    /* varint uint32 */
  J_I32,    /* varint int32 (sign-extended) */
  J_I64,    /* varint int64 */
  J_F64,    /* fixed64 (times) */
  J_F32,    /* fixed32 (flags) */
  J_DOUBLE, /* 64-bit double */
  J_BOOL,
  J_KIND,   /* enum SpanKind */
  J_STATUS, /* enum StatusCode */
};

enum { F_REPEATED = 1, F_ONEOF = 2 /* zero values are meaningful: always encode */ };

enum {
  JM_REQ,
  JM_RSPANS,
  JM_RESOURCE,
  JM_SSPANS,
  JM_SCOPE,
  JM_SPAN,
  JM_EVENT,
  JM_LINK,
  JM_STATUS,
  JM_KV,
  JM_ANY,
  JM_ARRAY,
  JM_KVLIST,
  JM_COUNT
};

typedef struct {
  const char *json;
  const char *snake;
  uint8_t num;
  uint8_t kind;
  uint8_t sub;
  uint8_t flags;
  uint8_t id_len; /* J_ID: 16 or 8 */
} jfield_t;

typedef struct {
  const char *name;
  const jfield_t *f;
  size_t n;
} jmsg_t;

#define N(a) (sizeof(a) / sizeof((a)[0]))
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

static const jmsg_t jmsgs[JM_COUNT] = {
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

static const char *const kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                         "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                         "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

/* Nesting: ExportTraceServiceRequest to a KeyValue is 6 levels; AnyValue arrays and kvlists add
 * 2 per level. 64 leaves ample room and bounds the recursion. */
#define JSON_MAX_DEPTH 64

/* ---- JSON -> protobuf --------------------------------------------------------------------- */

typedef struct {
  const char *start, *p, *end;
  char *err;
  size_t errlen;
  bool failed;
  int oom;
  tt_buf_t scratch[JSON_MAX_DEPTH + 2]; /* one encode buffer per nesting level, reused */
  tt_buf_t str;                         /* decoded string value */
} jp_t;

__attribute__((format(printf, 2, 3))) static int jerr(jp_t *jp, const char *fmt, ...) {
  if (!jp->failed) {
    jp->failed = true;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(jp->err, jp->errlen, "%s at byte %zu", msg, (size_t)(jp->p - jp->start));
  }
  return -1;
}

static int oom(jp_t *jp) {
  jp->oom = -ENOMEM;
  return jerr(jp, "out of memory");
}

static void ws(jp_t *jp) {
  while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
    jp->p++;
}

static bool peek(jp_t *jp, char c) {
  ws(jp);
  return jp->p < jp->end && *jp->p == c;
}

static int expect(jp_t *jp, char c) {
  if (!peek(jp, c))
    return jerr(jp, "expected '%c'", c);
  jp->p++;
  return 0;
}

static bool literal(jp_t *jp, const char *lit) {
  size_t n = strlen(lit);
  ws(jp);
  if ((size_t)(jp->end - jp->p) >= n && memcmp(jp->p, lit, n) == 0) {
    jp->p += n;
    return true;
  }
  return false;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
  }
  return v;
}

static int put_utf8(tt_buf_t *b, uint32_t cp) {
  uint8_t t[4];
  size_t n;
  if (cp < 0x80) {
    t[0] = (uint8_t)cp;
    n = 1;
  } else if (cp < 0x800) {
    t[0] = (uint8_t)(0xc0 | (cp >> 6));
    t[1] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    t[0] = (uint8_t)(0xe0 | (cp >> 12));
    t[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    t[2] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    t[0] = (uint8_t)(0xf0 | (cp >> 18));
    t[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    t[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    t[3] = (uint8_t)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return tt__buf_append(b, t, n);
}

/* Decodes a JSON string into jp->str (not NUL-terminated). Rejects raw control characters,
 * bad escapes, unpaired surrogates and invalid UTF-8: protobuf strings must be valid UTF-8. */
static int parse_string(jp_t *jp) {
  tt__buf_reset(&jp->str);
  if (expect(jp, '"') != 0)
    return -1;
  for (;;) {
    const char *run = jp->p;
    while (jp->p < jp->end && *jp->p != '"' && *jp->p != '\\' && (uint8_t)*jp->p >= 0x20 &&
           (uint8_t)*jp->p < 0x80)
      jp->p++;
    if (jp->p > run && tt__buf_append(&jp->str, run, (size_t)(jp->p - run)) != 0)
      return oom(jp);
    if (jp->p >= jp->end)
      return jerr(jp, "unterminated string");
    uint8_t c = (uint8_t)*jp->p;
    if (c == '"') {
      jp->p++;
      return 0;
    }
    if (c < 0x20)
      return jerr(jp, "control character in string");
    if (c >= 0x80) {
      size_t n = utf8_seq((const uint8_t *)jp->p, (size_t)(jp->end - jp->p));
      if (n == 0)
        return jerr(jp, "invalid UTF-8 in string");
      if (tt__buf_append(&jp->str, jp->p, n) != 0)
        return oom(jp);
      jp->p += n;
      continue;
    }
    /* Backslash escape. */
    if (jp->end - jp->p < 2)
      return jerr(jp, "unterminated escape");
    char e = jp->p[1];
    jp->p += 2;
    char simple = 0;
    switch (e) {
      case '"':
        simple = '"';
        break;
      case '\\':
        simple = '\\';
        break;
      case '/':
        simple = '/';
        break;
      case 'b':
        simple = '\b';
        break;
      case 'f':
        simple = '\f';
        break;
      case 'n':
        simple = '\n';
        break;
      case 'r':
        simple = '\r';
        break;
      case 't':
        simple = '\t';
        break;
      case 'u':
        break;
      default:
        return jerr(jp, "invalid escape '\\%c'", e);
    }
    if (simple) {
      if (tt__buf_append(&jp->str, &simple, 1) != 0)
        return oom(jp);
      continue;
    }
    if (jp->end - jp->p < 4)
      return jerr(jp, "truncated \\u escape");
    int u = hex4(jp->p);
    if (u < 0)
      return jerr(jp, "invalid \\u escape");
    jp->p += 4;
    uint32_t cp = (uint32_t)u;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      int lo = (jp->end - jp->p >= 6 && jp->p[0] == '\\' && jp->p[1] == 'u') ? hex4(jp->p + 2) : -1;
      if (lo < 0xdc00 || lo > 0xdfff)
        return jerr(jp, "unpaired surrogate in \\u escape");
      jp->p += 6;
      cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
      return jerr(jp, "unpaired surrogate in \\u escape");
    }
    if (put_utf8(&jp->str, cp) != 0)
      return oom(jp);
  }
}

/* Scans a JSON number per RFC 8259 grammar; returns its text span. */
static int number_token(jp_t *jp, const char **s, size_t *n) {
  ws(jp);
  const char *p = jp->p, *e = jp->end;
  const char *b = p;
  if (p < e && *p == '-')
    p++;
  if (p >= e || !(*p >= '0' && *p <= '9'))
    return jerr(jp, "expected a number");
  if (*p == '0')
    p++;
  else
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  if (p < e && *p == '.') {
    p++;
    if (p >= e || !(*p >= '0' && *p <= '9'))
      return jerr(jp, "bad number");
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-'))
      p++;
    if (p >= e || !(*p >= '0' && *p <= '9'))
      return jerr(jp, "bad number");
    while (p < e && *p >= '0' && *p <= '9')
      p++;
  }
  *s = b;
  *n = (size_t)(p - b);
  jp->p = p;
  return 0;
}

static int skip_value(jp_t *jp, int depth);

static int skip_container(jp_t *jp, char close, bool object, int depth) {
  jp->p++;
  if (peek(jp, close)) {
    jp->p++;
    return 0;
  }
  for (;;) {
    if (object) {
      if (parse_string(jp) != 0 || expect(jp, ':') != 0)
        return -1;
    }
    if (skip_value(jp, depth + 1) != 0)
      return -1;
    if (peek(jp, ',')) {
      jp->p++;
      continue;
    }
    return expect(jp, close);
  }
}

/* Unknown fields are skipped, but they must still be well-formed JSON. */
static int skip_value(jp_t *jp, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return jerr(jp, "nesting deeper than %d", JSON_MAX_DEPTH);
  ws(jp);
  if (jp->p >= jp->end)
    return jerr(jp, "unexpected end of input");
  const char *s;
  size_t n;
  switch (*jp->p) {
    case '{':
      return skip_container(jp, '}', true, depth);
    case '[':
      return skip_container(jp, ']', false, depth);
    case '"':
      return parse_string(jp);
    case 't':
      return literal(jp, "true") ? 0 : jerr(jp, "invalid literal");
    case 'f':
      return literal(jp, "false") ? 0 : jerr(jp, "invalid literal");
    case 'n':
      return literal(jp, "null") ? 0 : jerr(jp, "invalid literal");
    default:
      return number_token(jp, &s, &n);
  }
}

/* Parses an integer given as a JSON number or a string holding one. Exact for all 64-bit
 * values (never goes through a double unless the text has a fraction or exponent, in which case
 * it must still denote an integer). */
static int parse_integer(jp_t *jp, const char *what, bool is_signed, int64_t *sv, uint64_t *uv) {
  char tmp[64];
  const char *s;
  size_t n;
  if (peek(jp, '"')) {
    if (parse_string(jp) != 0)
      return -1;
    s = (const char *)jp->str.data;
    n = jp->str.len;
  } else if (number_token(jp, &s, &n) != 0) {
    return -1;
  }
  if (n == 0 || n >= sizeof tmp)
    return jerr(jp, "%s: invalid integer", what);
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  char *endp;
  errno = 0;
  if (strpbrk(tmp, ".eE") != NULL) {
    double d = strtod(tmp, &endp);
    if (*endp != '\0' || d != floor(d) ||
        (is_signed ? (d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
                   : (d < 0 || d >= 1.8446744073709552e19)))
      return jerr(jp, "%s: not an integer", what);
    if (is_signed)
      *sv = (int64_t)d;
    else
      *uv = (uint64_t)d;
    return 0;
  }
  if (is_signed) {
    *sv = strtoll(tmp, &endp, 10);
  } else {
    if (tmp[0] == '-')
      return jerr(jp, "%s: negative value", what);
    *uv = strtoull(tmp, &endp, 10);
  }
  if (*endp != '\0' || errno == ERANGE || !(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9')))
    return jerr(jp, "%s: invalid integer", what);
  return 0;
}

static int parse_enum(jp_t *jp, const jfield_t *f, uint64_t *v) {
  if (peek(jp, '"')) {
    const char *const *names = f->kind == J_KIND ? kind_names : status_names;
    size_t count = f->kind == J_KIND ? N(kind_names) : N(status_names);
    if (parse_string(jp) != 0)
      return -1;
    for (size_t i = 0; i < count; i++) {
      if (jp->str.len == strlen(names[i]) && memcmp(jp->str.data, names[i], jp->str.len) == 0) {
        *v = i;
        return 0;
      }
    }
    return jerr(jp, "%s: unknown enum name", f->json);
  }
  int64_t sv = 0;
  if (parse_integer(jp, f->json, true, &sv, NULL) != 0)
    return -1;
  if (sv < INT32_MIN || sv > INT32_MAX)
    return jerr(jp, "%s: enum value out of range", f->json);
  *v = (uint64_t)sv; /* enums are int32, sign-extended on the wire */
  return 0;
}

static int hexval(uint8_t c) {
  return (c >= '0' && c <= '9')   ? c - '0'
         : (c >= 'a' && c <= 'f') ? c - 'a' + 10
         : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                  : -1;
}

static int b64val(uint8_t c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+' || c == '-')
    return 62;
  if (c == '/' || c == '_')
    return 63;
  return -1;
}

/* Decodes standard or URL-safe base64, padded or not, into out. Returns 0 or -1. */
static int b64_decode(const uint8_t *s, size_t n, tt_buf_t *out) {
  while (n > 0 && s[n - 1] == '=')
    n--;
  if (n % 4 == 1)
    return -1;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64val(s[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      uint8_t byte = (uint8_t)(acc >> bits);
      if (tt__buf_append(out, &byte, 1) != 0)
        return -1;
    }
  }
  return 0;
}

/* Decodes an id: hex of exactly 2*id_len digits, or base64 of exactly id_len bytes (older
 * exporters). Anything else leaves `out` empty, which the pipeline rejects for that one span. */
static void decode_id(const tt_buf_t *s, size_t id_len, tt_buf_t *out) {
  tt__buf_reset(out);
  if (s->len == 2 * id_len) {
    for (size_t i = 0; i < id_len; i++) {
      int hi = hexval(s->data[2 * i]), lo = hexval(s->data[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        tt__buf_reset(out);
        break;
      }
      uint8_t b = (uint8_t)(hi << 4 | lo);
      tt__buf_append(out, &b, 1);
    }
    if (out->len == id_len)
      return;
  }
  tt__buf_reset(out);
  if (b64_decode(s->data, s->len, out) != 0 || out->len != id_len)
    tt__buf_reset(out);
}

static int append_len(tt_buf_t *out, uint32_t num, const void *data, size_t len) {
  int rc = tt__buf_append_tag(out, num, 2);
  rc = rc ? rc : tt__buf_append_varint(out, len);
  rc = rc ? rc : tt__buf_append(out, data, len);
  return rc;
}

static int parse_message(jp_t *jp, int msg, int depth, tt_buf_t *out);

/* Parses one value of field f (a single element for repeated fields) and appends its encoding. */
static int parse_field_value(jp_t *jp, const jfield_t *f, int depth, tt_buf_t *out) {
  bool always = f->flags & (F_ONEOF | F_REPEATED);
  int rc = 0;
  switch (f->kind) {
    case J_MSG: {
      tt_buf_t *sub = &jp->scratch[depth + 1];
      tt__buf_reset(sub);
      if (parse_message(jp, f->sub, depth + 1, sub) != 0)
        return -1;
      rc = append_len(out, f->num, sub->data, sub->len);
      break;
    }
    case J_STRING:
    case J_ID:
    case J_BYTES: {
      if (parse_string(jp) != 0)
        return -1;
      tt_buf_t *tmp = &jp->scratch[depth + 1];
      const tt_buf_t *val = &jp->str;
      if (f->kind == J_ID) {
        decode_id(&jp->str, f->id_len, tmp);
        val = tmp;
      } else if (f->kind == J_BYTES) {
        tt__buf_reset(tmp);
        if (b64_decode(jp->str.data, jp->str.len, tmp) != 0)
          return jerr(jp, "%s: invalid base64", f->json);
        val = tmp;
      }
      if (val->len > 0 || always)
        rc = append_len(out, f->num, val->data, val->len);
      break;
    }
    case J_BOOL: {
      bool b;
      if (literal(jp, "true"))
        b = true;
      else if (literal(jp, "false"))
        b = false;
      else
        return jerr(jp, "%s: expected true or false", f->json);
      if (b || always) {
        rc = tt__buf_append_tag(out, f->num, 0);
        rc = rc ? rc : tt__buf_append_varint(out, b);
      }
      break;
    }
    case J_DOUBLE: {
      double d;
      if (peek(jp, '"')) {
        /* The JSON mapping spells the special values as strings. */
        if (parse_string(jp) != 0)
          return -1;
        tt__buf_append(&jp->str, "", 1);
        const char *t = (const char *)jp->str.data;
        char *endp;
        if (strcmp(t, "NaN") == 0)
          d = NAN;
        else if (strcmp(t, "Infinity") == 0)
          d = INFINITY;
        else if (strcmp(t, "-Infinity") == 0)
          d = -INFINITY;
        else if ((d = strtod(t, &endp), *endp != '\0' || endp == t))
          return jerr(jp, "%s: invalid number", f->json);
      } else {
        const char *s;
        size_t n;
        char tmp[512];
        if (number_token(jp, &s, &n) != 0)
          return -1;
        if (n >= sizeof tmp)
          return jerr(jp, "%s: number too long", f->json);
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        d = strtod(tmp, NULL);
      }
      if (d != 0 || signbit(d) || always) {
        uint64_t bits;
        memcpy(&bits, &d, 8);
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
          le[i] = (uint8_t)(bits >> (8 * i));
        rc = tt__buf_append_tag(out, f->num, 1);
        rc = rc ? rc : tt__buf_append(out, le, 8);
      }
      break;
    }
    case J_KIND:
    case J_STATUS: {
      uint64_t v = 0;
      if (parse_enum(jp, f, &v) != 0)
        return -1;
      if (v != 0 || always) {
        rc = tt__buf_append_tag(out, f->num, 0);
        rc = rc ? rc : tt__buf_append_varint(out, v);
      }
      break;
    }
    case J_I64:
    case J_I32: {
      int64_t v = 0;
      if (parse_integer(jp, f->json, true, &v, NULL) != 0)
        return -1;
      if (f->kind == J_I32 && (v < INT32_MIN || v > INT32_MAX))
        return jerr(jp, "%s: out of range", f->json);
      if (v != 0 || always) {
        rc = tt__buf_append_tag(out, f->num, 0);
        rc = rc ? rc : tt__buf_append_varint(out, (uint64_t)v);
      }
      break;
    }
    case J_U32:
    case J_F32:
    case J_F64: {
      uint64_t v = 0;
      if (parse_integer(jp, f->json, false, NULL, &v) != 0)
        return -1;
      if (f->kind != J_F64 && v > UINT32_MAX)
        return jerr(jp, "%s: out of range", f->json);
      if (v == 0 && !always)
        break;
      if (f->kind == J_U32) {
        rc = tt__buf_append_tag(out, f->num, 0);
        rc = rc ? rc : tt__buf_append_varint(out, v);
      } else {
        size_t width = f->kind == J_F64 ? 8 : 4;
        uint8_t le[8];
        for (size_t i = 0; i < width; i++)
          le[i] = (uint8_t)(v >> (8 * i));
        rc = tt__buf_append_tag(out, f->num, f->kind == J_F64 ? 1 : 5);
        rc = rc ? rc : tt__buf_append(out, le, width);
      }
      break;
    }
  }
  return rc == 0 ? 0 : oom(jp);
}

static const jfield_t *find_field(int msg, const tt_buf_t *key) {
  const jmsg_t *m = &jmsgs[msg];
  for (size_t i = 0; i < m->n; i++) {
    const jfield_t *f = &m->f[i];
    if ((key->len == strlen(f->json) && memcmp(key->data, f->json, key->len) == 0) ||
        (key->len == strlen(f->snake) && memcmp(key->data, f->snake, key->len) == 0))
      return f;
  }
  return NULL;
}

/* Fields are encoded in the order they appear in the JSON; protobuf readers accept any order. */
static int parse_message(jp_t *jp, int msg, int depth, tt_buf_t *out) {
  if (depth > JSON_MAX_DEPTH)
    return jerr(jp, "nesting deeper than %d", JSON_MAX_DEPTH);
  if (expect(jp, '{') != 0)
    return -1;
  if (peek(jp, '}')) {
    jp->p++;
    return 0;
  }
  for (;;) {
    if (parse_string(jp) != 0 || expect(jp, ':') != 0)
      return -1;
    const jfield_t *f = find_field(msg, &jp->str);
    if (f == NULL || literal(jp, "null")) {
      if (f == NULL && skip_value(jp, depth + 1) != 0)
        return -1;
    } else if (f->flags & F_REPEATED) {
      if (expect(jp, '[') != 0)
        return jerr(jp, "%s.%s: expected an array", jmsgs[msg].name, f->json);
      if (peek(jp, ']')) {
        jp->p++;
      } else {
        for (;;) {
          if (parse_field_value(jp, f, depth, out) != 0)
            return -1;
          if (peek(jp, ',')) {
            jp->p++;
            continue;
          }
          if (expect(jp, ']') != 0)
            return -1;
          break;
        }
      }
    } else if (parse_field_value(jp, f, depth, out) != 0) {
      return -1;
    }
    if (peek(jp, ',')) {
      jp->p++;
      continue;
    }
    return expect(jp, '}');
  }
}

int tt__otlp_json_to_pb(const char *json, size_t len, tt_buf_t *out, char *errbuf, size_t errlen) {
  char scratch_err[1];
  if (errbuf == NULL || errlen == 0) {
    errbuf = scratch_err;
    errlen = sizeof scratch_err;
  }
  errbuf[0] = '\0';
  jp_t *jp = calloc(1, sizeof *jp);
  if (jp == NULL)
    return -ENOMEM;
  jp->start = jp->p = json ? json : "";
  jp->end = jp->p + (json ? len : 0);
  jp->err = errbuf;
  jp->errlen = errlen;
  /* A UTF-8 byte order mark is tolerated at the start. */
  if (jp->end - jp->p >= 3 && memcmp(jp->p, "\xef\xbb\xbf", 3) == 0)
    jp->p += 3;
  size_t mark = out->len;
  int rc = parse_message(jp, JM_REQ, 0, out);
  if (rc == 0) {
    ws(jp);
    if (jp->p != jp->end)
      rc = jerr(jp, "trailing data after the top-level object");
  }
  for (size_t i = 0; i < N(jp->scratch); i++)
    tt__buf_free(&jp->scratch[i]);
  tt__buf_free(&jp->str);
  int result = rc == 0 ? 0 : (jp->oom ? jp->oom : -EINVAL);
  free(jp);
  if (result != 0)
    out->len = mark;
  return result;
}

/* ---- protobuf -> JSON --------------------------------------------------------------------- */

typedef struct {
  uint32_t num;
  uint32_t wt;
  uint64_t v;          /* varint / fixed value */
  const uint8_t *data; /* LEN payload */
  size_t len;
} pbfield_t;

/* Reads the next field; the input was validated, so this only guards against running off. */
static int next_field(const uint8_t **p, const uint8_t *end, pbfield_t *f) {
  uint64_t key = 0, v = 0;
  for (int s = 0;; s += 7) {
    if (*p >= end || s > 63)
      return -1;
    uint8_t b = *(*p)++;
    key |= (uint64_t)(b & 0x7f) << s;
    if (!(b & 0x80))
      break;
  }
  f->num = (uint32_t)(key >> 3);
  f->wt = key & 7;
  switch (f->wt) {
    case 0:
    case 2:
      for (int s = 0;; s += 7) {
        if (*p >= end || s > 63)
          return -1;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
          break;
      }
      if (f->wt == 2) {
        if (v > (uint64_t)(end - *p))
          return -1;
        f->data = *p;
        f->len = v;
        *p += v;
      }
      f->v = v;
      return 0;
    case 1:
    case 5: {
      size_t w = f->wt == 1 ? 8 : 4;
      if ((size_t)(end - *p) < w)
        return -1;
      for (size_t i = 0; i < w; i++)
        v |= (uint64_t)(*p)[i] << (8 * i);
      *p += w;
      f->v = v;
      return 0;
    }
    default:
      return -1;
  }
}

static int emit_value(const jfield_t *jf, const pbfield_t *f, tt_buf_t *out, int depth);

static int emit_message(const uint8_t *data, size_t len, int msg, tt_buf_t *out, int depth) {
  if (depth > JSON_MAX_DEPTH)
    return -EINVAL;
  const jmsg_t *m = &jmsgs[msg];
  const uint8_t *end = data + len;
  int rc = tt__buf_append(out, "{", 1);
  bool first = true;
  /* One pass per schema field keeps the output in field-number order and groups repeated
   * fields into arrays even when their occurrences are interleaved on the wire. */
  for (size_t i = 0; i < m->n && rc == 0; i++) {
    const jfield_t *jf = &m->f[i];
    pbfield_t f, last = {0};
    int count = 0;
    for (const uint8_t *p = data; p < end;) {
      if (next_field(&p, end, &f) != 0)
        return -EINVAL;
      if (f.num != jf->num)
        continue;
      if (jf->flags & F_REPEATED) {
        if (count == 0)
          rc = rc ? rc : tt__buf_appendf(out, "%s\"%s\":[", first ? "" : ",", jf->json);
        else
          rc = rc ? rc : tt__buf_append(out, ",", 1);
        rc = rc ? rc : emit_value(jf, &f, out, depth);
        first = false;
      } else {
        last = f;
      }
      count++;
    }
    if (count == 0)
      continue;
    if (jf->flags & F_REPEATED) {
      rc = rc ? rc : tt__buf_append(out, "]", 1);
    } else {
      rc = rc ? rc : tt__buf_appendf(out, "%s\"%s\":", first ? "" : ",", jf->json);
      rc = rc ? rc : emit_value(jf, &last, out, depth);
      first = false;
    }
  }
  return rc ? rc : tt__buf_append(out, "}", 1);
}

static int emit_value(const jfield_t *jf, const pbfield_t *f, tt_buf_t *out, int depth) {
  static const char hex[] = "0123456789abcdef";
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int rc = 0;
  switch (jf->kind) {
    case J_MSG:
      return emit_message(f->data, f->len, jf->sub, out, depth + 1);
    case J_STRING:
      return tt__json_append_string(out, (const char *)f->data, f->len);
    case J_ID:
      rc = tt__buf_append(out, "\"", 1);
      for (size_t i = 0; i < f->len && rc == 0; i++) {
        char two[2] = {hex[f->data[i] >> 4], hex[f->data[i] & 15]};
        rc = tt__buf_append(out, two, 2);
      }
      return rc ? rc : tt__buf_append(out, "\"", 1);
    case J_BYTES:
      rc = tt__buf_append(out, "\"", 1);
      for (size_t i = 0; i < f->len && rc == 0; i += 3) {
        uint32_t n = (uint32_t)f->data[i] << 16;
        if (i + 1 < f->len)
          n |= (uint32_t)f->data[i + 1] << 8;
        if (i + 2 < f->len)
          n |= f->data[i + 2];
        char q[4] = {b64[n >> 18], b64[(n >> 12) & 63], i + 1 < f->len ? b64[(n >> 6) & 63] : '=',
                     i + 2 < f->len ? b64[n & 63] : '='};
        rc = tt__buf_append(out, q, 4);
      }
      return rc ? rc : tt__buf_append(out, "\"", 1);
    case J_BOOL:
      return tt__buf_append_str(out, f->v ? "true" : "false");
    case J_U32:
    case J_F32:
      return tt__buf_appendf(out, "%u", (unsigned)(uint32_t)f->v);
    case J_KIND:
    case J_STATUS:
    case J_I32:
      return tt__buf_appendf(out, "%d", (int)(int32_t)f->v);
    case J_I64:
      return tt__buf_appendf(out, "\"%lld\"", (long long)(int64_t)f->v);
    case J_F64:
      return tt__buf_appendf(out, "\"%llu\"", (unsigned long long)f->v);
    case J_DOUBLE: {
      double d;
      memcpy(&d, &f->v, 8);
      if (isnan(d))
        return tt__buf_append_str(out, "\"NaN\"");
      if (isinf(d))
        return tt__buf_append_str(out, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      /* 17 significant digits round-trip every double exactly. */
      return tt__buf_appendf(out, "%.17g", d);
    }
  }
  return -EINVAL;
}

int tt__otlp_json_from_pb(const uint8_t *pb, size_t len, tt_buf_t *out) {
  if (tt__otlp_validate_export_request(pb, len, NULL, 0) != 0)
    return -EINVAL;
  size_t mark = out->len;
  int rc = emit_message(pb ? pb : (const uint8_t *)"", len, JM_REQ, out, 0);
  if (rc != 0)
    out->len = mark;
  return rc;
}
