/* Refusal counting and rate-limited warnings: see refusal.h. */
#include "refusal.h"

#include <stdio.h>
#include <time.h>

#include "log.h"

#define DEFAULT_INTERVAL_MS 60000

static const char *const names[TT_REFUSE__COUNT] = {"invalid",
                                                    "unsupported_media_type",
                                                    "not_found",
                                                    "method_not_allowed",
                                                    "body_too_large",
                                                    "headers_too_large",
                                                    "bad_http",
                                                    "http2_on_http1_port",
                                                    "tls_on_plaintext_port",
                                                    "http1_on_grpc_port"};

const char *tt__refuse_cause_name(tt_refuse_cause_t c) {
  return (unsigned)c < TT_REFUSE__COUNT ? names[c] : "unknown";
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  /* +1 so that no real time reads as 0, which means "never warned". */
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

void tt__refusal_note(tt_refusals_t *r, tt_refuse_cause_t c, const char *receiver, const char *peer,
                      const char *detail, const char *fix) {
  if (r == NULL || (unsigned)c >= TT_REFUSE__COUNT)
    return;
  atomic_fetch_add_explicit(&r->count[c], 1, memory_order_relaxed);
  tt__refusal_warn(r, c, receiver, peer, detail, fix);
}

void tt__refusal_warn(tt_refusals_t *r, tt_refuse_cause_t c, const char *receiver, const char *peer,
                      const char *detail, const char *fix) {
  if (r == NULL || (unsigned)c >= TT_REFUSE__COUNT)
    return;
  if (atomic_load_explicit(&tt__log_min_level, memory_order_relaxed) > TT_LOG_WARN) {
    atomic_fetch_add_explicit(&r->unlogged[c], 1, memory_order_relaxed);
    return;
  }
  int64_t now = mono_ms();
  int64_t interval = r->interval_ms ? r->interval_ms : DEFAULT_INTERVAL_MS;
  int64_t last = atomic_load_explicit(&r->last_warn_ms[c], memory_order_relaxed);
  /* One thread wins the right to warn for this interval; the others only count. */
  if ((last != 0 && now - last < interval) ||
      !atomic_compare_exchange_strong(&r->last_warn_ms[c], &last, now)) {
    atomic_fetch_add_explicit(&r->unlogged[c], 1, memory_order_relaxed);
    return;
  }
  uint64_t unlogged = atomic_exchange_explicit(&r->unlogged[c], 0, memory_order_relaxed);
  char msg[400], p[80], rc[48], f[400];
  snprintf(msg, sizeof msg, "request refused: %s", detail ? detail : tt__refuse_cause_name(c));
  TT_LOG(TT_LOG_WARN, msg,
         "\"receiver\":\"%s\",\"peer\":\"%s\",\"cause\":\"%s\",\"fix\":\"%s\",\"unlogged\":%llu",
         tt__log_str(rc, sizeof rc, receiver), tt__log_str(p, sizeof p, peer),
         tt__refuse_cause_name(c), tt__log_str(f, sizeof f, fix), (unsigned long long)unlogged);
}

uint64_t tt__refusal_count(const tt_refusals_t *r, tt_refuse_cause_t c) {
  if (r == NULL || (unsigned)c >= TT_REFUSE__COUNT)
    return 0;
  return atomic_load_explicit(&r->count[c], memory_order_relaxed);
}
