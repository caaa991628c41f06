/* Bounded decompression of request bodies and messages, shared by the HTTP server
 * (Content-Encoding) and the gRPC receiver (grpc-encoding). A few kilobytes of gzip can spell out
 * gigabytes: the output is never allowed past the limit, so a bomb costs at most the limit. */
#ifndef TT_COLLECTOR_INFLATE_H
#define TT_COLLECTOR_INFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum {
  TT_INFLATE_GZIP = 0, /* gzip wrapper only */
  TT_INFLATE_ZLIB,     /* zlib wrapper only (gRPC's "deflate") */
  TT_INFLATE_AUTO,     /* zlib or gzip, detected (HTTP's "deflate": most clients wrap it) */
} tt_inflate_format_t;

/* Inflates in[0..len) into out (reset first), never past max bytes. Returns 0; -EFBIG when the
 * data inflates to more than max (out then holds max bytes, to be discarded); -EINVAL for corrupt
 * or truncated data, or bytes after the stream's end; -ENOMEM. Pure; any thread. */
int tt__inflate_bounded(const uint8_t *in, size_t len, tt_inflate_format_t format, size_t max,
                        tt_buf_t *out);

#endif
