/* Fuzzes the export handler on arbitrary bytes taken as an ExportTraceServiceRequest: the
 * request-level scan, per-span validation and partial success, resource/scope blob copies, and
 * (on the shard thread) decisions and re-framing of whatever was accepted. One pipeline serves
 * every input; it decides within a millisecond so held spans do not pile up.
 *
 * The handler's one-pass walk checks framing by the request validator's rules (wire.h); the
 * receivers no longer run the validator first, so the two must agree on every input: the
 * handler answers INVALID exactly when the validator refuses the bytes. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tt_pipeline_t *pipe_;
static tt_sink_t *sink_;

static void teardown(void) {
  tt__pipeline_free(pipe_);
  sink_->vt->close(sink_);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (pipe_ == NULL) {
    sink_ = tt__sink_null_new();
    tt_pipeline_opts_t o;
    tt__pipeline_opts_default(&o);
    o.workers = 1;
    o.root_grace_ns = 1000000;
    o.idle_timeout_ns = 1000000;
    o.tick_ns = 1000000;
    o.memory_budget = 64u << 20;
    o.sinks = &sink_;
    o.nsinks = 1;
    if (tt__pipeline_new(&o, &pipe_) != 0)
      abort();
    atexit(teardown);
  }
  tt_export_request_t req = {data, size, "fuzz", 0};
  tt_export_result_t res;
  tt__pipeline_handle(pipe_, &req, &res);
  /* The answer is always one of the four, with a terminated message. */
  if ((unsigned)res.status > TT_EXPORT_TOO_LARGE ||
      memchr(res.message, 0, sizeof res.message) == NULL)
    abort();
  if (res.status != TT_EXPORT_OK && res.rejected_spans != 0)
    abort();
  if (res.status == TT_EXPORT_OK || res.status == TT_EXPORT_INVALID) {
    bool valid = tt__otlp_validate_export_request(data, size, NULL, 0) == 0;
    if (valid != (res.status == TT_EXPORT_OK))
      __builtin_trap(); /* the walk and the validator disagree about these bytes */
  }
  return 0;
}
