/* otlp_retry.c: exponential backoff with jitter, bounded by the export deadline. A server's own
 * delay (Retry-After, RetryInfo) replaces the computed backoff, because it knows its load better
 * than we do; when even that delay would end after the deadline we stop at once rather than
 * sleep through an export that cannot succeed in time. */
#include "otlp_retry.h"

#include "internal.h"

#include <stdio.h>

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}

int64_t tt__retry_backoff_ms(const tt__retry_policy_t *p, unsigned retry, uint64_t *rng) {
  double d = (double)p->initial_ms;
  for (unsigned i = 0; i < retry && d < (double)p->max_ms; i++)
    d *= p->multiplier;
  if (d > (double)p->max_ms)
    d = (double)p->max_ms;
  /* "Full-ish" jitter: spreading retries of many processes after a shared outage matters more
   * than the exact delay. */
  double u = (double)(xorshift(rng) >> 11) / (double)(1ULL << 53);
  double j = p->jitter < 0 ? 0 : (p->jitter > 1 ? 1 : p->jitter);
  int64_t ms = (int64_t)(d * (1.0 - j * u));
  return ms < 1 ? 1 : ms;
}

void tt__otlp_send_with_retry(tt__transport_t *t, const tt__retry_policy_t *p, const uint8_t *body,
                              size_t len, int64_t deadline_ns, tt__retry_sleep_fn sleep_fn,
                              void *sleep_ud, uint64_t *rng, tt__export_result_t *res,
                              unsigned *retries) {
  *retries = 0;
  for (;;) {
    tt__transport_send(t, body, len, deadline_ns, res);
    if (res->outcome != TT__EXPORT_RETRYABLE)
      return;
    int64_t delay_ms =
        res->retry_after_ms >= 0 ? res->retry_after_ms : tt__retry_backoff_ms(p, *retries, rng);
    int64_t wake = tt__otlp_now_ns() + delay_ms * 1000000LL;
    if (wake >= deadline_ns)
      return; /* the caller reports it, once per interval, with the endpoint */
    if (sleep_fn(sleep_ud, wake)) {
      res->outcome = TT__EXPORT_ABORTED;
      snprintf(res->message, sizeof res->message, "exporter shut down while waiting to retry");
      return;
    }
    (*retries)++;
  }
}
