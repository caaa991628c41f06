/* Fuzzes the wire scanner and everything the span path does with untrusted bytes: the span scan,
 * id checks, attribute and event lookups, the AnyValue reader and span annotation (which
 * re-frames the bytes it scanned). The input is treated as one Span message. */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sampling.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_span_facts_t f;
  if (tt__wire_scan_span(data, size, &f) == 0) {
    (void)tt__wire_span_ids_valid(&f, NULL);
    tt_buf_t out = TT_BUF_INIT;
    /* Ratio 0.3: a weight of 3.33, so SampleRate's rounding draws from the trace id. */
    tt_annotation_t a = {tt__threshold_from_ratio(0.3), "ratio", "idle",
                         f.trace_id_len == 16 ? f.trace_id : NULL};
    int rc = tt__span_annotate(data, size, &a, &out);
    /* What we re-framed must scan again: annotation never produces bytes we would refuse. */
    if (rc == 0 && tt__wire_scan_span(out.data, out.len, &f) != 0)
      __builtin_trap();
    tt__buf_free(&out);
  }
  tt_any_t v;
  (void)tt__wire_find_attr(data, size, 9, "http.response.status_code", &v);
  (void)tt__wire_find_attr(data, size, 1, "service.name", &v);
  (void)tt__wire_span_has_event(data, size, "exception");
  (void)tt__wire_any(data, size, &v);
  uint64_t eff;
  tt_buf_t ts = TT_BUF_INIT;
  (void)tt__tracestate_merge(data, size, 0x80000000000000ull, &ts, &eff);
  tt__buf_free(&ts);
  return 0;
}
