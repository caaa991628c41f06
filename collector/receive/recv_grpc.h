/* The OTLP/gRPC receiver on gRPC's C core: unary
 * `/opentelemetry.proto.collector.trace.v1.TraceService/Export`.
 *
 * One thread drives the server's completion queue and keeps several calls requested at once, so
 * concurrent clients are served without waiting for each other's round trips. A second thread,
 * the gate, owns the listening socket: it accepts, applies the total and per-address connection
 * caps, and hands each connection to gRPC core (which has no cap of its own). gzip
 * (`grpc-encoding: gzip`) is inflated by the receiver, bounded by the message limit.
 *
 * Each message is checked to be a well-formed ExportTraceServiceRequest at the wire level, then
 * the handler of request.h runs on the receiver's thread.
 *
 * Status mapping:
 *   OK -> OK + ExportTraceServiceResponse (partial_success when spans were rejected)
 *   INVALID or malformed message -> INVALID_ARGUMENT with a message
 *   THROTTLED -> RESOURCE_EXHAUSTED with a `grpc-status-details-bin` trailer carrying
 *                google.rpc.Status{code, message, details:[Any(google.rpc.RetryInfo)]}
 *   UNAVAILABLE or shutting down -> UNAVAILABLE
 *   message over the size limit -> RESOURCE_EXHAUSTED (from the core)
 *   any other method -> UNIMPLEMENTED
 * Only this file (recv_grpc.c) includes gRPC headers. */
#ifndef TT_COLLECTOR_RECV_GRPC_H
#define TT_COLLECTOR_RECV_GRPC_H

#include <stddef.h>
#include <stdint.h>

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
} tt_grpc_receiver_opts_t;

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

/* Stops accepting; calls in flight are answered (calls still waiting get UNAVAILABLE), the
 * server is shut down and its queue drained, the thread joined and everything freed. NULL is a
 * no-op. */
void tt__grpc_receiver_stop(tt_grpc_receiver_t *r);

#endif
