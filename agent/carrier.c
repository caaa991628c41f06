/* Header carriers: tt_inject/tt_extract over a caller's array of name/value pairs. Everything
 * lives in memory the caller gave (slots and a byte store), so a server can keep one carrier
 * per connection with no allocation at all and a full store is an error the caller sees, never
 * a malloc on the request path. */
#include "tailtrace.h"

#include <string.h>

/* RFC 9110 token characters: a header name made of anything else would let a caller's input
 * forge a second header or break the request line when the carrier is written out. */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int valid_name(const char *n, size_t len) {
  if (len == 0)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)n[i]))
      return 0;
  return 1;
}

/* CR and LF would end the header early (header injection); NUL would cut it when read back. */
static int valid_value(const char *v, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
      return 0;
  return 1;
}

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

static int name_equal(const tt_header_t *hd, const char *name, size_t len) {
  if (hd->name_len != len)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (lower(hd->name[i]) != lower(name[i]))
      return 0;
  return 1;
}

void tt_headers_init(tt_headers_t *h, tt_header_t *items, size_t cap, char *store,
                     size_t store_cap) {
  if (h == NULL)
    return;
  h->items = items;
  h->count = 0;
  h->cap = items != NULL ? cap : 0;
  h->store = store;
  h->used = 0;
  h->store_cap = store != NULL ? store_cap : 0;
  h->error = 0;
}

int tt_headers_add(tt_headers_t *h, const char *name, size_t name_len, const char *value,
                   size_t value_len) {
  if (h == NULL || name == NULL || (value == NULL && value_len != 0))
    return TT_EINVAL;
  if (!valid_name(name, name_len) || !valid_value(value, value_len))
    return TT_EINVAL;
  if (h->count == h->cap)
    return TT_ENOSPC;
  h->items[h->count++] = (tt_header_t){name, name_len, value != NULL ? value : "", value_len};
  return 0;
}

/* Copies name and value into the store, each NUL-terminated so a single header can be read back
 * as a C string too. Returns the copy of the name (the value follows it), or NULL when full. */
static char *store_copy(tt_headers_t *h, const char *name, size_t nl, const char *value,
                        size_t vl) {
  if (h->store_cap - h->used < nl + vl + 2)
    return NULL;
  char *n = h->store + h->used;
  memcpy(n, name, nl);
  n[nl] = '\0';
  if (vl > 0)
    memcpy(n + nl + 1, value, vl);
  n[nl + 1 + vl] = '\0';
  h->used += nl + vl + 2;
  return n;
}

int tt_headers_append(tt_headers_t *h, const char *name, size_t name_len, const char *value,
                      size_t value_len) {
  if (h == NULL || name == NULL || (value == NULL && value_len != 0))
    return TT_EINVAL;
  if (!valid_name(name, name_len) || !valid_value(value, value_len))
    return TT_EINVAL;
  if (h->count == h->cap)
    return TT_ENOSPC;
  char *n = store_copy(h, name, name_len, value, value_len);
  if (n == NULL)
    return TT_ENOSPC;
  h->items[h->count++] = (tt_header_t){n, name_len, n + name_len + 1, value_len};
  return 0;
}

int tt_headers_set(tt_headers_t *h, const char *name, const char *value) {
  if (h == NULL || name == NULL || value == NULL)
    return TT_EINVAL;
  size_t nl = strlen(name), vl = strlen(value);
  if (!valid_name(name, nl) || !valid_value(value, vl))
    return TT_EINVAL;
  size_t first = h->count;
  for (size_t i = 0; i < h->count && first == h->count; i++)
    if (name_equal(&h->items[i], name, nl))
      first = i;
  /* Check every limit before changing anything, so a failed set leaves h as it was. */
  if (first == h->count && h->count == h->cap)
    return TT_ENOSPC;
  char *n = store_copy(h, name, nl, value, vl);
  if (n == NULL)
    return TT_ENOSPC;
  char *v = n + nl + 1;
  /* The first occurrence takes the new value in place (header order is kept); later ones go. */
  size_t o = first + 1;
  for (size_t i = first + 1; i < h->count; i++)
    if (!name_equal(&h->items[i], name, nl))
      h->items[o++] = h->items[i];
  h->count = first == h->count ? h->count + 1 : o;
  h->items[first] = (tt_header_t){n, nl, v, vl};
  return 0;
}

const char *tt_headers_get(tt_headers_t *h, const char *name) {
  if (h == NULL || name == NULL)
    return NULL;
  size_t nl = strlen(name);
  char *out = h->store != NULL ? h->store + h->used : NULL;
  size_t room = h->store_cap - h->used, len = 0;
  int found = 0;
  for (size_t i = 0; i < h->count; i++) {
    const tt_header_t *hd = &h->items[i];
    if (!name_equal(hd, name, nl))
      continue;
    /* The value, a "," before it when it is not the first, and the final NUL must fit. */
    size_t need = hd->value_len + (found ? 1 : 0);
    if (out == NULL || room - len < need + 1) {
      if (h->error == 0)
        h->error = TT_ENOSPC;
      return NULL;
    }
    if (found)
      out[len++] = ',';
    memcpy(out + len, hd->value, hd->value_len);
    len += hd->value_len;
    found = 1;
  }
  if (!found)
    return NULL;
  out[len] = '\0';
  return out;
}

int tt_headers_format(const tt_headers_t *h, char *out, size_t cap) {
  if (h == NULL || out == NULL || cap == 0)
    return TT_EINVAL;
  size_t o = 0;
  for (size_t i = 0; i < h->count; i++) {
    const tt_header_t *hd = &h->items[i];
    size_t need = hd->name_len + 2 + hd->value_len + 2;
    if (cap - o < need + 1) {
      out[0] = '\0';
      return TT_ENOSPC;
    }
    memcpy(out + o, hd->name, hd->name_len);
    o += hd->name_len;
    memcpy(out + o, ": ", 2);
    o += 2;
    memcpy(out + o, hd->value, hd->value_len);
    o += hd->value_len;
    memcpy(out + o, "\r\n", 2);
    o += 2;
  }
  out[o] = '\0';
  return o > (size_t)0x7fffffff ? TT_ENOSPC : (int)o;
}

const char *tt_headers_carrier_get(void *headers, const char *name) {
  return tt_headers_get(headers, name);
}

void tt_headers_carrier_set(void *headers, const char *name, const char *value) {
  tt_headers_t *h = headers;
  int rc = tt_headers_set(h, name, value);
  if (rc != 0 && h != NULL && h->error == 0)
    h->error = rc;
}
