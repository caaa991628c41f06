/* Fuzz target: ExportTraceServiceResponse decoding (partial success) by the exporter's own wire
 * reader, checked against protobuf-c's generated decoder: whenever both accept the bytes, they
 * must agree on rejected_spans; and a response built from the input must read back as written. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_agent_otlp_util.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp_transport.h"

static void check_raw(const uint8_t *data, size_t size) {
  tt__export_result_t r;
  tt__export_result_init(&r);
  int rc = tt__otlp_parse_export_response(data, size, &r);
  if (rc != 0 && rc != -1)
    abort();
  if (memchr(r.message, '\0', sizeof r.message) == NULL)
    abort();
  if (r.retry_after_ms != -1 || r.outcome != 0 || r.code != 0)
    abort();
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *m =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, size,
                                                                                        data);
  if (m == NULL)
    return;
  /* Stricter than needed, on purpose: a response protobuf-c accepts is one a real server may
   * send, and the exporter must read it too. */
  if (rc != 0)
    abort();
  int64_t want = m->partial_success ? m->partial_success->rejected_spans : 0;
  if (r.rejected_spans != want)
    abort();
  opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(m, NULL);
}

static void check_round_trip(const uint8_t *data, size_t size) {
  cur_t c = {data, size};
  int64_t rejected = (int64_t)cur_u64(&c, 8);
  size_t mlen;
  const uint8_t *msg = cur_take(&c, 600, &mlen);
  pbw_t ps = {.n = 0}, resp = {.n = 0};
  pbw_key(&ps, 1, 0);
  pbw_varint(&ps, (uint64_t)rejected);
  pbw_bytes(&ps, 2, msg, mlen);
  pbw_bytes(&resp, 1, ps.buf, ps.n);
  tt__export_result_t r;
  tt__export_result_init(&r);
  if (tt__otlp_parse_export_response(resp.buf, resp.n, &r) != 0 || r.rejected_spans != rejected)
    abort();
  size_t keep = mlen < sizeof r.message - 1 ? mlen : sizeof r.message - 1;
  if (memcmp(r.message, msg, keep) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_raw(data, size);
  check_round_trip(data, size);
  return 0;
}
