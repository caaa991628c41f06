/* OTLP/JSON <-> OTLP protobuf transcoding for trace data (see ../shared/otlp-wire.md):
 * ids as hex strings, enums as integers, lowerCamelCase keys, 64-bit integers as strings or
 * numbers, unknown fields ignored. Pure functions; any thread. */
#ifndef TT_COLLECTOR_OTLP_JSON_H
#define TT_COLLECTOR_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Transcodes an OTLP/JSON ExportTraceServiceRequest (or TracesData: same shape) into protobuf
 * bytes appended to `out`. A span whose traceId/spanId is not valid hex of the right length is
 * still emitted, with the id field left empty, so the pipeline rejects that one span through
 * partial success. Returns 0, or -EINVAL for malformed JSON with a message in errbuf. */
int tt__otlp_json_to_pb(const char *json, size_t len, tt_buf_t *out, char *errbuf, size_t errlen);

/* Appends the OTLP/JSON form of a protobuf TracesData / ExportTraceServiceRequest (same field
 * numbers) to `out`, on one line with no trailing newline. Returns 0, or -EINVAL when the bytes
 * are not a valid message. */
int tt__otlp_json_from_pb(const uint8_t *pb, size_t len, tt_buf_t *out);

/* Appends `s` (len bytes) as a JSON string literal with quotes, escaping what JSON requires.
 * Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid JSON. Returns 0 or
 * -ENOMEM. */
int tt__json_append_string(tt_buf_t *out, const char *s, size_t len);

#endif
