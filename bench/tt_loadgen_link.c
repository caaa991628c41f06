/* tt_loadgen's transports: OTLP/HTTP protobuf over a keep-alive HTTP/1.1 connection (blocking
 * socket, every read and write bounded by the request timeout) and OTLP/gRPC over gRPC's C core
 * (one channel with its own subchannel pool, so one TCP connection, per link; one unary call in
 * flight, as agent/grpc/transport_grpc.c does it). Both answer in the same terms: accepted,
 * retry (with the server's Retry-After / RetryInfo delay when it gave one), refused for good, or
 * no connection. Each link is owned by one connection thread. */
#define _GNU_SOURCE /* strcasestr */
#include "tt_loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>

#include "wire.h"

#define EXPORT_METHOD "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

struct lg_link_s {
  const lg_opts_t *o;
  int fd; /* HTTP */
  grpc_channel *ch;
  grpc_completion_queue *cq;
};

/* ---- responses ---------------------------------------------------------------------------- */

/* ExportTraceServiceResponse{1: partial_success{1: rejected_spans, 2: error_message}}. */
static void parse_export_response(const uint8_t *p, size_t n, lg_outcome_t *out) {
  tt_wire_reader_t r, r2;
  tt_wire_field_t f, g;
  tt__wire_reader_init(&r, p, n);
  while (tt__wire_next(&r, &f) == 1) {
    if (f.field != 1 || f.wt != TT_WT_LEN)
      continue;
    tt__wire_reader_init(&r2, f.p, f.len);
    while (tt__wire_next(&r2, &g) == 1) {
      if (g.field == 1 && g.wt == TT_WT_VARINT)
        out->rejected_spans = (int64_t)g.u;
      else if (g.field == 2 && g.wt == TT_WT_LEN)
        snprintf(out->message, sizeof out->message, "%.*s", (int)g.len, (const char *)g.p);
    }
  }
}

/* google.rpc.Status{3: Any{1: type_url, 2: RetryInfo{1: Duration{1: seconds, 2: nanos}}}}. */
static int64_t parse_retry_info(const uint8_t *p, size_t n) {
  tt_wire_reader_t r, ra, ri, rd;
  tt_wire_field_t f, a, i, d;
  tt__wire_reader_init(&r, p, n);
  while (tt__wire_next(&r, &f) == 1) {
    if (f.field != 3 || f.wt != TT_WT_LEN)
      continue;
    const uint8_t *val = NULL;
    size_t vlen = 0;
    bool is_retry = false;
    tt__wire_reader_init(&ra, f.p, f.len);
    while (tt__wire_next(&ra, &a) == 1) {
      if (a.field == 1 && a.wt == TT_WT_LEN)
        is_retry = a.len >= 9 && memcmp(a.p + a.len - 9, "RetryInfo", 9) == 0;
      else if (a.field == 2 && a.wt == TT_WT_LEN)
        val = a.p, vlen = a.len;
    }
    if (!is_retry || val == NULL)
      continue;
    int64_t ms = 0;
    tt__wire_reader_init(&ri, val, vlen);
    while (tt__wire_next(&ri, &i) == 1) {
      if (i.field != 1 || i.wt != TT_WT_LEN)
        continue;
      tt__wire_reader_init(&rd, i.p, i.len);
      while (tt__wire_next(&rd, &d) == 1) {
        if (d.field == 1 && d.wt == TT_WT_VARINT)
          ms += (int64_t)d.u * 1000;
        else if (d.field == 2 && d.wt == TT_WT_VARINT)
          ms += (int64_t)d.u / 1000000;
      }
    }
    return ms;
  }
  return -1;
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static int http_connect(const lg_opts_t *o) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {(time_t)(o->timeout_ms / 1000), (suseconds_t)(o->timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int write_all(int fd, struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(fd, iov, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    while (n > 0 && (size_t)w >= iov->iov_len) {
      w -= (ssize_t)iov->iov_len;
      iov++, n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + w;
      iov->iov_len -= (size_t)w;
    }
  }
  return 0;
}

/* Reads one response with a Content-Length body (the collector always sends one). Returns the
 * status, or -1 when the connection failed or closed first. *close_after: the server closes. */
static int http_read(int fd, lg_outcome_t *out, bool *close_after) {
  char buf[8192];
  size_t have = 0;
  char *end = NULL;
  while (end == NULL) {
    if (have + 1 >= sizeof buf)
      return -1;
    ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    have += (size_t)r;
    buf[have] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  *end = 0; /* headers only from here */
  int status = 0;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    return -1;
  size_t clen = 0;
  const char *h = strcasestr(buf, "\r\ncontent-length:");
  if (h != NULL)
    clen = strtoul(h + 17, NULL, 10);
  h = strcasestr(buf, "\r\nretry-after:");
  out->retry_ms = h != NULL ? (int64_t)strtoul(h + 14, NULL, 10) * 1000 : -1;
  *close_after = strcasestr(buf, "\r\nconnection: close") != NULL;
  uint8_t *body = malloc(clen ? clen : 1);
  if (body == NULL)
    return -1;
  size_t body_have = have - (size_t)(end + 4 - buf);
  if (body_have > clen)
    body_have = clen;
  memcpy(body, end + 4, body_have);
  while (body_have < clen) {
    ssize_t r = read(fd, body + body_have, clen - body_have);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      free(body);
      return -1;
    }
    body_have += (size_t)r;
  }
  if (status == 200)
    parse_export_response(body, clen, out);
  else if (clen > 0 && clen < sizeof out->message && strcasestr(buf, "application/json") != NULL)
    snprintf(out->message, sizeof out->message, "%.*s", (int)clen, (const char *)body);
  free(body);
  return status;
}

static void http_send(lg_link_t *l, const uint8_t *body, size_t len, bool gz, lg_outcome_t *out) {
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/x-protobuf\r\n%sContent-Length: %zu\r\n\r\n",
                      gz ? "Content-Encoding: gzip\r\n" : "", len);
  /* A keep-alive connection the server closed while idle fails the first write or read: one
   * fresh connection is tried before the attempt counts as a connection failure. */
  for (int attempt = 0; attempt < 2; attempt++) {
    errno = 0; /* a read that meets the end of the stream sets none */
    if (l->fd < 0 && (l->fd = http_connect(l->o)) < 0)
      break;
    struct iovec iov[2] = {{head, (size_t)hlen}, {(void *)body, len}};
    bool close_after = false;
    int st = write_all(l->fd, iov, 2) == 0 ? http_read(l->fd, out, &close_after) : -1;
    if (st < 0 || close_after) {
      close(l->fd);
      l->fd = -1;
    }
    if (st < 0)
      continue;
    out->code = st;
    snprintf(out->cause, sizeof out->cause, "http_%d", st);
    if (st == 200)
      out->result = LG_OK;
    else if (st == 429 || st == 502 || st == 503 || st == 504)
      out->result = LG_RETRY;
    else
      out->result = LG_REFUSED;
    if (out->result != LG_RETRY)
      out->retry_ms = -1;
    return;
  }
  out->result = LG_CONN_FAIL;
  snprintf(out->cause, sizeof out->cause, "connection_failed");
  snprintf(out->message, sizeof out->message, "127.0.0.1:%d: %s", l->o->port,
           errno ? strerror(errno) : "closed by the collector");
}

/* ---- gRPC --------------------------------------------------------------------------------- */

static const char *grpc_code_name(int c) {
  static const char *const names[] = {"ok",
                                      "cancelled",
                                      "unknown",
                                      "invalid_argument",
                                      "deadline_exceeded",
                                      "not_found",
                                      "already_exists",
                                      "permission_denied",
                                      "resource_exhausted",
                                      "failed_precondition",
                                      "aborted",
                                      "out_of_range",
                                      "unimplemented",
                                      "internal",
                                      "unavailable",
                                      "data_loss",
                                      "unauthenticated"};
  return c >= 0 && c < (int)(sizeof names / sizeof names[0]) ? names[c] : "other";
}

/* Waits up to the request timeout for the channel to be connected; false if it cannot be. */
static bool wait_ready(lg_link_t *l) {
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(l->o->timeout_ms, GPR_TIMESPAN));
  grpc_connectivity_state st = grpc_channel_check_connectivity_state(l->ch, 1);
  while (st != GRPC_CHANNEL_READY) {
    grpc_channel_watch_connectivity_state(l->ch, st, deadline, l->cq, NULL);
    grpc_event ev = grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    st = grpc_channel_check_connectivity_state(l->ch, 1);
    if (st == GRPC_CHANNEL_READY)
      break;
    if (ev.type != GRPC_OP_COMPLETE || !ev.success || st == GRPC_CHANNEL_TRANSIENT_FAILURE)
      return false;
  }
  return true;
}

static int grpc_open(lg_link_t *l, char *err, size_t cap) {
  char target[32];
  snprintf(target, sizeof target, "127.0.0.1:%d", l->o->port);
  grpc_arg args[4];
  size_t na = 0;
  args[na].type = GRPC_ARG_INTEGER, args[na].key = (char *)GRPC_ARG_ENABLE_RETRIES;
  args[na++].value.integer = 0;
  /* Each link its own TCP connection: channels with equal arguments would otherwise share one. */
  args[na].type = GRPC_ARG_INTEGER, args[na].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
  args[na++].value.integer = 1;
  args[na].type = GRPC_ARG_INTEGER, args[na].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[na++].value.integer = -1;
  if (l->o->gzip || l->o->bomb_mib > 0) {
    args[na].type = GRPC_ARG_INTEGER;
    args[na].key = (char *)GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM;
    args[na++].value.integer = GRPC_COMPRESS_GZIP;
  }
  grpc_channel_args cargs = {na, args};
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  l->ch = grpc_channel_create(target, creds, &cargs);
  grpc_channel_credentials_release(creds);
  l->cq = grpc_completion_queue_create_for_next(NULL);
  if (l->ch == NULL || l->cq == NULL) {
    snprintf(err, cap, "cannot create a gRPC channel");
    return -1;
  }
  /* Connect now, so that a missing collector is a connection failure, not a slow first call. */
  if (!wait_ready(l)) {
    snprintf(err, cap, "gRPC: cannot connect to %s", target);
    return -1;
  }
  return 0;
}

static void grpc_send(lg_link_t *l, const uint8_t *body, size_t len, bool compressed,
                      lg_outcome_t *out) {
  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(l->o->timeout_ms, GPR_TIMESPAN));
  grpc_call *call =
      grpc_channel_create_call(l->ch, NULL, GRPC_PROPAGATE_DEFAULTS, l->cq,
                               grpc_slice_from_static_string(EXPORT_METHOD), NULL, deadline, NULL);
  if (call == NULL) {
    out->result = LG_CONN_FAIL;
    snprintf(out->cause, sizeof out->cause, "connection_failed");
    return;
  }
  grpc_slice sl = grpc_slice_from_static_buffer(body, len);
  /* A body already gzipped goes out as it is, flagged compressed (the gzip bomb). */
  grpc_byte_buffer *req = compressed
                              ? grpc_raw_compressed_byte_buffer_create(&sl, 1, GRPC_COMPRESS_GZIP)
                              : grpc_raw_byte_buffer_create(&sl, 1);
  grpc_metadata_array initial_md, trailing_md;
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  grpc_byte_buffer *resp = NULL;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
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
  grpc_call_error ce = grpc_call_start_batch(call, ops, 6, call, NULL);
  if (ce == GRPC_CALL_OK) {
    grpc_event ev; /* the call's deadline bounds the wait */
    do {
      ev = grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    } while (ev.type != GRPC_OP_COMPLETE);
  }
  out->code = (int)status;
  out->retry_ms = -1;
  snprintf(out->cause, sizeof out->cause, "grpc_%s", grpc_code_name((int)status));
  size_t dl = GRPC_SLICE_LENGTH(details);
  snprintf(out->message, sizeof out->message, "%.*s", (int)(dl < 150 ? dl : 150),
           (const char *)GRPC_SLICE_START_PTR(details));
  for (size_t i = 0; i < trailing_md.count; i++)
    if (grpc_slice_str_cmp(trailing_md.metadata[i].key, "grpc-status-details-bin") == 0)
      out->retry_ms = parse_retry_info(GRPC_SLICE_START_PTR(trailing_md.metadata[i].value),
                                       GRPC_SLICE_LENGTH(trailing_md.metadata[i].value));
  if (ce != GRPC_CALL_OK) {
    out->result = LG_REFUSED;
    snprintf(out->cause, sizeof out->cause, "grpc_call_error");
  } else if (status == GRPC_STATUS_OK) {
    out->result = LG_OK;
    grpc_byte_buffer_reader rd;
    if (resp != NULL && grpc_byte_buffer_reader_init(&rd, resp)) {
      grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
      parse_export_response(GRPC_SLICE_START_PTR(all), GRPC_SLICE_LENGTH(all), out);
      grpc_slice_unref(all);
      grpc_byte_buffer_reader_destroy(&rd);
    }
  } else if (status == GRPC_STATUS_UNAVAILABLE && out->retry_ms < 0 &&
             grpc_channel_check_connectivity_state(l->ch, 0) != GRPC_CHANNEL_READY) {
    /* gRPC's own UNAVAILABLE: the connection went away. A collector that is still there takes
     * a new one (the request is then sent again); one that is gone is a connection failure. */
    out->result = wait_ready(l) ? LG_RETRY : LG_CONN_FAIL;
  } else if (status == GRPC_STATUS_UNAVAILABLE || status == GRPC_STATUS_CANCELLED ||
             status == GRPC_STATUS_DEADLINE_EXCEEDED || status == GRPC_STATUS_ABORTED ||
             status == GRPC_STATUS_OUT_OF_RANGE || status == GRPC_STATUS_DATA_LOSS ||
             (status == GRPC_STATUS_RESOURCE_EXHAUSTED && out->retry_ms >= 0)) {
    out->result = LG_RETRY;
  } else {
    out->result = LG_REFUSED; /* RESOURCE_EXHAUSTED without RetryInfo is "will never fit" */
  }
  if (resp != NULL)
    grpc_byte_buffer_destroy(resp);
  grpc_byte_buffer_destroy(req);
  grpc_slice_unref(sl);
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  grpc_slice_unref(details);
  grpc_call_unref(call);
}

/* ---- the link ----------------------------------------------------------------------------- */

void lg_links_global_init(const lg_opts_t *o) {
  if (o->proto == LG_GRPC)
    grpc_init();
}

void lg_links_global_shutdown(const lg_opts_t *o) {
  if (o->proto == LG_GRPC)
    grpc_shutdown();
}

int lg_link_open(const lg_opts_t *o, lg_link_t **out, char *err, size_t cap) {
  lg_link_t *l = calloc(1, sizeof *l);
  *out = NULL;
  if (l == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  l->o = o;
  l->fd = -1;
  if (o->proto == LG_HTTP) {
    if ((l->fd = http_connect(o)) < 0) {
      snprintf(err, cap, "HTTP: cannot connect to 127.0.0.1:%d: %s", o->port, strerror(errno));
      free(l);
      return -1;
    }
  } else if (grpc_open(l, err, cap) != 0) {
    lg_link_close(l);
    return -1;
  }
  *out = l;
  return 0;
}

void lg_link_send(lg_link_t *l, const uint8_t *body, size_t len, bool compressed,
                  lg_outcome_t *out) {
  memset(out, 0, sizeof *out);
  out->retry_ms = -1;
  if (l->o->proto == LG_HTTP)
    http_send(l, body, len, compressed, out);
  else
    grpc_send(l, body, len, compressed, out);
}

void lg_link_close(lg_link_t *l) {
  if (l == NULL)
    return;
  if (l->fd >= 0)
    close(l->fd);
  if (l->ch != NULL)
    grpc_channel_destroy(l->ch);
  if (l->cq != NULL) {
    grpc_completion_queue_shutdown(l->cq);
    while (grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(l->cq);
  }
  free(l);
}
