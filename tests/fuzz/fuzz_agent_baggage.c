/* Fuzz target: W3C baggage parsing. Whatever parses must format and parse back to the same
 * entries, and the header tt_inject sends must stay within the W3C limits (8192 bytes, 180
 * members) and parse back to members of the original with the same values. Below the limits, a
 * second, deliberately naive reading of the grammar (split, trim, check each character, decode,
 * then UTF-8 by Unicode's Table 3-7; no code shared with agent/baggage.c) must find the same
 * members, values and properties as the library. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tailtrace.h"

static tt_baggage_t a, b, c;
static char header[TT_BAGGAGE_MAX_BYTES * 4];
static size_t header_len;

static void capture(void *carrier, const char *key, const char *value) {
  (void)carrier;
  if (strcmp(key, "baggage") != 0)
    return;
  header_len = strlen(value);
  if (header_len > TT_BAGGAGE_MAX_BYTES)
    abort();
  memcpy(header, value, header_len);
}
static char buf[TT_BAGGAGE_MAX_BYTES * 3 + 1];

/* Aborts unless every entry of sub has the same value in full. */
static void check_values_in(const tt_baggage_t *sub, const tt_baggage_t *full) {
  for (int i = 0; i < sub->count; i++) {
    char key[TT_BAGGAGE_MAX_BYTES + 1];
    memcpy(key, sub->buf + sub->entry[i].key_off, sub->entry[i].key_len);
    key[sub->entry[i].key_len] = '\0';
    size_t ls, lf;
    const char *vs = tt_baggage_get(sub, key, &ls), *vf = tt_baggage_get(full, key, &lf);
    if (vs == NULL || vf == NULL || ls != lf || memcmp(vs, vf, ls) != 0)
      abort();
  }
}

/* ---- the reference ---- */

#define REF_MAX_IN 4096

typedef struct ref_entry_s {
  char key[REF_MAX_IN], value[REF_MAX_IN * 3], meta[REF_MAX_IN];
  size_t kl, vl, ml;
} ref_entry_t;

static ref_entry_t ref[200];
static int nref;

static int ref_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int ref_octet(unsigned char ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x2b) || (ch >= 0x2d && ch <= 0x3a) ||
         (ch >= 0x3c && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

static void ref_trim(const char **p, size_t *n) {
  while (*n > 0 && ((*p)[0] == ' ' || (*p)[0] == '\t')) {
    (*p)++;
    (*n)--;
  }
  while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
    (*n)--;
}

static int ref_token(const char *p, size_t n) {
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!ref_tchar((unsigned char)p[i]))
      return 0;
  return 1;
}

static int ref_hex(char ch) {
  const char *d = "0123456789abcdef0123456789ABCDEF", *f = ch != 0 ? strchr(d, ch) : NULL;
  return f == NULL ? -1 : (int)((f - d) % 16);
}

/* Table 3-7 of the Unicode standard: the well-formed byte sequences, as ranges per byte. */
static const unsigned char ref_seq[][8] = {
    {0xC2, 0xDF, 0x80, 0xBF},
    {0xE0, 0xE0, 0xA0, 0xBF, 0x80, 0xBF},
    {0xE1, 0xEC, 0x80, 0xBF, 0x80, 0xBF},
    {0xED, 0xED, 0x80, 0x9F, 0x80, 0xBF},
    {0xEE, 0xEF, 0x80, 0xBF, 0x80, 0xBF},
    {0xF0, 0xF0, 0x90, 0xBF, 0x80, 0xBF, 0x80, 0xBF},
    {0xF1, 0xF3, 0x80, 0xBF, 0x80, 0xBF, 0x80, 0xBF},
    {0xF4, 0xF4, 0x80, 0x8F, 0x80, 0xBF, 0x80, 0xBF},
};
static const int ref_seq_len[] = {2, 3, 3, 3, 3, 4, 4, 4};

/* Decodes raw bytes as UTF-8 into out, each maximal ill-formed subpart as U+FFFD. */
static size_t ref_utf8(const unsigned char *in, size_t n, char *out) {
  size_t o = 0, i = 0;
  while (i < n) {
    if (in[i] < 0x80) {
      out[o++] = (char)in[i++];
      continue;
    }
    int row = -1;
    for (int r = 0; r < 8; r++)
      if (in[i] >= ref_seq[r][0] && in[i] <= ref_seq[r][1])
        row = r;
    size_t good = 1; /* how many bytes of the sequence match the table */
    if (row >= 0)
      while (good < (size_t)ref_seq_len[row] && i + good < n &&
             in[i + good] >= ref_seq[row][2 * good] && in[i + good] <= ref_seq[row][2 * good + 1])
        good++;
    if (row >= 0 && good == (size_t)ref_seq_len[row]) {
      memcpy(out + o, in + i, good);
      o += good;
    } else {
      memcpy(out + o, "\xEF\xBF\xBD", 3);
      o += 3;
    }
    i += good;
  }
  return o;
}

static int ref_properties(const char *m, size_t n) {
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < n && m[j] != ';')
      j++;
    const char *p = m + i;
    size_t pl = j - i;
    const char *eq = memchr(p, '=', pl);
    const char *k = p, *v = NULL;
    size_t kl = eq != NULL ? (size_t)(eq - p) : pl, vl = 0;
    ref_trim(&k, &kl);
    if (!ref_token(k, kl))
      return 0;
    if (eq != NULL) {
      v = eq + 1;
      vl = (size_t)(p + pl - v);
      ref_trim(&v, &vl);
      for (size_t x = 0; x < vl; x++)
        if (!ref_octet((unsigned char)v[x]))
          return 0;
    }
    if (j >= n)
      return 1;
    i = j + 1;
  }
}

/* Parses one member into ref[nref] (or replaces the entry of the same key). */
static void ref_member(const char *p, size_t n) {
  const char *semi = memchr(p, ';', n);
  size_t kvl = semi != NULL ? (size_t)(semi - p) : n;
  const char *eq = memchr(p, '=', kvl);
  if (eq == NULL)
    return;
  const char *k = p, *v = eq + 1;
  size_t kl = (size_t)(eq - p), vl = (size_t)(p + kvl - v);
  ref_trim(&k, &kl);
  ref_trim(&v, &vl);
  if (!ref_token(k, kl))
    return;
  static unsigned char raw[REF_MAX_IN];
  size_t rl = 0;
  for (size_t i = 0; i < vl; i++) {
    if (!ref_octet((unsigned char)v[i]))
      return;
    if (v[i] != '%') {
      raw[rl++] = (unsigned char)v[i];
      continue;
    }
    if (i + 2 >= vl || ref_hex(v[i + 1]) < 0 || ref_hex(v[i + 2]) < 0)
      return;
    raw[rl++] = (unsigned char)(ref_hex(v[i + 1]) * 16 + ref_hex(v[i + 2]));
    i += 2;
  }
  const char *m = semi != NULL ? semi + 1 : "";
  size_t ml = semi != NULL ? (size_t)(p + n - m) : 0;
  ref_trim(&m, &ml);
  if (ml > 0 && !ref_properties(m, ml))
    return;
  int at = nref;
  for (int e = 0; e < nref; e++)
    if (ref[e].kl == kl && memcmp(ref[e].key, k, kl) == 0)
      at = e;
  if (at == (int)(sizeof ref / sizeof ref[0]))
    return;
  if (at == nref)
    nref++;
  memcpy(ref[at].key, k, kl);
  ref[at].kl = kl;
  ref[at].vl = ref_utf8(raw, rl, ref[at].value);
  memcpy(ref[at].meta, m, ml);
  ref[at].ml = ml;
}

/* Checks the library's parse of data against the reference, below the limits. */
static void ref_check(const uint8_t *data, size_t size, const tt_baggage_t *lib) {
  nref = 0;
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < size && data[j] != ',')
      j++;
    const char *p = (const char *)data + i;
    size_t n = j - i;
    ref_trim(&p, &n);
    if (n > 0)
      ref_member(p, n);
    if (j >= size)
      break;
    i = j + 1;
  }
  if (nref >= TT_BAGGAGE_MAX_ENTRIES)
    return; /* the library stops at its limit; the reference has none */
  if (lib->count != nref)
    abort();
  for (int e = 0; e < nref; e++) {
    int found = 0;
    for (int l = 0; l < lib->count && !found; l++) {
      if (lib->entry[l].key_len != ref[e].kl ||
          memcmp(lib->buf + lib->entry[l].key_off, ref[e].key, ref[e].kl) != 0)
        continue;
      found = 1;
      if (lib->entry[l].value_len != ref[e].vl ||
          memcmp(lib->buf + lib->entry[l].value_off, ref[e].value, ref[e].vl) != 0 ||
          lib->entry[l].meta_len != ref[e].ml ||
          memcmp(lib->buf + lib->entry[l].meta_off, ref[e].meta, ref[e].ml) != 0)
        abort();
    }
    if (!found)
      abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_baggage_init(&a);
  if (tt_baggage_parse(&a, (const char *)data, size) < 0)
    abort();
  if (size <= REF_MAX_IN)
    ref_check(data, size, &a);
  int n = tt_baggage_format(&a, buf, sizeof buf);
  if (n < 0)
    abort();
  tt_baggage_init(&b);
  if (tt_baggage_parse(&b, buf, (size_t)n) != 0 || b.count != a.count)
    abort();
  check_values_in(&a, &b);
  header_len = 0;
  if (tt_inject(NULL, &a, capture, NULL) != 0)
    abort();
  tt_baggage_init(&c);
  if (tt_baggage_parse(&c, header, header_len) != 0 || c.count > a.count ||
      c.count > TT_BAGGAGE_MAX_ENTRIES)
    abort();
  check_values_in(&c, &a);
  return 0;
}
