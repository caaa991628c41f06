/* The OTLP/gRPC receiver on gRPC's C core. The only collector file that includes gRPC headers.
 *
 * Threads: one receiver thread owns the completion queue and every call slot; it runs the export
 * handler. The controlling thread only creates the server (start) and asks it to shut down
 * (stop), both thread-safe operations on the core's side; the `stopping` flag is the single piece
 * of state the two threads share.
 *
 * Each slot is one call's life: REQUESTED (waiting for a new call) -> READING (RECV_MESSAGE) ->
 * FINISHING (answer sent, RECV_CLOSE_ON_SERVER pending) -> REQUESTED again. Only one batch per
 * slot is outstanding at a time, so the slot itself is the completion tag. */
#define _GNU_SOURCE
#include "recv_grpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "inflate.h"
#include "validate.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define DEFAULT_MAX_MSG (4u * 1024 * 1024)
#define DEFAULT_CALLS 8u
#define MAX_CALLS 256u
/* How long stop() lets calls in flight finish before cancelling them. */
#define STOP_GRACE_MS 2000
#define DEFAULT_READ_TIMEOUT_MS 30000u

typedef enum { SLOT_IDLE, SLOT_REQUESTED, SLOT_READING, SLOT_FINISHING } slot_state_t;

typedef struct {
  tt_grpc_receiver_t *r;
  slot_state_t state;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array request_md;
  grpc_byte_buffer *payload;
  grpc_byte_buffer *response;
  grpc_slice status_msg;
  grpc_metadata trailer; /* grpc-status-details-bin */
  bool has_trailer;
  int cancelled;
  int64_t read_started_ms; /* when RECV_MESSAGE was started (SLOT_READING) */
} slot_t;

struct tt_grpc_receiver_s {
  tt_grpc_receiver_opts_t o;
  char host[64];
  grpc_server *server;
  grpc_completion_queue *cq;
  pthread_t thread;
  int port;
  atomic_bool stopping;
  unsigned nslots;
  slot_t *slots;
  int shutdown_tag; /* its address tags the server-shutdown notification */
  _Atomic uint64_t calls, accepted, malformed, rejected, unimplemented;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void slot_request(slot_t *s) {
  tt_grpc_receiver_t *r = s->r;
  grpc_call_details_init(&s->details);
  grpc_metadata_array_init(&s->request_md);
  s->state = SLOT_REQUESTED;
  grpc_call_error e =
      grpc_server_request_call(r->server, &s->call, &s->details, &s->request_md, r->cq, r->cq, s);
  if (e != GRPC_CALL_OK) {
    /* Only fails once the server is shutting down; the slot simply retires. */
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->request_md);
    s->state = SLOT_IDLE;
  }
}

/* Releases one call's resources and puts the slot back to waiting for the next call. */
static void slot_recycle(slot_t *s) {
  if (s->call)
    grpc_call_unref(s->call);
  s->call = NULL;
  if (s->payload)
    grpc_byte_buffer_destroy(s->payload);
  s->payload = NULL;
  if (s->response)
    grpc_byte_buffer_destroy(s->response);
  s->response = NULL;
  grpc_slice_unref(s->status_msg);
  s->status_msg = grpc_empty_slice();
  if (s->has_trailer) {
    grpc_slice_unref(s->trailer.key);
    grpc_slice_unref(s->trailer.value);
    s->has_trailer = false;
  }
  grpc_call_details_destroy(&s->details);
  grpc_metadata_array_destroy(&s->request_md);
  s->state = SLOT_IDLE;
  if (!atomic_load(&s->r->stopping))
    slot_request(s);
}

/* Sends the answer: initial metadata, the response message when there is one, status with an
 * optional google.rpc.Status trailer; and waits for the client's close in the same batch. */
static void slot_answer(slot_t *s, grpc_status_code code, const char *msg, const tt_buf_t *resp,
                        uint32_t retry_ms) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (resp != NULL) {
    grpc_slice sl = grpc_slice_from_copied_buffer((const char *)resp->data, resp->len);
    s->response = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = s->response;
  }
  s->status_msg = grpc_slice_from_copied_string(msg ? msg : "");
  if (code != GRPC_STATUS_OK && code != GRPC_STATUS_UNIMPLEMENTED) {
    tt_buf_t st = TT_BUF_INIT;
    if (tt__rpc_status_encode(&st, (int32_t)code, msg, retry_ms) == 0) {
      s->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
      s->trailer.value = grpc_slice_from_copied_buffer((const char *)st.data, st.len);
      s->has_trailer = true;
    }
    tt__buf_free(&st);
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = code;
  ops[n].data.send_status_from_server.status_details = &s->status_msg;
  ops[n].data.send_status_from_server.trailing_metadata_count = s->has_trailer ? 1 : 0;
  ops[n++].data.send_status_from_server.trailing_metadata = s->has_trailer ? &s->trailer : NULL;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &s->cancelled;
  s->state = SLOT_FINISHING;
  if (grpc_call_start_batch(s->call, ops, n, s, NULL) != GRPC_CALL_OK)
    slot_recycle(s);
}

static void on_new_call(slot_t *s, bool ok) {
  tt_grpc_receiver_t *r = s->r;
  if (!ok) {
    /* The server is shutting down: requested calls are returned unfilled. */
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->request_md);
    s->state = SLOT_IDLE;
    return;
  }
  if (!grpc_slice_eq(s->details.method, grpc_slice_from_static_string(EXPORT_METHOD))) {
    atomic_fetch_add_explicit(&r->unimplemented, 1, memory_order_relaxed);
    slot_answer(s, GRPC_STATUS_UNIMPLEMENTED,
                "unknown method: this server only implements " EXPORT_METHOD, NULL, 0);
    return;
  }
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &s->payload;
  s->state = SLOT_READING;
  s->read_started_ms = now_ms();
  if (grpc_call_start_batch(s->call, &op, 1, s, NULL) != GRPC_CALL_OK)
    slot_recycle(s);
}

/* ---- one Export message, without gRPC core ------------------------------------------------
 * Everything the receiver does with a request message once gRPC core has delivered its bytes:
 * bounded inflate, wire validation, the handler, the status mapping and the response message.
 * No gRPC type crosses this part, so the fuzzer reaches it without a server or a channel. */

static void answer(tt_grpc_answer_t *a, grpc_status_code code, const char *msg, uint32_t retry_ms) {
  a->code = (int)code;
  a->retry_ms = retry_ms;
  snprintf(a->message, sizeof a->message, "%s", msg);
}

/* A compressed message is inflated into *out, never past max bytes, so a gzip bomb costs at most
 * the limit. Decompression in gRPC core is off (GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION): it
 * would inflate the whole message before checking its size. Returns 0, or fills the answer and
 * returns -1. */
static int inflate_message(tt_grpc_encoding_t enc, const uint8_t *msg, size_t len, size_t max,
                           tt_buf_t *out, tt_grpc_answer_t *a) {
  int rc = -EINVAL;
  if (enc == TT_GRPC_ENC_GZIP || enc == TT_GRPC_ENC_DEFLATE)
    rc = tt__inflate_bounded(msg, len, enc == TT_GRPC_ENC_GZIP ? TT_INFLATE_GZIP : TT_INFLATE_ZLIB,
                             max, out);
  if (rc == 0 && out->data == NULL && tt__buf_reserve(out, 1) != 0)
    rc = -ENOMEM; /* an empty message: data must not stay NULL, which means "not inflated" */
  if (rc == 0)
    return 0;
  a->outcome = TT_GRPC_MALFORMED;
  if (rc == -EFBIG) {
    char m[160];
    snprintf(m, sizeof m, "decompressed message larger than max_message_size (%zu bytes); refused",
             max);
    answer(a, GRPC_STATUS_RESOURCE_EXHAUSTED, m, 0);
  } else if (rc == -ENOMEM) {
    answer(a, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory decompressing the message", 0);
  } else if (enc == TT_GRPC_ENC_GZIP || enc == TT_GRPC_ENC_DEFLATE) {
    answer(a, GRPC_STATUS_INVALID_ARGUMENT, "the message is not valid compressed data", 0);
  } else {
    answer(a, GRPC_STATUS_UNIMPLEMENTED, "unsupported grpc-encoding: use gzip, deflate or identity",
           0);
  }
  return -1;
}

void tt__grpc_export_message(const tt_grpc_receiver_opts_t *o, tt_grpc_encoding_t enc,
                             const uint8_t *msg, size_t len, tt_grpc_answer_t *a) {
  memset(a, 0, sizeof *a);
  size_t max = o->max_recv_msg_bytes ? o->max_recv_msg_bytes : DEFAULT_MAX_MSG;
  tt_buf_t inflated = TT_BUF_INIT;
  if (enc == TT_GRPC_ENC_IDENTITY && len > max) {
    /* gRPC core refuses such a message before it is delivered; checked again so that the
     * handler never sees more than the limit, whoever calls this. */
    char m[160];
    snprintf(m, sizeof m, "message larger than max_message_size (%zu bytes); refused", max);
    a->outcome = TT_GRPC_MALFORMED;
    answer(a, GRPC_STATUS_RESOURCE_EXHAUSTED, m, 0);
    return;
  }
  if (enc != TT_GRPC_ENC_IDENTITY) {
    if (inflate_message(enc, msg, len, max, &inflated, a) != 0) {
      tt__buf_free(&inflated);
      return;
    }
    msg = inflated.data;
    len = inflated.len;
  }
  char err[200], m[256];
  if (tt__otlp_validate_export_request(msg, len, err, sizeof err) != 0) {
    tt__buf_free(&inflated);
    a->outcome = TT_GRPC_MALFORMED;
    snprintf(m, sizeof m, "malformed ExportTraceServiceRequest: %s", err);
    answer(a, GRPC_STATUS_INVALID_ARGUMENT, m, 0);
    return;
  }
  tt_export_request_t req = {len ? msg : (const uint8_t *)"", len, "grpc"};
  tt_export_result_t res;
  memset(&res, 0, sizeof res);
  o->handler(o->ctx, &req, &res);
  tt__buf_free(&inflated);
  res.message[sizeof res.message - 1] = '\0';

  if (res.status == TT_EXPORT_OK) {
    a->outcome = TT_GRPC_ACCEPTED;
    /* ExportTraceServiceResponse{partial_success(1){rejected_spans(1), error_message(2)}}. */
    tt_buf_t ps = TT_BUF_INIT;
    int rc = 0;
    size_t mlen = strlen(res.message);
    if (res.rejected_spans > 0) {
      rc = tt__buf_append_tag(&ps, 1, 0);
      rc = rc ? rc : tt__buf_append_varint(&ps, (uint64_t)res.rejected_spans);
    }
    if (rc == 0 && mlen > 0) {
      rc = tt__buf_append_tag(&ps, 2, 2);
      rc = rc ? rc : tt__buf_append_varint(&ps, mlen);
      rc = rc ? rc : tt__buf_append(&ps, res.message, mlen);
    }
    if (rc == 0 && ps.len > 0)
      rc = tt__buf_append_lenfield(&a->response, 1, ps.data, ps.len);
    tt__buf_free(&ps);
    if (rc == 0) {
      answer(a, GRPC_STATUS_OK, "", 0);
    } else {
      tt__buf_free(&a->response);
      answer(a, GRPC_STATUS_INTERNAL, "out of memory", 0);
    }
    return;
  }
  a->outcome = TT_GRPC_REJECTED;
  switch (res.status) {
    case TT_EXPORT_INVALID:
      answer(a, GRPC_STATUS_INVALID_ARGUMENT, res.message[0] ? res.message : "invalid data", 0);
      break;
    case TT_EXPORT_TOO_LARGE:
      answer(a, GRPC_STATUS_RESOURCE_EXHAUSTED, res.message[0] ? res.message : "request too large",
             0);
      break;
    case TT_EXPORT_THROTTLED:
      /* With RetryInfo the client retries RESOURCE_EXHAUSTED; without it, it must not. */
      answer(a, GRPC_STATUS_RESOURCE_EXHAUSTED,
             res.message[0] ? res.message : "collector is overloaded, retry later",
             res.retry_after_ms ? res.retry_after_ms : 1000);
      break;
    default:
      answer(a, GRPC_STATUS_UNAVAILABLE,
             res.message[0] ? res.message : "collector is unavailable, retry later",
             res.retry_after_ms);
      break;
  }
}

void tt__grpc_answer_free(tt_grpc_answer_t *a) {
  tt__buf_free(&a->response);
}

/* ---- the call ------------------------------------------------------------------------------ */

/* The request message's bytes as received (compressed or not) into *all, and how they are
 * encoded. Returns 0, or answers the call and returns -1. */
static int message_bytes(slot_t *s, grpc_slice *all, tt_grpc_encoding_t *enc) {
  tt_grpc_receiver_t *r = s->r;
  grpc_compression_algorithm alg = s->payload->data.raw.compression;
  grpc_byte_buffer_reader reader;
  /* Uncompressed, the reader only joins the slices. */
  grpc_byte_buffer *raw = s->payload;
  grpc_byte_buffer *copy = NULL;
  if (alg != GRPC_COMPRESS_NONE) {
    /* A view of the same slices marked uncompressed, so the reader joins them as they are. */
    copy = grpc_raw_byte_buffer_create(s->payload->data.raw.slice_buffer.slices,
                                       s->payload->data.raw.slice_buffer.count);
    raw = copy;
  }
  int ok = grpc_byte_buffer_reader_init(&reader, raw);
  if (ok) {
    *all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
  }
  if (copy != NULL)
    grpc_byte_buffer_destroy(copy);
  if (!ok) {
    atomic_fetch_add_explicit(&r->malformed, 1, memory_order_relaxed);
    slot_answer(s, GRPC_STATUS_INTERNAL, "cannot read the request message", NULL, 0);
    return -1;
  }
  *enc = alg == GRPC_COMPRESS_NONE      ? TT_GRPC_ENC_IDENTITY
         : alg == GRPC_COMPRESS_GZIP    ? TT_GRPC_ENC_GZIP
         : alg == GRPC_COMPRESS_DEFLATE ? TT_GRPC_ENC_DEFLATE
                                        : TT_GRPC_ENC_UNSUPPORTED;
  return 0;
}

static void on_message(slot_t *s, bool ok) {
  tt_grpc_receiver_t *r = s->r;
  if (!ok || s->payload == NULL) {
    /* No message: the client half-closed without one, or the call failed (for example the
     * message exceeded the size limit, which the core already answered RESOURCE_EXHAUSTED). */
    slot_answer(s, GRPC_STATUS_INVALID_ARGUMENT, "Export expects one request message", NULL, 0);
    return;
  }
  atomic_fetch_add_explicit(&r->calls, 1, memory_order_relaxed);
  if (atomic_load(&r->stopping)) {
    atomic_fetch_add_explicit(&r->rejected, 1, memory_order_relaxed);
    slot_answer(s, GRPC_STATUS_UNAVAILABLE, "collector is shutting down", NULL, 0);
    return;
  }
  grpc_slice all;
  tt_grpc_encoding_t enc;
  if (message_bytes(s, &all, &enc) != 0)
    return; /* answered */
  tt_grpc_answer_t a;
  tt__grpc_export_message(&r->o, enc, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), &a);
  grpc_slice_unref(all);
  _Atomic uint64_t *counter = a.outcome == TT_GRPC_ACCEPTED   ? &r->accepted
                              : a.outcome == TT_GRPC_REJECTED ? &r->rejected
                                                              : &r->malformed;
  atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
  slot_answer(s, (grpc_status_code)a.code, a.message, a.code == GRPC_STATUS_OK ? &a.response : NULL,
              a.retry_ms);
  tt__grpc_answer_free(&a);
}

static void *receiver_thread(void *arg) {
  tt_grpc_receiver_t *r = arg;
  pthread_setname_np(pthread_self(), "tt-otlp-grpc");
  bool shutdown_started = false, cancelled = false;
  int64_t stop_at = 0;
  for (;;) {
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(r->cq, deadline, NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN)
      break;
    if (!shutdown_started && atomic_load(&r->stopping)) {
      /* Existing calls may finish; the notification arrives when the last one has. */
      grpc_server_shutdown_and_notify(r->server, r->cq, &r->shutdown_tag);
      shutdown_started = true;
      stop_at = now_ms();
    }
    if (shutdown_started && !cancelled && now_ms() - stop_at > STOP_GRACE_MS) {
      grpc_server_cancel_all_calls(r->server);
      cancelled = true;
    }
    /* Calls that never send their message are cancelled; RECV_MESSAGE then completes empty
     * and the slot is recycled through the normal path. */
    int64_t now = now_ms();
    for (unsigned i = 0; i < r->nslots; i++) {
      slot_t *s = &r->slots[i];
      if (s->state == SLOT_READING && s->read_started_ms != 0 &&
          now - s->read_started_ms > (int64_t)r->o.read_timeout_ms) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "no request message received in time", NULL);
        s->read_started_ms = 0; /* cancel once */
      }
    }
    if (ev.type != GRPC_OP_COMPLETE)
      continue;
    if (ev.tag == &r->shutdown_tag) {
      grpc_completion_queue_shutdown(r->cq);
      continue;
    }
    slot_t *s = ev.tag;
    switch (s->state) {
      case SLOT_REQUESTED:
        on_new_call(s, ev.success);
        break;
      case SLOT_READING:
        on_message(s, ev.success);
        break;
      case SLOT_FINISHING:
        slot_recycle(s);
        break;
      case SLOT_IDLE:
        break;
    }
  }
  return NULL;
}

int tt__grpc_receiver_start(const tt_grpc_receiver_opts_t *o, tt_grpc_receiver_t **out) {
  *out = NULL;
  if (o == NULL || o->handler == NULL || o->port < 0 || o->port > 65535)
    return -EINVAL;
  tt_grpc_receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  r->o = *o;
  snprintf(r->host, sizeof r->host, "%s", o->host ? o->host : "127.0.0.1");
  r->o.host = r->host;
  if (!r->o.max_recv_msg_bytes)
    r->o.max_recv_msg_bytes = DEFAULT_MAX_MSG;
  if (!r->o.read_timeout_ms)
    r->o.read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
  r->nslots = r->o.concurrent_calls ? r->o.concurrent_calls : DEFAULT_CALLS;
  if (r->nslots > MAX_CALLS)
    r->nslots = MAX_CALLS;
  r->slots = calloc(r->nslots, sizeof *r->slots);
  if (r->slots == NULL) {
    free(r);
    return -ENOMEM;
  }
  grpc_init();
  size_t max = r->o.max_recv_msg_bytes > INT32_MAX ? INT32_MAX : r->o.max_recv_msg_bytes;
  /* SO_REUSEPORT is on by default in gRPC, which would let a second collector silently share
   * the port; a clear bind error is what an operator needs. */
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)max}},
      {GRPC_ARG_INTEGER, GRPC_ARG_ALLOW_REUSEPORT, {.integer = 0}},
      /* gRPC core would inflate a compressed message whole before checking its size: 4 MiB of
       * gzip becomes 4 GiB. The receiver inflates it itself, bounded (message_bytes). */
      {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, {.integer = 0}},
  };
  grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
  r->server = grpc_server_create(&cargs, NULL);
  r->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(r->server, r->cq, NULL);
  char addr[96];
  snprintf(addr, sizeof addr, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host, o->port);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  r->port = grpc_server_add_http2_port(r->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (r->port <= 0) {
    /* Never started: destroying needs no shutdown round. */
    grpc_server_destroy(r->server);
    grpc_completion_queue_shutdown(r->cq);
    while (grpc_completion_queue_next(r->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(r->cq);
    grpc_shutdown();
    free(r->slots);
    free(r);
    return -EADDRINUSE;
  }
  grpc_server_start(r->server);
  for (unsigned i = 0; i < r->nslots; i++) {
    r->slots[i].r = r;
    r->slots[i].status_msg = grpc_empty_slice();
    slot_request(&r->slots[i]);
  }
  if (pthread_create(&r->thread, NULL, receiver_thread, r) != 0) {
    atomic_store(&r->stopping, true);
    receiver_thread(r); /* runs the shutdown sequence and drains the queue on this thread */
    grpc_server_destroy(r->server);
    grpc_completion_queue_destroy(r->cq);
    grpc_shutdown();
    free(r->slots);
    free(r);
    return -EAGAIN;
  }
  *out = r;
  return 0;
}

int tt__grpc_receiver_port(const tt_grpc_receiver_t *r) {
  return r ? r->port : -1;
}

void tt__grpc_receiver_stats(const tt_grpc_receiver_t *r, tt_grpc_receiver_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (r == NULL)
    return;
  out->calls = atomic_load_explicit(&r->calls, memory_order_relaxed);
  out->accepted = atomic_load_explicit(&r->accepted, memory_order_relaxed);
  out->malformed = atomic_load_explicit(&r->malformed, memory_order_relaxed);
  out->rejected = atomic_load_explicit(&r->rejected, memory_order_relaxed);
  out->unimplemented = atomic_load_explicit(&r->unimplemented, memory_order_relaxed);
}

void tt__grpc_receiver_stop(tt_grpc_receiver_t *r) {
  if (r == NULL)
    return;
  /* The receiver thread notices within its 100 ms poll and runs the shutdown sequence itself, so
   * the queue and the slots keep a single owner. */
  atomic_store(&r->stopping, true);
  pthread_join(r->thread, NULL);
  grpc_server_destroy(r->server);
  grpc_completion_queue_destroy(r->cq);
  grpc_shutdown();
  free(r->slots);
  free(r);
}
