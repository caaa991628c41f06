/* The `signals:` section of the configuration (see config_int.h): which spans the golden signals
 * count and by which labels (collector/signals/red.h, docs/signals.md). Scalars go through their
 * own key table, so they parse and report as every other key; the two lists are read here. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"

/* The scalars, parsed into this staging struct (the key table's types are 64-bit) and then
 * copied into the options. */
typedef struct {
  bool enabled;
  bool roots;
  int64_t max_series;
  int64_t max_values;
} scalars_t;

static int v_series(const void *f, char *err, size_t n) {
  int64_t v = *(const int64_t *)f;
  if (v < 1 || v > 100000) {
    snprintf(err, n, "must be 1 to 100000");
    return -EINVAL;
  }
  return 0;
}

#define SOFF(field) offsetof(scalars_t, field)

static const key_t_ signal_keys[] = {
    {"enabled", CT_BOOL, "true", SOFF(enabled), 0, NULL,
     "Count rate, errors and duration (RED) of every accepted span before sampling, exposed on "
     "/metrics (docs/signals.md)."},
    {"span_kinds", CT_MAPPING, "[server, consumer]", 0, 0, NULL,
     "List of span kinds counted: unspecified, internal, server, client, producer, consumer."},
    {"roots", CT_BOOL, "true", SOFF(roots), 0, NULL,
     "Also count spans whose parent is not in this process (roots, remote parents), whatever "
     "their kind."},
    {"dimensions", CT_MAPPING, "[]", 0, 0, NULL,
     "List of span attribute keys (at most 8) whose values become labels, e.g. http.route, "
     "http.request.method, http.response.status_code, rpc.method; \".\" becomes \"_\" in the "
     "label name. Each multiplies the series."},
    {"max_series", CT_INT, "1000", SOFF(max_series), 0, v_series,
     "Label sets counted; spans of further ones count in one series whose labels are all "
     "__overflow__ (counted in tailtrace_span_signals_overflow_spans_total{cap=\"series\"})."},
    {"max_values_per_dimension", CT_INT, "200", SOFF(max_values), 0, v_series,
     "Distinct values of one label (service, operation, each dimension); a further value is "
     "counted as __overflow__ (tailtrace_span_signals_overflow_spans_total{cap=\"dimension\"})."},
};

#define NSIGKEYS (sizeof signal_keys / sizeof signal_keys[0])

static const char *const kind_words[] = {"unspecified", "internal", "server",
                                         "client",      "producer", "consumer"};

static void parse_kinds(ctx_t *cx, yaml_document_t *d, yaml_node_t *vn, tt_red_opts_t *o) {
  const char *key = "signals.span_kinds";
  if (vn->type != YAML_SEQUENCE_NODE) {
    tt__config_error_at(cx, vn, key, "expected a list of span kinds, e.g. [server, consumer]");
    return;
  }
  o->kinds = 0;
  for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
       it++) {
    yaml_node_t *in = yaml_document_get_node(d, *it);
    const char *s = tt__config_scalar(cx, in, key);
    if (s == NULL)
      continue;
    size_t k = 0;
    while (k < 6 && strcmp(s, kind_words[k]) != 0)
      k++;
    if (k == 6) {
      tt__config_bad_value(cx, in, key, s,
                           "unknown span kind \"%s\": must be unspecified, internal, server, "
                           "client, producer or consumer",
                           s);
      continue;
    }
    o->kinds |= 1u << k;
  }
}

static void parse_dims(ctx_t *cx, yaml_document_t *d, yaml_node_t *vn, tt_red_opts_t *o) {
  const char *key = "signals.dimensions";
  if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0) {
    o->ndims = 0;
    return;
  }
  if (vn->type != YAML_SEQUENCE_NODE) {
    tt__config_error_at(cx, vn, key,
                        "expected a list of attribute keys, e.g. [http.route, rpc.method]");
    return;
  }
  o->ndims = 0;
  for (yaml_node_item_t *it = vn->data.sequence.items.start; it < vn->data.sequence.items.top;
       it++) {
    yaml_node_t *in = yaml_document_get_node(d, *it);
    const char *s = tt__config_scalar(cx, in, key);
    if (s == NULL)
      continue;
    if (o->ndims == TT_RED_MAX_DIMS) {
      tt__config_error_at(cx, in, key, "at most %d dimensions", TT_RED_MAX_DIMS);
      return;
    }
    size_t len = strlen(s);
    if (len == 0 || len >= TT_RED_DIM_KEY_MAX) {
      tt__config_error_at(cx, in, key, "an attribute key of 1 to %d bytes", TT_RED_DIM_KEY_MAX - 1);
      continue;
    }
    memcpy(o->dims[o->ndims], s, len + 1);
    char err[256];
    o->ndims++;
    /* The label-name rules (no clash with a fixed label or another dimension) are red.c's. */
    if (tt__red_check_opts(o, err, sizeof err) != 0) {
      tt__config_error_at(cx, in, key, "%s", err);
      o->ndims--;
    }
  }
}

void tt__config_parse_signals(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, tt_red_opts_t *o) {
  if (n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0)
    return; /* `signals:` alone keeps the defaults */
  if (n->type != YAML_MAPPING_NODE) {
    tt__config_error_at(cx, n, "signals", "expected a mapping (section)");
    return;
  }
  scalars_t sc = {o->enabled, o->roots, o->max_series, o->max_values};
  bool seen[NSIGKEYS] = {0};
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    yaml_node_t *vn = yaml_document_get_node(d, pr->value);
    if (kn->type != YAML_SCALAR_NODE) {
      tt__config_error_at(cx, kn, "signals", "keys must be plain strings");
      continue;
    }
    const char *name = (const char *)kn->data.scalar.value;
    char key[192];
    snprintf(key, sizeof key, "signals.%s", name);
    const key_t_ *k = tt__config_claim_key(cx, signal_keys, NSIGKEYS, seen, name, kn, key);
    if (k == NULL) {
      tt_config_near_t near = {0};
      for (size_t j = 0; j < NSIGKEYS; j++)
        tt__config_near_try(&near, name, signal_keys[j].name, strlen(signal_keys[j].name));
      tt__config_unknown_key(cx, kn, key, &near, "key of signals");
      continue;
    }
    if (strcmp(k->name, "span_kinds") == 0)
      parse_kinds(cx, d, vn, o);
    else if (strcmp(k->name, "dimensions") == 0)
      parse_dims(cx, d, vn, o);
    else
      tt__config_set_from_node(cx, &sc, k, vn, key);
  }
  o->enabled = sc.enabled;
  o->roots = sc.roots;
  o->max_series = (uint32_t)sc.max_series;
  o->max_values = (uint32_t)sc.max_values;
  if (o->enabled && o->kinds == 0 && !o->roots)
    tt__config_warn_at(cx, n, "signals",
                       "no span kind and roots: false select no span: the golden signals count "
                       "nothing");
}

int tt__config_describe_signals(tt_buf_t *out) {
  int rc = tt__buf_append_str(out, "\nThe `signals:` section (golden signals, docs/signals.md):\n\n"
                                   "| key | type | default | meaning |\n|---|---|---|---|\n");
  for (size_t i = 0; i < NSIGKEYS; i++) {
    const key_t_ *k = &signal_keys[i];
    rc |= tt__buf_appendf(out, "| `signals.%s` | %s | `%s` | %s |\n", k->name,
                          k->type == CT_MAPPING ? "list" : tt__config_ctype_names[k->type], k->def,
                          k->doc);
  }
  return rc;
}
