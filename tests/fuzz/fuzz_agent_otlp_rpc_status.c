/* Fuzz target: google.rpc.Status decoding (HTTP error bodies, gRPC grpc-status-details-bin),
 * with its RetryInfo detail. Two halves per input: the raw bytes must never be misread (bounded
 * reads, a terminated message, a sane retry delay, nothing else touched), and a Status built
 * from the input must decode to exactly what was written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent_otlp_util.h"
#include "otlp_transport.h"

#define MAX_RETRY_MS (86400LL * 365 * 1000 + 999)

static void check_raw(const uint8_t *data, size_t size) {
  tt__export_result_t a, b;
  tt__export_result_init(&a);
  tt__export_result_init(&b);
  int code = 12345;
  int ra = tt__otlp_parse_rpc_status(data, size, &code, &a);
  int rb = tt__otlp_parse_rpc_status(data, size, NULL, &b);
  if (ra != rb || (ra != 0 && ra != -1))
    abort();
  if (memcmp(&a, &b, sizeof a) != 0) /* the code pointer changes nothing else */
    abort();
  if (memchr(a.message, '\0', sizeof a.message) == NULL)
    abort();
  if (a.retry_after_ms != -1 && (a.retry_after_ms < 0 || a.retry_after_ms > MAX_RETRY_MS))
    abort();
  if (a.outcome != 0 || a.code != 0 || a.no_response || a.timed_out || a.rejected_spans != 0)
    abort();
  if (ra != 0 && (code != 12345 || a.message[0] != '\0' || a.retry_after_ms != -1))
    abort(); /* a malformed Status leaves the result as it was */
}

static void check_round_trip(const uint8_t *data, size_t size) {
  cur_t c = {data, size};
  uint64_t shape = cur_u64(&c, 1);
  int32_t code = (int32_t)(uint32_t)cur_u64(&c, 4);
  int64_t sec = (int64_t)cur_u64(&c, 8);
  int32_t nanos = (int32_t)(uint32_t)cur_u64(&c, 4);
  size_t mlen;
  const uint8_t *msg = cur_take(&c, 600, &mlen);
  const char *url = "type.googleapis.com/google.rpc.RetryInfo";
  if (shape & 1)
    url = "type.googleapis.com/google.rpc.DebugInfo"; /* another detail: no retry delay */

  pbw_t dur = {.n = 0}, ri = {.n = 0}, any = {.n = 0}, st = {.n = 0};
  pbw_key(&dur, 1, 0);
  pbw_varint(&dur, (uint64_t)sec);
  pbw_key(&dur, 2, 0);
  pbw_varint(&dur, (uint64_t)(int64_t)nanos); /* int32 negatives take ten bytes, as protoc's */
  pbw_bytes(&ri, 1, dur.buf, dur.n);
  pbw_bytes(&any, 1, url, strlen(url));
  pbw_bytes(&any, 2, ri.buf, ri.n);
  pbw_key(&st, 1, 0);
  pbw_varint(&st, (uint64_t)(int64_t)code);
  pbw_bytes(&st, 2, msg, mlen);
  if (shape & 2)
    pbw_bytes(&st, 3, any.buf, any.n);

  tt__export_result_t r;
  tt__export_result_init(&r);
  int got_code = 0;
  if (tt__otlp_parse_rpc_status(st.buf, st.n, &got_code, &r) != 0 || got_code != code)
    abort();
  /* The message is kept up to the result's buffer (a NUL inside ends it as a C string). */
  size_t keep = mlen < sizeof r.message - 1 ? mlen : sizeof r.message - 1;
  if (mlen != 0 && memcmp(r.message, msg, keep) != 0)
    abort();
  if (mlen == 0 && r.message[0] != '\0')
    abort();
  int64_t want = -1;
  if ((shape & 3) == 2 && sec >= 0 && nanos >= 0 && sec <= 86400LL * 365)
    want = sec * 1000 + nanos / 1000000;
  if (r.retry_after_ms != want)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_raw(data, size);
  check_round_trip(data, size);
  return 0;
}
