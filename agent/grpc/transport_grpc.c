/* transport_grpc.c: OTLP/gRPC over gRPC's C core (the only agent file that includes gRPC).
 *
 * One channel and one completion queue per transport, reused for every export; each export is
 * a unary call to TraceService/Export with a deadline equal to the export deadline, so a hung
 * server cannot hold the exporter past it. gRPC's own retries are off: the retry policy lives in
 * otlp_retry.c for both transports. tt__transport_abort cancels the call in flight
 * (grpc_call_cancel is thread-safe), which completes the batch at once with CANCELLED.
 * Owned by the exporter thread, except `aborted` and `current` (guarded by `mu`). */
#include "otlp_transport.h"

#include "internal.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tailtrace.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

typedef struct {
  tt__transport_t base;
  const tt__otlp_config_t *cfg;
  grpc_channel *channel;
  grpc_completion_queue *cq;
  grpc_metadata *md;
  size_t n_md;
  atomic_int aborted;
  pid_t pid; /* gRPC's threads and channel do not survive fork: see grpc_send */
  pthread_mutex_t mu;
  grpc_call *current; /* the call in flight, for abort; guarded by mu */
} grpc_t;

static int retryable_code(grpc_status_code c) {
  switch (c) {
    case GRPC_STATUS_CANCELLED:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_ABORTED:
    case GRPC_STATUS_OUT_OF_RANGE:
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DATA_LOSS:
      return 1;
    default:
      return 0;
  }
}

static void copy_slice(char *dst, size_t cap, grpc_slice s) {
  size_t n = GRPC_SLICE_LENGTH(s);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, GRPC_SLICE_START_PTR(s), n);
  dst[n] = '\0';
}

static void classify(grpc_status_code status, grpc_slice details, grpc_metadata_array *trailing,
                     tt__export_result_t *res) {
  res->code = (int)status;
  copy_slice(res->message, sizeof res->message, details);
  for (size_t i = 0; i < trailing->count; i++) {
    if (grpc_slice_str_cmp(trailing->metadata[i].key, "grpc-status-details-bin") == 0) {
      grpc_slice v = trailing->metadata[i].value;
      tt__otlp_parse_rpc_status(GRPC_SLICE_START_PTR(v), GRPC_SLICE_LENGTH(v), NULL, res);
    }
  }
  if (status == GRPC_STATUS_OK) {
    res->outcome = TT__EXPORT_OK;
  } else if (retryable_code(status)) {
    res->outcome = TT__EXPORT_RETRYABLE;
    res->timed_out = status == GRPC_STATUS_DEADLINE_EXCEEDED;
  } else if (status == GRPC_STATUS_RESOURCE_EXHAUSTED && res->retry_after_ms >= 0) {
    /* Only a server that says when to come back is throttling; without RetryInfo the spec
     * reads RESOURCE_EXHAUSTED as "this will never fit" (e.g. a message over the limit). */
    res->outcome = TT__EXPORT_RETRYABLE;
  } else {
    res->outcome = TT__EXPORT_PERMANENT;
  }
  if (res->outcome != TT__EXPORT_RETRYABLE)
    res->retry_after_ms = -1;
  if (res->message[0] == '\0')
    snprintf(res->message, sizeof res->message, "gRPC status %d", (int)status);
}

static void grpc_send(tt__transport_t *t, const uint8_t *body, size_t len, int64_t deadline_ns,
                      tt__export_result_t *res) {
  grpc_t *g = (grpc_t *)t;
  tt__export_result_init(res);
  if (g->pid != getpid()) {
    /* gRPC's C core needs its own fork support (GRPC_ENABLE_FORK_SUPPORT and fork handlers we
     * cannot install for the host) to be usable in a child; rather than risk a hang, a forked
     * child's gRPC exporter drops its batches, counted as permanent failures. */
    res->outcome = TT__EXPORT_PERMANENT;
    snprintf(res->message, sizeof res->message, "OTLP/gRPC is not available in a forked child");
    return;
  }
  if (atomic_load(&g->aborted)) {
    res->outcome = TT__EXPORT_ABORTED;
    snprintf(res->message, sizeof res->message, "exporter shut down");
    return;
  }
  int64_t remaining_ms = (deadline_ns - tt__otlp_now_ns()) / 1000000;
  if (remaining_ms <= 0) {
    res->outcome = TT__EXPORT_RETRYABLE;
    res->no_response = res->timed_out = 1;
    snprintf(res->message, sizeof res->message, "export deadline already passed");
    return;
  }
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(remaining_ms, GPR_TIMESPAN));
  grpc_call *call =
      grpc_channel_create_call(g->channel, NULL, GRPC_PROPAGATE_DEFAULTS, g->cq,
                               grpc_slice_from_static_string(EXPORT_METHOD), NULL, deadline, NULL);
  if (call == NULL) {
    res->outcome = TT__EXPORT_RETRYABLE;
    res->no_response = 1;
    snprintf(res->message, sizeof res->message, "cannot create gRPC call");
    return;
  }
  grpc_slice body_slice = grpc_slice_from_copied_buffer((const char *)body, len);
  grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&body_slice, 1);
  grpc_slice_unref(body_slice);
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_byte_buffer *resp = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = g->n_md;
  ops[0].data.send_initial_metadata.metadata = g->md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &resp;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;

  pthread_mutex_lock(&g->mu);
  g->current = call;
  /* An abort that raced in between the check above and here must still cancel this call. */
  if (atomic_load(&g->aborted))
    grpc_call_cancel(call, NULL);
  pthread_mutex_unlock(&g->mu);

  grpc_call_error ce = grpc_call_start_batch(call, ops, 6, call, NULL);
  if (ce == GRPC_CALL_OK) {
    /* The call deadline guarantees this batch completes; nothing else is queued on g->cq. */
    grpc_event ev;
    do {
      ev = grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    } while (ev.type != GRPC_OP_COMPLETE);
  }
  pthread_mutex_lock(&g->mu);
  g->current = NULL;
  pthread_mutex_unlock(&g->mu);

  if (ce != GRPC_CALL_OK) {
    res->outcome = TT__EXPORT_PERMANENT;
    snprintf(res->message, sizeof res->message, "grpc_call_start_batch failed: %d (bad header?)",
             (int)ce);
  } else if (atomic_load(&g->aborted) && status != GRPC_STATUS_OK) {
    res->outcome = TT__EXPORT_ABORTED;
    res->code = (int)status;
    snprintf(res->message, sizeof res->message, "exporter shut down during export");
  } else {
    classify(status, details, &trailing_md, res);
    res->no_response = resp == NULL && status != GRPC_STATUS_OK;
    if (status == GRPC_STATUS_OK && resp != NULL) {
      grpc_byte_buffer_reader rd;
      if (grpc_byte_buffer_reader_init(&rd, resp)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        res->message[0] = '\0';
        tt__otlp_parse_export_response(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), res);
        grpc_slice_unref(all);
        grpc_byte_buffer_reader_destroy(&rd);
      }
    } else if (status == GRPC_STATUS_OK) {
      res->message[0] = '\0';
    }
  }
  if (resp)
    grpc_byte_buffer_destroy(resp);
  grpc_byte_buffer_destroy(req);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_slice_unref(details);
  grpc_call_unref(call);
}

static void grpc_abort(tt__transport_t *t) {
  grpc_t *g = (grpc_t *)t;
  pthread_mutex_lock(&g->mu);
  atomic_store(&g->aborted, 1);
  if (g->current)
    grpc_call_cancel(g->current, NULL);
  pthread_mutex_unlock(&g->mu);
}

static void grpc_destroy(tt__transport_t *t) {
  grpc_t *g = (grpc_t *)t;
  if (g->pid != getpid()) { /* a forked child: the gRPC objects are not ours to touch */
    tt__free(g->md);
    tt__free(g);
    return;
  }
  if (g->channel)
    grpc_channel_destroy(g->channel);
  if (g->cq) {
    grpc_completion_queue_shutdown(g->cq);
    while (grpc_completion_queue_next(g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(g->cq);
  }
  for (size_t i = 0; i < g->n_md; i++) {
    grpc_slice_unref(g->md[i].key);
    grpc_slice_unref(g->md[i].value);
  }
  tt__free(g->md);
  pthread_mutex_destroy(&g->mu);
  tt__free(g);
  grpc_shutdown();
}

static grpc_arg int_arg(const char *key, int v) {
  grpc_arg a;
  a.type = GRPC_ARG_INTEGER;
  a.key = (char *)key;
  a.value.integer = v;
  return a;
}

static const tt__transport_ops_t grpc_ops = {grpc_send, grpc_abort, grpc_destroy};

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (cap - len < 4096) {
      if (cap > (1u << 24)) { /* a PEM bundle over 16 MiB is not a PEM bundle */
        tt__free(buf);
        fclose(f);
        return NULL;
      }
      char *nb = tt__realloc(buf, cap ? cap * 2 : 8192);
      if (nb == NULL) {
        tt__free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
      cap = cap ? cap * 2 : 8192;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}

/* The endpoint's scheme decides TLS when present (https: TLS, http: plaintext); without one,
 * OTEL_EXPORTER_OTLP_INSECURE decides, as the spec says. */
static int target_of(const char *endpoint, int insecure_flag, char *target, size_t cap,
                     int *insecure) {
  const char *p = endpoint;
  if (strncasecmp(p, "http://", 7) == 0) {
    p += 7;
    *insecure = 1;
  } else if (strncasecmp(p, "https://", 8) == 0) {
    p += 8;
    *insecure = 0;
  } else {
    *insecure = insecure_flag;
  }
  size_t n = strcspn(p, "/");
  if (n == 0 || n >= cap)
    return TT_EINVAL;
  memcpy(target, p, n);
  target[n] = '\0';
  return 0;
}

int tt__transport_grpc_new(const tt__otlp_config_t *cfg, tt__transport_t **out) {
  *out = NULL;
  char target[512];
  int insecure;
  if (target_of(cfg->endpoint, cfg->insecure, target, sizeof target, &insecure) != 0)
    return TT_EINVAL;
  grpc_channel_credentials *creds;
  if (insecure) {
    creds = grpc_insecure_credentials_create();
  } else {
    char *ca = NULL, *cert = NULL, *key = NULL;
    if ((cfg->certificate && (ca = read_file(cfg->certificate)) == NULL) ||
        (cfg->client_certificate && (cert = read_file(cfg->client_certificate)) == NULL) ||
        (cfg->client_key && (key = read_file(cfg->client_key)) == NULL)) {
      tt__otlp_log("cannot read a TLS certificate or key file for %s", cfg->endpoint);
      tt__free(ca);
      tt__free(cert);
      tt__free(key);
      return TT_EINVAL;
    }
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    creds = grpc_ssl_credentials_create(ca, (cert && key) ? &pair : NULL, NULL, NULL);
    tt__free(ca);
    tt__free(cert);
    tt__free(key);
  }
  if (creds == NULL)
    return TT_ENOMEM;

  grpc_init();
  grpc_t *g = tt__calloc(1, sizeof *g);
  if (g == NULL) {
    grpc_channel_credentials_release(creds);
    grpc_shutdown();
    return TT_ENOMEM;
  }
  g->base.ops = &grpc_ops;
  g->cfg = cfg;
  atomic_init(&g->aborted, 0);
  g->pid = getpid();
  pthread_mutex_init(&g->mu, NULL);

  /* The build's version, not tt_version_string(): in libtailtrace-grpc.so this file cannot call
   * into libtailtrace (grpc_plugin.c), and both come from one release. */
  char ua[64];
  snprintf(ua, sizeof ua, "OTel-OTLP-Exporter-C/%s tailtrace/%s", TT_VERSION_STRING_BUILD,
           TT_VERSION_STRING_BUILD);
  grpc_arg args[6];
  size_t na = 0;
  args[na++] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
  args[na].type = GRPC_ARG_STRING;
  args[na].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
  args[na++].value.string = ua;
  /* Reconnect quickly after an outage: the default backoff (1 s growing to 120 s) would keep
   * failing exports long after the collector is back. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left
   * at its default on purpose: gRPC uses it as the connect timeout, and a short one aborts every
   * TLS handshake on a loaded machine; the call deadline bounds a slow connect anyway. */
  args[na++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args[na++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5000);
  if (cfg->gzip)
    args[na++] = int_arg(GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM, GRPC_COMPRESS_GZIP);
  grpc_channel_args cargs = {na, args};
  g->channel = grpc_channel_create(target, creds, &cargs);
  grpc_channel_credentials_release(creds);
  g->cq = grpc_completion_queue_create_for_next(NULL);
  g->md = tt__calloc(cfg->n_headers ? cfg->n_headers : 1, sizeof *g->md);
  if (g->channel == NULL || g->cq == NULL || g->md == NULL) {
    grpc_destroy(&g->base);
    return TT_ENOMEM;
  }
  for (size_t i = 0; i < cfg->n_headers; i++) {
    g->md[i].key = grpc_slice_from_copied_string(cfg->headers[i].name);
    g->md[i].value = grpc_slice_from_copied_string(cfg->headers[i].value);
    g->n_md++;
  }
  *out = &g->base;
  return 0;
}
