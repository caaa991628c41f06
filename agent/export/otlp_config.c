/* otlp_config.c: resolves the OTLP exporter configuration. Precedence, per the OpenTelemetry
 * specification: programmatic options, then OTEL_EXPORTER_OTLP_TRACES_*, then
 * OTEL_EXPORTER_OTLP_*, then defaults. A bad value never fails start-up: it is logged, counted
 * and ignored, because a tracing library must not take its host down over a typo. */
#include "otlp_config.h"

#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_HTTP_ENDPOINT "http://localhost:4318/v1/traces"
#define DEFAULT_GRPC_ENDPOINT "http://localhost:4317"
#define DEFAULT_TIMEOUT_MS 10000

const char *tt__otlp_getenv(const char *name, void *ud) {
  (void)ud;
  return getenv(name);
}

int64_t tt__otlp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Looks up the per-signal variable first, then the generic one; *which tells the caller which
 * one matched (1 = per-signal), because endpoint resolution treats them differently. */
static const char *env2(tt__otlp_getenv_fn ge, void *ud, const char *suffix, int *which) {
  char name[96];
  snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_TRACES_%s", suffix);
  const char *v = ge(name, ud);
  if (v != NULL && v[0] != '\0') {
    if (which)
      *which = 1;
    return v;
  }
  snprintf(name, sizeof name, "OTEL_EXPORTER_OTLP_%s", suffix);
  v = ge(name, ud);
  if (which)
    *which = 0;
  return (v != NULL && v[0] != '\0') ? v : NULL;
}

static void warn(tt__otlp_config_t *cfg, const char *what, const char *value) {
  cfg->warnings++;
  tt__otlp_log("ignoring unparsable %s=\"%.100s\"", what, value);
}

static char *trim_dup(const char *s, size_t len) {
  while (len > 0 && isspace((unsigned char)*s)) {
    s++;
    len--;
  }
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    len--;
  char *r = tt__malloc(len + 1);
  if (r == NULL)
    return NULL;
  memcpy(r, s, len);
  r[len] = '\0';
  return r;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* In place; a '%' not followed by two hex digits is kept literally, as the spec's baggage
 * decoding is lenient about malformed escapes. Returns the decoded length (a %00 makes it
 * differ from strlen). */
static size_t percent_decode(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    int h, l;
    if (r[0] == '%' && (h = hexval((unsigned char)r[1])) >= 0 &&
        (l = hexval((unsigned char)r[2])) >= 0) {
      *w++ = (char)(h * 16 + l);
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return (size_t)(w - s);
}

/* What both transports can send. gRPC metadata keys are [0-9a-z_.-] (a subset of HTTP's token
 * characters) and non-binary values printable ASCII; HTTP would take a decoded CR or LF as the
 * end of the header line. A header outside these rules fails every request (gRPC) or injects
 * header lines (HTTP), so it is refused up front instead. */
int tt__otlp_header_name_ok(const char *k) {
  if (*k == '\0')
    return 0;
  for (const char *c = k; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
          *c == '.'))
      return 0;
  return 1;
}

int tt__otlp_header_value_ok(const char *v) {
  for (const unsigned char *c = (const unsigned char *)v; *c; c++)
    if (*c < 0x20 || *c > 0x7e)
      return 0;
  return 1;
}

static int header_ok(const char *k, size_t klen, const char *v, size_t vlen) {
  if (klen == 0 || strlen(k) != klen || strlen(v) != vlen)
    return 0;
  return tt__otlp_header_name_ok(k) && tt__otlp_header_value_ok(v);
}

int tt__otlp_parse_headers(const char *s, tt__otlp_header_t **hdrs, size_t *n, unsigned *warnings) {
  const char *p = s;
  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    /* Baggage members may carry ";property" after the value; headers have no use for them. */
    const char *semi = memchr(p, ';', len);
    size_t vlen =
        eq ? (semi && semi > eq ? (size_t)(semi - eq - 1) : len - (size_t)(eq - p) - 1) : 0;
    char *k = eq ? trim_dup(p, (size_t)(eq - p)) : NULL;
    int blank = 1;
    for (size_t i = 0; i < len; i++)
      blank &= isspace((unsigned char)p[i]) != 0;
    if (eq == NULL || k == NULL || k[0] == '\0') {
      tt__free(k);
      if (!blank) {
        if (warnings)
          (*warnings)++;
        tt__otlp_log("ignoring malformed header entry \"%.*s\"", (int)(len > 100 ? 100 : len), p);
      }
    } else {
      char *v = trim_dup(eq + 1, vlen);
      tt__otlp_header_t *nh = tt__realloc(*hdrs, (*n + 1) * sizeof **hdrs);
      if (v == NULL || nh == NULL) {
        tt__free(k);
        tt__free(v);
        if (nh)
          *hdrs = nh;
        return TT_ENOMEM;
      }
      *hdrs = nh;
      size_t klen = percent_decode(k);
      size_t dlen = percent_decode(v);
      for (char *c = k; *c; c++)
        *c = (char)tolower((unsigned char)*c);
      if (!header_ok(k, klen, v, dlen)) {
        if (warnings)
          (*warnings)++;
        tt__otlp_log("ignoring header \"%.*s\": name or value has characters OTLP transports "
                     "cannot send",
                     (int)(klen > 100 ? 100 : klen), k);
        tt__free(k);
        tt__free(v);
      } else {
        nh[*n].name = k;
        nh[*n].value = v;
        (*n)++;
      }
    }
    p = end ? end + 1 : NULL;
  }
  return 0;
}

static int parse_protocol(const char *v) {
  if (strcmp(v, "http/protobuf") == 0)
    return TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  if (strcmp(v, "grpc") == 0)
    return TT_OTLP_PROTOCOL_GRPC;
  if (strcmp(v, "http/json") == 0)
    return TT_OTLP_PROTOCOL_HTTP_JSON;
  return 0;
}

static int parse_bool(const char *v, int *out) {
  if (strcasecmp(v, "true") == 0) {
    *out = 1;
    return 0;
  }
  if (strcasecmp(v, "false") == 0) {
    *out = 0;
    return 0;
  }
  return -1;
}

static int parse_ms(const char *v, int32_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  while (*end && isspace((unsigned char)*end))
    end++;
  if (errno != 0 || end == v || *end != '\0' || x <= 0 || x > INT32_MAX)
    return -1;
  *out = (int32_t)x;
  return 0;
}

static int has_http_scheme(const char *v) {
  return strncasecmp(v, "http://", 7) == 0 || strncasecmp(v, "https://", 8) == 0;
}

/* The generic endpoint is a base URL: the signal path is appended (avoiding a double slash);
 * the per-signal one is used exactly as given. */
static char *http_endpoint_from_generic(const char *base) {
  size_t len = strlen(base);
  while (len > 0 && base[len - 1] == '/')
    len--;
  char *r = tt__malloc(len + sizeof "/v1/traces");
  if (r == NULL)
    return NULL;
  memcpy(r, base, len);
  memcpy(r + len, "/v1/traces", sizeof "/v1/traces");
  return r;
}

static int dup_opt(char **dst, const char *opt, const char *env) {
  const char *v = opt ? opt : env;
  if (v == NULL)
    return 0;
  *dst = tt__strdup(v);
  return *dst ? 0 : TT_ENOMEM;
}

int tt__otlp_config_resolve(tt__otlp_config_t *cfg, const tt_otlp_options_t *opts,
                            tt__otlp_getenv_fn ge, void *ud) {
  tt_otlp_options_t none;
  memset(&none, 0, sizeof none);
  memset(cfg, 0, sizeof *cfg);
  if (ge == NULL)
    ge = tt__otlp_getenv;
  /* Read only the prefix of the caller's struct it says it has: older callers stay valid. */
  if (opts != NULL && opts->size > 0) {
    memcpy(&none, opts, opts->size < sizeof none ? opts->size : sizeof none);
  }
  opts = &none;
  const char *v;

  cfg->protocol = TT_OTLP_PROTOCOL_HTTP_PROTOBUF;
  if (opts->protocol == TT_OTLP_PROTOCOL_HTTP_PROTOBUF || opts->protocol == TT_OTLP_PROTOCOL_GRPC ||
      opts->protocol == TT_OTLP_PROTOCOL_HTTP_JSON) {
    cfg->protocol = opts->protocol;
  } else if ((v = env2(ge, ud, "PROTOCOL", NULL)) != NULL) {
    int p = parse_protocol(v);
    if (p)
      cfg->protocol = p;
    else
      warn(cfg, "OTEL_EXPORTER_OTLP_PROTOCOL", v);
  }
  int grpc = cfg->protocol == TT_OTLP_PROTOCOL_GRPC;

  int per_signal = 0;
  if (opts->endpoint != NULL) {
    cfg->endpoint = tt__strdup(opts->endpoint);
  } else if ((v = env2(ge, ud, "ENDPOINT", &per_signal)) != NULL && (grpc || has_http_scheme(v))) {
    cfg->endpoint = (grpc || per_signal) ? tt__strdup(v) : http_endpoint_from_generic(v);
  } else {
    if (v != NULL)
      warn(cfg, "OTEL_EXPORTER_OTLP_ENDPOINT", v);
    cfg->endpoint = tt__strdup(grpc ? DEFAULT_GRPC_ENDPOINT : DEFAULT_HTTP_ENDPOINT);
  }
  if (cfg->endpoint == NULL)
    goto nomem;

  const char *hs = opts->headers ? opts->headers : env2(ge, ud, "HEADERS", NULL);
  if (hs != NULL && tt__otlp_parse_headers(hs, &cfg->headers, &cfg->n_headers, &cfg->warnings))
    goto nomem;

  cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
  if (opts->timeout_ms > 0) {
    cfg->timeout_ms = opts->timeout_ms;
  } else if ((v = env2(ge, ud, "TIMEOUT", NULL)) != NULL && parse_ms(v, &cfg->timeout_ms) != 0) {
    cfg->timeout_ms = DEFAULT_TIMEOUT_MS;
    warn(cfg, "OTEL_EXPORTER_OTLP_TIMEOUT", v);
  }

  if (opts->compression == TT_OTLP_COMPRESSION_GZIP ||
      opts->compression == TT_OTLP_COMPRESSION_NONE) {
    cfg->gzip = opts->compression == TT_OTLP_COMPRESSION_GZIP;
  } else if ((v = env2(ge, ud, "COMPRESSION", NULL)) != NULL) {
    if (strcasecmp(v, "gzip") == 0)
      cfg->gzip = 1;
    else if (strcasecmp(v, "none") != 0)
      warn(cfg, "OTEL_EXPORTER_OTLP_COMPRESSION", v);
  }

  if (opts->insecure == TT_OTLP_INSECURE_TRUE || opts->insecure == TT_OTLP_INSECURE_FALSE) {
    cfg->insecure = opts->insecure == TT_OTLP_INSECURE_TRUE;
  } else if ((v = env2(ge, ud, "INSECURE", NULL)) != NULL && parse_bool(v, &cfg->insecure) != 0) {
    warn(cfg, "OTEL_EXPORTER_OTLP_INSECURE", v);
  }

  if (dup_opt(&cfg->certificate, opts->certificate, env2(ge, ud, "CERTIFICATE", NULL)) ||
      dup_opt(&cfg->client_certificate, opts->client_certificate,
              env2(ge, ud, "CLIENT_CERTIFICATE", NULL)) ||
      dup_opt(&cfg->client_key, opts->client_key, env2(ge, ud, "CLIENT_KEY", NULL)))
    goto nomem;

  cfg->retry_initial_ms = opts->retry_initial_ms > 0 ? opts->retry_initial_ms : 1000;
  cfg->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : 5000;
  cfg->retry_multiplier = opts->retry_multiplier >= 1.0 ? opts->retry_multiplier : 1.5;
  return 0;

nomem:
  tt__otlp_config_free(cfg);
  return TT_ENOMEM;
}

void tt__otlp_config_free(tt__otlp_config_t *cfg) {
  tt__free(cfg->endpoint);
  for (size_t i = 0; i < cfg->n_headers; i++) {
    tt__free(cfg->headers[i].name);
    tt__free(cfg->headers[i].value);
  }
  tt__free(cfg->headers);
  tt__free(cfg->certificate);
  tt__free(cfg->client_certificate);
  tt__free(cfg->client_key);
  memset(cfg, 0, sizeof *cfg);
}
