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
      char full[200], bad[200];
      snprintf(full, sizeof full, "%s.%s", key, (const char *)kn->data.scalar.value);
      tt__config_expected(bad, sizeof bad, CT_DURATION, v);
      tt__config_bad_value(cx, vn, full, v, "%s", bad);
      continue;
    }
    (*out)[*nout].name = strdup((const char *)kn->data.scalar.value);
    (*out)[*nout].ns = ms * 1000000ull;
    (*nout)++;
  }
  return 0;
}

/* The index of v in names (NULL-terminated; the enum it spells), or -1 with bad saying what
 * is accepted. */
static int enum_value(const char *v, const char *const *names, char *bad, size_t n) {
  for (int i = 0; names[i] != NULL; i++)
    if (strcmp(v, names[i]) == 0)
      return i;
  tt__config_one_of(v, names, bad, n);
  size_t used = strlen(bad);
  snprintf(bad + used, n - used, ", got \"%s\"", v);
  return -1;
}

/* The keys each policy type takes, for "did you mean" (indexed by tt_policy_kind_t). */
static const char *const errors_keys[] = {"name", "type", "exception_event", "http_5xx", NULL};
static const char *const latency_keys[] = {"name",     "type",       "threshold", "measure",
                                           "services", "operations", NULL};
static const char *const attribute_keys[] = {"name", "type", "key", "op",     "value",
                                             "min",  "max",  "in",  "action", NULL};
static const char *const rate_limit_keys[] = {"name", "type", "traces_per_second",
                                              "spans_per_second", NULL};
static const char *const ratio_keys[] = {"name", "type", "ratio", NULL};
static const char *const *const policy_keys[] = {errors_keys, latency_keys, attribute_keys,
                                                 rate_limit_keys, ratio_keys};

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
      static const char *const kinds[] = {"errors",     "latency", "attribute",
                                          "rate_limit", "ratio",   NULL};
      char key[80], bad[200];
      snprintf(key, sizeof key, "%s.type", where);
      yaml_node_t *vn = yaml_document_get_node(d, pr->value);
      const char *v = tt__config_scalar(cx, vn, key);
      int k = v ? tt__policy_kind_parse(v) : -1;
      if (v != NULL && (k < 0 || k >= TT_POL_NO_MATCH)) {
        enum_value(v, kinds, bad, sizeof bad);
        tt__config_bad_value(cx, vn, key, v, "%s", bad);
        k = -1;
      }
      if (k >= 0)
        p->kind = (tt_policy_kind_t)k;
    }
  }
  if (p->kind == TT_POL__COUNT) {
    if (cx->nerr == 0)
      tt__config_error_at(cx, n, where, "missing type");
    return;
  }
  int nerr_before = cx->nerr;
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
    /* bad is set to what the key accepts when v is refused; every refusal then reads as the
     * top-level keys' do: what was expected, the value, examples. */
    char bad[200] = "";
    bool known = true;
    uint64_t u = 0;
    double dv = 0;
    if (strcmp(k, "name") == 0) {
      snprintf(p->name, sizeof p->name, "%s", v);
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "exception_event") == 0) {
      if (tt__config_parse_bool(v, &p->exception_event) != 0)
        tt__config_expected(bad, sizeof bad, CT_BOOL, v);
    } else if (p->kind == TT_POL_ERRORS && strcmp(k, "http_5xx") == 0) {
      if (tt__config_parse_bool(v, &p->http_5xx) != 0)
        tt__config_expected(bad, sizeof bad, CT_BOOL, v);
    } else if (p->kind == TT_POL_LATENCY && strcmp(k, "threshold") == 0) {
      if (tt__config_parse_duration_ms(v, &u) != 0)
        tt__config_expected(bad, sizeof bad, CT_DURATION, v);
      else if (u == 0)
        snprintf(bad, sizeof bad, "must be greater than zero, got \"%s\" (e.g. 500ms, 2s)", v);
      p->threshold_ns = u * 1000000ull;
    } else if (p->kind == TT_POL_LATENCY && strcmp(k, "measure") == 0) {
      static const char *const measures[] = {"trace", "root", NULL};
      enum_value(v, measures, bad, sizeof bad);
      p->root_only = strcmp(v, "root") == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "key") == 0) {
      free(p->key);
      p->key = strdup(v);
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "value") == 0) {
      free(p->value);
      p->value = strdup(v);
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "op") == 0) {
      static const char *const ops[] = {"equals", "regex", "range", "exists", NULL};
      int i = enum_value(v, ops, bad, sizeof bad);
      if (i >= 0)
        p->op = (tt_attr_op_t)i;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "in") == 0) {
      static const char *const in[] = {"any", "span", "resource", NULL};
      int i = enum_value(v, in, bad, sizeof bad);
      if (i >= 0)
        p->scope = (tt_attr_scope_t)i;
    } else if (p->kind == TT_POL_ATTRIBUTE && strcmp(k, "action") == 0) {
      static const char *const actions[] = {"keep", "drop", NULL};
      enum_value(v, actions, bad, sizeof bad);
      p->keep = strcmp(v, "keep") == 0;
    } else if (p->kind == TT_POL_ATTRIBUTE && (strcmp(k, "min") == 0 || strcmp(k, "max") == 0)) {
      if (tt__config_parse_double(v, k[1] == 'i' ? &p->min : &p->max) != 0)
        snprintf(bad, sizeof bad, "expected a number, got \"%s\" (e.g. 3, -1.5, 2e6)", v);
    } else if (p->kind == TT_POL_RATE_LIMIT &&
               (strcmp(k, "traces_per_second") == 0 || strcmp(k, "spans_per_second") == 0)) {
      if (tt__config_parse_double(v, &dv) != 0 || !(dv > 0))
        snprintf(bad, sizeof bad, "expected a number greater than zero, got \"%s\" (e.g. 50, 0.5)",
                 v);
      p->per_second = dv;
      p->count_spans = k[0] == 's';
    } else if (p->kind == TT_POL_RATIO && strcmp(k, "ratio") == 0) {
      if (tt__config_parse_double(v, &p->ratio) != 0 || !(p->ratio >= 0 && p->ratio <= 1))
        snprintf(bad, sizeof bad, "expected a number from 0 to 1, got \"%s\" (e.g. 0.1, 0.25)", v);
    } else {
      known = false;
    }
    if (!known) {
      tt_config_near_t near = {0};
      for (const char *const *c = policy_keys[p->kind]; *c != NULL; c++)
        tt__config_near_try(&near, k, *c, strlen(*c));
      char what[64];
      snprintf(what, sizeof what, "key for a policy of type %s", tt__policy_kind_name(p->kind));
      tt__config_unknown_key(cx, kn, full, &near, what);
    } else if (bad[0] != '\0') {
      tt__config_bad_value(cx, vn, full, v, "%s", bad);
    }
  }
  char err[160];
  /* A policy with a refused key is not checked as a whole: "needs a threshold" after "the
   * threshold is not a duration" would only repeat it. */
  if (cx->nerr == nerr_before && tt__policy_prepare(p, err, sizeof err) != 0)
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
  free(cx->policy_nodes);
  cx->policy_nodes = calloc(cnt ? cnt : 1, sizeof *cx->policy_nodes);
  cx->npolicy_nodes = cx->policy_nodes ? cnt : 0;
  cx->policies_node = n;
  for (size_t i = 0; i < cnt; i++) {
    yaml_node_t *item = yaml_document_get_node(d, n->data.sequence.items.start[i]);
    if (cx->policy_nodes != NULL)
      cx->policy_nodes[i] = item;
    parse_policy(cx, d, item, i, &s->items[i]);
  }
  return s;
}

static size_t line_of(const yaml_node_t *n) {
  return n ? n->start_mark.line + 1 : 0;
}

void tt__config_policy_warnings(ctx_t *cx, const tt_policy_set_t *s, bool bus) {
  /* Nodes exist only for a list the file wrote; the built-in default has nothing to warn of. */
  if (cx->policies_node == NULL || cx->npolicy_nodes != s->n)
    return;
  const yaml_node_t *const *at = cx->policy_nodes;
  if (s->n == 0)
    tt__config_warn_at(cx, cx->policies_node, "policies",
                       "the list is empty: no policy matches, so every trace is dropped "
                       "(reason no_match)");
  /* ratio and rate_limit decide every trace that reaches them (keep or drop): what follows
   * them can never match, an errors policy included. */
  size_t chance = s->n;
  for (size_t i = 0; i < s->n; i++) {
    const tt_policy_t *p = &s->items[i];
    char key[32];
    snprintf(key, sizeof key, "policies[%zu]", i);
    if (chance < s->n)
      tt__config_warn_at(cx, at[i], key,
                         "%s (%s) is never reached: policies[%zu] (%s, line %zu) is a %s policy "
                         "and decides every trace that gets to it; put ratio and rate_limit "
                         "policies last",
                         p->name, tt__policy_kind_name(p->kind), chance, s->items[chance].name,
                         line_of(at[chance]), tt__policy_kind_name(s->items[chance].kind));
    else if (p->kind == TT_POL_RATIO || p->kind == TT_POL_RATE_LIMIT)
      chance = i;
    for (size_t j = 0; j < i; j++)
      if (strcmp(s->items[j].name, p->name) == 0) {
        tt__config_warn_at(cx, at[i], key,
                           "the name \"%s\" is also policies[%zu]'s (line %zu): both count "
                           "under one reason in /metrics and tailtrace.decision.reason; give "
                           "each a name",
                           p->name, j, line_of(at[j]));
        break;
      }
    if (bus && p->kind == TT_POL_RATE_LIMIT)
      tt__config_warn_at(cx, at[i], key,
                         "%s (rate_limit) counts only the traces this collector sees, so "
                         "collectors sharing a bus do not agree on it: a trace may be kept by "
                         "one collector's limit and dropped by another's",
                         p->name);
  }
}
