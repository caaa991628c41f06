/* otlp_config.h: OTLP exporter settings, from an options struct and the OTEL_EXPORTER_OTLP_*
 * environment variables. Internal to libtailtrace (tt__ names); the options struct is shaped to
 * move into include/tailtrace.h unchanged once the public exporter API is settled. */
#ifndef TT_OTLP_CONFIG_H
#define TT_OTLP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* Protocol selection. DEFAULT means "from the environment, else http/protobuf". */
enum {
  TT_OTLP_PROTOCOL_DEFAULT = 0,
  TT_OTLP_PROTOCOL_HTTP_PROTOBUF = 1,
  TT_OTLP_PROTOCOL_GRPC = 2,
  TT_OTLP_PROTOCOL_HTTP_JSON = 3,
};

/* Compression and insecure: DEFAULT means "from the environment, else the spec default". */
enum {
  TT_OTLP_COMPRESSION_DEFAULT = 0,
  TT_OTLP_COMPRESSION_NONE = 1,
  TT_OTLP_COMPRESSION_GZIP = 2
};
enum { TT_OTLP_INSECURE_DEFAULT = 0, TT_OTLP_INSECURE_FALSE = 1, TT_OTLP_INSECURE_TRUE = 2 };

/* Programmatic settings; every field left zero/NULL falls back to the environment, then to the
 * spec default. Options win over the environment. Start with .size = sizeof(tt_otlp_options_t)
 * so the struct can grow. Strings are copied by tt__otlp_config_resolve; the caller keeps
 * ownership of its own. */
typedef struct tt_otlp_options_s {
  size_t size;
  int protocol;                   /* TT_OTLP_PROTOCOL_* */
  const char *endpoint;           /* used as given (HTTP: the full URL including /v1/traces) */
  const char *headers;            /* "k=v,k2=v2" in W3C baggage format, values percent-encoded */
  int32_t timeout_ms;             /* export timeout including retries; 0 = env or 10000 */
  int compression;                /* TT_OTLP_COMPRESSION_* */
  int insecure;                   /* TT_OTLP_INSECURE_*: gRPC without a scheme only */
  const char *certificate;        /* PEM file: trusted CA(s) for the server */
  const char *client_certificate; /* PEM file: client certificate for mTLS */
  const char *client_key;         /* PEM file: client private key for mTLS */
  /* Retry tuning (tests shorten it); 0 = defaults (1000 ms initial, x1.5, 5000 ms max). */
  int32_t retry_initial_ms;
  int32_t retry_max_ms;
  double retry_multiplier;
} tt_otlp_options_t;

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
 * without '=' or with an empty key are skipped with a warning (counted in *warnings). */
int tt__otlp_parse_headers(const char *s, tt__otlp_header_t **hdrs, size_t *n, unsigned *warnings);

/* Exporter warnings go through the library's logger (TT_LOG level check before formatting).
 * The macro expands where it is used, in files that include internal.h; this header itself
 * stays free of the library's internals so the collector's forwarding sink can include it
 * next to its own logger. */
#define tt__otlp_log(...) TT_LOG(TT_LOG_WARN, __VA_ARGS__)

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t tt__otlp_now_ns(void);

#endif /* TT_OTLP_CONFIG_H */
