/* Connections to the bus's store nodes: see bus_conn.h.
 *
 * One code path for plain TCP and TLS: every operation tries, and on "would block" (EAGAIN, or
 * OpenSSL's WANT_READ / WANT_WRITE, which a TLS read may answer with WANT_WRITE and a write with
 * WANT_READ) polls for the direction asked for, for what is left until the deadline. OpenSSL's
 * error queue is per thread; it is cleared before each call so that SSL_get_error describes that
 * call and nothing older. */
#include "bus_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tt_bus_tls_s {
  SSL_CTX *ctx;
  char *server_name; /* NULL: each node's host */
  bool insecure;
};

struct tt_bus_conn_s {
  int fd;
  SSL *ssl;    /* NULL on plain TCP */
  bool broken; /* an error happened: no close_notify on close */
  char err[160];
};

uint64_t tt__bus_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Messages end up in JSON log lines: anything that could end or escape the string goes. */
static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...) {
  if (errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  for (char *c = err; *c != '\0'; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e || *c == '"' || *c == '\\')
      *c = '?';
}

/* The oldest queued OpenSSL error, or fallback when the queue is empty. */
static const char *ssl_reason(char *buf, size_t cap, const char *fallback) {
  unsigned long e = ERR_get_error();
  if (e == 0)
    return fallback;
  ERR_error_string_n(e, buf, cap);
  ERR_clear_error();
  return buf;
}

/* ---- TLS settings ------------------------------------------------------------------------ */

void tt__bus_tls_free(tt_bus_tls_t *t) {
  if (t == NULL)
    return;
  SSL_CTX_free(t->ctx);
  free(t->server_name);
  free(t);
}

static bool set(const char *s) {
  return s != NULL && s[0] != '\0';
}

int tt__bus_tls_new(const tt_bus_tls_opts_t *o, tt_bus_tls_t **out, char *err, size_t errlen) {
  *out = NULL;
  if (set(o->cert_file) != set(o->key_file)) {
    say(err, errlen, "%s",
        set(o->cert_file) ? "a client certificate needs its key file"
                          : "a client key needs its certificate file");
    return -EINVAL;
  }
  tt_bus_tls_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  t->insecure = o->insecure;
  if (set(o->server_name) && (t->server_name = strdup(o->server_name)) == NULL) {
    tt__bus_tls_free(t);
    return -ENOMEM;
  }
  ERR_clear_error();
  t->ctx = SSL_CTX_new(TLS_client_method());
  if (t->ctx == NULL) {
    tt__bus_tls_free(t);
    return -ENOMEM;
  }
  /* Redis 6+ speaks TLS 1.2 and 1.3; nothing older is worth accepting. */
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  /* Partial writes and a moving buffer let a TLS write resume like a plain one after
   * WANT_WRITE. */
  SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  char why[160];
  int rc = 0;
  /* The CA file is loaded even when insecure, so that a wrong path is reported the same way. */
  if (set(o->ca_file) ? SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1
                      : !o->insecure && SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
    say(err, errlen, "CA file %s: %s", set(o->ca_file) ? o->ca_file : "(system)",
        ssl_reason(why, sizeof why, "cannot load"));
    rc = -EINVAL;
  } else if (set(o->cert_file) && SSL_CTX_use_certificate_chain_file(t->ctx, o->cert_file) != 1) {
    say(err, errlen, "certificate file %s: %s", o->cert_file,
        ssl_reason(why, sizeof why, "cannot load"));
    rc = -EINVAL;
  } else if (set(o->key_file) &&
             SSL_CTX_use_PrivateKey_file(t->ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
    say(err, errlen, "key file %s: %s", o->key_file, ssl_reason(why, sizeof why, "cannot load"));
    rc = -EINVAL;
  } else if (set(o->key_file) && SSL_CTX_check_private_key(t->ctx) != 1) {
    say(err, errlen, "key file %s does not match certificate file %s", o->key_file, o->cert_file);
    rc = -EINVAL;
  }
  ERR_clear_error();
  if (rc < 0) {
    tt__bus_tls_free(t);
    return rc;
  }
  SSL_CTX_set_verify(t->ctx, o->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  *out = t;
  return 0;
}

/* ---- Waiting ----------------------------------------------------------------------------- */

/* Waits until fd is ready for events or the deadline passes. 0 (ready, or an error condition the
 * next call will report) or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline) {
  for (;;) {
    uint64_t now = tt__bus_now_ns();
    if (now >= deadline)
      return -ETIMEDOUT;
    /* Rounded up: a wait rounded down to 0 ms would spin until the deadline. */
    uint64_t ms = (deadline - now + 999999) / 1000000;
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
    if (n > 0)
      return 0;
    if (n < 0 && errno != EINTR)
      return -ENOTCONN;
  }
}

/* ---- Connect ----------------------------------------------------------------------------- */

static int connect_one(const struct addrinfo *ai, uint64_t deadline, int *out, char *err,
                       size_t errlen, const char *host, int port) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    say(err, errlen, "socket: %s", strerror(errno));
    return -ENOTCONN;
  }
  int rc = 0;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      say(err, errlen, "connect %s:%d: %s", host, port, strerror(errno));
      rc = -ENOTCONN;
    } else if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0) {
      say(err, errlen, "connect %s:%d: %s", host, port,
          rc == -ETIMEDOUT ? "timed out" : strerror(errno));
    } else {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        soerr = errno;
      if (soerr != 0) {
        say(err, errlen, "connect %s:%d: %s", host, port, strerror(soerr));
        rc = -ENOTCONN;
      }
    }
  }
  if (rc < 0) {
    close(fd);
    return rc;
  }
  /* Pipelined batches are written whole and answered whole: Nagle would only add a delay. */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  *out = fd;
  return 0;
}

static bool is_ip_literal(const char *s) {
  unsigned char a[16];
  return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int handshake(tt_bus_conn_t *c, const tt_bus_tls_t *t, const char *host, uint64_t deadline,
                     char *err, size_t errlen) {
  ERR_clear_error();
  c->ssl = SSL_new(t->ctx);
  if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    say(err, errlen, "TLS: out of memory");
    return -ENOMEM;
  }
  const char *name = t->server_name != NULL ? t->server_name : host;
  bool ip = is_ip_literal(name);
  /* SNI carries host names only (RFC 6066); an address is checked against the certificate's IP
   * subjectAltName instead. */
  if (!ip && SSL_set_tlsext_host_name(c->ssl, name) != 1) {
    say(err, errlen, "TLS: bad server name %s", name);
    return -ENOTCONN;
  }
  if (!t->insecure) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok =
        ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) : X509_VERIFY_PARAM_set1_host(vp, name, 0);
    if (ok != 1) {
      say(err, errlen, "TLS: bad server name %s", name);
      return -ENOTCONN;
    }
  }
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(c->ssl);
    if (r == 1)
      return 0;
    int e = SSL_get_error(c->ssl, r);
    int rc;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      rc = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
      if (rc == 0)
        continue;
      say(err, errlen, "TLS handshake with %s: timed out", name);
      return rc;
    }
    long v = SSL_get_verify_result(c->ssl);
    char why[160];
    if (v != X509_V_OK)
      say(err, errlen, "TLS handshake with %s: certificate verify failed: %s", name,
          X509_verify_cert_error_string(v));
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
      say(err, errlen, "TLS handshake with %s: %s", name,
          r == 0 || errno == 0 ? "connection closed by the server" : strerror(errno));
    else
      say(err, errlen, "TLS handshake with %s: %s", name, ssl_reason(why, sizeof why, "failed"));
    ERR_clear_error();
    return -ENOTCONN;
  }
}

int tt__bus_conn_open(const char *host, int port, const tt_bus_tls_t *tls, uint64_t deadline_ns,
                      tt_bus_conn_t **out, char *err, size_t errlen) {
  *out = NULL;
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  int g = getaddrinfo(host, service, &hints, &res);
  if (g != 0) {
    say(err, errlen, "resolve %s: %s", host, g == EAI_SYSTEM ? strerror(errno) : gai_strerror(g));
    return -ENOTCONN;
  }
  int fd = -1, rc = -ENOTCONN;
  for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
    rc = connect_one(ai, deadline_ns, &fd, err, errlen, host, port);
    if (rc == -ETIMEDOUT)
      break;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return rc;
  tt_bus_conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    close(fd);
    say(err, errlen, "out of memory");
    return -ENOMEM;
  }
  c->fd = fd;
  if (tls != NULL && (rc = handshake(c, tls, host, deadline_ns, err, errlen)) < 0) {
    c->broken = true;
    tt__bus_conn_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* ---- I/O --------------------------------------------------------------------------------- */

static int fail(tt_bus_conn_t *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(tt_bus_conn_t *c, int rc, const char *fmt, ...) {
  char msg[sizeof c->err];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  say(c->err, sizeof c->err, "%s", msg);
  c->broken = true;
  return rc;
}

/* After an OpenSSL call failed with e: 0 when it only has to wait (done here) and be retried,
 * else the connection's error. */
static int ssl_wait(tt_bus_conn_t *c, int r, uint64_t deadline, const char *what) {
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    int rc = wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    return rc == 0 ? 0 : fail(c, rc, "%s: timed out", what);
  }
  if (e == SSL_ERROR_ZERO_RETURN)
    return fail(c, -ENOTCONN, "%s: connection closed by the server", what);
  char why[160];
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    return fail(c, -ENOTCONN, "%s: %s", what,
                errno == 0 ? "connection closed by the server" : strerror(errno));
  return fail(c, -ENOTCONN, "%s: %s", what, ssl_reason(why, sizeof why, "TLS error"));
}

int tt__bus_conn_write(tt_bus_conn_t *c, const void *buf, size_t len, uint64_t deadline_ns) {
  const char *p = buf;
  while (len > 0) {
    if (c->ssl != NULL) {
      size_t n = 0;
      ERR_clear_error();
      errno = 0;
      int r = SSL_write_ex(c->ssl, p, len, &n);
      if (r == 1) {
        p += n;
        len -= n;
        continue;
      }
      int rc = ssl_wait(c, r, deadline_ns, "write");
      if (rc < 0)
        return rc;
      continue;
    }
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int rc = wait_fd(c->fd, POLLOUT, deadline_ns);
      if (rc < 0)
        return fail(c, rc, "write: timed out");
    } else if (n < 0 && errno != EINTR) {
      return fail(c, -ENOTCONN, "write: %s", strerror(errno));
    }
  }
  return 0;
}

long tt__bus_conn_read(tt_bus_conn_t *c, void *buf, size_t cap, uint64_t deadline_ns) {
  for (;;) {
    if (c->ssl != NULL) {
      size_t n = 0;
      ERR_clear_error();
      errno = 0;
      int r = SSL_read_ex(c->ssl, buf, cap, &n);
      if (r == 1)
        return (long)n;
      int rc = ssl_wait(c, r, deadline_ns, "read");
      if (rc < 0)
        return rc;
      continue;
    }
    ssize_t n = recv(c->fd, buf, cap, 0);
    if (n > 0)
      return (long)n;
    if (n == 0)
      return fail(c, -ENOTCONN, "read: connection closed by the server");
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int rc = wait_fd(c->fd, POLLIN, deadline_ns);
      if (rc < 0)
        return fail(c, rc, "read: timed out");
    } else if (errno != EINTR) {
      return fail(c, -ENOTCONN, "read: %s", strerror(errno));
    }
  }
}

const char *tt__bus_conn_error(const tt_bus_conn_t *c) {
  return c->err;
}

void tt__bus_conn_close(tt_bus_conn_t *c) {
  if (c == NULL)
    return;
  if (c->ssl != NULL) {
    /* One close_notify, not waiting for the peer's: the socket closes right after. */
    if (!c->broken) {
      ERR_clear_error();
      SSL_shutdown(c->ssl);
    }
    SSL_free(c->ssl);
    ERR_clear_error();
  }
  close(c->fd);
  free(c);
}
