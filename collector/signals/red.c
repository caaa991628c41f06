/* Golden signals from every span: see red.h.
 *
 * A label set is a byte key: span kind, status code, then one length-prefixed value per label
 * (service, operation, each dimension), a value at most VAL_MAX bytes, OVF_LEN standing for
 * "__overflow__". A receiver thread keeps its own table from the key as sent (the raw key) to its
 * counters and the series it belongs to (gid); only a raw key the thread has not seen takes the
 * registry mutex, where the caps turn it into the key of the series it counts in. So the span
 * path reads and writes only memory of its own thread, and the mutex is taken about once per
 * series and thread. */
#include "red.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAL_MAX 254 /* longer values are cut (at a UTF-8 boundary) to this many bytes */
#define OVF_LEN 255 /* a value's length byte meaning "__overflow__" */
#define NLABELS_MAX (2 + TT_RED_MAX_DIMS)
#define KEY_MAX (2 + NLABELS_MAX * (1 + VAL_MAX))
#define OVF_KIND 0xff

/* Upper bounds of the duration buckets. Classic buckets, because the Prometheus text format has
 * no native histograms: about 1.5x apart (1-1.5-2-3-5-7.5 per decade) from 1 ms to 60 s, so
 * histogram_quantile's linear interpolation inside a bucket is off by at most the bucket's width
 * (67 % of the value at worst above 2 ms, where a 1-2.5-5 ladder allows 150 %), for 29 lines a
 * series (docs/signals.md, "Buckets"). */
#define NB 28
static const uint64_t bounds_ns[NB] = {
    1000000ull,     2000000ull,     3000000ull,     5000000ull,     7500000ull,    10000000ull,
    15000000ull,    20000000ull,    30000000ull,    50000000ull,    75000000ull,   100000000ull,
    150000000ull,   200000000ull,   300000000ull,   500000000ull,   750000000ull,  1000000000ull,
    1500000000ull,  2000000000ull,  3000000000ull,  5000000000ull,  7500000000ull, 10000000000ull,
    15000000000ull, 20000000000ull, 30000000000ull, 60000000000ull,
};
static const char *const bounds_le[NB] = {
    "0.001", "0.002", "0.003", "0.005", "0.0075", "0.01", "0.015", "0.02", "0.03", "0.05",
    "0.075", "0.1",   "0.15",  "0.2",   "0.3",    "0.5",  "0.75",  "1",    "1.5",  "2",
    "3",     "5",     "7.5",   "10",    "15",     "20",   "30",    "60",
};

static const char *const kind_names[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                         "CLIENT",      "PRODUCER", "CONSUMER"};
static const char *const status_names[] = {"UNSET", "OK", "ERROR"};

#define OVF_DIM 1u   /* a value was replaced by __overflow__ (max_values) */
#define OVF_TOTAL 2u /* counted in the all-__overflow__ series (max_series) */

/* One raw key's counters in one thread's table. Only the owning thread writes the counters
 * (load + store, no locked instruction); the admin thread reads them. The p_* fields are the
 * current request's counts, the owner's alone: they become counts when the request is accepted
 * (tt__red_commit), so a refused request that its sender sends again is counted once. */
typedef struct {
  uint64_t hash;
  uint8_t *key;
  uint32_t keylen;
  uint32_t gid;
  uint32_t ovf;
  uint32_t idx; /* its place in the thread's table */
  uint32_t p_count, p_errors;
  uint64_t p_sum_ns;
  uint32_t p_bucket[NB + 1];
  _Atomic uint64_t count, errors, sum_ns;
  _Atomic uint64_t bucket[NB + 1];
} lent_t;

#define CHUNK 64

/* One receiver thread's table. Entries live in chunks that never move; `n` is published with a
 * release store once an entry is complete, so a scrape reads only complete entries. The index is
 * the owner's alone. */
typedef struct local_s {
  struct local_s *next; /* the registry's list (under mu) */
  pthread_t owner;
  _Atomic uint32_t n;
  uint32_t cap;
  lent_t **chunks;
  uint32_t *index; /* entry + 1, 0 empty; linear probing */
  uint32_t mask;
  uint32_t *touched; /* entries with pending counts (p_count > 0), cap of them */
  uint32_t ntouched;
} local_t;

typedef struct {
  uint64_t hash;
  uint8_t *key;
  uint32_t keylen;
  char *labels; /* `service="a",operation="b",...` */
} series_t;

typedef struct {
  uint64_t hash;
  const uint8_t *v; /* owned copy */
  uint32_t len;
} val_t;

typedef struct {
  val_t *slots;
  uint32_t mask, n;
} valset_t;

struct tt_red_s {
  tt_red_select_t sel; /* first: read by tt__red_span through tt__red_select */
  tt_red_opts_t o;
  uint64_t id; /* tells this instance's thread-local cache from another's */
  uint64_t seed;
  uint32_t nlabels;
  uint32_t dim_len[TT_RED_MAX_DIMS];
  uint64_t dim_lens; /* bit n: a dimension's key is n bytes long (63: 63 or more) */
  char dim_label[TT_RED_MAX_DIMS][TT_RED_DIM_KEY_MAX + 2];
  pthread_mutex_t mu; /* guards everything below but `bytes` and the locals' counters */
  series_t *series;   /* [0] is the overflow series */
  uint32_t nseries;
  uint32_t *sindex;
  uint32_t smask;
  valset_t vals[NLABELS_MAX];
  local_t *locals;
  _Atomic int64_t bytes;
  tt_red_account_fn account;
  void *account_ctx;
};

static _Atomic uint64_t next_id = 1;

/* The last instance this thread counted for, and its table there. */
static _Thread_local struct {
  uint64_t id;
  local_t *t;
} tls;

static void account(tt_red_t *r, int64_t delta) {
  atomic_fetch_add_explicit(&r->bytes, delta, memory_order_relaxed);
  if (r->account != NULL)
    r->account(r->account_ctx, delta);
}

static void *xcalloc(tt_red_t *r, size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p != NULL)
    account(r, (int64_t)(n * size));
  return p;
}

/* A keyed multiplicative hash over 8-byte words: the key is compared whole on a match, so this
 * only needs to spread keys, and it costs a few instructions per 8 bytes. */
static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed) {
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  for (size_t i = 0; i < n; i++)
    w |= (uint64_t)p[i] << (8 * i);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 32);
}

static uint32_t pow2_at_least(uint64_t n) {
  uint32_t c = 16;
  while (c < n)
    c *= 2;
  return c;
}

/* ---- options -------------------------------------------------------------------------------- */

void tt__red_opts_default(tt_red_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->enabled = true;
  o->kinds = (1u << 2) | (1u << 5); /* SERVER, CONSUMER */
  o->roots = true;
  o->max_series = 1000;
  o->max_values = 200;
}

void tt__red_label_name(const char *key, char *out, size_t outlen) {
  size_t o = 0;
  if (outlen == 0)
    return;
  if (key[0] >= '0' && key[0] <= '9' && o + 1 < outlen)
    out[o++] = '_';
  for (const char *c = key; *c != '\0' && o + 1 < outlen; c++) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_';
    out[o++] = ok ? *c : '_';
  }
  out[o] = '\0';
}

int tt__red_check_opts(const tt_red_opts_t *o, char *err, size_t errlen) {
  static const char *const fixed[] = {"service", "operation", "span_kind", "status_code", "le"};
  if (o->ndims > TT_RED_MAX_DIMS) {
    snprintf(err, errlen, "at most %d dimensions", TT_RED_MAX_DIMS);
    return -EINVAL;
  }
  if (o->max_series < 1 || o->max_series > 100000) {
    snprintf(err, errlen, "max_series must be 1 to 100000");
    return -EINVAL;
  }
  if (o->max_values < 1 || o->max_values > 100000) {
    snprintf(err, errlen, "max_values_per_dimension must be 1 to 100000");
    return -EINVAL;
  }
  if (o->kinds >= (1u << 6)) {
    snprintf(err, errlen, "span kinds are 0 (unspecified) to 5 (consumer)");
    return -EINVAL;
  }
  char names[TT_RED_MAX_DIMS][TT_RED_DIM_KEY_MAX + 2];
  for (uint32_t i = 0; i < o->ndims; i++) {
    size_t len = strnlen(o->dims[i], TT_RED_DIM_KEY_MAX);
    if (len == 0 || len >= TT_RED_DIM_KEY_MAX) {
      snprintf(err, errlen, "dimension %u: an attribute key of 1 to %d bytes", i + 1,
               TT_RED_DIM_KEY_MAX - 1);
      return -EINVAL;
    }
    tt__red_label_name(o->dims[i], names[i], sizeof names[i]);
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
      if (strcmp(names[i], fixed[k]) == 0) {
        snprintf(err, errlen, "dimension \"%s\": its label %s is one of the fixed labels",
                 o->dims[i], names[i]);
        return -EINVAL;
      }
    for (uint32_t j = 0; j < i; j++)
      if (strcmp(names[i], names[j]) == 0) {
        snprintf(err, errlen, "dimensions \"%s\" and \"%s\" give the same label %s", o->dims[j],
                 o->dims[i], names[i]);
        return -EINVAL;
      }
  }
  return 0;
}

/* ---- the registry (under mu) ---------------------------------------------------------------- */

static size_t overflow_key(const tt_red_t *r, uint8_t *key) {
  key[0] = OVF_KIND;
  key[1] = OVF_KIND;
  for (uint32_t i = 0; i < r->nlabels; i++)
    key[2 + i] = OVF_LEN;
  return 2 + r->nlabels;
}

static void append_value(tt_buf_t *b, const uint8_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = (char)v[i];
    if (c == '\\' || c == '"')
      tt__buf_appendf(b, "\\%c", c);
    else if (c == '\n')
      tt__buf_append_str(b, "\\n");
    else
      tt__buf_append(b, &v[i], 1);
  }
}

/* The series' label text, from its (canonical) key. */
static char *labels_of(const tt_red_t *r, const uint8_t *key, size_t keylen) {
  tt_buf_t b = TT_BUF_INIT;
  static const char *const names[] = {"service", "operation"};
  size_t at = 2;
  for (uint32_t i = 0; i < r->nlabels && at < keylen; i++) {
    tt__buf_appendf(&b, "%s%s=\"", i ? "," : "", i < 2 ? names[i] : r->dim_label[i - 2]);
    uint8_t n = key[at++];
    if (n == OVF_LEN) {
      tt__buf_append_str(&b, "__overflow__");
    } else {
      append_value(&b, key + at, n);
      at += n;
    }
    tt__buf_append_str(&b, "\"");
    if (i == 1)
      tt__buf_appendf(&b, ",span_kind=\"%s\",status_code=\"%s\"",
                      key[0] == OVF_KIND ? "__overflow__" : kind_names[key[0]],
                      key[1] == OVF_KIND ? "__overflow__" : status_names[key[1]]);
  }
  tt__buf_append(&b, "", 1);
  return (char *)b.data;
}

/* Finds or admits value v of label d; false when the label is at max_values. */
static bool admit_value(tt_red_t *r, uint32_t d, const uint8_t *v, uint32_t len) {
  valset_t *s = &r->vals[d];
  uint64_t h = hash_bytes(v, len, r->seed + d);
  uint32_t i = (uint32_t)h & s->mask;
  for (; s->slots[i].v != NULL; i = (i + 1) & s->mask)
    if (s->slots[i].hash == h && s->slots[i].len == len && memcmp(s->slots[i].v, v, len) == 0)
      return true;
  if (s->n >= r->o.max_values)
    return false;
  uint8_t *copy = malloc(len ? len : 1);
  if (copy == NULL)
    return false;
  memcpy(copy, v, len);
  account(r, len ? len : 1);
  s->slots[i] = (val_t){h, copy, len};
  s->n++;
  return true;
}

/* The series a raw key counts in, applying the caps; *ovf gets OVF_* bits. Returns the gid (0:
 * the overflow series). */
static uint32_t resolve(tt_red_t *r, const uint8_t *raw, size_t rawlen, uint32_t *ovf) {
  uint8_t canon[KEY_MAX];
  size_t at = 2, c = 2;
  canon[0] = raw[0];
  canon[1] = raw[1];
  *ovf = 0;
  for (uint32_t d = 0; d < r->nlabels && at < rawlen; d++) {
    uint8_t n = raw[at++];
    if (n == OVF_LEN) { /* the overflow key itself (a thread's table is full) */
      canon[c++] = OVF_LEN;
      continue;
    }
    if (admit_value(r, d, raw + at, n)) {
      canon[c++] = n;
      memcpy(canon + c, raw + at, n);
      c += n;
    } else {
      canon[c++] = OVF_LEN;
      *ovf |= OVF_DIM;
    }
    at += n;
  }
  uint64_t h = hash_bytes(canon, c, r->seed);
  uint32_t i = (uint32_t)h & r->smask;
  for (; r->sindex[i] != 0; i = (i + 1) & r->smask) {
    series_t *s = &r->series[r->sindex[i] - 1];
    if (s->hash == h && s->keylen == c && memcmp(s->key, canon, c) == 0) {
      if (r->sindex[i] == 1)
        *ovf |= OVF_TOTAL;
      return r->sindex[i] - 1;
    }
  }
  if (r->nseries - 1 >= r->o.max_series) {
    *ovf |= OVF_TOTAL;
    return 0;
  }
  uint8_t *key = malloc(c);
  char *labels = key ? labels_of(r, canon, c) : NULL;
  if (labels == NULL) {
    free(key);
    *ovf |= OVF_TOTAL;
    return 0;
  }
  memcpy(key, canon, c);
  account(r, (int64_t)(c + strlen(labels) + 1));
  uint32_t gid = r->nseries++;
  r->series[gid] = (series_t){h, key, (uint32_t)c, labels};
  r->sindex[i] = gid + 1;
  return gid;
}

/* ---- a thread's table ----------------------------------------------------------------------- */

static local_t *local_new(tt_red_t *r) {
  local_t *t = xcalloc(r, 1, sizeof *t);
  if (t == NULL)
    return NULL;
  /* Room for every series twice over (raw keys whose values overflow are more than the series
   * they land in); past it, new raw keys of this thread go to the overflow series. */
  t->cap = ((2 * r->o.max_series + 2) + CHUNK - 1) / CHUNK * CHUNK;
  t->mask = pow2_at_least(2ull * t->cap) - 1;
  t->chunks = xcalloc(r, t->cap / CHUNK, sizeof *t->chunks);
  t->index = xcalloc(r, t->mask + 1ull, sizeof *t->index);
  t->touched = xcalloc(r, t->cap, sizeof *t->touched);
  t->owner = pthread_self();
  if (t->chunks == NULL || t->index == NULL || t->touched == NULL) {
    free(t->chunks);
    free(t->index);
    free(t->touched);
    free(t);
    return NULL;
  }
  return t;
}

static local_t *my_local(tt_red_t *r) {
  if (tls.id == r->id)
    return tls.t;
  pthread_mutex_lock(&r->mu);
  local_t *t = r->locals;
  while (t != NULL && !pthread_equal(t->owner, pthread_self()))
    t = t->next;
  if (t == NULL && (t = local_new(r)) != NULL) {
    t->next = r->locals;
    r->locals = t;
  }
  pthread_mutex_unlock(&r->mu);
  if (t != NULL) {
    tls.id = r->id;
    tls.t = t;
  }
  return t;
}

static lent_t *local_entry(local_t *t, uint32_t i) {
  return &t->chunks[i / CHUNK][i % CHUNK];
}

static lent_t *local_find(local_t *t, uint64_t h, const uint8_t *key, size_t len, uint32_t *slot) {
  uint32_t i = (uint32_t)h & t->mask;
  for (; t->index[i] != 0; i = (i + 1) & t->mask) {
    lent_t *e = local_entry(t, t->index[i] - 1);
    if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0)
      return e;
  }
  *slot = i;
  return NULL;
}

/* Adds the raw key to the thread's table, resolved in the registry. NULL when out of memory. */
static lent_t *local_add(tt_red_t *r, local_t *t, uint64_t h, const uint8_t *key, size_t len,
                         uint32_t slot) {
  uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
  uint8_t okey[KEY_MAX];
  if (n + 1 >= t->cap) {
    /* The last entry is kept for the overflow key, which every further raw key shares. */
    size_t olen = overflow_key(r, okey);
    uint64_t oh = hash_bytes(okey, olen, r->seed);
    if (n >= t->cap || !(len == olen && memcmp(key, okey, olen) == 0)) {
      lent_t *e = local_find(t, oh, okey, olen, &slot);
      if (e != NULL || n >= t->cap)
        return e;
      h = oh;
      key = okey;
      len = olen;
    }
  }
  if (t->chunks[n / CHUNK] == NULL &&
      (t->chunks[n / CHUNK] = xcalloc(r, CHUNK, sizeof(lent_t))) == NULL)
    return NULL;
  lent_t *e = local_entry(t, n);
  if ((e->key = malloc(len)) == NULL)
    return NULL;
  account(r, (int64_t)len);
  memcpy(e->key, key, len);
  e->keylen = (uint32_t)len;
  e->hash = h;
  e->idx = n;
  pthread_mutex_lock(&r->mu);
  e->gid = resolve(r, key, len, &e->ovf);
  pthread_mutex_unlock(&r->mu);
  t->index[slot] = n + 1;
  atomic_store_explicit(&t->n, n + 1, memory_order_release);
  return e;
}

/* ---- the span path -------------------------------------------------------------------------- */

/* Appends one value: cut to VAL_MAX bytes without splitting a UTF-8 sequence. */
static size_t put_value(uint8_t *key, size_t at, const uint8_t *v, size_t n) {
  if (n > VAL_MAX) {
    n = VAL_MAX;
    while (n > 0 && (v[n] & 0xc0) == 0x80)
      n--;
  }
  key[at++] = (uint8_t)n;
  if (n > 0)
    memcpy(key + at, v, n);
  return at + n;
}

/* An attribute's value as label text: strings as they are, ints in decimal, bools true/false,
 * doubles as %g; arrays, kvlists and bytes as "" (not comparable). */
static size_t put_any(uint8_t *key, size_t at, const tt_any_t *v) {
  char tmp[32];
  switch (v->type) {
    case TT_ANY_STRING:
      return put_value(key, at, v->s, v->slen);
    case TT_ANY_INT: {
      char *e = tmp + sizeof tmp, *p = e;
      uint64_t u = v->i < 0 ? 0 - (uint64_t)v->i : (uint64_t)v->i;
      do {
        *--p = (char)('0' + u % 10);
        u /= 10;
      } while (u != 0);
      if (v->i < 0)
        *--p = '-';
      return put_value(key, at, (const uint8_t *)p, (size_t)(e - p));
    }
    case TT_ANY_BOOL:
      return put_value(key, at, (const uint8_t *)(v->i ? "true" : "false"), v->i ? 4 : 5);
    case TT_ANY_DOUBLE: {
      int n = snprintf(tmp, sizeof tmp, "%g", v->d);
      return put_value(key, at, (const uint8_t *)tmp, n > 0 ? (size_t)n : 0);
    }
    default:
      return put_value(key, at, NULL, 0);
  }
}

/* A varint at *p, bounds-checked; one-byte values (every tag and most lengths here) take the
 * first branch. Returns false past end or beyond ten bytes. */
static inline bool get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  if (*p < end && **p < 0x80) {
    *v = *(*p)++;
    return true;
  }
  return tt__wire_varint(p, end, v) == 0;
}

/* Skips or reads one field of a message: *payload and *plen are set for a length-delimited one.
 * Cheaper than tt__wire_next, which loads every fixed value and fills a whole descriptor: this
 * walk runs for every counted span when dimensions are configured. False on malformed bytes
 * (never for a span the scan accepted). */
static inline __attribute__((always_inline)) bool next_field(const uint8_t **p, const uint8_t *end,
                                                             uint32_t *tag, const uint8_t **payload,
                                                             size_t *plen) {
  uint64_t t, n;
  if (!get_varint(p, end, &t))
    return false;
  *tag = (uint32_t)t;
  switch (t & 7) {
    case TT_WT_VARINT:
      while (*p < end && (**p & 0x80))
        (*p)++;
      if (*p >= end)
        return false;
      (*p)++;
      return true;
    case TT_WT_FIXED64:
      n = 8;
      break;
    case TT_WT_FIXED32:
      n = 4;
      break;
    case TT_WT_LEN:
      if (!get_varint(p, end, &n))
        return false;
      *payload = *p;
      *plen = (size_t)n;
      break;
    default:
      return false;
  }
  if (n > (uint64_t)(end - *p))
    return false;
  *p += n;
  return true;
}

/* The dimensions' values, from one walk over the span's attributes (field 9), first occurrence
 * of a key winning as in tt__wire_find_attr. The span was scanned already, so its bytes are
 * well-formed; a value that is not read stays "". */
static size_t put_dims(const tt_red_t *r, uint8_t *key, size_t at, const uint8_t *span,
                       size_t len) {
  tt_any_t vals[TT_RED_MAX_DIMS];
  uint32_t found = 0, want = (1u << r->o.ndims) - 1;
  for (uint32_t d = 0; d < r->o.ndims; d++)
    vals[d].type = TT_ANY_NONE;
  const uint8_t *p = span, *end = span + len;
  while (found != want && p < end) {
    uint32_t tag;
    const uint8_t *kv = NULL;
    size_t kvlen = 0;
    if (!next_field(&p, end, &tag, &kv, &kvlen))
      break;
    if (tag != ((9u << 3) | TT_WT_LEN))
      continue;
    /* A KeyValue starts with its key as every encoder writes it (field 1, a one-byte length):
     * a key no dimension has the length of is passed over without reading further. */
    if (kvlen >= 2 && kv[0] == ((1u << 3) | TT_WT_LEN) && kv[1] < 0x80 && kv[1] <= kvlen - 2 &&
        (r->dim_lens & (1ull << (kv[1] < 63 ? kv[1] : 63))) == 0)
      continue;
    const uint8_t *q = kv, *kend = kv + kvlen, *k = NULL, *v = NULL;
    size_t klen = 0, vlen = 0;
    while (q < kend) {
      uint32_t kt;
      const uint8_t *fp = NULL;
      size_t fl = 0;
      if (!next_field(&q, kend, &kt, &fp, &fl))
        break;
      if (kt == ((1u << 3) | TT_WT_LEN)) {
        k = fp;
        klen = fl;
      } else if (kt == ((2u << 3) | TT_WT_LEN)) {
        v = fp;
        vlen = fl;
      }
    }
    if (k == NULL)
      continue;
    for (uint32_t d = 0; d < r->o.ndims; d++)
      if ((found & (1u << d)) == 0 && klen == r->dim_len[d] && memcmp(k, r->o.dims[d], klen) == 0) {
        found |= 1u << d;
        if (v != NULL && tt__wire_any(v, vlen, &vals[d]) != 0)
          vals[d].type = TT_ANY_NONE;
      }
  }
  for (uint32_t d = 0; d < r->o.ndims; d++)
    at = put_any(key, at, &vals[d]);
  return at;
}

static inline void bump(_Atomic uint64_t *c, uint64_t v) {
  /* One writer: a plain add, no locked instruction. */
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

void tt__red_count(tt_red_t *r, const tt_span_facts_t *f, const uint8_t *span, size_t len,
                   const uint8_t *service, size_t service_len) {
  uint8_t key[KEY_MAX];
  key[0] = (uint8_t)(f->kind <= 5 ? f->kind : 0);
  key[1] = (uint8_t)(f->status_code <= 2 ? f->status_code : 0);
  size_t at;
  if (service != NULL && service_len > 0)
    at = put_value(key, 2, service, service_len);
  else
    at = put_value(key, 2, (const uint8_t *)"unknown_service", 15);
  at = put_value(key, at, f->name, f->name_len);
  if (r->o.ndims > 0)
    at = put_dims(r, key, at, span, len);
  uint64_t h = hash_bytes(key, at, r->seed);
  local_t *t = my_local(r);
  if (t == NULL)
    return;
  uint32_t slot = 0;
  lent_t *e = local_find(t, h, key, at, &slot);
  if (e == NULL && (e = local_add(r, t, h, key, at, slot)) == NULL)
    return;
  uint64_t d = f->end_ns > f->start_ns ? f->end_ns - f->start_ns : 0;
  /* The first bound not below d (le is inclusive), by binary search. */
  unsigned lo = 0, hi = NB;
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (d <= bounds_ns[mid])
      hi = mid;
    else
      lo = mid + 1;
  }
  if (e->p_count++ == 0)
    t->touched[t->ntouched++] = e->idx;
  e->p_bucket[lo]++;
  e->p_sum_ns += d;
  if (f->signals & (TT_SPAN_SIG_STATUS_ERROR | TT_SPAN_SIG_HTTP_5XX))
    e->p_errors++;
}

static void clear_pending(lent_t *e) {
  e->p_count = e->p_errors = 0;
  e->p_sum_ns = 0;
  memset(e->p_bucket, 0, sizeof e->p_bucket);
}

void tt__red_begin_slow(tt_red_t *r) {
  if (tls.id != r->id)
    return; /* this thread has no table: nothing pending */
  local_t *t = tls.t;
  for (uint32_t i = 0; i < t->ntouched; i++)
    clear_pending(local_entry(t, t->touched[i]));
  t->ntouched = 0;
}

void tt__red_commit_slow(tt_red_t *r) {
  if (tls.id != r->id)
    return;
  local_t *t = tls.t;
  for (uint32_t i = 0; i < t->ntouched; i++) {
    lent_t *e = local_entry(t, t->touched[i]);
    bump(&e->count, e->p_count);
    bump(&e->errors, e->p_errors);
    bump(&e->sum_ns, e->p_sum_ns);
    for (unsigned b = 0; b <= NB; b++)
      if (e->p_bucket[b] != 0)
        bump(&e->bucket[b], e->p_bucket[b]);
    clear_pending(e);
  }
  t->ntouched = 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int tt__red_new(const tt_red_opts_t *o, tt_red_t **out) {
  char err[200];
  if (tt__red_check_opts(o, err, sizeof err) != 0)
    return -EINVAL;
  tt_red_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return -ENOMEM;
  atomic_init(&r->bytes, (int64_t)sizeof *r);
  r->o = *o;
  r->sel.kinds = o->kinds;
  r->sel.roots = o->roots;
  r->id = atomic_fetch_add(&next_id, 1);
  r->seed = 0x243f6a8885a308d3ull ^ (r->id * 0x9e3779b97f4a7c15ull) ^ (uint64_t)(uintptr_t)r;
  r->nlabels = 2 + o->ndims;
  for (uint32_t i = 0; i < o->ndims; i++) {
    r->dim_len[i] = (uint32_t)strlen(o->dims[i]);
    r->dim_lens |= 1ull << (r->dim_len[i] < 63 ? r->dim_len[i] : 63);
    tt__red_label_name(o->dims[i], r->dim_label[i], sizeof r->dim_label[i]);
  }
  pthread_mutex_init(&r->mu, NULL);
  r->series = xcalloc(r, o->max_series + 1ull, sizeof *r->series);
  r->smask = pow2_at_least(2ull * (o->max_series + 1)) - 1;
  r->sindex = xcalloc(r, r->smask + 1ull, sizeof *r->sindex);
  bool ok = r->series != NULL && r->sindex != NULL;
  for (uint32_t d = 0; ok && d < r->nlabels; d++) {
    r->vals[d].mask = pow2_at_least(2ull * o->max_values) - 1;
    ok = (r->vals[d].slots = xcalloc(r, r->vals[d].mask + 1ull, sizeof(val_t))) != NULL;
  }
  if (ok) {
    /* Series 0 is the overflow series: every label __overflow__. */
    uint8_t okey[KEY_MAX];
    size_t olen = overflow_key(r, okey);
    r->series[0].key = malloc(olen);
    r->series[0].labels = labels_of(r, okey, olen);
    ok = r->series[0].key != NULL && r->series[0].labels != NULL;
    if (ok) {
      memcpy(r->series[0].key, okey, olen);
      r->series[0].keylen = (uint32_t)olen;
      r->series[0].hash = hash_bytes(okey, olen, r->seed);
      r->sindex[(uint32_t)r->series[0].hash & r->smask] = 1;
      r->nseries = 1;
    }
  }
  if (!ok) {
    tt__red_free(r);
    return -ENOMEM;
  }
  *out = r;
  return 0;
}

void tt__red_bind_account(tt_red_t *r, tt_red_account_fn fn, void *ctx) {
  pthread_mutex_lock(&r->mu);
  r->account = fn;
  r->account_ctx = ctx;
  pthread_mutex_unlock(&r->mu);
  if (fn != NULL)
    fn(ctx, atomic_load(&r->bytes));
}

void tt__red_free(tt_red_t *r) {
  if (r == NULL)
    return;
  for (local_t *t = r->locals, *n; t != NULL; t = n) {
    n = t->next;
    uint32_t cnt = atomic_load(&t->n);
    for (uint32_t i = 0; i < cnt; i++)
      free(local_entry(t, i)->key);
    for (uint32_t c = 0; c < t->cap / CHUNK; c++)
      free(t->chunks[c]);
    free(t->chunks);
    free(t->index);
    free(t->touched);
    free(t);
  }
  for (uint32_t i = 0; r->series != NULL && i < r->nseries; i++) {
    free(r->series[i].key);
    free(r->series[i].labels);
  }
  if (r->series != NULL && r->nseries == 0) {
    free(r->series[0].key);
    free(r->series[0].labels);
  }
  for (uint32_t d = 0; d < NLABELS_MAX; d++) {
    for (uint32_t i = 0; r->vals[d].slots != NULL && i <= r->vals[d].mask; i++)
      free((void *)r->vals[d].slots[i].v);
    free(r->vals[d].slots);
  }
  free(r->series);
  free(r->sindex);
  pthread_mutex_destroy(&r->mu);
  /* A thread's cache may still name this instance; ids are never reused, so it cannot match. */
  free(r);
}

/* ---- scrape --------------------------------------------------------------------------------- */

typedef struct {
  uint64_t count, errors, sum_ns;
  uint64_t bucket[NB + 1];
} agg_t;

/* Sums every thread's table per series (under mu). Returns the array (nseries long) or NULL. */
static agg_t *merge(tt_red_t *r, uint64_t *ovf_dim, uint64_t *ovf_total) {
  agg_t *a = calloc(r->nseries, sizeof *a);
  if (a == NULL)
    return NULL;
  *ovf_dim = *ovf_total = 0;
  for (local_t *t = r->locals; t != NULL; t = t->next) {
    uint32_t n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
      lent_t *e = local_entry(t, i);
      if (e->gid >= r->nseries)
        continue;
      agg_t *s = &a[e->gid];
      uint64_t c = atomic_load_explicit(&e->count, memory_order_relaxed);
      s->count += c;
      s->errors += atomic_load_explicit(&e->errors, memory_order_relaxed);
      s->sum_ns += atomic_load_explicit(&e->sum_ns, memory_order_relaxed);
      for (unsigned b = 0; b <= NB; b++)
        s->bucket[b] += atomic_load_explicit(&e->bucket[b], memory_order_relaxed);
      if (e->ovf & OVF_DIM)
        *ovf_dim += c;
      if (e->ovf & OVF_TOTAL)
        *ovf_total += c;
    }
  }
  return a;
}

void tt__red_stats(tt_red_t *r, tt_red_stats_t *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&r->mu);
  agg_t *a = merge(r, &out->overflow_dim, &out->overflow_total);
  out->series = r->nseries - 1;
  for (uint32_t i = 0; a != NULL && i < r->nseries; i++)
    out->spans += a[i].count;
  pthread_mutex_unlock(&r->mu);
  free(a);
  out->bytes = atomic_load(&r->bytes);
}

const uint64_t *tt__red_bounds_ns(size_t *n) {
  *n = NB;
  return bounds_ns;
}

int tt__red_render(tt_red_t *r, tt_buf_t *b) {
  uint64_t od, ot;
  pthread_mutex_lock(&r->mu);
  agg_t *a = merge(r, &od, &ot);
  if (a == NULL) {
    pthread_mutex_unlock(&r->mu);
    return -ENOMEM;
  }
  /* The overflow series appears once something counted in it. */
  uint32_t first = a[0].count > 0 ? 0 : 1;
  tt__buf_append_str(b, "# HELP tailtrace_span_requests_total Spans counted for the golden "
                        "signals (before sampling), by service, operation, kind, status and "
                        "the configured attributes.\n"
                        "# TYPE tailtrace_span_requests_total counter\n");
  for (uint32_t i = first; i < r->nseries; i++)
    tt__buf_appendf(b, "tailtrace_span_requests_total{%s} %llu\n", r->series[i].labels,
                    (unsigned long long)a[i].count);
  tt__buf_append_str(b, "# HELP tailtrace_span_errors_total Of those, spans that failed (status "
                        "ERROR, or an HTTP status code of 500 or more).\n"
                        "# TYPE tailtrace_span_errors_total counter\n");
  for (uint32_t i = first; i < r->nseries; i++)
    tt__buf_appendf(b, "tailtrace_span_errors_total{%s} %llu\n", r->series[i].labels,
                    (unsigned long long)a[i].errors);
  tt__buf_append_str(b, "# HELP tailtrace_span_duration_seconds Duration of those spans (end - "
                        "start).\n"
                        "# TYPE tailtrace_span_duration_seconds histogram\n");
  for (uint32_t i = first; i < r->nseries; i++) {
    const char *l = r->series[i].labels;
    uint64_t cum = 0;
    for (unsigned k = 0; k < NB; k++) {
      cum += a[i].bucket[k];
      tt__buf_appendf(b, "tailtrace_span_duration_seconds_bucket{%s,le=\"%s\"} %llu\n", l,
                      bounds_le[k], (unsigned long long)cum);
    }
    cum += a[i].bucket[NB];
    tt__buf_appendf(b, "tailtrace_span_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n", l,
                    (unsigned long long)cum);
    tt__buf_appendf(b, "tailtrace_span_duration_seconds_sum{%s} %llu.%09llu\n", l,
                    (unsigned long long)(a[i].sum_ns / 1000000000ull),
                    (unsigned long long)(a[i].sum_ns % 1000000000ull));
    tt__buf_appendf(b, "tailtrace_span_duration_seconds_count{%s} %llu\n", l,
                    (unsigned long long)cum);
  }
  uint32_t nseries = r->nseries - 1;
  pthread_mutex_unlock(&r->mu);
  free(a);
  int rc = tt__buf_appendf(
      b,
      "# HELP tailtrace_span_signals_series Label sets of the golden signals in use (the "
      "overflow series not included); capped by signals.max_series.\n"
      "# TYPE tailtrace_span_signals_series gauge\n"
      "tailtrace_span_signals_series %u\n"
      "# HELP tailtrace_span_signals_overflow_spans_total Spans counted under __overflow__: "
      "cap=\"dimension\" when a label had signals.max_values_per_dimension values already, "
      "cap=\"series\" when there were signals.max_series label sets already.\n"
      "# TYPE tailtrace_span_signals_overflow_spans_total counter\n"
      "tailtrace_span_signals_overflow_spans_total{cap=\"dimension\"} %llu\n"
      "tailtrace_span_signals_overflow_spans_total{cap=\"series\"} %llu\n"
      "# HELP tailtrace_span_signals_bytes Memory the golden signals' tables take, counted in "
      "memory.budget.\n"
      "# TYPE tailtrace_span_signals_bytes gauge\n"
      "tailtrace_span_signals_bytes %lld\n",
      nseries, (unsigned long long)od, (unsigned long long)ot, (long long)atomic_load(&r->bytes));
  return rc;
}
