/* A very small HTTP/1.1 server and client on libuv and http-parser, shared by the example
 * services so that each service's file holds only what it does and how it is traced. One request
 * per connection (Connection: close), single-threaded on the service's loop. No tracing here:
 * the request's headers arrive in a tt_headers_t, and the client sends the tt_headers_t it is
 * given, so the services do all of the propagation themselves. */
#ifndef EXAMPLES_HTTP_H
#define EXAMPLES_HTTP_H

#include <stddef.h>
#include <tailtrace.h>
#include <uv.h>

#define EX_MAX_HEADERS 32
#define EX_HEADER_STORE 16384

typedef struct ex_request_s {
  char method[16];
  char target[1024]; /* path and query, as sent */
  /* The request's headers: the carrier a server extracts from. */
  tt_headers_t headers;
  void *arg; /* the handler's argument given to ex_serve */
  /* The rest is the server's own. */
  tt_header_t header_items[EX_MAX_HEADERS];
  char header_store[EX_HEADER_STORE];
} ex_request_t;

/* Called once per complete request; answer it (now or later, from the loop) with ex_respond. */
typedef void (*ex_handler_fn)(ex_request_t *req);

/* Listens on addr ("127.0.0.1:8080") and serves every request with handler. 0 or a libuv error
 * (negative). */
int ex_serve(uv_loop_t *loop, const char *addr, ex_handler_fn handler, void *arg);

/* Sends the response (status, the given headers, which may be NULL, and body) and closes the
 * connection; req is freed afterwards. Exactly once per request. */
void ex_respond(ex_request_t *req, int status, const tt_headers_t *headers, const char *body);

/* Called with the response's status code, or a negative libuv/http-parser error. */
typedef void (*ex_response_fn)(int status, void *arg);

/* GET http://addr/target with the given headers (copied before it returns). The callback runs
 * exactly once, on the loop; a request not answered within timeout_ms fails with UV_ETIMEDOUT. */
int ex_get(uv_loop_t *loop, const char *addr, const char *target, const tt_headers_t *headers,
           unsigned timeout_ms, ex_response_fn cb, void *arg);

/* The value of query parameter key in target ("/checkout?fail=1" -> "1") into out, or -1. */
int ex_query_param(const char *target, const char *key, char *out, size_t cap);

/* Parses "host:port" (IPv4) into a socket address. 0 or a libuv error. */
int ex_parse_addr(const char *addr, struct sockaddr_in *out);

#endif
