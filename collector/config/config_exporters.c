/* The `exporters:` section of the configuration (see config_int.h): a list of OTLP forwarding
 * exporters, each a mapping read through its own key table, plus a `headers` mapping. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"
#include "otlp_config.h" /* the header rules the transports apply */

static int v_protocol(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"grpc", "http/protobuf", NULL};
  return tt__config_one_of(f, choices, err, n);
}

static int v_compression(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"gzip", "none", NULL};
  return tt__config_one_of(f, choices, err, n);
}

static int v_spool_mode(const void *f, char *err, size_t n) {
  static const char *const choices[] = {"on_failure", "always", NULL};
  return tt__config_one_of(f, choices, err, n);
}

/* Below 64 KiB a request could not hold one ordinary span with its resource and scope, and
 * every batch would be cut into a flood of tiny requests. */
static int v_request_size(const void *f, char *err, size_t n) {
  if (*(const uint64_t *)f < (64u << 10)) {
    snprintf(err, n, "must be at least 64KiB");
    return -EINVAL;
  }
  return 0;
}

#define EOFF(field) offsetof(tt_exporter_conf_t, field)
#define ESZ(field) sizeof(((tt_exporter_conf_t *)0)->field)

/* The keys of one `exporters:` item; `headers` (a mapping) is handled apart. */
static const key_t_ exporter_keys[] = {
    {"name", CT_STRING, "", EOFF(name), ESZ(name), tt__config_v_path,
     "Required, unique: names the exporter in logs and metrics."},
    {"protocol", CT_STRING, "grpc", EOFF(protocol), ESZ(protocol), v_protocol,
     "grpc or http/protobuf."},
    {"endpoint", CT_STRING, "", EOFF(endpoint), ESZ(endpoint), tt__config_v_path,
     "Required. gRPC: host:port (or https://host:port); HTTP: the full URL with /v1/traces."},
    {"insecure", CT_BOOL, "false", EOFF(insecure), 0, NULL,
     "gRPC: plaintext instead of TLS (HTTP takes it from the URL's scheme)."},
    {"compression", CT_STRING, "gzip", EOFF(compression), ESZ(compression), v_compression,
     "gzip or none."},
    {"timeout", CT_DURATION, "10s", EOFF(timeout_ms), 0, tt__config_v_positive,
     "Deadline of one export attempt."},
    {"ca_file", CT_STRING, "", EOFF(ca_file), ESZ(ca_file), NULL,
     "PEM CA bundle for the backend's certificate; empty: the system's roots."},
    {"cert_file", CT_STRING, "", EOFF(cert_file), ESZ(cert_file), NULL,
     "Client certificate (PEM) for mutual TLS."},
    {"key_file", CT_STRING, "", EOFF(key_file), ESZ(key_file), NULL,
     "Client private key (PEM) for mutual TLS."},
    {"queue_size", CT_SIZE, "64MiB", EOFF(queue_bytes), 0, tt__config_v_positive,
     "Memory queue of this exporter, in bytes of OTLP requests."},
    {"max_request_size", CT_SIZE, "4MiB", EOFF(max_request_bytes), 0, v_request_size,
     "Largest request sent (before compression): bigger batches are split, small queued or spooled "
     "ones coalesced up to it. At least 64KiB; gRPC receivers refuse over 4 MiB by default."},
    {"retry_initial", CT_DURATION, "1s", EOFF(retry_initial_ms), 0, tt__config_v_positive,
     "First retry delay (exponential backoff with jitter; Retry-After/RetryInfo win)."},
    {"retry_max", CT_DURATION, "30s", EOFF(retry_max_ms), 0, tt__config_v_positive,
     "Longest retry delay. Retryable failures are retried for as long as the backend is down."},
    {"spool.dir", CT_STRING, "", EOFF(spool_dir), ESZ(spool_dir), NULL,
     "Directory of the disk spool that holds kept batches while the backend is down and across "
     "restarts, created at start (mode 0700, parents too) when missing; empty: no spool (an "
     "outage longer than the memory queue drops and counts)."},
    {"spool.max_size", CT_SIZE, "1GiB", EOFF(spool_bytes), 0, tt__config_v_positive,
     "Spool budget on disk; past it the oldest batches are dropped one by one and counted. At "
     "least twice max_request_size (8MiB with the default)."},
    {"spool.fsync", CT_BOOL, "true", EOFF(spool_fsync), 0, NULL,
     "fsync every spooled batch (durable across power loss, slower)."},
    {"spool.mode", CT_STRING, "on_failure", EOFF(spool_mode), ESZ(spool_mode), v_spool_mode,
     "on_failure: batches go to the spool from the backend's first failure on; always: every "
     "batch is spooled before its first attempt, so a SIGKILL loses nothing (one fsync per "
     "batch). Needs spool.dir."},
    {"headers", CT_MAPPING, "", EOFF(headers), 0, NULL,
     "Mapping of header (gRPC metadata) names to values, e.g. x-honeycomb-team: "
     "${HONEYCOMB_API_KEY}. Names are lowercase tokens (a-z 0-9 - _ .), values printable ASCII; "
     "anything else is a config error, never a header silently left out."},
};

#define NEXPKEYS (sizeof exporter_keys / sizeof exporter_keys[0])
_Static_assert(NEXPKEYS <= sizeof((tt_exporter_conf_t *)0)->key_lines / sizeof(uint32_t),
               "tt_exporter_conf_t.key_lines is too small for the table");

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

/* at[k] is set to the key node of exporter_keys[k] when the item sets it, for errors about
 * several keys at once. */
static void parse_exporter_map(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *where,
                               const char *prefix, tt_exporter_conf_t *e, bool *seen,
                               const yaml_node_t **at) {
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    char key[192];
    snprintf(key, sizeof key, "%s.%s%s%s", where, prefix, prefix[0] ? "." : "",
             kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "?");
    if (kn->type != YAML_SCALAR_NODE) {
      tt__config_error_at(cx, kn, where, "keys must be plain strings");
      continue;
    }
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "",
             (const char *)kn->data.scalar.value);
    if (strcmp(name, "spool") == 0 && vn->type == YAML_MAPPING_NODE) {
      parse_exporter_map(cx, d, vn, where, "spool", e, seen, at);
      continue;
    }
    const key_t_ *k = tt__config_claim_key(cx, exporter_keys, NEXPKEYS, seen, name, kn, key);
    if (k == NULL) {
      tt_config_near_t near = {0};
      for (size_t j = 0; j < NEXPKEYS; j++)
        tt__config_near_try(&near, name, exporter_keys[j].name, strlen(exporter_keys[j].name));
      tt__config_unknown_key(cx, kn, key, &near, "key of an exporter");
      continue;
    }
    at[k - exporter_keys] = kn;
    if (k->type == CT_MAPPING) {
      if (vn->type != YAML_MAPPING_NODE) {
        tt__config_error_at(cx, vn, key, "expected a mapping of header names to values");
        continue;
      }
      for (yaml_node_pair_t *h = vn->data.mapping.pairs.start; h < vn->data.mapping.pairs.top;
           h++) {
        yaml_node_t *hk = yaml_document_get_node(d, h->key);
        const char *hv = tt__config_scalar(cx, yaml_document_get_node(d, h->value), key);
        if (hk->type != YAML_SCALAR_NODE ||
            !tt__otlp_header_name_ok((const char *)hk->data.scalar.value)) {
          tt__config_error_at(cx, hk, key,
                              "header names must be lowercase tokens of a-z, 0-9, '-', '_' and "
                              "'.' (what both HTTP and gRPC metadata accept)");
          continue;
        }
        if (hv != NULL && !tt__otlp_header_value_ok(hv)) {
          /* The transports would drop the header and send the requests without it: for an API
           * key, unauthenticated. A line break at the end of an environment variable is the
           * usual cause. */
          tt__config_error_at(cx, hk, key,
                              "header %s: the value has a control or non-ASCII character (a line "
                              "break from the environment?); only printable ASCII is sent",
                              (const char *)hk->data.scalar.value);
          continue;
        }
        if (hv != NULL && hv[0] == '\0') {
          /* Sent empty, an API key header authenticates nothing: the backend refuses every
           * request (401/UNAUTHENTICATED), which looks like a bad key, not a missing one. */
          yaml_node_t *hvn = yaml_document_get_node(d, h->value);
          const char *raw =
              hvn->type == YAML_SCALAR_NODE ? (const char *)hvn->data.scalar.value : "";
          bool env = strstr(raw, "${") != NULL;
          tt__config_warn_at(cx, hk, key, "header %s is empty%s%s%s",
                             (const char *)hk->data.scalar.value, env ? ": " : "", env ? raw : "",
                             env ? " expands to nothing (set but empty in the environment?)" : "");
        }
        if (hv != NULL && add_header(e, (const char *)hk->data.scalar.value, hv) != 0)
          tt__config_error_at(cx, hk, key, "headers longer than %zu bytes", sizeof e->headers - 1);
      }
      continue;
    }
    tt__config_set_from_node(cx, e, k, vn, key);
  }
}

static const yaml_node_t *key_node(const yaml_node_t **at, const char *name) {
  for (size_t k = 0; k < NEXPKEYS; k++)
    if (strcmp(exporter_keys[k].name, name) == 0)
      return at[k];
  return NULL;
}

/* "8MiB" for a whole number of MiB, else the bytes. */
static void format_size(uint64_t v, char *out, size_t n) {
  if (v > 0 && v % (1u << 20) == 0)
    snprintf(out, n, "%lluMiB", (unsigned long long)(v >> 20));
  else
    snprintf(out, n, "%llu bytes", (unsigned long long)v);
}

/* A spool budget must hold a full request with room to spare: the spool keeps one segment (an
 * eighth of the budget) for records already consumed, and a batch is at most one request. Two
 * requests' worth is the floor: below it, a batch of max_request_size could not be spooled at
 * all, or would push out almost everything else. */
static void check_spool_budget(ctx_t *cx, const yaml_node_t *item, const char *where,
                               const tt_exporter_conf_t *e, const yaml_node_t **at) {
  if (e->spool_dir[0] == '\0' || e->spool_bytes >= 2 * e->max_request_bytes)
    return;
  const yaml_node_t *n = key_node(at, "spool.max_size");
  if (n == NULL)
    n = key_node(at, "max_request_size");
  char key[64], min[32], req[32];
  snprintf(key, sizeof key, "%s.spool.max_size", where);
  format_size(2 * e->max_request_bytes, min, sizeof min);
  format_size(e->max_request_bytes, req, sizeof req);
  tt__config_error_at(cx, n ? n : item, key,
                      "must be at least %s, twice max_request_size (%s): the spool must hold a "
                      "full request with room for others",
                      min, req);
}

tt_exporter_conf_t *tt__config_parse_exporters(ctx_t *cx, yaml_document_t *d, yaml_node_t *n,
                                               size_t *count) {
  *count = 0;
  if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
    return NULL; /* `exporters:` with nothing under it */
  if (n->type != YAML_SEQUENCE_NODE) {
    tt__config_error_at(cx, n, "exporters", "expected a list of exporters");
    return NULL;
  }
  size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  tt_exporter_conf_t *arr = calloc(cnt ? cnt : 1, sizeof *arr);
  if (arr == NULL) {
    tt__config_error_at(cx, n, "exporters", "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < cnt; i++) {
    yaml_node_t *item = yaml_document_get_node(d, n->data.sequence.items.start[i]);
    tt_exporter_conf_t *e = &arr[i];
    char where[32], err[256];
    snprintf(where, sizeof where, "exporters[%zu]", i);
    for (size_t k = 0; k < NEXPKEYS; k++)
      if (exporter_keys[k].def[0] != '\0' &&
          tt__config_set_key(e, &exporter_keys[k], exporter_keys[k].def, err, sizeof err) != 0)
        tt__config_error_at(cx, item, where, "bad default for %s (a bug)", exporter_keys[k].name);
    if (item->type != YAML_MAPPING_NODE) {
      tt__config_error_at(cx, item, where,
                          "each exporter is a mapping with a name and an endpoint");
      continue;
    }
    bool seen[NEXPKEYS] = {0};
    const yaml_node_t *at[NEXPKEYS] = {0};
    parse_exporter_map(cx, d, item, where, "", e, seen, at);
    e->line = (uint32_t)item->start_mark.line + 1;
    for (size_t k = 0; k < NEXPKEYS; k++)
      e->key_lines[k] = at[k] ? (uint32_t)at[k]->start_mark.line + 1 : 0;
    char key[64];
    if (e->name[0] == '\0') {
      snprintf(key, sizeof key, "%s.name", where);
      tt__config_error_at(cx, item, key, "required (names the exporter in logs and metrics)");
    }
    if (e->endpoint[0] == '\0') {
      snprintf(key, sizeof key, "%s.endpoint", where);
      tt__config_error_at(cx, item, key,
                          "required (e.g. api.honeycomb.io:443, or "
                          "https://host:4318/v1/traces for http/protobuf)");
    }
    if (strcmp(e->spool_mode, "always") == 0 && e->spool_dir[0] == '\0') {
      snprintf(key, sizeof key, "%s.spool.mode", where);
      const yaml_node_t *kn = key_node(at, "spool.mode");
      tt__config_error_at(cx, kn ? kn : item, key, "\"always\" needs spool.dir");
    }
    check_spool_budget(cx, item, where, e, at);
    if (strcmp(e->protocol, "http/protobuf") == 0 && e->endpoint[0] != '\0' &&
        strncmp(e->endpoint, "http://", 7) != 0 && strncmp(e->endpoint, "https://", 8) != 0) {
      snprintf(key, sizeof key, "%s.endpoint", where);
      const yaml_node_t *kn = key_node(at, "endpoint");
      /* The value is not repeated: an endpoint may come from the environment (see redact). */
      tt__config_error_at(cx, kn ? kn : item, key,
                          "an http/protobuf endpoint is a URL with its scheme (e.g. "
                          "https://api.honeycomb.io/v1/traces, http://jaeger:4318/v1/traces)");
    }
    for (size_t j = 0; j < i; j++)
      if (e->name[0] != '\0' && strcmp(arr[j].name, e->name) == 0) {
        snprintf(key, sizeof key, "%s.name", where);
        const yaml_node_t *kn = key_node(at, "name");
        tt__config_error_at(cx, kn ? kn : item, key, "\"%s\" is also exporters[%zu]'s name",
                            e->name, j);
        break;
      }
  }
  *count = cnt;
  return arr;
}

size_t tt__config_exporter_line(const tt_exporter_conf_t *e, const char *key) {
  for (size_t k = 0; k < NEXPKEYS; k++)
    if (strcmp(exporter_keys[k].name, key) == 0 && e->key_lines[k] != 0)
      return e->key_lines[k];
  return e->line;
}

int tt__config_describe_exporters(tt_buf_t *out) {
  int rc = tt__buf_append_str(out, "\nKeys of each `exporters:` item:\n\n"
                                   "| key | type | default | meaning |\n|---|---|---|---|\n");
  return rc | tt__config_describe_keys(out, exporter_keys, NEXPKEYS);
}
