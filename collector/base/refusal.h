/* Refused requests: counted by cause and reported in the log, at most one warning per cause per
 * interval, so a misconfigured client is visible without flooding the log.
 *
 * The receivers note every request (or connection) they refuse before it reaches the pipeline:
 * a body that is not OTLP, an unsupported content type, a wrong path or method, a body or header
 * block over its limit, a connection that speaks another protocol. The first refusal of a cause
 * is logged at once; later ones at most once per interval, with the number not logged since.
 * The counts are rendered by the admin port as tailtrace_requests_refused_total{cause}.
 *
 * Any thread: the counters and the rate limit are atomics. */
#ifndef TT_COLLECTOR_REFUSAL_H
#define TT_COLLECTOR_REFUSAL_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum {
  TT_REFUSE_INVALID = 0,       /* the body is not a well-formed OTLP request (400) */
  TT_REFUSE_MEDIA_TYPE,        /* Content-Type neither protobuf nor JSON (415) */
  TT_REFUSE_NOT_FOUND,         /* a path other than /v1/traces (404) */
  TT_REFUSE_METHOD,            /* a method other than POST (405) */
  TT_REFUSE_BODY_TOO_LARGE,    /* over max_body_size (413) */
  TT_REFUSE_HEADERS_TOO_LARGE, /* header block over its limit (431) */
  TT_REFUSE_BAD_HTTP,          /* bytes that are not HTTP/1.1 (400) */
  TT_REFUSE_HTTP2,             /* an HTTP/2 connection (a gRPC client) on the HTTP/1.1 port */
  TT_REFUSE_TLS,               /* a TLS handshake on a plain-text port */
  TT_REFUSE_HTTP1,             /* an HTTP/1.x request on the OTLP/gRPC (HTTP/2) port */
  TT_REFUSE__COUNT
} tt_refuse_cause_t;

typedef struct {
  _Atomic uint64_t count[TT_REFUSE__COUNT];
  _Atomic int64_t last_warn_ms[TT_REFUSE__COUNT]; /* monotonic; 0: never warned */
  _Atomic uint64_t unlogged[TT_REFUSE__COUNT];    /* refusals since the last warning */
  uint32_t interval_ms; /* between two warnings of one cause; 0: 60 s. Set before use. */
} tt_refusals_t;

/* The label of a cause in metrics and logs ("invalid", "unsupported_media_type", ...). */
const char *tt__refuse_cause_name(tt_refuse_cause_t c);

/* Counts one refusal and logs a warning when the cause's interval allows:
 *   {"msg":"request refused: <detail>","receiver":..,"peer":..,"cause":..,"fix":..,
 *    "unlogged":N}
 * N is how many refusals of this cause were counted but not logged since its previous warning.
 * `peer` ("192.0.2.1:50312") and `detail` may be NULL; every string is escaped here. r NULL: a
 * no-op. */
void tt__refusal_note(tt_refusals_t *r, tt_refuse_cause_t c, const char *receiver, const char *peer,
                      const char *detail, const char *fix);

/* The same warning, under the same rate limit, for a refusal counted elsewhere (the pipeline
 * counts the requests whose spans it finds malformed in requests_invalid). */
void tt__refusal_warn(tt_refusals_t *r, tt_refuse_cause_t c, const char *receiver, const char *peer,
                      const char *detail, const char *fix);

/* Refusals of cause c so far. */
uint64_t tt__refusal_count(const tt_refusals_t *r, tt_refuse_cause_t c);

#endif
