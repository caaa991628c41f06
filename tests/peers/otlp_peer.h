/* otlp_peer.h: test helper that runs tests/peers/otlp_receiver.py (a real OTLP/gRPC + OTLP/HTTP
 * receiver on Debian's /usr/bin/python3) as a child process and talks to its control endpoints
 * over HTTP with libcurl. Header-only (static functions) so any test can include it as
 * "peers/otlp_peer.h". A receiver that cannot start (python3-grpcio missing, protoc failing) makes
 * peer_start fail, and the tests assert on that: nothing is skipped silently. */
#ifndef TT_TEST_OTLP_PEER_H
#define TT_TEST_OTLP_PEER_H

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  pid_t pid;
  int stdin_fd; /* closing it makes the receiver exit */
  int grpc_port;
  int http_port;
  /* For a receiver started with --tls-*: how the control client trusts and authenticates to it
   * (empty: plain HTTP). */
  char ca[256], cert[256], key[256];
} tt_peer_t;

/* Starts the receiver; extra_args is NULL or one extra argument pair, e.g.
 * {"--require-header", "x-honeycomb-team=k", NULL}. Returns 0, or -1 after printing why. */
static __attribute__((unused)) int peer_start(tt_peer_t *p, const char *const *extra_args) {
  p->pid = 0; /* no receiver until one is running: peer_stop then does nothing */
  const char *src = getenv("TT_SOURCE_DIR");
  if (src == NULL) {
    fprintf(stderr, "peer_start: TT_SOURCE_DIR is not set (run through ctest)\n");
    return -1;
  }
  char script[1024], protos[1024];
  snprintf(script, sizeof script, "%s/tests/peers/otlp_receiver.py", src);
  snprintf(protos, sizeof protos, "%s/proto", src);
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0)
    return -1;
  const char *argv[16];
  int argc = 0;
  argv[argc++] = "/usr/bin/python3";
  argv[argc++] = script;
  argv[argc++] = "--proto-dir";
  argv[argc++] = protos;
  for (int i = 0; extra_args && extra_args[i] && argc < 14; i++)
    argv[argc++] = extra_args[i];
  argv[argc] = NULL;
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->ca[0] = p->cert[0] = p->key[0] = '\0';
  p->pid = pid;
  p->stdin_fd = in[1];
  char line[256];
  size_t len = 0;
  /* Generating the Python classes with protoc takes about a second; allow far more on a busy
   * machine, but never hang the test. */
  int64_t waited = 0;
  while (len < sizeof line - 1 && waited < 60000) {
    struct pollfd pfd = {out[0], POLLIN, 0};
    int r = poll(&pfd, 1, 100);
    if (r == 0) {
      waited += 100;
      continue;
    }
    ssize_t n = read(out[0], line + len, 1);
    if (n <= 0)
      break;
    if (line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  close(out[0]);
  if (sscanf(line, "READY grpc=%d http=%d", &p->grpc_port, &p->http_port) != 2) {
    fprintf(stderr, "peer_start: receiver did not become ready (got \"%s\")\n", line);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(p->stdin_fd);
    p->pid = 0; /* reaped: a later peer_stop must not signal a pid the system may reuse */
    return -1;
  }
  return 0;
}

static __attribute__((unused)) void peer_stop(tt_peer_t *p) {
  if (p->pid <= 0)
    return;
  close(p->stdin_fd);
  for (int i = 0; i < 50; i++) {
    if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
      p->pid = 0;
      return;
    }
    usleep(20000);
  }
  /* A handler still sleeping in a "hang" fault keeps the interpreter busy: end it. */
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  p->pid = 0;
}

typedef struct {
  char *buf;
  size_t len;
} peer_buf_t;

static __attribute__((unused)) size_t peer_write_cb(char *d, size_t s, size_t n, void *ud) {
  peer_buf_t *b = ud;
  char *nb = realloc(b->buf, b->len + s * n + 1);
  if (nb == NULL)
    return 0;
  b->buf = nb;
  memcpy(b->buf + b->len, d, s * n);
  b->len += s * n;
  b->buf[b->len] = '\0';
  return s * n;
}

/* GET (body NULL) or POST a control endpoint; returns the malloc'd response body or NULL. */
static char *peer_ctl(const tt_peer_t *p, const char *path, const char *body) {
  char url[256];
  snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", p->ca[0] ? "https" : "http", p->http_port, path);
  CURL *c = curl_easy_init();
  if (p->ca[0])
    curl_easy_setopt(c, CURLOPT_CAINFO, p->ca);
  if (p->cert[0]) {
    curl_easy_setopt(c, CURLOPT_SSLCERT, p->cert);
    curl_easy_setopt(c, CURLOPT_SSLKEY, p->key);
  }
  peer_buf_t b = {NULL, 0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, peer_write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  }
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK || status != 200) {
    fprintf(stderr, "peer_ctl %s: curl %d, HTTP %ld\n", path, (int)rc, status);
    free(b.buf);
    return NULL;
  }
  if (b.buf == NULL)
    b.buf = calloc(1, 1);
  return b.buf;
}

static __attribute__((unused)) int peer_fault(const tt_peer_t *p, const char *json) {
  char *r = peer_ctl(p, "/_control/fault", json);
  free(r);
  return r ? 0 : -1;
}

/* Reads one counter ("requests", "http", "grpc", "spans") from /_control/stats; -1 on error. */
static __attribute__((unused)) long peer_stat(const tt_peer_t *p, const char *name) {
  char *s = peer_ctl(p, "/_control/stats", NULL);
  if (s == NULL)
    return -1;
  char key[64];
  snprintf(key, sizeof key, "%s=", name);
  char *at = strstr(s, key);
  long v = at ? strtol(at + strlen(key), NULL, 10) : -1;
  free(s);
  return v;
}

/* Counts occurrences of needle in haystack. */
static __attribute__((unused)) int count_substr(const char *hay, const char *needle) {
  int n = 0;
  for (const char *at = hay; (at = strstr(at, needle)) != NULL; at += strlen(needle))
    n++;
  return n;
}

/* A local TCP port with nothing listening: bind an ephemeral port, read it back, close it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
static __attribute__((unused)) int closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

#endif /* TT_TEST_OTLP_PEER_H */
