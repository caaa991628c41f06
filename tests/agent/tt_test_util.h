/* Helpers shared by the agent tests: a header-map carrier and a provider set-up with the
 * in-memory exporter. Header-only so each test stays one executable. */
#ifndef TT_TEST_UTIL_H
#define TT_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "tailtrace.h"

typedef struct test_carrier_s {
  int n;
  char key[16][64];
  char value[16][9000];
} test_carrier_t;

static inline const char *test_carrier_get(void *c, const char *key) {
  test_carrier_t *t = c;
  for (int i = 0; i < t->n; i++)
    if (strcasecmp(t->key[i], key) == 0)
      return t->value[i];
  return NULL;
}

static inline void test_carrier_set(void *c, const char *key, const char *value) {
  test_carrier_t *t = c;
  int i;
  for (i = 0; i < t->n; i++)
    if (strcasecmp(t->key[i], key) == 0)
      break;
  if (i == t->n) {
    if (t->n == 16)
      return;
    t->n++;
  }
  snprintf(t->key[i], sizeof t->key[i], "%s", key);
  snprintf(t->value[i], sizeof t->value[i], "%s", value);
}

static inline uint64_t test_deadline_ms(uint64_t ms) {
  return tt_monotonic_ns() + ms * 1000000u;
}

/* Starts a provider exporting into a fresh in-memory exporter; sampler always_on unless given. */
static inline tt_memory_exporter_t *test_init(tt_sampler_kind_t sampler, uint32_t queue,
                                              uint32_t batch, uint32_t delay_ms) {
  tt_memory_exporter_t *m = tt_memory_exporter_new(100000);
  tt_exporter_t e;
  tt_memory_exporter_as_exporter(m, &e);
  tt_options_t o = {.size = sizeof o,
                    .service_name = "test-svc",
                    .sampler = sampler != TT_SAMPLER_FROM_ENV ? sampler : TT_SAMPLER_FROM_ENV,
                    .sampler_ratio = 1.0,
                    .exporter = &e,
                    .max_queue_size = queue,
                    .max_export_batch_size = batch,
                    .schedule_delay_ms = delay_ms};
  assert_int_equal(tt_init(&o), 0);
  return m;
}

/* An exported root span that used no extra: every field past the ids, times and name holds its
 * default. */
static inline void test_assert_plain_span(const tt_span_data_t *d) {
  assert_int_equal(d->has_parent, 0);
  assert_string_equal(d->tracestate, "");
  assert_int_equal(d->attribute_count, 0);
  assert_int_equal(d->dropped_attributes_count, 0);
  assert_int_equal(d->event_count, 0);
  assert_int_equal(d->dropped_events_count, 0);
  assert_int_equal(d->link_count, 0);
  assert_int_equal(d->dropped_links_count, 0);
  assert_int_equal(d->status_code, TT_STATUS_UNSET);
  assert_string_equal(d->status_message, "");
  assert_int_equal(d->kind, TT_SPAN_KIND_INTERNAL);
}

static inline void test_finish(tt_memory_exporter_t *m) {
  assert_int_equal(tt_shutdown(test_deadline_ms(10000)), 0);
  tt_memory_exporter_free(m);
}

#endif
