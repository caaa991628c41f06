/* otlp_transport.h: the one interface both OTLP transports (transport_http.c, transport_grpc.c)
 * implement, and the outcome classification the retry loop acts on. Internal to libtailtrace.
 *
 * Threading: a transport is used by one exporter thread (send); tt__transport_abort may be
 * called from any thread at any time and makes the in-flight send, and every later one, return
 * TT__EXPORT_ABORTED promptly. tt__transport_destroy runs on the exporter thread after the last
 * send has returned. */
#ifndef TT_OTLP_TRANSPORT_H
#define TT_OTLP_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "otlp_config.h"

typedef enum {
  TT__EXPORT_OK = 0,        /* accepted (possibly partially: see rejected_spans) */
  TT__EXPORT_RETRYABLE = 1, /* throttled, unavailable, timed out, connection refused... */
  TT__EXPORT_PERMANENT = 2, /* bad data, unauthenticated, unimplemented...: never retried */
  TT__EXPORT_ABORTED = 3,   /* cancelled by tt__transport_abort (shutdown) */
} tt__export_outcome_t;

typedef struct tt__export_result_s {
  tt__export_outcome_t outcome;
  int code;               /* HTTP status or gRPC status code; 0 when no answer arrived */
  int no_response;        /* 1: connect failure, timeout or reset before an answer */
  int timed_out;          /* 1: the per-attempt deadline expired */
  int64_t retry_after_ms; /* server's hint (Retry-After, RetryInfo); -1 when none */
  int64_t rejected_spans; /* partial success; 0 otherwise */
  char message[256];      /* server's or transport's message; may be empty */
} tt__export_result_t;

typedef struct tt__transport_s tt__transport_t;

typedef struct tt__transport_ops_s {
  void (*send)(tt__transport_t *t, const uint8_t *body, size_t len, int64_t deadline_ns,
               tt__export_result_t *res);
  void (*abort)(tt__transport_t *t);
  void (*destroy)(tt__transport_t *t);
} tt__transport_ops_t;

struct tt__transport_s {
  const tt__transport_ops_t *ops;
};

/* Creates a transport for cfg (which must outlive it). 0, TT_EINVAL (bad endpoint, unreadable
 * certificate) or TT_ENOMEM. */
int tt__transport_http_new(const tt__otlp_config_t *cfg, tt__transport_t **out);
int tt__transport_grpc_new(const tt__otlp_config_t *cfg, tt__transport_t **out);

/* The gRPC transport is a library of its own, libtailtrace-grpc.so (agent/grpc/), so that a
 * program exporting over HTTP never loads gRPC, Abseil or a C++ runtime. The shared and the
 * installed static libtailtrace define tt__transport_grpc_new in transport_select.c, which loads
 * that library on first use and calls its one exported function, TT__GRPC_PLUGIN_ENTRY, handing
 * it this table: everything the transport needs from the core. The plugin therefore has no
 * link-time reference into libtailtrace (whose internals are hidden) and serves the shared and
 * the static core alike. The internal static archive that tests link compiles transport_grpc.c
 * in directly instead. Both sides are built from one source tree: the plugin refuses a table
 * whose size or version differs from its own, since the configuration struct crosses over. */
#define TT__GRPC_PLUGIN_ENTRY "tt_grpc_plugin_transport_new"
#define TT__GRPC_PLUGIN_SONAME "libtailtrace-grpc.so.0"

typedef struct tt__grpc_host_s {
  size_t size;         /* sizeof(tt__grpc_host_t) on the core's side */
  const char *version; /* the core's TT_VERSION_STRING_BUILD */
  void *(*calloc)(size_t n, size_t m);
  void *(*realloc)(void *p, size_t n);
  void (*free)(void *p);
  void (*log)(int level, const char *line); /* one formatted line, filtered by the core */
  int64_t (*now_ns)(void);
  void (*result_init)(tt__export_result_t *res);
  int (*parse_rpc_status)(const uint8_t *p, size_t len, int *code, tt__export_result_t *res);
  int (*parse_export_response)(const uint8_t *p, size_t len, tt__export_result_t *res);
} tt__grpc_host_t;

/* The plugin's entry: 0 and *out, TT_EINVAL (bad endpoint or certificate), TT_ENOMEM, or
 * TT_ENOTSUP for a table from another version. Exporter thread, like tt__transport_grpc_new. */
typedef int (*tt__grpc_plugin_new_fn)(const tt__grpc_host_t *host, const tt__otlp_config_t *cfg,
                                      tt__transport_t **out);

/* Sends one serialized ExportTraceServiceRequest, waiting at most until deadline_ns
 * (CLOCK_MONOTONIC, tt__otlp_now_ns) and classifying the outcome into *res. Exporter thread. */
static inline void tt__transport_send(tt__transport_t *t, const uint8_t *body, size_t len,
                                      int64_t deadline_ns, tt__export_result_t *res) {
  t->ops->send(t, body, len, deadline_ns, res);
}
static inline void tt__transport_abort(tt__transport_t *t) {
  t->ops->abort(t);
}
static inline void tt__transport_destroy(tt__transport_t *t) {
  if (t)
    t->ops->destroy(t);
}

/* Shared by both transports (otlp_status.c). */
void tt__export_result_init(tt__export_result_t *res);

/* Decodes a google.rpc.Status (error body or grpc-status-details-bin): copies its message into
 * res->message (when non-empty) and sets res->retry_after_ms from a google.rpc.RetryInfo detail.
 * Returns 0, or -1 when the bytes are not a well-formed Status (res then keeps its message).
 * Never reads past len; safe on hostile input. */
int tt__otlp_parse_rpc_status(const uint8_t *p, size_t len, int *code, tt__export_result_t *res);

/* Decodes an ExportTraceServiceResponse body into res->rejected_spans / res->message.
 * Returns 0, or -1 when malformed (the export still counts as accepted: the status said so). */
int tt__otlp_parse_export_response(const uint8_t *p, size_t len, tt__export_result_t *res);

/* The same for OTLP/JSON answers (http/json): partial success, and a google.rpc.Status error
 * body (message, RetryInfo's retryDelay). Bounded scans; safe on hostile input. The status
 * parser returns -1 when there is no "message" string. */
int tt__otlp_parse_json_response(const char *p, size_t len, tt__export_result_t *res);
int tt__otlp_parse_json_status(const char *p, size_t len, tt__export_result_t *res);

#endif /* TT_OTLP_TRANSPORT_H */
