/* otlp_config.h: OTLP exporter settings, from the public options struct (tt_otlp_options_t) and
 * the OTEL_EXPORTER_OTLP_* environment variables. Internal to libtailtrace (tt__ names). */
#ifndef TT_OTLP_CONFIG_H
#define TT_OTLP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* tt_otlp_options_t and the TT_OTLP_* constants are public (include/tailtrace.h). Only that part
 * of the public header is taken here: this header is shared with the collector, whose logger
 * defines TT_LOG_* names of its own. */
#define TT_OTLP_OPTIONS_ONLY
#include "tailtrace.h"
#undef TT_OTLP_OPTIONS_ONLY

typedef struct tt__otlp_header_s {
  char *name; /* lowercased for gRPC metadata; HTTP header names are case-insensitive anyway */
  char *value;
} tt__otlp_header_t;

/* The resolved configuration; every string is owned by the struct (tt__otlp_config_free). */
typedef struct tt__otlp_config_s {
  int protocol;   /* TT_OTLP_PROTOCOL_HTTP_PROTOBUF, _HTTP_JSON or _GRPC, never DEFAULT */
  char *endpoint; /* HTTP: full URL; gRPC: as configured, scheme included if given */
  tt__otlp_header_t *headers;
  size_t n_headers;
  int32_t timeout_ms;
  int gzip;     /* 1 when compression is gzip */
  int insecure; /* 1 when OTEL_EXPORTER_OTLP_INSECURE=true (or the option) */
  char *certificate;
  char *client_certificate;
  char *client_key;
  int32_t retry_initial_ms;
  int32_t retry_max_ms;
  double retry_multiplier;
  unsigned warnings; /* how many values were unparsable and ignored (tests read it) */
} tt__otlp_config_t;

/* Looks up an environment variable; NULL when unset. tt__otlp_getenv wraps getenv(3). */
typedef const char *(*tt__otlp_getenv_fn)(const char *name, void *ud);
const char *tt__otlp_getenv(const char *name, void *ud);

/* Resolves options (may be NULL) over the environment over the defaults into *cfg. Unparsable
 * values are logged as warnings, counted in cfg->warnings and ignored. Returns 0 or TT_ENOMEM.
 * Call on any thread; getenv_fn must be safe on that thread. */
int tt__otlp_config_resolve(tt__otlp_config_t *cfg, const tt_otlp_options_t *opts,
                            tt__otlp_getenv_fn getenv_fn, void *ud);
void tt__otlp_config_free(tt__otlp_config_t *cfg);

/* Parses a W3C-baggage-style header list ("k=v, k2=v%202") appending to *hdrs and *n. Entries
 * without '=' or with an empty key are skipped with a warning (counted in *warnings), and so are
 * those whose decoded name is not [0-9a-z_.-] (after lowercasing) or whose decoded value is not
 * printable ASCII: no transport can send them (a %0d%0a would inject an HTTP header line).
 * 0 or TT_ENOMEM; on TT_ENOMEM the entries added so far stay in *hdrs (the caller frees). */
/* The header rules both transports can send (see otlp_config.c): a name of [0-9a-z_.-], a value of
 * printable ASCII. The collector's configuration checks exporter headers with the same rules. */
int tt__otlp_header_name_ok(const char *k);
int tt__otlp_header_value_ok(const char *v);

int tt__otlp_parse_headers(const char *s, tt__otlp_header_t **hdrs, size_t *n, unsigned *warnings);

/* Exporter warnings go through the library's logger (TT_LOG level check before formatting).
 * The macro expands where it is used, in files that include internal.h; this header itself
 * stays free of the library's internals so the collector's forwarding sink can include it
 * next to its own logger. */
#define tt__otlp_log(...) TT_LOG(TT_LOG_WARN, __VA_ARGS__)

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t tt__otlp_now_ns(void);

#endif /* TT_OTLP_CONFIG_H */
