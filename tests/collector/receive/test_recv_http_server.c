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

/* Waits (bounded) until the server has `n` connections open, so the next connect is known to
 * come after them. */
static void wait_connections(tt_http_server_t *srv, uint64_t n) {
  tt_http_server_stats_t st;
  for (int i = 0; i < 500; i++) {
    tt__http_server_stats(srv, &st);
    if (st.connections == n)
      return;
    usleep(10000);
  }
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.connections, n);
}

/* True when the server closed fd (EOF or reset) within the socket's 10 s receive timeout. */
static bool closed_by_server(int fd) {
  char buf[256];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
  }
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static int connect_from(const char *src, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in b = {.sin_family = AF_INET};
  inet_pton(AF_INET, src, &b.sin_addr);
  assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof b), 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void get_ok(int fd) {
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  const char *get = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
  assert_int_equal(send_all(fd, get, strlen(get)), 0);
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
}

static void at_the_cap_a_new_connection_should_close_the_longest_idle_one(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  /* Timeouts far beyond the test: only eviction can close anything here. */
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .max_connections = 2,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 60000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  int a = connect_local(port);
  get_ok(a); /* a: idle between requests */
  int b = connect_local(port);
  const char *part = "GET /y HTTP/1.1\r\nHo";
  assert_int_equal(send_all(b, part, strlen(part)), 0); /* b: in its headers */
  wait_connections(srv, 2);
  /* The third client gets in: the idle a makes room, the half-sent b is left alone. */
  int c = connect_local(port);
  get_ok(c);
  assert_true(closed_by_server(a));
  const char *rest = "st: h\r\n\r\n";
  assert_int_equal(send_all(b, rest, strlen(rest)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(b, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  tt_http_server_stats_t st;
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.evicted, 1);
  assert_int_equal(st.refused_limit, 0);
  close(a);
  close(b);
  close(c);
  tt__http_server_stop(srv);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  tt__buf_free(&s.body);
}

static void at_the_cap_with_every_body_in_flight_a_new_connection_should_be_closed(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .max_connections = 2,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 60000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  const char *head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc";
  int a = connect_local(port), b = connect_local(port);
  assert_int_equal(send_all(a, head, strlen(head)), 0);
  assert_int_equal(send_all(b, head, strlen(head)), 0);
  wait_connections(srv, 2);
  /* Bodies being received are never evicted; the newcomer is closed at once (well inside the
   * 60 s timeouts and the client's 10 s receive guard). */
  int c = connect_local(port);
  assert_true(closed_by_server(c));
  tt_http_server_stats_t st;
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.refused_limit, 1);
  assert_int_equal(st.evicted, 0);
  /* a finishes its request undisturbed. */
  assert_int_equal(send_all(a, "defghij", 7), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(a, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  close(a);
  close(b);
  close(c);
  tt__http_server_stop(srv);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  tt__buf_free(&s.body);
}

static void an_address_over_its_cap_should_be_refused_while_others_get_in(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .max_connections = 8,
                             .max_connections_per_ip = 2,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 60000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  int a1 = connect_from("127.0.0.2", port), a2 = connect_from("127.0.0.2", port);
  wait_connections(srv, 2);
  int a3 = connect_from("127.0.0.2", port);
  assert_true(closed_by_server(a3));
  int other = connect_from("127.0.0.3", port);
  get_ok(other);
  get_ok(a1);
  tt_http_server_stats_t st;
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.refused_per_ip, 1);
  assert_int_equal(st.connections, 3);
  /* A closed connection gives its address's slot back. */
  close(a2);
  wait_connections(srv, 2);
  int a4 = connect_from("127.0.0.2", port);
  get_ok(a4);
  close(a1);
  close(a3);
  close(a4);
  close(other);
  tt__http_server_stop(srv);
  tt__buf_free(&s.body);
}

/* Sends `n` body bytes one at a time every `gap_ms`; returns how many went out before the server
 * closed the connection. */
static int trickle_body(int fd, int n, int gap_ms) {
  for (int i = 0; i < n; i++) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, gap_ms) > 0) {
      char buf[256];
      if (recv(fd, buf, sizeof buf, 0) <= 0)
        return i;
    }
    if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
      return i;
  }
  return n;
}

static void a_body_below_the_minimum_rate_should_be_cut_off(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  /* 300 ms for the headers and as much again for a body, plus 1 s per 1000 bytes. */
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 300,
                             .min_body_rate = 1000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  int fd = connect_local(port);
  const char *head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 400\r\n\r\n";
  assert_int_equal(send_all(fd, head, strlen(head)), 0);
  /* One byte every 50 ms is 20 bytes/s, each byte well inside 300 ms of the previous one: a
   * timer that any byte renewed would never fire. Bounded at 400 bytes (20 s). */
  int sent = trickle_body(fd, 400, 50);
  assert_true(sent < 400);
  tt_http_server_stats_t st;
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.timeout_body, 1);
  assert_int_equal(s.calls, 0);
  close(fd);
  tt__http_server_stop(srv);
  tt__buf_free(&s.body);
}

static void a_slow_body_above_the_minimum_rate_should_be_served(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 300,
                             .min_body_rate = 1000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int fd = connect_local(tt__http_server_port(srv));
  /* 8 x 500 bytes, 100 ms apart: 800 ms in all, beyond the 300 ms base, but 5000 bytes/s keeps
   * extending the deadline (300 ms + 1 s per 1000 bytes). */
  const char *head = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 4000\r\n\r\n";
  assert_int_equal(send_all(fd, head, strlen(head)), 0);
  char chunk[500];
  memset(chunk, 'y', sizeof chunk);
  for (int i = 0; i < 8; i++) {
    usleep(100000);
    assert_int_equal(send_all(fd, chunk, sizeof chunk), 0);
  }
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(fd, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  tt__buf_append(&r.body, "", 1);
  assert_string_equal((char *)r.body.data, "POST /x 4000");
  close(fd);
  tt__http_server_stop(srv);
  tt__buf_free(&pending);
  tt__buf_free(&r.body);
  tt__buf_free(&s.body);
}

static void bodies_past_the_receive_budget_should_get_429_until_it_frees(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .receive_budget_bytes = 1000,
                             .idle_timeout_ms = 60000,
                             .header_timeout_ms = 60000};
  tt_http_server_t *srv;
  assert_int_equal(tt__http_server_start(&o, &srv), 0);
  int port = tt__http_server_port(srv);
  /* a declares 800 bytes and sends part: the budget holds all 800 for it. */
  int a = connect_local(port);
  const char *ha = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 800\r\n\r\nabc";
  assert_int_equal(send_all(a, ha, strlen(ha)), 0);
  wait_connections(srv, 1);
  for (int i = 0; i < 500; i++) { /* until a's headers are in */
    tt_http_server_stats_t st;
    tt__http_server_stats(srv, &st);
    if (st.receiving_bytes == 800)
      break;
    usleep(10000);
  }
  /* b's 400 bytes do not fit: 429 with Retry-After, before its body is read. */
  int b = connect_local(port);
  const char *hb = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 400\r\n\r\n";
  assert_int_equal(send_all(b, hb, strlen(hb)), 0);
  tt_buf_t pending = TT_BUF_INIT;
  http_resp_t r = {0};
  assert_int_equal(read_response(b, &pending, &r), 0);
  assert_int_equal(r.status, 429);
  char ra[16];
  assert_true(resp_header(&r, "Retry-After", ra, sizeof ra));
  close(b);
  /* A chunked body is charged as it arrives: 150 fit, 150 more do not. */
  int c = connect_local(port);
  const char *hc = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n";
  assert_int_equal(send_all(c, hc, strlen(hc)), 0);
  char body[150];
  memset(body, 'z', sizeof body);
  assert_int_equal(send_all(c, body, sizeof body), 0);
  assert_int_equal(send_all(c, "\r\n96\r\n", 6), 0);
  assert_int_equal(send_all(c, body, sizeof body), 0);
  tt__buf_reset(&pending);
  assert_int_equal(read_response(c, &pending, &r), 0);
  assert_int_equal(r.status, 429);
  close(c);
  /* Once a's request completes the budget is free again. */
  static char rest[797];
  memset(rest, 'q', sizeof rest);
  assert_int_equal(send_all(a, rest, sizeof rest), 0);
  tt__buf_reset(&pending);
  assert_int_equal(read_response(a, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  b = connect_local(port);
  static char full[400];
  memset(full, 'w', sizeof full);
  assert_int_equal(send_all(b, hb, strlen(hb)), 0);
  assert_int_equal(send_all(b, full, sizeof full), 0);
  tt__buf_reset(&pending);
  assert_int_equal(read_response(b, &pending, &r), 0);
  assert_int_equal(r.status, 200);
  tt_http_server_stats_t st;
  tt__http_server_stats(srv, &st);
  assert_int_equal(st.budget_refused, 2);
  assert_int_equal(st.receiving_bytes, 0);
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

/* The session's answer to `in` fed in one piece, NUL-terminated, and its verdict. */
static int answer(tt_http_server_opts_t *o, const void *in, size_t n, tt_buf_t *out) {
  tt_http_session_t *ss = tt__http_session_new(o);
  tt__http_session_set_peer_addr(ss, "192.0.2.7:4711");
  int verdict = tt__http_session_feed(ss, in, n, out);
  tt__http_session_free(ss);
  tt__buf_append(out, "", 1);
  return verdict;
}

static void http2_preface_should_get_505_naming_the_fix_counted_once(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_refusals_t r;
  memset(&r, 0, sizeof r);
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .refusals = &r,
                             .receiver = "otlp_http",
                             .h2_fix = "use port 4317"};
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  tt_buf_t out = TT_BUF_INIT;
  assert_int_equal(answer(&o, preface, sizeof preface - 1, &out), 1);
  assert_non_null(strstr((char *)out.data, "HTTP/1.1 505 HTTP Version Not Supported\r\n"));
  assert_non_null(strstr((char *)out.data, "Connection: close\r\n"));
  assert_non_null(strstr((char *)out.data, "Content-Type: application/json\r\n"));
  assert_non_null(strstr((char *)out.data, "\"code\":12"));
  assert_non_null(strstr((char *)out.data, "use port 4317"));
  /* Only the first bytes of the preface, as a client may send them. */
  tt__buf_reset(&out);
  assert_int_equal(answer(&o, preface, 6, &out), 1);
  assert_non_null(strstr((char *)out.data, "HTTP/1.1 505"));
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_HTTP2), 2);
  assert_int_equal(s.calls, 0);
  tt__buf_free(&out);
}

static void tls_client_hello_should_get_a_fatal_alert_and_no_http(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_refusals_t r;
  memset(&r, 0, sizeof r);
  tt_http_server_opts_t o = {.route = echo_route, .ctx = &s, .refusals = &r};
  static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc};
  tt_buf_t out = TT_BUF_INIT;
  assert_int_equal(answer(&o, hello, sizeof hello, &out), 1);
  static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28, 0x00};
  assert_int_equal(out.len, sizeof alert); /* with the NUL answer() added */
  assert_memory_equal(out.data, alert, sizeof alert);
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_TLS), 1);
  tt__buf_free(&out);
}

static void server_errors_should_be_rpc_status_in_the_request_encoding(void **state) {
  (void)state;
  seen_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
  tt_refusals_t r;
  memset(&r, 0, sizeof r);
  tt_http_server_opts_t o = {.route = echo_route,
                             .ctx = &s,
                             .refusals = &r,
                             .max_body_bytes = 4,
                             .body_size_key = "receivers.otlp_http.max_body_size"};
  /* JSON request: a JSON google.rpc.Status naming the limit and its key. */
  const char *json = "POST /v1/traces HTTP/1.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: 5\r\n\r\n";
  tt_buf_t out = TT_BUF_INIT;
  assert_int_equal(answer(&o, json, strlen(json), &out), 1);
  assert_non_null(strstr((char *)out.data, "HTTP/1.1 413"));
  assert_non_null(strstr((char *)out.data, "{\"code\":8,\"message\":\"request body larger than "
                                           "receivers.otlp_http.max_body_size (4 bytes)\"}"));
  /* Protobuf request: a protobuf google.rpc.Status {code: 8 (field 1), message (field 2)}. */
  const char *pb = "POST /v1/traces HTTP/1.1\r\nContent-Type: application/x-protobuf\r\n"
                   "Content-Length: 5\r\n\r\n";
  tt__buf_reset(&out);
  assert_int_equal(answer(&o, pb, strlen(pb), &out), 1);
  assert_non_null(strstr((char *)out.data, "Content-Type: application/x-protobuf\r\n"));
  const char *body = strstr((char *)out.data, "\r\n\r\n") + 4;
  assert_int_equal((uint8_t)body[0], 0x08);
  assert_int_equal((uint8_t)body[1], 8);
  assert_int_equal((uint8_t)body[2], 0x12);
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_BODY_TOO_LARGE), 2);
  /* Not HTTP at all. */
  tt__buf_reset(&out);
  assert_int_equal(answer(&o, "\x01\x02 hello\r\n\r\n", 11, &out), 1);
  assert_non_null(strstr((char *)out.data, "HTTP/1.1 400"));
  assert_int_equal(tt__refusal_count(&r, TT_REFUSE_BAD_HTTP), 1);
  tt__buf_free(&out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(route_should_see_method_path_query_and_headers),
      cmocka_unit_test(head_should_get_headers_without_a_body_on_a_kept_connection),
      cmocka_unit_test(at_the_cap_a_new_connection_should_close_the_longest_idle_one),
      cmocka_unit_test(at_the_cap_with_every_body_in_flight_a_new_connection_should_be_closed),
      cmocka_unit_test(an_address_over_its_cap_should_be_refused_while_others_get_in),
      cmocka_unit_test(a_body_below_the_minimum_rate_should_be_cut_off),
      cmocka_unit_test(a_slow_body_above_the_minimum_rate_should_be_served),
      cmocka_unit_test(bodies_past_the_receive_budget_should_get_429_until_it_frees),
      cmocka_unit_test(session_fed_one_byte_at_a_time_should_parse_like_one_read),
      cmocka_unit_test(session_should_ignore_input_after_it_decided_to_close),
      cmocka_unit_test(http2_preface_should_get_505_naming_the_fix_counted_once),
      cmocka_unit_test(tls_client_hello_should_get_a_fatal_alert_and_no_http),
      cmocka_unit_test(server_errors_should_be_rpc_status_in_the_request_encoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
