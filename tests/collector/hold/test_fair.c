/* The senders' shares of a short memory budget (collector/hold/fair.c): who is over the mean,
 * how recent bytes fade, and when a sender stops counting as active. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fair.h"

static void a_lone_sender_should_always_be_within_its_share(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  for (int i = 0; i < 100; i++)
    assert_true(tt__fair_admit(f, 7, 1 << 20, 1000));
  tt__fair_free(f);
}

static void the_heavier_sender_should_wait_until_the_lighter_catches_up(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  tt__fair_note(f, 1, 900, 1000);
  tt__fair_note(f, 2, 100, 1000);
  assert_false(tt__fair_admit(f, 1, 10, 1000)); /* 910 > (1010) / 2 */
  assert_true(tt__fair_admit(f, 2, 10, 1000));  /* 110 <= (1010) / 2 */
  /* The light one may take up to the mean; then the two alternate. */
  while (tt__fair_admit(f, 2, 10, 1000)) {
  }
  assert_false(tt__fair_admit(f, 2, 10, 1000));
  assert_false(tt__fair_admit(f, 1, 10, 1000) && tt__fair_admit(f, 2, 10, 1000));
  tt__fair_free(f);
}

static void recent_bytes_should_halve_every_second(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  tt__fair_note(f, 1, 1000, 1000);
  tt__fair_note(f, 2, 400, 1000);
  assert_false(tt__fair_admit(f, 1, 0, 1000)); /* 1000 * 2 > 1400 */
  /* One second on both have halved, 500 vs 200: the heavy one is still over the mean. The light
   * one is served up to the mean (300, 400, 500; 600 would pass it), and then the two are level
   * and the heavy one is within its share again. */
  assert_false(tt__fair_admit(f, 1, 0, 2000));
  for (int i = 0; i < 3; i++)
    assert_true(tt__fair_admit(f, 2, 100, 2000));
  assert_false(tt__fair_admit(f, 2, 100, 2000));
  assert_true(tt__fair_admit(f, 1, 0, 2000)); /* 500 * 2 <= 500 + 500 */
  tt__fair_free(f);
}

static void a_sender_silent_for_five_seconds_should_stop_counting(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  tt__fair_note(f, 1, 1 << 20, 1000);
  tt__fair_note(f, 2, 10, 1000);
  assert_false(tt__fair_admit(f, 1, 10, 1000));
  /* Sender 2 says nothing more; six seconds on, sender 1 is alone again. */
  assert_true(tt__fair_admit(f, 1, 10, 7001));
  tt__fair_free(f);
}

static void more_senders_than_slots_should_forget_the_longest_silent(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  for (uint64_t p = 1; p <= 200; p++)
    tt__fair_note(f, p, 100, 1000 + p);
  /* The newest 128 are tracked, each with 100 bytes: every one is at the mean. */
  assert_true(tt__fair_admit(f, 200, 0, 1300));
  /* Sender 1 was forgotten: it comes back with nothing and is within its share at once. */
  assert_true(tt__fair_admit(f, 1, 50, 1300));
  tt__fair_free(f);
}

static void a_sender_refused_at_the_hard_limit_should_still_count_as_active(void **state) {
  (void)state;
  tt_fair_t *f = tt__fair_new();
  tt__fair_note(f, 1, 1 << 20, 1000); /* the heavy one filled the budget alone */
  assert_true(tt__fair_admit(f, 1, 100, 1000));
  /* The polite one was refused before any share was computed; it is active all the same, so
   * the heavy one now waits at the soft line and the room it leaves is there for the retry. */
  tt__fair_seen(f, 2, 1100);
  assert_false(tt__fair_admit(f, 1, 100, 1200));
  assert_true(tt__fair_admit(f, 2, 100, 2100));
  tt__fair_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_lone_sender_should_always_be_within_its_share),
      cmocka_unit_test(the_heavier_sender_should_wait_until_the_lighter_catches_up),
      cmocka_unit_test(recent_bytes_should_halve_every_second),
      cmocka_unit_test(a_sender_silent_for_five_seconds_should_stop_counting),
      cmocka_unit_test(more_senders_than_slots_should_forget_the_longest_silent),
      cmocka_unit_test(a_sender_refused_at_the_hard_limit_should_still_count_as_active),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
