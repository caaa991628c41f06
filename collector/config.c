/* Table-driven YAML configuration: see config.h. Defaults are parsed from their text form by the
 * same code as file values, so a default can never bypass a validator. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"

typedef enum { CT_BOOL, CT_INT, CT_DURATION, CT_SIZE, CT_STRING } ctype_t;

static const char *const ctype_names[] = {"bool", "int", "duration", "size", "string"};

typedef int (*validator_fn)(const void *field, char *err, size_t errlen);

typedef struct {
  const char *name;
  ctype_t type;
  const char *def;
  size_t off;
  size_t size; /* CT_STRING: capacity */
  validator_fn validate;
  const char *doc;
} key_t_;

static int v_endpoint(const void *f, char *err, size_t n) {
  char host[128];
  int port;
  if (tt__config_split_endpoint(f, host, sizeof host, &port) != 0) {
    snprintf(err, n, "expected host:port with a port 0-65535, got \"%s\"", (const char *)f);
    return -EINVAL;
  }
  return 0;
}

static int v_positive(const void *f, char *err, size_t n) {
  if (*(const uint64_t *)f == 0) {
    snprintf(err, n, "must be greater than zero");
    return -EINVAL;
  }
  return 0;
}

static int v_workers(const void *f, char *err, size_t n) {
  int64_t v = *(const int64_t *)f;
  if (v < 0 || v > 1024) {
    snprintf(err, n, "must be 0 (one per core) to 1024");
    return -EINVAL;
  }
  return 0;
}

static int v_budget(const void *f, char *err, size_t n) {
  if (*(const uint64_t *)f < (1u << 20)) {
    snprintf(err, n, "must be at least 1MiB");
    return -EINVAL;
  }
  return 0;
}

static int v_nonneg(const void *f, char *err, size_t n) {
  if (*(const int64_t *)f < 0) {
    snprintf(err, n, "must not be negative");
    return -EINVAL;
  }
  return 0;
}

static int v_max_files(const void *f, char *err, size_t n) {
  int64_t v = *(const int64_t *)f;
  if (v < 1 || v > 1000) {
    snprintf(err, n, "must be 1 to 1000");
    return -EINVAL;
  }
  return 0;
}

static int v_sink(const void *f, char *err, size_t n) {
  if (strcmp(f, "file") != 0 && strcmp(f, "null") != 0 && strcmp(f, "none") != 0) {
    snprintf(err, n, "must be \"file\", \"null\" or \"none\"");
    return -EINVAL;
  }
  return 0;
}

static int v_format(const void *f, char *err, size_t n) {
  if (strcmp(f, "json") != 0 && strcmp(f, "protobuf") != 0) {
    snprintf(err, n, "must be \"json\" or \"protobuf\"");
    return -EINVAL;
  }
  return 0;
}

static int v_level(const void *f, char *err, size_t n) {
  if (tt__log_level_parse(f) < 0) {
    snprintf(err, n, "must be debug, info, warn, error or off");
    return -EINVAL;
  }
  return 0;
}

static int v_path(const void *f, char *err, size_t n) {
  if (((const char *)f)[0] == '\0') {
    snprintf(err, n, "must not be empty");
    return -EINVAL;
  }
  return 0;
}

#define OFF(field) offsetof(tt_config_t, field)
#define SZ(field) sizeof(((tt_config_t *)0)->field)

/* The configuration, one row per key. Listening addresses default to 127.0.0.1: a sidecar's
 * senders share its host or pod, and an exposed port should be a decision (docs/config.md). */
static const key_t_ keys[] = {
    {"receivers.otlp_grpc.enabled", CT_BOOL, "true", OFF(grpc_enabled), 0, NULL,
     "Run the OTLP/gRPC receiver."},
    {"receivers.otlp_grpc.endpoint", CT_STRING, "127.0.0.1:4317", OFF(grpc_endpoint),
     SZ(grpc_endpoint), v_endpoint, "OTLP/gRPC listen address (host:port; port 0 = ephemeral)."},
    {"receivers.otlp_grpc.max_message_size", CT_SIZE, "4MiB", OFF(grpc_max_message), 0, v_positive,
     "Largest decompressed gRPC message accepted."},
    {"receivers.otlp_http.enabled", CT_BOOL, "true", OFF(http_enabled), 0, NULL,
     "Run the OTLP/HTTP receiver."},
    {"receivers.otlp_http.endpoint", CT_STRING, "127.0.0.1:4318", OFF(http_endpoint),
     SZ(http_endpoint), v_endpoint, "OTLP/HTTP listen address (POST /v1/traces)."},
    {"receivers.otlp_http.max_body_size", CT_SIZE, "20MiB", OFF(http_max_body), 0, v_positive,
     "Largest HTTP body accepted (wire and inflated); larger is answered 413."},
    {"admin.enabled", CT_BOOL, "true", OFF(admin_enabled), 0, NULL,
     "Run the admin port (/healthz, /readyz, /metrics)."},
    {"admin.endpoint", CT_STRING, "127.0.0.1:13133", OFF(admin_endpoint), SZ(admin_endpoint),
     v_endpoint, "Admin listen address."},
    {"workers", CT_INT, "0", OFF(workers), 0, v_workers,
     "Shard threads holding and deciding traces; 0 = one per online core."},
    {"decision.root_grace", CT_DURATION, "2s", OFF(root_grace_ms), 0, v_positive,
     "Decide a trace this long after its root span arrived."},
    {"decision.idle_timeout", CT_DURATION, "15s", OFF(idle_timeout_ms), 0, v_positive,
     "... or once no span arrived for this long (traces whose root never comes)."},
    {"decision.max_trace_age", CT_DURATION, "60s", OFF(max_trace_age_ms), 0, v_positive,
     "... or at the latest this long after its first span."},
    {"decision.tick", CT_DURATION, "50ms", OFF(tick_ms), 0, v_positive,
     "Timing wheel resolution: decisions happen within one tick of their time."},
    {"memory.budget", CT_SIZE, "256MiB", OFF(memory_budget), 0, v_budget,
     "Bytes held for undecided traces (span bytes + bookkeeping) and for the decided-trace cache "
     "(which may use at most a quarter of it). Past 90% the costliest traces (size x age) are "
     "decided early; at 100% senders are throttled (429 / RESOURCE_EXHAUSTED)."},
    {"memory.max_trace_size", CT_SIZE, "16MiB", OFF(max_trace_bytes), 0, v_positive,
     "A trace holding this many bytes is decided at once; its later spans follow the decision."},
    {"memory.retry_after", CT_DURATION, "1s", OFF(retry_after_ms), 0, v_positive,
     "Retry delay suggested to throttled senders (Retry-After / RetryInfo)."},
    {"late_spans.cache_traces", CT_INT, "200000", OFF(late_cache_traces), 0, v_nonneg,
     "Decided trace ids remembered so late spans follow their trace's decision (also bounded by a "
     "quarter of memory.budget, counted against it)."},
    {"late_spans.ttl", CT_DURATION, "5m", OFF(late_cache_ttl_ms), 0, v_positive,
     "How long a decided trace id is remembered."},
    {"sink.type", CT_STRING, "file", OFF(sink_type), SZ(sink_type), v_sink,
     "The local sink for kept traces: file (OTLP/JSON lines), null (discard; benchmarks) or none "
     "(only the `exporters:` list)."},
    {"sink.file.path", CT_STRING, "./tailtrace-traces.jsonl", OFF(file_path), SZ(file_path), v_path,
     "The file sink's output: one OTLP/JSON ExportTraceServiceRequest per line."},
    {"sink.file.format", CT_STRING, "json", OFF(file_format), SZ(file_format), v_format,
     "json: one OTLP/JSON ExportTraceServiceRequest per line; protobuf: length-delimited "
     "binary ExportTraceServiceRequest records (varint length, then the bytes)."},
    {"sink.file.max_size", CT_SIZE, "100MiB", OFF(file_max_bytes), 0, v_positive,
     "Rotate the file before it grows past this size."},
    {"sink.file.max_files", CT_INT, "5", OFF(file_max_files), 0, v_max_files,
     "Rotated files kept (path.1 newest ... path.N oldest)."},
    {"log.level", CT_STRING, "info", OFF(log_level), SZ(log_level), v_level,
     "debug, info, warn, error or off. Logs are JSON lines on stderr."},
    {"shutdown.deadline", CT_DURATION, "10s", OFF(shutdown_deadline_ms), 0, v_positive,
     "On SIGTERM: stop receiving, decide all held traces, flush, exit within this time."},
};

#define NKEYS (sizeof keys / sizeof keys[0])

/* ---- scalar parsing ------------------------------------------------------------------------- */

static int parse_u64_suffix(const char *s, const char *const *sfx, const uint64_t *mul, size_t n,
                            uint64_t dflt_mul, uint64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno != 0 || !(v >= 0) || !isfinite(v))
    return -EINVAL;
  while (*end == ' ')
    end++;
  uint64_t m = dflt_mul;
  if (*end != '\0') {
    size_t i = 0;
    while (i < n && strcmp(end, sfx[i]) != 0)
      i++;
    if (i == n)
      return -EINVAL;
    m = mul[i];
  }
  double r = v * (double)m;
  if (r > 1.8e19)
    return -EINVAL;
  *out = (uint64_t)llround(r);
  return 0;
}

static int parse_duration_ms(const char *s, uint64_t *out) {
  static const char *const sfx[] = {"ms", "s", "m", "h"};
  static const uint64_t mul[] = {1, 1000, 60000, 3600000};
  return parse_u64_suffix(s, sfx, mul, 4, 1, out);
}

static int parse_size(const char *s, uint64_t *out) {
  static const char *const sfx[] = {"B", "KiB", "MiB", "GiB", "KB", "MB", "GB", "k", "M", "G"};
  static const uint64_t mul[] = {1,       1024,       1u << 20, 1u << 30, 1000,
                                 1000000, 1000000000, 1024,     1u << 20, 1u << 30};
  return parse_u64_suffix(s, sfx, mul, 10, 1, out);
}

static int parse_bool(const char *s, bool *out) {
  static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                           "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, t[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(s, f[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -EINVAL;
}

static int parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0)
    return -EINVAL;
  *out = v;
  return 0;
}

static int parse_double(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno != 0 || !isfinite(v))
    return -EINVAL;
  *out = v;
  return 0;
}

/* Expands ${VAR} and ${VAR:-default}. Returns 0, or -EINVAL with a message in err. */
static int expand_env(const char *in, tt_buf_t *out, char *err, size_t errlen) {
  tt__buf_reset(out);
  for (const char *p = in; *p != '\0';) {
    if (p[0] == '$' && p[1] == '{') {
      const char *close = strchr(p + 2, '}');
      if (close == NULL) {
        snprintf(err, errlen, "unterminated ${ in value");
        return -EINVAL;
      }
      char name[128];
      size_t n = (size_t)(close - p - 2);
      if (n == 0 || n >= sizeof name) {
        snprintf(err, errlen, "bad ${...} reference");
        return -EINVAL;
      }
      memcpy(name, p + 2, n);
      name[n] = '\0';
      char *dflt = strstr(name, ":-");
      if (dflt != NULL) {
        *dflt = '\0';
        dflt += 2;
      }
      const char *v = getenv(name);
      if (v == NULL || (v[0] == '\0' && dflt != NULL))
        v = dflt;
      if (v == NULL) {
        snprintf(err, errlen, "environment variable %.64s is not set (use ${%.64s:-default})", name,
                 name);
        return -EINVAL;
      }
      tt__buf_append_str(out, v);
      p = close + 1;
    } else {
      tt__buf_append(out, p, 1);
      p++;
    }
  }
  return tt__buf_append(out, "", 1);
}

/* Parses val into the field k describes inside the struct at base (a tt_config_t or, for the
 * exporter keys, a tt_exporter_conf_t). */
static int set_key(void *base, const key_t_ *k, const char *val, char *err, size_t errlen) {
  void *f = (char *)base + k->off;
  int rc = 0;
  switch (k->type) {
    case CT_BOOL:
      rc = parse_bool(val, f);
      break;
    case CT_INT:
      rc = parse_int(val, f);
      break;
    case CT_DURATION:
      rc = parse_duration_ms(val, f);
      break;
    case CT_SIZE:
      rc = parse_size(val, f);
      break;
    case CT_STRING:
      if (strlen(val) >= k->size) {
        snprintf(err, errlen, "longer than %zu characters", k->size - 1);
        return -EINVAL;
      }
      strcpy(f, val);
      break;
  }
  if (rc != 0) {
    snprintf(err, errlen, "expected a %s, got \"%s\"%s", ctype_names[k->type], val,
             k->type == CT_DURATION ? " (e.g. 500ms, 2s, 5m)"
             : k->type == CT_SIZE   ? " (e.g. 4096, 64KiB, 256MiB)"
                                    : "");
    return -EINVAL;
  }
  return k->validate != NULL ? k->validate(f, err, errlen) : 0;
}

int tt__config_split_endpoint(const char *ep, char *host, size_t hostlen, int *port) {
  const char *colon = strrchr(ep, ':');
  if (colon == NULL || colon == ep)
    return -EINVAL;
  const char *h = ep;
  size_t hl = (size_t)(colon - ep);
  if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= hostlen)
    return -EINVAL;
  int64_t p;
  if (parse_int(colon + 1, &p) != 0 || p < 0 || p > 65535)
    return -EINVAL;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)p;
  return 0;
}

/* ---- policies ------------------------------------------------------------------------------- */

typedef struct {
  const char *file;
  tt_buf_t *errs;
  int nerr;
  tt_buf_t tmp;
  const tt_exporter_conf_t *base_exporters; /* owned by the config being loaded over */
} ctx_t;

static void error_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void error_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tt__buf_appendf(cx->errs, "%s:%zu: %s: %s\n", cx->file, n ? n->start_mark.line + 1 : 0, key, msg);
  cx->nerr++;
}

/* The scalar text of a node after ${} expansion, or NULL (error recorded). */
static const char *scalar(ctx_t *cx, const yaml_node_t *n, const char *key) {
  if (n->type != YAML_SCALAR_NODE) {
    error_at(cx, n, key, "expected a single value");
    return NULL;
  }
  char err[256];
  if (expand_env((const char *)n->data.scalar.value, &cx->tmp, err, sizeof err) != 0) {
    error_at(cx, n, key, "%s", err);
    return NULL;
  }
  return (const char *)cx->tmp.data;
}

static int named_map(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *key,
                     tt_named_threshold_t **out, size_t *nout) {
  if (n->type != YAML_MAPPING_NODE) {
    error_at(cx, n, key, "expected a mapping of name: duration");
    return -EINVAL;
  }
  if (*out != NULL) {
    error_at(cx, n, key, "set twice");
    return -EINVAL;
  }
  size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
  *out = calloc(cnt ? cnt : 1, sizeof **out);
  if (*out == NULL)
    return -ENOMEM;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    if (kn->type != YAML_SCALAR_NODE) {
      error_at(cx, kn, key, "names must be plain strings");
      continue;
    }
    const char *v = scalar(cx, vn, key);
    uint64_t ms;
    if (v == NULL)
      continue;
    if (parse_duration_ms(v, &ms) != 0) {
      error_at(cx, vn, key, "expected a duration for \"%s\", got \"%s\"",
               (const char *)kn->data.scalar.value, v);
      continue;
    }
    (*out)[*nout].name = strdup((const char *)kn->data.scalar.value);
    (*out)[*nout].ns = ms * 1000000ull;
    (*nout)++;
  }
  return 0;
}

static void parse_policy(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, size_t idx,
                         tt_policy_t *p) {
  char where[64];
  snprintf(where, sizeof where, "policies[%zu]", idx);
  if (n->type != YAML_MAPPING_NODE) {
    error_at(cx, n, where, "each policy is a mapping with a type");
    return;
  }
  /* The type first: which other keys are allowed depends on it. */
  p->kind = TT_POL__COUNT;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    if (kn->type == YAML_SCALAR_NODE && strcmp((char *)kn->data.scalar.value, "type") == 0) {
      const char *v = scalar(cx, yaml_document_get_node(d, pr->value), where);
      int k = v ? tt__policy_kind_parse(v) : -1;
      if (v != NULL && k < 0)
        error_at(cx, kn, where,
                 "type must be errors, latency, attribute, rate_limit or ratio, got \"%s\"", v);
      if (k >= 0)
        p->kind = (tt_policy_kind_t)k;
    }
  }
  if (p->kind == TT_POL__COUNT) {
    if (cx->nerr == 0)
      error_at(cx, n, where, "missing type");
    return;
  }
  p->exception_event = p->http_5xx = true;
  p->min = -INFINITY; /* an open-ended range when only one bound is given */
  p->max = INFINITY;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    if (kn->type != YAML_SCALAR_NODE)
      continue;
    const char *k = (const char *)kn->data.scalar.value;
    char full[128];
    snprintf(full, sizeof full, "%s.%s", where, k);
    if (strcmp(k, "type") == 0)
      continue;
    if (p->kind == TT_POL_LATENCY && (strcmp(k, "services") == 0 || strcmp(k, "operations") == 0)) {
      if (strcmp(k, "services") == 0)
        named_map(cx, d, vn, full, &p->services, &p->nservices);
      else
        named_map(cx, d, vn, full, &p->operations, &p->noperations);
      continue;
    }
    const char *v = scalar(cx, vn, full);
    if (v == NULL)
      continue;
    bool ok = true, known = true;
    uint64_t u;
    double dv;
    if (strcmp(k, "name") == 0) {
      snprintf(p->name, sizeof p->name, "%s", v);
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "exception_event") == 0) {
      ok = parse_bool(v, &p->exception_event) == 0;
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "http_5xx") == 0) {
      ok = parse_bool(v, &p->http_5xx) == 0;
    } else if (p->kind == TT_POL_LATENCY && strcmp(k, "threshold") == 0) {
      ok = parse_duration_ms(v, &u) == 0 && u > 0;
      p->threshold_ns = u * 1000000ull;
    } else if (p->kind == TT_POL_LATENCY && strcmp(k, "measure") == 0) {
      ok = strcmp(v, "trace") == 0 || strcmp(v, "root") == 0;
      p->root_only = strcmp(v, "root") == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "key") == 0) {
      free(p->key);
      p->key = strdup(v);
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "value") == 0) {
      free(p->value);
      p->value = strdup(v);
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "op") == 0) {
      static const char *const ops[] = {"equals", "regex", "range", "exists"};
      ok = false;
      for (int i = 0; i < 4; i++)
        if (strcmp(v, ops[i]) == 0) {
          p->op = (tt_attr_op_t)i;
          ok = true;
        }
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "in") == 0) {
      static const char *const in[] = {"any", "span", "resource"};
      ok = false;
      for (int i = 0; i < 3; i++)
        if (strcmp(v, in[i]) == 0) {
          p->scope = (tt_attr_scope_t)i;
          ok = true;
        }
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "action") == 0) {
      ok = strcmp(v, "keep") == 0 || strcmp(v, "drop") == 0;
      p->keep = strcmp(v, "keep") == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "min") == 0) {
      ok = parse_double(v, &p->min) == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "max") == 0) {
      ok = parse_double(v, &p->max) == 0;
    } else if (p->kind == TT_POL_RATE_LIMIT &&
               (strcmp(k, "traces_per_second") == 0 || strcmp(k, "spans_per_second") == 0)) {
      ok = parse_double(v, &dv) == 0 && dv > 0;
      p->per_second = dv;
      p->count_spans = k[0] == 's';
    } else if (p->kind == TT_POL_RATIO && strcmp(k, "ratio") == 0) {
      ok = parse_double(v, &p->ratio) == 0 && p->ratio >= 0 && p->ratio <= 1;
    } else {
      known = false;
    }
    if (!known)
      error_at(cx, kn, full, "unknown key for a %s policy", tt__policy_kind_name(p->kind));
    else if (!ok)
      error_at(cx, vn, full, "invalid value \"%s\"", v);
  }
  char err[160];
  if (tt__policy_prepare(p, err, sizeof err) != 0)
    error_at(cx, n, where, "%s", err);
}

static tt_policy_set_t *parse_policies(ctx_t *cx, yaml_document_t *d, yaml_node_t *n) {
  if (n->type != YAML_SEQUENCE_NODE) {
    error_at(cx, n, "policies", "expected a list of policies");
    return NULL;
  }
  size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  tt_policy_set_t *s = tt__policy_set_new(cnt);
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < cnt; i++)
    parse_policy(cx, d, yaml_document_get_node(d, n->data.sequence.items.start[i]), i,
                 &s->items[i]);
  return s;
}

/* ---- exporters ------------------------------------------------------------------------------ */

static int v_protocol(const void *f, char *err, size_t n) {
  if (strcmp(f, "grpc") != 0 && strcmp(f, "http/protobuf") != 0) {
    snprintf(err, n, "must be \"grpc\" or \"http/protobuf\"");
    return -EINVAL;
  }
  return 0;
}

static int v_compression(const void *f, char *err, size_t n) {
  if (strcmp(f, "gzip") != 0 && strcmp(f, "none") != 0) {
    snprintf(err, n, "must be \"gzip\" or \"none\"");
    return -EINVAL;
  }
  return 0;
}

static int v_spool_mode(const void *f, char *err, size_t n) {
  if (strcmp(f, "on_failure") != 0 && strcmp(f, "always") != 0) {
    snprintf(err, n, "must be \"on_failure\" or \"always\"");
    return -EINVAL;
  }
  return 0;
}

#define EOFF(field) offsetof(tt_exporter_conf_t, field)
#define ESZ(field) sizeof(((tt_exporter_conf_t *)0)->field)

/* The keys of one `exporters:` item; `headers` (a mapping) is handled apart. */
static const key_t_ exporter_keys[] = {
    {"name", CT_STRING, "", EOFF(name), ESZ(name), v_path,
     "Required, unique: names the exporter in logs and metrics."},
    {"protocol", CT_STRING, "grpc", EOFF(protocol), ESZ(protocol), v_protocol,
     "grpc or http/protobuf."},
    {"endpoint", CT_STRING, "", EOFF(endpoint), ESZ(endpoint), v_path,
     "Required. gRPC: host:port (or https://host:port); HTTP: the full URL with /v1/traces."},
    {"insecure", CT_BOOL, "false", EOFF(insecure), 0, NULL,
     "gRPC: plaintext instead of TLS (HTTP takes it from the URL's scheme)."},
    {"compression", CT_STRING, "gzip", EOFF(compression), ESZ(compression), v_compression,
     "gzip or none."},
    {"timeout", CT_DURATION, "10s", EOFF(timeout_ms), 0, v_positive,
     "Deadline of one export attempt."},
    {"ca_file", CT_STRING, "", EOFF(ca_file), ESZ(ca_file), NULL,
     "PEM CA bundle for the backend's certificate; empty: the system's roots."},
    {"cert_file", CT_STRING, "", EOFF(cert_file), ESZ(cert_file), NULL,
     "Client certificate (PEM) for mutual TLS."},
    {"key_file", CT_STRING, "", EOFF(key_file), ESZ(key_file), NULL,
     "Client private key (PEM) for mutual TLS."},
    {"queue_size", CT_SIZE, "64MiB", EOFF(queue_bytes), 0, v_positive,
     "Memory queue of this exporter, in bytes of OTLP requests."},
    {"retry_initial", CT_DURATION, "1s", EOFF(retry_initial_ms), 0, v_positive,
     "First retry delay (exponential backoff with jitter; Retry-After/RetryInfo win)."},
    {"retry_max", CT_DURATION, "30s", EOFF(retry_max_ms), 0, v_positive,
     "Longest retry delay. Retryable failures are retried for as long as the backend is down."},
    {"spool.dir", CT_STRING, "", EOFF(spool_dir), ESZ(spool_dir), NULL,
     "Directory of the disk spool that holds kept batches while the backend is down and across "
     "restarts; empty: no spool (an outage longer than the memory queue drops and counts)."},
    {"spool.max_size", CT_SIZE, "1GiB", EOFF(spool_bytes), 0, v_positive,
     "Spool budget; past it the oldest batches are dropped and counted."},
    {"spool.fsync", CT_BOOL, "true", EOFF(spool_fsync), 0, NULL,
     "fsync every spooled batch (durable across power loss, slower)."},
    {"spool.mode", CT_STRING, "on_failure", EOFF(spool_mode), ESZ(spool_mode), v_spool_mode,
     "on_failure: batches go to the spool from the backend's first failure on; always: every "
     "batch is spooled before its first attempt, so a SIGKILL loses nothing (one fsync per "
     "batch). Needs spool.dir."},
    {"headers", CT_STRING, "", EOFF(headers), 0, NULL,
     "Mapping of header (gRPC metadata) names to values, e.g. x-honeycomb-team: "
     "${HONEYCOMB_API_KEY}."},
};

#define NEXPKEYS (sizeof exporter_keys / sizeof exporter_keys[0])

/* Appends "name=value" to the header list, percent-encoding what the W3C baggage format (which
 * the transports parse) does not allow verbatim. */
static int add_header(tt_exporter_conf_t *e, const char *name, const char *value) {
  size_t len = strlen(e->headers);
  char *o = e->headers + len, *end = e->headers + sizeof e->headers - 1;
  if (len > 0 && o < end)
    *o++ = ',';
  for (const char *p = name; *p != '\0' && o < end; p++)
    *o++ = *p;
  if (o < end)
    *o++ = '=';
  for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
    if (isalnum(*p) || strchr("-._~:/+!*'()", *p) != NULL) {
      if (o >= end)
        return -ENOSPC;
      *o++ = (char)*p;
    } else {
      if (end - o < 3)
        return -ENOSPC;
      o += snprintf(o, 4, "%%%02X", *p);
    }
  }
  if (o >= end)
    return -ENOSPC;
  *o = '\0';
  return 0;
}

static void parse_exporter_map(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *where,
                               const char *prefix, tt_exporter_conf_t *e, bool *seen) {
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    char key[192];
    snprintf(key, sizeof key, "%s.%s%s%s", where, prefix, prefix[0] ? "." : "",
             kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?");
    if (kn->type != YAML_SCALAR_NODE) {
      error_at(cx, kn, where, "keys must be plain strings");
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "",
             (const char *)kn->data.scalar.value);
    if (strcmp(name, "spool") == 0 && vn->type == YAML_MAPPING_NODE) {
      parse_exporter_map(cx, d, vn, where, "spool", e, seen);
      continue;
    }
    size_t i = 0;
    while (i < NEXPKEYS && strcmp(exporter_keys[i].name, name) != 0)
      i++;
    if (i == NEXPKEYS) {
      error_at(cx, kn, key, "unknown key");
      continue;
    }
    if (seen[i])
      error_at(cx, kn, key, "set twice");
    seen[i] = true;
    if (strcmp(name, "headers") == 0) {
      if (vn->type != YAML_MAPPING_NODE) {
        error_at(cx, vn, key, "expected a mapping of header names to values");
        continue;
      }
      for (yaml_node_pair_t *h = vn->data.mapping.pairs.start; h < vn->data.mapping.pairs.top;
           h++) {
        yaml_node_t *hk = yaml_document_get_node(d, h->key);
        const char *hv = scalar(cx, yaml_document_get_node(d, h->value), key);
        if (hk->type != YAML_SCALAR_NODE || hk->data.scalar.length == 0 ||
            strpbrk((const char *)hk->data.scalar.value, "=, \t") != NULL) {
          error_at(cx, hk, key, "header names must be plain tokens");
          continue;
        }
        if (hv != NULL && add_header(e, (const char *)hk->data.scalar.value, hv) != 0)
          error_at(cx, hk, key, "headers longer than %zu bytes", sizeof e->headers - 1);
      }
      continue;
    }
    const char *v = scalar(cx, vn, key);
    char err[256];
    if (v != NULL && set_key(e, &exporter_keys[i], v, err, sizeof err) != 0)
      error_at(cx, vn, key, "%s", err);
  }
}

/* Parses the `exporters:` list into a new array. Errors are recorded in cx. */
static tt_exporter_conf_t *parse_exporters(ctx_t *cx, yaml_document_t *d, yaml_node_t *n,
                                           size_t *count) {
  *count = 0;
  if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
    return NULL; /* `exporters:` with nothing under it */
  if (n->type != YAML_SEQUENCE_NODE) {
    error_at(cx, n, "exporters", "expected a list of exporters");
    return NULL;
  }
  size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  tt_exporter_conf_t *arr = calloc(cnt ? cnt : 1, sizeof *arr);
  if (arr == NULL) {
    error_at(cx, n, "exporters", "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < cnt; i++) {
    yaml_node_t *item = yaml_document_get_node(d, n->data.sequence.items.start[i]);
    tt_exporter_conf_t *e = &arr[i];
    char where[32], err[256];
    snprintf(where, sizeof where, "exporters[%zu]", i);
    for (size_t k = 0; k < NEXPKEYS; k++)
      if (exporter_keys[k].def[0] != '\0' &&
          set_key(e, &exporter_keys[k], exporter_keys[k].def, err, sizeof err) != 0)
        error_at(cx, item, where, "bad default for %s (a bug)", exporter_keys[k].name);
    if (item->type != YAML_MAPPING_NODE) {
      error_at(cx, item, where, "each exporter is a mapping with a name and an endpoint");
      continue;
    }
    bool seen[NEXPKEYS] = {0};
    parse_exporter_map(cx, d, item, where, "", e, seen);
    if (e->name[0] == '\0')
      error_at(cx, item, where, "name: required");
    if (e->endpoint[0] == '\0')
      error_at(cx, item, where, "endpoint: required");
    if (strcmp(e->spool_mode, "always") == 0 && e->spool_dir[0] == '\0') {
      char key[64];
      snprintf(key, sizeof key, "%s.spool.mode", where);
      error_at(cx, item, key, "\"always\" needs spool.dir");
    }
    if (strcmp(e->protocol, "http/protobuf") == 0 && e->endpoint[0] != '\0' &&
        strncmp(e->endpoint, "http://", 7) != 0 && strncmp(e->endpoint, "https://", 8) != 0)
      error_at(cx, item, where, "endpoint: an http/protobuf endpoint is a URL (http[s]://...)");
    for (size_t j = 0; j < i; j++)
      if (e->name[0] != '\0' && strcmp(arr[j].name, e->name) == 0)
        error_at(cx, item, where, "name: \"%s\" is used twice", e->name);
  }
  *count = cnt;
  return arr;
}

/* ---- the document walk ---------------------------------------------------------------------- */

static void walk(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *prefix, tt_config_t *c,
                 bool *seen) {
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    if (kn->type != YAML_SCALAR_NODE) {
      error_at(cx, kn, prefix[0] ? prefix : "(top)", "keys must be plain strings");
      continue;
    }
    char path[256];
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
             (const char *)kn->data.scalar.value);
    if (strcmp(path, "exporters") == 0) {
      size_t cnt = 0;
      tt_exporter_conf_t *arr = parse_exporters(cx, d, vn, &cnt);
      if (c->exporters != cx->base_exporters)
        free(c->exporters);
      c->exporters = arr;
      c->nexporters = cnt;
      continue;
    }
    if (strcmp(path, "policies") == 0) {
      tt_policy_set_t *s = parse_policies(cx, d, vn);
      if (s != NULL) {
        tt__policy_set_unref(c->policies);
        c->policies = s;
      }
      continue;
    }
    size_t i = 0;
    while (i < NKEYS && strcmp(keys[i].name, path) != 0)
      i++;
    if (i < NKEYS) {
      if (seen[i])
        error_at(cx, kn, path, "set twice");
      seen[i] = true;
      const char *v = scalar(cx, vn, path);
      char err[256];
      if (v != NULL && set_key(c, &keys[i], v, err, sizeof err) != 0)
        error_at(cx, vn, path, "%s", err);
      continue;
    }
    /* A prefix of known keys is a section to descend into; anything else is a typo. */
    size_t plen = strlen(path);
    bool section = false;
    for (size_t j = 0; j < NKEYS && !section; j++)
      section = strncmp(keys[j].name, path, plen) == 0 && keys[j].name[plen] == '.';
    if (section && vn->type == YAML_MAPPING_NODE)
      walk(cx, d, vn, path, c, seen);
    else if (section && vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0)
      continue; /* an empty section (`admin:`) keeps its defaults */
    else if (section)
      error_at(cx, vn, path, "expected a mapping (section)");
    else
      error_at(cx, kn, path, "unknown key");
  }
}

int tt__config_defaults(tt_config_t *c) {
  memset(c, 0, sizeof *c);
  char err[256];
  for (size_t i = 0; i < NKEYS; i++)
    if (set_key(c, &keys[i], keys[i].def, err, sizeof err) != 0)
      return -EINVAL; /* a bad default is a bug; test_config checks every default */
  c->policies = tt__policy_set_default();
  snprintf(c->source, sizeof c->source, "(defaults)");
  return c->policies ? 0 : -ENOMEM;
}

int tt__config_load_string(const char *yaml, size_t len, const char *name, tt_config_t *c,
                           tt_buf_t *errs) {
  int rc = tt__config_defaults(c);
  if (rc != 0)
    return rc;
  ctx_t cx = {name, errs, 0, TT_BUF_INIT, c->exporters};
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
  if (!yaml_parser_load(&parser, &doc)) {
    tt__buf_appendf(errs, "%s:%zu: (yaml): %s%s%s\n", name, parser.problem_mark.line + 1,
                    parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                    parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    return -EINVAL;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  tt_config_t work = *c;
  tt__policy_set_ref(work.policies);
  bool seen[NKEYS] = {0};
  if (root != NULL && root->type == YAML_MAPPING_NODE)
    walk(&cx, &doc, root, "", &work, seen);
  else if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
    error_at(&cx, root, "(top)", "the configuration must be a mapping of keys");
  if (cx.nerr == 0 && work.max_trace_bytes > work.memory_budget)
    error_at(&cx, root, "memory.max_trace_size", "must not exceed memory.budget");
  if (cx.nerr == 0 && strcmp(work.sink_type, "none") == 0 && work.nexporters == 0)
    error_at(&cx, root, "sink.type", "\"none\" needs at least one entry under exporters:");
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  tt__buf_free(&cx.tmp);
  if (cx.nerr != 0) {
    tt__policy_set_unref(work.policies);
    if (work.exporters != c->exporters)
      free(work.exporters);
    return -EINVAL;
  }
  tt__policy_set_unref(c->policies);
  if (c->exporters != work.exporters)
    free(c->exporters);
  *c = work;
  snprintf(c->source, sizeof c->source, "%s", name);
  return 0;
}

int tt__config_load_file(const char *path, tt_config_t *c, tt_buf_t *errs) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    tt__config_defaults(c);
    tt__buf_appendf(errs, "%s:0: (file): cannot open: %s\n", path, strerror(e));
    return -EINVAL;
  }
  tt_buf_t text = TT_BUF_INIT;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    tt__buf_append(&text, chunk, n);
  fclose(f);
  int rc =
      tt__config_load_string(text.data ? (const char *)text.data : "", text.len, path, c, errs);
  tt__buf_free(&text);
  return rc;
}

void tt__config_free(tt_config_t *c) {
  tt__policy_set_unref(c->policies);
  c->policies = NULL;
  free(c->exporters);
  c->exporters = NULL;
  c->nexporters = 0;
}

void tt__config_pipeline_opts(const tt_config_t *c, tt_pipeline_opts_t *o) {
  tt__pipeline_opts_default(o);
  o->workers = (unsigned)c->workers;
  o->root_grace_ns = c->root_grace_ms * 1000000ull;
  o->idle_timeout_ns = c->idle_timeout_ms * 1000000ull;
  o->max_trace_age_ns = c->max_trace_age_ms * 1000000ull;
  o->tick_ns = c->tick_ms * 1000000ull;
  o->memory_budget = c->memory_budget;
  o->max_trace_bytes = c->max_trace_bytes;
  o->retry_after_ms = (uint32_t)c->retry_after_ms;
  o->late_cache_traces = (uint64_t)c->late_cache_traces;
  o->late_cache_ttl_ns = c->late_cache_ttl_ms * 1000000ull;
}

int tt__config_describe(tt_buf_t *out) {
  int rc = tt__buf_append_str(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
  for (size_t i = 0; i < NKEYS; i++)
    rc |= tt__buf_appendf(out, "| `%s` | %s | `%s` | %s |\n", keys[i].name,
                          ctype_names[keys[i].type], keys[i].def, keys[i].doc);
  rc |= tt__buf_append_str(out, "\nKeys of each `exporters:` item:\n\n"
                                "| key | type | default | meaning |\n|---|---|---|---|\n");
  for (size_t i = 0; i < NEXPKEYS; i++)
    rc |= tt__buf_appendf(out, "| `%s` | %s | %s%s%s | %s |\n", exporter_keys[i].name,
                          strcmp(exporter_keys[i].name, "headers") == 0
                              ? "mapping"
                              : ctype_names[exporter_keys[i].type],
                          exporter_keys[i].def[0] ? "`" : "",
                          exporter_keys[i].def[0] ? exporter_keys[i].def : "(none)",
                          exporter_keys[i].def[0] ? "`" : "", exporter_keys[i].doc);
  return rc;
}
