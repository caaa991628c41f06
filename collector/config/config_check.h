/* What a configuration needs of the host it runs on, checked the same way by `--validate` and at
 * start, so that a file --validate accepts is one the daemon starts on: listening addresses
 * parse and resolve (and, for --validate, can be bound), the file sink's directory exists and is
 * writable, spool directories exist or can be created, TLS files can be read. Every problem is
 * one line "FILE:LINE: KEY: message" as the loader's. Main thread only. */
#ifndef TT_COLLECTOR_CONFIG_CHECK_H
#define TT_COLLECTOR_CONFIG_CHECK_H

#include <stddef.h>

#include "buf.h"
#include "config.h"

typedef enum {
  /* --validate: changes nothing on disk; tries to bind each listening address and closes it. */
  TT_CHECK_VALIDATE,
  /* Start: creates missing spool directories (0700, parents included); binding is left to the
   * receivers, which report their own failure. */
  TT_CHECK_START,
} tt_check_mode_t;

/* Splits a listening endpoint without resolving it: "host:port", "[v6]:port", or ":port" (host
 * set to ""). Returns 0 or -EINVAL. */
int tt__config_listen_split(const char *ep, char *host, size_t hostlen, int *port);

/* Turns a listening endpoint into a numeric host and a port: "host:port", "[v6]:port", or
 * ":port" (every IPv4 interface, 0.0.0.0, as the OpenTelemetry Collector reads it). A host name
 * is resolved here, once: the first IPv4 address it has, else its first IPv6 one. Returns 0, or
 * -EINVAL (unparseable) / -ENOENT (does not resolve) with the reason in err. */
int tt__config_listen_addr(const char *ep, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen);

/* Runs every check on c (loaded from c->source). Errors go to errs, warnings (a listening port
 * busy right now, when validating) to warns, one line each. Returns 0, or -EINVAL when there was
 * an error. */
int tt__config_check(const tt_config_t *c, tt_check_mode_t mode, tt_buf_t *errs, tt_buf_t *warns);

#endif
