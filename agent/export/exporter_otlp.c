/* exporter_otlp.c: the OTLP exporter object. It owns the resolved configuration, one transport
 * and the statistics; export runs encode -> send-with-retry on the exporter thread. Cancel may
 * come from any thread (the core's shutdown when its deadline passes): it wakes the backoff wait
 * through a condition variable on CLOCK_MONOTONIC and aborts the transport's request in flight,
 * so nothing here can hold shutdown past its deadline even if the collector hangs. */
#include "exporter_otlp.h"

#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "otlp_retry.h"
#include "otlp_transport.h"

typedef struct {
  atomic_uint_fast64_t batches_exported, spans_exported, bytes_sent, attempts, retries,
      batches_retried, partial_successes, spans_rejected, batches_failed, spans_failed,
      spans_failed_permanent, spans_failed_timeout, spans_failed_shutdown, spans_failed_encode;
  atomic_int last_code;
} stats_t;

struct tt__otlp_exporter_s {
  tt__otlp_config_t cfg;
  tt__transport_t *transport;
  tt__retry_policy_t policy;
  tt__otlp_encoder_t encoder; /* exporter thread only */
  uint64_t rng;               /* exporter thread only */
  int partial_logged;
  /* Failed batches not yet reported, and when the last report went out (0: never); exporter
   * thread only. */
  uint64_t unreported_batches, unreported_spans;
  int64_t last_fail_report_ns;
  stats_t stats;
  /* Cancellation: `cancelled` under mu, signalled through cond to the backoff wait. */
  pthread_mutex_t mu;
  pthread_cond_t cond;
  int cancelled;
};

#define ADD(field, v) atomic_fetch_add_explicit(&e->stats.field, (v), memory_order_relaxed)
#define GET(field) atomic_load_explicit(&e->stats.field, memory_order_relaxed)

static int sleep_until(void *ud, int64_t until_ns) {
  tt__otlp_exporter_t *e = ud;
  struct timespec ts = {(time_t)(until_ns / 1000000000LL), (long)(until_ns % 1000000000LL)};
  pthread_mutex_lock(&e->mu);
  while (!e->cancelled && tt__otlp_now_ns() < until_ns) {
    if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) == ETIMEDOUT)
      break;
  }
  int c = e->cancelled;
  pthread_mutex_unlock(&e->mu);
  return c;
}

static const char *protocol_name(int protocol) {
  return protocol == TT_OTLP_PROTOCOL_GRPC        ? "grpc"
         : protocol == TT_OTLP_PROTOCOL_HTTP_JSON ? "http/json"
                                                  : "http/protobuf";
}

int tt__otlp_exporter_new(const tt_otlp_options_t *opts, tt__otlp_exporter_t **out) {
  *out = NULL;
  tt__otlp_exporter_t *e = tt__calloc(1, sizeof *e);
  if (e == NULL)
    return TT_ENOMEM;
  int rc = tt__otlp_config_resolve(&e->cfg, opts, tt__otlp_getenv, NULL);
  if (rc) {
    tt__free(e);
    return rc;
  }
  rc = e->cfg.protocol == TT_OTLP_PROTOCOL_GRPC ? tt__transport_grpc_new(&e->cfg, &e->transport)
                                                : tt__transport_http_new(&e->cfg, &e->transport);
  if (rc) {
    tt__otlp_log("cannot create the %s transport for \"%s\" (%d)", protocol_name(e->cfg.protocol),
                 e->cfg.endpoint, rc);
    tt__otlp_config_free(&e->cfg);
    tt__free(e);
    return rc;
  }
  e->policy.initial_ms = e->cfg.retry_initial_ms;
  e->policy.max_ms = e->cfg.retry_max_ms;
  e->policy.multiplier = e->cfg.retry_multiplier;
  e->policy.jitter = 0.2;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  e->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^ (uint64_t)(uintptr_t)e;
  pthread_mutex_init(&e->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&e->cond, &ca);
  pthread_condattr_destroy(&ca);
  *out = e;
  return 0;
}

const tt__otlp_config_t *tt__otlp_exporter_config(const tt__otlp_exporter_t *e) {
  return &e->cfg;
}

static tt__otlp_outcome_t count_failure(tt__otlp_exporter_t *e, size_t n, tt__otlp_outcome_t rc) {
  ADD(batches_failed, 1);
  ADD(spans_failed, n);
  switch (rc) {
    case TT__OTLP_FAIL_PERMANENT:
      ADD(spans_failed_permanent, n);
      break;
    case TT__OTLP_FAIL_TIMEOUT:
      ADD(spans_failed_timeout, n);
      break;
    case TT__OTLP_FAIL_CANCELLED:
      ADD(spans_failed_shutdown, n);
      break;
    default:
      ADD(spans_failed_encode, n);
      break;
  }
  return rc;
}

static int contains_nocase(const char *s, const char *needle) {
  size_t n = strlen(needle);
  for (; *s != '\0'; s++)
    if (strncasecmp(s, needle, n) == 0)
      return 1;
  return 0;
}

/* A hint for the two misconfigurations whose symptom names neither cause: an OTLP/HTTP URL
 * without the signal path (the per-signal endpoint and the endpoint option are used as the whole
 * URL, while the generic one gets /v1/traces appended), and gRPC without a scheme, which means
 * TLS, against a plaintext port. */
static const char *failure_hint(const tt__otlp_config_t *cfg, const tt__export_result_t *res) {
  const char *ep = cfg->endpoint;
  if (cfg->protocol != TT_OTLP_PROTOCOL_GRPC && res->code == 404) {
    const char *path = strstr(ep, "://");
    path = path != NULL ? strchr(path + 3, '/') : NULL;
    size_t pl = path != NULL ? strlen(path) : 0;
    if (pl < 10 || strcmp(path + pl - 10, "/v1/traces") != 0)
      return "; hint: the URL is used as given (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and the "
             "endpoint option are full URLs), and OTLP/HTTP receivers take traces at /v1/traces";
  }
  if (cfg->protocol == TT_OTLP_PROTOCOL_GRPC && !cfg->insecure &&
      strncasecmp(ep, "http://", 7) != 0 && strncasecmp(ep, "https://", 8) != 0 &&
      (contains_nocase(res->message, "ssl") || contains_nocase(res->message, "tls") ||
       contains_nocase(res->message, "handshake")))
    return "; hint: without a scheme the gRPC endpoint uses TLS; for a plaintext port write "
           "http://host:port (or set OTEL_EXPORTER_OTLP_INSECURE=true)";
  return "";
}

/* Warnings are on by default, and a backend that is down fails every batch: the first failure is
 * reported at once with its cause, later ones at most every 10 s, with the count since the last
 * report. Each report names the endpoint and the protocol, the one thing a reader of the log
 * needs to find the misconfiguration. */
#define TT__OTLP_FAIL_REPORT_NS 10000000000LL
static void report_failure(tt__otlp_exporter_t *e, size_t n, const tt__export_result_t *res,
                           unsigned retries) {
  e->unreported_batches++;
  e->unreported_spans += n;
  int64_t now = tt__otlp_now_ns();
  if (e->last_fail_report_ns != 0 && now - e->last_fail_report_ns < TT__OTLP_FAIL_REPORT_NS)
    return;
  char status[96];
  int sl;
  if (res->code == 0)
    sl = snprintf(status, sizeof status, "no answer");
  else if (e->cfg.protocol == TT_OTLP_PROTOCOL_GRPC)
    sl = snprintf(status, sizeof status, "gRPC status %d", res->code);
  else
    sl = snprintf(status, sizeof status, "HTTP %d", res->code);
  if (res->outcome == TT__EXPORT_RETRYABLE)
    snprintf(status + sl, sizeof status - (size_t)sl, ", gave up after %u retries at the deadline",
             retries);
  /* The server's or transport's message goes last: it is the longest part, and a line longer
   * than the logger's buffer loses its end. */
  tt__otlp_log("export to %s (%s) failed, %llu spans in %llu batches dropped%s (%s)%s: %s",
               e->cfg.endpoint, protocol_name(e->cfg.protocol),
               (unsigned long long)e->unreported_spans, (unsigned long long)e->unreported_batches,
               e->last_fail_report_ns != 0 ? " since the last report" : "", status,
               failure_hint(&e->cfg, res), res->message[0] != '\0' ? res->message : "no message");
  e->unreported_batches = 0;
  e->unreported_spans = 0;
  e->last_fail_report_ns = now;
}

tt__otlp_outcome_t tt__otlp_exporter_export(tt__otlp_exporter_t *e,
                                            const tt_span_data_t *const *spans, size_t n,
                                            int64_t deadline_ns) {
  if (n == 0)
    return TT__OTLP_OK;
  int64_t deadline = tt__otlp_now_ns() + (int64_t)e->cfg.timeout_ms * 1000000LL;
  if (deadline_ns > 0 && deadline_ns < deadline)
    deadline = deadline_ns;
  const uint8_t *body;
  size_t len;
  char *json = NULL;
  int erc;
  if (e->cfg.protocol == TT_OTLP_PROTOCOL_HTTP_JSON) {
    json = tt__otlp_json_encode(spans, n);
    erc = json ? 0 : TT_ENOMEM;
    body = (const uint8_t *)json;
    len = json ? strlen(json) : 0;
  } else {
    erc = tt__otlp_encoder_encode(&e->encoder, spans, n, &body, &len);
  }
  if (erc) {
    tt__otlp_log("cannot encode a batch of %zu spans (%s): dropped", n, tt_strerror(erc));
    return count_failure(e, n, TT__OTLP_FAIL_ENCODE);
  }
  tt__export_result_t res;
  unsigned retries = 0;
  tt__otlp_outcome_t rc;
  tt__otlp_send_with_retry(e->transport, &e->policy, body, len, deadline, sleep_until, e, &e->rng,
                           &res, &retries);
  tt__free(json);
  ADD(attempts, retries + 1);
  ADD(retries, retries);
  if (retries)
    ADD(batches_retried, 1);
  atomic_store_explicit(&e->stats.last_code, res.code, memory_order_relaxed);
  switch (res.outcome) {
    case TT__EXPORT_OK: {
      uint64_t rejected = res.rejected_spans > 0 ? (uint64_t)res.rejected_spans : 0;
      if (rejected > n)
        rejected = n;
      ADD(batches_exported, 1);
      ADD(spans_exported, n - rejected);
      ADD(bytes_sent, len);
      if (rejected || res.message[0]) {
        ADD(partial_successes, 1);
        ADD(spans_rejected, rejected);
        /* A misconfigured server rejects every batch the same way: say it once, count the rest. */
        if (!e->partial_logged) {
          e->partial_logged = 1;
          tt__otlp_log("server accepted a batch partially: %llu of %zu spans rejected: %s",
                       (unsigned long long)rejected, n, res.message);
        }
      }
      return TT__OTLP_OK;
    }
    case TT__EXPORT_PERMANENT:
      rc = TT__OTLP_FAIL_PERMANENT;
      break;
    case TT__EXPORT_RETRYABLE:
      rc = TT__OTLP_FAIL_TIMEOUT;
      break;
    case TT__EXPORT_ABORTED:
    default:
      rc = TT__OTLP_FAIL_CANCELLED;
      break;
  }
  report_failure(e, n, &res, retries);
  return count_failure(e, n, rc);
}

void tt__otlp_exporter_cancel(tt__otlp_exporter_t *e) {
  pthread_mutex_lock(&e->mu);
  e->cancelled = 1;
  pthread_cond_broadcast(&e->cond);
  pthread_mutex_unlock(&e->mu);
  tt__transport_abort(e->transport);
}

void tt__otlp_exporter_get_stats(const tt__otlp_exporter_t *ec, tt__otlp_stats_t *out) {
  tt__otlp_exporter_t *e = (tt__otlp_exporter_t *)ec; /* atomics loads need non-const */
  out->batches_exported = GET(batches_exported);
  out->spans_exported = GET(spans_exported);
  out->bytes_sent = GET(bytes_sent);
  out->attempts = GET(attempts);
  out->retries = GET(retries);
  out->batches_retried = GET(batches_retried);
  out->partial_successes = GET(partial_successes);
  out->spans_rejected = GET(spans_rejected);
  out->batches_failed = GET(batches_failed);
  out->spans_failed = GET(spans_failed);
  out->spans_failed_permanent = GET(spans_failed_permanent);
  out->spans_failed_timeout = GET(spans_failed_timeout);
  out->spans_failed_shutdown = GET(spans_failed_shutdown);
  out->spans_failed_encode = GET(spans_failed_encode);
  out->last_code = atomic_load_explicit(&e->stats.last_code, memory_order_relaxed);
}

void tt__otlp_exporter_destroy(tt__otlp_exporter_t *e) {
  if (e == NULL)
    return;
  tt__transport_destroy(e->transport);
  tt__otlp_encoder_free(&e->encoder);
  tt__otlp_config_free(&e->cfg);
  pthread_cond_destroy(&e->cond);
  pthread_mutex_destroy(&e->mu);
  tt__free(e);
}

/* ---- the core's exporter interface ------------------------------------------------------- */

/* Retries happen inside (with the server's delays and jitter), so the core only ever sees a
 * final answer: success, or failure once the deadline or a permanent error ended the attempt.
 * Returning RETRYABLE would make the core retry a second time on top of ours. */
static tt_export_result_t otlp_export_cb(void *state, const tt_span_data_t *const *spans, size_t n,
                                         uint64_t deadline_ns, uint64_t *retry_after_ns) {
  (void)retry_after_ns;
  int64_t dl = deadline_ns > (uint64_t)INT64_MAX ? 0 : (int64_t)deadline_ns;
  return tt__otlp_exporter_export(state, spans, n, dl) == TT__OTLP_OK ? TT_EXPORT_SUCCESS
                                                                      : TT_EXPORT_FAILURE;
}

/* Exports are synchronous: nothing is buffered here, so there is nothing to flush. */
static int otlp_flush_cb(void *state, uint64_t deadline_ns) {
  (void)state;
  (void)deadline_ns;
  return 0;
}

/* Called once on the exporter thread after its last export: no request is in flight. */
static void otlp_shutdown_cb(void *state, uint64_t deadline_ns) {
  (void)deadline_ns;
  tt__otlp_exporter_destroy(state);
}

/* The core calls this from tt_shutdown's thread once its deadline passed mid-export; the
 * sticky abort also fails at once anything the exporter thread still tries before shutdown. */
static void otlp_cancel_cb(void *state) {
  tt__otlp_exporter_cancel(state);
}

int tt_otlp_exporter_new(const tt_otlp_options_t *opts, tt_exporter_t *out) {
  if (out == NULL)
    return TT_EINVAL;
  memset(out, 0, sizeof *out);
  tt__otlp_exporter_t *e;
  int rc = tt__otlp_exporter_new(opts, &e);
  if (rc)
    return rc;
  out->size = sizeof *out;
  out->state = e;
  out->export_spans = otlp_export_cb;
  out->force_flush = otlp_flush_cb;
  out->shutdown = otlp_shutdown_cb;
  out->cancel = otlp_cancel_cb;
  return 0;
}

/* The core calls this (config.c) for OTEL_TRACES_EXPORTER=otlp, the default. */
int tt__exporter_otlp_from_env(tt_exporter_t *out) {
  return tt_otlp_exporter_new(NULL, out);
}
