/* OTLP/JSON -> protobuf (tt__otlp_json_to_pb in otlp_json.h): a recursive-descent JSON parser
 * driven by the schema table of otlp_json_int.h, encoding each message as it parses it. */
#include "otlp_json_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The JSON mapping also accepts enums by name. */
static const char *const kind_names[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL",
                                         "SPAN_KIND_SERVER",      "SPAN_KIND_CLIENT",
                                         "SPAN_KIND_PRODUCER",    "SPAN_KIND_CONSUMER"};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

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

static int hexval(uint8_t c) {
  return (c >= '0' && c <= '9')   ? c - '0'
         : (c >= 'a' && c <= 'f') ? c - 'a' + 10
         : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                  : -1;
}

/* The four hex digits of a \u escape, or -1. */
static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hexval((uint8_t)p[i]);
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

/* Decodes a JSON string into jp->str (not NUL-terminated). Rejects raw control characters and
 * bad escapes. Bytes that are not UTF-8, and unpaired surrogate escapes (written as the three
 * bytes of the surrogate, which are not UTF-8 either), are carried into the protobuf as they are:
 * the pipeline then refuses only the span, resource or scope that holds them, exactly as it does
 * for a protobuf request, rather than the whole request for one bad string. */
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
      size_t n = tt__json_utf8_seq((const uint8_t *)jp->p, (size_t)(jp->end - jp->p));
      if (n == 0)
        n = 1; /* not UTF-8: the byte goes through, for the pipeline to refuse its span */
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
    if (e != 'u') {
      int raw = tt__json_unescape(e);
      if (raw < 0)
        return jerr(jp, "invalid escape '\\%c'", e);
      char simple = (char)raw;
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
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        jp->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
      }
    }
    /* An unpaired surrogate is left as it is: put_utf8 writes its three bytes (ED A0..BF ..). */
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

/* Every JSON array and object is walked the same way, whether its elements are parsed or
 * skipped. After the opening bracket: true when `close` follows at once (consumed). */
static bool container_empty(jp_t *jp, char close) {
  if (!peek(jp, close))
    return false;
  jp->p++;
  return true;
}

/* After an element: 1 when a ',' says another follows (consumed); otherwise `close` must end the
 * container: 0 when it does (consumed), -1 with the error set when not. */
static int container_next(jp_t *jp, char close) {
  if (peek(jp, ',')) {
    jp->p++;
    return 1;
  }
  return expect(jp, close);
}

static int skip_value(jp_t *jp, int depth);

static int skip_container(jp_t *jp, char close, bool object, int depth) {
  jp->p++;
  if (container_empty(jp, close))
    return 0;
  int more;
  do {
    if (object && (parse_string(jp) != 0 || expect(jp, ':') != 0))
      return -1;
    if (skip_value(jp, depth + 1) != 0)
      return -1;
  } while ((more = container_next(jp, close)) == 1);
  return more;
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

/* A varint field (tag and value); 0 or -ENOMEM. Length-delimited and fixed-width fields use
 * buf.h's tt__buf_append_lenfield and tt__buf_append_fixed. */
static int append_varint(tt_buf_t *out, uint32_t num, uint64_t v) {
  int rc = tt__buf_append_tag(out, num, 0);
  return rc ? rc : tt__buf_append_varint(out, v);
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
      rc = tt__buf_append_lenfield(out, f->num, sub->data, sub->len);
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
        rc = tt__buf_append_lenfield(out, f->num, val->data, val->len);
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
      if (b || always)
        rc = append_varint(out, f->num, b);
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
        rc = tt__buf_append_fixed(out, f->num, bits, 8);
      }
      break;
    }
    case J_KIND:
    case J_STATUS: {
      uint64_t v = 0;
      if (parse_enum(jp, f, &v) != 0)
        return -1;
      if (v != 0 || always)
        rc = append_varint(out, f->num, v);
      break;
    }
    case J_I64:
    case J_I32: {
      int64_t v = 0;
      if (parse_integer(jp, f->json, true, &v, NULL) != 0)
        return -1;
      if (f->kind == J_I32 && (v < INT32_MIN || v > INT32_MAX))
        return jerr(jp, "%s: out of range", f->json);
      if (v != 0 || always)
        rc = append_varint(out, f->num, (uint64_t)v);
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
      if (f->kind == J_U32)
        rc = append_varint(out, f->num, v);
      else
        rc = tt__buf_append_fixed(out, f->num, v, f->kind == J_F64 ? 8 : 4);
      break;
    }
  }
  return rc == 0 ? 0 : oom(jp);
}

static const jfield_t *find_field(int msg, const tt_buf_t *key) {
  const jmsg_t *m = &tt__otlp_json_schema[msg];
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
  if (container_empty(jp, '}'))
    return 0;
  int more;
  do {
    if (parse_string(jp) != 0 || expect(jp, ':') != 0)
      return -1;
    const jfield_t *f = find_field(msg, &jp->str);
    if (f == NULL || literal(jp, "null")) {
      if (f == NULL && skip_value(jp, depth + 1) != 0)
        return -1;
    } else if (f->flags & F_REPEATED) {
      if (expect(jp, '[') != 0)
        return jerr(jp, "%s.%s: expected an array", tt__otlp_json_schema[msg].name, f->json);
      if (!container_empty(jp, ']')) {
        int item;
        do {
          if (parse_field_value(jp, f, depth, out) != 0)
            return -1;
        } while ((item = container_next(jp, ']')) == 1);
        if (item != 0)
          return -1;
      }
    } else if (parse_field_value(jp, f, depth, out) != 0) {
      return -1;
    }
  } while ((more = container_next(jp, '}')) == 1);
  return more;
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
