/* Fuzz target: raw bytes as an HTTP request stream into the OTLP/HTTP receiver's socket-less
 * session (http-parser framing, limits, chunked, gzip, content types, protobuf validation, JSON
 * transcoding, status mapping). The first byte picks how the rest is split into reads, so
 * incremental parsing across arbitrary boundaries is covered too. Invariant: every reply starts
 * with an HTTP/1.1 status line, except that a stream opening with a TLS record (0x16, a
 * ClientHello on this plain-text port) gets exactly a TLS handshake_failure alert. */
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
  static const uint8_t tls_alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};
  if (out.len > 0 && size > 0 && data[0] == 0x16)
    check(out.len == sizeof tls_alert && memcmp(out.data, tls_alert, sizeof tls_alert) == 0,
          "a TLS ClientHello answered with anything but a TLS alert");
  else if (out.len > 0)
    check(out.len >= 12 && memcmp(out.data, "HTTP/1.1 ", 9) == 0, "reply without a status line");
  tt__buf_free(&out);
  tt__http_session_free(ss);
  return 0;
}
