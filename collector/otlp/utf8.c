/* UTF-8 validation: see utf8.h. Span strings are overwhelmingly ASCII (names, attribute keys,
 * URLs), so the loop tests eight bytes at a time for a high bit and jumps straight to the first
 * byte that has one; the multi-byte rules follow Unicode's table of well-formed byte sequences
 * (table 3-7), in which the allowed range of the second byte is what excludes overlong forms,
 * surrogates and code points past U+10FFFF. */
#include "utf8.h"

#include <string.h>

#define HIGH_BITS 0x8080808080808080ull

/* Per lead byte 0xC0..0xFF: the sequence's length (0: never a lead byte) and the range of its
 * second byte, as (lo << 8 | hi). C0 and C1 could only start overlong forms; F5..FF would go
 * past U+10FFFF. */
typedef struct {
  uint8_t len, lo, hi;
} lead_t;

static lead_t lead(uint8_t c) {
  if (c >= 0xc2 && c <= 0xdf)
    return (lead_t){2, 0x80, 0xbf};
  if (c >= 0xe0 && c <= 0xef)
    return (lead_t){3, c == 0xe0 ? 0xa0 : 0x80, c == 0xed ? 0x9f : 0xbf};
  if (c >= 0xf0 && c <= 0xf4)
    return (lead_t){4, c == 0xf0 ? 0x90 : 0x80, c == 0xf4 ? 0x8f : 0xbf};
  return (lead_t){0, 0, 0};
}

bool tt__utf8_valid(const uint8_t *s, size_t n) {
  const uint8_t *p = s, *end = s + n;
  while (p < end) {
    if (end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      w &= HIGH_BITS;
      if (w == 0) {
        p += 8;
        continue;
      }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      p += __builtin_ctzll(w) / 8; /* the first byte with its high bit set */
#endif
    }
    uint8_t c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    lead_t l = lead(c);
    if (l.len == 0 || (size_t)(end - p) < l.len || p[1] < l.lo || p[1] > l.hi)
      return false;
    if (l.len >= 3 && (p[2] & 0xc0) != 0x80)
      return false;
    if (l.len == 4 && (p[3] & 0xc0) != 0x80)
      return false;
    p += l.len;
  }
  return true;
}
