/* UTF-8 validation of protobuf `string` payloads.
 *
 * proto3 requires every `string` field to be valid UTF-8, and decoders that enforce it (Go's
 * protobuf, hence Jaeger and the OpenTelemetry Collector) refuse a whole request for one bad
 * string. The collector checks the strings of every span it accepts so that one bad span is
 * refused alone (partial success) instead of poisoning the batch it is later forwarded in.
 * Pure; any thread. */
#ifndef TT_COLLECTOR_UTF8_H
#define TT_COLLECTOR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* True when s[0..n) is well-formed UTF-8 (Unicode table 3-7): no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF, no truncated or stray continuation bytes. An empty
 * string is valid; s may be NULL when n is 0. ASCII is checked eight bytes at a time. */
bool tt__utf8_valid(const uint8_t *s, size_t n);

/* True when no byte of s[0..n) has its high bit set: then any string inside those bytes is ASCII,
 * hence valid UTF-8, whatever their structure. Reads eight bytes at a time (the last word
 * overlapping the one before), no branch per byte. Inline: the span scanner calls it for every
 * attribute before it decides whether to walk it. */
static inline bool tt__utf8_ascii(const uint8_t *s, size_t n) {
  uint64_t acc = 0, w;
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      memcpy(&w, s + i, 8);
      acc |= w;
    }
    memcpy(&w, s + n - 8, 8);
    acc |= w;
  } else {
    for (size_t i = 0; i < n; i++)
      acc |= s[i];
  }
  return (acc & 0x8080808080808080ull) == 0;
}

#endif
