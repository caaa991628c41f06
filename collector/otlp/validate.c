/* The wire form of OTLP requests and answers that both receivers and the forwarding side share:
 * a bounds-checked validation of ExportTraceServiceRequest bytes, and the google.rpc.Status
 * encoding of error answers. No transport here. */
#include "validate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wire.h"

/* ---- wire-level validation ------------------------------------------------------------------
 * A table-driven scan over the OTLP trace schema. It checks framing only (tags, lengths, wire
 * types, nesting), which is what the pipeline's zero-copy span scanner relies on; the per-span
 * rules (id lengths, times) are the pipeline's job and end up as partial success. */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5, WT_ANY = 0xff };

enum {
  M_NONE = 0, /* a string or bytes payload: not scanned further */
  M_REQ,
  M_RSPANS,
  M_RESOURCE,
  M_SSPANS,
  M_SCOPE,
  M_SPAN,
  M_EVENT,
  M_LINK,
  M_STATUS,
  M_KV,
  M_ANY,
  M_ARRAY,
  M_KVLIST,
  M_COUNT
};

#define MAX_FIELD 16
#define MAX_DEPTH 64

typedef struct {
  uint8_t wt;  /* expected wire type; 0 in an unlisted slot means "unknown field" (see known) */
  uint8_t sub; /* nested message for WT_LEN, or M_NONE */
  uint8_t known;
} fdesc_t;

#define F(wt_, sub_)                                                                               \
  { wt_, sub_, 1 }
static const fdesc_t schema[M_COUNT][MAX_FIELD + 1] = {
    [M_REQ] = {[1] = F(WT_LEN, M_RSPANS)},
    [M_RSPANS] = {[1] = F(WT_LEN, M_RESOURCE), [2] = F(WT_LEN, M_SSPANS), [3] = F(WT_LEN, M_NONE)},
    [M_RESOURCE] = {[1] = F(WT_LEN, M_KV), [2] = F(WT_VARINT, M_NONE)},
    [M_SSPANS] = {[1] = F(WT_LEN, M_SCOPE), [2] = F(WT_LEN, M_SPAN), [3] = F(WT_LEN, M_NONE)},
    [M_SCOPE] = {[1] = F(WT_LEN, M_NONE),
                 [2] = F(WT_LEN, M_NONE),
                 [3] = F(WT_LEN, M_KV),
                 [4] = F(WT_VARINT, M_NONE)},
    [M_SPAN] = {[1] = F(WT_LEN, M_NONE),
                [2] = F(WT_LEN, M_NONE),
                [3] = F(WT_LEN, M_NONE),
                [4] = F(WT_LEN, M_NONE),
                [5] = F(WT_LEN, M_NONE),
                [6] = F(WT_VARINT, M_NONE),
                [7] = F(WT_I64, M_NONE),
                [8] = F(WT_I64, M_NONE),
                [9] = F(WT_LEN, M_KV),
                [10] = F(WT_VARINT, M_NONE),
                [11] = F(WT_LEN, M_EVENT),
                [12] = F(WT_VARINT, M_NONE),
                [13] = F(WT_LEN, M_LINK),
                [14] = F(WT_VARINT, M_NONE),
                [15] = F(WT_LEN, M_STATUS),
                [16] = F(WT_I32, M_NONE)},
    [M_EVENT] = {[1] = F(WT_I64, M_NONE),
                 [2] = F(WT_LEN, M_NONE),
                 [3] = F(WT_LEN, M_KV),
                 [4] = F(WT_VARINT, M_NONE)},
    [M_LINK] = {[1] = F(WT_LEN, M_NONE),
                [2] = F(WT_LEN, M_NONE),
                [3] = F(WT_LEN, M_NONE),
                [4] = F(WT_LEN, M_KV),
                [5] = F(WT_VARINT, M_NONE),
                [6] = F(WT_I32, M_NONE)},
    [M_STATUS] = {[2] = F(WT_LEN, M_NONE), [3] = F(WT_VARINT, M_NONE)},
    [M_KV] = {[1] = F(WT_LEN, M_NONE), [2] = F(WT_LEN, M_ANY), [3] = F(WT_VARINT, M_NONE)},
    [M_ANY] = {[1] = F(WT_LEN, M_NONE),
               [2] = F(WT_VARINT, M_NONE),
               [3] = F(WT_VARINT, M_NONE),
               [4] = F(WT_I64, M_NONE),
               [5] = F(WT_LEN, M_ARRAY),
               [6] = F(WT_LEN, M_KVLIST),
               [7] = F(WT_LEN, M_NONE),
               [8] = F(WT_VARINT, M_NONE)},
    [M_ARRAY] = {[1] = F(WT_LEN, M_ANY)},
    [M_KVLIST] = {[1] = F(WT_LEN, M_KV)},
};
#undef F

static const char *const msg_names[M_COUNT] = {"bytes",         "ExportTraceServiceRequest",
                                               "ResourceSpans", "Resource",
                                               "ScopeSpans",    "Scope",
                                               "Span",          "Span.Event",
                                               "Span.Link",     "Status",
                                               "KeyValue",      "AnyValue",
                                               "ArrayValue",    "KeyValueList"};

/* Why tt__wire_varint refused the bytes at p, for the error message: they ran out before the
 * varint ended, or the varint goes past 64 bits (an eleventh byte, or a tenth byte over 0x01). */
static const char *varint_fault(const uint8_t *p, const uint8_t *end) {
  for (int i = 0; i < 10 && p < end; i++, p++)
    if ((*p & 0x80) == 0)
      return "overflows 64 bits";
  return p >= end ? "is truncated" : "overflows 64 bits";
}

static int scan(const uint8_t *p, const uint8_t *end, int msg, int depth, char *err,
                size_t errlen) {
  if (depth > MAX_DEPTH) {
    snprintf(err, errlen, "message nesting deeper than %d", MAX_DEPTH);
    return -EINVAL;
  }
  while (p < end) {
    uint64_t key;
    if (tt__wire_varint(&p, end, &key) != 0) {
      snprintf(err, errlen, "tag varint in %s %s", msg_names[msg], varint_fault(p, end));
      return -EINVAL;
    }
    uint64_t field = key >> 3;
    unsigned wt = key & 7;
    if (field == 0 || field > 0x1fffffff) {
      snprintf(err, errlen, "invalid field number in %s", msg_names[msg]);
      return -EINVAL;
    }
    const fdesc_t *fd = field <= MAX_FIELD ? &schema[msg][field] : NULL;
    if (fd != NULL && fd->known && fd->wt != wt) {
      snprintf(err, errlen, "%s field %u has wire type %u, expected %u", msg_names[msg],
               (unsigned)field, wt, fd->wt);
      return -EINVAL;
    }
    uint64_t v;
    switch (wt) {
      case WT_VARINT:
        if (tt__wire_varint(&p, end, &v) != 0)
          goto bad_varint;
        break;
      case WT_I64:
        if (end - p < 8)
          goto truncated;
        p += 8;
        break;
      case WT_I32:
        if (end - p < 4)
          goto truncated;
        p += 4;
        break;
      case WT_LEN:
        if (tt__wire_varint(&p, end, &v) != 0)
          goto bad_varint;
        if (v > (uint64_t)(end - p))
          goto truncated;
        if (fd != NULL && fd->known && fd->sub != M_NONE) {
          int rc = scan(p, p + v, fd->sub, depth + 1, err, errlen);
          if (rc != 0)
            return rc;
        }
        p += v;
        break;
      default:
        /* Groups (3, 4) are not used by OTLP and 6, 7 do not exist. */
        snprintf(err, errlen, "unsupported wire type %u in %s", wt, msg_names[msg]);
        return -EINVAL;
    }
    continue;
  truncated:
    snprintf(err, errlen, "truncated field %u in %s", (unsigned)field, msg_names[msg]);
    return -EINVAL;
  bad_varint:
    snprintf(err, errlen, "varint of field %u in %s %s", (unsigned)field, msg_names[msg],
             varint_fault(p, end));
    return -EINVAL;
  }
  return 0;
}

int tt__otlp_validate_export_request(const uint8_t *pb, size_t len, char *errbuf, size_t errlen) {
  char scratch[1];
  if (errbuf == NULL || errlen == 0) {
    errbuf = scratch;
    errlen = sizeof scratch;
  }
  errbuf[0] = '\0';
  if (len > 0 && pb == NULL)
    return -EINVAL;
  return scan(pb, pb + len, M_REQ, 0, errbuf, errlen);
}

/* ---- google.rpc.Status ------------------------------------------------------------------- */

int tt__rpc_status_encode(tt_buf_t *out, int32_t code, const char *message,
                          uint32_t retry_delay_ms) {
  static const char retry_type[] = "type.googleapis.com/google.rpc.RetryInfo";
  int rc = 0;
  if (code != 0) {
    rc = tt__buf_append_tag(out, 1, WT_VARINT);
    /* int32 fields are sign-extended to 64 bits on the wire. */
    if (rc == 0)
      rc = tt__buf_append_varint(out, (uint64_t)(int64_t)code);
  }
  size_t mlen = message ? strlen(message) : 0;
  if (rc == 0 && mlen > 0) {
    rc = tt__buf_append_tag(out, 2, WT_LEN);
    if (rc == 0)
      rc = tt__buf_append_varint(out, mlen);
    if (rc == 0)
      rc = tt__buf_append(out, message, mlen);
  }
  if (rc != 0 || retry_delay_ms == 0)
    return rc;
  /* Duration{seconds = 1, nanos = 2} inside RetryInfo{retry_delay = 1} inside
   * Any{type_url = 1, value = 2}, which is Status.details (3). */
  tt_buf_t dur = TT_BUF_INIT, info = TT_BUF_INIT, any = TT_BUF_INIT;
  uint64_t secs = retry_delay_ms / 1000, nanos = (uint64_t)(retry_delay_ms % 1000) * 1000000u;
  if (secs)
    rc = rc ? rc : tt__buf_append_tag(&dur, 1, WT_VARINT);
  if (secs)
    rc = rc ? rc : tt__buf_append_varint(&dur, secs);
  if (nanos)
    rc = rc ? rc : tt__buf_append_tag(&dur, 2, WT_VARINT);
  if (nanos)
    rc = rc ? rc : tt__buf_append_varint(&dur, nanos);
  rc = rc ? rc : tt__buf_append_lenfield(&info, 1, dur.data, dur.len);
  rc = rc ? rc : tt__buf_append_tag(&any, 1, WT_LEN);
  rc = rc ? rc : tt__buf_append_varint(&any, sizeof retry_type - 1);
  rc = rc ? rc : tt__buf_append(&any, retry_type, sizeof retry_type - 1);
  rc = rc ? rc : tt__buf_append_lenfield(&any, 2, info.data, info.len);
  rc = rc ? rc : tt__buf_append_lenfield(out, 3, any.data, any.len);
  tt__buf_free(&dur);
  tt__buf_free(&info);
  tt__buf_free(&any);
  return rc;
}
