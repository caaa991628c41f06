/* Growable byte buffer. Growth doubles so appends are amortised O(1). */
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tt__buf_reserve(tt_buf_t *b, size_t extra) {
  if (extra <= b->cap - b->len)
    return 0;
  if (extra > SIZE_MAX / 2 - b->len)
    return -ENOMEM;
  size_t need = b->len + extra;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need)
    cap *= 2;
  uint8_t *p = realloc(b->data, cap);
  if (p == NULL)
    return -ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int tt__buf_append(tt_buf_t *b, const void *data, size_t len) {
  if (len == 0)
    return 0;
  int rc = tt__buf_reserve(b, len);
  if (rc != 0)
    return rc;
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

int tt__buf_append_str(tt_buf_t *b, const char *s) {
  return tt__buf_append(b, s, strlen(s));
}

int tt__buf_appendf(tt_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return -EINVAL;
  if ((size_t)n < sizeof small)
    return tt__buf_append(b, small, (size_t)n);
  /* Too long for the stack copy: format straight into the buffer. */
  int rc = tt__buf_reserve(b, (size_t)n + 1);
  if (rc != 0)
    return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int tt__buf_append_varint(tt_buf_t *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    tmp[n++] = byte | (v ? 0x80 : 0);
  } while (v);
  return tt__buf_append(b, tmp, n);
}

int tt__buf_append_tag(tt_buf_t *b, uint32_t field, uint32_t wire_type) {
  return tt__buf_append_varint(b, ((uint64_t)field << 3) | wire_type);
}

int tt__buf_append_lenfield(tt_buf_t *b, uint32_t field, const void *p, size_t len) {
  int rc = tt__buf_append_tag(b, field, 2);
  if (rc == 0)
    rc = tt__buf_append_varint(b, len);
  if (rc == 0)
    rc = tt__buf_append(b, p, len);
  return rc;
}

int tt__buf_append_fixed(tt_buf_t *b, uint32_t field, uint64_t v, size_t width) {
  uint8_t le[8];
  for (size_t i = 0; i < width; i++)
    le[i] = (uint8_t)(v >> (8 * i));
  int rc = tt__buf_append_tag(b, field, width == 8 ? 1 : 5);
  return rc ? rc : tt__buf_append(b, le, width);
}

size_t tt__varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

void tt__buf_reset(tt_buf_t *b) {
  b->len = 0;
}

void tt__buf_shrink(tt_buf_t *b, size_t keep) {
  size_t cap = b->len > keep ? b->len : keep;
  if (b->cap <= cap)
    return;
  if (cap == 0) {
    tt__buf_free(b);
    return;
  }
  uint8_t *p = realloc(b->data, cap);
  if (p == NULL)
    return;
  b->data = p;
  b->cap = cap;
}

void tt__buf_free(tt_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
