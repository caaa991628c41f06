/* tailtrace-collector configuration: one YAML file (libyaml), every key in one table
 * {name, type, default, field, validator} in config.c (an exporter's keys in config_exporters.c;
 * config_int.h lists the loader's files), documented in docs/config.md. No file at
 * all gives the defaults. `${VAR}` and `${VAR:-default}` in values expand from the environment.
 * Every error names the file, the line and the key; a config with any error is refused whole.
 * Functions here are called from the main thread only. */
#ifndef TT_COLLECTOR_CONFIG_H
#define TT_COLLECTOR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pipeline.h"
#include "policy.h"
#include "red.h"

/* One OTLP forwarding exporter (the `exporters:` list): see sink_otlp.h and docs/config.md. */
typedef struct {
  char name[64];
  char protocol[16]; /* grpc | http/protobuf */
  char endpoint[256];
  bool insecure;
  char compression[8]; /* gzip | none */
  uint64_t timeout_ms;
  char ca_file[256];
  char cert_file[256];
  char key_file[256];
  uint64_t queue_bytes;
  uint64_t max_request_bytes;
  uint64_t retry_initial_ms;
  uint64_t retry_max_ms;
  char spool_dir[256];
  uint64_t spool_bytes;
  bool spool_fsync;
  char spool_mode[16]; /* on_failure | always */
  char headers[2048];  /* built from the `headers` mapping: "k=v,k2=v2", values percent-encoded */
  uint32_t line;       /* the item's line in the file */
  uint32_t key_lines[32]; /* per key of the exporter table; read with tt__config_exporter_line */
} tt_exporter_conf_t;

/* Capacity of tt_config_t.key_lines (config.c asserts its key table fits). */
#define TT_CONFIG_MAX_KEYS 96

typedef struct {
  bool grpc_enabled;
  char grpc_endpoint[128];
  uint64_t grpc_max_message;
  int64_t grpc_max_conns, grpc_max_conns_per_ip;
  uint64_t grpc_idle_ms, grpc_request_timeout_ms;
  bool http_enabled;
  char http_endpoint[128];
  uint64_t http_max_body;
  int64_t http_max_conns, http_max_conns_per_ip;
  uint64_t http_idle_ms, http_header_timeout_ms, http_min_body_rate, http_receive_budget;
  bool admin_enabled;
  char admin_endpoint[128];
  int64_t workers;
  uint64_t root_grace_ms;
  uint64_t idle_timeout_ms;
  uint64_t max_trace_age_ms;
  uint64_t drop_delay_ms;
  uint64_t tick_ms;
  uint64_t memory_budget;
  uint64_t max_trace_bytes;
  uint64_t retry_after_ms;
  int64_t late_cache_traces;
  uint64_t late_cache_ttl_ms;
  char sink_type[16];
  char file_path[512];
  char file_format[16];
  uint64_t file_max_bytes;
  int64_t file_max_files;
  char log_level[16];
  uint64_t log_summary_ms; /* log.summary_interval; 0: no summary line */
  uint64_t shutdown_deadline_ms;
  char bus_type[16];        /* none | redis */
  char bus_endpoints[1024]; /* comma-separated host:port list */
  char bus_username[128];
  char bus_password[256];
  char bus_key_prefix[64];
  uint64_t bus_key_ttl_ms;
  uint64_t bus_timeout_ms;
  uint64_t bus_flush_ms;
  int64_t bus_queue;
  bool bus_tls;                /* bus.redis.tls.enabled */
  char bus_tls_ca_file[512];   /* empty: the system's trust store */
  char bus_tls_cert_file[512]; /* client certificate; set together with the key */
  char bus_tls_key_file[512];
  char bus_tls_server_name[256]; /* empty: each endpoint's host */
  bool bus_tls_insecure;
  tt_policy_set_t *policies;     /* owned reference */
  tt_exporter_conf_t *exporters; /* owned array (NULL when none) */
  tt_red_opts_t signals;         /* the `signals:` section (config_signals.c) */
  size_t nexporters;
  char source[512];                       /* the file this came from, or "(defaults)" */
  uint32_t key_lines[TT_CONFIG_MAX_KEYS]; /* per key of the table; read with tt__config_line */
  /* Owned: "FILE:LINE: KEY: warning: ...\n" lines for what the file sets that works but
   * probably not as meant, found while loading (tt__config_warnings hands them out). */
  tt_buf_t warnings;
} tt_config_t;

/* Fills every key with its default (policies included). Returns 0 or -ENOMEM. */
int tt__config_defaults(tt_config_t *c);

/* Loads defaults, then the YAML text over them. On error returns -EINVAL and appends one line per
 * problem to errs ("FILE:LINE: KEY: message\n"); *c is then left with defaults and must still be
 * freed. `name` is the file name used in messages. */
int tt__config_load_string(const char *yaml, size_t len, const char *name, tt_config_t *c,
                           tt_buf_t *errs);

/* Reads the file and loads it as tt__config_load_string does. */
int tt__config_load_file(const char *path, tt_config_t *c, tt_buf_t *errs);

/* The line of the file that set key (a top-level key's full name), or 0 when the key kept its
 * default. */
size_t tt__config_line(const tt_config_t *c, const char *key);

/* The line that set key ("endpoint", "spool.dir") of an exporter item, else the item's line. */
size_t tt__config_exporter_line(const tt_exporter_conf_t *e, const char *key);

/* What a SIGHUP cannot apply: appends to out the names of the keys whose values differ between
 * the running configuration and a freshly loaded one and that take effect only at a restart,
 * each as a JSON string ("\"workers\",\"admin.endpoint\""), "exporters" when that list
 * changed, and "signals" when that section did. `policies` and `log.level` are reloaded, so never
 * named. Returns the count. */
size_t tt__config_restart_keys(const tt_config_t *running, const tt_config_t *fresh, tt_buf_t *out);

/* Drops the policy reference and frees the exporters. */
void tt__config_free(tt_config_t *c);

/* Splits "host:port" (or "[v6]:port"). Returns 0 or -EINVAL. */
int tt__config_split_endpoint(const char *ep, char *host, size_t hostlen, int *port);

/* Maps the decision, memory and late-span keys onto pipeline options (sinks, clock and policies
 * are left to the caller). */
void tt__config_pipeline_opts(const tt_config_t *c, tt_pipeline_opts_t *o);

/* Splits bus.redis.endpoints into at most max NUL-terminated "host:port" strings in buf (cap
 * bytes), pointed to by eps. Returns the count, or -EINVAL (an empty item, a bad endpoint, more
 * than max). */
int tt__config_bus_endpoints(const char *list, char *buf, size_t cap, const char **eps, size_t max);

/* Appends one line per configuration choice that works but probably not as meant (said by
 * --validate, logged at start), each "FILE:LINE: KEY: warning: message\n": an empty policy list,
 * policies after a ratio or rate_limit (never reached), two policies with one name, an exporter
 * header that is empty, and with the bus on: rate_limit counts only its own collector's traffic,
 * timings that let a shared keep come too late, TLS settings that are off or unverified. */
void tt__config_warnings(const tt_config_t *c, tt_buf_t *out);

/* Appends a Markdown table of every key (name, type, default, description), then one of the
 * keys of an `exporters:` item. */
int tt__config_describe(tt_buf_t *out);

#endif
