/* otlp_status.c: decodes what an OTLP server answers: google.rpc.Status (HTTP error bodies and
 * gRPC's grpc-status-details-bin) with its RetryInfo detail, and ExportTraceServiceResponse's
 * partial_success. google.rpc.* is not in our proto/ tree, and the three messages involved are
 * tiny, so a bounded hand-written wire reader serves better than a second codegen. Every read is
 * checked against the end of the buffer: the input comes from the network. */
#include "otlp_transport.h"

#include <stdlib.h>
#include <string.h>

#define RETRY_INFO_URL "type.googleapis.com/google.rpc.RetryInfo"

typedef struct {
  const uint8_t *p, *end;
} rd_t;

/* The collector's varint rule (collector/otlp/wire.h, tt__wire_varint; libtailtrace cannot link the
 * collector, so this is the one other copy): at most ten bytes, the tenth 0x00 or 0x01, so a
 * value past 64 bits is refused rather than truncated. */
static int rd_varint(rd_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end)
      return -1;
    uint8_t b = *r->p++;
    if (shift == 63 && b > 1)
      return -1;
    x |= (uint64_t)(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Reads a field key and, for length-delimited fields, the payload bounds. Skips nothing. */
static int rd_field(rd_t *r, uint32_t *field, uint32_t *wt, const uint8_t **data, size_t *dlen,
                    uint64_t *num) {
  uint64_t key;
  if (rd_varint(r, &key) != 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
    return -1;
  *field = (uint32_t)(key >> 3);
  *wt = (uint32_t)(key & 7);
  switch (*wt) {
    case 0:
      return rd_varint(r, num);
    case 1:
      if (r->end - r->p < 8)
        return -1;
      r->p += 8;
      return 0;
    case 5:
      if (r->end - r->p < 4)
        return -1;
      r->p += 4;
      return 0;
    case 2: {
      uint64_t l;
      if (rd_varint(r, &l) != 0 || l > (uint64_t)(r->end - r->p))
        return -1;
      *data = r->p;
      *dlen = (size_t)l;
      r->p += l;
      return 0;
    }
    default:
      return -1; /* groups (3, 4) are not used by these messages */
  }
}

static void copy_msg(tt__export_result_t *res, const uint8_t *s, size_t len) {
  if (len == 0)
    return;
  if (len >= sizeof res->message)
    len = sizeof res->message - 1;
  memcpy(res->message, s, len);
  res->message[len] = '\0';
}

/* google.protobuf.Duration {int64 seconds = 1; int32 nanos = 2} inside RetryInfo field 1. */
static int parse_retry_info(const uint8_t *p, size_t len, int64_t *ms) {
  rd_t r = {p, p + len};
  int64_t out = 0;
  while (r.p < r.end) {
    uint32_t f, wt;
    const uint8_t *d = NULL;
    size_t dl = 0;
    uint64_t num = 0;
    if (rd_field(&r, &f, &wt, &d, &dl, &num) != 0)
      return -1;
    if (f == 1 && wt == 2) {
      rd_t dr = {d, d + dl};
      int64_t sec = 0, nanos = 0;
      while (dr.p < dr.end) {
        uint32_t df, dwt;
        uint64_t dn = 0;
        const uint8_t *dd;
        size_t ddl;
        if (rd_field(&dr, &df, &dwt, &dd, &ddl, &dn) != 0)
          return -1;
        if (df == 1 && dwt == 0)
          sec = (int64_t)dn;
        else if (df == 2 && dwt == 0)
          nanos = (int32_t)(uint32_t)dn;
      }
      if (sec < 0 || nanos < 0 || sec > 86400LL * 365)
        return -1;
      out = sec * 1000 + nanos / 1000000;
    }
  }
  *ms = out;
  return 0;
}

int tt__otlp_parse_rpc_status(const uint8_t *p, size_t len, int *code, tt__export_result_t *res) {
  rd_t r = {p, p + len};
  const uint8_t *msg = NULL;
  size_t msg_len = 0;
  int64_t retry_ms = -1;
  int c = 0;
  while (r.p < r.end) {
    uint32_t f, wt;
    const uint8_t *d = NULL;
    size_t dl = 0;
    uint64_t num = 0;
    if (rd_field(&r, &f, &wt, &d, &dl, &num) != 0)
      return -1;
    if (f == 1 && wt == 0) {
      c = (int)(int32_t)(uint32_t)num;
    } else if (f == 2 && wt == 2) {
      msg = d;
      msg_len = dl;
    } else if (f == 3 && wt == 2) {
      /* google.protobuf.Any {string type_url = 1; bytes value = 2} */
      rd_t ar = {d, d + dl};
      const uint8_t *url = NULL, *val = NULL;
      size_t url_len = 0, val_len = 0;
      while (ar.p < ar.end) {
        uint32_t af, awt;
        const uint8_t *ad = NULL;
        size_t adl = 0;
        uint64_t an;
        if (rd_field(&ar, &af, &awt, &ad, &adl, &an) != 0)
          return -1;
        if (af == 1 && awt == 2) {
          url = ad;
          url_len = adl;
        } else if (af == 2 && awt == 2) {
          val = ad;
          val_len = adl;
        }
      }
      if (url != NULL && url_len == sizeof RETRY_INFO_URL - 1 &&
          memcmp(url, RETRY_INFO_URL, url_len) == 0) {
        int64_t ms;
        if (parse_retry_info(val ? val : (const uint8_t *)"", val_len, &ms) == 0)
          retry_ms = ms;
      }
    }
  }
  if (code)
    *code = c;
  copy_msg(res, msg, msg_len);
  if (retry_ms >= 0)
    res->retry_after_ms = retry_ms;
  return 0;
}

int tt__otlp_parse_export_response(const uint8_t *p, size_t len, tt__export_result_t *res) {
  rd_t r = {p, p + len};
  while (r.p < r.end) {
    uint32_t f, wt;
    const uint8_t *d = NULL;
    size_t dl = 0;
    uint64_t num = 0;
    if (rd_field(&r, &f, &wt, &d, &dl, &num) != 0)
      return -1;
    if (f != 1 || wt != 2)
      continue;
    /* ExportTracePartialSuccess {int64 rejected_spans = 1; string error_message = 2} */
    rd_t pr = {d, d + dl};
    while (pr.p < pr.end) {
      uint32_t pf, pwt;
      const uint8_t *pd = NULL;
      size_t pdl = 0;
      uint64_t pn = 0;
      if (rd_field(&pr, &pf, &pwt, &pd, &pdl, &pn) != 0)
        return -1;
      if (pf == 1 && pwt == 0)
        res->rejected_spans = (int64_t)pn;
      else if (pf == 2 && pwt == 2)
        copy_msg(res, pd, pdl);
    }
  }
  return 0;
}

/* ---- OTLP/JSON answers ------------------------------------------------------------------ *
 * For http/json the server answers in JSON. Only three facts matter (rejected span count, a
 * message, a retry delay), so a bounded key scan is enough; it may be fooled by a key name
 * inside a string value, which at worst yields a wrong message, never a bad read. */

static const char *json_find(const char *p, const char *end, const char *key) {
  size_t kl = strlen(key);
  for (const char *q = p; q + kl + 2 <= end; q++) {
    if (q[0] != '"' || memcmp(q + 1, key, kl) != 0 || q[kl + 1] != '"')
      continue;
    const char *r = q + kl + 2;
    while (r < end && (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r'))
      r++;
    if (r >= end || *r != ':')
      continue;
    r++;
    while (r < end && (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r'))
      r++;
    return r < end ? r : NULL;
  }
  return NULL;
}

/* Copies a JSON string value (escapes decoded; \uXXXX outside ASCII becomes '?'). */
static int json_string(const char *p, const char *end, char *out, size_t cap) {
  if (p >= end || *p != '"' || cap == 0)
    return -1;
  size_t n = 0;
  for (p++; p < end && *p != '"'; p++) {
    char c = *p;
    if (c == '\\') {
      if (++p >= end)
        return -1;
      switch (*p) {
        case 'n':
          c = '\n';
          break;
        case 't':
          c = '\t';
          break;
        case 'r':
          c = '\r';
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'u': {
          if (end - p < 5)
            return -1;
          unsigned v = 0;
          for (int i = 1; i <= 4; i++) {
            char h = p[i];
            v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                           : 0);
          }
          c = v < 0x80 ? (char)v : '?';
          p += 4;
          break;
        }
        default:
          c = *p; /* \" \\ \/ */
          break;
      }
    }
    if (n + 1 < cap)
      out[n++] = c;
  }
  if (p >= end)
    return -1;
  out[n] = '\0';
  return 0;
}

/* An int64 written as a JSON number or, per the proto3 JSON mapping, a string. */
static int json_int(const char *p, const char *end, int64_t *v) {
  int quoted = p < end && *p == '"';
  p += quoted;
  int neg = p < end && *p == '-';
  p += neg;
  if (p >= end || *p < '0' || *p > '9')
    return -1;
  int64_t x = 0;
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    int d = *p - '0';
    if (x > (INT64_MAX - d) / 10) /* exact: INT64_MAX itself still reads */
      return -1;
    x = x * 10 + d;
  }
  *v = neg ? -x : x;
  return 0;
}

int tt__otlp_parse_json_response(const char *p, size_t len, tt__export_result_t *res) {
  const char *end = p + len;
  const char *ps = json_find(p, end, "partialSuccess");
  if (ps == NULL)
    return 0;
  const char *v = json_find(ps, end, "rejectedSpans");
  int64_t n;
  if (v != NULL && json_int(v, end, &n) == 0 && n >= 0)
    res->rejected_spans = n;
  v = json_find(ps, end, "errorMessage");
  char msg[sizeof res->message];
  if (v != NULL && json_string(v, end, msg, sizeof msg) == 0 && msg[0])
    memcpy(res->message, msg, sizeof msg);
  return 0;
}

int tt__otlp_parse_json_status(const char *p, size_t len, tt__export_result_t *res) {
  const char *end = p + len;
  const char *v = json_find(p, end, "message");
  char msg[sizeof res->message];
  if (v == NULL || json_string(v, end, msg, sizeof msg) != 0)
    return -1;
  if (msg[0])
    memcpy(res->message, msg, sizeof msg);
  /* google.rpc.RetryInfo in JSON: "retryDelay": "1.500s" (a google.protobuf.Duration). */
  v = json_find(p, end, "retryDelay");
  char d[32];
  if (v != NULL && json_string(v, end, d, sizeof d) == 0) {
    char *e;
    double sec = strtod(d, &e);
    if (e != d && *e == 's' && e[1] == '\0' && sec >= 0 && sec < 86400.0 * 365)
      res->retry_after_ms = (int64_t)(sec * 1000.0 + 0.5);
  }
  return 0;
}

void tt__export_result_init(tt__export_result_t *res) {
  memset(res, 0, sizeof *res);
  res->retry_after_ms = -1;
}
