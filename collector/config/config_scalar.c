/* The configuration loader's scalars (see config_int.h): the parsers behind the key types,
 * ${ENV} expansion, set_key, and the one place errors are formatted, so every message reads
 * "FILE:LINE: KEY: message". */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config.h"
#include "config_int.h"

const char *const tt__config_ctype_names[] = {"bool", "int",    "duration",
                                              "size", "string", "mapping"};

/* How a value of each type is described when it does not parse, so every message reads
 * `expected <what>, got "<value>" (<examples>)` whichever section the key is in. */
static const char *const type_what[] = {"a bool", "an integer", "a duration",
                                        "a size", "a string",   "a mapping"};
static const char *const type_examples[] = {" (true/false, yes/no, on/off)",
                                            " (e.g. 0, 8, 1024)",
                                            " (e.g. 500ms, 2s, 5m; a bare number is ms)",
                                            " (e.g. 4096, 64KiB, 256MiB; a bare number is bytes)",
                                            "",
                                            ""};

void tt__config_expected(char *err, size_t n, ctype_t t, const char *val) {
  snprintf(err, n, "expected %s, got \"%s\"%s", type_what[t], val, type_examples[t]);
}

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

int tt__config_parse_duration_ms(const char *s, uint64_t *out) {
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

int tt__config_parse_bool(const char *s, bool *out) {
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

int tt__config_parse_double(const char *s, double *out) {
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

int tt__config_set_key(void *base, const key_t_ *k, const char *val, char *err, size_t errlen) {
  void *f = (char *)base + k->off;
  int rc = 0;
  switch (k->type) {
    case CT_BOOL:
      rc = tt__config_parse_bool(val, f);
      break;
    case CT_INT:
      rc = parse_int(val, f);
      break;
    case CT_DURATION:
      rc = tt__config_parse_duration_ms(val, f);
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
    case CT_MAPPING:
      rc = -EINVAL;
      break;
  }
  if (rc != 0) {
    snprintf(err, errlen, "expected %s, got \"%s\"%s", type_what[k->type], val,
             type_examples[k->type]);
    return -EINVAL;
  }
  if (k->validate == NULL || k->validate(f, err, errlen) == 0)
    return 0;
  /* Every refused value is named in the message, whichever validator refused it. */
  if (strstr(err, "got \"") == NULL) {
    size_t used = strlen(err);
    snprintf(err + used, errlen - used, ", got \"%s\"", val);
  }
  return -EINVAL;
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

void tt__config_error_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tt__buf_appendf(cx->errs, "%s:%zu: %s: %s\n", cx->file, n ? n->start_mark.line + 1 : 0, key, msg);
  cx->nerr++;
}

void tt__config_warn_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tt__buf_appendf(cx->warns, "%s:%zu: %s: warning: %s\n", cx->file, n ? n->start_mark.line + 1 : 0,
                  key, msg);
}

const char *tt__config_scalar(ctx_t *cx, const yaml_node_t *n, const char *key) {
  if (n->type != YAML_SCALAR_NODE) {
    tt__config_error_at(cx, n, key, "expected a single value");
    return NULL;
  }
  char err[256];
  if (expand_env((const char *)n->data.scalar.value, &cx->tmp, err, sizeof err) != 0) {
    tt__config_error_at(cx, n, key, "%s", err);
    return NULL;
  }
  return (const char *)cx->tmp.data;
}

const key_t_ *tt__config_claim_key(ctx_t *cx, const key_t_ *tab, size_t n, bool *seen,
                                   const char *name, const yaml_node_t *kn, const char *key) {
  size_t i = 0;
  while (i < n && strcmp(tab[i].name, name) != 0)
    i++;
  if (i == n)
    return NULL;
  if (seen[i])
    tt__config_error_at(cx, kn, key, "set twice");
  seen[i] = true;
  return &tab[i];
}

/* A value that came from the environment may be a secret put under the wrong key: an error
 * message names the ${VAR} it came from, never the value itself (it would reach logs and CI
 * output). Rewrites every occurrence of value in err as the raw text. */
void tt__config_redact(char *err, size_t errlen, const char *value, const char *raw) {
  size_t vlen = strlen(value);
  if (vlen == 0 || strstr(raw, "${") == NULL || strcmp(value, raw) == 0)
    return;
  char out[256];
  size_t o = 0;
  for (const char *p = err; *p != '\0' && o + 1 < sizeof out;) {
    if (strncmp(p, value, vlen) == 0) {
      o += (size_t)snprintf(out + o, sizeof out - o, "%s", raw);
      if (o >= sizeof out)
        o = sizeof out - 1;
      p += vlen;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
  snprintf(err, errlen, "%s", out);
}

void tt__config_set_from_node(ctx_t *cx, void *base, const key_t_ *k, const yaml_node_t *vn,
                              const char *key) {
  const char *v = tt__config_scalar(cx, vn, key);
  char err[256];
  if (v != NULL && tt__config_set_key(base, k, v, err, sizeof err) != 0) {
    tt__config_redact(err, sizeof err, v, (const char *)vn->data.scalar.value);
    tt__config_error_at(cx, vn, key, "%s", err);
  }
}

int tt__config_describe_keys(tt_buf_t *out, const key_t_ *tab, size_t n) {
  int rc = 0;
  for (size_t i = 0; i < n; i++)
    rc |= tt__buf_appendf(out, "| `%s` | %s | %s%s%s | %s |\n", tab[i].name,
                          tt__config_ctype_names[tab[i].type], tab[i].def[0] ? "`" : "",
                          tab[i].def[0] ? tab[i].def : "(none)", tab[i].def[0] ? "`" : "",
                          tab[i].doc);
  return rc;
}

void tt__config_bad_value(ctx_t *cx, const yaml_node_t *vn, const char *key, const char *value,
                          const char *fmt, ...) {
  char err[320];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, sizeof err, fmt, ap);
  va_end(ap);
  if (vn->type == YAML_SCALAR_NODE)
    tt__config_redact(err, sizeof err, value, (const char *)vn->data.scalar.value);
  tt__config_error_at(cx, vn, key, "%s", err);
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions, the commonest
 * typing slip), on at most 127 bytes of each word: keys are short. */
static unsigned edit_distance(const char *a, size_t la, const char *b, size_t lb) {
  unsigned rows[3][128];
  if (la > 127)
    la = 127;
  if (lb > 127)
    lb = 127;
  unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
  for (size_t j = 0; j <= lb; j++)
    prev[j] = (unsigned)j;
  for (size_t i = 1; i <= la; i++) {
    cur[0] = (unsigned)i;
    for (size_t j = 1; j <= lb; j++) {
      unsigned cost = a[i - 1] != b[j - 1];
      unsigned v = prev[j - 1] + cost;
      if (prev[j] + 1 < v)
        v = prev[j] + 1;
      if (cur[j - 1] + 1 < v)
        v = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < v)
        v = prev2[j - 2] + 1;
      cur[j] = v;
    }
    unsigned *t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return prev[lb];
}

void tt__config_near_try(tt_config_near_t *nr, const char *word, const char *cand, size_t candlen) {
  size_t wl = strlen(word);
  /* Small against the last part of the name, which is where a typo sits: one slip in a short
   * word, two in one of six letters or more. Further than that a guess misleads more often than
   * it helps. */
  const char *dot = strrchr(word, '.');
  size_t last = dot ? wl - (size_t)(dot + 1 - word) : wl;
  unsigned limit = last >= 6 ? 2 : last >= 3 ? 1 : 0;
  unsigned d = edit_distance(word, wl, cand, candlen);
  if (d == 0 || d > limit || (nr->best != NULL && d >= nr->dist))
    return;
  nr->best = cand;
  nr->len = candlen;
  nr->dist = d;
}

void tt__config_unknown_key(ctx_t *cx, const yaml_node_t *kn, const char *key,
                            const tt_config_near_t *nr, const char *what) {
  if (nr->best != NULL)
    tt__config_error_at(cx, kn, key, "unknown %s; did you mean \"%.*s\"?", what, (int)nr->len,
                        nr->best);
  else
    tt__config_error_at(cx, kn, key, "unknown %s", what);
}
