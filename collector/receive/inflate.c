/* Bounded inflate: see inflate.h. */
#include "inflate.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

#define CHUNK 65536

int tt__inflate_bounded(const uint8_t *in, size_t len, tt_inflate_format_t format, size_t max,
                        tt_buf_t *out) {
  z_stream z;
  memset(&z, 0, sizeof z);
  /* windowBits: 16+ reads the gzip wrapper only, 32+ detects zlib or gzip, plain the zlib one. */
  int wbits = format == TT_INFLATE_GZIP   ? 16 + MAX_WBITS
              : format == TT_INFLATE_AUTO ? 32 + MAX_WBITS
                                          : MAX_WBITS;
  if (inflateInit2(&z, wbits) != Z_OK)
    return -ENOMEM;
  tt__buf_reset(out);
  z.next_in = (Bytef *)(uintptr_t)in;
  int rc = 0;
  size_t left = len;
  for (;;) {
    /* zlib counts input in uInt: feed a large message in pieces. */
    if (z.avail_in == 0 && left > 0) {
      z.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
      left -= z.avail_in;
    }
    size_t room = max - out->len;
    if (room == 0) {
      /* Full: only acceptable if the stream ends exactly here. Probe with one spare byte. */
      uint8_t probe;
      z.next_out = &probe;
      z.avail_out = 1;
      int zr = inflate(&z, Z_NO_FLUSH);
      rc = (zr == Z_STREAM_END && z.avail_out == 1) ? 0 : (z.avail_out == 0 ? -EFBIG : -EINVAL);
      break;
    }
    size_t chunk = room < CHUNK ? room : CHUNK;
    if (tt__buf_reserve(out, chunk) != 0) {
      rc = -ENOMEM;
      break;
    }
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)chunk;
    int zr = inflate(&z, Z_NO_FLUSH);
    out->len += chunk - z.avail_out;
    if (zr == Z_STREAM_END) {
      rc = z.avail_in == 0 && left == 0 ? 0 : -EINVAL; /* bytes after the stream's end */
      break;
    }
    if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0)) {
      rc = -EINVAL; /* corrupt data, or input ended mid-stream */
      break;
    }
    if (z.avail_in == 0 && left == 0 && z.avail_out != 0) {
      rc = -EINVAL; /* truncated */
      break;
    }
  }
  inflateEnd(&z);
  return rc;
}
