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

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>

#include "inflate.h"
#include "log.h"
#include "http_server.h"
#include "peers.h"
#include "sniff.h"
#include "sockaddr.h"
#include "validate.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define DEFAULT_MAX_MSG (4u * 1024 * 1024)
#define DEFAULT_CALLS 32u
#define MAX_CALLS 256u
/* How long stop() lets calls in flight finish before cancelling them. */
#define STOP_GRACE_MS 2000
#define DEFAULT_READ_TIMEOUT_MS 10000u
#define DEFAULT_MAX_CONNS 1024u
#define DEFAULT_IDLE_MS 60000u
/* Streams one connection may have open at once: one client cannot take every call slot. */
#define DEFAULT_STREAMS_PER_CONN 16
/* When every call slot is taken, a call that has waited this long for its message gives its
 * slot up: a loopback or LAN client sends a message in well under a second. */
#define SLOT_STALL_MS 1000
/* Connections whose first bytes the gate is waiting for (or that it refused and is closing).
 * Past this many, new connections go to gRPC core unexamined, as silent ones would anyway. */
#define PENDING_MAX 128
/* A client that has sent nothing this long after connecting is handed to gRPC core, whose idle
 * timeout then governs it: gRPC and HTTP/1 clients both speak first, at once. */
#define SNIFF_MS 2000
/* Bytes that could still become a request line or the preface are looked at again after this. */
#define SNIFF_AGAIN_MS 20
/* A refused connection is read and discarded this long after its answer, so the close does not
 * reset the connection (and lose the answer) while the client's request is still unread. */
#define LINGER_MS 1000
#define LINGER_MAX_BYTES (1u << 20)
/* A connection whose peer has sent nothing for this long may be closed to make room. */
#define EVICT_QUIET_MS 1000u

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

/* A connection the gate handed to gRPC core. The core owns the descriptor and closes it when the
 * connection ends; the gate notices when `fd` no longer names the socket `ino`. */
typedef struct {
  int fd;
  ino_t ino;
  tt_peer_addr_t peer;
  bool counted_peer;
} gconn_t;

/* A connection the gate holds before gRPC core gets it: waiting for its first bytes, or answered
 * (another protocol) and lingering until the client closes. */
typedef struct {
  int fd;
  ino_t ino;
  int64_t deadline_ms;  /* hand over (waiting) or close (lingering) at this time */
  int64_t next_look_ms; /* waiting with too few bytes to tell: look again from this time */
  bool lingering;
  uint32_t drained; /* bytes read and discarded while lingering */
  char peer[64];    /* "192.0.2.1:50312", for the refusal report */
} pending_t;

/* A client address as two words and a port, so it can be published without a lock. */
typedef struct {
  _Atomic uint64_t w[2];
  _Atomic uint32_t port;
} fd_addr_t;

struct tt_grpc_receiver_s {
  tt_grpc_receiver_opts_t o;
  char host[64];
  /* The gate: the receiver's own listening socket, accepted connections counted per address and
   * in total, then given to gRPC core (which has no connection cap of its own). */
  int listen_fd;
  int wake_fd; /* eventfd: stop() wakes the gate thread */
  pthread_t gate;
  bool gate_started;
  gconn_t *gconns;
  uint32_t ngconns;
  pending_t pending[PENDING_MAX];
  uint32_t npending;
  char http1_fix[200]; /* what an HTTP/1 client should change */
  tt_peer_table_t *peers;
  /* The sender identity of each connection, by descriptor: gRPC core only knows a connection
   * handed over as "fd:N", so the gate records who is behind N before handing it over. */
  _Atomic uint64_t *peer_by_fd;
  /* The same connection's address, for the refusal reports only: written by the gate before
   * peer_by_fd (release), read after it (acquire). */
  fd_addr_t *addr_by_fd;
  int npeer_by_fd;
  tt_refusals_t own_refusals; /* when the options bring none */
  int64_t last_sweep_ms;
  bool warned_full; /* gate thread: the first refusal or eviction at a cap was logged */
  _Atomic uint64_t open, refused_limit, refused_per_ip, evicted, slots_reclaimed;
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

/* The client of a call as "192.0.2.1:50312", from the gate's record for a connection it handed
 * over ("fd:N"), or from the address gRPC core reports. */
static void call_peer_addr(tt_grpc_receiver_t *r, grpc_call *call, char *out, size_t n) {
  char *peer = grpc_call_get_peer(call);
  snprintf(out, n, "%s", "");
  if (peer == NULL)
    return;
  if (strncmp(peer, "fd:", 3) == 0) {
    int fd = atoi(peer + 3);
    if (fd >= 0 && fd < r->npeer_by_fd &&
        atomic_load_explicit(&r->peer_by_fd[fd], memory_order_acquire) != 0) {
      tt_peer_addr_t a;
      uint64_t w0 = atomic_load_explicit(&r->addr_by_fd[fd].w[0], memory_order_relaxed);
      uint64_t w1 = atomic_load_explicit(&r->addr_by_fd[fd].w[1], memory_order_relaxed);
      memcpy(a.b, &w0, 8);
      memcpy(a.b + 8, &w1, 8);
      char ip[64];
      tt__peer_addr_format(&a, ip, sizeof ip);
      snprintf(out, n, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip,
               (unsigned)atomic_load_explicit(&r->addr_by_fd[fd].port, memory_order_relaxed));
    }
  } else {
    const char *colon = strchr(peer, ':'); /* "ipv4:192.0.2.1:4317" */
    snprintf(out, n, "%s", colon ? colon + 1 : peer);
  }
  gpr_free(peer);
}

/* Counts and reports a refused call (refusal.h); only reports it when `counted` (the pipeline
 * counted it). Receiver thread. */
static void note_refusal(slot_t *s, tt_refuse_cause_t cause, const char *detail, const char *fix,
                         bool counted) {
  char peer[80];
  call_peer_addr(s->r, s->call, peer, sizeof peer);
  if (counted)
    tt__refusal_warn(s->r->o.refusals, cause, "otlp_grpc", peer, detail, fix);
  else
    tt__refusal_note(s->r->o.refusals, cause, "otlp_grpc", peer, detail, fix);
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
    note_refusal(s, TT_REFUSE_NOT_FOUND, "unknown gRPC method",
                 "export traces with " EXPORT_METHOD
                 " (this receiver takes traces only, not metrics or logs)",
                 false);
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
                             const uint8_t *msg, size_t len, uint64_t peer, tt_grpc_answer_t *a) {
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
  /* The handler checks the message's framing as it walks it (request.h): no walk here. */
  tt_export_request_t req = {len ? msg : (const uint8_t *)"", len, "grpc", peer};
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
  a->outcome = res.status == TT_EXPORT_INVALID ? TT_GRPC_MALFORMED : TT_GRPC_REJECTED;
  switch (res.status) {
    case TT_EXPORT_INVALID:
      a->counted = true;
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

/* The sender behind a call: the gate's record for a connection it handed over ("fd:N"), or the
 * address gRPC core reports. 0 when neither is known. */
static uint64_t call_peer(tt_grpc_receiver_t *r, grpc_call *call) {
  char *peer = grpc_call_get_peer(call);
  uint64_t id = 0;
  tt_peer_addr_t addr;
  if (peer == NULL)
    return 0;
  if (strncmp(peer, "fd:", 3) == 0) {
    int fd = atoi(peer + 3);
    if (fd >= 0 && fd < r->npeer_by_fd)
      id = atomic_load_explicit(&r->peer_by_fd[fd], memory_order_acquire);
  } else if (tt__peer_addr_from_grpc(peer, &addr) == 0) {
    id = tt__peer_addr_hash(&addr);
  }
  gpr_free(peer);
  return id;
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
  tt__grpc_export_message(&r->o, enc, GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all),
                          call_peer(r, s->call), &a);
  grpc_slice_unref(all);
  _Atomic uint64_t *counter = a.outcome == TT_GRPC_ACCEPTED   ? &r->accepted
                              : a.outcome == TT_GRPC_REJECTED ? &r->rejected
                                                              : &r->malformed;
  atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
  if (a.outcome == TT_GRPC_MALFORMED) {
    if (a.code == GRPC_STATUS_RESOURCE_EXHAUSTED)
      note_refusal(s, TT_REFUSE_BODY_TOO_LARGE, a.message,
                   "send smaller batches or raise receivers.otlp_grpc.max_message_size", false);
    else if (a.code == GRPC_STATUS_UNIMPLEMENTED)
      note_refusal(s, TT_REFUSE_MEDIA_TYPE, a.message,
                   "compress with gzip or deflate, or not at all", false);
    else
      note_refusal(s, TT_REFUSE_INVALID, a.message, "send a protobuf ExportTraceServiceRequest",
                   a.counted);
  }
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
    slot_t *oldest = NULL;
    bool any_free = false;
    for (unsigned i = 0; i < r->nslots; i++) {
      slot_t *s = &r->slots[i];
      any_free |= s->state == SLOT_REQUESTED;
      if (s->state != SLOT_READING || s->read_started_ms == 0)
        continue;
      if (now - s->read_started_ms > (int64_t)r->o.read_timeout_ms) {
        grpc_call_cancel_with_status(s->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                     "no request message received in time", NULL);
        s->read_started_ms = 0; /* cancel once */
      } else if (oldest == NULL || s->read_started_ms < oldest->read_started_ms) {
        oldest = s;
      }
    }
    /* Every slot taken: the call that has waited longest for its message (over a second) gives
     * its slot to the calls queued behind it, so silent streams cannot hold them all. */
    if (!any_free && !shutdown_started && oldest != NULL &&
        now - oldest->read_started_ms > SLOT_STALL_MS) {
      grpc_call_cancel_with_status(oldest->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                   "no request message while every call slot was taken", NULL);
      oldest->read_started_ms = 0;
      atomic_fetch_add_explicit(&r->slots_reclaimed, 1, memory_order_relaxed);
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

/* ---- the gate: connection caps in front of gRPC core ---------------------------------------- */

static void gconn_drop(tt_grpc_receiver_t *r, uint32_t i) {
  if (r->gconns[i].counted_peer)
    tt__peer_table_remove(r->peers, &r->gconns[i].peer);
  r->gconns[i] = r->gconns[--r->ngconns];
  atomic_store_explicit(&r->open, r->ngconns, memory_order_relaxed);
}

/* Whether descriptor fd still names the socket with inode ino. Asked through /proc (the link's
 * text is "socket:[ino]") rather than fstat: the descriptor belongs to gRPC core, which may close
 * it, and another thread reuse its number, at any moment; a path lookup touches no descriptor of
 * theirs (ThreadSanitizer rightly reports an fstat racing with their accept as a race). */
static bool fd_is_socket(int fd, ino_t ino) {
  char path[48], link[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  if (n <= 0)
    return false;
  link[n] = '\0';
  unsigned long long got;
  return sscanf(link, "socket:[%llu]", &got) == 1 && got == (unsigned long long)ino;
}

/* Forgets the connections gRPC core has closed: their descriptor is gone or now names another
 * file. Socket inodes are not reused while the kernel hands out new ones, so a descriptor number
 * that came back for a new socket is told apart from the old one. */
static void gate_sweep(tt_grpc_receiver_t *r) {
  r->last_sweep_ms = now_ms();
  for (uint32_t i = 0; i < r->ngconns;) {
    if (!fd_is_socket(r->gconns[i].fd, r->gconns[i].ino))
      gconn_drop(r, i);
    else
      i++;
  }
}

/* One line when a cap starts to bite; the counters carry the rest. Gate thread. */
static void warn_full_once(tt_grpc_receiver_t *r, const char *cause) {
  if (r->warned_full)
    return;
  r->warned_full = true;
  TT_LOG(TT_LOG_WARN, "connection cap reached; further refusals are only counted",
         "\"server\":\"otlp-grpc\",\"cause\":\"%s\",\"max_connections\":%u,"
         "\"max_connections_per_ip\":%u",
         cause, r->o.max_connections, r->o.max_connections_per_ip);
}

/* At the cap, the connection whose client has been silent longest (at least EVICT_QUIET_MS, by
 * the kernel's TCP_INFO) is shut down; gRPC core sees the end of the stream and closes it. A
 * client that exports every few seconds is never the quietest of a crowd of idle sockets. */
static bool gate_evict(tt_grpc_receiver_t *r) {
  int64_t best = -1;
  uint32_t quiet = 0;
  for (uint32_t i = 0; i < r->ngconns; i++) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    /* The core may have closed it since the last sweep, and the number gone to another socket:
     * ask only while it is still ours to ask about. */
    if (!fd_is_socket(r->gconns[i].fd, r->gconns[i].ino) ||
        getsockopt(r->gconns[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
      continue;
    if (ti.tcpi_last_data_recv >= EVICT_QUIET_MS && ti.tcpi_last_data_recv > quiet) {
      quiet = ti.tcpi_last_data_recv;
      best = i;
    }
  }
  if (best < 0)
    return false;
  /* Checked again just before: shutting down whatever socket now has the number would end
   * someone else's connection. (A window of microseconds remains; the sweep keeps it rare.) */
  if (fd_is_socket(r->gconns[best].fd, r->gconns[best].ino))
    shutdown(r->gconns[best].fd, SHUT_RDWR);
  gconn_drop(r, (uint32_t)best);
  atomic_fetch_add_explicit(&r->evicted, 1, memory_order_relaxed);
  warn_full_once(r, "evicted");
  return true;
}

static bool at_ip_cap(const tt_grpc_receiver_t *r, const tt_peer_addr_t *a) {
  return r->o.max_connections_per_ip &&
         tt__peer_table_count(r->peers, a) >= r->o.max_connections_per_ip;
}

static void gate_accept(tt_grpc_receiver_t *r, grpc_server_credentials *creds) {
  for (int n = 0; n < 64; n++) {
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    int fd = accept4(r->listen_fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; /* EAGAIN, or out of descriptors: the backlog waits for the next round */
    gconn_t g = {.fd = fd};
    bool have_peer = tt__peer_addr_from_sockaddr((struct sockaddr *)&sa, &g.peer) == 0;
    /* Counts may include connections gRPC core closed since the last sweep: sweep before
     * refusing, at most every 100 ms so a flood of connects costs no more than that. */
    bool over_ip = have_peer && at_ip_cap(r, &g.peer);
    if ((over_ip || r->ngconns >= r->o.max_connections) && now_ms() - r->last_sweep_ms >= 100) {
      gate_sweep(r);
      over_ip = have_peer && at_ip_cap(r, &g.peer);
    }
    if (over_ip) {
      atomic_fetch_add_explicit(&r->refused_per_ip, 1, memory_order_relaxed);
      warn_full_once(r, "per_ip");
      close(fd);
      continue;
    }
    if (r->ngconns >= r->o.max_connections && !gate_evict(r)) {
      atomic_fetch_add_explicit(&r->refused_limit, 1, memory_order_relaxed);
      warn_full_once(r, "limit");
      close(fd);
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      close(fd);
      continue;
    }
    g.ino = st.st_ino;
    if (have_peer && tt__peer_table_add(r->peers, &g.peer) != 0)
      g.counted_peer = true;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    r->gconns[r->ngconns++] = g;
    atomic_store_explicit(&r->open, r->ngconns, memory_order_relaxed);
    if (fd < r->npeer_by_fd) {
      uint64_t w[2];
      memcpy(w, g.peer.b, sizeof w);
      atomic_store_explicit(&r->addr_by_fd[fd].w[0], w[0], memory_order_relaxed);
      atomic_store_explicit(&r->addr_by_fd[fd].w[1], w[1], memory_order_relaxed);
      atomic_store_explicit(&r->addr_by_fd[fd].port,
                            sa.ss_family == AF_INET6
                                ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                : ntohs(((struct sockaddr_in *)&sa)->sin_port),
                            memory_order_relaxed);
      atomic_store_explicit(&r->peer_by_fd[fd], have_peer ? tt__peer_addr_hash(&g.peer) : 0,
                            memory_order_release);
    }
    if (r->npending < PENDING_MAX) {
      pending_t *pd = &r->pending[r->npending++];
      *pd = (pending_t){.fd = fd, .ino = g.ino, .deadline_ms = now_ms() + SNIFF_MS};
      tt__peer_sockaddr_format((struct sockaddr *)&sa, pd->peer, sizeof pd->peer);
    } else {
      grpc_server_add_channel_from_fd(r->server, fd, creds);
    }
  }
}

/* ---- the gate: a connection's first bytes -------------------------------------------------- */

static void pending_remove(tt_grpc_receiver_t *r, uint32_t i) {
  r->pending[i] = r->pending[--r->npending];
}

/* Closes a connection the gate still holds and forgets it. */
static void pending_close(tt_grpc_receiver_t *r, uint32_t i) {
  pending_t *pd = &r->pending[i];
  for (uint32_t j = 0; j < r->ngconns; j++) {
    if (r->gconns[j].fd == pd->fd && r->gconns[j].ino == pd->ino) {
      gconn_drop(r, j);
      break;
    }
  }
  close(pd->fd);
  pending_remove(r, i);
}

/* Answers a connection that speaks another protocol, then lingers: the rest of its request is
 * read and discarded until the client closes or LINGER_MS passes. */
static void pending_refuse(tt_grpc_receiver_t *r, pending_t *pd, tt_sniff_t kind, int64_t now) {
  tt_buf_t out = {0};
  int rc;
  if (kind == TT_SNIFF_TLS) {
    /* A fatal handshake_failure alert, which TLS clients report. */
    static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28};
    rc = tt__buf_append(&out, alert, sizeof alert);
    tt__refusal_note(r->o.refusals, TT_REFUSE_TLS, "otlp_grpc", pd->peer,
                     "a TLS handshake on a plain-text gRPC port",
                     "this port speaks plain-text gRPC: use an http:// endpoint (or insecure "
                     "credentials), not https://, or put a TLS proxy in front");
  } else {
    char msg[300];
    snprintf(msg, sizeof msg, "HTTP/1.1 is not served on this port: %s", r->http1_fix);
    tt_http_response_t res = {0};
    tt__http_status_body(&res, 505, true, tt__http_status_grpc_code(505), msg, 0);
    rc = tt__http_response_write(&out, &res, true, false);
    tt__buf_free(&res.body);
    tt__refusal_note(r->o.refusals, TT_REFUSE_HTTP1, "otlp_grpc", pd->peer,
                     "an HTTP/1.1 request on the OTLP/gRPC (HTTP/2) port", r->http1_fix);
  }
  /* A fresh socket's send buffer takes a few hundred bytes whole; a client that has filled it
   * already gets no answer, only the close. */
  if (rc == 0)
    (void)!send(pd->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
  tt__buf_free(&out);
  shutdown(pd->fd, SHUT_WR);
  pd->lingering = true;
  pd->deadline_ms = now + LINGER_MS;
}

/* Looks at the first bytes of connection i (revents from poll): hands it to gRPC core, answers
 * it as the protocol it speaks, or keeps waiting. May remove entry i. */
static void pending_look(tt_grpc_receiver_t *r, uint32_t i, short revents, int64_t now,
                         grpc_server_credentials *creds) {
  pending_t *pd = &r->pending[i];
  if (pd->lingering) {
    if (revents) {
      uint8_t sink[4096];
      for (;;) {
        ssize_t got = recv(pd->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (got > 0 && (pd->drained += (uint32_t)got) < LINGER_MAX_BYTES)
          continue;
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
          break;
        pending_close(r, i); /* the client closed, failed, or sent too much */
        return;
      }
    }
    if (now >= pd->deadline_ms) {
      pending_close(r, i);
      return;
    }
    return;
  }
  tt_sniff_t kind = TT_SNIFF_MORE;
  if (revents) {
    uint8_t b[TT_H2_PREFACE_LEN];
    ssize_t got = recv(pd->fd, b, sizeof b, MSG_PEEK | MSG_DONTWAIT);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
      pending_close(r, i); /* gone before saying anything */
      return;
    }
    if (got > 0)
      kind = tt__sniff(b, (size_t)got);
  }
  if (kind == TT_SNIFF_HTTP1 || kind == TT_SNIFF_TLS) {
    pending_refuse(r, pd, kind, now);
    return;
  }
  if (kind == TT_SNIFF_MORE && now < pd->deadline_ms) {
    if (revents)
      pd->next_look_ms = now + SNIFF_AGAIN_MS; /* too few bytes: do not spin on them */
    return;
  }
  /* The HTTP/2 preface, bytes no protocol here speaks (gRPC core refuses them in its own way),
   * or silence: gRPC core's from here on. */
  grpc_server_add_channel_from_fd(r->server, pd->fd, creds);
  pending_remove(r, i);
  return;
}

static void *gate_thread(void *arg) {
  tt_grpc_receiver_t *r = arg;
  pthread_setname_np(pthread_self(), "tt-grpc-gate");
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  struct pollfd p[2 + PENDING_MAX];
  for (;;) {
    int64_t now = now_ms();
    int timeout = 1000;
    p[0] = (struct pollfd){.fd = r->listen_fd, .events = POLLIN};
    p[1] = (struct pollfd){.fd = r->wake_fd, .events = POLLIN};
    for (uint32_t i = 0; i < r->npending; i++) {
      const pending_t *pd = &r->pending[i];
      /* Waiting for more bytes: not polled for input (they are there, only too few) until the
       * next look, so a client that stops mid-line does not make the gate spin. */
      bool wait_more = pd->next_look_ms != 0;
      p[2 + i] = (struct pollfd){.fd = pd->fd, .events = wait_more ? 0 : POLLIN};
      int64_t due =
          wait_more && pd->next_look_ms < pd->deadline_ms ? pd->next_look_ms : pd->deadline_ms;
      if (due - now < timeout)
        timeout = due > now ? (int)(due - now) : 0;
    }
    uint32_t polled = r->npending;
    int n = poll(p, 2 + polled, timeout);
    if (n > 0 && (p[1].revents & POLLIN))
      break;
    now = now_ms();
    if (now - r->last_sweep_ms >= 1000)
      gate_sweep(r);
    /* From the last entry down: a removal moves the last entry into the freed place, and that
     * one has been looked at already. */
    for (uint32_t i = polled; i-- > 0;) {
      pending_t *pd = &r->pending[i];
      short ev = p[2 + i].revents;
      if (pd->next_look_ms != 0 && now >= pd->next_look_ms) {
        pd->next_look_ms = 0;
        ev |= POLLIN;
      }
      if (ev || now >= pd->deadline_ms)
        pending_look(r, i, ev, now, creds);
    }
    if (n > 0 && (p[0].revents & POLLIN))
      gate_accept(r, creds);
  }
  while (r->npending > 0)
    pending_close(r, r->npending - 1);
  grpc_server_credentials_release(creds);
  return NULL;
}

/* Binds and listens on host:port (IPv4 or IPv6 literal), without SO_REUSEPORT so a second
 * collector on the port fails clearly. Returns the socket or a negative errno. */
static int gate_listen(const char *host, int port, int *bound_port) {
  struct sockaddr_storage ss;
  socklen_t len;
  if (tt__sockaddr_literal(host, port, &ss, &len) != 0)
    return -EINVAL;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  len = sizeof ss;
  getsockname(fd, (struct sockaddr *)&ss, &len);
  *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
  return fd;
}

static void receiver_free(tt_grpc_receiver_t *r) {
  if (r->listen_fd >= 0)
    close(r->listen_fd);
  if (r->wake_fd >= 0)
    close(r->wake_fd);
  tt__peer_table_free(r->peers);
  free((void *)r->peer_by_fd);
  free((void *)r->addr_by_fd);
  free(r->gconns);
  free(r->slots);
  free(r);
}

/* gRPC core's own log lines ("E1207 ... chttp2_server.cc:...") become JSON lines: any thread of
 * the core may call this. */
static void core_log(gpr_log_func_args *a) {
  tt_log_level_t l = a->severity == GPR_LOG_SEVERITY_ERROR  ? TT_LOG_ERROR
                     : a->severity == GPR_LOG_SEVERITY_INFO ? TT_LOG_INFO
                                                            : TT_LOG_DEBUG;
  char file[160];
  TT_LOG(l, a->message ? a->message : "", "\"component\":\"grpc\",\"file\":\"%s\",\"line\":%d",
         tt__log_str(file, sizeof file, a->file), a->line);
}

void tt__grpc_route_core_logs(void) {
  gpr_set_log_function(core_log);
}

int tt__grpc_receiver_start(const tt_grpc_receiver_opts_t *o, tt_grpc_receiver_t **out) {
  *out = NULL;
  if (o == NULL || o->handler == NULL || o->port < 0 || o->port > 65535)
    return -EINVAL;
  tt_grpc_receiver_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  r->listen_fd = r->wake_fd = -1;
  r->o = *o;
  snprintf(r->host, sizeof r->host, "%s", o->host ? o->host : "127.0.0.1");
  r->o.host = r->host;
  if (!r->o.max_recv_msg_bytes)
    r->o.max_recv_msg_bytes = DEFAULT_MAX_MSG;
  if (!r->o.read_timeout_ms)
    r->o.read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
  if (!r->o.max_connections)
    r->o.max_connections = DEFAULT_MAX_CONNS;
  if (!r->o.idle_timeout_ms)
    r->o.idle_timeout_ms = DEFAULT_IDLE_MS;
  r->nslots = r->o.concurrent_calls ? r->o.concurrent_calls : DEFAULT_CALLS;
  if (r->nslots > MAX_CALLS)
    r->nslots = MAX_CALLS;
  r->slots = calloc(r->nslots, sizeof *r->slots);
  r->gconns = calloc(r->o.max_connections, sizeof *r->gconns);
  r->peers = tt__peer_table_new(r->o.max_connections);
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  /* Descriptors past this (a process allowed more than 64 Ki files) are served without a
   * sender identity: their senders share one slot of the fairness table. */
  struct rlimit rl;
  r->npeer_by_fd = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)r->npeer_by_fd)
    r->npeer_by_fd = (int)rl.rlim_cur;
  r->peer_by_fd = calloc((size_t)r->npeer_by_fd, sizeof *r->peer_by_fd);
  r->addr_by_fd = calloc((size_t)r->npeer_by_fd, sizeof *r->addr_by_fd);
  if (!r->o.refusals)
    r->o.refusals = &r->own_refusals;
  if (o->http_endpoint != NULL && o->http_endpoint[0] != '\0')
    snprintf(r->http1_fix, sizeof r->http1_fix,
             "this port speaks OTLP/gRPC (HTTP/2); OTLP/HTTP clients use the OTLP/HTTP receiver at "
             "%s (POST /v1/traces)",
             o->http_endpoint);
  else
    snprintf(r->http1_fix, sizeof r->http1_fix,
             "this port speaks OTLP/gRPC (HTTP/2); OTLP/HTTP clients need receivers.otlp_http");
  if (r->slots == NULL || r->gconns == NULL || r->peers == NULL || r->wake_fd < 0 ||
      r->peer_by_fd == NULL || r->addr_by_fd == NULL) {
    receiver_free(r);
    return -ENOMEM;
  }
  r->listen_fd = gate_listen(r->host, o->port, &r->port);
  if (r->listen_fd < 0) {
    int rc = r->listen_fd;
    r->listen_fd = -1;
    receiver_free(r);
    return rc;
  }
  grpc_init();
  size_t max = r->o.max_recv_msg_bytes > INT32_MAX ? INT32_MAX : r->o.max_recv_msg_bytes;
  int streams =
      r->o.streams_per_connection ? (int)r->o.streams_per_connection : DEFAULT_STREAMS_PER_CONN;
  grpc_arg args[] = {
      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = (int)max}},
      /* gRPC core would inflate a compressed message whole before checking its size: 4 MiB of
       * gzip becomes 4 GiB. The receiver inflates it itself, bounded (message_bytes). */
      {GRPC_ARG_INTEGER, GRPC_ARG_ENABLE_PER_MESSAGE_DECOMPRESSION, {.integer = 0}},
      {GRPC_ARG_INTEGER, GRPC_ARG_MAX_CONCURRENT_STREAMS, {.integer = streams}},
      /* A connection with no call for this long is closed (GOAWAY; clients reconnect when they
       * next export), so connections that only sent the preface do not stay forever. */
      {GRPC_ARG_INTEGER,
       GRPC_ARG_MAX_CONNECTION_IDLE_MS,
       {.integer = r->o.idle_timeout_ms > INT32_MAX ? INT32_MAX : (int)r->o.idle_timeout_ms}},
  };
  grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
  r->server = grpc_server_create(&cargs, NULL);
  r->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(r->server, r->cq, NULL);
  /* No listening port of the core's own: connections arrive through the gate. */
  grpc_server_start(r->server);
  for (unsigned i = 0; i < r->nslots; i++) {
    r->slots[i].r = r;
    r->slots[i].status_msg = grpc_empty_slice();
    slot_request(&r->slots[i]);
  }
  r->last_sweep_ms = now_ms();
  if (pthread_create(&r->thread, NULL, receiver_thread, r) != 0 ||
      pthread_create(&r->gate, NULL, gate_thread, r) != 0) {
    atomic_store(&r->stopping, true);
    if (r->thread)
      pthread_join(r->thread, NULL);
    else
      receiver_thread(r); /* runs the shutdown sequence and drains the queue on this thread */
    grpc_server_destroy(r->server);
    grpc_completion_queue_destroy(r->cq);
    grpc_shutdown();
    receiver_free(r);
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
  out->connections = atomic_load_explicit(&r->open, memory_order_relaxed);
  out->refused_limit = atomic_load_explicit(&r->refused_limit, memory_order_relaxed);
  out->refused_per_ip = atomic_load_explicit(&r->refused_per_ip, memory_order_relaxed);
  out->evicted = atomic_load_explicit(&r->evicted, memory_order_relaxed);
  out->slots_reclaimed = atomic_load_explicit(&r->slots_reclaimed, memory_order_relaxed);
}

void tt__grpc_receiver_stop(tt_grpc_receiver_t *r) {
  if (r == NULL)
    return;
  /* The receiver thread notices within its 100 ms poll and runs the shutdown sequence itself, so
   * the queue and the slots keep a single owner. */
  uint64_t one = 1;
  (void)!write(r->wake_fd, &one, sizeof one);
  pthread_join(r->gate, NULL);
  close(r->listen_fd); /* no new connections from here on */
  r->listen_fd = -1;
  atomic_store(&r->stopping, true);
  pthread_join(r->thread, NULL);
  grpc_server_destroy(r->server);
  grpc_completion_queue_destroy(r->cq);
  grpc_shutdown();
  receiver_free(r);
}
