/* Internals of the configuration loader, shared by its files and by nothing else:
 *   config.c            the key table and its validators, the document walk, load and describe;
 *   config_scalar.c     scalar parsers, ${ENV} expansion, set_key, error reporting;
 *   config_policies.c   the `policies:` section;
 *   config_exporters.c  the `exporters:` section and its key table;
 *   config_signals.c    the `signals:` section (golden signals).
 * config_check.c (host checks) and config_reload.c (SIGHUP) use only config.h.
 * Main thread only, as config.h. */
#ifndef TT_COLLECTOR_CONFIG_INT_H
#define TT_COLLECTOR_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "buf.h"
#include "config.h"
#include "policy.h"

/* CT_MAPPING is a key whose value is a mapping its section reads itself (an exporter's
 * `headers`); it has no scalar form, so tt__config_set_key refuses it. */
typedef enum { CT_BOOL, CT_INT, CT_DURATION, CT_SIZE, CT_STRING, CT_MAPPING } ctype_t;

/* Indexed by ctype_t; the names used in messages and in the described table. */
extern const char *const tt__config_ctype_names[];

/* Checks a parsed field; on failure writes the message (without file, line or key) to err. */
typedef int (*validator_fn)(const void *field, char *err, size_t errlen);

/* One row of a key table: the top-level keys (config.c) or those of an exporter
 * (config_exporters.c). `off` is the field's offset in the struct the table describes. */
typedef struct {
  const char *name;
  ctype_t type;
  const char *def;
  size_t off;
  size_t size; /* CT_STRING: capacity */
  validator_fn validate;
  const char *doc;
} key_t_;

/* One load's state: where errors go and how many there were. Lives on the loader's stack. */
typedef struct {
  const char *file;
  tt_buf_t *errs;
  int nerr;
  tt_buf_t tmp;                             /* holds the last tt__config_scalar() result */
  const tt_exporter_conf_t *base_exporters; /* owned by the config being loaded over */
  tt_buf_t *warns;                          /* the loaded config's warnings */
  const yaml_node_t **policy_nodes;         /* owned: each policies[i] item, for warnings */
  size_t npolicy_nodes;
  const yaml_node_t *policies_node; /* the `policies:` value, when the file sets it */
} ctx_t;

/* Appends "FILE:LINE: KEY: message\n" to cx->errs (line 0 without a node) and counts it. */
void tt__config_error_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends "FILE:LINE: KEY: warning: message\n" to cx->warns (line 0 without a node). */
void tt__config_warn_at(ctx_t *cx, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The scalar text of a node after ${} expansion, or NULL (error recorded). The text lives in
 * cx->tmp until the next call. */
const char *tt__config_scalar(ctx_t *cx, const yaml_node_t *n, const char *key);

/* Parses val into the field k describes inside the struct at base (a tt_config_t or, for the
 * exporter keys, a tt_exporter_conf_t), then runs k's validator. Returns 0 or -EINVAL with the
 * message in err. */
int tt__config_set_key(void *base, const key_t_ *k, const char *val, char *err, size_t errlen);

/* Formats `expected <a type>, got "<val>" (<examples>)` into err: the one wording of a value that
 * does not parse as its type, in every section. */
void tt__config_expected(char *err, size_t n, ctype_t t, const char *val);

/* Reports a refused value at vn under key: fmt is the whole message, which must name the value;
 * where the value came from ${VAR}, the message names the reference instead (see redact). */
void tt__config_bad_value(ctx_t *cx, const yaml_node_t *vn, const char *key, const char *value,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Rewrites every occurrence of value in err as raw when value came from the environment. */
void tt__config_redact(char *err, size_t errlen, const char *value, const char *raw);

/* The nearest known name to a misspelt one, for "did you mean X?". Start zeroed; try each
 * candidate (not NUL-terminated: a section prefix of a key is candidate too). */
typedef struct {
  const char *best;
  size_t len;
  unsigned dist;
} tt_config_near_t;
void tt__config_near_try(tt_config_near_t *nr, const char *word, const char *cand, size_t candlen);

/* Reports `unknown <what>` at kn, with `; did you mean "X"?` when nr found a near name. */
void tt__config_unknown_key(ctx_t *cx, const yaml_node_t *kn, const char *key,
                            const tt_config_near_t *nr, const char *what);

/* Looks name up in a key table and marks it in seen[] (parallel to tab), reporting a second
 * setting at kn under `key`. Returns the row, or NULL (nothing reported) when there is none. */
const key_t_ *tt__config_claim_key(ctx_t *cx, const key_t_ *tab, size_t n, bool *seen,
                                   const char *name, const yaml_node_t *kn, const char *key);

/* Sets k's field inside base from the scalar node vn; a problem is reported at vn under `key`. */
void tt__config_set_from_node(ctx_t *cx, void *base, const key_t_ *k, const yaml_node_t *vn,
                              const char *key);

/* Appends one Markdown row per key of tab (name, type, default or "(none)", doc). */
int tt__config_describe_keys(tt_buf_t *out, const key_t_ *tab, size_t n);

/* Scalar parsers: 0 or -EINVAL, *out untouched on error. */
int tt__config_parse_bool(const char *s, bool *out);
int tt__config_parse_double(const char *s, double *out);
int tt__config_parse_duration_ms(const char *s, uint64_t *out);

/* Validators both key tables use (config.c). */
int tt__config_v_path(const void *f, char *err, size_t n);
int tt__config_v_positive(const void *f, char *err, size_t n);
/* The string validators' one rule: value is one of choices (NULL-terminated), else -EINVAL with
 * err saying `must be "a", "b" or "c"`. */
int tt__config_one_of(const char *value, const char *const *choices, char *err, size_t n);

/* Parses the `policies:` list into a new set, or NULL. Errors are recorded in cx. */
tt_policy_set_t *tt__config_parse_policies(ctx_t *cx, yaml_document_t *d, yaml_node_t *n);

/* Warns about the policy list as loaded: empty, a policy after one that decides every trace,
 * two policies with one name; with bus set, each rate_limit (it counts one collector's
 * traffic). */
void tt__config_policy_warnings(ctx_t *cx, const tt_policy_set_t *s, bool bus);

/* Parses the `exporters:` list into a new array (the caller frees it), or NULL with *count 0.
 * Errors are recorded in cx. */
tt_exporter_conf_t *tt__config_parse_exporters(ctx_t *cx, yaml_document_t *d, yaml_node_t *n,
                                               size_t *count);

/* Appends the Markdown table of the keys of an `exporters:` item. */
int tt__config_describe_exporters(tt_buf_t *out);

/* Reads the `signals:` section over o (config_signals.c). Errors are recorded in cx. */
void tt__config_parse_signals(ctx_t *cx, yaml_document_t *d, yaml_node_t *n, tt_red_opts_t *o);

/* Appends the Markdown table of the `signals:` keys. */
int tt__config_describe_signals(tt_buf_t *out);

#endif
