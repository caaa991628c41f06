/* The `policies:` section of the configuration (see config_int.h): a list of mappings, each with
 * a type that decides which other keys it may have. The policies themselves are policy.c's. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_int.h"
#include "policy.h"

/* Reads a latency policy's `services:` or `operations:` mapping (name: duration) into a new
 * array; a name that fails is reported and left out. */
static int named_map(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, const char *key,
                     tt_named_threshold_t **out, size_t *nout) {
  if (n->type != YAML_MAPPING_NODE) {
    tt__config_error_at(cx, n, key, "expected a mapping of name: duration");
    return -EINVAL;
  }
  if (*out != NULL) {
    tt__config_error_at(cx, n, key, "set twice");
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
      tt__config_error_at(cx, kn, key, "names must be plain strings");
      continue;
    }
    const char *v = tt__config_scalar(cx, vn, key);
    uint64_t ms;
    if (v == NULL)
      continue;
    if (tt__config_parse_duration_ms(v, &ms) != 0) {
      tt__config_error_at(cx, vn, key, "expected a duration for \"%s\", got \"%s\"",
                          (const char *)kn->data.scalar.value, v);
      continue;
    }
    (*out)[*nout].name = strdup((const char *)kn->data.scalar.value);
    (*out)[*nout].ns = ms * 1000000ull;
    (*nout)++;
  }
  return 0;
}

/* The index of v in names (as the enum it spells), or -1. */
static int name_index(const char *v, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(v, names[i]) == 0)
      return i;
  return -1;
}

static void parse_policy(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, size_t idx,
                         tt_policy_t *p) {
  char where[64];
  snprintf(where, sizeof where, "policies[%zu]", idx);
  if (n->type != YAML_MAPPING_NODE) {
    tt__config_error_at(cx, n, where, "each policy is a mapping with a type");
    return;
  }
  /* The type first: which other keys are allowed depends on it. */
  p->kind = TT_POL__COUNT;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *kn = yaml_document_get_node(d, pr->key);
    if (kn->type == YAML_SCALAR_NODE && strcmp((char *)kn->data.scalar.value, "type") == 0) {
      const char *v = tt__config_scalar(cx, yaml_document_get_node(d, pr->value), where);
      int k = v ? tt__policy_kind_parse(v) : -1;
      if (v != NULL && k < 0)
        tt__config_error_at(
            cx, kn, where,
            "type must be errors, latency, attribute, rate_limit or ratio, got \"%s\"", v);
      if (k >= 0)
        p->kind = (tt_policy_kind_t)k;
    }
  }
  if (p->kind == TT_POL__COUNT) {
    if (cx->nerr == 0)
      tt__config_error_at(cx, n, where, "missing type");
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
    const char *v = tt__config_scalar(cx, vn, full);
    if (v == NULL)
      continue;
    bool ok = true, known = true;
    uint64_t u;
    double dv;
    if (strcmp(k, "name") == 0) {
      snprintf(p->name, sizeof p->name, "%s", v);
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "exception_event") == 0) {
      ok = tt__config_parse_bool(v, &p->exception_event) == 0;
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "http_5xx") == 0) {
      ok = tt__config_parse_bool(v, &p->http_5xx) == 0;
    } else if (p->kind == TT_POL_LATENCY && strcmp(k, "threshold") == 0) {
      ok = tt__config_parse_duration_ms(v, &u) == 0 && u > 0;
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
      int i = name_index(v, ops, 4);
      ok = i >= 0;
      if (ok)
        p->op = (tt_attr_op_t)i;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "in") == 0) {
      static const char *const in[] = {"any", "span", "resource"};
      int i = name_index(v, in, 3);
      ok = i >= 0;
      if (ok)
        p->scope = (tt_attr_scope_t)i;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "action") == 0) {
      ok = strcmp(v, "keep") == 0 || strcmp(v, "drop") == 0;
      p->keep = strcmp(v, "keep") == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "min") == 0) {
      ok = tt__config_parse_double(v, &p->min) == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "max") == 0) {
      ok = tt__config_parse_double(v, &p->max) == 0;
    } else if (p->kind == TT_POL_RATE_LIMIT &&
               (strcmp(k, "traces_per_second") == 0 || strcmp(k, "spans_per_second") == 0)) {
      ok = tt__config_parse_double(v, &dv) == 0 && dv > 0;
      p->per_second = dv;
      p->count_spans = k[0] == 's';
    } else if (p->kind == TT_POL_RATIO && strcmp(k, "ratio") == 0) {
      ok = tt__config_parse_double(v, &p->ratio) == 0 && p->ratio >= 0 && p->ratio <= 1;
    } else {
      known = false;
    }
    if (!known)
      tt__config_error_at(cx, kn, full, "unknown key for a %s policy",
                          tt__policy_kind_name(p->kind));
    else if (!ok)
      tt__config_error_at(cx, vn, full, "invalid value \"%s\"", v);
  }
  char err[160];
  if (tt__policy_prepare(p, err, sizeof err) != 0)
    tt__config_error_at(cx, n, where, "%s", err);
}

tt_policy_set_t *tt__config_parse_policies(ctx_t *cx, yaml_document_t *d, yaml_node_t *n) {
  if (n->type != YAML_SEQUENCE_NODE) {
    tt__config_error_at(cx, n, "policies", "expected a list of policies");
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
