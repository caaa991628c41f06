/* Fuzz target: W3C tracestate validation. Normalised output must itself be valid, no longer
 * than the limit, and a fixed point of normalisation. A second, deliberately naive reading of
 * the Level 2 grammar (below: character by character, no shared code with agent/propagation.c)
 * must agree with the library on whether the header is kept and on the members it keeps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

/* ---- the reference: one member at a time, written from the ABNF ---- */

#define REF_MAX_IN 20000

typedef struct ref_member_s {
  size_t start, len, keylen;
} ref_member_t;

static int ref_is_key_first(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int ref_is_key_char(unsigned char c) {
  return ref_is_key_first(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@';
}

static int ref_is_value_char(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != ',' && c != '=';
}

/* Returns the normalised length into out, or -1 when the header is discarded. */
static int ref_parse(const uint8_t *in, size_t n, char *out) {
  static ref_member_t mem[64];
  int count = 0, kept = 0;
  size_t pos = 0;
  for (;;) {
    /* Find the member [a, b) up to the next comma, then strip spaces and tabs both ends. */
    size_t a = pos, b = pos;
    while (b < n && in[b] != ',')
      b++;
    size_t next = b + 1;
    while (a < b && (in[a] == ' ' || in[a] == '\t'))
      a++;
    while (b > a && (in[b - 1] == ' ' || in[b - 1] == '\t'))
      b--;
    if (b > a) {
      size_t k = a;
      if (!ref_is_key_first(in[k]))
        return -1;
      k++;
      while (k < b && ref_is_key_char(in[k]))
        k++;
      if (k >= b || in[k] != '=' || k - a > 256)
        return -1;
      size_t v = k + 1;
      if (v == b || b - v > 256 || in[b - 1] == ' ')
        return -1;
      for (size_t i = v; i < b; i++)
        if (!ref_is_value_char(in[i]))
          return -1;
      count++;
      if (count > 32)
        return -1;
      int dup = 0;
      for (int i = 0; i < kept; i++)
        if (mem[i].keylen == k - a && memcmp(in + mem[i].start, in + a, k - a) == 0)
          dup = 1;
      if (!dup) {
        mem[kept].start = a;
        mem[kept].len = b - a;
        mem[kept].keylen = k - a;
        kept++;
      }
    }
    if (next > n)
      break;
    pos = next;
  }
  /* Cut to 512: members over 128 from the right, then any from the right. */
  int drop[64] = {0};
  size_t total = 0;
  for (int i = 0; i < kept; i++)
    total += mem[i].len + (i > 0 ? 1 : 0);
  for (int pass = 0; pass < 2; pass++)
    for (int i = kept - 1; i >= 0 && total > 512; i--)
      if (!drop[i] && (pass == 1 || mem[i].len > 128)) {
        drop[i] = 1;
        total -= mem[i].len + 1;
      }
  size_t o = 0;
  for (int i = 0; i < kept; i++) {
    if (drop[i])
      continue;
    if (o > 0)
      out[o++] = ',';
    memcpy(out + o, in + mem[i].start, mem[i].len);
    o += mem[i].len;
  }
  out[o] = '\0';
  return (int)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char out[TT_TRACESTATE_MAX_LEN + 1], again[TT_TRACESTATE_MAX_LEN + 1];
  static char ref[REF_MAX_IN + 1];
  int n = tt_tracestate_parse((const char *)data, size, out, sizeof out);
  if (size <= REF_MAX_IN) {
    int r = ref_parse(data, size, ref);
    if ((n < 0) != (r < 0))
      abort();
    if (n >= 0 && (r != n || memcmp(ref, out, (size_t)n) != 0))
      abort();
  }
  if (n < 0)
    return 0;
  if (n > TT_TRACESTATE_MAX_LEN || strlen(out) != (size_t)n)
    abort();
  int m = tt_tracestate_parse(out, (size_t)n, again, sizeof again);
  if (m != n || memcmp(out, again, (size_t)n) != 0)
    abort();
  return 0;
}
