/* Fuzz target: arbitrary bytes as protobuf into the wire validator and the protobuf -> OTLP/JSON
 * encoder (the file sink's path). Invariants: the encoder accepts exactly what the validator
 * accepts; its JSON is always accepted by our JSON decoder; and after one round trip (which
 * canonicalises: unknown fields and ids of the wrong length are dropped) the JSON is a fixed
 * point. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_json.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_collector_json_from_pb: invariant broken: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[256];
  int valid = tt__otlp_validate_export_request(data, size, err, sizeof err) == 0;
  tt_buf_t j1 = TT_BUF_INIT, p2 = TT_BUF_INIT, j2 = TT_BUF_INIT, p3 = TT_BUF_INIT, j3 = TT_BUF_INIT;
  int rc = tt__otlp_json_from_pb(data, size, &j1);
  check((rc == 0) == valid, "encoder and validator disagree");
  if (rc == 0) {
    check(tt__otlp_json_to_pb((const char *)j1.data, j1.len, &p2, err, sizeof err) == 0,
          "our own JSON was refused");
    check(tt__otlp_json_from_pb(p2.data, p2.len, &j2) == 0, "second encode failed");
    check(tt__otlp_json_to_pb((const char *)j2.data, j2.len, &p3, err, sizeof err) == 0,
          "our own canonical JSON was refused");
    check(tt__otlp_json_from_pb(p3.data, p3.len, &j3) == 0, "third encode failed");
    check(j2.len == j3.len && memcmp(j2.data, j3.data, j2.len) == 0,
          "canonical JSON is not a fixed point");
  } else {
    check(j1.len == 0, "failed encode left output behind");
  }
  tt__buf_free(&j1);
  tt__buf_free(&p2);
  tt__buf_free(&j2);
  tt__buf_free(&p3);
  tt__buf_free(&j3);
  return 0;
}
