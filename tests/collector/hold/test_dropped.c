/* The dropped-trace id set (collector/hold/dropped.c): what it remembers, in which order it
 * forgets, and that its index stays right through growth, wrapping and deletions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dropped.h"

static void make_id(uint32_t i, uint8_t id[16]) {
  memset(id, 0, 16);
  memcpy(id, &i, sizeof i);
  id[15] = 0x5a;
}

/* A deliberately poor hash, so probe runs are long and deletions must shift entries back. */
static uint32_t poor_hash(uint32_t i) {
  return i % 7;
}

static void added_ids_should_be_found_and_others_not(void **state) {
  (void)state;
  tt_dropped_t d = {0};
  uint8_t id[16];
  for (uint32_t i = 0; i < 5000; i++) {
    make_id(i, id);
    assert_int_equal(tt__dropped_add(&d, id, poor_hash(i), 1000 + i, 100000), 0);
  }
  for (uint32_t i = 0; i < 6000; i++) {
    make_id(i, id);
    assert_int_equal(tt__dropped_has(&d, id, poor_hash(i)), i < 5000);
  }
  tt__dropped_free(&d);
}

static void the_oldest_should_be_forgotten_first(void **state) {
  (void)state;
  tt_dropped_t d = {0};
  uint8_t id[16];
  for (uint32_t i = 0; i < 3000; i++) {
    make_id(i, id);
    assert_int_equal(tt__dropped_add(&d, id, poor_hash(i), 1000 + i, 100000), 0);
  }
  uint64_t ns;
  for (uint32_t i = 0; i < 1000; i++) {
    assert_true(tt__dropped_oldest(&d, &ns));
    assert_int_equal(ns, 1000 + i);
    tt__dropped_pop(&d);
  }
  for (uint32_t i = 0; i < 3000; i++) {
    make_id(i, id);
    if (tt__dropped_has(&d, id, poor_hash(i)) != (i >= 1000))
      fail_msg("id %u: found %d after the first 1000 were forgotten", i, i < 1000);
  }
  tt__dropped_free(&d);
  assert_false(tt__dropped_oldest(&d, &ns));
}

/* At max ids the oldest makes room, however often the ring wraps. */
static void at_the_cap_each_new_id_should_push_out_the_oldest(void **state) {
  (void)state;
  tt_dropped_t d = {0};
  uint8_t id[16];
  const uint32_t max = 1500; /* not a power of two: the ring wraps at 1500 */
  for (uint32_t i = 0; i < 20000; i++) {
    make_id(i, id);
    assert_int_equal(tt__dropped_add(&d, id, poor_hash(i), i, max), 0);
    assert_true(d.n <= max);
  }
  assert_int_equal(d.n, max);
  for (uint32_t i = 0; i < 20000; i++) {
    make_id(i, id);
    if (tt__dropped_has(&d, id, poor_hash(i)) != (i >= 20000 - max))
      fail_msg("id %u", i);
  }
  uint64_t ns;
  assert_true(tt__dropped_oldest(&d, &ns));
  assert_int_equal(ns, 20000 - max);
  tt__dropped_free(&d);
}

/* Interleaved adds and pops with a hash that piles ids into few buckets: every lookup must agree
 * with what was added and not yet forgotten. */
static void interleaved_adds_and_pops_should_keep_the_index_exact(void **state) {
  (void)state;
  tt_dropped_t d = {0};
  uint8_t id[16];
  uint32_t next = 0, oldest = 0;
  uint64_t seed = 12345;
  for (int round = 0; round < 4000; round++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    int adds = (int)((seed >> 33) % 5), pops = (int)((seed >> 40) % 5);
    for (int k = 0; k < adds; k++, next++) {
      make_id(next, id);
      assert_int_equal(tt__dropped_add(&d, id, poor_hash(next), next, 100000), 0);
    }
    for (int k = 0; k < pops && oldest < next; k++, oldest++)
      tt__dropped_pop(&d);
    assert_int_equal(d.n, next - oldest);
    if (round % 100 == 0)
      for (uint32_t i = 0; i < next + 10; i++) {
        make_id(i, id);
        if (tt__dropped_has(&d, id, poor_hash(i)) != (i >= oldest && i < next))
          fail_msg("round %d, id %u (live %u..%u)", round, i, oldest, next);
      }
  }
  tt__dropped_free(&d);
}

static void a_cap_of_zero_should_remember_nothing(void **state) {
  (void)state;
  tt_dropped_t d = {0};
  uint8_t id[16];
  make_id(1, id);
  assert_int_equal(tt__dropped_add(&d, id, 1, 1, 0), 0);
  assert_false(tt__dropped_has(&d, id, 1));
  tt__dropped_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(added_ids_should_be_found_and_others_not),
      cmocka_unit_test(the_oldest_should_be_forgotten_first),
      cmocka_unit_test(at_the_cap_each_new_id_should_push_out_the_oldest),
      cmocka_unit_test(interleaved_adds_and_pops_should_keep_the_index_exact),
      cmocka_unit_test(a_cap_of_zero_should_remember_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
