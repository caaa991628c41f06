/* Fuzz target: OTLP/JSON -> protobuf (tt__otlp_json_to_pb), plus the invariants that tie the two
 * directions together: whatever the transcoder accepts must be a well-formed request at the wire
 * level, must convert back to JSON, and that JSON must be a fixed point of a second round trip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_json.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what) {
  if (!cond) {
    fprintf(stderr, "fuzz_collector_json: invariant broken: %s\n", what);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_buf_t pb = TT_BUF_INIT, json = TT_BUF_INIT, pb2 = TT_BUF_INIT, json2 = TT_BUF_INIT;
  char err[256];
  if (tt__otlp_json_to_pb((const char *)data, size, &pb, err, sizeof err) == 0) {
    check(tt__otlp_validate_export_request(pb.data, pb.len, err, sizeof err) == 0,
          "accepted JSON produced malformed protobuf");
    check(tt__otlp_json_from_pb(pb.data, pb.len, &json) == 0, "protobuf -> JSON failed");
    check(tt__otlp_json_to_pb((const char *)json.data, json.len, &pb2, err, sizeof err) == 0,
          "our own JSON was refused");
    check(tt__otlp_json_from_pb(pb2.data, pb2.len, &json2) == 0, "second protobuf -> JSON failed");
    check(json.len == json2.len && memcmp(json.data, json2.data, json.len) == 0,
          "JSON is not a fixed point of the round trip");
  } else {
    check(pb.len == 0, "failed transcoding left output behind");
    check(strlen(err) > 0, "failure without a message");
  }
  tt__buf_free(&pb);
  tt__buf_free(&json);
  tt__buf_free(&pb2);
  tt__buf_free(&json2);
  return 0;
}
