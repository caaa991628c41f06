/* SipHash: see siphash.h. Written from the paper's description ("SipHash: a fast short-input
 * PRF", 2012): four 64-bit words of state, c rounds per 8-byte block, d rounds to finish. */
#include "siphash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t le64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = ROTL(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = ROTL(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = ROTL(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = ROTL(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = ROTL(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = ROTL(v2, 32);                                                                             \
  } while (0)

/* Inlined into each entry point below, so that with the rounds constant (the tables' 1-3) the
 * loops unroll: a trace id's hash then costs about a hundred instructions, not four hundred. */
static inline __attribute__((always_inline)) uint64_t sip(const uint8_t key[16], const void *data,
                                                          size_t n, int c, int d) {
  const uint8_t *p = data;
  uint64_t k0 = le64(key), k1 = le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
  size_t whole = n & ~(size_t)7;
  for (size_t i = 0; i < whole; i += 8) {
    uint64_t m = le64(p + i);
    v3 ^= m;
    for (int r = 0; r < c; r++)
      SIPROUND;
    v0 ^= m;
  }
  /* The last block: the remaining bytes, and the length's low byte at the top. */
  uint64_t b = (uint64_t)n << 56;
  for (size_t i = 0; i < (n & 7); i++)
    b |= (uint64_t)p[whole + i] << (8 * i);
  v3 ^= b;
  for (int r = 0; r < c; r++)
    SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  for (int r = 0; r < d; r++)
    SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t tt__siphash_cd(const uint8_t key[16], const void *data, size_t n, int c, int d) {
  return sip(key, data, n, c, d);
}

uint64_t tt__siphash(const uint8_t key[16], const void *data, size_t n) {
  return sip(key, data, n, 1, 3);
}

void tt__siphash_key(uint8_t key[16]) {
  if (getrandom(key, 16, 0) == 16)
    return;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t a = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
  uint64_t b = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&ts;
  memcpy(key, &a, 8);
  memcpy(key + 8, &b, 8);
}
