/* The generic HTTP server under the receivers and the admin port (collector/receive/http_server.c):
 * what routes see, HEAD, connection limits, and the socket-less session fed byte by byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http_server.h"
#include "test_recv_util.h"

typedef struct {
  pthread_mutex_t mu;
  char method[16], path[64], query[64], ctype[64], ua[64];
  tt_buf_t body;
  int calls;
} seen_t;

/* Echo route: remembers the request and answers "<method> <path> <body length>". */
static void echo_route(void *ctx, const tt_http_request_t *req, tt_http_response_t *res) {
  seen_t *s = ctx;
  pthread_mutex_lock(&s->mu);
  s->calls++;
  snprintf(s->method, sizeof s->method, "%s", req->method);
  snprintf(s->path, sizeof s->path, "%s", req->path);
  snprintf(s->query, sizeof s->query, "%s", req->query ? req->query : "(null)");
  snprintf(s->ctype, sizeof s->ctype, "%s", req->content_type ? req->content_type : "(null)");
  snprintf(s->ua, sizeof s->ua, "%s", req->user_agent ? req->user_agent : "(null)");
  tt__buf_reset(&s->body);
  tt__buf_append(&s->body, req->body, req->body_len);
  pthread_mutex_unlock(&s->mu);
  res->status = strcmp(req->path, "/missing") == 0 ? 404 : 200;
  res->content_type = "text/plain";
  tt__buf_appendf(&res->body, "%s %s %zu", req->method, req->path, req->body_len);
}

static void route_should_see_method_path_query_and_headers(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s, .name = "t"};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int fd = connect_local(tt__http_server_port(srv));
  const char *req = "PUT /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nUser-Agent: OTel-JS/2.0\r\n"
                    "content-type:   application/json  \r\nContent-Length: 3\r\n\r\nabc";
  assert_int_equal(send_all(fd, req, strlen(req)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  tt__buf_append(&r.body, "", 1);
  assert_string_equal((char *)r.body.data, "PUT /a/b 3");
  pthread_mutex_lock(&s.mu);
  assert_string_equal(s.method, "PUT");
  assert_string_equal(s.path, "/a/b");
  assert_string_equal(s.query, "x=1&y=2");
  assert_string_equal(s.ctype, "application/json");
  assert_string_equal(s.ua, "OTel-JS/2.0");
  assert_int_equal(s.body.len, 3);
  pthread_mutex_unlock(&s.mu);
  close(fd);
  tt__http_server_stop(srv);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  tt__buf_free(&s.body);
}

static void head_should_get_headers_without_a_body_on_a_kept_connection(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int fd = connect_local(tt__http_server_port(srv));
  /* HEAD then GET on one connection: if the HEAD answer carried a body, the client would read
   * it as the start of the second response. */
  const char *req =
      "HEAD /healthz HTTP/1.1\r\nHost: h\r\n\r\nGET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  assert_int_equal(send_all(fd, req, strlen(req)), 0);
  char buf[512];
  size_t got = 0;
  /* Read until both header blocks and the GET body ("GET /healthz 0", 14 bytes) are in. */
  while (got < sizeof buf - 1) {
    ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    assert_true(n > 0);
    got += (size_t)n;
    buf[got] = '\0';
    char *second = strstr(buf + 1, "HTTP/1.1 200");
    if (second != NULL && strstr(second, "GET /healthz 0") != NULL)
      break;
  }
  char *first_end = strstr(buf, "\r\n\r\n");
  assert_non_null(first_end);
  assert_memory_equal(first_end + 4, "HTTP/1.1 200", 12); /* no body after the HEAD headers */
  assert_non_null(strstr(buf, "Content-Length: 15\r\n")); /* HEAD still says what GET would send */
  close(fd);
  tt__http_server_stop(srv);
  tt__buf_free(&s.body);
}

static void connections_over_the_limit_should_be_closed_at_once(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s, .max_connections = 2};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  int a = connect_local(port), b = connect_local(port);
  /* Make sure both are accepted before the third arrives. */
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  const char *get = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
  assert_int_equal(send_all(a, get, strlen(get)), 0);
  assert_int_equal(read_response(a, &pending, &r), 0);
  assert_int_equal(send_all(b, get, strlen(get)), 0);
  assert_int_equal(read_response(b, &pending, &r), 0);
  int c = connect_local(port);
  char buf[16];
  assert_int_equal(recv(c, buf, sizeof buf, 0), 0); /* closed without an answer */
  close(c);
  close(a);
  close(b);
  tt__http_server_stop(srv);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  tt__buf_free(&s.body);
}

static void session_fed_one_byte_at_a_time_should_parse_like_one_read(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s};
  const char *stream =
      "POST /v1/traces HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
      "GET /missing HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /last HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nConnection: close\r\n"
      "\r\nhi";
  tt_buf_t whole = TT_BUF_INIT, bytewise = TT_BUF_INIT;
  tt_http_session_t *ss = tt__http_session_new(&o);
  assert_int_equal(tt__http_session_feed(ss, (const uint8_t *)stream, strlen(stream), &whole), 1);
  tt__http_session_free(ss);
  ss = tt__http_session_new(&o);
  int verdict = 0;
  for (size_t i = 0; i < strlen(stream); i++) {
    verdict = tt__http_session_feed(ss, (const uint8_t *)stream + i, 1, &bytewise);
    assert_int_equal(verdict, i + 1 == strlen(stream) ? 1 : 0);
  }
  tt__http_session_free(ss);
  assert_int_equal(whole.len, bytewise.len);
  assert_memory_equal(whole.data, bytewise.data, whole.len);
  tt__buf_append(&whole, "", 1);
  assert_non_null(strstr((char *)whole.data, "POST /v1/traces 7"));
  assert_non_null(strstr((char *)whole.data, "HTTP/1.1 404"));
  assert_non_null(strstr((char *)whole.data, "POST /last 2"));
  assert_non_null(strstr((char *)whole.data, "Connection: close"));
  assert_int_equal(s.calls, 6);
  tt__buf_free(&whole);
  tt__buf_free(&bytewise);
  tt__buf_free(&s.body);
}

static void session_should_ignore_input_after_it_decided_to_close(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s, .max_body_bytes = 4};
  tt_http_session_t *ss = tt__http_session_new(&o);
  tt_buf_t out = TT_BUF_INIT;
  const char *big = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
  assert_int_equal(tt__http_session_feed(ss, (const uint8_t *)big, strlen(big), &out), 1);
  tt__buf_append(&out, "", 1);
  assert_non_null(strstr((char *)out.data, "HTTP/1.1 413"));
  tt__buf_reset(&out);
  const char *more = "GET / HTTP/1.1\r\n\r\n";
  assert_int_equal(tt__http_session_feed(ss, (const uint8_t *)more, strlen(more), &out), 1);
  assert_int_equal(out.len, 0);
  assert_int_equal(s.calls, 0);
  tt__http_session_free(ss);
  tt__buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(route_should_see_method_path_query_and_headers),
      cmocka_unit_test(head_should_get_headers_without_a_body_on_a_kept_connection),
      cmocka_unit_test(connections_over_the_limit_should_be_closed_at_once),
      cmocka_unit_test(session_fed_one_byte_at_a_time_should_parse_like_one_read),
      cmocka_unit_test(session_should_ignore_input_after_it_decided_to_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
