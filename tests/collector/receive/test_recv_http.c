/* The OTLP/HTTP receiver over real sockets on 127.0.0.1: framing (keep-alive, chunked, gzip,
 * 100-continue), limits and every status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <zlib.h>

#include "peers.h"
#include "recv_http.h"
#include "test_recv_util.h"

typedef struct {
  recorder_t rec;
  tt_http_receiver_t *r;
  int port;
} fixture_t;

static fixture_t *start(size_t max_body, uint32_t idle_ms) {
  fixture_t *f = calloc(1, sizeof *f);
  recorder_init(&f->rec);
  tt_http_receiver_opts_t o = {
      .port = 0,
      .max_body_bytes = max_body,
      .idle_timeout_ms = idle_ms,
      .header_timeout_ms = idle_ms,
      .handler = recorder_handler,
      .ctx = &f->rec,
  };
  assert_int_equal(tt__http_receiver_start(&o, &f->r), 0);
  f->port = tt__http_receiver_port(f->r);
  assert_true(f->port > 0);
  return f;
}

static void stop(fixture_t *f) {
  tt__http_receiver_stop(f->r);
  recorder_free(&f->rec);
  free(f);
}

static int setup(void **state) {
  *state = start(64 * 1024, 0);
  return 0;
}

static int teardown(void **state) {
  stop(*state);
  return 0;
}

static void protobuf_post_should_reach_handler_and_answer_200(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("hello", &len);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 200);
  char ct[64];
  assert_true(resp_header(&r, "Content-Type", ct, sizeof ct));
  assert_string_equal(ct, "application/x-protobuf");
  assert_int_equal(r.body.len, 0); /* an empty ExportTraceServiceResponse */
  assert_int_equal(recorder_calls(&f->rec), 1);
  assert_int_equal(f->rec.last.len, len);
  assert_memory_equal(f->rec.last.data, pb, len);
  assert_string_equal(f->rec.transport, "http/protobuf");
  tt_peer_addr_t lo;
  assert_int_equal(tt__peer_addr_from_grpc("ipv4:127.0.0.1:1", &lo), 0);
  assert_true(f->rec.peer == tt__peer_addr_hash(&lo)); /* the sender's identity: its address */
  tt_http_receiver_stats_t st;
  tt__http_receiver_stats(f->r, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.accepted, 1);
  free(pb);
  tt__buf_free(&r.body);
}

static void partial_success_should_be_encoded_in_the_response(void **state) {
  fixture_t *f = *state;
  f->rec.answer.status = TT_EXPORT_OK;
  f->rec.answer.rejected_spans = 3;
  snprintf(f->rec.answer.message, sizeof f->rec.answer.message, "3 spans had bad ids");
  size_t len;
  uint8_t *pb = sample_request("x", &len);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 200);
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *resp =
      opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
          NULL, r.body.len, r.body.data);
  assert_non_null(resp);
  assert_non_null(resp->partial_success);
  assert_int_equal(resp->partial_success->rejected_spans, 3);
  assert_string_equal(resp->partial_success->error_message, "3 spans had bad ids");
  opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                           NULL);
  free(pb);
  tt__buf_free(&r.body);
}

static void malformed_protobuf_should_answer_400_with_rpc_status(void **state) {
  fixture_t *f = *state;
  /* Field 1 (resource_spans) claims 100 bytes but only 2 follow. */
  const uint8_t bad[] = {0x0a, 100, 0x12, 0x00};
  http_resp_t r = {0};
  assert_int_equal(
      http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, bad, sizeof bad, &r), 0);
  assert_int_equal(r.status, 400);
  rpc_status_t st;
  assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
  assert_int_equal(st.code, 3);
  assert_non_null(strstr(st.message, "malformed"));
  assert_int_equal(recorder_calls(&f->rec), 0);
  tt__buf_free(&r.body);
}

/* POSTs `body` on the open connection fd and reads the answer into r. */
static void post_on(int fd, tt_buf_t *pending, const uint8_t *body, size_t len, http_resp_t *r) {
  tt_buf_t req = TT_BUF_INIT;
  tt__buf_appendf(&req,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  len);
  tt__buf_append(&req, body, len);
  assert_int_equal(send_all(fd, req.data, req.len), 0);
  assert_int_equal(read_response(fd, pending, r), 0);
  tt__buf_free(&req);
}

static void varint_past_64_bits_should_answer_400_and_keep_what_was_accepted(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  size_t glen;
  uint8_t *good = sample_request("before", &glen);
  post_on(fd, &pending, good, glen, &r);
  assert_int_equal(r.status, 200);
  for (size_t i = 0; i < N_BAD_VARINTS; i++) {
    size_t len;
    uint8_t *pb = request_with_raw_int_attr(bad_varints[i].bytes, bad_varints[i].len, &len);
    post_on(fd, &pending, pb, len, &r);
    if (r.status != 400)
      fail_msg("%s: status %d", bad_varints[i].what, r.status);
    rpc_status_t st;
    assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
    assert_int_equal(st.code, 3); /* INVALID_ARGUMENT */
    if (strstr(st.message, "malformed") == NULL || strstr(st.message, "overflows 64 bits") == NULL)
      fail_msg("%s: message '%s'", bad_varints[i].what, st.message);
    free(pb);
  }
  /* The refused requests never reached the handler: the one before is still the last it took,
   * and the connection still serves. */
  assert_int_equal(recorder_calls(&f->rec), 1);
  assert_string_equal(first_span_name(f->rec.last.data, f->rec.last.len), "before");
  post_on(fd, &pending, good, glen, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(recorder_calls(&f->rec), 2);
  tt_http_receiver_stats_t hs;
  tt__http_receiver_stats(f->r, &hs);
  assert_int_equal(hs.malformed, N_BAD_VARINTS);
  assert_int_equal(hs.accepted, 2);
  free(good);
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void negative_int64_attribute_should_be_accepted_unchanged(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = request_with_raw_int_attr(minus_one_varint, sizeof minus_one_varint, &len);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_int_equal(recorder_calls(&f->rec), 1);
  assert_int_equal(f->rec.last.len, len);
  assert_memory_equal(f->rec.last.data, pb, len);
  /* protobuf-c, an independent decoder, reads the same bytes as -1. */
  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
      opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                       pb);
  assert_non_null(req);
  assert_int_equal(
      req->resource_spans[0]->scope_spans[0]->spans[0]->attributes[0]->value->int_value, -1);
  opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                          NULL);
  free(pb);
  tt__buf_free(&r.body);
}

static void unknown_content_type_should_answer_415(void **state) {
  fixture_t *f = *state;
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "text/plain", NULL, "hi", 2, &r), 0);
  assert_int_equal(r.status, 415);
  assert_int_equal(
      http_post(f->port, "/v1/traces", "application/json; charset=latin1", NULL, "{}", 2, &r), 0);
  assert_int_equal(r.status, 415);
  assert_int_equal(recorder_calls(&f->rec), 0);
  tt__buf_free(&r.body);
}

static void protobuf_with_charset_parameter_should_be_accepted(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("cs", &len);
  http_resp_t r = {0};
  assert_int_equal(
      http_post(f->port, "/v1/traces", "Application/X-Protobuf ; charset=UTF-8", NULL, pb, len, &r),
      0);
  assert_int_equal(r.status, 200);
  free(pb);
  tt__buf_free(&r.body);
}

static void wrong_path_should_answer_404_and_wrong_method_405(void **state) {
  fixture_t *f = *state;
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/metrics", "application/x-protobuf", NULL, "", 0, &r), 0);
  assert_int_equal(r.status, 404);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  const char *get = "GET /v1/traces HTTP/1.1\r\nHost: x\r\n\r\n";
  assert_int_equal(send_all(fd, get, strlen(get)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 405);
  char allow[32];
  assert_true(resp_header(&r, "Allow", allow, sizeof allow));
  assert_string_equal(allow, "POST");
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void oversized_content_length_should_answer_413_before_the_body(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  /* Only the headers are sent: the answer must come without the server waiting for 10 MB. */
  const char *h = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  "Content-Length: 10000000\r\n\r\n";
  assert_int_equal(send_all(fd, h, strlen(h)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 413);
  assert_true(r.closed);
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void oversized_chunked_body_should_answer_413_and_close(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  const char *h = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n";
  assert_int_equal(send_all(fd, h, strlen(h)), 0);
  /* 20 chunks of 4 KiB = 80 KiB, over the 64 KiB limit; the server may close before all are
   * sent, so send errors are expected and ignored. */
  char chunk[4096 + 16];
  int n = snprintf(chunk, sizeof chunk, "1000\r\n");
  memset(chunk + n, 'a', 4096);
  memcpy(chunk + n + 4096, "\r\n", 2);
  for (int i = 0; i < 20; i++)
    if (send_all(fd, chunk, (size_t)n + 4098) != 0)
      break;
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 413);
  assert_int_equal(recorder_calls(&f->rec), 0);
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void chunked_body_without_content_length_should_be_accepted(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("chunky", &len);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  tt_buf_t req = TT_BUF_INIT;
  tt__buf_appendf(&req,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\n"
                  "Content-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n");
  /* Split the body into 3 chunks, sent in separate writes to exercise partial parsing. */
  size_t a = len / 3, b = len / 3, c = len - a - b;
  size_t parts[3] = {a, b, c};
  size_t off = 0;
  for (int i = 0; i < 3; i++) {
    tt__buf_appendf(&req, "%zx\r\n", parts[i]);
    tt__buf_append(&req, pb + off, parts[i]);
    tt__buf_append_str(&req, "\r\n");
    off += parts[i];
    assert_int_equal(send_all(fd, req.data, req.len), 0);
    tt__buf_reset(&req);
    usleep(1000);
  }
  assert_int_equal(send_all(fd, "0\r\n\r\n", 5), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(first_span_name(f->rec.last.data, f->rec.last.len), "chunky");
  close(fd);
  free(pb);
  tt__buf_free(&req);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static tt_buf_t gzip_bytes(const void *data, size_t len) {
  tt_buf_t out = TT_BUF_INIT;
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  tt__buf_reserve(&out, deflateBound(&z, len));
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)len;
  z.next_out = out.data;
  z.avail_out = (uInt)out.cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.len = out.cap - z.avail_out;
  deflateEnd(&z);
  return out;
}

static void gzip_body_should_be_inflated_before_the_handler(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("zipped", &len);
  tt_buf_t gz = gzip_bytes(pb, len);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf",
                             "Content-Encoding: gzip\r\n", gz.data, gz.len, &r),
                   0);
  assert_int_equal(r.status, 200);
  assert_int_equal(f->rec.last.len, len);
  assert_memory_equal(f->rec.last.data, pb, len);
  free(pb);
  tt__buf_free(&gz);
  tt__buf_free(&r.body);
}

static void gzip_bomb_should_answer_413_on_inflated_size(void **state) {
  fixture_t *f = *state;
  /* 1 MiB of zeros compresses to about 1 KiB: small on the wire, over the 64 KiB limit inflated. */
  size_t big = 1024 * 1024;
  uint8_t *zeros = calloc(1, big);
  tt_buf_t gz = gzip_bytes(zeros, big);
  assert_true(gz.len < 64 * 1024);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf",
                             "Content-Encoding: gzip\r\n", gz.data, gz.len, &r),
                   0);
  assert_int_equal(r.status, 413);
  assert_int_equal(recorder_calls(&f->rec), 0);
  free(zeros);
  tt__buf_free(&gz);
  tt__buf_free(&r.body);
}

static void corrupt_gzip_should_answer_400(void **state) {
  fixture_t *f = *state;
  const char junk[] = "\x1f\x8b\x08\x00garbage-garbage";
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf",
                             "Content-Encoding: gzip\r\n", junk, sizeof junk - 1, &r),
                   0);
  assert_int_equal(r.status, 400);
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf",
                             "Content-Encoding: br\r\n", junk, sizeof junk - 1, &r),
                   0);
  assert_int_equal(r.status, 415);
  tt__buf_free(&r.body);
}

static void keep_alive_should_serve_several_requests_on_one_connection(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  for (int i = 0; i < 5; i++) {
    char name[16];
    snprintf(name, sizeof name, "req-%d", i);
    size_t len;
    uint8_t *pb = sample_request(name, &len);
    tt_buf_t req = TT_BUF_INIT;
    tt__buf_appendf(
        &req,
        "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        "Content-Length: %zu\r\n\r\n",
        len);
    tt__buf_append(&req, pb, len);
    assert_int_equal(send_all(fd, req.data, req.len), 0);
    assert_int_equal(read_response(fd, &pending, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(first_span_name(f->rec.last.data, f->rec.last.len), name);
    free(pb);
    tt__buf_free(&req);
  }
  assert_int_equal(recorder_calls(&f->rec), 5);
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void pipelined_requests_should_be_answered_in_order(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  tt_buf_t req = TT_BUF_INIT;
  for (int i = 0; i < 3; i++) {
    size_t len;
    uint8_t *pb = sample_request("p", &len);
    /* The middle one goes to a wrong path, so the order of answers is visible. */
    tt__buf_appendf(&req,
                    "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    i == 1 ? "/nope" : "/v1/traces", len);
    tt__buf_append(&req, pb, len);
    free(pb);
  }
  assert_int_equal(send_all(fd, req.data, req.len), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  int want[3] = {200, 404, 200};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(read_response(fd, &pending, &r), 0);
    assert_int_equal(r.status, want[i]);
  }
  close(fd);
  tt__buf_free(&req);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void expect_continue_should_get_100_then_the_answer(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("cont", &len);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  char h[256];
  int n = snprintf(h, sizeof h,
                   "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                   "Content-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
                   len);
  assert_int_equal(send_all(fd, h, (size_t)n), 0);
  char buf[64] = "";
  ssize_t got = recv(fd, buf, sizeof buf - 1, 0);
  assert_true(got > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 100 Continue\r\n\r\n"));
  assert_int_equal(send_all(fd, pb, len), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  close(fd);
  free(pb);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void throttled_should_answer_429_with_retry_after_and_retry_info(void **state) {
  fixture_t *f = *state;
  f->rec.answer.status = TT_EXPORT_THROTTLED;
  f->rec.answer.retry_after_ms = 2500;
  size_t len;
  uint8_t *pb = sample_request("t", &len);
  http_resp_t r = {0};
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 429);
  char ra[16];
  assert_true(resp_header(&r, "Retry-After", ra, sizeof ra));
  assert_string_equal(ra, "3");
  rpc_status_t st;
  assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
  assert_int_equal(st.code, 8);
  assert_true(st.has_retry);
  assert_int_equal(st.retry_ms, 2500);
  free(pb);
  tt__buf_free(&r.body);
}

static void invalid_and_unavailable_should_map_to_400_and_503(void **state) {
  fixture_t *f = *state;
  size_t len;
  uint8_t *pb = sample_request("u", &len);
  http_resp_t r = {0};
  f->rec.answer.status = TT_EXPORT_INVALID;
  snprintf(f->rec.answer.message, sizeof f->rec.answer.message, "no spans");
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 400);
  rpc_status_t st;
  assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
  assert_string_equal(st.message, "no spans");
  f->rec.answer.status = TT_EXPORT_UNAVAILABLE;
  f->rec.answer.retry_after_ms = 1000;
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 503);
  char ra[16];
  assert_true(resp_header(&r, "Retry-After", ra, sizeof ra));
  assert_string_equal(ra, "1");
  assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
  assert_int_equal(st.code, 14);
  /* A request that can never fit: 413, and no Retry-After, so the client does not retry. */
  f->rec.answer.status = TT_EXPORT_TOO_LARGE;
  f->rec.answer.retry_after_ms = 0;
  snprintf(f->rec.answer.message, sizeof f->rec.answer.message, "more than memory.budget");
  assert_int_equal(http_post(f->port, "/v1/traces", "application/x-protobuf", NULL, pb, len, &r),
                   0);
  assert_int_equal(r.status, 413);
  assert_false(resp_header(&r, "Retry-After", ra, sizeof ra));
  assert_int_equal(parse_rpc_status(r.body.data, r.body.len, &st), 0);
  assert_int_equal(st.code, 8);
  assert_string_equal(st.message, "more than memory.budget");
  free(pb);
  tt__buf_free(&r.body);
}

static void huge_headers_should_answer_431_and_close(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  tt_buf_t req = TT_BUF_INIT;
  tt__buf_append_str(&req, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Big: ");
  for (int i = 0; i < 20000; i++)
    tt__buf_append(&req, "a", 1);
  tt__buf_append_str(&req, "\r\n\r\n");
  send_all(fd, req.data, req.len); /* may fail half way once the server closes */
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 431);
  close(fd);
  tt__buf_free(&req);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void garbage_request_line_should_answer_400(void **state) {
  fixture_t *f = *state;
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  const char *junk = "HELLO\x01 world\r\n\r\n";
  assert_int_equal(send_all(fd, junk, strlen(junk)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 400);
  assert_true(r.closed);
  close(fd);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void idle_connection_should_be_closed_by_the_server(void **state) {
  (void)state;
  fixture_t *f = start(0, 100);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  /* Half a request, then silence: the server must drop us. recv() has a 10 s guard; EOF (0) is
   * what we expect, well before that. */
  const char *half = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n";
  assert_int_equal(send_all(fd, half, strlen(half)), 0);
  char buf[16];
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  stop(f);
}

static void trickled_headers_should_not_keep_the_connection_open(void **state) {
  (void)state;
  fixture_t *f = start(0, 300);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  /* One header byte every 50 ms, each well inside the idle period: the server must still close
   * the connection because the header block as a whole takes too long. Bounded at 400 bytes
   * (20 s) so a broken server fails the test rather than hanging it. */
  const char *start_line = "POST /v1/traces HTTP/1.1\r\nX-Slow: ";
  assert_int_equal(send_all(fd, start_line, strlen(start_line)), 0);
  bool closed = false;
  for (int i = 0; i < 400 && !closed; i++) {
    if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 50) > 0) {
      char buf[16];
      closed = recv(fd, buf, sizeof buf, 0) <= 0;
    }
  }
  assert_true(closed);
  close(fd);
  stop(f);
}

static void stop_should_close_open_keep_alive_connections(void **state) {
  (void)state;
  fixture_t *f = start(0, 0);
  int fd = connect_local(f->port);
  assert_true(fd >= 0);
  size_t len;
  uint8_t *pb = sample_request("s", &len);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  char h[256];
  int n = snprintf(h, sizeof h,
                   "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                   "Content-Length: %zu\r\n\r\n",
                   len);
  assert_int_equal(send_all(fd, h, (size_t)n), 0);
  assert_int_equal(send_all(fd, pb, len), 0);
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  stop(f); /* must not hang on the idle keep-alive connection */
  char buf[16];
  assert_int_equal(recv(fd, buf, sizeof buf, 0), 0);
  close(fd);
  free(pb);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

typedef struct {
  int port;
  uint8_t *pb;
  size_t len;
  http_resp_t r;
  int rc;
} bg_post_t;

static void *bg_post(void *arg) {
  bg_post_t *b = arg;
  b->rc = http_post(b->port, "/v1/traces", "application/x-protobuf", NULL, b->pb, b->len, &b->r);
  return NULL;
}

static void stop_should_let_a_request_in_flight_finish(void **state) {
  (void)state;
  fixture_t *f = start(0, 0);
  pthread_mutex_lock(&f->rec.mu);
  f->rec.delay_ms = 300;
  pthread_mutex_unlock(&f->rec.mu);
  bg_post_t b = {.port = f->port};
  b.pb = sample_request("in-flight", &b.len);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, bg_post, &b), 0);
  recorder_wait_entered(&f->rec);
  stop(f); /* while the handler is still running */
  pthread_join(th, NULL);
  assert_int_equal(b.rc, 0);
  assert_int_equal(b.r.status, 200);
  free(b.pb);
  tt__buf_free(&b.r.body);
}

typedef struct {
  int port;
  int ok;
} load_t;

/* One client: 4 connections in turn, 10 keep-alive requests on each. */
static void *load_client(void *arg) {
  load_t *l = arg;
  size_t len;
  uint8_t *pb = sample_request("load", &len);
  tt_buf_t req = TT_BUF_INIT, pending = TT_BUF_INIT;
  tt__buf_appendf(&req,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  len);
  tt__buf_append(&req, pb, len);
  http_resp_t r = {0};
  for (int c = 0; c < 4; c++) {
    int fd = connect_local(l->port);
    if (fd < 0)
      continue;
    tt__buf_reset(&pending);
    for (int i = 0; i < 10; i++) {
      if (send_all(fd, req.data, req.len) != 0 || read_response(fd, &pending, &r) != 0)
        break;
      l->ok += r.status == 200;
    }
    close(fd);
  }
  free(pb);
  tt__buf_free(&req);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  return NULL;
}

static void concurrent_clients_should_all_be_served(void **state) {
  fixture_t *f = *state;
  enum { CLIENTS = 8 };
  pthread_t th[CLIENTS];
  load_t l[CLIENTS];
  for (int i = 0; i < CLIENTS; i++) {
    l[i] = (load_t){.port = f->port};
    assert_int_equal(pthread_create(&th[i], NULL, load_client, &l[i]), 0);
  }
  int ok = 0;
  for (int i = 0; i < CLIENTS; i++) {
    pthread_join(th[i], NULL);
    ok += l[i].ok;
  }
  assert_int_equal(ok, CLIENTS * 40);
  assert_int_equal(recorder_calls(&f->rec), CLIENTS * 40);
}

static void start_should_fail_on_a_port_in_use(void **state) {
  fixture_t *f = *state;
  recorder_t rec;
  recorder_init(&rec);
  tt_http_receiver_opts_t o = {.port = f->port, .handler = recorder_handler, .ctx = &rec};
  tt_http_receiver_t *r2 = NULL;
  assert_int_equal(tt__http_receiver_start(&o, &r2), -EADDRINUSE);
  assert_null(r2);
  recorder_free(&rec);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(protobuf_post_should_reach_handler_and_answer_200),
      T(partial_success_should_be_encoded_in_the_response),
      T(malformed_protobuf_should_answer_400_with_rpc_status),
      T(varint_past_64_bits_should_answer_400_and_keep_what_was_accepted),
      T(negative_int64_attribute_should_be_accepted_unchanged),
      T(unknown_content_type_should_answer_415),
      T(protobuf_with_charset_parameter_should_be_accepted),
      T(wrong_path_should_answer_404_and_wrong_method_405),
      T(oversized_content_length_should_answer_413_before_the_body),
      T(oversized_chunked_body_should_answer_413_and_close),
      T(chunked_body_without_content_length_should_be_accepted),
      T(gzip_body_should_be_inflated_before_the_handler),
      T(gzip_bomb_should_answer_413_on_inflated_size),
      T(corrupt_gzip_should_answer_400),
      T(keep_alive_should_serve_several_requests_on_one_connection),
      T(pipelined_requests_should_be_answered_in_order),
      T(expect_continue_should_get_100_then_the_answer),
      T(throttled_should_answer_429_with_retry_after_and_retry_info),
      T(invalid_and_unavailable_should_map_to_400_and_503),
      T(huge_headers_should_answer_431_and_close),
      T(garbage_request_line_should_answer_400),
      T(concurrent_clients_should_all_be_served),
      T(start_should_fail_on_a_port_in_use),
      cmocka_unit_test(idle_connection_should_be_closed_by_the_server),
      cmocka_unit_test(trickled_headers_should_not_keep_the_connection_open),
      cmocka_unit_test(stop_should_close_open_keep_alive_connections),
      cmocka_unit_test(stop_should_let_a_request_in_flight_finish),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
