/* The keyed hash of the trace tables and span-id sets (collector/base/siphash.c): the reference
 * function's published vectors, and ids crafted to collide in the tables' former unkeyed hash
 * spreading like random ids once keyed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "siphash.h"

static void reference_key(uint8_t key[16]) {
  for (int i = 0; i < 16; i++)
    key[i] = (uint8_t)i;
}

static void siphash_2_4_should_match_the_published_vectors(void **state) {
  (void)state;
  uint8_t key[16], msg[15];
  reference_key(key);
  for (int i = 0; i < 15; i++)
    msg[i] = (uint8_t)i;
  /* The paper's worked example (appendix A), and the first entry of the reference vectors. */
  assert_true(tt__siphash_cd(key, msg, 15, 2, 4) == 0xa129ca6149be45e5ull);
  assert_true(tt__siphash_cd(key, msg, 0, 2, 4) == 0x726fdb47dd0e0e31ull);
}

/* The tables' SipHash-1-3 has its own entry point (its rounds unrolled): it must be the
 * generic function with c = 1, d = 3, at every length and alignment. */
static void siphash_1_3_should_equal_the_generic_function(void **state) {
  (void)state;
  uint8_t key[16], buf[80];
  reference_key(key);
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (uint8_t)(i * 37 + 11);
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n + off <= 72; n++)
      assert_int_equal(tt__siphash(key, buf + off, n), tt__siphash_cd(key, buf + off, n, 1, 3));
  assert_int_not_equal(tt__siphash(key, buf, 16), tt__siphash_cd(key, buf, 16, 2, 4));
}

static void keys_drawn_twice_should_differ(void **state) {
  (void)state;
  uint8_t a[16], b[16];
  tt__siphash_key(a);
  tt__siphash_key(b);
  assert_memory_not_equal(a, b, 16);
}

/* The trace table's hash before it was keyed: chosen ids all land in one bucket. */
static size_t unkeyed(const uint8_t id[16]) {
  uint64_t a, b;
  memcpy(&a, id, 8);
  memcpy(&b, id + 8, 8);
  return (size_t)((a * 0x9e3779b97f4a7c15ull) ^ (b * 0xc2b2ae3d27d4eb4full) ^ (b >> 29));
}

enum { BUCKETS = 1 << 16, IDS = 100000 };

static unsigned longest_chain(const uint8_t key[16], bool keyed) {
  unsigned *count = calloc(BUCKETS, sizeof *count), most = 0;
  for (uint64_t i = 1; i <= IDS; i++) {
    /* Low word a multiple of 2^20, high word 0: a * odd stays a multiple of 2^20. */
    uint8_t id[16] = {0};
    uint64_t a = i << 20;
    memcpy(id, &a, 8);
    size_t h = keyed ? (size_t)tt__siphash(key, id, 16) : unkeyed(id);
    unsigned c = ++count[h & (BUCKETS - 1)];
    if (c > most)
      most = c;
  }
  free(count);
  return most;
}

static void chosen_trace_ids_should_spread_like_random_ones_once_keyed(void **state) {
  (void)state;
  uint8_t key[16];
  tt__siphash_key(key);
  /* The attack is real against the unkeyed hash: every id in one bucket. */
  assert_int_equal(longest_chain(key, false), IDS);
  /* Keyed: 100,000 ids over 65,536 buckets give chains of about 1.5; the longest, for random
   * ids, is around 9. Allow twice that; a clash would be thousands. */
  unsigned most = longest_chain(key, true);
  if (most > 18)
    fail_msg("longest chain %u for 100000 chosen ids in 65536 buckets", most);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(siphash_2_4_should_match_the_published_vectors),
      cmocka_unit_test(siphash_1_3_should_equal_the_generic_function),
      cmocka_unit_test(keys_drawn_twice_should_differ),
      cmocka_unit_test(chosen_trace_ids_should_spread_like_random_ones_once_keyed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
