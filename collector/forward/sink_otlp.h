/* OTLP forwarding sink: sends kept traces to a backend (Jaeger, Honeycomb, any OTLP receiver)
 * over OTLP/gRPC or OTLP/HTTP-protobuf, behind the tt_sink_t interface (sink.h).
 *
 * Each sink has its own bounded memory queue and its own sender thread, so a slow backend
 * holds back only its own sink when several are configured (fan-out).
 *
 * Delivery: batches go out in submission order. A retryable outcome (connection refused,
 * timeout, HTTP 429/502/503/504, gRPC UNAVAILABLE and the like) is retried with exponential
 * backoff and jitter, honouring Retry-After / RetryInfo, for as long as it takes: the backend
 * being down is exactly when kept data must be held, not dropped. A permanent outcome
 * (400, 401, 403, INVALID_ARGUMENT, UNAUTHENTICATED, ...) is logged once per status with the
 * backend's message, counted, and the batch dropped.
 *
 * Outage mode, with a spool directory configured: on the first failed attempt, the whole
 * memory queue (the batch in flight included) moves to the disk spool (spool.h), and from then
 * on the sender spills each new batch to disk before it sends anything, so a SIGKILL during an
 * outage loses nothing already submitted. Batches are replayed from the spool in order; when
 * the spool is empty the sink returns to memory mode. At start-up, batches left in the spool by
 * an earlier run are replayed first. What the spool's byte budget forces out is counted.
 * Without a spool, a full memory queue drops the new batch and counts it.
 *
 * Spool mode always (spool_always): every batch is written to the spool (fsync'd with
 * spool_fsync) before its first attempt and marked consumed once the backend has accepted or
 * permanently refused it, so a SIGKILL of a healthy collector loses nothing submitted and
 * already written (the writer thread runs independently of the sender, so that is within one
 * write of submit). Each batch is sent at most once per run apart from retries of a failed
 * attempt; a crash between the backend's answer and the consumed marks replays the batches of
 * that request at the next start (at-least-once). Cost: one fsync per batch in healthy operation.
 *
 * Request size (max_request_bytes): submit splits a batch bigger than that into pieces
 * (otlp_split.h), queued together, so every queued or spooled batch fits one request; the
 * sender coalesces consecutive batches up to it into one request: memory-queue batches, or
 * spool records (replay, and every batch in always mode), never the two mixed. A permanent
 * refusal of a coalesced request sends each of its batches again alone. Spool records are
 * marked consumed only once the request carrying them is answered for good, so a crash
 * replays the whole request. Counters count the queued pieces.
 *
 * Threading: submit/flush/healthy from any thread; close once, last. */
#ifndef TT_COLLECTOR_SINK_OTLP_H
#define TT_COLLECTOR_SINK_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include "sink.h"

typedef enum {
  TT_FWD_PROTOCOL_GRPC = 1,
  TT_FWD_PROTOCOL_HTTP_PROTOBUF = 2,
} tt_fwd_protocol_t;

typedef struct {
  const char *name;     /* exporter name, for logs and metrics labels; copied */
  int protocol;         /* tt_fwd_protocol_t */
  const char *endpoint; /* gRPC: host:port or http(s)://host:port; HTTP: full URL */
  const char *headers;  /* "k=v,k2=v2" (W3C baggage format, percent-decoded); may be NULL */
  int32_t timeout_ms;   /* one attempt's deadline; 0 = 10000 */
  int gzip;             /* 1: compress request bodies */
  int insecure;         /* gRPC: 1 = plaintext; HTTP: decided by the URL scheme */
  const char *ca_file;  /* PEM CA bundle; NULL = the system's roots */
  const char *cert_file, *key_file; /* client certificate and key (mTLS); may be NULL */
  uint64_t queue_bytes;             /* memory queue bound; 0 = 64 MiB */
  uint64_t max_request_bytes;       /* largest request (uncompressed); 0 = 4 MiB */
  int32_t retry_initial_ms;         /* 0 = 1000 */
  int32_t retry_max_ms;             /* 0 = 30000 */
  const char *spool_dir;            /* NULL or "": no disk spool */
  uint64_t spool_bytes;             /* spool budget; 0 = 1 GiB */
  int spool_fsync;                  /* 1: fsync every spooled batch (default in config) */
  int spool_always; /* 1: spool every batch before its first attempt (needs spool_dir) */
} tt_otlp_sink_opts_t;

typedef struct {
  uint64_t batches_sent, spans_sent;
  uint64_t batches_retried; /* attempts that failed retryably and were tried again */
  uint64_t batches_failed_permanent, spans_failed_permanent;
  uint64_t spans_rejected; /* partial success: refused by the backend one by one */
  uint64_t batches_dropped_queue_full, spans_dropped_queue_full;
  uint64_t batches_dropped_spool_budget; /* pushed out of the spool by its budget */
  uint64_t spans_dropped_spool_budget;
  /* Not delivered by the close deadline and not spooled (no spool, or its write failed). */
  uint64_t batches_lost_at_shutdown, spans_lost_at_shutdown;
  uint64_t spool_errors; /* spool writes, reads and consumed marks that failed (nothing lost) */
  uint64_t requests_oversized; /* pieces over max_request_bytes: one span too big, sent alone */
  uint64_t queue_bytes;        /* now */
  uint64_t queue_spans;        /* now: spans in the memory queue (and the request in flight from
                                  it), not yet delivered */
  uint64_t spans_spooled;      /* spans written to the spool (counted again if replayed and
                                  spooled anew after a restart) */
  uint64_t spool_bytes, spool_batches; /* now: waiting in the spool (0 once drained) */
  uint64_t spool_budget_bytes;         /* what may wait in the spool before the oldest go */
  uint64_t spool_corrupt_records;      /* bad records found when the spool was opened: the rest of
                                          their segment was skipped (lost, span count unknown) */
  uint64_t spool_truncated_bytes;      /* torn segment tails cut off when the spool was opened */
  uint64_t oldest_spooled_age_ms;      /* now; 0 when the spool is empty */
  int degraded;                        /* 1 while the backend is failing */
  /* 1 while the backend refuses batches for good (401, 403, 400, ...): set by a permanent
   * refusal, cleared by the next delivered batch. The last refusal's code and message. */
  uint64_t refusing;
  uint64_t up; /* computed by tt__sink_otlp_stats: neither degraded nor refusing */
  int refused_code;
  char refused_message[160];
} tt_otlp_sink_stats_t;

/* Creates the sink and starts its sender thread. On error returns a negative errno and a
 * message in err (bad endpoint, unreadable certificate, spool directory problem). */
int tt__sink_otlp_open(const tt_otlp_sink_opts_t *o, tt_sink_t **out, char *err, size_t errlen);

/* Copies the counters. Any thread. */
void tt__sink_otlp_stats(tt_sink_t *s, tt_otlp_sink_stats_t *out);

/* Appends the per-exporter metrics of every OTLP sink among sinks (others are skipped) in the
 * Prometheus text format, one family at a time with an `exporter` label. Any thread. */
int tt__sink_otlp_render_metrics(tt_sink_t *const *sinks, size_t n, tt_buf_t *out);

/* Whether s is an OTLP exporter sink, and its exporter name (only for such a sink). */
bool tt__sink_is_otlp(const tt_sink_t *s);
const char *tt__sink_otlp_name(const tt_sink_t *s);

/* The deadline close() gives the sender to deliver what is queued, in ms from the call to close
 * (default 5000); what remains then goes to the spool (or is counted lost). Call before close.
 * tt__sink_otlp_stop_by, when called, takes precedence. */
void tt__sink_otlp_set_close_deadline(tt_sink_t *s, int32_t ms);

/* The process is stopping and this sink must be done delivering by stop_by_ns (CLOCK_MONOTONIC):
 * flush waits no longer than that whatever the export timeout, no request sent from now on
 * outlives it, and close, at that time, aborts the request still in flight (a backend that
 * accepted it and never answers) and spools what was not delivered, the batches of that request
 * included, or counts and logs it as lost without a spool. The collector calls it for every
 * exporter when SIGTERM arrives, so that the whole shutdown ends within its deadline. Any
 * thread; before flush and close. */
void tt__sink_otlp_stop_by(tt_sink_t *s, int64_t stop_by_ns);

#endif
