/* Fuzz target: one OTLP/gRPC Export message through the receiver's own handling of it
 * (tt__grpc_export_message in recv_grpc.c: grpc-encoding, bounded inflate, wire validation, the
 * handler, status mapping, the ExportTraceServiceResponse), with no gRPC server or channel.
 * Input: byte 0 picks the encoding (bits 0-1: identity, gzip, deflate, unsupported) and the size
 * limit (bits 2-3: 64 B .. 64 KiB); the rest is the message as gRPC core would deliver it.
 * Invariants: the handler only sees well-formed protobuf within the limit; the status code is
 * one the receiver documents, and matches the handler's verdict; UNIMPLEMENTED only for an
 * unsupported encoding; a success's response decodes to the handler's rejected count and message;
 * a throttled answer always carries a retry delay. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recv_grpc.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { OK = 0, INVALID_ARGUMENT = 3, RESOURCE_EXHAUSTED = 8, UNIMPLEMENTED = 12, INTERNAL = 13 };
enum { UNAVAILABLE = 14 };

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_collector_grpc: invariant broken: %s\n", what);
    abort();
  }
}

typedef struct {
  size_t max;
  int calls;
  tt_export_result_t verdict;
} ctx_t;

static void handler(void *vctx, const tt_export_request_t *req, tt_export_result_t *res) {
  ctx_t *c = vctx;
  c->calls++;
  check(req->len <= c->max, "handler received a message over the size limit");
  check(strcmp(req->transport, "grpc") == 0, "transport name");
  /* Vary the verdict with the input so every status mapping is exercised. */
  memset(res, 0, sizeof *res);
  res->status = (tt_export_status_t)(req->len % 5);
  res->rejected_spans = (int64_t)(req->len % 3);
  res->retry_after_ms = (uint32_t)(req->len % 2) * 1500;
  if (req->len % 7 != 0)
    snprintf(res->message, sizeof res->message, "len %zu", req->len);
  c->verdict = *res;
}

/* Checks that resp is ExportTraceServiceResponse{partial_success{rejected, message}}. */
static void check_response(const tt_buf_t *resp, const tt_export_result_t *v) {
  int64_t rejected = 0;
  const uint8_t *msg = NULL;
  size_t mlen = 0, nps = 0;
  tt_wire_reader_t r, pr;
  tt_wire_field_t f, pf;
  tt__wire_reader_init(&r, resp->data, resp->len);
  int rc;
  while ((rc = tt__wire_next(&r, &f)) == 1) {
    check(f.field == 1 && f.wt == TT_WT_LEN, "response holds only partial_success");
    nps++;
    tt__wire_reader_init(&pr, f.p, f.len);
    int prc;
    while ((prc = tt__wire_next(&pr, &pf)) == 1) {
      if (pf.field == 1 && pf.wt == TT_WT_VARINT)
        rejected = (int64_t)pf.u;
      else if (pf.field == 2 && pf.wt == TT_WT_LEN)
        msg = pf.p, mlen = pf.len;
      else
        check(0, "unexpected field in partial_success");
    }
    check(prc == 0, "partial_success does not parse");
  }
  check(rc == 0, "response does not parse");
  check(nps <= 1, "more than one partial_success");
  check(rejected == v->rejected_spans, "rejected_spans differs from the handler's");
  check(mlen == strlen(v->message) && (mlen == 0 || memcmp(msg, v->message, mlen) == 0),
        "error_message differs from the handler's");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  static const size_t limits[4] = {64, 1024, 8192, 65536};
  tt_grpc_encoding_t enc = (tt_grpc_encoding_t)(data[0] & 3);
  ctx_t c = {.max = limits[(data[0] >> 2) & 3]};
  tt_grpc_receiver_opts_t o = {.max_recv_msg_bytes = c.max, .handler = handler, .ctx = &c};
  tt_grpc_answer_t a;
  tt__grpc_export_message(&o, enc, data + 1, size - 1, 0, &a);

  check(strlen(a.message) < sizeof a.message, "message not terminated");
  check(a.code == OK || a.code == INVALID_ARGUMENT || a.code == RESOURCE_EXHAUSTED ||
            a.code == UNIMPLEMENTED || a.code == INTERNAL || a.code == UNAVAILABLE,
        "status code outside the documented set");
  check(a.code == OK || a.message[0] != '\0', "an error without a message");
  check(a.code == OK || a.response.len == 0, "a response message with an error status");
  check((a.code == UNIMPLEMENTED) == (enc == TT_GRPC_ENC_UNSUPPORTED),
        "UNIMPLEMENTED if and only if the encoding is unsupported");
  /* The handler checks the framing (request.h): every message within the limit reaches it. */
  if (enc == TT_GRPC_ENC_IDENTITY)
    check((c.calls == 1) == (size - 1 <= c.max),
          "the handler runs exactly for messages within the limit");
  check(c.calls <= 1, "handler called more than once");
  if (c.calls == 0) {
    check(a.outcome == TT_GRPC_MALFORMED, "refused before the handler but not counted malformed");
    check(a.code != OK, "success without the handler");
  } else if (c.verdict.status == TT_EXPORT_OK) {
    check(a.outcome == TT_GRPC_ACCEPTED && a.code == OK, "handler OK not answered OK");
    check_response(&a.response, &c.verdict);
  } else {
    check(a.outcome ==
              (c.verdict.status == TT_EXPORT_INVALID ? TT_GRPC_MALFORMED : TT_GRPC_REJECTED),
          "handler refusal not counted as malformed (INVALID) or rejected (the others)");
    static const int want[] = {[TT_EXPORT_INVALID] = INVALID_ARGUMENT,
                               [TT_EXPORT_THROTTLED] = RESOURCE_EXHAUSTED,
                               [TT_EXPORT_UNAVAILABLE] = UNAVAILABLE,
                               [TT_EXPORT_TOO_LARGE] = RESOURCE_EXHAUSTED};
    check(a.code == want[c.verdict.status], "handler verdict mapped to the wrong status");
    check((c.verdict.status == TT_EXPORT_THROTTLED) == (a.retry_ms > 0) ||
              c.verdict.status == TT_EXPORT_UNAVAILABLE,
          "RetryInfo only, and always, on a throttled answer");
  }
  tt__grpc_answer_free(&a);
  return 0;
}
