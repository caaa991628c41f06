/* UTF-8 validation: see utf8.h. Span strings are overwhelmingly ASCII (names, attribute keys,
 * URLs), so the loop tests eight bytes at a time for a high bit and jumps straight to the first
 * byte that has one. A multi-byte sequence is checked against Unicode's table of well-formed
 * byte sequences (table 3-7) through one look-up of its lead byte, the way Go's utf8.Valid does:
 * the allowed range of the second byte is what excludes overlong forms, surrogates and code
 * points past U+10FFFF, and the other continuation bytes are always 80..BF. */
#include "utf8.h"

#include <string.h>

#define HIGH_BITS 0x8080808080808080ull

/* Per byte 0x80..0xFF: the length of the sequence it starts (low 3 bits; 0 when it never starts
 * one: continuation bytes, C0 and C1 which could only start overlong forms, F5..FF past
 * U+10FFFF) and, above them, which range its second byte must fall in. */
enum { R_ANY = 0, R_E0, R_ED, R_F0, R_F4 };
#define SEQ(len, range) ((uint8_t)((range) << 3 | (len)))
static const struct {
  uint8_t lo, hi;
} second[] = {
    [R_ANY] = {0x80, 0xbf}, /* */
    [R_E0] = {0xa0, 0xbf},  /* E0: three bytes below U+0800 would be overlong */
    [R_ED] = {0x80, 0x9f},  /* ED: A0..BF would be surrogates U+D800..U+DFFF */
    [R_F0] = {0x90, 0xbf},  /* F0: four bytes below U+10000 would be overlong */
    [R_F4] = {0x80, 0x8f},  /* F4: 90..BF would be past U+10FFFF */
};
static const uint8_t lead[128] = {
    [0x42 ... 0x5f] = SEQ(2, R_ANY), /* C2..DF */
    [0x60] = SEQ(3, R_E0),           /* E0 */
    [0x61 ... 0x6c] = SEQ(3, R_ANY), /* E1..EC */
    [0x6d] = SEQ(3, R_ED),           /* ED */
    [0x6e ... 0x6f] = SEQ(3, R_ANY), /* EE..EF */
    [0x70] = SEQ(4, R_F0),           /* F0 */
    [0x71 ... 0x73] = SEQ(4, R_ANY), /* F1..F3 */
    [0x74] = SEQ(4, R_F4),           /* F4 */
};

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
    uint8_t x = lead[c - 0x80];
    size_t len = x & 7;
    if (len == 0 || (size_t)(end - p) < len)
      return false;
    if (p[1] < second[x >> 3].lo || p[1] > second[x >> 3].hi)
      return false;
    if (len >= 3 && (p[2] & 0xc0) != 0x80)
      return false;
    if (len == 4 && (p[3] & 0xc0) != 0x80)
      return false;
    p += len;
  }
  return true;
}
