/* The resource: who is producing the spans. Built once in tt_init from the SDK's own facts,
 * OTEL_RESOURCE_ATTRIBUTES, the options and OTEL_SERVICE_NAME (in rising priority), then
 * immutable (except process.pid, rewritten in a forked child). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct rbuild_s {
  tt_attribute_t *a;
  uint32_t n, cap;
  int oom;
} rbuild_t;

static void free_value(tt_attribute_t *a) {
  if (a->type == TT_ATTR_STRING)
    tt__free((void *)a->value.str.ptr);
}

static void put(rbuild_t *b, const char *key, tt_attr_type_t type, const char *s, int64_t i,
                double d) {
  uint32_t k;
  for (k = 0; k < b->n; k++)
    if (strcmp(b->a[k].key, key) == 0)
      break;
  if (k == b->n) {
    if (b->n == b->cap) {
      uint32_t ncap = b->cap ? b->cap * 2 : 16;
      tt_attribute_t *na = tt__realloc(b->a, ncap * sizeof *na);
      if (na == NULL) {
        b->oom = 1;
        return;
      }
      b->a = na;
      b->cap = ncap;
    }
    b->a[k].key = tt__strdup(key);
    if (b->a[k].key == NULL) {
      b->oom = 1;
      return;
    }
    b->n++;
  } else {
    free_value(&b->a[k]);
  }
  tt_attribute_t *a = &b->a[k];
  a->type = type;
  if (type == TT_ATTR_STRING) {
    a->value.str.ptr = tt__strdup(s);
    if (a->value.str.ptr == NULL) {
      a->type = TT_ATTR_INT;
      a->value.i = 0;
      b->oom = 1;
      return;
    }
    a->value.str.len = strlen(s);
  } else if (type == TT_ATTR_INT) {
    a->value.i = i;
  } else if (type == TT_ATTR_DOUBLE) {
    a->value.d = d;
  } else {
    a->value.b = (int)i;
  }
}

static void put_env_pair(void *arg, const char *key, const char *value) {
  put(arg, key, TT_ATTR_STRING, value, 0, 0);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static void trim(const char **s, size_t *n) {
  while (*n > 0 && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*n)--;
  }
  while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
    (*n)--;
}

/* Decodes %XX escapes; -1 on a malformed escape or an embedded NUL. */
static int pct_decode(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
      int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = (char)(hi << 4 | lo);
      i += 2;
    }
    if (c == '\0')
      return -1;
    out[o++] = c;
  }
  out[o] = '\0';
  return (int)o;
}

int tt__resource_attrs_parse(const char *s, size_t len,
                             void (*cb)(void *arg, const char *key, const char *value), void *arg) {
  if (s == NULL)
    return TT_EINVAL;
  /* Validate everything first: the specification discards a malformed value whole. */
  char *work = tt__malloc(2 * len + 2);
  if (work == NULL)
    return TT_ENOMEM;
  int pairs = 0;
  for (int pass = 0; pass < 2; pass++) {
    size_t i = 0;
    while (i <= len) {
      size_t j = i;
      while (j < len && s[j] != ',')
        j++;
      const char *e = s + i;
      size_t el = j - i;
      i = j + 1;
      trim(&e, &el);
      if (el == 0)
        continue;
      const char *eq = memchr(e, '=', el);
      if (eq == NULL)
        goto bad;
      const char *k = e, *v = eq + 1;
      size_t kl = (size_t)(eq - e), vl = (size_t)(e + el - v);
      trim(&k, &kl);
      trim(&v, &vl);
      if (kl == 0)
        goto bad;
      char *kb = work, *vb = work + len + 1;
      if (pct_decode(k, kl, kb) < 0 || pct_decode(v, vl, vb) < 0)
        goto bad;
      if (pass == 0)
        pairs++;
      else if (cb != NULL)
        cb(arg, kb, vb);
    }
  }
  tt__free(work);
  return pairs;
bad:
  tt__free(work);
  return TT_EPARSE;
}

static void exe_name(char *out, size_t cap) {
  char path[512];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) {
    snprintf(out, cap, "unknown");
    return;
  }
  path[n] = '\0';
  const char *slash = strrchr(path, '/');
  const char *base = slash != NULL ? slash + 1 : path;
  size_t len = strlen(base);
  if (len >= cap)
    len = cap - 1; /* a long executable name is truncated, not an error */
  memcpy(out, base, len);
  out[len] = '\0';
}

int tt__resource_build(tt__provider_t *p, const tt_options_t *o) {
  rbuild_t b = {0};
  put(&b, "telemetry.sdk.name", TT_ATTR_STRING, "tailtrace", 0, 0);
  put(&b, "telemetry.sdk.language", TT_ATTR_STRING, "c", 0, 0);
  put(&b, "telemetry.sdk.version", TT_ATTR_STRING, tt_version_string(), 0, 0);
  put(&b, "process.pid", TT_ATTR_INT, NULL, (int64_t)getpid(), 0);
  char host[256];
  if (gethostname(host, sizeof host) == 0) {
    host[sizeof host - 1] = '\0';
    put(&b, "host.name", TT_ATTR_STRING, host, 0, 0);
  }
  const char *env = getenv("OTEL_RESOURCE_ATTRIBUTES");
  if (env != NULL && *env != '\0') {
    int rc = tt__resource_attrs_parse(env, strlen(env), put_env_pair, &b);
    if (rc < 0)
      TT_LOG(TT_LOG_WARN, "OTEL_RESOURCE_ATTRIBUTES is malformed (%s); ignoring all of it",
             tt_strerror(rc));
  }
  for (size_t i = 0; o != NULL && o->resource_attributes != NULL && i < o->resource_attribute_count;
       i++) {
    const tt_attribute_t *a = &o->resource_attributes[i];
    if (a->key == NULL)
      continue;
    switch (a->type) {
      case TT_ATTR_STRING:
        put(&b, a->key, TT_ATTR_STRING, a->value.str.ptr != NULL ? a->value.str.ptr : "", 0, 0);
        break;
      case TT_ATTR_INT:
        put(&b, a->key, TT_ATTR_INT, NULL, a->value.i, 0);
        break;
      case TT_ATTR_DOUBLE:
        put(&b, a->key, TT_ATTR_DOUBLE, NULL, 0, a->value.d);
        break;
      case TT_ATTR_BOOL:
        put(&b, a->key, TT_ATTR_BOOL, NULL, a->value.b != 0, 0);
        break;
      default:
        TT_LOG(TT_LOG_WARN, "resource attribute %s: arrays are not supported; ignored", a->key);
    }
  }
  const char *svc = o != NULL ? o->service_name : NULL;
  if (svc == NULL || *svc == '\0')
    svc = getenv("OTEL_SERVICE_NAME");
  if (svc != NULL && *svc != '\0') {
    put(&b, "service.name", TT_ATTR_STRING, svc, 0, 0);
  } else {
    uint32_t k;
    for (k = 0; k < b.n; k++)
      if (strcmp(b.a[k].key, "service.name") == 0)
        break;
    if (k == b.n) {
      char exe[256], name[300];
      exe_name(exe, sizeof exe);
      snprintf(name, sizeof name, "unknown_service:%s", exe);
      put(&b, "service.name", TT_ATTR_STRING, name, 0, 0);
    }
  }
  p->resource_attrs = b.a;
  p->resource.attributes = b.a;
  p->resource.attribute_count = b.n;
  p->resource.dropped_attributes_count = 0;
  p->resource.schema_url = "";
  if (b.oom) {
    tt__resource_free(p);
    return TT_ENOMEM;
  }
  return 0;
}

void tt__resource_free(tt__provider_t *p) {
  for (uint32_t i = 0; i < p->resource.attribute_count; i++) {
    tt__free((void *)p->resource_attrs[i].key);
    free_value(&p->resource_attrs[i]);
  }
  tt__free(p->resource_attrs);
  p->resource_attrs = NULL;
  p->resource.attributes = NULL;
  p->resource.attribute_count = 0;
}

/* Only called in a forked child before its exporter thread exists, so no reader races. */
void tt__resource_set_pid(tt__provider_t *p, int64_t pid) {
  for (uint32_t i = 0; i < p->resource.attribute_count; i++)
    if (strcmp(p->resource_attrs[i].key, "process.pid") == 0)
      p->resource_attrs[i].value.i = pid;
}
