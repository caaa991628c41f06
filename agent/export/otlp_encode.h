/* otlp_encode.h: encodes a batch of finished spans (the core's tt_span_data_t views, read in
 * place) into an OTLP ExportTraceServiceRequest. Internal to libtailtrace. */
#ifndef TT_OTLP_ENCODE_H
#define TT_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "tailtrace.h"

/* OTLP Span.Link.flags for a link's context: trace flags plus the "is remote" bits. */
uint32_t tt__otlp_link_flags(const tt_span_context_t *ctx);

/* A reusable encoder: keeps its node arena and output buffer between batches (exporter thread
 * only). Zero-initialise; release with tt__otlp_encoder_free. */
typedef struct tt__otlp_encoder_s {
  struct tt__otlp_arena_s *arena;
  uint8_t *buf;
  size_t cap;
} tt__otlp_encoder_t;

/* Encodes like tt__otlp_encode_request into enc's buffer: *out stays valid until the next call
 * or tt__otlp_encoder_free. */
int tt__otlp_encoder_encode(tt__otlp_encoder_t *enc, const tt_span_data_t *const *spans, size_t n,
                            const uint8_t **out, size_t *out_len);
void tt__otlp_encoder_free(tt__otlp_encoder_t *enc);

/* Encodes n spans as one ExportTraceServiceRequest, grouped by resource then scope (by pointer,
 * in first-seen order). *out is allocated with tt__malloc (caller frees with tt__free). Returns
 * 0, TT_EINVAL (n == 0, or a span without resource, scope or name, or an unknown attribute type)
 * or TT_ENOMEM. Pure: the exporter thread calls it while the views are valid. */
int tt__otlp_encode_request(const tt_span_data_t *const *spans, size_t n, uint8_t **out,
                            size_t *out_len);

#endif /* TT_OTLP_ENCODE_H */
