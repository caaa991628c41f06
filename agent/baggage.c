/* W3C Baggage: a fixed-capacity set of key/value(/metadata) entries stored decoded in one buffer
 * inside tt_baggage_t, so baggage never touches the heap. An entry's key, value and metadata are
 * contiguous in buf and entries are kept in insertion order, which makes removal a memmove. */
#include "internal.h"

#include <string.h>

void tt_baggage_init(tt_baggage_t *b) {
  if (b != NULL) {
    b->count = 0;
    b->used = 0;
  }
}

/* token characters (RFC 7230 tchar). */
static int tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* baggage-octet: printable ASCII except space, '"', ',', ';' and '\'. */
static int boctet(unsigned char c) {
  return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static int valid_token(const char *k, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!tchar((unsigned char)k[i]))
      return 0;
  return 1;
}

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Metadata is emitted after ';' as it is, so it must itself be W3C properties:
 *   property *( OWS ";" OWS property ), property = key [ OWS "=" OWS *baggage-octet ].
 * Anything else (a ',' above all) would let a caller's metadata add members to the header. */
static int valid_metadata(const char *m, size_t n) {
  size_t i = 0;
  for (;;) {
    while (i < n && is_ows(m[i]))
      i++;
    size_t k = i;
    while (i < n && tchar((unsigned char)m[i]))
      i++;
    if (i == k)
      return 0; /* every property starts with a key */
    while (i < n && is_ows(m[i]))
      i++;
    if (i < n && m[i] == '=') {
      i++;
      while (i < n && is_ows(m[i]))
        i++;
      while (i < n && boctet((unsigned char)m[i]))
        i++;
      while (i < n && is_ows(m[i]))
        i++;
    }
    if (i == n)
      return 1;
    if (m[i] != ';')
      return 0;
    i++;
  }
}

static int find(const tt_baggage_t *b, const char *key, size_t kl) {
  for (int i = 0; i < b->count; i++)
    if (b->entry[i].key_len == kl && memcmp(b->buf + b->entry[i].key_off, key, kl) == 0)
      return i;
  return -1;
}

static void remove_at(tt_baggage_t *b, int i) {
  size_t start = b->entry[i].key_off;
  size_t end = (size_t)b->entry[i].meta_off + b->entry[i].meta_len;
  size_t gap = end - start;
  memmove(b->buf + start, b->buf + end, b->used - end);
  b->used = (uint16_t)(b->used - gap);
  for (int k = i + 1; k < b->count; k++) {
    b->entry[k - 1] = b->entry[k];
    b->entry[k - 1].key_off = (uint16_t)(b->entry[k - 1].key_off - gap);
    b->entry[k - 1].value_off = (uint16_t)(b->entry[k - 1].value_off - gap);
    b->entry[k - 1].meta_off = (uint16_t)(b->entry[k - 1].meta_off - gap);
  }
  b->count--;
}

static int add(tt_baggage_t *b, const char *k, size_t kl, const char *v, size_t vl, const char *m,
               size_t ml) {
  int old = find(b, k, kl);
  /* The space check counts the entry being replaced as free, but that entry is removed only once
   * the new one is known to fit: a failed set must leave the baggage as it was. */
  size_t freed = 0;
  int count = b->count;
  if (old >= 0) {
    freed = (size_t)b->entry[old].key_len + b->entry[old].value_len + b->entry[old].meta_len;
    count--;
  }
  if (count >= TT_BAGGAGE_MAX_ENTRIES ||
      (size_t)b->used - freed + kl + vl + ml > TT_BAGGAGE_MAX_BYTES)
    return TT_ENOSPC;
  if (old >= 0)
    remove_at(b, old);
  size_t o = b->used;
  b->entry[b->count].key_off = (uint16_t)o;
  b->entry[b->count].key_len = (uint16_t)kl;
  memcpy(b->buf + o, k, kl);
  o += kl;
  b->entry[b->count].value_off = (uint16_t)o;
  b->entry[b->count].value_len = (uint16_t)vl;
  if (vl != 0)
    memcpy(b->buf + o, v, vl);
  o += vl;
  b->entry[b->count].meta_off = (uint16_t)o;
  b->entry[b->count].meta_len = (uint16_t)ml;
  if (ml != 0)
    memcpy(b->buf + o, m, ml);
  o += ml;
  b->used = (uint16_t)o;
  b->count++;
  return 0;
}

int tt_baggage_set(tt_baggage_t *b, const char *key, const char *value, const char *metadata) {
  if (b == NULL || key == NULL || value == NULL)
    return TT_EINVAL;
  size_t kl = strlen(key);
  if (!valid_token(key, kl))
    return TT_EINVAL;
  size_t ml = metadata != NULL ? strlen(metadata) : 0;
  if (ml != 0 && !valid_metadata(metadata, ml))
    return TT_EINVAL;
  return add(b, key, kl, value, strlen(value), metadata, ml);
}

const char *tt_baggage_get(const tt_baggage_t *b, const char *key, size_t *len) {
  if (b == NULL || key == NULL)
    return NULL;
  int i = find(b, key, strlen(key));
  if (i < 0)
    return NULL;
  if (len != NULL)
    *len = b->entry[i].value_len;
  return b->buf + b->entry[i].value_off;
}

int tt_baggage_remove(tt_baggage_t *b, const char *key) {
  if (b == NULL || key == NULL)
    return TT_EINVAL;
  int i = find(b, key, strlen(key));
  if (i < 0)
    return TT_ENOTFOUND;
  remove_at(b, i);
  return 0;
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

/* The decoded value being built: bytes go through a UTF-8 check on their way in, because W3C
 * Baggage asks a decoder to replace every percent-encoded sequence that is not UTF-8 with U+FFFD.
 * The check is the WHATWG/Unicode "maximal subpart" one: a sequence that breaks off becomes one
 * U+FFFD and the byte that broke it is read again, so "%E2%82x" gives U+FFFD then "x", and
 * overlong forms, surrogates and code points past U+10FFFF are ill-formed. Raw header bytes are
 * printable ASCII (baggage-octet), so only percent-encoded bytes can be ill-formed. */
typedef struct decoder_s {
  char *out;
  size_t len, cap;
  unsigned char pend[4];
  int have, need;             /* bytes of the pending sequence held and needed in all */
  unsigned char lower, upper; /* the range the next continuation byte must be in */
} decoder_t;

static int emit(decoder_t *d, const void *p, size_t n) {
  if (d->cap - d->len < n)
    return TT_ENOSPC;
  memcpy(d->out + d->len, p, n);
  d->len += n;
  return 0;
}

static int emit_fffd(decoder_t *d) {
  d->have = d->need = 0;
  return emit(d, "\xEF\xBF\xBD", 3);
}

static int put_byte(decoder_t *d, unsigned char c) {
  if (d->need != 0) {
    if (c >= d->lower && c <= d->upper) {
      d->pend[d->have++] = c;
      d->lower = 0x80;
      d->upper = 0xBF;
      if (d->have < d->need)
        return 0;
      int rc = emit(d, d->pend, (size_t)d->need);
      d->have = d->need = 0;
      return rc;
    }
    int rc = emit_fffd(d); /* the sequence broke off: c starts afresh */
    if (rc != 0)
      return rc;
  }
  if (c < 0x80)
    return emit(d, &c, 1);
  d->lower = 0x80;
  d->upper = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    d->need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    d->need = 3;
    if (c == 0xE0)
      d->lower = 0xA0; /* overlong below */
    if (c == 0xED)
      d->upper = 0x9F; /* surrogates above */
  } else if (c >= 0xF0 && c <= 0xF4) {
    d->need = 4;
    if (c == 0xF0)
      d->lower = 0x90; /* overlong below */
    if (c == 0xF4)
      d->upper = 0x8F; /* past U+10FFFF above */
  } else {
    return emit_fffd(d); /* 80-C1, F5-FF never start a sequence */
  }
  d->pend[0] = c;
  d->have = 1;
  return 0;
}

static int finish(decoder_t *d) {
  return d->need != 0 ? emit_fffd(d) : 0;
}

/* Parses one list-member; returns 0, TT_EPARSE (skip it) or TT_ENOSPC (stop). */
static int parse_member(tt_baggage_t *b, const char *s, size_t n) {
  const char *semi = memchr(s, ';', n);
  size_t kvl = semi != NULL ? (size_t)(semi - s) : n;
  const char *eq = memchr(s, '=', kvl);
  if (eq == NULL)
    return TT_EPARSE;
  const char *k = s;
  size_t kl = (size_t)(eq - s);
  trim(&k, &kl);
  const char *v = eq + 1;
  size_t vl = (size_t)(s + kvl - v);
  trim(&v, &vl);
  if (!valid_token(k, kl))
    return TT_EPARSE;
  char dec[TT_BAGGAGE_MAX_BYTES];
  decoder_t d = {.out = dec, .cap = sizeof dec};
  for (size_t i = 0; i < vl; i++) {
    unsigned char c = (unsigned char)v[i];
    if (!boctet(c))
      return TT_EPARSE;
    if (c == '%') {
      int hi = i + 2 < vl ? hexval(v[i + 1]) : -1, lo = i + 2 < vl ? hexval(v[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        return TT_EPARSE;
      c = (unsigned char)(hi << 4 | lo);
      i += 2;
    }
    if (put_byte(&d, c) != 0)
      return TT_ENOSPC;
  }
  if (finish(&d) != 0)
    return TT_ENOSPC;
  size_t dl = d.len;
  const char *m = NULL;
  size_t ml = 0;
  if (semi != NULL) {
    m = semi + 1;
    ml = (size_t)(s + n - m);
    trim(&m, &ml);
    /* Checked here too so that whatever is stored formats back into valid baggage. */
    if (ml != 0 && !valid_metadata(m, ml))
      return TT_EPARSE;
  }
  return add(b, k, kl, dec, dl, m, ml);
}

int tt_baggage_parse(tt_baggage_t *b, const char *h, size_t len) {
  if (b == NULL || h == NULL)
    return TT_EINVAL;
  int skipped = 0;
  size_t i = 0;
  while (i <= len) {
    size_t j = i;
    while (j < len && h[j] != ',')
      j++;
    const char *e = h + i;
    size_t el = j - i;
    trim(&e, &el);
    if (el != 0) {
      int rc = parse_member(b, e, el);
      if (rc == TT_ENOSPC)
        return skipped; /* limits reached: the rest is dropped */
      if (rc != 0)
        skipped++;
    }
    i = j + 1;
  }
  return skipped;
}

/* The exact length of entry i on the wire: key "=" percent-encoded value [";" metadata]. */
static size_t member_len(const tt_baggage_t *b, int i) {
  size_t n = (size_t)b->entry[i].key_len + 1u;
  const unsigned char *v = (const unsigned char *)b->buf + b->entry[i].value_off;
  for (size_t k = 0; k < b->entry[i].value_len; k++)
    n += boctet(v[k]) && v[k] != '%' ? 1u : 3u;
  if (b->entry[i].meta_len != 0)
    n += 1u + b->entry[i].meta_len;
  return n;
}

/* Writes entry i (member_len(b, i) bytes, no terminator) at out; returns the bytes written. */
static size_t put_member(const tt_baggage_t *b, int i, char *out) {
  static const char hx[] = "0123456789ABCDEF";
  size_t o = 0;
  memcpy(out + o, b->buf + b->entry[i].key_off, b->entry[i].key_len);
  o += b->entry[i].key_len;
  out[o++] = '=';
  const unsigned char *v = (const unsigned char *)b->buf + b->entry[i].value_off;
  for (size_t k = 0; k < b->entry[i].value_len; k++) {
    if (boctet(v[k]) && v[k] != '%') {
      out[o++] = (char)v[k];
    } else {
      out[o++] = '%';
      out[o++] = hx[v[k] >> 4];
      out[o++] = hx[v[k] & 15];
    }
  }
  if (b->entry[i].meta_len != 0) {
    out[o++] = ';';
    memcpy(out + o, b->buf + b->entry[i].meta_off, b->entry[i].meta_len);
    o += b->entry[i].meta_len;
  }
  return o;
}

int tt_baggage_format(const tt_baggage_t *b, char *out, size_t cap) {
  if (b == NULL || out == NULL || cap == 0)
    return TT_EINVAL;
  size_t o = 0;
  for (int i = 0; i < b->count; i++) {
    size_t need = (i > 0) + member_len(b, i);
    if (o + need + 1 > cap)
      return TT_ENOSPC;
    if (i > 0)
      out[o++] = ',';
    o += put_member(b, i, out + o);
  }
  out[o] = '\0';
  return (int)o;
}

/* W3C limits apply to the header as sent, so they are measured after percent-encoding: a value
 * stored in 8192 decoded bytes can take three times that on the wire. A member that would take
 * the header over TT_BAGGAGE_MAX_BYTES or TT_BAGGAGE_MAX_ENTRIES is left out whole (a cut member
 * would reach the receiver as a different value) and later, smaller members still go. */
int tt__baggage_format_header(const tt_baggage_t *b, char out[TT_BAGGAGE_MAX_BYTES + 1],
                              int *left_out) {
  size_t o = 0;
  int kept = 0, skipped = 0;
  for (int i = 0; i < b->count; i++) {
    size_t need = (kept > 0) + member_len(b, i);
    if (kept == TT_BAGGAGE_MAX_ENTRIES || o + need > TT_BAGGAGE_MAX_BYTES) {
      skipped++;
      continue;
    }
    if (kept > 0)
      out[o++] = ',';
    o += put_member(b, i, out + o);
    kept++;
  }
  out[o] = '\0';
  *left_out = skipped;
  return (int)o;
}
