/* The contract between the OTLP receivers (recv_http.c, recv_grpc.c) and the pipeline.
 *
 * A receiver owns its transport: sockets, framing, decompression, content types, size limits
 * and the wire form of answers. It hands the pipeline one ExportTraceServiceRequest at a time,
 * always as protobuf bytes (OTLP/JSON bodies are transcoded to protobuf by the receiver through
 * otlp_json.h first), by calling the handler synchronously on the receiver's own thread. The
 * handler fills in a result, which the receiver turns into the transport's answer:
 *
 *   status                 HTTP                              gRPC
 *   TT_EXPORT_OK           200 + ExportTraceServiceResponse  OK + response (partial_success
 *                          (partial_success when rejected)   when rejected_spans > 0)
 *   TT_EXPORT_INVALID      400 + google.rpc.Status message   INVALID_ARGUMENT + message
 *   TT_EXPORT_THROTTLED    429 + Retry-After                 RESOURCE_EXHAUSTED + RetryInfo
 *   TT_EXPORT_UNAVAILABLE  503 + Retry-After                 UNAVAILABLE
 *   TT_EXPORT_TOO_LARGE    413 + google.rpc.Status message   RESOURCE_EXHAUSTED, no RetryInfo
 *                                                            (so OTLP clients do not retry)
 *
 * The bytes are unchecked: the handler checks their framing while it walks them (one pass over
 * each span serves the checks, the UTF-8 rules and the facts a decision needs) and answers
 * TT_EXPORT_INVALID, with the request validator's description of the fault (validate.h), when
 * they are not a well-formed ExportTraceServiceRequest. A receiver counts that answer as a
 * malformed request.
 *
 * The request bytes are borrowed for the duration of the call only: the handler copies what it
 * keeps. The handler may be called from several receiver threads at once (one per receiver). */
#ifndef TT_COLLECTOR_RECEIVER_H
#define TT_COLLECTOR_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  TT_EXPORT_OK = 0,
  TT_EXPORT_INVALID = 1,
  TT_EXPORT_THROTTLED = 2,
  TT_EXPORT_UNAVAILABLE = 3,
  TT_EXPORT_TOO_LARGE = 4, /* can never be accepted, however long the client waits */
} tt_export_status_t;

typedef struct {
  const uint8_t *data; /* serialized ExportTraceServiceRequest (protobuf), borrowed */
  size_t len;
  const char *transport; /* "grpc", "http/protobuf" or "http/json", for metrics and logs */
  uint64_t peer;         /* the sender (a keyed hash of its address) for sharing the budget fairly
                            under pressure; 0: unknown */
} tt_export_request_t;

typedef struct {
  tt_export_status_t status;
  int64_t rejected_spans;  /* with TT_EXPORT_OK: spans refused one by one (partial success) */
  uint32_t retry_after_ms; /* with THROTTLED/UNAVAILABLE: when the client should retry */
  char message[256];       /* NUL-terminated; error message or partial-success message */
} tt_export_result_t;

typedef void (*tt_export_handler_fn)(void *ctx, const tt_export_request_t *req,
                                     tt_export_result_t *res);

#endif
