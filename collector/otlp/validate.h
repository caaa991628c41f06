/* Wire-level checks and answers shared by the receivers and the forwarding side. */
#ifndef TT_COLLECTOR_VALIDATE_H
#define TT_COLLECTOR_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Checks that `pb` is a well-formed ExportTraceServiceRequest at the wire level: every tag,
 * length and nested message of the known OTLP trace messages parses within bounds, wire types
 * match the schema, unknown fields are skipped. Cheap (one pass, no allocation). Returns 0, or
 * -EINVAL with a short reason in errbuf. Pure; any thread. Shared by both receivers. */
int tt__otlp_validate_export_request(const uint8_t *pb, size_t len, char *errbuf, size_t errlen);

/* Encodes google.rpc.Status{code, message, details:[Any(google.rpc.RetryInfo{retry_delay})]} into
 * `out` (the RetryInfo detail only when retry_delay_ms > 0). `code` is a gRPC status code. Used
 * for HTTP error bodies and the gRPC `grpc-status-details-bin` trailer. Returns 0 or -ENOMEM. */
int tt__rpc_status_encode(tt_buf_t *out, int32_t code, const char *message,
                          uint32_t retry_delay_ms);

#endif
