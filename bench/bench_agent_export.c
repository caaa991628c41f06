/* bench_agent_export: OTLP export throughput to a local receiver, over HTTP/protobuf and gRPC.
 *
 * The receivers are minimal C servers in this file (an HTTP/1.1 keep-alive responder and a gRPC
 * C-core server answering Export with an empty response), so the figures measure our side
 * (encode, compression, transport) rather than a slow peer. Figures:
 *   encode_{protobuf,json}_spans_per_s : encoding alone, no I/O
 *   export_<proto>_spans_per_s : the exporter alone, batches of 512 prepared spans
 *   e2e_<proto>_spans_per_s    : spans through the public API (start, 4 attributes, end) ->
 *                                ring -> batch thread -> exporter -> receiver, until flushed
 * Prints one JSON object per line: {"name":..,"value":..,"unit":..}. Never a test.
 * Usage: bench_agent_export [spans]   (default 200000) */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exporter_otlp.h"
#include "internal.h"
#include "otlp_encode.h"
#include "tailtrace.h"

static void figure(const char *name, double value, const char *unit) {
  printf("{\"name\":\"%s\",\"value\":%.1f,\"unit\":\"%s\"}\n", name, value, unit);
  fflush(stdout);
}

static double now_s(void) {
  return (double)tt_monotonic_ns() / 1e9;
}

/* ---- a minimal HTTP/1.1 receiver ---------------------------------------------------------- */

typedef struct {
  int lfd, port;
  pthread_t th;
  volatile int stop;
} http_rx_t;

static void serve_conn(int fd) {
  static char buf[1 << 20];
  size_t have = 0;
  for (;;) {
    char *hdr_end = NULL;
    while ((hdr_end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
      ssize_t n = read(fd, buf + have, sizeof buf - have);
      if (n <= 0)
        return;
      have += (size_t)n;
    }
    size_t hlen = (size_t)(hdr_end - buf) + 4, clen = 0;
    for (char *p = buf; p < hdr_end; p++) {
      if ((p == buf || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0)
        clen = strtoul(p + 15, NULL, 10);
    }
    size_t total = hlen + clen, consumed = 0;
    while (have < total && have < sizeof buf) {
      ssize_t n = read(fd, buf + have, sizeof buf - have);
      if (n <= 0)
        return;
      have += (size_t)n;
    }
    if (have < total) { /* body larger than our buffer: drain it */
      consumed = have;
      while (consumed < total) {
        ssize_t n = read(fd, buf, sizeof buf < total - consumed ? sizeof buf : total - consumed);
        if (n <= 0)
          return;
        consumed += (size_t)n;
      }
      have = 0;
    } else {
      memmove(buf, buf + total, have - total);
      have -= total;
    }
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                             "Content-Length: 0\r\n\r\n";
    if (write(fd, ok, sizeof ok - 1) != (ssize_t)(sizeof ok - 1))
      return;
  }
}

static void *http_rx_main(void *arg) {
  http_rx_t *rx = arg;
  while (!rx->stop) {
    int fd = accept(rx->lfd, NULL, NULL);
    if (fd < 0)
      break;
    serve_conn(fd);
    close(fd);
  }
  return NULL;
}

static int http_rx_start(http_rx_t *rx) {
  rx->lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (bind(rx->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(rx->lfd, 8) != 0 ||
      getsockname(rx->lfd, (struct sockaddr *)&a, &l) != 0)
    return -1;
  rx->port = ntohs(a.sin_port);
  rx->stop = 0;
  return pthread_create(&rx->th, NULL, http_rx_main, rx);
}

static void http_rx_stop(http_rx_t *rx) {
  rx->stop = 1;
  shutdown(rx->lfd, SHUT_RDWR);
  close(rx->lfd);
  pthread_join(rx->th, NULL);
}

/* ---- a minimal gRPC receiver ---------------------------------------------------------------- */

typedef struct {
  grpc_server *server;
  grpc_completion_queue *cq;
  int port;
  pthread_t th;
} grpc_rx_t;

static void *grpc_rx_main(void *arg) {
  grpc_rx_t *rx = arg;
  for (;;) {
    grpc_call *call = NULL;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_call_details_init(&details);
    grpc_metadata_array_init(&md);
    if (grpc_server_request_call(rx->server, &call, &details, &md, rx->cq, rx->cq, (void *)1) !=
        GRPC_CALL_OK)
      break;
    grpc_event ev = grpc_completion_queue_next(rx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
      grpc_call_details_destroy(&details);
      grpc_metadata_array_destroy(&md);
      break; /* shutting down */
    }
    grpc_byte_buffer *req = NULL;
    grpc_op ops[5];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &req;
    grpc_call_start_batch(call, ops, 1, (void *)2, NULL);
    grpc_completion_queue_next(rx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    int cancelled = 0;
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *resp = grpc_raw_byte_buffer_create(&empty, 0);
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = resp;
    ops[2].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[3].data.recv_close_on_server.cancelled = &cancelled;
    grpc_call_start_batch(call, ops, 4, (void *)3, NULL);
    grpc_completion_queue_next(rx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (req)
      grpc_byte_buffer_destroy(req);
    grpc_byte_buffer_destroy(resp);
    grpc_call_unref(call);
    grpc_call_details_destroy(&details);
    grpc_metadata_array_destroy(&md);
  }
  return NULL;
}

static int grpc_rx_start(grpc_rx_t *rx) {
  grpc_init();
  rx->cq = grpc_completion_queue_create_for_next(NULL);
  rx->server = grpc_server_create(NULL, NULL);
  grpc_server_register_completion_queue(rx->server, rx->cq, NULL);
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  rx->port = grpc_server_add_http2_port(rx->server, "127.0.0.1:0", creds);
  grpc_server_credentials_release(creds);
  if (rx->port <= 0)
    return -1;
  grpc_server_start(rx->server);
  return pthread_create(&rx->th, NULL, grpc_rx_main, rx);
}

static void grpc_rx_stop(grpc_rx_t *rx) {
  grpc_server_shutdown_and_notify(rx->server, rx->cq, (void *)9);
  grpc_server_cancel_all_calls(rx->server);
  pthread_join(rx->th, NULL);
  /* Drain what is left (the shutdown notification) before destroying. */
  grpc_completion_queue_shutdown(rx->cq);
  while (grpc_completion_queue_next(rx->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_server_destroy(rx->server);
  grpc_completion_queue_destroy(rx->cq);
  grpc_shutdown();
}

/* ---- workloads ------------------------------------------------------------------------------ */

static void endpoint_for(int proto, int port, char *ep, size_t cap) {
  if (proto == TT_OTLP_PROTOCOL_GRPC)
    snprintf(ep, cap, "http://127.0.0.1:%d", port);
  else
    snprintf(ep, cap, "http://127.0.0.1:%d/v1/traces", port);
}

static void options_for(int proto, int port, int gzip, char *ep, size_t cap, tt_otlp_options_t *o) {
  endpoint_for(proto, port, ep, cap);
  memset(o, 0, sizeof *o);
  o->size = sizeof *o;
  o->protocol = proto;
  o->endpoint = ep;
  o->compression = gzip ? TT_OTLP_COMPRESSION_GZIP : TT_OTLP_COMPRESSION_NONE;
}

enum { BATCH = 512 };

/* One batch of BATCH server spans with 4 attributes each, built once. */
static const tt_span_data_t *const *prepared_batch(void) {
  static tt_span_data_t data[BATCH];
  static const tt_span_data_t *ptrs[BATCH];
  static const tt_attribute_t res_attrs[] = {TT_STR("service.name", "bench")};
  static const tt_resource_t res = {res_attrs, 1, 0, ""};
  static const tt_scope_t scope = {"bench", "1.0", ""};
  static const tt_attribute_t attrs[] = {TT_STR("http.method", "GET"),
                                         TT_STR("http.route", "/api/v1/items/{id}"),
                                         TT_INT("http.status_code", 200), TT_BOOL("cache", 1)};
  for (int i = 0; i < BATCH; i++) {
    tt_span_data_t *s = &data[i];
    memset(s, 0, sizeof *s);
    s->resource = &res;
    s->scope = &scope;
    for (int k = 0; k < 16; k++)
      s->trace_id[k] = (uint8_t)(k * 31 + i);
    for (int k = 0; k < 8; k++)
      s->span_id[k] = (uint8_t)(k * 17 + i + 1);
    s->has_parent = 1;
    s->parent_span_id[0] = 1;
    s->name = "GET /api/v1/items/{id}";
    s->kind = TT_SPAN_KIND_SERVER;
    s->start_time_unix_ns = 1700000000000000000ULL + (uint64_t)i * 1000;
    s->end_time_unix_ns = s->start_time_unix_ns + 1234567;
    s->flags = 0x101;
    s->tracestate = "";
    s->status_message = "";
    s->attributes = attrs;
    s->attribute_count = 4;
    ptrs[i] = s;
  }
  return ptrs;
}

/* Encoding alone (protobuf and OTLP/JSON), the CPU floor under every export figure. */
static void bench_encode(long spans) {
  const tt_span_data_t *const *ptrs = prepared_batch();
  long batches = spans / BATCH;
  size_t bytes = 0;
  tt__otlp_encoder_t enc = {NULL, NULL, 0};
  double t0 = now_s();
  for (long b = 0; b < batches; b++) {
    const uint8_t *buf;
    size_t len;
    if (tt__otlp_encoder_encode(&enc, ptrs, BATCH, &buf, &len) == 0)
      bytes += len;
  }
  double dt = now_s() - t0;
  tt__otlp_encoder_free(&enc);
  figure("encode_protobuf_spans_per_s", (double)(batches * BATCH) / dt, "spans/s");
  figure("encode_protobuf_bytes_per_span", (double)bytes / (double)(batches * BATCH), "bytes");
  t0 = now_s();
  for (long b = 0; b < batches; b++)
    tt__free(tt__otlp_json_encode(ptrs, BATCH));
  dt = now_s() - t0;
  figure("encode_json_spans_per_s", (double)(batches * BATCH) / dt, "spans/s");
}

static void bench_exporter(const char *pname, int proto, int port, int gzip, long spans) {
  const tt_span_data_t *const *ptrs = prepared_batch();
  char ep[128];
  tt_otlp_options_t o;
  options_for(proto, port, gzip, ep, sizeof ep, &o);
  tt__otlp_exporter_t *e;
  if (tt__otlp_exporter_new(&o, &e) != 0) {
    fprintf(stderr, "cannot create exporter\n");
    return;
  }
  tt__otlp_exporter_export(e, ptrs, BATCH, 0); /* connect outside the timed part */
  long batches = spans / BATCH;
  double t0 = now_s();
  for (long b = 0; b < batches; b++)
    tt__otlp_exporter_export(e, ptrs, BATCH, 0);
  double dt = now_s() - t0;
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(e, &st);
  char name[96];
  snprintf(name, sizeof name, "export_%s%s_spans_per_s", pname, gzip ? "_gzip" : "");
  figure(name, (double)(st.spans_exported - BATCH) / dt, "spans/s");
  if (st.spans_failed)
    fprintf(stderr, "%s: %llu spans failed\n", name, (unsigned long long)st.spans_failed);
  tt__otlp_exporter_destroy(e);
}

static void bench_e2e(const char *pname, int proto, int port, long spans) {
  char ep[128];
  tt_otlp_options_t o;
  options_for(proto, port, 0, ep, sizeof ep, &o);
  tt_exporter_t x;
  if (tt_otlp_exporter_new(&o, &x) != 0)
    return;
  tt__otlp_exporter_t *oe = tt__otlp_exporter_of(&x);
  tt_options_t to;
  memset(&to, 0, sizeof to);
  to.size = sizeof to;
  to.service_name = "bench";
  to.sampler = TT_SAMPLER_ALWAYS_ON;
  to.exporter = &x;
  to.max_queue_size = 8192;
  to.max_export_batch_size = 512;
  to.schedule_delay_ms = 20;
  if (tt_init(&to) != 0)
    return;
  tt_tracer_t *tr = tt_tracer_get("bench", "1.0");
  double t0 = now_s();
  for (long i = 0; i < spans; i++) {
    tt_span_t *s = tt_span_start(tr, "GET /api/v1/items/{id}", NULL);
    tt_span_set_str(s, "http.method", "GET");
    tt_span_set_str(s, "http.route", "/api/v1/items/{id}");
    tt_span_set_int(s, "http.status_code", 200);
    tt_span_set_bool(s, "cache", 1);
    tt_span_end(s);
    /* Pace the producer to what the exporter sustains, so the figure is export throughput,
     * not the rate at which a full queue drops. */
    if ((i & 1023) == 1023) {
      tt_stats_t ts;
      memset(&ts, 0, sizeof ts);
      ts.size = sizeof ts;
      for (;;) {
        tt_stats_get(&ts);
        if (ts.spans_ended - ts.spans_exported - ts.dropped_export_failed < 4096)
          break;
        usleep(200);
      }
    }
  }
  tt_flush(tt_monotonic_ns() + 60000000000ULL);
  double dt = now_s() - t0;
  tt__otlp_stats_t st;
  tt__otlp_exporter_get_stats(oe, &st);
  tt_stats_t ts;
  memset(&ts, 0, sizeof ts);
  ts.size = sizeof ts;
  tt_stats_get(&ts);
  char name[96];
  snprintf(name, sizeof name, "e2e_%s_spans_per_s", pname);
  figure(name, (double)st.spans_exported / dt, "spans/s");
  snprintf(name, sizeof name, "e2e_%s_spans_dropped", pname);
  figure(name, (double)(ts.dropped_queue_full + ts.dropped_no_record + ts.dropped_export_failed),
         "spans");
  tt_shutdown(tt_monotonic_ns() + 10000000000ULL);
}

int main(int argc, char **argv) {
  long spans = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
  if (spans < 1024)
    spans = 1024;
  http_rx_t hrx;
  grpc_rx_t grx;
  if (http_rx_start(&hrx) != 0 || grpc_rx_start(&grx) != 0) {
    fprintf(stderr, "cannot start the local receivers\n");
    return 1;
  }
  bench_encode(spans);
  bench_exporter("http", TT_OTLP_PROTOCOL_HTTP_PROTOBUF, hrx.port, 0, spans);
  bench_exporter("http", TT_OTLP_PROTOCOL_HTTP_PROTOBUF, hrx.port, 1, spans);
  bench_exporter("grpc", TT_OTLP_PROTOCOL_GRPC, grx.port, 0, spans);
  bench_exporter("grpc", TT_OTLP_PROTOCOL_GRPC, grx.port, 1, spans);
  bench_e2e("http", TT_OTLP_PROTOCOL_HTTP_PROTOBUF, hrx.port, spans);
  bench_e2e("grpc", TT_OTLP_PROTOCOL_GRPC, grx.port, spans);
  http_rx_stop(&hrx);
  grpc_rx_stop(&grx);
  return 0;
}
