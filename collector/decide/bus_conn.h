/* A connection to one store node for the decision bus: TCP, optionally TLS (OpenSSL), with every
 * wait bounded by a deadline on CLOCK_MONOTONIC. The socket is non-blocking; connect, the TLS
 * handshake, writes and reads wait in poll() for at most what is left until the deadline, so a
 * node that stops answering costs its caller the deadline and no more.
 *
 * Threading: a tt_bus_tls_t is built on one thread and may then be used (read-only) by
 * connections on another; a tt_bus_conn_t belongs to one thread (the bus thread). Neither blocks
 * signals itself: writes on plain TCP never raise SIGPIPE (MSG_NOSIGNAL), but OpenSSL writes with
 * write(2), so a thread doing TLS must block SIGPIPE (bus_redis.c does). */
#ifndef TT_COLLECTOR_DECIDE_BUS_CONN_H
#define TT_COLLECTOR_DECIDE_BUS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *ca_file;     /* NULL or "": the system's trust store */
  const char *cert_file;   /* client certificate (PEM chain) for mutual TLS; NULL or "": none */
  const char *key_file;    /* its private key (PEM); given together with cert_file */
  const char *server_name; /* NULL or "": each node's host; used for SNI and verification */
  bool insecure;           /* no certificate nor name verification: for tests only */
} tt_bus_tls_opts_t;

/* TLS settings and OpenSSL context shared by the connections of one bus. */
typedef struct tt_bus_tls_s tt_bus_tls_t;

/* Loads the files now, so that a wrong path or a key that does not match its certificate fails
 * at start rather than at every connect. 0, -EINVAL (a file that does not load, cert_file without
 * key_file or the reverse; the reason is written to err) or -ENOMEM. Strings are copied. */
int tt__bus_tls_new(const tt_bus_tls_opts_t *o, tt_bus_tls_t **out, char *err, size_t errlen);

/* NULL is a no-op. After every connection using it is closed. */
void tt__bus_tls_free(tt_bus_tls_t *t);

typedef struct tt_bus_conn_s tt_bus_conn_t;

/* Resolves host (getaddrinfo, which is not bounded by the deadline), connects to the first address
 * that accepts, then completes the TLS handshake when tls is not NULL: the server certificate is
 * verified against the trust store and its name (or IP address) against server_name or host,
 * unless insecure. 0, -ETIMEDOUT (the deadline passed), -ENOTCONN (refused, unreachable, closed,
 * a handshake or verification failure) or -ENOMEM; on failure err says why (JSON-safe). */
int tt__bus_conn_open(const char *host, int port, const tt_bus_tls_t *tls, uint64_t deadline_ns,
                      tt_bus_conn_t **out, char *err, size_t errlen);

/* Writes all len bytes. 0, -ETIMEDOUT or -ENOTCONN (then tt__bus_conn_error says why). */
int tt__bus_conn_write(tt_bus_conn_t *c, const void *buf, size_t len, uint64_t deadline_ns);

/* Reads at least one byte and at most cap. The count, -ETIMEDOUT or -ENOTCONN (the peer closed
 * the connection included). */
long tt__bus_conn_read(tt_bus_conn_t *c, void *buf, size_t cap, uint64_t deadline_ns);

/* The last error's description (JSON-safe), "" when none. */
const char *tt__bus_conn_error(const tt_bus_conn_t *c);

/* Closes the connection: a TLS connection that had no error first sends its close_notify (without
 * waiting for the peer's). NULL is a no-op. */
void tt__bus_conn_close(tt_bus_conn_t *c);

/* CLOCK_MONOTONIC in nanoseconds, the clock of every deadline here. */
uint64_t tt__bus_now_ns(void);

#endif
