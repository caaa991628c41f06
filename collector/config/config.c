/* Table-driven YAML configuration: see config.h. This file holds the top-level key table, the
 * document walk and the entry points; config_int.h lists the other parts. Defaults are parsed from
 * their text form by the same code as file values, so a default can never bypass a validator. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_check.h"
#include "config_int.h"
#include "log.h"

/* A listening address: the host may be a name (resolved at start) or absent (":4317"). */
static int v_endpoint(const void *f, char *err, size_t n) {
  char host[128];
  int port;
  if (tt__config_listen_split(f, host, sizeof host, &port) != 0) {
    snprintf(err, n,
             "expected host:port or :port with a port 0-65535, got \"%s\" (e.g. "
             "127.0.0.1:4317, localhost:4317, [::1]:4317, :4317)",
             (const char *)f);
    return -EINVAL;
  }
  return 0;
}

int tt__config_v_positive(const void *f, char *err, size_t n) {
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

int tt__config_one_of(const char *value, const char *const *choices, char *err, size_t n) {
  size_t k = 0;
  while (choices[k] != NULL) {
    if (strcmp(value, choices[k]) == 0)
      return 0;
    k++;
  }
  size_t used = (size_t)snprintf(err, n, "must be");
  for (size_t i = 0; i < k && used < n; i++)
    used += (size_t)snprintf(err + used, n - used, "%s\"%s\"",
                             i == 0       ? " "
                             : i + 1 == k ? " or "
                                          : ", ",
                             choices[i]);
  return -EINVAL;
}

static int v_sink(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"file", "null", "none", NULL};
  return tt__config_one_of(f, choices, err, n);
}

static int v_bus_type(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"none", "redis", NULL};
  return tt__config_one_of(f, choices, err, n);
}

#define BUS_MAX_NODES 64

int tt__config_bus_endpoints(const char *list, char *buf, size_t cap, const char **eps,
                             size_t max) {
  size_t len = strlen(list);
  if (len + 1 > cap)
    return -EINVAL;
  memcpy(buf, list, len + 1);
  size_t n = 0;
  for (char *item = buf;;) {
    char *comma = strchr(item, ',');
    if (comma != NULL)
      *comma = '\0';
    while (*item == ' ')
      item++;
    char *end = item + strlen(item);
    while (end > item && end[-1] == ' ')
      *--end = '\0';
    char host[256];
    int port;
    if (n == max || tt__config_split_endpoint(item, host, sizeof host, &port) != 0 || port == 0)
      return -EINVAL;
    eps[n++] = item;
    if (comma == NULL)
      break;
    item = comma + 1;
  }
  return (int)n;
}

static int v_bus_endpoints(const void *f, char *err, size_t n) {
  char buf[1024];
  const char *eps[BUS_MAX_NODES];
  if (tt__config_bus_endpoints(f, buf, sizeof buf, eps, BUS_MAX_NODES) < 0) {
    snprintf(err, n,
             "expected a comma-separated list of up to %d host:port (port 1-65535), got "
             "\"%s\"",
             BUS_MAX_NODES, (const char *)f);
    return -EINVAL;
  }
  return 0;
}

static int v_key_prefix(const void *f, char *err, size_t n) {
  for (const char *c = f; *c != '\0'; c++)
    if (*c <= ' ' || *c > '~') {
      snprintf(err, n, "must be printable ASCII without spaces");
      return -EINVAL;
    }
  return 0;
}

static int v_positive_int(const void *f, char *err, size_t n) {
  if (*(const int64_t *)f <= 0) {
    snprintf(err, n, "must be greater than zero");
    return -EINVAL;
  }
  return 0;
}

/* Connection caps: at least one connection, and no more than a process could hold open. */
static int v_conns(const void *f, char *err, size_t n) {
  int64_t v = *(const int64_t *)f;
  if (v < 1 || v > 1000000) {
    snprintf(err, n, "must be 1 to 1000000");
    return -EINVAL;
  }
  return 0;
}

static int v_conns_per_ip(const void *f, char *err, size_t n) {
  int64_t v = *(const int64_t *)f;
  if (v < 0 || v > 1000000) {
    snprintf(err, n, "must be 0 (no per-address cap) to 1000000");
    return -EINVAL;
  }
  return 0;
}

/* Timeouts the receivers keep in 32-bit milliseconds. */
static int v_conn_timeout(const void *f, char *err, size_t n) {
  uint64_t v = *(const uint64_t *)f;
  if (v < 10 || v > 86400000) {
    snprintf(err, n, "must be 10ms to 24h");
    return -EINVAL;
  }
  return 0;
}

static int v_min_body_rate(const void *f, char *err, size_t n) {
  uint64_t v = *(const uint64_t *)f;
  if (v < 1 || v > UINT32_MAX) {
    snprintf(err, n, "must be 1B to 4GiB (bytes per second)");
    return -EINVAL;
  }
  return 0;
}

static int v_format(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"json", "protobuf", NULL};
  return tt__config_one_of(f, choices, err, n);
}

static int v_level(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"debug", "info", "warn", "error", "off", NULL};
  if (tt__log_level_parse(f) >= 0)
    return 0;
  return tt__config_one_of(f, choices, err, n) == 0 ? 0 : -EINVAL;
}

int tt__config_v_path(const void *f, char *err, size_t n) {
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
     SZ(grpc_endpoint), v_endpoint,
     "OTLP/gRPC listen address: host:port, [v6]:port, or :port for every IPv4 "
     "interface; a host name is resolved at start (its first IPv4 address); port 0 = ephemeral."},
    {"receivers.otlp_grpc.max_message_size", CT_SIZE, "4MiB", OFF(grpc_max_message), 0,
     tt__config_v_positive, "Largest decompressed gRPC message accepted."},
    {"receivers.otlp_grpc.max_connections", CT_INT, "1024", OFF(grpc_max_conns), 0, v_conns,
     "Open gRPC connections; at the cap the one silent longest (1 s or more) is closed to make "
     "room, else the new one is."},
    {"receivers.otlp_grpc.max_connections_per_ip", CT_INT, "256", OFF(grpc_max_conns_per_ip), 0,
     v_conns_per_ip,
     "Open gRPC connections from one client address; 0 = no per-address cap (behind a proxy)."},
    {"receivers.otlp_grpc.idle_timeout", CT_DURATION, "60s", OFF(grpc_idle_ms), 0, v_conn_timeout,
     "A gRPC connection without a call this long is closed (GOAWAY)."},
    {"receivers.otlp_grpc.request_timeout", CT_DURATION, "10s", OFF(grpc_request_timeout_ms), 0,
     v_conn_timeout, "An Export call must deliver its message within this of starting."},
    {"receivers.otlp_http.enabled", CT_BOOL, "true", OFF(http_enabled), 0, NULL,
     "Run the OTLP/HTTP receiver."},
    {"receivers.otlp_http.endpoint", CT_STRING, "127.0.0.1:4318", OFF(http_endpoint),
     SZ(http_endpoint), v_endpoint,
     "OTLP/HTTP listen address (POST /v1/traces), written as the gRPC one."},
    {"receivers.otlp_http.max_body_size", CT_SIZE, "20MiB", OFF(http_max_body), 0,
     tt__config_v_positive,
     "Largest HTTP body accepted (wire and inflated); larger is answered 413."},
    {"receivers.otlp_http.max_connections", CT_INT, "1024", OFF(http_max_conns), 0, v_conns,
     "Open HTTP connections; at the cap the longest idle (else longest in its headers) is "
     "closed to make room, else the new one is."},
    {"receivers.otlp_http.max_connections_per_ip", CT_INT, "256", OFF(http_max_conns_per_ip), 0,
     v_conns_per_ip,
     "Open HTTP connections from one client address; 0 = no per-address cap (behind a proxy)."},
    {"receivers.otlp_http.idle_timeout", CT_DURATION, "30s", OFF(http_idle_ms), 0, v_conn_timeout,
     "A keep-alive connection idle between requests this long is closed."},
    {"receivers.otlp_http.header_timeout", CT_DURATION, "10s", OFF(http_header_timeout_ms), 0,
     v_conn_timeout,
     "A request's line and headers must arrive within this of its first byte; a body gets as "
     "long again plus its size at min_body_rate."},
    {"receivers.otlp_http.min_body_rate", CT_SIZE, "16KiB", OFF(http_min_body_rate), 0,
     v_min_body_rate, "Bytes per second a request body must average."},
    {"receivers.otlp_http.receive_budget", CT_SIZE, "64MiB", OFF(http_receive_budget), 0,
     tt__config_v_positive,
     "Bytes of request bodies being received at once, all connections; a request past it is "
     "answered 429 with Retry-After before its body is read."},
    {"admin.enabled", CT_BOOL, "true", OFF(admin_enabled), 0, NULL,
     "Run the admin port (/healthz, /readyz, /metrics)."},
    {"admin.endpoint", CT_STRING, "127.0.0.1:13133", OFF(admin_endpoint), SZ(admin_endpoint),
     v_endpoint, "Admin listen address, written as the gRPC one."},
    {"workers", CT_INT, "0", OFF(workers), 0, v_workers,
     "Shard threads holding and deciding traces; 0 = one per online core."},
    {"decision.root_grace", CT_DURATION, "2s", OFF(root_grace_ms), 0, tt__config_v_positive,
     "Decide a trace this long after its root span arrived."},
    {"decision.idle_timeout", CT_DURATION, "15s", OFF(idle_timeout_ms), 0, tt__config_v_positive,
     "... or once no span arrived for this long (traces whose root never comes)."},
    {"decision.max_trace_age", CT_DURATION, "60s", OFF(max_trace_age_ms), 0, tt__config_v_positive,
     "... or at the latest this long after its first span."},
    {"decision.drop_delay", CT_DURATION, "6s", OFF(drop_delay_ms), 0, NULL,
     "A trace decided drop is held this much longer: a late span that a keep policy matches "
     "(an error, a slow span, a keep rule) turns it into a keep, sent complete. 0 = drops are "
     "final at once. The default covers the OpenTelemetry SDKs' 5 s export timer."},
    {"decision.tick", CT_DURATION, "20ms", OFF(tick_ms), 0, tt__config_v_positive,
     "Timing wheel resolution, and how often each shard takes the spans received meanwhile: "
     "decisions happen within one tick of their time."},
    {"memory.budget", CT_SIZE, "256MiB", OFF(memory_budget), 0, v_budget,
     "Bytes held for undecided traces (span bytes + bookkeeping) and for the decided-trace cache "
     "(which may use at most a quarter of it). Past 90% the costliest traces (size x age) are "
     "decided early; at 100% senders are throttled (429 / RESOURCE_EXHAUSTED)."},
    {"memory.max_trace_size", CT_SIZE, "16MiB", OFF(max_trace_bytes), 0, tt__config_v_positive,
     "A trace holding this many bytes is decided at once (checked as each request's spans of the "
     "trace are taken, so one request may carry it past); its later spans follow the decision."},
    {"memory.retry_after", CT_DURATION, "1s", OFF(retry_after_ms), 0, tt__config_v_positive,
     "Retry delay suggested to throttled senders (Retry-After / RetryInfo)."},
    {"late_spans.cache_traces", CT_INT, "200000", OFF(late_cache_traces), 0, v_nonneg,
     "Decided trace ids remembered so late spans follow their trace's decision (also bounded by a "
     "quarter of memory.budget, counted against it)."},
    {"late_spans.ttl", CT_DURATION, "5m", OFF(late_cache_ttl_ms), 0, tt__config_v_positive,
     "How long a decided trace id is remembered."},
    {"bus.type", CT_STRING, "none", OFF(bus_type), SZ(bus_type), v_bus_type,
     "The decision bus that makes collectors agree (docs/bus.md): none, or redis. With it, a "
     "keep made on a trace's own spans (errors, latency, attribute rules) is shared, and other "
     "collectors holding spans of that trace keep them with the same reason and weight."},
    {"bus.redis.endpoints", CT_STRING, "127.0.0.1:6379", OFF(bus_endpoints), SZ(bus_endpoints),
     v_bus_endpoints,
     "Redis nodes, comma-separated host:port. Trace ids are spread over them by a hash of the id: "
     "every collector must list the same nodes in the same order."},
    {"bus.redis.username", CT_STRING, "", OFF(bus_username), SZ(bus_username), NULL,
     "Redis 6 ACL user for AUTH; empty: AUTH with the password alone."},
    {"bus.redis.password", CT_STRING, "", OFF(bus_password), SZ(bus_password), NULL,
     "Redis password (AUTH); empty: none. Write ${ENV_VAR}, never the password itself."},
    {"bus.redis.key_prefix", CT_STRING, "tt:k:", OFF(bus_key_prefix), SZ(bus_key_prefix),
     v_key_prefix, "Prefix of the bus's keys; collectors that must agree use the same one."},
    {"bus.redis.key_ttl", CT_DURATION, "5m", OFF(bus_key_ttl_ms), 0, tt__config_v_positive,
     "How long a shared keep stays in Redis (whole seconds)."},
    {"bus.redis.timeout", CT_DURATION, "200ms", OFF(bus_timeout_ms), 0, tt__config_v_positive,
     "Connect timeout and the longest wait for one batch's answers; past it the node counts as "
     "down and reconnects with backoff."},
    {"bus.redis.flush_interval", CT_DURATION, "2ms", OFF(bus_flush_ms), 0, NULL,
     "Shares and look-ups are batched this long into one pipelined round trip per node."},
    {"bus.redis.queue_size", CT_INT, "65536", OFF(bus_queue), 0, v_positive_int,
     "Shares and look-ups waiting for the bus; past it they are refused (counted) and the "
     "collector decides on its own."},
    {"bus.redis.tls.enabled", CT_BOOL, "false", OFF(bus_tls), 0, NULL,
     "Speak TLS to every Redis node (Redis 6+ tls-port). The tls.*_file files must be readable "
     "(--validate checks) and are loaded when the collector starts: one that does not load "
     "stops it."},
    {"bus.redis.tls.ca_file", CT_STRING, "", OFF(bus_tls_ca_file), SZ(bus_tls_ca_file), NULL,
     "PEM CA bundle the nodes' certificates must chain to; empty: the system's trust store."},
    {"bus.redis.tls.cert_file", CT_STRING, "", OFF(bus_tls_cert_file), SZ(bus_tls_cert_file), NULL,
     "Client certificate (PEM, chain allowed) for nodes that require one (tls-auth-clients "
     "yes); empty: none. Needs key_file."},
    {"bus.redis.tls.key_file", CT_STRING, "", OFF(bus_tls_key_file), SZ(bus_tls_key_file), NULL,
     "Private key (PEM) of cert_file; empty: none. Needs cert_file."},
    {"bus.redis.tls.server_name", CT_STRING, "", OFF(bus_tls_server_name), SZ(bus_tls_server_name),
     NULL,
     "Name (or IP address) the nodes' certificates must carry, also sent as SNI; empty: each "
     "endpoint's host."},
    {"bus.redis.tls.insecure", CT_BOOL, "false", OFF(bus_tls_insecure), 0, NULL,
     "Skip the verification of the nodes' certificates and names. For tests only: anyone on "
     "the path can then read and forge the bus."},
    {"sink.type", CT_STRING, "file", OFF(sink_type), SZ(sink_type), v_sink,
     "The local sink for kept traces: file (OTLP/JSON lines), null (discard; benchmarks) or none "
     "(only the `exporters:` list)."},
    {"sink.file.path", CT_STRING, "./tailtrace-traces.jsonl", OFF(file_path), SZ(file_path),
     tt__config_v_path,
     "The file sink's output: one OTLP/JSON ExportTraceServiceRequest per line."},
    {"sink.file.format", CT_STRING, "json", OFF(file_format), SZ(file_format), v_format,
     "json: one OTLP/JSON ExportTraceServiceRequest per line; protobuf: length-delimited "
     "binary ExportTraceServiceRequest records (varint length, then the bytes)."},
    {"sink.file.max_size", CT_SIZE, "100MiB", OFF(file_max_bytes), 0, tt__config_v_positive,
     "Rotate the file before it grows past this size."},
    {"sink.file.max_files", CT_INT, "5", OFF(file_max_files), 0, v_max_files,
     "Rotated files kept (path.1 newest ... path.N oldest)."},
    {"log.level", CT_STRING, "info", OFF(log_level), SZ(log_level), v_level,
     "debug, info, warn, error or off. Logs are JSON lines on stderr. Reloaded on SIGHUP."},
    {"log.summary_interval", CT_DURATION, "60s", OFF(log_summary_ms), 0, NULL,
     "Between two summary lines (spans in, traces kept and dropped by reason, refusals by "
     "cause, spans per sink and exporter). 0: no summary."},
    {"shutdown.deadline", CT_DURATION, "10s", OFF(shutdown_deadline_ms), 0, tt__config_v_positive,
     "On SIGTERM: stop receiving, decide all held traces, flush, exit within this time."},
};

#define NKEYS (sizeof keys / sizeof keys[0])
_Static_assert(NKEYS <= TT_CONFIG_MAX_KEYS, "tt_config_t.key_lines is too small for the table");

static size_t key_index(const char *name) {
  size_t i = 0;
  while (i < NKEYS && strcmp(keys[i].name, name) != 0)
    i++;
  return i; /* only called with names of the table */
}

/* ---- the document walk ---------------------------------------------------------------------- */

/* Tries name and each of its section prefixes ("a.b.c": "a", "a.b", "a.b.c") as the word's
 * nearest match. */
static void near_candidates(tt_config_near_t *nr, const char *word, const char *name) {
  for (const char *p = name;; p++)
    if (*p == '.' || *p == '\0') {
      tt__config_near_try(nr, word, name, (size_t)(p - name));
      if (*p == '\0')
        return;
    }
}

/* seen[i] is set once keys[i] is read; at[i] is then its key node, for checks that involve
 * several keys and must still name a line. */
static void walk(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *prefix, tt_config_t *c,
                 bool *seen, const yaml_node_t **at) {
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    if (kn->type != YAML_SCALAR_NODE) {
      tt__config_error_at(cx, kn, prefix[0] ? prefix : "(top)", "keys must be plain strings");
      continue;
    }
    char path[256];
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "",
             (const char *)kn->data.scalar.value);
    if (strcmp(path, "exporters") == 0) {
      size_t cnt = 0;
      tt_exporter_conf_t *arr = tt__config_parse_exporters(cx, d, vn, &cnt);
      if (c->exporters != cx->base_exporters)
        free(c->exporters);
      c->exporters = arr;
      c->nexporters = cnt;
      continue;
    }
    if (strcmp(path, "signals") == 0) {
      tt__config_parse_signals(cx, d, vn, &c->signals);
      continue;
    }
    if (strcmp(path, "policies") == 0) {
      tt_policy_set_t *s = tt__config_parse_policies(cx, d, vn);
      if (s != NULL) {
        tt__policy_set_unref(c->policies);
        c->policies = s;
      }
      continue;
    }
    const key_t_ *k = tt__config_claim_key(cx, keys, NKEYS, seen, path, kn, path);
    if (k != NULL) {
      at[k - keys] = kn;
      tt__config_set_from_node(cx, c, k, vn, path);
      continue;
    }
    /* A prefix of known keys is a section to descend into; anything else is a typo, and the
     * nearest key or section (a prefix of a key at a dot) is offered in its place. */
    size_t plen = strlen(path);
    bool section = false;
    tt_config_near_t near = {0};
    near_candidates(&near, path, "exporters");
    near_candidates(&near, path, "policies");
    near_candidates(&near, path, "signals");
    for (size_t j = 0; j < NKEYS && !section; j++) {
      section = strncmp(keys[j].name, path, plen) == 0 && keys[j].name[plen] == '.';
      near_candidates(&near, path, keys[j].name);
    }
    if (section && vn->type == YAML_MAPPING_NODE)
      walk(cx, d, vn, path, c, seen, at);
    else if (section && vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0)
      continue; /* an empty section (`admin:`) keeps its defaults */
    else if (section)
      tt__config_error_at(cx, vn, path, "expected a mapping (section)");
    else
      tt__config_unknown_key(cx, kn, path, &near, "key");
  }
}

int tt__config_defaults(tt_config_t *c) {
  memset(c, 0, sizeof *c);
  char err[256];
  for (size_t i = 0; i < NKEYS; i++)
    if (tt__config_set_key(c, &keys[i], keys[i].def, err, sizeof err) != 0)
      return -EINVAL; /* a bad default is a bug; test_config checks every default */
  tt__red_opts_default(&c->signals);
  c->policies = tt__policy_set_default();
  snprintf(c->source, sizeof c->source, "(defaults)");
  return c->policies ? 0 : -ENOMEM;
}

/* What a valid file sets that works but probably not as meant: said, never refused. Each
 * warning names the line of the key it is about (0 for a key left at its default). */
static void warn(ctx_t *cx, const tt_config_t *c, const yaml_node_t *const *at) {
  bool bus = strcmp(c->bus_type, "none") != 0;
  tt__config_policy_warnings(cx, c->policies, bus);
  if (!bus)
    return;
  if (c->idle_timeout_ms > c->root_grace_ms + c->drop_delay_ms)
    tt__config_warn_at(cx, at[key_index("decision.idle_timeout")], "decision.idle_timeout",
                       "longer than root_grace + drop_delay: a part of a trace with no root and "
                       "no remote parent is decided after the other collectors' drops of that "
                       "trace are final, so a keep it shares may come too late for them "
                       "(docs/bus.md, Timing)");
  if (c->bus_tls && c->bus_tls_insecure)
    tt__config_warn_at(cx, at[key_index("bus.redis.tls.insecure")], "bus.redis.tls.insecure",
                       "the Redis nodes' certificates are not verified (insecure: true), so anyone "
                       "on the path can read and forge the bus (for tests only)");
  if (!c->bus_tls && (c->bus_tls_ca_file[0] || c->bus_tls_cert_file[0] ||
                      c->bus_tls_server_name[0] || c->bus_tls_insecure))
    tt__config_warn_at(cx, at[key_index("bus.redis.tls.enabled")], "bus.redis.tls",
                       "settings are given but bus.redis.tls.enabled is false: the bus speaks "
                       "plain TCP");
  if (c->drop_delay_ms == 0)
    tt__config_warn_at(cx, at[key_index("decision.drop_delay")], "decision.drop_delay",
                       "0 makes drops final at once, so keeps shared on the bus reach only traces "
                       "this collector has not decided yet");
}

int tt__config_load_string(const char *yaml, size_t len, const char *name, tt_config_t *c,
                           tt_buf_t *errs) {
  int rc = tt__config_defaults(c);
  if (rc != 0)
    return rc;
  ctx_t cx = {name, errs, 0, TT_BUF_INIT, c->exporters, NULL, NULL, 0, NULL};
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
  work.warnings = (tt_buf_t)TT_BUF_INIT;
  cx.warns = &work.warnings;
  bool seen[NKEYS] = {0};
  const yaml_node_t *at[NKEYS] = {0};
  if (root != NULL && root->type == YAML_MAPPING_NODE)
    walk(&cx, &doc, root, "", &work, seen, at);
  else if (root != NULL && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
    tt__config_error_at(&cx, root, "(top)", "the configuration must be a mapping of keys");
  if (cx.nerr == 0 && work.max_trace_bytes > work.memory_budget)
    tt__config_error_at(&cx, root, "memory.max_trace_size", "must not exceed memory.budget");
  if (cx.nerr == 0 && strcmp(work.bus_type, "redis") == 0 && work.bus_key_ttl_ms < 1000)
    tt__config_error_at(&cx, root, "bus.redis.key_ttl", "must be at least 1s");
  if (cx.nerr == 0 && (work.bus_tls_cert_file[0] == '\0') != (work.bus_tls_key_file[0] == '\0')) {
    /* Reported where the one that is set was written (a default never sets either). */
    bool cert = work.bus_tls_cert_file[0] != '\0';
    const char *key = cert ? "bus.redis.tls.cert_file" : "bus.redis.tls.key_file";
    tt__config_error_at(&cx, at[key_index(key)], key, "%s",
                        cert ? "needs bus.redis.tls.key_file (the certificate's private key)"
                             : "needs bus.redis.tls.cert_file (the key's certificate)");
  }
  if (cx.nerr == 0 && strcmp(work.sink_type, "none") == 0 && work.nexporters == 0)
    tt__config_error_at(&cx, root, "sink.type",
                        "\"none\" needs at least one entry under exporters:");
  if (cx.nerr == 0)
    warn(&cx, &work, at);
  for (size_t i = 0; i < NKEYS; i++)
    work.key_lines[i] = at[i] ? (uint32_t)at[i]->start_mark.line + 1 : 0;
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  tt__buf_free(&cx.tmp);
  free(cx.policy_nodes);
  if (cx.nerr != 0) {
    tt__buf_free(&work.warnings);
    tt__policy_set_unref(work.policies);
    if (work.exporters != c->exporters)
      free(work.exporters);
    return -EINVAL;
  }
  tt__policy_set_unref(c->policies);
  if (c->exporters != work.exporters)
    free(c->exporters);
  tt__buf_free(&c->warnings);
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

size_t tt__config_line(const tt_config_t *c, const char *key) {
  for (size_t i = 0; i < NKEYS; i++)
    if (strcmp(keys[i].name, key) == 0)
      return c->key_lines[i];
  return 0;
}

/* Keys a SIGHUP applies; every other key is read once, at start. */
static bool reloadable(const char *name) {
  return strcmp(name, "log.level") == 0;
}

static bool same_value(const key_t_ *k, const tt_config_t *a, const tt_config_t *b) {
  const char *fa = (const char *)a + k->off, *fb = (const char *)b + k->off;
  switch (k->type) {
    case CT_BOOL:
      return *(const bool *)fa == *(const bool *)fb;
    case CT_INT:
      return *(const int64_t *)fa == *(const int64_t *)fb;
    case CT_DURATION:
    case CT_SIZE:
      return *(const uint64_t *)fa == *(const uint64_t *)fb;
    case CT_STRING:
      return strcmp(fa, fb) == 0;
    case CT_MAPPING:
      break;
  }
  return true;
}

size_t tt__config_restart_keys(const tt_config_t *running, const tt_config_t *fresh,
                               tt_buf_t *out) {
  size_t n = 0;
  for (size_t i = 0; i < NKEYS; i++)
    if (!reloadable(keys[i].name) && !same_value(&keys[i], running, fresh))
      tt__buf_appendf(out, "%s\"%s\"", n++ ? "," : "", keys[i].name);
  /* Exporter items are calloc'd and filled by the same code, so equal settings are equal bytes
   * up to the line numbers, which may move without any setting changing. */
  bool same = running->nexporters == fresh->nexporters;
  for (size_t i = 0; same && i < fresh->nexporters; i++)
    same = memcmp(&running->exporters[i], &fresh->exporters[i],
                  offsetof(tt_exporter_conf_t, line)) == 0;
  if (!same)
    tt__buf_appendf(out, "%s\"exporters\"", n++ ? "," : "");
  if (memcmp(&running->signals, &fresh->signals, sizeof fresh->signals) != 0)
    tt__buf_appendf(out, "%s\"signals\"", n++ ? "," : "");
  return n;
}

void tt__config_free(tt_config_t *c) {
  tt__buf_free(&c->warnings);
  tt__policy_set_unref(c->policies);
  c->policies = NULL;
  free(c->exporters);
  c->exporters = NULL;
  c->nexporters = 0;
}

/* Makes the Redis bus from the configuration (c outlives tt__pipeline_new, which calls this). */
static int redis_bus(void *ctx, tt_bus_answer_fn answer, void *answer_ctx, tt_bus_t **out) {
  const tt_config_t *c = ctx;
  char buf[sizeof c->bus_endpoints];
  const char *eps[BUS_MAX_NODES];
  int n = tt__config_bus_endpoints(c->bus_endpoints, buf, sizeof buf, eps, BUS_MAX_NODES);
  if (n <= 0)
    return -EINVAL;
  tt_bus_redis_opts_t ro = {
      .endpoints = eps,
      .nendpoints = (size_t)n,
      .username = c->bus_username[0] ? c->bus_username : NULL,
      .password = c->bus_password[0] ? c->bus_password : NULL,
      .key_prefix = c->bus_key_prefix,
      .key_ttl_s = (uint32_t)(c->bus_key_ttl_ms / 1000),
      .timeout_ms = (uint32_t)c->bus_timeout_ms,
      .flush_interval_ms = (uint32_t)c->bus_flush_ms,
      .queue_limit = (size_t)c->bus_queue,
      .answer = answer,
      .answer_ctx = answer_ctx,
      .tls = c->bus_tls,
      .tls_ca_file = c->bus_tls_ca_file,
      .tls_cert_file = c->bus_tls_cert_file,
      .tls_key_file = c->bus_tls_key_file,
      .tls_server_name = c->bus_tls_server_name,
      .tls_insecure = c->bus_tls_insecure,
  };
  return tt__bus_redis_new(&ro, out);
}

void tt__config_warnings(const tt_config_t *c, tt_buf_t *out) {
  if (c->warnings.len > 0)
    tt__buf_append(out, c->warnings.data, c->warnings.len);
}

void tt__config_pipeline_opts(const tt_config_t *c, tt_pipeline_opts_t *o) {
  tt__pipeline_opts_default(o);
  o->workers = (unsigned)c->workers;
  o->root_grace_ns = c->root_grace_ms * 1000000ull;
  o->idle_timeout_ns = c->idle_timeout_ms * 1000000ull;
  o->max_trace_age_ns = c->max_trace_age_ms * 1000000ull;
  o->drop_delay_ns = c->drop_delay_ms * 1000000ull;
  o->tick_ns = c->tick_ms * 1000000ull;
  o->memory_budget = c->memory_budget;
  o->max_trace_bytes = c->max_trace_bytes;
  o->retry_after_ms = (uint32_t)c->retry_after_ms;
  o->late_cache_traces = (uint64_t)c->late_cache_traces;
  o->late_cache_ttl_ns = c->late_cache_ttl_ms * 1000000ull;
  if (strcmp(c->bus_type, "redis") == 0) {
    o->bus_factory = redis_bus;
    o->bus_factory_ctx = (void *)c;
    /* The final look-up waits for a batch (flush interval) and its round trip (timeout); past
     * three timeouts the bus is too slow to wait for. */
    uint64_t wait_ms = c->bus_flush_ms + 3 * c->bus_timeout_ms;
    o->bus_wait_ns = (wait_ms < 1000 ? 1000 : wait_ms) * 1000000ull;
  }
}

int tt__config_describe(tt_buf_t *out) {
  int rc = tt__buf_append_str(out, "| key | type | default | meaning |\n|---|---|---|---|\n");
  rc |= tt__config_describe_keys(out, keys, NKEYS);
  rc |= tt__config_describe_exporters(out);
  rc |= tt__config_describe_signals(out);
  return rc;
}
