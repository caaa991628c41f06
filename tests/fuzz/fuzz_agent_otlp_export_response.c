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
  /* protobuf-c is more lenient than the protobuf rules in places (it takes field number 0,
   * and replaces rather than merges a repeated partial_success), so the raw bytes are compared
   * only where both readers accept them and the field occurs once; protobuf-c's canonical
   * re-encoding of what it read must always be read back the same by ours. */
  int64_t want = m->partial_success ? m->partial_success->rejected_spans : 0;
  if (rc == 0 && pb_count_field(data, size, 1) == 1 && r.rejected_spans != want)
    abort();
  /* Unknown fields are re-encoded as read (field 0 included): leave them out of the copy. */
  unsigned nu = m->base.n_unknown_fields, nu_ps = 0;
  m->base.n_unknown_fields = 0;
  if (m->partial_success) {
    nu_ps = m->partial_success->base.n_unknown_fields;
    m->partial_success->base.n_unknown_fields = 0;
  }
  size_t plen =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(m);
  uint8_t *packed = malloc(plen ? plen : 1);
  if (packed == NULL)
    abort();
  opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(m, packed);
  m->base.n_unknown_fields = nu; /* so that free_unpacked releases them */
  if (m->partial_success)
    m->partial_success->base.n_unknown_fields = nu_ps;
  tt__export_result_t c;
  tt__export_result_init(&c);
  if (tt__otlp_parse_export_response(packed, plen, &c) != 0 || c.rejected_spans != want)
    abort();
  const char *em = m->partial_success ? m->partial_success->error_message : "";
  if (em[0] != '\0' && strncmp(c.message, em, sizeof c.message - 1) != 0)
    abort();
  free(packed);
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
