/* Splits an ExportTraceServiceRequest into requests no bigger than a size limit.
 *
 * OTLP receivers cap one message (gRPC's default receive limit is 4 MiB) and refuse a bigger one
 * permanently, so the OTLP sink cuts what the shards frame (a batch may hold a whole 16 MiB
 * trace) before it queues it. The cut follows the message's structure: whole ResourceSpans
 * where they fit; a ResourceSpans too big for one request is cut between its ScopeSpans, and a
 * ScopeSpans too big between its spans. Every piece of a cut message is re-framed with the
 * message's own other fields (resource and schema_url; scope and schema_url), so each span
 * keeps its resource and scope. Consecutive small parts are packed together up to the limit, in
 * their original order. A span is never cut: one bigger than the limit goes alone in a piece
 * over the limit, the smallest request that can carry it.
 *
 * Pure functions over borrowed bytes (wire scanning and copying only, no I/O); any thread. */
#ifndef TT_COLLECTOR_OTLP_SPLIT_H
#define TT_COLLECTOR_OTLP_SPLIT_H

#include <stddef.h>
#include <stdint.h>

/* Receives one piece: `req` is a complete ExportTraceServiceRequest, borrowed for the call;
 * nspans counts the Span messages in it. Returns 0 to go on, anything else to stop the split
 * (tt__otlp_split then returns that value). */
typedef int (*tt_otlp_piece_fn)(void *ctx, const uint8_t *req, size_t len, size_t nspans);

typedef struct {
  size_t pieces;    /* pieces handed to the callback */
  size_t spans;     /* spans in them, all pieces together */
  size_t oversized; /* pieces over the limit: each holds one span (or one indivisible part) */
} tt_otlp_split_stats_t;

/* Counts the spans of an ExportTraceServiceRequest, checking its structure down to the Span
 * level (spans themselves are not parsed). Returns 0 with *n set, or -EINVAL. */
int tt__otlp_count_spans(const uint8_t *req, size_t len, size_t *n);

/* Cuts `req` into pieces of at most `limit` bytes (see above) and hands each to fn, in order.
 * The input is checked whole first: malformed bytes give -EINVAL before any callback. Returns 0,
 * -EINVAL, -ENOMEM (possibly after some callbacks), or fn's non-zero answer. st may be NULL. */
int tt__otlp_split(const uint8_t *req, size_t len, size_t limit, tt_otlp_piece_fn fn, void *ctx,
                   tt_otlp_split_stats_t *st);

#endif
