/* The OTLP/gRPC receiver on gRPC's C core: unary
 * `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
 *
 * One thread drives the server's completion queue and keeps several calls requested at once, so
 * concurrent clients are served without waiting for each other's round trips. A second thread,
 * the gate, owns the listening socket: it accepts, applies the total and per-address connection
 * caps, and hands each connection to gRPC core (which has no cap of its own). gzip and deflate
 * (`grpc-encoding`) are inflated by the receiver, bounded by the size limit.
 *
 * Each message is checked to be a well-formed ExportTraceServiceRequest at the wire level, then
 * the handler of request.h runs on the receiver's thread. Status mapping:
 * - OK -> OK + ExportTraceServiceResponse (partial_success when spans were rejected)
 * - INVALID or malformed message -> INVALID_ARGUMENT with a message
 * - THROTTLED -> RESOURCE_EXHAUSTED with a `grpc-status-details-bin` trailer carrying
 *   google.rpc.Status{code, message, details:[Any(google.rpc.RetryInfo)]}
 * - UNAVAILABLE or shutting down -> UNAVAILABLE
 * - message over the size limit -> RESOURCE_EXHAUSTED (from the core, or while inflating)
 * - any other method -> UNIMPLEMENTED
 * Only this file (recv_grpc.c) includes gRPC headers. */
#ifndef TT_COLLECTOR_RECV_GRPC_H
#define TT_COLLECTOR_RECV_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "refusal.h"
#include "request.h"

typedef struct tt_grpc_receiver_s tt_grpc_receiver_t;

typedef struct {
  const char *host;                /* bind address; NULL: 127.0.0.1 */
  int port;                        /* 0 picks an ephemeral port (read back with _port) */
  size_t max_recv_msg_bytes;       /* decompressed message limit; 0: 4 MiB (gRPC's default) */
  unsigned concurrent_calls;       /* calls kept requested at once; 0: 8 */
  tt_export_handler_fn handler;    /* required; called on the receiver's thread */
  void *ctx;                       /* passed to handler */
  uint32_t read_timeout_ms;        /* a call that sends no request message this long after it
                                      starts is cancelled; when every slot is taken, the call
                                      waiting longest (over 1 s) is cancelled at once; 0: 10 s */
  uint32_t max_connections;        /* open connections; at the cap the one whose client has been
                                      silent longest (1 s or more) is closed to make room, else
                                      the new one is; 0: 1024 */
  uint32_t max_connections_per_ip; /* a client address over this is closed at once; 0: none */
  uint32_t idle_timeout_ms;        /* a connection without a call this long is closed; 0: 60 s */
  uint32_t streams_per_connection; /* concurrent calls one connection may open; 0: 16 */
  tt_refusals_t *refusals;         /* where refused calls are counted; NULL: the receiver's own */
  const char *http_endpoint;       /* the OTLP/HTTP receiver's address, named in the answer to an
                                      HTTP/1.1 client (a 505); NULL: none runs */
} tt_grpc_receiver_opts_t;

/* Sends gRPC core's own log lines (the C core's, for the receiver and the gRPC exporters alike)
 * through log.h as JSON lines with "component":"grpc". Call once, before any gRPC use. */
void tt__grpc_route_core_logs(void);

typedef struct {
  uint64_t calls;           /* Export calls that delivered a message */
  uint64_t accepted;        /* handler answered OK */
  uint64_t malformed;       /* INVALID_ARGUMENT before the handler */
  uint64_t rejected;        /* handler answered INVALID, THROTTLED or UNAVAILABLE */
  uint64_t unimplemented;   /* calls to other methods */
  uint64_t connections;     /* open now (as last seen by the gate, swept every second) */
  uint64_t refused_limit;   /* closed at once: at max_connections, nothing quiet to evict */
  uint64_t refused_per_ip;  /* closed at once: over max_connections_per_ip */
  uint64_t evicted;         /* quiet connections closed to make room */
  uint64_t slots_reclaimed; /* silent calls cancelled because every slot was taken */
} tt_grpc_receiver_stats_t;

/* Creates the server, binds, starts its thread. Options are copied. Returns 0 or a negative
 * errno (-EADDRINUSE when the port cannot be bound). */
int tt__grpc_receiver_start(const tt_grpc_receiver_opts_t *o, tt_grpc_receiver_t **out);

/* The bound port. Any thread. */
int tt__grpc_receiver_port(const tt_grpc_receiver_t *r);

/* Any thread. */
void tt__grpc_receiver_stats(const tt_grpc_receiver_t *r, tt_grpc_receiver_stats_t *out);

/* How the request message is encoded: grpc-encoding with the message's compressed flag set, as
 * gRPC core reports it (identity when the flag is clear). */
typedef enum {
  TT_GRPC_ENC_IDENTITY = 0,
  TT_GRPC_ENC_GZIP,
  TT_GRPC_ENC_DEFLATE,     /* zlib-wrapped, as gRPC's "deflate" is */
  TT_GRPC_ENC_UNSUPPORTED, /* anything else: answered UNIMPLEMENTED */
} tt_grpc_encoding_t;

/* Which receiver counter an answer goes to (tt_grpc_receiver_stats_t). */
typedef enum { TT_GRPC_MALFORMED = 0, TT_GRPC_ACCEPTED, TT_GRPC_REJECTED } tt_grpc_outcome_t;

/* The answer to one Export message: a gRPC status code (grpc_status_code's numbers: 0 OK,
 * 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 12 UNIMPLEMENTED, 13 INTERNAL, 14 UNAVAILABLE), its
 * message, the RetryInfo delay for the google.rpc.Status trailer (0: none), and with OK the
 * ExportTraceServiceResponse bytes (empty for a plain success). */
typedef struct {
  int code;
  char message[256]; /* NUL-terminated */
  uint32_t retry_ms;
  tt_buf_t response;
  tt_grpc_outcome_t outcome;
  bool counted; /* a refusal the handler counted already (the pipeline's requests_invalid) */
} tt_grpc_answer_t;

/* What the receiver does with one request message after gRPC core delivered it, with no gRPC
 * call or server involved (the fuzzer fuzz_collector_grpc drives it): inflates it per `enc`
 * within o->max_recv_msg_bytes (0: 4 MiB), checks it is a well-formed ExportTraceServiceRequest,
 * calls o->handler on the calling thread, and maps the verdict to *a. msg is borrowed for the
 * call; peer is the sender's identity (tt_export_request_t.peer). Free *a with
 * tt__grpc_answer_free. Any thread. */
void tt__grpc_export_message(const tt_grpc_receiver_opts_t *o, tt_grpc_encoding_t enc,
                             const uint8_t *msg, size_t len, uint64_t peer, tt_grpc_answer_t *a);
void tt__grpc_answer_free(tt_grpc_answer_t *a);

/* Stops accepting; calls in flight are answered (calls still waiting get UNAVAILABLE), the
 * server is shut down and its queue drained, the thread joined and everything freed. NULL is a
 * no-op. */
void tt__grpc_receiver_stop(tt_grpc_receiver_t *r);

#endif
