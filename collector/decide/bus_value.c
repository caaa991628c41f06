/* Decision bus value codec: see the format in bus.h. Pure functions, no allocation; the
 * decoder is fuzzed (tests/fuzz/fuzz_collector_bus_value.c) because it reads what any client
 * of a shared Redis may have written. */
#include "bus.h"

#include <errno.h>
#include <string.h>

static bool reason_char_ok(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != ';';
}

int tt__bus_value_encode(const tt_bus_keep_t *k, char *out, size_t cap) {
  /* The reason must end within its array: a caller that filled all 40 bytes is refused rather
   * than read past the struct. */
  const char *end = memchr(k->reason, '\0', sizeof k->reason);
  if (end == NULL || k->threshold > TT_BUS_THRESHOLD_MAX)
    return -EINVAL;
  size_t rlen = (size_t)(end - k->reason);
  for (size_t i = 0; i < rlen; i++)
    if (!reason_char_ok((unsigned char)k->reason[i]))
      return -EINVAL;

  char hex[16];
  size_t hlen = 0;
  uint64_t t = k->threshold;
  do {
    hex[hlen++] = "0123456789abcdef"[t & 0xf];
    t >>= 4;
  } while (t != 0);

  size_t len = 2 + hlen + 1 + rlen;
  if (cap < len + 1)
    return -ENOSPC;
  size_t n = 0;
  out[n++] = '1';
  out[n++] = ';';
  while (hlen > 0)
    out[n++] = hex[--hlen];
  out[n++] = ';';
  memcpy(out + n, k->reason, rlen);
  n += rlen;
  out[n] = '\0';
  return (int)n;
}

int tt__bus_value_decode(const char *v, size_t len, tt_bus_keep_t *k) {
  if (len < 4 || v[0] != '1' || v[1] != ';')
    return -EINVAL;
  size_t i = 2;
  uint64_t t = 0;
  size_t digits = 0;
  for (; i < len && v[i] != ';'; i++, digits++) {
    char c = v[i];
    unsigned d;
    if (c >= '0' && c <= '9')
      d = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (unsigned)(c - 'a' + 10);
    else
      return -EINVAL;
    /* 14 digits bound the value to 56 bits, so the shift cannot overflow. */
    if (digits == 14)
      return -EINVAL;
    t = (t << 4) | d;
  }
  if (digits == 0 || i == len)
    return -EINVAL;
  i++; /* the ';' after the threshold */
  size_t rlen = len - i;
  if (rlen >= TT_BUS_REASON_MAX)
    return -EINVAL;
  for (size_t j = i; j < len; j++)
    if (!reason_char_ok((unsigned char)v[j]))
      return -EINVAL;
  k->threshold = t;
  memcpy(k->reason, v + i, rlen);
  k->reason[rlen] = '\0';
  return 0;
}
