/* First-bytes protocol detection for the receivers (sniff.h). */
#include "sniff.h"

#include <string.h>

const char tt__h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* Longest method token taken for an HTTP/1 request line: the registered methods are at most 17
 * characters (UPDATEREDIRECTREF); one more and a space still reads as a request line. */
#define METHOD_MAX 20

tt_sniff_t tt__sniff(const uint8_t *b, size_t n) {
  if (n == 0)
    return TT_SNIFF_MORE;
  if (b[0] == 0x16)
    return TT_SNIFF_TLS; /* handshake record type; a request line never starts with it */
  /* "PRI " decides: PRI is no HTTP/1 method (RFC 9113 chose it so HTTP/1 servers refuse the
   * preface), so the rest of the preface is HTTP/2's to check. "P", "PR", "PRI" may still be a
   * method such as PUT. */
  size_t m = n < 4 ? n : 4;
  if (memcmp(b, tt__h2_preface, m) == 0)
    return m == 4 ? TT_SNIFF_HTTP2 : TT_SNIFF_MORE;
  for (size_t i = 0; i < n && i <= METHOD_MAX; i++) {
    if (b[i] == ' ')
      return i > 0 ? TT_SNIFF_HTTP1 : TT_SNIFF_OTHER;
    if (b[i] < 'A' || b[i] > 'Z')
      return TT_SNIFF_OTHER;
  }
  return n > METHOD_MAX ? TT_SNIFF_OTHER : TT_SNIFF_MORE;
}
