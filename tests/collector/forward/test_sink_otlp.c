/* OTLP forwarding sink against a real peer (tests/peers/otlp_receiver.py on python3-grpcio):
 * delivery order over both protocols, retry on retryable answers, no retry on permanent ones,
 * the Honeycomb-style auth header, the disk spool across a backend outage and a restart, and
 * spool mode always (every batch on disk before it is sent, replayed once after a crash).
 * Each test gets its peer, spool directory and sinks from a cmocka fixture (fixture_t), whose
 * teardown takes them down also after a failed assertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "peers/otlp_peer.h"
#include "sink_otlp.h"
#include "spool.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* Serializes spans[0..n) as one request: one ResourceSpans (no resource), one ScopeSpans under
 * scope (NULL: none). */
static uint8_t *pack_request(Opentelemetry__Proto__Trace__V1__Span **spans, size_t n,
                             Opentelemetry__Proto__Common__V1__InstrumentationScope *scope,
                             size_t *len) {
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
      OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
      OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
  Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
      OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
  ss.scope = scope;
  ss.n_spans = n;
  ss.spans = spans;
  Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[1] = {&ss};
  rs.n_scope_spans = 1;
  rs.scope_spans = sss;
  Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[1] = {&rs};
  req.n_resource_spans = 1;
  req.resource_spans = rss;
  *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
      &req);
  uint8_t *buf = malloc(*len);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
  return buf;
}

/* One request with one span named "batch-<i>" (trace id derived from i), serialized. */
static uint8_t *make_request(int i, size_t *len) {
  Opentelemetry__Proto__Trace__V1__Span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
  uint8_t tid[16] = {0}, sid[8] = {0};
  tid[0] = 0x42;
  tid[15] = (uint8_t)(i + 1);
  tid[14] = (uint8_t)((i + 1) >> 8);
  sid[7] = (uint8_t)(i + 1);
  sid[0] = 0x17;
  char name[32];
  snprintf(name, sizeof name, "batch-%04d", i);
  span.trace_id.data = tid;
  span.trace_id.len = 16;
  span.span_id.data = sid;
  span.span_id.len = 8;
  span.name = name;
  span.start_time_unix_nano = 1000;
  span.end_time_unix_nano = 2000;
  Opentelemetry__Proto__Trace__V1__Span *spans[1] = {&span};
  return pack_request(spans, 1, NULL, len);
}

/* Submits batch-from .. batch-(to-1), each counted as nspans spans (the sink trusts the
 * pipeline's count: it is what its counters and spool records carry). */
static void submit_spans(tt_sink_t *s, int from, int to, size_t nspans) {
  for (int i = from; i < to; i++) {
    size_t len;
    uint8_t *b = make_request(i, &len);
    assert_int_equal(s->vt->submit(s, b, len, nspans), 0);
    free(b);
  }
}

static void submit_n(tt_sink_t *s, int from, int to) {
  submit_spans(s, from, to, 1);
}

/* Asserts the peer accepted batch-from .. batch-(to-1), each exactly once, in that order.
 * Only requests the peer answered with success count: it also records the ones it refused
 * when told to inject a fault. */
static void assert_delivered_in_order(const tt_peer_t *p, int from, int to) {
  char *dump = peer_ctl(p, "/_control/dump", NULL);
  assert_non_null(dump);
  int next = from, accepted = 0;
  for (char *line = strtok(dump, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strncmp(line, "request ", 8) == 0) {
      accepted = strstr(line, " fault=none ") != NULL || strstr(line, " fault=partial") != NULL;
      continue;
    }
    const char *name = strstr(line, " name=batch-");
    if (!accepted || strncmp(line, "span ", 5) != 0 || name == NULL)
      continue;
    int got = atoi(name + 12);
    if (got != next)
      fail_msg("expected batch-%04d next, the peer accepted batch-%04d", next, got);
    next++;
  }
  free(dump);
  assert_int_equal(next, to);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the sink has handed everything to the backend, and gives up once 20 s have
 * passed (counted on the clock: a flush blocks up to the sink's export timeout, so counting
 * attempts would allow far longer). flush answers at once while the backend is failing, so
 * retry it while the sink backs off. */
static void wait_drained(tt_sink_t *s) {
  int64_t until = mono_ms() + 20000;
  do {
    if (s->vt->flush(s) == 0)
      return;
    usleep(20000);
  } while (mono_ms() < until);
  fail_msg("the sink did not drain within 20 s");
}

static void opts_for(tt_otlp_sink_opts_t *o, int protocol, const tt_peer_t *p, char *ep,
                     size_t eplen) {
  memset(o, 0, sizeof *o);
  o->name = protocol == TT_FWD_PROTOCOL_GRPC ? "test-grpc" : "test-http";
  o->protocol = protocol;
  if (protocol == TT_FWD_PROTOCOL_GRPC)
    snprintf(ep, eplen, "127.0.0.1:%d", p->grpc_port);
  else
    snprintf(ep, eplen, "http://127.0.0.1:%d/v1/traces", p->http_port);
  o->endpoint = ep;
  o->insecure = 1;
  o->timeout_ms = 3000;
  o->retry_initial_ms = 20;
  o->retry_max_ms = 200;
}

static tt_sink_t *open_sink(const tt_otlp_sink_opts_t *o) {
  tt_sink_t *s = NULL;
  char err[256] = "";
  int rc = tt__sink_otlp_open(o, &s, err, sizeof err);
  if (rc != 0)
    fail_msg("sink open: %s", err);
  return s;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  if (d)
    closedir(d);
  rmdir(dir);
}

/* What a test starts with, owned by the test's setup and teardown (cmocka runs the teardown
 * after a failed assertion too, so a failing test leaks no peer process, temporary directory or
 * sink thread into the tests after it): the peer, an empty spool directory, and the sinks the
 * test opened through fx_open and has not closed yet. `o` and `ep` are the options fx_opts
 * fills for the test's next sink. */
typedef struct {
  tt_peer_t peer; /* pid 0: none runs */
  const char *const *peer_args;
  char dir[32];  /* "": none */
  char dir2[32]; /* a second directory, made on demand by fx_second_dir; "": none */
  tt_sink_t *sinks[2];
  tt_otlp_sink_opts_t o;
  char ep[128];
} fixture_t;

static int fx_start_peer(fixture_t *f) {
  if (peer_start(&f->peer, f->peer_args) != 0) {
    fprintf(stderr, "the Python OTLP receiver did not start (python3-grpcio/python3-protobuf "
                    "needed)\n");
    return -1;
  }
  return 0;
}

static int teardown_fixture(void **state) {
  fixture_t *f = *state;
  for (size_t i = 0; i < sizeof f->sinks / sizeof f->sinks[0]; i++) {
    if (f->sinks[i] != NULL) { /* left open by a failed test: do not wait on its backend */
      tt__sink_otlp_set_close_deadline(f->sinks[i], 200);
      f->sinks[i]->vt->close(f->sinks[i]);
    }
  }
  peer_stop(&f->peer);
  if (f->dir[0] != '\0')
    remove_dir(f->dir);
  if (f->dir2[0] != '\0')
    remove_dir(f->dir2);
  free(f);
  return 0;
}

/* cmocka runs no teardown when the setup fails, so a failed setup undoes its own work. */
static int setup_fixture(void **state, int peer, int spool, const char *const *peer_args) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  *state = f;
  f->peer_args = peer_args;
  if (spool) {
    snprintf(f->dir, sizeof f->dir, "/tmp/tt-fwd-spool-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
      f->dir[0] = '\0';
      teardown_fixture(state);
      return -1;
    }
  }
  if (peer && fx_start_peer(f) != 0) {
    teardown_fixture(state);
    return -1;
  }
  return 0;
}

static int setup_peer(void **state) {
  return setup_fixture(state, 1, 0, NULL);
}

static int setup_peer_and_spool(void **state) {
  return setup_fixture(state, 1, 1, NULL);
}

static int setup_peer_requiring_auth(void **state) {
  static const char *const extra[] = {"--require-header", "x-honeycomb-team=secret-key", NULL};
  return setup_fixture(state, 1, 0, extra);
}

/* For tests against a backend that is down: only the sinks are looked after. */
static int setup_no_peer(void **state) {
  return setup_fixture(state, 0, 0, NULL);
}

/* Stops the peer and starts a fresh one with the same arguments: its dump starts empty. */
static void fx_restart_peer(fixture_t *f) {
  peer_stop(&f->peer);
  if (fx_start_peer(f) != 0)
    fail_msg("the peer did not restart");
}

static const char *fx_second_dir(fixture_t *f) {
  snprintf(f->dir2, sizeof f->dir2, "/tmp/tt-fwd-crash-XXXXXX");
  if (mkdtemp(f->dir2) == NULL) {
    f->dir2[0] = '\0';
    fail_msg("mkdtemp: %s", strerror(errno));
  }
  return f->dir2;
}

/* The test's options for a sink of `protocol` to the fixture's peer (opts_for), to adjust
 * before fx_open. */
static tt_otlp_sink_opts_t *fx_opts(fixture_t *f, int protocol) {
  opts_for(&f->o, protocol, &f->peer, f->ep, sizeof f->ep);
  return &f->o;
}

static tt_sink_t *fx_open(fixture_t *f, const tt_otlp_sink_opts_t *o) {
  size_t i = 0;
  while (i < sizeof f->sinks / sizeof f->sinks[0] && f->sinks[i] != NULL)
    i++;
  assert_true(i < sizeof f->sinks / sizeof f->sinks[0]);
  f->sinks[i] = open_sink(o);
  return f->sinks[i];
}

static void fx_close(fixture_t *f, tt_sink_t *s) {
  for (size_t i = 0; i < sizeof f->sinks / sizeof f->sinks[0]; i++)
    if (f->sinks[i] == s)
      f->sinks[i] = NULL;
  s->vt->close(s);
}

/* Spool mode on_failure: batches the backend cannot take go to disk in dir. */
static void spool_on_failure(tt_otlp_sink_opts_t *o, const char *dir) {
  o->spool_dir = dir;
  o->spool_fsync = 1;
}

/* Spool mode always: every batch is on disk in dir before its first attempt. */
static void spool_always(tt_otlp_sink_opts_t *o, const char *dir) {
  spool_on_failure(o, dir);
  o->spool_always = 1;
}

/* Points o at a port nothing listens on: a backend that stays down. ep must outlive the open. */
static void to_dead_backend(tt_otlp_sink_opts_t *o, char *ep, size_t eplen) {
  snprintf(ep, eplen, "127.0.0.1:%d", closed_port());
  o->endpoint = ep;
}

/* Options for a gRPC sink named `name` whose backend stays down: each attempt times out after
 * timeout_ms, retries back off from 20 ms, the memory queue holds queue_bytes. */
static void dead_backend_opts(tt_otlp_sink_opts_t *o, const char *name, char *ep, size_t eplen,
                              int32_t timeout_ms, uint64_t queue_bytes) {
  memset(o, 0, sizeof *o);
  o->name = name;
  o->protocol = TT_FWD_PROTOCOL_GRPC;
  to_dead_backend(o, ep, eplen);
  o->insecure = 1;
  o->timeout_ms = timeout_ms;
  o->retry_initial_ms = 20;
  o->queue_bytes = queue_bytes;
}

/* Injects `fault` (JSON, or NULL) into the fixture's peer, sends batches 0..n-1 through a fresh
 * sink, waits for the queue to drain and closes the sink. With a fault, each batch is submitted
 * once the one before it is delivered, so each goes alone in its request (the sender coalesces
 * queued batches) and the fault lands on a known batch. The peer keeps running for the caller's
 * assertions. */
static void send_through_sink(fixture_t *f, int protocol, const char *fault, int n,
                              tt_otlp_sink_stats_t *st) {
  if (fault != NULL)
    assert_int_equal(peer_fault(&f->peer, fault), 0);
  tt_sink_t *s = fx_open(f, fx_opts(f, protocol));
  for (int i = 0; i < n; i += fault != NULL ? 1 : n) {
    submit_n(s, i, fault != NULL ? i + 1 : n);
    wait_drained(s);
  }
  tt__sink_otlp_stats(s, st);
  assert_true(s->vt->healthy(s));
  fx_close(f, s);
}

static void run_delivery(fixture_t *f, int protocol) {
  tt_otlp_sink_stats_t st;
  send_through_sink(f, protocol, NULL, 40, &st);
  assert_int_equal(st.batches_sent, 40);
  assert_int_equal(st.spans_sent, 40);
  assert_int_equal(peer_stat(&f->peer, "spans"), 40);
  assert_delivered_in_order(&f->peer, 0, 40);
}

static void sink_otlp_should_deliver_every_batch_once_in_order_over_grpc(void **state) {
  run_delivery(*state, TT_FWD_PROTOCOL_GRPC);
}

static void sink_otlp_should_deliver_every_batch_once_in_order_over_http(void **state) {
  run_delivery(*state, TT_FWD_PROTOCOL_HTTP_PROTOBUF);
}

static void sink_otlp_should_retry_503_with_retry_after_then_deliver(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  send_through_sink(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF,
                    "{\"proto\":\"http\",\"kind\":\"status\",\"status\":503,"
                    "\"retry_after\":\"1\",\"times\":2}",
                    3, &st);
  assert_int_equal(st.batches_retried, 2);
  assert_int_equal(st.batches_sent, 3);
  assert_int_equal(st.batches_failed_permanent, 0);
  assert_int_equal(peer_stat(&f->peer, "requests"), 5);
  assert_delivered_in_order(&f->peer, 0, 3);
}

static void sink_otlp_should_retry_grpc_unavailable_then_deliver(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  send_through_sink(f, TT_FWD_PROTOCOL_GRPC,
                    "{\"proto\":\"grpc\",\"kind\":\"status\",\"code\":\"UNAVAILABLE\","
                    "\"message\":\"down\",\"times\":2}",
                    2, &st);
  assert_int_equal(st.batches_retried, 2);
  assert_int_equal(st.batches_sent, 2);
  assert_delivered_in_order(&f->peer, 0, 2);
}

/* A backend that accepts the request and never answers: the attempt times out (timeout_ms is
 * 3 s in opts_for) and is retried; the batch is delivered once the backend answers again. */
static void sink_otlp_should_retry_a_hung_request_after_its_deadline(void **state) {
  fixture_t *f = *state;
  for (int protocol = TT_FWD_PROTOCOL_GRPC; protocol <= TT_FWD_PROTOCOL_HTTP_PROTOBUF; protocol++) {
    if (protocol != TT_FWD_PROTOCOL_GRPC)
      fx_restart_peer(f); /* each protocol's checks read the dump from batch 0 */
    tt_otlp_sink_stats_t st;
    send_through_sink(f, protocol,
                      "{\"proto\":\"any\",\"kind\":\"hang\",\"seconds\":5,\"times\":1}", 2, &st);
    assert_int_equal(st.batches_retried, 1);
    assert_int_equal(st.batches_sent, 2);
    assert_int_equal(st.batches_failed_permanent, 0);
    assert_delivered_in_order(&f->peer, 0, 2);
  }
}

static void sink_otlp_should_drop_and_count_a_400_without_retrying(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  send_through_sink(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF,
                    "{\"proto\":\"http\",\"kind\":\"status\",\"status\":400,"
                    "\"message\":\"bad data\",\"times\":1}",
                    3, &st);
  assert_int_equal(st.batches_failed_permanent, 1);
  assert_int_equal(st.spans_failed_permanent, 1);
  assert_int_equal(st.batches_retried, 0);
  assert_int_equal(st.batches_sent, 2);
  /* The refusal was the first answer; the deliveries after it clear it. */
  assert_int_equal(st.refusing, 0);
  assert_int_equal(st.up, 1);
  assert_int_equal(st.refused_code, 400);
  assert_string_equal(st.refused_message, "bad data");
  assert_int_equal(peer_stat(&f->peer, "requests"), 3);
  assert_delivered_in_order(&f->peer, 1, 3);
}

static void sink_otlp_should_count_partial_success_without_retrying(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  send_through_sink(f, TT_FWD_PROTOCOL_GRPC,
                    "{\"proto\":\"grpc\",\"kind\":\"partial\",\"rejected\":1,"
                    "\"message\":\"one bad span\",\"times\":1}",
                    2, &st);
  assert_int_equal(st.spans_rejected, 1);
  assert_int_equal(st.batches_retried, 0);
  assert_int_equal(peer_stat(&f->peer, "requests"), 2);
}

/* The peer (setup_peer_requiring_auth) refuses requests without x-honeycomb-team=secret-key. */
static void sink_otlp_should_send_the_auth_header_a_honeycomb_like_backend_requires(void **state) {
  fixture_t *f = *state;
  for (int protocol = TT_FWD_PROTOCOL_GRPC; protocol <= TT_FWD_PROTOCOL_HTTP_PROTOBUF; protocol++) {
    if (protocol != TT_FWD_PROTOCOL_GRPC)
      fx_restart_peer(f); /* each protocol's checks read the dump from batch 0 */
    tt_otlp_sink_opts_t *o = fx_opts(f, protocol);
    /* Without the header: refused (401 / UNAUTHENTICATED), counted, not retried. */
    tt_sink_t *s = fx_open(f, o);
    submit_n(s, 0, 1);
    wait_drained(s);
    tt_otlp_sink_stats_t st;
    tt__sink_otlp_stats(s, &st);
    assert_int_equal(st.batches_failed_permanent, 1);
    assert_int_equal(st.batches_retried, 0);
    /* Refusing until a batch gets through: down for tailtrace_exporter_up and /readyz. */
    assert_int_equal(st.refusing, 1);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.refused_code, protocol == TT_FWD_PROTOCOL_GRPC ? 16 : 401);
    assert_false(s->vt->healthy(s));
    fx_close(f, s);
    /* With it: delivered. */
    o->headers = "x-honeycomb-team=secret-key";
    s = fx_open(f, o);
    submit_n(s, 1, 2);
    wait_drained(s);
    tt__sink_otlp_stats(s, &st);
    assert_int_equal(st.batches_sent, 1);
    fx_close(f, s);
    assert_delivered_in_order(&f->peer, 1, 2);
    char *dump = peer_ctl(&f->peer, "/_control/dump", NULL);
    assert_non_null(dump);
    assert_true(count_substr(dump, "x-honeycomb-team=secret-key") >= 1);
    free(dump);
  }
}

static void sink_otlp_should_spool_during_an_outage_and_replay_after_restart(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;

  /* The backend is down (nothing listens): everything goes to the spool. */
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  to_dead_backend(o, f->ep, sizeof f->ep);
  o->timeout_ms = 500;
  spool_on_failure(o, f->dir);
  o->queue_bytes = 4096; /* a small memory queue: the outage outlasts it */
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 0, 30);
  tt_otlp_sink_stats_t st;
  for (int i = 0; i < 100; i++) {
    tt__sink_otlp_stats(s, &st);
    if (st.spool_batches == 30)
      break;
    usleep(50000);
  }
  /* Every span spooled and counted so, nothing left in memory, the exporter down. */
  assert_int_equal(st.spool_batches, 30);
  assert_int_equal(st.spans_spooled, 30);
  assert_int_equal(st.queue_spans, 0);
  assert_true(st.spool_bytes > 0);
  assert_int_equal(st.up, 0);
  assert_int_equal(st.spans_sent, 0);
  tt__sink_otlp_set_close_deadline(s, 300);
  fx_close(f, s);

  /* "Restart" against the live backend with the same spool: all 30 arrive once, in order. */
  o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_on_failure(o, f->dir);
  s = fx_open(f, o);
  submit_n(s, 30, 35); /* new batches queue behind the replayed ones */
  for (int i = 0; i < 50 && peer_stat(p, "spans") < 35; i++)
    usleep(100000);
  wait_drained(s);
  tt__sink_otlp_stats(s, &st);
  assert_int_equal(st.batches_sent, 35);
  assert_int_equal(st.spans_sent, 35);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(st.spool_bytes, 0); /* drained: the segment file left behind is not counted */
  assert_int_equal(st.queue_spans, 0);
  assert_int_equal(st.up, 1);
  assert_int_equal(peer_stat(p, "spans"), 35);
  assert_delivered_in_order(p, 0, 35);
  fx_close(f, s);
}

/* Counts the records of the spool segment files in dir whose CONSUMED flag is clear, reading
 * the files themselves (the layout in spool.h), not asking the spool. */
static int unconsumed_on_disk(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "seg-", 4) != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hdr[24];
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
      assert_memory_equal(hdr, "TTS1", 4);
      uint32_t len = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 |
                     (uint32_t)hdr[11] << 24;
      if (!(hdr[5] & 0x01))
        n++;
      assert_int_equal(fseek(f, (long)len, SEEK_CUR), 0);
    }
    fclose(f);
  }
  closedir(d);
  return n;
}

/* A record damaged on disk while the collector was down costs the rest of its segment file; the
 * loss must show on /metrics, not only in the log. */
static void sink_otlp_should_count_corrupt_spool_records_in_its_metrics(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  to_dead_backend(o, f->ep, sizeof f->ep);
  o->timeout_ms = 500;
  spool_on_failure(o, f->dir);
  o->queue_bytes = 4096;
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 0, 3);
  tt__sink_otlp_set_close_deadline(s, 300);
  fx_close(f, s);
  assert_int_equal(unconsumed_on_disk(f->dir), 3);

  /* Flip a byte of the second record's payload (record = 24-byte header + payload). */
  DIR *d = opendir(f->dir);
  assert_non_null(d);
  struct dirent *e;
  char path[512] = "";
  while ((e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "seg-", 4) == 0)
      snprintf(path, sizeof path, "%s/%s", f->dir, e->d_name);
  closedir(d);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t hdr[24];
  assert_int_equal(pread(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
  uint32_t len1 =
      (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 | (uint32_t)hdr[11] << 24;
  uint8_t c;
  off_t at = (off_t)(24 + len1 + 24 + 2);
  assert_int_equal(pread(fd, &c, 1, at), 1);
  c ^= 0xff;
  assert_int_equal(pwrite(fd, &c, 1, at), 1);
  close(fd);

  o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_on_failure(o, f->dir);
  s = fx_open(f, o);
  for (int i = 0; i < 50 && peer_stat(p, "spans") < 1; i++)
    usleep(100000);
  wait_drained(s);
  tt_otlp_sink_stats_t st;
  tt__sink_otlp_stats(s, &st);
  assert_int_equal(st.spool_corrupt_records, 1);
  assert_int_equal(peer_stat(p, "spans"), 1); /* the record before the damage */
  tt_sink_t *sinks[1] = {s};
  tt_buf_t m = TT_BUF_INIT;
  assert_int_equal(tt__sink_otlp_render_metrics(sinks, 1, &m), 0);
  tt__buf_append(&m, "", 1);
  assert_non_null(strstr((char *)m.data, "tailtrace_exporter_spool_corrupt_records_total{"));
  assert_non_null(strstr((char *)m.data, "\"} 1\n"));
  tt__buf_free(&m);
  fx_close(f, s);
}

/* The span counts of the unconsumed records in dir's segment files, summed (each record
 * starts with its batch's span count, 4 bytes little-endian), read from the files themselves. */
static uint64_t unconsumed_spans_on_disk(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  uint64_t spans = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "seg-", 4) != 0)
      continue;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t hdr[24 + 4];
    while (fread(hdr, 1, sizeof hdr, f) == sizeof hdr) {
      uint32_t len = (uint32_t)hdr[8] | (uint32_t)hdr[9] << 8 | (uint32_t)hdr[10] << 16 |
                     (uint32_t)hdr[11] << 24;
      if (!(hdr[5] & 0x01))
        spans += (uint32_t)hdr[24] | (uint32_t)hdr[25] << 8 | (uint32_t)hdr[26] << 16 |
                 (uint32_t)hdr[27] << 24;
      assert_true(len >= 4);
      assert_int_equal(fseek(f, (long)len - 4, SEEK_CUR), 0);
    }
    fclose(f);
  }
  closedir(d);
  return spans;
}

/* Copies the files of src into the new directory dst: the disk as a SIGKILL at this instant
 * would leave it (written data is in the page cache, which outlives the process). */
static void snapshot_dir(const char *src, const char *dst) {
  DIR *d = opendir(src);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/%s", src, e->d_name);
    snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[8192];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
      assert_int_equal(fwrite(buf, 1, got, out), got);
    fclose(in);
    fclose(out);
  }
  closedir(d);
}

/* Healthy backend, mode always: every batch goes through the spool, is sent once and marked
 * consumed; nothing is left on disk and nothing is sent twice (requests may carry several). */
static void sink_otlp_should_send_each_batch_once_through_the_spool_in_always_mode(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_always(o, f->dir);
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 0, 40);
  wait_drained(s);
  tt_otlp_sink_stats_t st;
  tt__sink_otlp_stats(s, &st);
  assert_int_equal(st.batches_sent, 40);
  assert_int_equal(st.spans_sent, 40);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(st.spool_errors, 0);
  assert_int_equal(st.batches_retried, 0);
  fx_close(f, s);
  assert_true(peer_stat(p, "requests") <= 40);
  assert_int_equal(peer_stat(p, "spans"), 40);
  assert_delivered_in_order(p, 0, 40);
  assert_int_equal(unconsumed_on_disk(f->dir), 0);
}

/* A backend that holds the first request: while it is in flight, that batch and every later
 * one are already on disk, none of them was sent, and the memory queue is empty. The disk as a
 * crash would leave it then, opened by a new sink against a healthy backend, yields every
 * batch once, in order, and none afterwards. */
static void
sink_otlp_should_have_every_batch_on_disk_before_sending_and_replay_it_once_after_a_crash(
    void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  const char *dir = f->dir, *crash = fx_second_dir(f);
  assert_int_equal(peer_fault(p, "{\"proto\":\"http\",\"kind\":\"hang\",\"seconds\":20,"
                                 "\"times\":1}"),
                   0);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF);
  o->timeout_ms = 30000; /* the hung attempt outlives the test's look at the disk */
  spool_always(o, dir);
  tt_sink_t *a = fx_open(f, o);
  submit_n(a, 0, 10);
  tt_otlp_sink_stats_t st;
  int i;
  for (i = 0; i < 500; i++) { /* at most 10 s */
    tt__sink_otlp_stats(a, &st);
    if (st.queue_bytes == 0 && st.spool_batches == 10 && peer_stat(p, "requests") == 1)
      break;
    usleep(20000);
  }
  if (i == 500)
    fail_msg("not all on disk while the first request is held: queue %llu bytes, spooled %llu, "
             "peer requests %ld",
             (unsigned long long)st.queue_bytes, (unsigned long long)st.spool_batches,
             peer_stat(p, "requests"));
  assert_int_equal(unconsumed_on_disk(dir), 10);
  assert_int_equal(st.batches_sent, 0);
  assert_int_equal(peer_stat(p, "spans"), 0); /* the one request seen is the held one */
  snapshot_dir(dir, crash);
  tt__sink_otlp_set_close_deadline(a, 200);
  fx_close(f, a); /* aborts the held request; what this sink leaves behind is not used */

  o->timeout_ms = 3000;
  o->spool_dir = crash;
  tt_sink_t *b = fx_open(f, o);
  submit_n(b, 10, 12); /* new batches queue behind the replayed ones */
  wait_drained(b);
  tt__sink_otlp_stats(b, &st);
  assert_int_equal(st.batches_sent, 12);
  assert_int_equal(st.spool_batches, 0);
  fx_close(f, b);
  assert_delivered_in_order(p, 0, 12);
  assert_int_equal(unconsumed_on_disk(crash), 0);

  /* A third start finds nothing left to replay. */
  b = fx_open(f, o);
  wait_drained(b);
  tt__sink_otlp_stats(b, &st);
  assert_int_equal(st.batches_sent, 0);
  fx_close(f, b);
  assert_delivered_in_order(p, 0, 12);
}

static void sink_otlp_should_refuse_mode_always_without_a_spool_directory(void **state) {
  (void)state;
  tt_otlp_sink_opts_t o;
  memset(&o, 0, sizeof o);
  o.name = "always-nodir";
  o.protocol = TT_FWD_PROTOCOL_GRPC;
  o.endpoint = "127.0.0.1:9";
  o.insecure = 1;
  o.spool_always = 1;
  tt_sink_t *s = NULL;
  char err[256] = "";
  assert_int_equal(tt__sink_otlp_open(&o, &s, err, sizeof err), -EINVAL);
  assert_null(s);
  assert_non_null(strstr(err, "needs a spool directory"));
}

static void sink_otlp_should_count_batches_it_cannot_hold_without_a_spool(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_opts_t o;
  char ep[64];
  dead_backend_opts(&o, "nospool", ep, sizeof ep, 300, 300 /* room for a few ~80-byte batches */);
  tt_sink_t *s = fx_open(f, &o);
  int refused = 0;
  for (int i = 0; i < 20; i++) {
    size_t len;
    uint8_t *b = make_request(i, &len);
    if (s->vt->submit(s, b, len, 1) != 0)
      refused++;
    free(b);
  }
  tt_otlp_sink_stats_t st;
  tt__sink_otlp_stats(s, &st);
  assert_true(refused > 0);
  assert_int_equal(st.batches_dropped_queue_full, (uint64_t)refused);
  tt__sink_otlp_set_close_deadline(s, 200);
  fx_close(f, s); /* must return by its deadline although the backend never answers */
}

/* One request of `nspans` spans named "big-<k>" (k from first), each with a link carrying a
 * string attribute of `pad` bytes, all under one resource and one scope: what a shard frames
 * for one big trace. The padding sits in a link because the peer's dump prints span and event
 * attribute values but only counts a link's, which keeps the dump small. */
static uint8_t *make_big_request(int first, int nspans, size_t pad, size_t *len) {
  Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
      OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
  Opentelemetry__Proto__Trace__V1__Span *spans = calloc((size_t)nspans, sizeof *spans);
  Opentelemetry__Proto__Trace__V1__Span **sp = calloc((size_t)nspans, sizeof *sp);
  Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
  Opentelemetry__Proto__Common__V1__AnyValue any =
      OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
  Opentelemetry__Proto__Common__V1__KeyValue *kvp = &kv;
  Opentelemetry__Proto__Trace__V1__Span__Link link =
      OPENTELEMETRY__PROTO__TRACE__V1__SPAN__LINK__INIT;
  Opentelemetry__Proto__Trace__V1__Span__Link *linkp = &link;
  char *padding = malloc(pad + 1);
  memset(padding, 'p', pad);
  padding[pad] = '\0';
  any.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
  any.string_value = padding;
  kv.key = "pad";
  kv.value = &any;
  char(*names)[32] = calloc((size_t)nspans, sizeof *names);
  uint8_t tid[16] = {0x43}, (*sids)[8] = calloc((size_t)nspans, sizeof *sids);
  tid[15] = 1;
  link.trace_id.data = tid;
  link.trace_id.len = 16;
  link.span_id.data = tid + 8;
  link.span_id.len = 8;
  link.n_attributes = 1;
  link.attributes = &kvp;
  for (int k = 0; k < nspans; k++) {
    Opentelemetry__Proto__Trace__V1__Span init = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    spans[k] = init;
    snprintf(names[k], sizeof names[k], "big-%05d", first + k);
    sids[k][0] = 0x18;
    sids[k][6] = (uint8_t)((first + k) >> 8);
    sids[k][7] = (uint8_t)(first + k);
    spans[k].name = names[k];
    spans[k].trace_id.data = tid;
    spans[k].trace_id.len = 16;
    spans[k].span_id.data = sids[k];
    spans[k].span_id.len = 8;
    spans[k].start_time_unix_nano = 1000;
    spans[k].end_time_unix_nano = 2000;
    spans[k].n_links = 1;
    spans[k].links = &linkp;
    sp[k] = &spans[k];
  }
  scope.name = "big-scope";
  uint8_t *buf = pack_request(sp, (size_t)nspans, &scope, len);
  free(spans);
  free(sp);
  free(padding);
  free(names);
  free(sids);
  return buf;
}

/* Counts the requests the peer accepted and checks the spans named `prefix`<n> arrived in
 * order from 0 to `n`-1, each once, every one under scope "big-scope" when big. */
static int accepted_requests_in_order(const tt_peer_t *p, const char *prefix, int n) {
  char *dump = peer_ctl(p, "/_control/dump", NULL);
  assert_non_null(dump);
  int next = 0, accepted = 0, requests = 0;
  char key[32];
  snprintf(key, sizeof key, " name=%s", prefix);
  for (char *line = strtok(dump, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    if (strncmp(line, "request ", 8) == 0) {
      accepted = strstr(line, " fault=none ") != NULL;
      requests += accepted;
      continue;
    }
    const char *name = strstr(line, key);
    if (!accepted || strncmp(line, "span ", 5) != 0 || name == NULL)
      continue;
    int got = atoi(name + strlen(key));
    if (got != next)
      fail_msg("expected %s%d next, the peer accepted %s%d", prefix, next, prefix, got);
    if (strcmp(prefix, "big-") == 0 && strstr(line, " scope=big-scope") == NULL)
      fail_msg("span %s%d lost its scope", prefix, got);
    next++;
  }
  free(dump);
  assert_int_equal(next, n);
  return requests;
}

/* A 10 MiB batch (one trace's worth) to a gRPC receiver with grpcio's default 4 MiB receive
 * limit: sent whole it is refused (RESOURCE_EXHAUSTED, permanent) and lost; split at the default
 * max_request_size it arrives in at least three requests, every span once, in order. */
static void sink_otlp_should_split_a_batch_over_the_request_limit(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  o->timeout_ms = 20000; /* 10 MiB through a Python peer under sanitizers */
  tt_sink_t *s = fx_open(f, o);
  size_t len;
  uint8_t *req = make_big_request(0, 2500, 4400, &len);
  assert_true(len > 10u << 20);
  assert_int_equal(s->vt->submit(s, req, len, 2500), 0);
  free(req);
  for (int i = 0; i < 3000 && s->vt->flush(s) != 0; i++)
    usleep(20000);
  tt_otlp_sink_stats_t st;
  tt__sink_otlp_stats(s, &st);
  fx_close(f, s);
  assert_int_equal(st.batches_failed_permanent, 0);
  assert_int_equal(st.spans_sent, 2500);
  assert_int_equal(st.requests_oversized, 0);
  assert_true(st.batches_sent >= 3);
  int requests = accepted_requests_in_order(p, "big-", 2500);
  assert_true(requests >= 3);
  assert_int_equal(peer_stat(p, "requests"), requests); /* none refused */
}

/* Waits until s has handed everything to the backend, fills *st and closes s. */
static void drain_and_close(fixture_t *f, tt_sink_t *s, tt_otlp_sink_stats_t *st) {
  wait_drained(s);
  tt__sink_otlp_stats(s, st);
  fx_close(f, s);
}

/* Many small batches queued behind a slow request go out in fewer requests than batches,
 * every span once, in order; the counters still count batches. */
static void sink_otlp_should_coalesce_small_batches_queued_behind_a_slow_request(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  assert_int_equal(peer_fault(p, "{\"proto\":\"any\",\"kind\":\"delay\",\"seconds\":1,"
                                 "\"times\":1}"),
                   0);
  tt_sink_t *s = fx_open(f, fx_opts(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF));
  submit_n(s, 0, 60);
  tt_otlp_sink_stats_t st;
  drain_and_close(f, s, &st);
  assert_int_equal(st.batches_sent, 60);
  assert_int_equal(st.spans_sent, 60);
  assert_delivered_in_order(p, 0, 60);
  int requests = accepted_requests_in_order(p, "batch-", 60);
  assert_true(requests < 60);
}

/* Leaves n batches (batch-0 .. batch-(n-1)) in a new spool in the fixture's directory, as an
 * outage that outlasted the memory queue and ended with a restart would: the sink could never
 * reach its backend. */
static void spool_n_during_an_outage(fixture_t *f, int n) {
  tt_otlp_sink_opts_t o;
  char ep[128];
  dead_backend_opts(&o, "outage", ep, sizeof ep, 500, 4096);
  spool_on_failure(&o, f->dir);
  tt_sink_t *s = fx_open(f, &o);
  submit_n(s, 0, n);
  tt__sink_otlp_set_close_deadline(s, 300);
  fx_close(f, s);
  assert_int_equal(unconsumed_on_disk(f->dir), n);
}

/* 30 batches spooled during an outage are replayed after it in requests of as many batches as
 * max_request_size holds (4 here): 8 requests, every span once, in order, all marked consumed.
 * One batch per request would take 30. */
static void
sink_otlp_should_replay_spooled_batches_coalesced_up_to_the_request_limit(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  spool_n_during_an_outage(f, 30);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF);
  spool_on_failure(o, f->dir);
  size_t len;
  free(make_request(0, &len)); /* every batch-<i> has this length */
  o->max_request_bytes = 4 * len;
  tt_otlp_sink_stats_t st;
  drain_and_close(f, fx_open(f, o), &st);
  assert_int_equal(st.batches_sent, 30);
  assert_int_equal(st.spans_sent, 30);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(st.spool_errors, 0);
  assert_int_equal(accepted_requests_in_order(p, "batch-", 30), 8);
  assert_int_equal(peer_stat(p, "requests"), 8);
  assert_int_equal(unconsumed_on_disk(f->dir), 0);
}

/* The backend refuses the first replayed request (all 6 spooled batches coalesced) and then
 * the next one, batch-0 sent alone, with 400: each batch of the refused request is sent again
 * alone, so only batch-0 is dropped and counted; the other five arrive once, in order. */
static void sink_otlp_should_resend_alone_the_batches_of_a_refused_coalesced_replay(void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  spool_n_during_an_outage(f, 6);
  assert_int_equal(peer_fault(p, "{\"proto\":\"http\",\"kind\":\"status\",\"status\":400,"
                                 "\"message\":\"bad data\",\"times\":2}"),
                   0);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_HTTP_PROTOBUF);
  spool_on_failure(o, f->dir);
  tt_otlp_sink_stats_t st;
  drain_and_close(f, fx_open(f, o), &st);
  assert_int_equal(st.batches_failed_permanent, 1);
  assert_int_equal(st.spans_failed_permanent, 1);
  assert_int_equal(st.batches_sent, 5);
  assert_int_equal(st.spans_sent, 5);
  assert_int_equal(st.batches_retried, 0);
  assert_int_equal(peer_stat(p, "requests"), 1 + 6); /* the coalesced one, then each alone */
  assert_delivered_in_order(p, 1, 6);
  char *dump = peer_ctl(p, "/_control/dump", NULL);
  assert_non_null(dump);
  assert_int_equal(count_substr(dump, " name=batch-0000"), 2); /* in both refused requests */
  free(dump);
  assert_int_equal(unconsumed_on_disk(f->dir), 0);
}

/* Mode always: batches spooled while a slow request is in flight go out in fewer requests than
 * batches once it returns, every span once, in order; nothing is left unconsumed on disk. */
static void sink_otlp_should_coalesce_spooled_batches_queued_behind_a_slow_request_in_always_mode(
    void **state) {
  fixture_t *f = *state;
  tt_peer_t *p = &f->peer;
  assert_int_equal(peer_fault(p, "{\"proto\":\"any\",\"kind\":\"delay\",\"seconds\":1,"
                                 "\"times\":1}"),
                   0);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_always(o, f->dir);
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 0, 60);
  tt_otlp_sink_stats_t st;
  drain_and_close(f, s, &st);
  assert_int_equal(st.batches_sent, 60);
  assert_int_equal(st.spans_sent, 60);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(st.spool_errors, 0);
  int requests = accepted_requests_in_order(p, "batch-", 60);
  assert_true(requests < 60);
  assert_int_equal(peer_stat(p, "requests"), requests);
  assert_int_equal(unconsumed_on_disk(f->dir), 0);
}

/* Captures the collector's log lines (stderr) into a temporary file while a test runs. One at
 * a time: a failing test leaves it active, and teardown_fault_test (their teardown) gives stderr
 * back with what was captured, cmocka's failure message included. */
typedef struct {
  int saved_fd; /* -1 when not capturing */
  char path[64];
} log_capture_t;

static log_capture_t cap = {-1, ""};

static void capture_logs(log_capture_t *c) {
  snprintf(c->path, sizeof c->path, "/tmp/tt-fwd-log-XXXXXX");
  int fd = mkstemp(c->path);
  assert_true(fd >= 0);
  fflush(stderr);
  c->saved_fd = dup(2);
  assert_true(c->saved_fd >= 0);
  assert_int_equal(dup2(fd, 2), 2);
  close(fd);
  tt__log_set_level(TT_LOG_WARN);
}

/* Stops capturing and returns what was logged (the caller frees). */
static char *captured_logs(log_capture_t *c) {
  tt__log_set_level(TT_LOG_OFF);
  fflush(stderr);
  assert_int_equal(dup2(c->saved_fd, 2), 2);
  close(c->saved_fd);
  c->saved_fd = -1;
  FILE *f = fopen(c->path, "rb");
  assert_non_null(f);
  char *text = calloc(1, 1 << 16);
  assert_non_null(text);
  size_t got = fread(text, 1, (1 << 16) - 1, f);
  text[got] = '\0';
  fclose(f);
  unlink(c->path);
  return text;
}

/* Teardown of the fault tests: disarms the injected faults, gives stderr back, then does what
 * every test's teardown does. */
static int teardown_fault_test(void **state) {
  tt__spool_inject_fault(TT_SPOOL_FAULT_READ, 0, 0);
  tt__spool_inject_fault(TT_SPOOL_FAULT_MARK, 0, 0);
  tt__spool_inject_fault(TT_SPOOL_FAULT_WRITE, 0, 0);
  if (cap.saved_fd >= 0) {
    char *text = captured_logs(&cap);
    fprintf(stderr, "%s", text);
    free(text);
  }
  return teardown_fixture(state);
}

/* The fault tests' run: with `count` injected EIO faults of kind `fault` armed, an always-mode
 * sink on the spool in the fixture's directory sends batch 0 alone and then batches 1-5, each
 * drained, and closes. Fills *st, and *unconsumed with the records still unconsumed on disk
 * (read before close, which deletes the write segment); returns the logs captured meanwhile
 * (the caller frees them). */
static char *run_always_with_fault(fixture_t *f, tt_spool_fault_t fault, unsigned count,
                                   tt_otlp_sink_stats_t *st, int *unconsumed) {
  capture_logs(&cap);
  tt__spool_inject_fault(fault, count, EIO);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_always(o, f->dir);
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 0, 1);
  wait_drained(s);
  submit_n(s, 1, 6);
  wait_drained(s);
  tt__sink_otlp_stats(s, st);
  *unconsumed = unconsumed_on_disk(f->dir);
  fx_close(f, s);
  tt__spool_inject_fault(fault, 0, 0);
  return captured_logs(&cap);
}

/* Mode always, the consumed mark of the first sent batch cannot be written (injected EIO): the
 * spool moves on anyway, so every batch is sent once in this run, in order; the failure is
 * counted and logged, and the record stays unconsumed on disk, so a crash now would replay it
 * (at-least-once) rather than lose it. */
static void
sink_otlp_should_count_and_log_a_failed_consumed_mark_and_send_nothing_twice(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  int unconsumed;
  char *logs = run_always_with_fault(f, TT_SPOOL_FAULT_MARK, 1, &st, &unconsumed);
  assert_int_equal(st.batches_sent, 6);
  assert_int_equal(st.spool_errors, 1);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(unconsumed, 1);
  assert_int_equal(peer_stat(&f->peer, "spans"), 6);
  assert_delivered_in_order(&f->peer, 0, 6);
  if (strstr(logs, "cannot mark sent batches consumed; a restart resends them") == NULL ||
      strstr(logs, "\"errno\":5") == NULL)
    fail_msg("no log line for the failed mark; logged: %s", logs);
  free(logs);
}

/* Mode always, the spool cannot be read three times in a row (injected EIO) while it holds the
 * only batch: nothing newer is sent in its place and nothing waits for new work to come; the
 * sender reads again after a backoff and delivers it, then the later ones, once each, in
 * order. Each failed read is counted; the episode is logged once, and its end. */
static void sink_otlp_should_retry_a_failed_spool_read_and_lose_nothing(void **state) {
  fixture_t *f = *state;
  tt_otlp_sink_stats_t st;
  int unconsumed;
  char *logs = run_always_with_fault(f, TT_SPOOL_FAULT_READ, 3, &st, &unconsumed);
  assert_int_equal(st.batches_sent, 6);
  assert_int_equal(st.spool_errors, 3);
  assert_int_equal(st.spool_batches, 0);
  assert_int_equal(st.batches_failed_permanent, 0);
  assert_int_equal(peer_stat(&f->peer, "spans"), 6);
  assert_delivered_in_order(&f->peer, 0, 6);
  assert_int_equal(unconsumed, 0);
  if (count_substr(logs, "spool read failed; the batch stays in the spool") != 1 ||
      count_substr(logs, "spool reads succeed again") != 1)
    fail_msg("expected one log line for the failed reads and one for their end; logged: %s", logs);
  free(logs);
}

/* Mode on_failure, replaying 6 batches spooled during an outage: the oldest record cannot be
 * read three times in a row (injected EIO). The sender reads it again after a backoff, sends
 * nothing newer in its place (two batches submitted meanwhile wait behind the spool), and then
 * delivers all 8 once, in order. The failed reads are counted; the episode is logged once, and
 * its end. */
static void sink_otlp_should_retry_a_failed_read_while_replaying_and_lose_nothing(void **state) {
  fixture_t *f = *state;
  spool_n_during_an_outage(f, 6);
  capture_logs(&cap);
  tt__spool_inject_fault(TT_SPOOL_FAULT_READ, 3, EIO);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_on_failure(o, f->dir);
  tt_sink_t *s = fx_open(f, o);
  submit_n(s, 6, 8);
  tt_otlp_sink_stats_t st;
  drain_and_close(f, s, &st);
  tt__spool_inject_fault(TT_SPOOL_FAULT_READ, 0, 0);
  char *logs = captured_logs(&cap);
  assert_int_equal(st.batches_sent, 8);
  assert_int_equal(st.spool_errors, 3);
  assert_int_equal(st.batches_failed_permanent, 0);
  assert_int_equal(peer_stat(&f->peer, "spans"), 8);
  assert_delivered_in_order(&f->peer, 0, 8);
  assert_int_equal(unconsumed_on_disk(f->dir), 0);
  if (count_substr(logs, "spool read failed; the batch stays in the spool") != 1 ||
      count_substr(logs, "spool reads succeed again") != 1)
    fail_msg("expected one log line for the failed reads and one for their end; logged: %s", logs);
  free(logs);
}

/* Mode on_failure, the backend down, the first 25 spool writes fail (injected ENOSPC, a full
 * disk): the batches wait in memory and the writes are tried again at every backoff and new
 * batch. Each failure is counted, but the episode is logged once when it starts and once when
 * writes succeed again, with its count, not once per failure; then every batch is spooled. */
static void sink_otlp_should_log_failed_spool_writes_once_per_episode_and_count_each(void **state) {
  fixture_t *f = *state;
  capture_logs(&cap);
  tt__spool_inject_fault(TT_SPOOL_FAULT_WRITE, 25, ENOSPC);
  tt_otlp_sink_opts_t o;
  char ep[64];
  dead_backend_opts(&o, "wfail", ep, sizeof ep, 300, 1u << 20);
  spool_on_failure(&o, f->dir);
  tt_sink_t *s = fx_open(f, &o);
  tt_otlp_sink_stats_t st;
  int n = 0;
  do { /* one batch every 20 ms, at most 1500 (30 s), until the 25 faults are used up */
    submit_n(s, n, n + 1);
    n++;
    usleep(20000);
    tt__sink_otlp_stats(s, &st);
  } while (st.spool_errors < 25 && n < 1500);
  for (int i = 0; i < 1500 && (st.queue_bytes > 0 || st.spool_batches < (uint64_t)n); i++) {
    usleep(20000);
    tt__sink_otlp_stats(s, &st);
  }
  assert_int_equal(st.spool_errors, 25);
  assert_int_equal(st.spool_batches, n);
  assert_int_equal(st.queue_bytes, 0);
  fx_close(f, s);
  tt__spool_inject_fault(TT_SPOOL_FAULT_WRITE, 0, 0);
  char *logs = captured_logs(&cap);
  if (count_substr(logs, "\"msg\":\"spool write") != 2 ||
      count_substr(logs, "spool write failed") != 1 ||
      count_substr(logs, "spool writes succeed again") != 1 ||
      strstr(logs, "\"failures\":25") == NULL || strstr(logs, "\"errno\":28") == NULL)
    fail_msg("want one line when spool writes start failing (errno 28) and one when they "
             "succeed again (25 failures); logged: %s",
             logs);
  free(logs);
}

/* 40 batches of 3 spans during an outage, into a spool whose budget is 16 records of theirs:
 * default segments are an eighth of it (2 records), so 14 records may wait. The budget drops
 * the 26 oldest one by one, counted in batches and in spans (the metric too), and the 14
 * newest stay, delivered in order once the backend is back. */
static void sink_otlp_should_count_the_batches_and_spans_the_spool_budget_drops(void **state) {
  fixture_t *f = *state;
  size_t len;
  free(make_request(0, &len)); /* every batch-<i> has this length */
  tt_otlp_sink_opts_t o;
  char ep[64];
  dead_backend_opts(&o, "budget", ep, sizeof ep, 300, 1u << 20);
  spool_on_failure(&o, f->dir);
  o.spool_bytes = 16 * (24 + 4 + len);
  tt_sink_t *s = fx_open(f, &o);
  submit_spans(s, 0, 40, 3);
  tt_otlp_sink_stats_t st;
  for (int i = 0; i < 1500; i++) { /* at most 30 s */
    tt__sink_otlp_stats(s, &st);
    if (st.queue_bytes == 0 && st.spool_batches + st.batches_dropped_spool_budget == 40)
      break;
    usleep(20000);
  }
  assert_int_equal(st.spool_batches, 14);
  assert_int_equal(st.batches_dropped_spool_budget, 26);
  assert_int_equal(st.spans_dropped_spool_budget, 78);
  tt_buf_t m = TT_BUF_INIT;
  assert_int_equal(tt__sink_otlp_render_metrics(&s, 1, &m), 0);
  assert_int_equal(tt__buf_append(&m, "", 1), 0);
  assert_non_null(strstr((const char *)m.data,
                         "tailtrace_exporter_spans_total{exporter=\"budget\",outcome="
                         "\"dropped_spool_budget\"} 78\n"));
  assert_non_null(strstr((const char *)m.data,
                         "tailtrace_exporter_batches_total{exporter=\"budget\",outcome="
                         "\"dropped_spool_budget\"} 26\n"));
  tt__buf_free(&m);
  tt__sink_otlp_set_close_deadline(s, 300);
  fx_close(f, s);
  assert_int_equal(unconsumed_on_disk(f->dir), 14);
  tt_otlp_sink_opts_t *lo = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_on_failure(lo, f->dir);
  drain_and_close(f, fx_open(f, lo), &st);
  assert_int_equal(st.batches_sent, 14);
  assert_int_equal(st.spans_sent, 42);
  assert_delivered_in_order(&f->peer, 26, 40);
}

/* Opens a sink whose backend holds every request without answering (the peer's hang fault), with
 * an attempt timeout of 10 minutes, submits 5 batches of 3 spans and waits until the backend
 * holds the first request. Then the stop deadline is 300 ms away: flush must give up by then,
 * not after the attempt's timeout (it would outlast the test's), and report that not
 * everything was delivered; close then aborts the held request. */
static void hold_five_batches_and_stop(fixture_t *f, int spool) {
  assert_int_equal(peer_fault(&f->peer, "{\"proto\":\"any\",\"kind\":\"hang\",\"seconds\":600,"
                                        "\"times\":1000}"),
                   0);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  o->timeout_ms = 600000;
  if (spool)
    spool_on_failure(o, f->dir);
  tt_sink_t *s = fx_open(f, o);
  submit_spans(s, 0, 5, 3);
  for (int i = 0; i < 500 && peer_stat(&f->peer, "requests") < 1; i++) /* at most 10 s */
    usleep(20000);
  assert_int_equal(peer_stat(&f->peer, "requests"), 1);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  tt__sink_otlp_stop_by(s, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + 300000000);
  assert_int_not_equal(s->vt->flush(s), 0);
  fx_close(f, s);
}

/* With a spool: the held request's batches and the ones queued behind it are all spooled at
 * the stop deadline, and a restart against a working backend delivers each once, in order. */
static void sink_otlp_should_spool_what_a_hung_backend_holds_at_the_stop_deadline(void **state) {
  fixture_t *f = *state;
  hold_five_batches_and_stop(f, 1);
  assert_int_equal(unconsumed_on_disk(f->dir), 5);
  assert_int_equal(unconsumed_spans_on_disk(f->dir), 15);
  fx_restart_peer(f);
  tt_otlp_sink_opts_t *o = fx_opts(f, TT_FWD_PROTOCOL_GRPC);
  spool_on_failure(o, f->dir);
  tt_otlp_sink_stats_t st;
  drain_and_close(f, fx_open(f, o), &st);
  assert_int_equal(st.spans_sent, 15);
  assert_delivered_in_order(&f->peer, 0, 5);
}

/* Without a spool: what was not delivered by the stop deadline is logged as lost, with its exact
 * batch and span counts. */
static void
sink_otlp_should_log_the_spans_a_hung_backend_holds_at_the_stop_deadline_as_lost(void **state) {
  fixture_t *f = *state;
  capture_logs(&cap);
  hold_five_batches_and_stop(f, 0);
  char *logs = captured_logs(&cap);
  if (count_substr(logs, "were lost (no spool)") != 1 ||
      strstr(logs, "\"batches\":5,\"spans\":15") == NULL)
    fail_msg("want one line counting 5 batches and 15 spans lost; logged: %s", logs);
  free(logs);
}

/* Each test with the setup it needs; every teardown stops the peer, closes sinks left open and
 * removes the directories, also after a failure. */
#define SINK_TEST(test, setup) cmocka_unit_test_setup_teardown(test, setup, teardown_fixture)

int main(void) {
  tt__log_set_level(TT_LOG_OFF);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      SINK_TEST(sink_otlp_should_deliver_every_batch_once_in_order_over_grpc, setup_peer),
      SINK_TEST(sink_otlp_should_deliver_every_batch_once_in_order_over_http, setup_peer),
      SINK_TEST(sink_otlp_should_split_a_batch_over_the_request_limit, setup_peer),
      SINK_TEST(sink_otlp_should_coalesce_small_batches_queued_behind_a_slow_request, setup_peer),
      SINK_TEST(sink_otlp_should_retry_503_with_retry_after_then_deliver, setup_peer),
      SINK_TEST(sink_otlp_should_retry_grpc_unavailable_then_deliver, setup_peer),
      SINK_TEST(sink_otlp_should_retry_a_hung_request_after_its_deadline, setup_peer),
      SINK_TEST(sink_otlp_should_drop_and_count_a_400_without_retrying, setup_peer),
      SINK_TEST(sink_otlp_should_count_partial_success_without_retrying, setup_peer),
      SINK_TEST(sink_otlp_should_send_the_auth_header_a_honeycomb_like_backend_requires,
                setup_peer_requiring_auth),
      SINK_TEST(sink_otlp_should_spool_during_an_outage_and_replay_after_restart,
                setup_peer_and_spool),
      SINK_TEST(sink_otlp_should_count_batches_it_cannot_hold_without_a_spool, setup_no_peer),
      SINK_TEST(sink_otlp_should_count_corrupt_spool_records_in_its_metrics, setup_peer_and_spool),
      SINK_TEST(sink_otlp_should_send_each_batch_once_through_the_spool_in_always_mode,
                setup_peer_and_spool),
      SINK_TEST(
          sink_otlp_should_have_every_batch_on_disk_before_sending_and_replay_it_once_after_a_crash,
          setup_peer_and_spool),
      cmocka_unit_test(sink_otlp_should_refuse_mode_always_without_a_spool_directory),
      SINK_TEST(sink_otlp_should_replay_spooled_batches_coalesced_up_to_the_request_limit,
                setup_peer_and_spool),
      SINK_TEST(sink_otlp_should_resend_alone_the_batches_of_a_refused_coalesced_replay,
                setup_peer_and_spool),
      SINK_TEST(
          sink_otlp_should_coalesce_spooled_batches_queued_behind_a_slow_request_in_always_mode,
          setup_peer_and_spool),
      cmocka_unit_test_setup_teardown(
          sink_otlp_should_count_and_log_a_failed_consumed_mark_and_send_nothing_twice,
          setup_peer_and_spool, teardown_fault_test),
      cmocka_unit_test_setup_teardown(sink_otlp_should_retry_a_failed_spool_read_and_lose_nothing,
                                      setup_peer_and_spool, teardown_fault_test),
      cmocka_unit_test_setup_teardown(
          sink_otlp_should_retry_a_failed_read_while_replaying_and_lose_nothing,
          setup_peer_and_spool, teardown_fault_test),
      cmocka_unit_test_setup_teardown(
          sink_otlp_should_log_failed_spool_writes_once_per_episode_and_count_each,
          setup_peer_and_spool, teardown_fault_test),
      SINK_TEST(sink_otlp_should_count_the_batches_and_spans_the_spool_budget_drops,
                setup_peer_and_spool),
      SINK_TEST(sink_otlp_should_spool_what_a_hung_backend_holds_at_the_stop_deadline,
                setup_peer_and_spool),
      cmocka_unit_test_setup_teardown(
          sink_otlp_should_log_the_spans_a_hung_backend_holds_at_the_stop_deadline_as_lost,
          setup_peer, teardown_fault_test),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
