/* Fuzz target: raw bytes as an HTTP request stream into the OTLP/HTTP receiver's socket-less
 * session (http-parser framing, limits, chunked, gzip, content types, protobuf validation, JSON
 * transcoding, status mapping). The first byte picks how the rest is split into reads, so
 * incremental parsing across arbitrary boundaries is covered too. Invariants: the handler only
 * ever sees well-formed protobuf, and every reply starts with an HTTP/1.1 status line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_server.h"
#include "recv_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_collector_http: invariant broken: %s\n", what);
    abort();
  }
}

static void handler(void *ctx, const tt_export_request_t *req, tt_export_result_t *res) {
  (void)ctx;
  /* Vary the answer with the input so every status mapping is exercised. */
  memset(res, 0, sizeof *res);
  res->status = (tt_export_status_t)(req->len % 4);
  res->rejected_spans = (int64_t)(req->len % 3);
  res->retry_after_ms = (uint32_t)req->len * 7;
  snprintf(res->message, sizeof res->message, "len %zu", req->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  size_t step = (size_t)data[0] + 1;
  data++;
  size--;
  tt_otlp_http_route_ctx_t rctx = {.handler = handler};
  tt_http_server_opts_t o = {
      .max_body_bytes = 8192,
      .max_header_bytes = 2048,
      .route = tt__otlp_http_route,
      .ctx = &rctx,
  };
  tt_http_session_t *ss = tt__http_session_new(&o);
  check(ss != NULL, "session allocation");
  tt_buf_t out = TT_BUF_INIT;
  int verdict = 0;
  for (size_t off = 0; off < size && verdict == 0; off += step) {
    size_t n = size - off < step ? size - off : step;
    verdict = tt__http_session_feed(ss, data + off, n, &out);
    check(verdict >= 0, "allocation failure in session");
  }
  if (verdict == 0)
    verdict = tt__http_session_eof(ss, &out);
  check(verdict == 1, "eof must end the session");
  if (out.len > 0)
    check(out.len >= 12 && memcmp(out.data, "HTTP/1.1 ", 9) == 0, "reply without a status line");
  tt__buf_free(&out);
  tt__http_session_free(ss);
  return 0;
}
