/* otlp_retry.h: the retry loop shared by both OTLP transports. Internal to libtailtrace. */
#ifndef TT_OTLP_RETRY_H
#define TT_OTLP_RETRY_H

#include <stdint.h>

#include "otlp_transport.h"

typedef struct tt__retry_policy_s {
  int64_t initial_ms; /* first backoff (before jitter) */
  int64_t max_ms;     /* backoff cap (before jitter) */
  double multiplier;  /* growth per retry */
  double jitter;      /* 0..1: the delay is drawn uniformly from [d*(1-jitter), d] */
} tt__retry_policy_t;

/* Sleeps until until_ns (CLOCK_MONOTONIC) unless interrupted; returns nonzero when the wait was
 * cut short by shutdown. Called on the exporter thread. */
typedef int (*tt__retry_sleep_fn)(void *ud, int64_t until_ns);

/* The backoff before retry number `retry` (0-based), jittered with *rng (xorshift state,
 * nonzero). Pure: unit tests call it directly. */
int64_t tt__retry_backoff_ms(const tt__retry_policy_t *p, unsigned retry, uint64_t *rng);

/* Sends body, retrying retryable outcomes with backoff (or the server's Retry-After/RetryInfo
 * delay) while the next attempt can still start before deadline_ns. Returns the last attempt's
 * result in *res; *retries counts the retries made. A retryable result here means the deadline
 * ran out. Exporter thread only. */
void tt__otlp_send_with_retry(tt__transport_t *t, const tt__retry_policy_t *p, const uint8_t *body,
                              size_t len, int64_t deadline_ns, tt__retry_sleep_fn sleep_fn,
                              void *sleep_ud, uint64_t *rng, tt__export_result_t *res,
                              unsigned *retries);

#endif /* TT_OTLP_RETRY_H */
