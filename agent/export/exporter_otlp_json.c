/* exporter_otlp_json.c: writes each batch as one OTLP/JSON line (a TracesData object), for
 * debugging without a collector and for piping into tools that read OTLP/JSON files (the
 * OpenTelemetry Collector's file receiver, jq). The encoding follows the OTLP/JSON rules: ids as
 * lowercase hex, enums as integers, 64-bit integers as decimal strings, lowerCamelCase keys.
 *
 * A batch is built in one growable buffer and written with a single fwrite, so lines from one
 * exporter never interleave. Exporter thread only. */
#include "exporter_otlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} jbuf_t;

typedef struct {
  FILE *f;
  int owned; /* fclose at shutdown (not stdout/stderr) */
  jbuf_t b;
} json_exporter_t;

static void put(jbuf_t *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->cap - b->len < n + 1) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n + 1)
      cap *= 2;
    char *np = tt__realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void puts_(jbuf_t *b, const char *s) {
  put(b, s, strlen(s));
}

static void put_u(jbuf_t *b, unsigned long long v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%llu", v);
  put(b, tmp, (size_t)n);
}

static void put_i(jbuf_t *b, long long v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", v);
  put(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *s) {
  if (s[0] < 0x80)
    return 1;
  size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
  if (n == 0 || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4))
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
    return 0; /* overlong or surrogate */
  if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
    return 0;
  return n;
}

/* JSON string; invalid UTF-8 becomes U+FFFD so one bad attribute never breaks the line. */
static void put_str(jbuf_t *b, const char *s) {
  put(b, "\"", 1);
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  while (*p) {
    size_t n = utf8_len(p);
    if (n == 0) {
      puts_(b, "\\ufffd");
      p++;
    } else if (*p == '"' || *p == '\\') {
      put(b, "\\", 1);
      put(b, (const char *)p, 1);
      p++;
    } else if (*p < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
      put(b, esc, 6);
      p++;
    } else {
      put(b, (const char *)p, n);
      p += n;
    }
  }
  put(b, "\"", 1);
}

static void put_hex(jbuf_t *b, const uint8_t *id, size_t n) {
  char hex[33];
  tt__hex_encode(id, n, hex);
  put(b, "\"", 1);
  put(b, hex, n * 2);
  put(b, "\"", 1);
}

static void put_u64s(jbuf_t *b, uint64_t v) { /* 64-bit integers are JSON strings in OTLP */
  put(b, "\"", 1);
  put_u(b, v);
  put(b, "\"", 1);
}

static void put_double(jbuf_t *b, double d) {
  if (isnan(d)) {
    puts_(b, "\"NaN\"");
  } else if (isinf(d)) {
    puts_(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  } else {
    char tmp[40];
    int n = snprintf(tmp, sizeof tmp, "%.17g", d);
    put(b, tmp, (size_t)n);
  }
}

static void put_scalar_item(jbuf_t *b, tt_attr_type_t t, const void *items, size_t i) {
  switch (t) {
    case TT_ATTR_STRING_ARRAY:
      puts_(b, "{\"stringValue\":");
      put_str(b, ((const char *const *)items)[i]);
      break;
    case TT_ATTR_BOOL_ARRAY:
      puts_(b, ((const uint8_t *)items)[i] ? "{\"boolValue\":true" : "{\"boolValue\":false");
      break;
    case TT_ATTR_INT_ARRAY:
      puts_(b, "{\"intValue\":\"");
      put_i(b, ((const int64_t *)items)[i]);
      put(b, "\"", 1);
      break;
    default:
      puts_(b, "{\"doubleValue\":");
      put_double(b, ((const double *)items)[i]);
      break;
  }
  put(b, "}", 1);
}

static void put_attrs(jbuf_t *b, const tt_attribute_t *a, size_t n) {
  puts_(b, "\"attributes\":[");
  for (size_t i = 0; a && i < n; i++) {
    if (i)
      put(b, ",", 1);
    puts_(b, "{\"key\":");
    put_str(b, a[i].key);
    puts_(b, ",\"value\":{");
    switch (a[i].type) {
      case TT_ATTR_STRING:
        puts_(b, "\"stringValue\":");
        put_str(b, a[i].value.str.ptr);
        break;
      case TT_ATTR_BOOL:
        puts_(b, a[i].value.b ? "\"boolValue\":true" : "\"boolValue\":false");
        break;
      case TT_ATTR_INT:
        puts_(b, "\"intValue\":\"");
        put_i(b, a[i].value.i);
        put(b, "\"", 1);
        break;
      case TT_ATTR_DOUBLE:
        puts_(b, "\"doubleValue\":");
        put_double(b, a[i].value.d);
        break;
      case TT_ATTR_STRING_ARRAY:
      case TT_ATTR_BOOL_ARRAY:
      case TT_ATTR_INT_ARRAY:
      case TT_ATTR_DOUBLE_ARRAY:
        puts_(b, "\"arrayValue\":{\"values\":[");
        for (size_t k = 0; a[i].value.array.items && k < a[i].value.array.count; k++) {
          if (k)
            put(b, ",", 1);
          put_scalar_item(b, a[i].type, a[i].value.array.items, k);
        }
        puts_(b, "]}");
        break;
    }
    puts_(b, "}}");
  }
  put(b, "]", 1);
}

static void put_span(jbuf_t *b, const tt_span_data_t *s) {
  puts_(b, "{\"traceId\":");
  put_hex(b, s->trace_id, 16);
  puts_(b, ",\"spanId\":");
  put_hex(b, s->span_id, 8);
  if (s->has_parent) {
    puts_(b, ",\"parentSpanId\":");
    put_hex(b, s->parent_span_id, 8);
  }
  if (s->tracestate && s->tracestate[0]) {
    puts_(b, ",\"traceState\":");
    put_str(b, s->tracestate);
  }
  puts_(b, ",\"name\":");
  put_str(b, s->name);
  puts_(b, ",\"kind\":");
  put_u(b, (unsigned long long)s->kind);
  puts_(b, ",\"startTimeUnixNano\":");
  put_u64s(b, s->start_time_unix_ns);
  puts_(b, ",\"endTimeUnixNano\":");
  put_u64s(b, s->end_time_unix_ns);
  put(b, ",", 1);
  put_attrs(b, s->attributes, s->attribute_count);
  puts_(b, ",\"droppedAttributesCount\":");
  put_u(b, s->dropped_attributes_count);
  puts_(b, ",\"events\":[");
  for (size_t i = 0; s->events && i < s->event_count; i++) {
    const tt_event_t *e = &s->events[i];
    puts_(b, i ? ",{\"timeUnixNano\":" : "{\"timeUnixNano\":");
    put_u64s(b, e->time_unix_ns);
    puts_(b, ",\"name\":");
    put_str(b, e->name);
    put(b, ",", 1);
    put_attrs(b, e->attributes, e->attribute_count);
    puts_(b, ",\"droppedAttributesCount\":");
    put_u(b, e->dropped_attributes_count);
    puts_(b, "}");
  }
  puts_(b, "],\"droppedEventsCount\":");
  put_u(b, s->dropped_events_count);
  puts_(b, ",\"links\":[");
  for (size_t i = 0; s->links && i < s->link_count; i++) {
    const tt_link_t *l = &s->links[i];
    puts_(b, i ? ",{\"traceId\":" : "{\"traceId\":");
    put_hex(b, l->context.trace_id, 16);
    puts_(b, ",\"spanId\":");
    put_hex(b, l->context.span_id, 8);
    if (l->tracestate && l->tracestate[0]) {
      puts_(b, ",\"traceState\":");
      put_str(b, l->tracestate);
    }
    put(b, ",", 1);
    put_attrs(b, l->attributes, l->attribute_count);
    puts_(b, ",\"droppedAttributesCount\":");
    put_u(b, l->dropped_attributes_count);
    puts_(b, ",\"flags\":");
    put_u(b, tt__otlp_link_flags(&l->context));
    puts_(b, "}");
  }
  puts_(b, "],\"droppedLinksCount\":");
  put_u(b, s->dropped_links_count);
  puts_(b, ",\"status\":{\"code\":");
  put_u(b, (unsigned long long)s->status_code);
  if (s->status_message && s->status_message[0]) {
    puts_(b, ",\"message\":");
    put_str(b, s->status_message);
  }
  puts_(b, "},\"flags\":");
  put_u(b, s->flags);
  puts_(b, "}");
}

/* Appends one TracesData object for the batch, grouped by resource then scope (by pointer, in
 * first-seen order) like the protobuf encoder. O(n * groups); groups are few. */
static void put_batch(jbuf_t *b, const tt_span_data_t *const *spans, size_t n) {
  puts_(b, "{\"resourceSpans\":[");
  int first_res = 1;
  for (size_t i = 0; i < n; i++) {
    const tt_resource_t *res = spans[i]->resource;
    int seen = 0;
    for (size_t k = 0; k < i && !seen; k++)
      seen = spans[k]->resource == res;
    if (seen)
      continue;
    puts_(b, first_res ? "{\"resource\":{" : ",{\"resource\":{");
    first_res = 0;
    put_attrs(b, res ? res->attributes : NULL, res ? res->attribute_count : 0);
    puts_(b, ",\"droppedAttributesCount\":");
    put_u(b, res ? res->dropped_attributes_count : 0);
    puts_(b, "},\"scopeSpans\":[");
    int first_scope = 1;
    for (size_t j = i; j < n; j++) {
      if (spans[j]->resource != res)
        continue;
      const tt_scope_t *sc = spans[j]->scope;
      int sseen = 0;
      for (size_t k = i; k < j && !sseen; k++)
        sseen = spans[k]->resource == res && spans[k]->scope == sc;
      if (sseen)
        continue;
      puts_(b, first_scope ? "{\"scope\":{\"name\":" : ",{\"scope\":{\"name\":");
      first_scope = 0;
      put_str(b, sc ? sc->name : "");
      puts_(b, ",\"version\":");
      put_str(b, sc ? sc->version : "");
      puts_(b, "},\"spans\":[");
      int first_span = 1;
      for (size_t k = j; k < n; k++) {
        if (spans[k]->resource != res || spans[k]->scope != sc)
          continue;
        if (!first_span)
          put(b, ",", 1);
        first_span = 0;
        put_span(b, spans[k]);
      }
      puts_(b, "],\"schemaUrl\":");
      put_str(b, sc ? sc->schema_url : "");
      put(b, "}", 1);
    }
    puts_(b, "],\"schemaUrl\":");
    put_str(b, res ? res->schema_url : "");
    put(b, "}", 1);
  }
  puts_(b, "]}\n");
}

char *tt__otlp_json_encode(const tt_span_data_t *const *spans, size_t n) {
  jbuf_t b = {NULL, 0, 0, 0};
  put_batch(&b, spans, n);
  put(&b, "", 0);
  if (b.oom) {
    tt__free(b.p);
    return NULL;
  }
  b.p[b.len] = '\0';
  return b.p;
}

static tt_export_result_t json_export(void *state, const tt_span_data_t *const *spans, size_t n,
                                      uint64_t deadline_ns, uint64_t *retry_after_ns) {
  (void)deadline_ns;
  (void)retry_after_ns;
  json_exporter_t *x = state;
  x->b.len = 0;
  x->b.oom = 0;
  put_batch(&x->b, spans, n);
  if (x->b.oom)
    return TT_EXPORT_FAILURE;
  if (fwrite(x->b.p, 1, x->b.len, x->f) != x->b.len || fflush(x->f) != 0)
    return TT_EXPORT_FAILURE;
  return TT_EXPORT_SUCCESS;
}

static int json_flush(void *state, uint64_t deadline_ns) {
  (void)deadline_ns;
  json_exporter_t *x = state;
  return fflush(x->f) == 0 ? 0 : TT_EEXPORT;
}

static void json_shutdown(void *state, uint64_t deadline_ns) {
  (void)deadline_ns;
  json_exporter_t *x = state;
  if (x->owned)
    fclose(x->f);
  else
    fflush(x->f);
  tt__free(x->b.p);
  tt__free(x);
}

int tt_otlp_json_exporter_new(const char *path, tt_exporter_t *out) {
  if (out == NULL)
    return TT_EINVAL;
  memset(out, 0, sizeof *out);
  json_exporter_t *x = tt__calloc(1, sizeof *x);
  if (x == NULL)
    return TT_ENOMEM;
  if (path == NULL || strcmp(path, "-") == 0) {
    x->f = stdout;
  } else if (strcmp(path, "stderr") == 0) {
    x->f = stderr;
  } else {
    x->f = fopen(path, "ae"); /* close-on-exec: a forked child must not inherit it silently */
    x->owned = 1;
    if (x->f == NULL) {
      tt__free(x);
      return TT_EINVAL;
    }
  }
  out->size = sizeof *out;
  out->state = x;
  out->export_spans = json_export;
  out->force_flush = json_flush;
  out->shutdown = json_shutdown;
  return 0;
}
