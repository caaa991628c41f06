/* The OTLP/HTTP receiver: content negotiation and status mapping for `POST /v1/traces` on top of
 * http_server.c, plus the wire-level validation and google.rpc.Status encoding that both
 * receivers share. */
#include "recv_http.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otlp_json.h"
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

static int append_len_prefixed(tt_buf_t *out, uint32_t field, const tt_buf_t *inner) {
  int rc = tt__buf_append_tag(out, field, WT_LEN);
  if (rc == 0)
    rc = tt__buf_append_varint(out, inner->len);
  if (rc == 0)
    rc = tt__buf_append(out, inner->data, inner->len);
  return rc;
}

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
  rc = rc ? rc : append_len_prefixed(&info, 1, &dur);
  rc = rc ? rc : tt__buf_append_tag(&any, 1, WT_LEN);
  rc = rc ? rc : tt__buf_append_varint(&any, sizeof retry_type - 1);
  rc = rc ? rc : tt__buf_append(&any, retry_type, sizeof retry_type - 1);
  rc = rc ? rc : append_len_prefixed(&any, 2, &info);
  rc = rc ? rc : append_len_prefixed(out, 3, &any);
  tt__buf_free(&dur);
  tt__buf_free(&info);
  tt__buf_free(&any);
  return rc;
}

/* ---- the /v1/traces route ------------------------------------------------------------------ */

enum { CT_UNKNOWN, CT_PROTOBUF, CT_JSON };

/* gRPC codes used in error bodies, so HTTP and gRPC clients see the same google.rpc.Status. */
enum { GRPC_INVALID_ARGUMENT = 3, GRPC_RESOURCE_EXHAUSTED = 8, GRPC_UNAVAILABLE = 14 };

static bool token_is(const char *s, size_t n, const char *want) {
  return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

/* Parses "type/subtype[; charset=utf-8]". Any other charset is refused: OTLP JSON is UTF-8. */
static int parse_content_type(const char *ct) {
  if (ct == NULL)
    return CT_UNKNOWN;
  const char *semi = strchr(ct, ';');
  size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
  while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  int kind = CT_UNKNOWN;
  if (token_is(ct, n, "application/x-protobuf") || token_is(ct, n, "application/protobuf"))
    kind = CT_PROTOBUF;
  else if (token_is(ct, n, "application/json"))
    kind = CT_JSON;
  while (kind != CT_UNKNOWN && semi != NULL) {
    const char *param = semi + 1;
    while (*param == ' ' || *param == '\t')
      param++;
    semi = strchr(param, ';');
    size_t pn = semi ? (size_t)(semi - param) : strlen(param);
    while (pn > 0 && (param[pn - 1] == ' ' || param[pn - 1] == '\t'))
      pn--;
    if (pn >= 8 && strncasecmp(param, "charset=", 8) == 0) {
      const char *cs = param + 8;
      size_t cn = pn - 8;
      if (cn >= 2 && cs[0] == '"' && cs[cn - 1] == '"') {
        cs++;
        cn -= 2;
      }
      if (!token_is(cs, cn, "utf-8") && !token_is(cs, cn, "utf8"))
        return CT_UNKNOWN;
    }
  }
  return kind;
}

static void error_body(tt_http_response_t *res, int kind, int status, int32_t grpc_code,
                       const char *msg, uint32_t retry_ms) {
  res->status = status;
  int rc;
  if (kind == CT_JSON) {
    res->content_type = "application/json";
    rc = tt__buf_appendf(&res->body, "{\"code\":%d,\"message\":", (int)grpc_code);
    rc = rc ? rc : tt__json_append_string(&res->body, msg, strlen(msg));
    rc = rc ? rc : tt__buf_append_str(&res->body, "}");
  } else {
    res->content_type = "application/x-protobuf";
    rc = tt__rpc_status_encode(&res->body, grpc_code, msg, retry_ms);
  }
  if (rc != 0) {
    tt__buf_reset(&res->body);
    res->status = 500;
    res->content_type = NULL;
  }
}

static void plain(tt_http_response_t *res, int status, const char *msg) {
  res->status = status;
  res->content_type = "text/plain; charset=utf-8";
  if (tt__buf_appendf(&res->body, "%s\n", msg) != 0)
    tt__buf_reset(&res->body);
}

static void success_body(tt_http_response_t *res, int kind, const tt_export_result_t *r) {
  res->status = 200;
  int rc = 0;
  if (kind == CT_JSON) {
    res->content_type = "application/json";
    if (r->rejected_spans > 0 || r->message[0] != '\0') {
      /* int64 is a string in proto3 JSON; every OTLP client accepts that form. */
      rc = tt__buf_appendf(&res->body, "{\"partialSuccess\":{\"rejectedSpans\":\"%lld\"",
                           (long long)r->rejected_spans);
      if (rc == 0 && r->message[0] != '\0') {
        rc = tt__buf_append_str(&res->body, ",\"errorMessage\":");
        rc = rc ? rc : tt__json_append_string(&res->body, r->message, strlen(r->message));
      }
      rc = rc ? rc : tt__buf_append_str(&res->body, "}}");
    } else {
      rc = tt__buf_append_str(&res->body, "{}");
    }
  } else {
    res->content_type = "application/x-protobuf";
    if (r->rejected_spans > 0 || r->message[0] != '\0') {
      tt_buf_t ps = TT_BUF_INIT;
      if (r->rejected_spans > 0) {
        rc = tt__buf_append_tag(&ps, 1, WT_VARINT);
        rc = rc ? rc : tt__buf_append_varint(&ps, (uint64_t)r->rejected_spans);
      }
      size_t mlen = strlen(r->message);
      if (rc == 0 && mlen > 0) {
        rc = tt__buf_append_tag(&ps, 2, WT_LEN);
        rc = rc ? rc : tt__buf_append_varint(&ps, mlen);
        rc = rc ? rc : tt__buf_append(&ps, r->message, mlen);
      }
      rc = rc ? rc : append_len_prefixed(&res->body, 1, &ps);
      tt__buf_free(&ps);
    }
  }
  if (rc != 0) {
    tt__buf_reset(&res->body);
    res->status = 500;
    res->content_type = NULL;
  }
}

static void retry_after(tt_http_response_t *res, uint32_t ms) {
  unsigned secs = (ms + 999) / 1000;
  snprintf(res->extra_headers, sizeof res->extra_headers, "Retry-After: %u\r\n", secs ? secs : 1);
}

void tt__otlp_http_route(void *route_ctx, const tt_http_request_t *req, tt_http_response_t *res) {
  tt_otlp_http_route_ctx_t *rc = route_ctx;
  if (strcmp(req->path, "/v1/traces") != 0) {
    plain(res, 404, "not found: OTLP traces are accepted on POST /v1/traces");
    return;
  }
  if (strcmp(req->method, "POST") != 0) {
    plain(res, 405, "method not allowed: use POST");
    snprintf(res->extra_headers, sizeof res->extra_headers, "Allow: POST\r\n");
    return;
  }
  int kind = parse_content_type(req->content_type);
  if (kind == CT_UNKNOWN) {
    plain(res, 415, "unsupported Content-Type: use application/x-protobuf or application/json");
    return;
  }
  atomic_fetch_add_explicit(&rc->requests, 1, memory_order_relaxed);

  char err[200];
  tt_buf_t pb = TT_BUF_INIT;
  tt_export_request_t ereq;
  if (kind == CT_JSON) {
    int jr = tt__otlp_json_to_pb((const char *)req->body, req->body_len, &pb, err, sizeof err);
    if (jr != 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "malformed OTLP/JSON: %s", err);
      error_body(res, kind, 400, GRPC_INVALID_ARGUMENT, msg, 0);
      atomic_fetch_add_explicit(&rc->malformed, 1, memory_order_relaxed);
      tt__buf_free(&pb);
      return;
    }
    ereq = (tt_export_request_t){pb.data ? pb.data : (const uint8_t *)"", pb.len, "http/json"};
  } else {
    if (tt__otlp_validate_export_request(req->body, req->body_len, err, sizeof err) != 0) {
      char msg[256];
      snprintf(msg, sizeof msg, "malformed ExportTraceServiceRequest: %s", err);
      error_body(res, kind, 400, GRPC_INVALID_ARGUMENT, msg, 0);
      atomic_fetch_add_explicit(&rc->malformed, 1, memory_order_relaxed);
      return;
    }
    ereq = (tt_export_request_t){req->body, req->body_len, "http/protobuf"};
  }
  atomic_fetch_add_explicit(&rc->body_bytes, ereq.len, memory_order_relaxed);

  tt_export_result_t r;
  memset(&r, 0, sizeof r);
  rc->handler(rc->ctx, &ereq, &r);
  r.message[sizeof r.message - 1] = '\0';
  tt__buf_free(&pb);

  switch (r.status) {
    case TT_EXPORT_OK:
      atomic_fetch_add_explicit(&rc->accepted, 1, memory_order_relaxed);
      success_body(res, kind, &r);
      return;
    case TT_EXPORT_INVALID:
      error_body(res, kind, 400, GRPC_INVALID_ARGUMENT, r.message[0] ? r.message : "invalid data",
                 0);
      break;
    case TT_EXPORT_THROTTLED: {
      /* Same default as the gRPC receiver: a throttled answer always says when to retry. */
      uint32_t ms = r.retry_after_ms ? r.retry_after_ms : 1000;
      error_body(res, kind, 429, GRPC_RESOURCE_EXHAUSTED,
                 r.message[0] ? r.message : "collector is overloaded, retry later", ms);
      retry_after(res, ms);
      break;
    }
    case TT_EXPORT_UNAVAILABLE:
    default:
      error_body(res, kind, 503, GRPC_UNAVAILABLE,
                 r.message[0] ? r.message : "collector is unavailable, retry later", 0);
      retry_after(res, r.retry_after_ms);
      break;
  }
  atomic_fetch_add_explicit(&rc->rejected, 1, memory_order_relaxed);
}

/* ---- receiver lifecycle --------------------------------------------------------------------- */

struct tt_http_receiver_s {
  tt_http_server_t *srv;
  tt_otlp_http_route_ctx_t route; /* read by the server thread; counters are atomics */
};

int tt__http_receiver_start(const tt_http_receiver_opts_t *o, tt_http_receiver_t **out) {
  *out = NULL;
  if (o == NULL || o->handler == NULL)
    return -EINVAL;
  tt_http_receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  r->route.handler = o->handler;
  r->route.ctx = o->ctx;
  tt_http_server_opts_t so = {
      .host = o->host,
      .port = o->port,
      .max_body_bytes = o->max_body_bytes,
      .idle_timeout_ms = o->idle_timeout_ms,
      .route = tt__otlp_http_route,
      .ctx = &r->route,
      .name = "otlp-http",
  };
  int rc = tt__http_server_start(&so, &r->srv);
  if (rc != 0) {
    free(r);
    return rc;
  }
  *out = r;
  return 0;
}

int tt__http_receiver_port(const tt_http_receiver_t *r) {
  return r ? tt__http_server_port(r->srv) : -1;
}

void tt__http_receiver_stats(const tt_http_receiver_t *r, tt_http_receiver_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (r == NULL)
    return;
  out->requests = atomic_load_explicit(&r->route.requests, memory_order_relaxed);
  out->accepted = atomic_load_explicit(&r->route.accepted, memory_order_relaxed);
  out->malformed = atomic_load_explicit(&r->route.malformed, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&r->route.rejected, memory_order_relaxed);
  out->body_bytes = atomic_load_explicit(&r->route.body_bytes, memory_order_relaxed);
}

void tt__http_receiver_stop(tt_http_receiver_t *r) {
  if (r == NULL)
    return;
  tt__http_server_stop(r->srv);
  free(r);
}
