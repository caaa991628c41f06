/* Fuzzes request splitting (collector/otlp/otlp_split.c) on arbitrary bytes taken as an
 * ExportTraceServiceRequest. The first byte picks the limit, so inputs reach every level of the
 * cut. Invariants: the split agrees with the span count on whether the input is well-formed;
 * every piece is itself well-formed and holds the span count it is handed with; the pieces hold
 * all the input's spans; only a piece carrying a single span (or no span) exceeds the limit. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "otlp_split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  size_t limit, spans, pieces;
} check_t;

static int on_piece(void *ctx, const uint8_t *req, size_t len, size_t nspans) {
  check_t *c = ctx;
  size_t n;
  if (tt__otlp_count_spans(req, len, &n) != 0 || n != nspans)
    abort();
  if (len > c->limit && nspans > 1)
    abort();
  c->spans += nspans;
  c->pieces++;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  check_t c = {(size_t)data[0] * 8 + 1, 0, 0};
  size_t total;
  int crc = tt__otlp_count_spans(data + 1, size - 1, &total);
  tt_otlp_split_stats_t st;
  int rc = tt__otlp_split(data + 1, size - 1, c.limit, on_piece, &c, &st);
  if (rc != crc)
    abort();
  if (rc == 0 && (c.spans != total || st.spans != total || st.pieces != c.pieces))
    abort();
  if (rc != 0 && c.pieces != 0)
    abort();
  return 0;
}
